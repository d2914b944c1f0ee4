-- Saved import mappings: how another system's file (its columns, its values, its date
-- formats) becomes the fields of a resource. Each change is a new version; every version
-- stays readable, and an import keeps the mapping it ran with.
CREATE TABLE import_mappings (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    resource    text NOT NULL CHECK (resource IN ('customers', 'interactions', 'purchases')),
    description text,
    spec        jsonb NOT NULL,
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- A name names one mapping (case-insensitively); the list pages by id.
CREATE UNIQUE INDEX import_mappings_name_key ON import_mappings (lower(name));
CREATE INDEX import_mappings_resource_idx ON import_mappings (resource, id);

CREATE TABLE import_mapping_versions (
    mapping_id  uuid NOT NULL REFERENCES import_mappings (id) ON DELETE CASCADE,
    version     bigint NOT NULL,
    name        text NOT NULL,
    description text,
    spec        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mapping_id, version)
);

-- The mapping an import ran with (a snapshot: inline, a preset, or a saved mapping's
-- version), so a resumed job maps as its first run did; and the file's columns it left
-- unused, named in the answer.
ALTER TABLE imports ADD COLUMN mapping jsonb;
ALTER TABLE imports ADD COLUMN unmapped_columns text[];
