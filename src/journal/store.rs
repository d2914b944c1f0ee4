use diesel::QueryResult;
use diesel::sql_types::{Array, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Actor;
use crate::db::Prepare;
use crate::events::NewEvent;

/// The audit rows and events of some changes, as columns (one array per column binds any
/// number of rows with a fixed number of parameters).
#[derive(Default)]
pub struct Rows {
    audit_ids: Vec<Uuid>,
    actions: Vec<&'static str>,
    entity_types: Vec<&'static str>,
    entity_ids: Vec<String>,
    changes: Vec<Value>,
    event_ids: Vec<Uuid>,
    types: Vec<&'static str>,
    objects: Vec<&'static str>,
    object_ids: Vec<String>,
    data: Vec<Value>,
    previous: Vec<Option<Value>>,
}

impl Rows {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            audit_ids: Vec::with_capacity(n),
            actions: Vec::with_capacity(n),
            entity_types: Vec::with_capacity(n),
            entity_ids: Vec::with_capacity(n),
            changes: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    pub fn audit(
        &mut self,
        action: &'static str,
        entity_type: &'static str,
        entity_id: String,
        changes: Value,
    ) {
        self.audit_ids.push(Uuid::now_v7());
        self.actions.push(action);
        self.entity_types.push(entity_type);
        self.entity_ids.push(entity_id);
        self.changes.push(changes);
    }

    pub fn event(&mut self, event: NewEvent) {
        self.event_ids.push(Uuid::now_v7());
        self.types.push(event.kind.name());
        self.objects.push(event.kind.object());
        self.object_ids.push(event.object_id);
        self.data.push(event.data);
        self.previous.push(event.previous);
    }
}

/// Inserts the audit rows and the events with one statement: one round trip for both, each
/// set in its order (events are positioned by the order they are inserted in).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    request_id: Option<String>,
    rows: Rows,
) -> QueryResult<()> {
    diesel::sql_query(include_str!("insert.sql"))
        .bind::<Text, _>(actor.kind())
        .bind::<Text, _>(actor.id())
        .bind::<Nullable<Text>, _>(request_id)
        .bind::<Array<diesel::sql_types::Uuid>, _>(rows.audit_ids)
        .bind::<Array<Text>, _>(rows.actions)
        .bind::<Array<Text>, _>(rows.entity_types)
        .bind::<Array<Text>, _>(rows.entity_ids)
        .bind::<Array<Jsonb>, _>(rows.changes)
        .bind::<Array<diesel::sql_types::Uuid>, _>(rows.event_ids)
        .bind::<Array<Text>, _>(rows.types)
        .bind::<Array<Text>, _>(rows.objects)
        .bind::<Array<Text>, _>(rows.object_ids)
        .bind::<Array<Jsonb>, _>(rows.data)
        .bind::<Array<Nullable<Jsonb>>, _>(rows.previous)
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}
