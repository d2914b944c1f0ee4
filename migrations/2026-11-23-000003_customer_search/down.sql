DROP INDEX customers_email_search_idx;
DROP INDEX customers_search_idx;
CREATE INDEX customers_search_idx ON customers USING gin ((lower(
    coalesce(name, '') || ' ' || coalesce(organization_name, '') || ' ' ||
    coalesce(email, '') || ' ' || coalesce(phone, ''))) gin_trgm_ops) WHERE deleted_at IS NULL;
ALTER TABLE customers DROP CONSTRAINT customers_updated_not_before_created;
