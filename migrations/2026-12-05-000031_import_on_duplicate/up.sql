-- Imports checked against the duplicate rules (issue 23): `on_duplicate` says what a row that
-- would create a customer does when it matches a live one (`fail`, `skip`, `merge`), and
-- import_matches names, per row skipped or merged, the customer it matched.
ALTER TABLE imports ADD COLUMN on_duplicate text
    CHECK (on_duplicate IN ('fail', 'skip', 'merge'));

CREATE TABLE import_matches (
    import_id   uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line        bigint NOT NULL,
    customer_id uuid NOT NULL,
    score       int NOT NULL,
    reasons     text[] NOT NULL,
    action      text NOT NULL CHECK (action IN ('skipped', 'merged')),
    PRIMARY KEY (import_id, line)
);
