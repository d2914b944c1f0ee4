-- The classifications the course names (DOMAIN.md section 9): an individual's sales-view
-- type (经济型 economic, 道德型 ethical, 个性型 personalizing, 方便型 convenience) and an
-- organisation's type (government bodies, businesses, non-profits, resellers). Each belongs
-- to one kind of customer only.
ALTER TABLE customers
    ADD COLUMN buyer_type text
        CONSTRAINT customers_buyer_type_check
        CHECK (buyer_type IN ('economic', 'ethical', 'personalizing', 'convenience')),
    ADD COLUMN organization_type text
        CONSTRAINT customers_organization_type_check
        CHECK (organization_type IN ('government', 'business', 'non_profit', 'reseller')),
    ADD CONSTRAINT customers_buyer_type_kind_check
        CHECK (buyer_type IS NULL OR kind = 'individual'),
    ADD CONSTRAINT customers_organization_type_kind_check
        CHECK (organization_type IS NULL OR kind = 'organization');

-- The list filters by them in creation order (either direction); the analytics segments
-- group by them in their one scan of the customers.
CREATE INDEX customers_buyer_type_idx ON customers (buyer_type, created_at, id)
    WHERE buyer_type IS NOT NULL AND deleted_at IS NULL;
CREATE INDEX customers_organization_type_idx ON customers (organization_type, created_at, id)
    WHERE organization_type IS NOT NULL AND deleted_at IS NULL;
