-- Whether an opportunity has a decision maker known: one of its people (`contact_ids`) is,
-- now, a live current contact of its organization with the `decision_maker` role. It was
-- derived as each opportunity was read: three index probes per row, for the filter and again
-- for the answer, so that `GET /v1/opportunities?has_decision_maker=false` cost three times
-- an unfiltered page in PostgreSQL. It is now kept on the row, by triggers on every write
-- that can change it:
--  - the opportunity's own (its organization or its people): computed before the row is
--    written;
--  - a link that is or was a current decision maker's (added, changed, ended, moved by a
--    merge, removed): every opportunity of its organization computed again;
--  - a person deleted or restored: the same, for each organization they decide at.
-- Each computation reads contacts as they are then; an opportunity written at the same time
-- is locked by the other's update and computed again on its newest row (the refresh updates
-- every opportunity of the organization, not only those that look affected, so that none is
-- skipped on a stale view of its people).

CREATE FUNCTION opportunity_has_decision_maker(organization uuid, people uuid[])
    RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM contacts
        JOIN customers person ON person.id = contacts.person_id AND person.deleted_at IS NULL
        WHERE contacts.organization_id = organization
          AND contacts.person_id = ANY (people)
          AND contacts.ended_at IS NULL
          AND 'decision_maker' = ANY (contacts.buying_roles))
$$;

ALTER TABLE opportunities ADD COLUMN has_decision_maker boolean NOT NULL DEFAULT false;
UPDATE opportunities SET has_decision_maker = true
WHERE contact_ids <> '{}' AND opportunity_has_decision_maker(customer_id, contact_ids);

CREATE FUNCTION opportunities_decision_maker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.has_decision_maker := opportunity_has_decision_maker(NEW.customer_id, NEW.contact_ids);
    RETURN NEW;
END
$$;
CREATE TRIGGER opportunities_decision_maker
    BEFORE INSERT OR UPDATE OF customer_id, contact_ids ON opportunities
    FOR EACH ROW EXECUTE FUNCTION opportunities_decision_maker();

CREATE FUNCTION refresh_opportunities_decision_maker(organization uuid)
    RETURNS void LANGUAGE sql AS $$
    UPDATE opportunities
    SET has_decision_maker = opportunity_has_decision_maker(customer_id, contact_ids)
    WHERE customer_id = organization
$$;

CREATE FUNCTION contacts_decision_maker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM refresh_opportunities_decision_maker(OLD.organization_id);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.organization_id <> OLD.organization_id) THEN
        PERFORM refresh_opportunities_decision_maker(NEW.organization_id);
    END IF;
    RETURN NULL;
END
$$;
-- Only links that are or were a current decision maker's can change the flag.
CREATE TRIGGER contacts_decision_maker_inserted AFTER INSERT ON contacts
    FOR EACH ROW
    WHEN (NEW.ended_at IS NULL AND 'decision_maker' = ANY (NEW.buying_roles))
    EXECUTE FUNCTION contacts_decision_maker();
CREATE TRIGGER contacts_decision_maker_updated
    AFTER UPDATE OF organization_id, person_id, ended_at, buying_roles ON contacts
    FOR EACH ROW
    WHEN ((OLD.ended_at IS NULL AND 'decision_maker' = ANY (OLD.buying_roles))
          OR (NEW.ended_at IS NULL AND 'decision_maker' = ANY (NEW.buying_roles)))
    EXECUTE FUNCTION contacts_decision_maker();
CREATE TRIGGER contacts_decision_maker_deleted AFTER DELETE ON contacts
    FOR EACH ROW
    WHEN (OLD.ended_at IS NULL AND 'decision_maker' = ANY (OLD.buying_roles))
    EXECUTE FUNCTION contacts_decision_maker();

CREATE FUNCTION customers_decision_maker() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM refresh_opportunities_decision_maker(c.organization_id)
    FROM contacts c
    WHERE c.person_id = NEW.id AND c.ended_at IS NULL
      AND 'decision_maker' = ANY (c.buying_roles);
    RETURN NULL;
END
$$;
CREATE TRIGGER customers_decision_maker AFTER UPDATE OF deleted_at ON customers
    FOR EACH ROW
    WHEN (OLD.deleted_at IS DISTINCT FROM NEW.deleted_at AND NEW.kind = 'individual')
    EXECUTE FUNCTION customers_decision_maker();

-- `has_decision_maker=false` in the default order reads this (most deals lack one); `true`
-- filters the same walk.
CREATE INDEX opportunities_no_decision_maker_idx ON opportunities (expected_close_date, id)
    WHERE deleted_at IS NULL AND NOT has_decision_maker;
