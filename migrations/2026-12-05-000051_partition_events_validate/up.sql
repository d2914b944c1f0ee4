-- Partitioned history, step 2 of 3: proves the bound of step 1 over the rows already there.
-- Outside a transaction: VALIDATE takes a lock that lets writes go on while it scans.
ALTER TABLE events VALIDATE CONSTRAINT events_before_bound;
