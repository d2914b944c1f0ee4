//! Events: the outbox integrations read. Every change they hear about writes one event in the
//! same transaction as the change, so a committed change always has its event and a
//! rolled-back one never does. Integrations read them at `GET /v1/events` (a cursor feed) or
//! receive them through webhooks (`crate::webhooks`).
//!
//! Readers see events in (transaction id, position) order, and only events whose transaction
//! is older than the oldest transaction still running in this database: an event committed
//! late by a long transaction is never skipped by a reader that has already moved past its
//! position.

mod json;
mod routes;
pub(crate) mod store;

use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::Serialize;
use serde_json::{Map, Value};

pub use json::{Event, LifecycleChangeNote};
pub use routes::configure;

/// The kinds of event, with the kind of object each carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    CustomerCreated,
    CustomerUpdated,
    CustomerDeleted,
    CustomerRestored,
    CustomerErased,
    CustomerLifecycleChanged,
    CustomerMerged,
    CustomerUnmerged,
    InteractionCreated,
    InteractionUpdated,
    ComplaintStatusChanged,
    PurchaseCreated,
    PurchaseRefunded,
    LoyaltyPointsChanged,
    LoyaltyTierChanged,
    SurveyResponseCreated,
    ImportCompleted,
    OpportunityCreated,
    OpportunityUpdated,
    OpportunityDeleted,
    ContactLinked,
    ContactUpdated,
    ContactUnlinked,
    WebhookPing,
}

/// One row per event type: its name, the object it carries, what it means.
pub struct TypeRow {
    pub kind: EventType,
    pub name: &'static str,
    pub object: &'static str,
    pub meaning: &'static str,
}

pub const TYPES: [TypeRow; 24] = [
    TypeRow {
        kind: EventType::CustomerCreated,
        name: "customer.created",
        object: "customer",
        meaning: "a customer was created (by the API or an import)",
    },
    TypeRow {
        kind: EventType::CustomerUpdated,
        name: "customer.updated",
        object: "customer",
        meaning: "a customer's fields changed; `previous` holds the old values",
    },
    TypeRow {
        kind: EventType::CustomerDeleted,
        name: "customer.deleted",
        object: "customer",
        meaning: "a customer was deleted (restorable)",
    },
    TypeRow {
        kind: EventType::CustomerRestored,
        name: "customer.restored",
        object: "customer",
        meaning: "a deleted customer was restored",
    },
    TypeRow {
        kind: EventType::CustomerErased,
        name: "customer.erased",
        object: "customer",
        meaning: "a customer's personal data was erased; the object is only `{\"id\"}`, and \
                  earlier events about the customer lose their data too",
    },
    TypeRow {
        kind: EventType::CustomerLifecycleChanged,
        name: "customer.lifecycle_changed",
        object: "customer",
        meaning: "a customer moved to another lifecycle stage; `previous` holds the old stage",
    },
    TypeRow {
        kind: EventType::CustomerMerged,
        name: "customer.merged",
        object: "customer_merge",
        meaning: "duplicate customers were merged into a survivor; the object says what moved \
                  (`merged_ids`, `moved` and `kept` counts); the merged ones are tombstones now",
    },
    TypeRow {
        kind: EventType::CustomerUnmerged,
        name: "customer.unmerged",
        object: "customer_merge",
        meaning: "a merge was undone: the merged customers are back, with what moved; the \
                  object is the merge as it was",
    },
    TypeRow {
        kind: EventType::InteractionCreated,
        name: "interaction.created",
        object: "interaction",
        meaning: "an interaction (complaints included) was logged",
    },
    TypeRow {
        kind: EventType::InteractionUpdated,
        name: "interaction.updated",
        object: "interaction",
        meaning: "an interaction changed; `previous` holds the old values",
    },
    TypeRow {
        kind: EventType::ComplaintStatusChanged,
        name: "complaint.status_changed",
        object: "interaction",
        meaning: "a complaint moved to another status; `previous` holds the old status",
    },
    TypeRow {
        kind: EventType::PurchaseCreated,
        name: "purchase.created",
        object: "purchase",
        meaning: "a purchase was recorded",
    },
    TypeRow {
        kind: EventType::PurchaseRefunded,
        name: "purchase.refunded",
        object: "purchase",
        meaning: "a purchase was refunded, in full or in part",
    },
    TypeRow {
        kind: EventType::LoyaltyPointsChanged,
        name: "loyalty.points_changed",
        object: "loyalty_member",
        meaning: "a member's points balance changed (earned, redeemed, adjusted, expired); \
                  `previous` holds the old balance",
    },
    TypeRow {
        kind: EventType::LoyaltyTierChanged,
        name: "loyalty.tier_changed",
        object: "loyalty_member",
        meaning: "a member moved to another tier; `previous` holds the old tier",
    },
    TypeRow {
        kind: EventType::SurveyResponseCreated,
        name: "survey.response_created",
        object: "survey_response",
        meaning: "a customer answered a survey",
    },
    TypeRow {
        kind: EventType::ImportCompleted,
        name: "import.completed",
        object: "import",
        meaning: "a bulk import finished (succeeded or failed), with its counts",
    },
    TypeRow {
        kind: EventType::OpportunityCreated,
        name: "opportunity.created",
        object: "opportunity",
        meaning: "a sales opportunity was created",
    },
    TypeRow {
        kind: EventType::OpportunityUpdated,
        name: "opportunity.updated",
        object: "opportunity",
        meaning: "an opportunity changed (its stage, status, amount …); `previous` holds the \
                  old values",
    },
    TypeRow {
        kind: EventType::OpportunityDeleted,
        name: "opportunity.deleted",
        object: "opportunity",
        meaning: "an opportunity was deleted",
    },
    TypeRow {
        kind: EventType::ContactLinked,
        name: "contact.linked",
        object: "contact",
        meaning: "a person was linked to an organization as one of its contacts",
    },
    TypeRow {
        kind: EventType::ContactUpdated,
        name: "contact.updated",
        object: "contact",
        meaning: "a contact link changed (title, buying roles, primary, ended …); `previous` \
                  holds the old values",
    },
    TypeRow {
        kind: EventType::ContactUnlinked,
        name: "contact.unlinked",
        object: "contact",
        meaning: "a contact link was removed (recorded by mistake); the object is the link as \
                  it was",
    },
    TypeRow {
        kind: EventType::WebhookPing,
        name: "webhook.ping",
        object: "webhook",
        meaning: "sent by `POST /v1/webhooks/{id}/test` only; never in the feed",
    },
];

