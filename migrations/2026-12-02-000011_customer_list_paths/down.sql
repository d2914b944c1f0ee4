DROP INDEX customers_kind_name_idx;
DROP INDEX customers_kind_updated_idx;
DROP INDEX customers_manager_name_idx;
DROP INDEX customers_manager_updated_idx;
DROP INDEX customers_stage_name_idx;
DROP INDEX customers_stage_updated_idx;
