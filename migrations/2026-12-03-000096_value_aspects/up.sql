-- Lifetime potential m·r/(1+d−r) (DOMAIN.md section 9): the retention rate r (NULL:
-- measured from the purchases) and the discount rate d. With r fixed the formula must stay
-- finite and positive, 1 + d − r > 0.
ALTER TABLE analytics_settings
    ADD COLUMN retention_rate double precision
        CHECK (retention_rate >= 0 AND retention_rate <= 1),
    ADD COLUMN discount_rate double precision NOT NULL DEFAULT 0.1
        CHECK (discount_rate >= 0 AND discount_rate <= 1),
    ADD CONSTRAINT analytics_settings_potential_finite
        CHECK (retention_rate IS NULL OR 1 + discount_rate - retention_rate > 0);
