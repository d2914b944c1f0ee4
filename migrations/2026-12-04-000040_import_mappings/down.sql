ALTER TABLE imports DROP COLUMN unmapped_columns;
ALTER TABLE imports DROP COLUMN mapping;
DROP TABLE import_mapping_versions;
DROP TABLE import_mappings;
