DROP INDEX interactions_contact_idx;
ALTER TABLE interactions DROP COLUMN contact_id;
ALTER TABLE opportunities DROP COLUMN contact_ids;
