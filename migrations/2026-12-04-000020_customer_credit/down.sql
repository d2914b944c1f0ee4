DROP TABLE pipeline_settings;
DROP INDEX customers_credit_grade_idx;
ALTER TABLE customers DROP COLUMN credit;
