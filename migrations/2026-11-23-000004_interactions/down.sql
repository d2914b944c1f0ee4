DROP TABLE complaint_status_changes;
DROP TABLE interactions;
