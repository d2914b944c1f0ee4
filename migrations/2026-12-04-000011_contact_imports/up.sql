-- Contact links are imported too (issue 21): each row names its organization and its person
-- by external id or email.
ALTER TABLE imports DROP CONSTRAINT imports_resource_check;
ALTER TABLE imports ADD CONSTRAINT imports_resource_check
    CHECK (resource IN ('customers', 'interactions', 'purchases', 'contacts'));
