-- The open complaints by customer without their severity, replaced by
-- interactions_open_complaints_covered_idx (previous migration).
DROP INDEX interactions_customer_open_complaints_idx;
