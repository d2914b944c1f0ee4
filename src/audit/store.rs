use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::json::{AuditEvent, AuditQuery};
use crate::db::schema::audit_events;

#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events)]
struct Row {
    id: Uuid,
    occurred_at: DateTime<Utc>,
    actor_type: String,
    actor_id: String,
    action: String,
    entity_type: String,
    entity_id: String,
    changes: serde_json::Value,
    request_id: Option<String>,
}

/// Events matching `filter`, newest first, after the cursor `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &AuditQuery,
    after: Option<Uuid>,
    fetch: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut query = audit_events::table
        .select(Row::as_select())
        .order(audit_events::id.desc())
        .limit(fetch)
        .into_boxed();
    if let Some(v) = &filter.entity_type {
        query = query.filter(audit_events::entity_type.eq(v));
    }
    if let Some(v) = &filter.entity_id {
        query = query.filter(audit_events::entity_id.eq(v));
    }
    if let Some(v) = &filter.actor_type {
        query = query.filter(audit_events::actor_type.eq(v));
    }
    if let Some(v) = &filter.actor_id {
        query = query.filter(audit_events::actor_id.eq(v));
    }
    if let Some(v) = &filter.action {
        query = query.filter(audit_events::action.eq(v));
    }
    if let Some(v) = &filter.request_id {
        query = query.filter(audit_events::request_id.eq(v));
    }
    if let Some(v) = filter.occurred_after {
        query = query.filter(audit_events::occurred_at.ge(v));
    }
    if let Some(v) = filter.occurred_before {
        query = query.filter(audit_events::occurred_at.lt(v));
    }
    if let Some(after) = after {
        query = query.filter(audit_events::id.lt(after));
    }
    let rows: Vec<Row> = query.load(conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEvent {
            id: r.id,
            occurred_at: r.occurred_at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            // Deletions once recorded JSON `null`; `changes` is always an object.
            changes: if r.changes.is_null() {
                serde_json::json!({})
            } else {
                r.changes
            },
            request_id: r.request_id,
        })
        .collect())
}

pub async fn forget_changes(
    conn: &mut AsyncPgConnection,
    entity_type: &str,
    entity_ids: &[String],
) -> QueryResult<()> {
    diesel::update(
        audit_events::table
            .filter(audit_events::entity_type.eq(entity_type))
            .filter(audit_events::entity_id.eq_any(entity_ids)),
    )
    .set(audit_events::changes.eq(serde_json::json!({"erased": true})))
    .execute(conn)
    .await
    .map(drop)
}
