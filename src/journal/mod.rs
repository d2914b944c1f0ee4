//! The journal: every change is written down in its own transaction twice, as an audit row
//! (who, what, which entity, under which request) and, where integrations may follow it, as
//! events in the outbox. One call writes both, in one statement, so no write path can write
//! one and forget the other.
//!
//! A change says at its construction whether it is announced: [`Change::announced`] audits it
//! under its event's name, [`Change::audited`] names its action and has no event (a setting,
//! a user, a client), and [`Change::and`] adds the further events the same change causes (a
//! stage move beside an update, points beside a purchase).

mod store;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit;
use crate::auth::Actor;
use crate::events::{EventType, NewEvent};
use crate::http::request_id;

/// One change to write down: its audit row and the events it causes.
pub struct Change {
    action: &'static str,
    entity_type: &'static str,
    entity_id: String,
    changes: Value,
    events: Vec<NewEvent>,
}

impl Change {
    /// A change integrations follow: audited under its event's name and object.
    pub fn announced(event: NewEvent, changes: Value) -> Self {
        Self {
            action: event.kind.name(),
            entity_type: event.kind.object(),
            entity_id: event.object_id.clone(),
            changes,
            events: vec![event],
        }
    }

    /// A creation integrations follow: every field set, audited, and the event with the
    /// object as the API shows it.
    pub fn created(kind: EventType, id: impl ToString, shown: &impl Serialize) -> Self {
        Self::announced(NewEvent::new(kind, id, shown), audit::created(shown))
    }

    /// An update integrations follow: the fields that changed, audited, and the event with
    /// the object after and those fields' values before. Pass API views, never rows.
    pub fn updated(
        kind: EventType,
        id: impl ToString,
        before: &impl Serialize,
        after: &impl Serialize,
    ) -> Self {
        let changes = audit::diff(before, after);
        let event = NewEvent::new(kind, id, after).previous_from_diff(&changes);
        Self::announced(event, changes)
    }

    /// A change that has no event type (configuration, access): audited only, or with the
    /// events given by [`Change::and`] under another name than the audit's.
    pub fn audited(
        action: &'static str,
        entity_type: &'static str,
        entity_id: impl ToString,
        changes: Value,
    ) -> Self {
        Self {
            action,
            entity_type,
            entity_id: entity_id.to_string(),
            changes,
            events: Vec::new(),
        }
    }

    /// A further event the same change causes, written after the change's own.
    pub fn and(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }

    /// Further events the same change causes, in order.
    pub fn and_all(mut self, events: impl IntoIterator<Item = NewEvent>) -> Self {
        self.events.extend(events);
        self
    }
}

/// Writes one change down. Call inside the change's transaction.
pub async fn record(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    change: Change,
) -> QueryResult<()> {
    record_all(conn, actor, vec![change]).await
}

/// Writes many changes down in one statement, whatever their number (bulk writes): the audit
/// rows in their order, then every change's events in order. Call inside the transaction.
pub async fn record_all(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    changes: Vec<Change>,
) -> QueryResult<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut rows = store::Rows::with_capacity(changes.len());
    for change in changes {
        rows.audit(
            change.action,
            change.entity_type,
            change.entity_id,
            // `changes` is documented (and answered) as an object, never `null`.
            if change.changes.is_null() {
                Value::Object(Map::new())
            } else {
                change.changes
            },
        );
        for event in change.events {
            rows.event(event);
        }
    }
    store::insert(conn, actor, request_id::current(), rows).await
}
