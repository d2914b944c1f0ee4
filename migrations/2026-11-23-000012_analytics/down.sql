DROP INDEX interactions_customer_open_complaints_idx;
DROP TABLE customer_analytics;
DROP TABLE analytics_settings;
