-- Whether an opportunity has a decision maker (`pipeline::store::HAS_DECISION_MAKER`) is read
-- with every opportunity and filters `GET /v1/opportunities?has_decision_maker=`: each probe
-- read all of the organization's links (about 15) to find a current one with the role. The
-- current decision makers are a few links per organization at most: their own index answers
-- the probe with one or two entries.
CREATE INDEX contacts_decision_makers_idx ON contacts (organization_id, person_id)
    WHERE ended_at IS NULL AND 'decision_maker' = ANY (buying_roles);
