DROP TABLE loyalty_tiers;
DROP TABLE loyalty_program;
