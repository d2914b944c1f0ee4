ALTER TABLE interactions DROP COLUMN purchase_id;
