ALTER TABLE imports DROP CONSTRAINT imports_resource_check;
ALTER TABLE imports ADD CONSTRAINT imports_resource_check
    CHECK (resource IN ('customers', 'interactions', 'purchases'));
