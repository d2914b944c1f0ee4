-- The slices a customer list is sorted by other than creation: a stage, an account manager's
-- customers, individuals or organisations, by last change or by name. Each index serves one
-- filter in one order, so a page reads its 50 rows; the other filters with another order than
-- creation are refused (the API names the orders they can use), rather than walking an order
-- and filtering row by row. Six more indexes cost each insert and each update of a customer
-- (bench/README.md measures how much).
CREATE INDEX customers_stage_updated_idx ON customers (lifecycle_stage, updated_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_stage_name_idx ON customers (lifecycle_stage, lower(name), id)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_manager_updated_idx ON customers (account_manager_id, updated_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_manager_name_idx ON customers (account_manager_id, lower(name), id)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_kind_updated_idx ON customers (kind, updated_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX customers_kind_name_idx ON customers (kind, lower(name), id)
    WHERE deleted_at IS NULL;
