//! The audit log: every write records who did it, when, to which entity, what changed and
//! under which request, in the same transaction as the write. Admins read it at `/v1/audit`.

mod json;
mod routes;
mod store;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use serde_json::{Map, Value, json};

pub use json::AuditEvent;
pub use routes::configure;

/// Every event on one entity, newest first (for a data-subject export).
pub async fn trail(
    conn: &mut AsyncPgConnection,
    entity_type: &str,
    entity_id: &str,
) -> QueryResult<Vec<AuditEvent>> {
    let filter = json::AuditQuery {
        entity_type: Some(entity_type.to_owned()),
        entity_id: Some(entity_id.to_owned()),
        ..json::AuditQuery::default()
    };
    store::list(conn, &filter, None, i64::MAX).await
}

/// Forgets what changed in the past events of some entities of one type (kept: who, when,
/// which action), for erasure of personal data.
pub async fn forget_changes(
    conn: &mut AsyncPgConnection,
    entity_type: &str,
    entity_ids: &[String],
) -> QueryResult<()> {
    store::forget_changes(conn, entity_type, entity_ids).await
}

/// Fields that change on every write and say nothing on their own.
const NOISE: [&str; 3] = ["updated_at", "version", "created_at"];

fn to_object(value: &impl Serialize) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The changes of a creation: every field set, as `{"field": {"to": value}}`.
pub fn created(after: &impl Serialize) -> Value {
    let changes: Map<String, Value> = to_object(after)
        .into_iter()
        .filter(|(k, v)| !NOISE.contains(&k.as_str()) && k != "id" && !v.is_null())
        .map(|(k, v)| (k, json!({ "to": v })))
        .collect();
    Value::Object(changes)
}

/// The changes of a removal: every field the object had, as `{"field": {"from": value}}`,
/// so that the trail keeps what was removed.
pub fn deleted(before: &impl Serialize) -> Value {
    let changes: Map<String, Value> = to_object(before)
        .into_iter()
        .filter(|(k, v)| !NOISE.contains(&k.as_str()) && k != "id" && !v.is_null())
        .map(|(k, v)| (k, json!({ "from": v })))
        .collect();
    Value::Object(changes)
}

/// The changes of an update: each field that differs, as `{"field": {"from": a, "to": b}}`.
/// Pass the API representations (already masked), never database rows.
pub fn diff(before: &impl Serialize, after: &impl Serialize) -> Value {
    let before = to_object(before);
    let changes: Map<String, Value> = to_object(after)
        .into_iter()
        .filter(|(k, _)| !NOISE.contains(&k.as_str()))
        .filter_map(|(k, to)| {
            let from = before.get(&k).cloned().unwrap_or(Value::Null);
            (from != to).then(|| (k, json!({ "from": from, "to": to })))
        })
        .collect();
    Value::Object(changes)
}

/// Adds a change whose values must not be kept (a password, a secret): only that it changed.
pub fn redacted(mut changes: Value, field: &str) -> Value {
    if let Value::Object(map) = &mut changes {
        map.insert(field.to_owned(), json!({ "to": "[redacted]" }));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_keeps_only_changed_fields() {
        let a = json!({"name": "A", "role": "agent", "version": 1});
        let b = json!({"name": "B", "role": "agent", "version": 2});
        assert_eq!(diff(&a, &b), json!({"name": {"from": "A", "to": "B"}}));
        assert_eq!(
            created(&json!({"id": "x", "name": "A", "note": null})),
            json!({"name": {"to": "A"}})
        );
        assert_eq!(
            redacted(json!({}), "password"),
            json!({"password": {"to": "[redacted]"}})
        );
    }
}
