DROP TRIGGER customers_tags_updated ON customers;
DROP TRIGGER customers_tags_inserted ON customers;
DROP FUNCTION customers_tags_updated();
DROP FUNCTION customers_tags_inserted();
DROP TABLE customer_tags;