impl EventType {
    fn row(self) -> &'static TypeRow {
        // Every variant has its row; the test below keeps it so.
        TYPES.iter().find(|r| r.kind == self).unwrap_or(&TYPES[0])
    }

    pub fn name(self) -> &'static str {
        self.row().name
    }

    pub fn object(self) -> &'static str {
        self.row().object
    }

    /// The type named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        TYPES.iter().find(|r| r.name == name).map(|r| r.kind)
    }

    /// A type a subscription or the feed may name, or why `name` is not one.
    pub fn named(name: &str) -> Result<Self, String> {
        match Self::parse(name) {
            Some(kind) if kind != EventType::WebhookPing => Ok(kind),
            _ => Err(format!(
                "{name:?} is not an event type; use {}",
                Self::subscribable().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// Types a subscription or the feed may name (the ping is sent on request only).
    pub fn subscribable() -> impl Iterator<Item = &'static str> {
        TYPES
            .iter()
            .filter(|r| r.kind != EventType::WebhookPing)
            .map(|r| r.name)
    }
}

/// One event about to be written.
pub struct NewEvent {
    pub kind: EventType,
    /// Id of the object (the `object_type` comes with the kind).
    pub object_id: String,
    /// The object as the API shows it after the change.
    pub data: Value,
    /// Changed fields' values before the change, where the event is about a change.
    pub previous: Option<Value>,
}

impl NewEvent {
    pub fn new(kind: EventType, object_id: impl ToString, data: &impl Serialize) -> Self {
        Self {
            kind,
            object_id: object_id.to_string(),
            data: serde_json::to_value(data).unwrap_or(Value::Null),
            previous: None,
        }
    }

    /// Adds the old values, from an audit diff (`{"field": {"from": a, "to": b}}`).
    pub fn previous_from_diff(mut self, diff: &Value) -> Self {
        if let Value::Object(fields) = diff {
            let previous: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| (k.clone(), v.get("from").cloned().unwrap_or(Value::Null)))
                .collect();
            self.previous = Some(Value::Object(previous));
        }
        self
    }

    /// Adds the old values as given.
    pub fn previous(mut self, previous: Value) -> Self {
        self.previous = Some(previous);
        self
    }
}

/// Empties the data of every event about these objects (erasure of personal data): the event
/// stays, with `{"id": …}` only, and so do webhook deliveries of it.
pub async fn forget(
    conn: &mut AsyncPgConnection,
    object_type: &str,
    object_ids: &[String],
) -> QueryResult<()> {
    store::forget(conn, object_type, object_ids).await
}

/// Events past their retention, at `now`, go; returns how many. A month wholly past it is
/// dropped as a partition (with the finished deliveries of its events), each month in its own
/// short transaction, unless a delivery still waits for one of its events. Detaching a
/// partition locks its table ACCESS EXCLUSIVE: a month waits at most
/// [`MONTH_LOCK_TIMEOUT`] for its tables and is otherwise kept for the next run, so that
/// every write (each writes an event) never queues behind retention waiting on a long
/// transaction. Then the events past it in the remaining partitions (the rows from before
/// partitioning, and a month partly past) are deleted row by row, except those a delivery
/// waits for.
pub async fn prune(
    conn: &mut AsyncPgConnection,
    retention: std::time::Duration,
    now: DateTime<Utc>,
) -> QueryResult<usize> {
    // A retention reaching back before any representable time keeps everything.
    let Some(cutoff) = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|kept| now.checked_sub_signed(kept))
    else {
        return Ok(0);
    };
    let mut total = 0;
    for month in store::months_before(conn, cutoff).await? {
        let dropped = conn
            .transaction(async |conn| {
                crate::db::wait_for_locks_at_most(conn, MONTH_LOCK_TIMEOUT).await?;
                if store::month_awaited(conn, &month).await? {
                    return Ok(0);
                }
                store::drop_month(conn, &month).await
            })
            .await;
        match dropped {
            Ok(n) => total += n,
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("lock timeout") =>
            {
                tracing::info!(month = %month.name, "an old month of events waits for the next run: its tables are busy");
            }
            Err(err) => return Err(err),
        }
    }
    Ok(total + store::prune(conn, cutoff).await?)
}

