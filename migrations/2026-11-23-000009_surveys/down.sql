DROP TABLE customer_satisfaction;
DROP TABLE survey_stats;
DROP TABLE survey_responses;
DROP TABLE surveys;
