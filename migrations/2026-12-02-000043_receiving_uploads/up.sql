-- An upload touches its import at least every 30 s while it arrives; the worker fails the
-- ones that stopped (the client went away, the instance died) and frees their chunks. This
-- index finds them without reading every import ever made.
CREATE INDEX imports_receiving_idx ON imports (updated_at) WHERE state = 'receiving';
