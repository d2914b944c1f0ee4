-- A request holds its Idempotency-Key under a lease it renews while it runs; a retry takes the
-- key over only once the lease has lapsed (its instance died), never from a slow live request.
-- `lease_holder` names the run holding the key, so a run that lost it (paused past its lease)
-- cannot renew, complete or release the key of the run that took it over.
ALTER TABLE idempotency_keys
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN lease_holder uuid;
-- Keys in progress keep the two minutes they were promised.
UPDATE idempotency_keys SET lease_until = locked_at + interval '2 minutes';
ALTER TABLE idempotency_keys ALTER COLUMN lease_until SET NOT NULL;
