-- Bulk imports: each upload is kept (in chunks, as received) until it is applied, so a job
-- survives a restart and resumes after the last batch it committed; failed rows are kept for
-- the error report.

CREATE TABLE imports (
    id              uuid PRIMARY KEY,
    resource        text NOT NULL CHECK (resource IN ('customers', 'interactions', 'purchases')),
    mode            text NOT NULL CHECK (mode IN ('insert', 'upsert', 'update_only')),
    format          text NOT NULL CHECK (format IN ('csv', 'ndjson')),
    dry_run         boolean NOT NULL,
    all_or_nothing  boolean NOT NULL,
    background      boolean NOT NULL,
    state           text NOT NULL CHECK (state IN ('receiving', 'queued', 'running', 'succeeded', 'failed')),
    -- SHA-256 of the (decompressed) file: the same file with the same options is one import.
    content_hash    bytea,
    bytes           bigint NOT NULL DEFAULT 0,
    -- The file's header row (CSV), to write the error report in the same shape.
    header          text,
    received        bigint NOT NULL DEFAULT 0,
    created         bigint NOT NULL DEFAULT 0,
    updated         bigint NOT NULL DEFAULT 0,
    unchanged       bigint NOT NULL DEFAULT 0,
    failed          bigint NOT NULL DEFAULT 0,
    -- Lines of the file applied so far, committed with each batch: where a resumed job goes on.
    lines_done      bigint NOT NULL DEFAULT 0,
    committed       boolean NOT NULL DEFAULT false,
    error           text,
    -- The caller's Idempotency-Key: the same key answers with this import again.
    idempotency_key text,
    -- Who runs it and until when (renewed per batch); a job whose lease ran out is resumed.
    lease_until     timestamptz,
    actor_type      text NOT NULL,
    actor_id        text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX imports_created_idx ON imports (created_at, id);
CREATE UNIQUE INDEX imports_idempotency_key ON imports (actor_type, actor_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX imports_pending_idx ON imports (state, lease_until) WHERE state IN ('queued', 'running');
CREATE INDEX imports_hash_idx ON imports (content_hash) WHERE state = 'succeeded';

CREATE TABLE import_chunks (
    import_id uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    data      bytea NOT NULL,
    PRIMARY KEY (import_id, seq)
);

CREATE TABLE import_errors (
    import_id uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    line      bigint NOT NULL,
    field     text NOT NULL,
    message   text NOT NULL,
    -- The row as it was sent (a CSV record or an NDJSON line), to fix and re-send.
    raw       text NOT NULL
);
CREATE INDEX import_errors_import_idx ON import_errors (import_id, line);
