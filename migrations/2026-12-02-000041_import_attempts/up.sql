-- A job is run at most a few times for a reason not tied to one of its rows (the database
-- refusing it, a runner that died on it): `attempts` counts the runs that claimed it, and
-- `last_error` keeps why the last one stopped (client-safe words), for when it is given up.
ALTER TABLE imports
    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
    ADD COLUMN last_error text;