/// How long retention waits for the locks that dropping a month of events takes.
pub const MONTH_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_has_one_row_and_a_unique_name() {
        let kinds = [
            EventType::CustomerCreated,
            EventType::CustomerUpdated,
            EventType::CustomerDeleted,
            EventType::CustomerRestored,
            EventType::CustomerErased,
            EventType::CustomerLifecycleChanged,
            EventType::InteractionCreated,
            EventType::InteractionUpdated,
            EventType::ComplaintStatusChanged,
            EventType::PurchaseCreated,
            EventType::PurchaseRefunded,
            EventType::LoyaltyPointsChanged,
            EventType::LoyaltyTierChanged,
            EventType::SurveyResponseCreated,
            EventType::ImportCompleted,
            EventType::OpportunityCreated,
            EventType::OpportunityUpdated,
            EventType::OpportunityDeleted,
            EventType::ContactLinked,
            EventType::ContactUpdated,
            EventType::ContactUnlinked,
            EventType::WebhookPing,
        ];
        for kind in kinds {
            assert_eq!(TYPES.iter().filter(|r| r.kind == kind).count(), 1);
            assert_eq!(EventType::parse(kind.name()), Some(kind));
        }
        let mut names: Vec<_> = TYPES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TYPES.len());
        assert_eq!(EventType::subscribable().count(), TYPES.len() - 1);
    }

    #[test]
    fn previous_takes_the_old_values_of_a_diff() {
        let diff = serde_json::json!({"name": {"from": "A", "to": "B"}, "tags": {"to": ["x"]}});
        let event = NewEvent::new(EventType::CustomerUpdated, "c1", &serde_json::json!({}))
            .previous_from_diff(&diff);
        assert_eq!(
            event.previous,
            Some(serde_json::json!({"name": "A", "tags": null}))
        );
    }
}
