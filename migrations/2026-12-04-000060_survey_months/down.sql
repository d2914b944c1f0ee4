DROP TABLE survey_stats_months;
