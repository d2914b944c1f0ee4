DROP INDEX customers_organization_type_idx;
DROP INDEX customers_buyer_type_idx;
ALTER TABLE customers
    DROP CONSTRAINT customers_organization_type_kind_check,
    DROP CONSTRAINT customers_buyer_type_kind_check,
    DROP COLUMN organization_type,
    DROP COLUMN buyer_type;
