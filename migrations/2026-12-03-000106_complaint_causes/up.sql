-- What a complaint was about, from the same list as the reasons customers are lost for, so
-- that complaints and losses can be counted side by side (DOMAIN.md, lost customers).
ALTER TABLE interactions
    ADD COLUMN cause text
        CONSTRAINT interactions_cause_check
        CHECK (cause IN ('service_quality', 'product_defect', 'communication', 'price',
                         'competitor', 'moved_away', 'other')),
    ADD CONSTRAINT interactions_cause_complaint_check
        CHECK (cause IS NULL OR kind = 'complaint');

-- The complaint list by cause, oldest first (its default order).
CREATE INDEX interactions_complaint_cause_idx
    ON interactions (cause, timeline_at, id)
    WHERE kind = 'complaint' AND deleted_at IS NULL AND cause IS NOT NULL;
