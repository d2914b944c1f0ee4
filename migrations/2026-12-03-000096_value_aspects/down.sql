ALTER TABLE analytics_settings
    DROP CONSTRAINT analytics_settings_potential_finite,
    DROP COLUMN discount_rate,
    DROP COLUMN retention_rate;
