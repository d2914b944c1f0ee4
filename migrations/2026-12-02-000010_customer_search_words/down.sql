DROP INDEX customers_phone_search_idx;
CREATE INDEX customers_search_idx ON customers USING gin ((lower(
    coalesce(name, '') || ' ' || coalesce(organization_name, '') || ' ' ||
    split_part(coalesce(email, ''), '@', 1) || ' ' || coalesce(phone, ''))) gin_trgm_ops) WHERE deleted_at IS NULL;
DROP TRIGGER customers_words_updated ON customers;
DROP TRIGGER customers_words_inserted ON customers;
DROP FUNCTION customers_words_updated();
DROP FUNCTION customers_words_inserted();
DROP TABLE search_vocabulary;
DROP TABLE customer_search_words;
ALTER TABLE customers DROP COLUMN search_words;
DROP FUNCTION customer_words(text, text, text);
