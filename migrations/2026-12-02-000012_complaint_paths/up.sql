-- Resolved and closed complaints, by status and severity, oldest first or most severe first:
-- the complaint list of a settled status read only the kind index (a bitmap over every
-- complaint, lossy at ten million interactions: 3.8 s for resolved critical ones). The
-- indexes cover settled statuses only, so that the unresolved list keeps its own indexes; the
-- planner needs to know that only complaints have a status (extended statistics), or it
-- takes a settled status for rare.
CREATE INDEX interactions_settled_complaints_idx
    ON interactions (status, severity, timeline_at, id)
    WHERE kind = 'complaint' AND deleted_at IS NULL AND status IN ('resolved', 'closed');
CREATE INDEX interactions_settled_complaints_severity_idx
    ON interactions (status, severity_rank DESC, timeline_at, id)
    WHERE kind = 'complaint' AND deleted_at IS NULL AND status IN ('resolved', 'closed');
CREATE STATISTICS interactions_kind_status (dependencies, mcv) ON kind, status FROM interactions;
ANALYZE interactions;
