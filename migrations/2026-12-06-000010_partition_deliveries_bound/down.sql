ALTER TABLE webhook_deliveries DROP CONSTRAINT IF EXISTS webhook_deliveries_before_bound;
DROP FUNCTION webhook_delivery_id(uuid, uuid);
DROP FUNCTION uuid_v7_beside(uuid);
