DROP TABLE customer_lifecycle_events;
DROP TABLE customers;
DROP EXTENSION IF EXISTS pg_trgm;
