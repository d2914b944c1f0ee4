-- Interactions: the customer log (DOMAIN.md section 3), with the complaint workflow and
-- scheduled follow-ups on the same row.

CREATE TABLE interactions (
    id               uuid PRIMARY KEY,
    customer_id      uuid NOT NULL REFERENCES customers (id),
    channel          text NOT NULL CHECK (channel IN
                         ('phone', 'sms', 'email', 'visit', 'in_store', 'web', 'chat', 'social', 'mail', 'other')),
    direction        text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    kind             text NOT NULL CHECK (kind IN
                         ('inquiry', 'purchase', 'complaint', 'feedback', 'callback', 'service', 'promotion', 'meeting', 'note')),
    subject          text CHECK (length(subject) <= 200),
    notes            text CHECK (length(notes) <= 20000),
    -- When the contact took place; NULL while a scheduled follow-up is not done.
    occurred_at      timestamptz,
    duration_seconds integer CHECK (duration_seconds BETWEEN 0 AND 86400),
    staff_id         uuid REFERENCES users (id),
    outcome          text CHECK (length(outcome) <= 500),
    -- Follow-up: due at, for whom (assignee_id), done when occurred_at is set.
    due_at           timestamptz,
    -- Complaint: severity and workflow status with the time of each step.
    severity         text CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    severity_rank    smallint GENERATED ALWAYS AS (
                         CASE severity WHEN 'low' THEN 1 WHEN 'medium' THEN 2
                                       WHEN 'high' THEN 3 WHEN 'critical' THEN 4 END) STORED,
    status           text CHECK (status IN ('open', 'in_progress', 'resolved', 'closed')),
    resolution       text CHECK (length(resolution) <= 5000),
    in_progress_at   timestamptz,
    resolved_at      timestamptz,
    closed_at        timestamptz,
    reopened_at      timestamptz,
    reopen_count     integer NOT NULL DEFAULT 0,
    -- Complaints and follow-ups are both assigned.
    assignee_id      uuid REFERENCES users (id),
    -- When the item sits on the timeline: the contact, or the due time while pending.
    timeline_at      timestamptz NOT NULL GENERATED ALWAYS AS (coalesce(occurred_at, due_at)) STORED,
    -- Free text over subject and notes (word search; `simple`: no language's stemming).
    search           tsvector GENERATED ALWAYS AS (
                         to_tsvector('simple', coalesce(subject, '') || ' ' || coalesce(notes, ''))) STORED,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    version          bigint NOT NULL DEFAULT 1,
    deleted_at       timestamptz,
    -- A complaint has a severity and a status; nothing else has either.
    CHECK ((kind = 'complaint') = (status IS NOT NULL)),
    CHECK ((kind = 'complaint') = (severity IS NOT NULL)),
    -- Every interaction either took place or is scheduled.
    CHECK (occurred_at IS NOT NULL OR due_at IS NOT NULL),
    CHECK (status IN ('resolved', 'closed') = (resolved_at IS NOT NULL) OR status IS NULL),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL) OR status IS NULL)
);

-- The customer's log and timeline, newest first (also the foreign key's index).
CREATE INDEX interactions_customer_idx ON interactions (customer_id, timeline_at, id);
-- The list across customers, and the filters that narrow it most.
CREATE INDEX interactions_timeline_idx ON interactions (timeline_at, id) WHERE deleted_at IS NULL;
CREATE INDEX interactions_kind_idx ON interactions (kind, timeline_at, id) WHERE deleted_at IS NULL;
-- Not partial: also the foreign keys' indexes.
CREATE INDEX interactions_staff_idx ON interactions (staff_id, timeline_at, id);
CREATE INDEX interactions_assignee_idx ON interactions (assignee_id, due_at, id);
CREATE INDEX interactions_search_idx ON interactions USING gin (search) WHERE deleted_at IS NULL;
-- Unresolved complaints by age, and by severity then age (a complaint's timeline_at is when
-- it was opened); other complaint lists walk interactions_kind_idx.
CREATE INDEX interactions_open_complaints_idx ON interactions (timeline_at, id)
    WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL;
CREATE INDEX interactions_open_complaints_severity_idx ON interactions (severity_rank DESC, timeline_at, id)
    WHERE status IN ('open', 'in_progress') AND deleted_at IS NULL;
-- Complaint statistics: resolutions in a period, read from the index alone.
CREATE INDEX interactions_resolved_idx ON interactions (resolved_at) INCLUDE (occurred_at, severity, assignee_id)
    WHERE resolved_at IS NOT NULL AND deleted_at IS NULL;
-- Follow-up work lists: pending ones by due time; done ones by completion.
CREATE INDEX interactions_pending_follow_ups_idx ON interactions (due_at, id)
    WHERE due_at IS NOT NULL AND occurred_at IS NULL AND deleted_at IS NULL;

-- Each step of a complaint's workflow: from, to, when, who, with an optional note.
CREATE TABLE complaint_status_changes (
    id             uuid PRIMARY KEY,
    interaction_id uuid NOT NULL REFERENCES interactions (id),
    from_status    text,
    to_status      text NOT NULL,
    changed_at     timestamptz NOT NULL,
    actor_type     text NOT NULL,
    actor_id       text NOT NULL,
    note           text
);
CREATE INDEX complaint_status_changes_interaction_idx ON complaint_status_changes (interaction_id, changed_at, id);
