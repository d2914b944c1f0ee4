DROP INDEX purchases_opportunity_idx;
ALTER TABLE purchases DROP CONSTRAINT purchases_opportunity_fkey, DROP COLUMN opportunity_id;
ALTER TABLE opportunities DROP CONSTRAINT opportunities_id_customer_key;
