use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One event: what happened, to which object, and the object as it was after.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// Event id; a webhook delivers it as `webhook-id`, the same on every retry and replay,
    /// so receivers can drop duplicates by it.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub id: Uuid,
    /// Event type (see the Events tag for the list).
    #[schema(example = "customer.updated")]
    #[serde(rename = "type")]
    pub type_: String,
    /// When the change was made (its transaction's time).
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub occurred_at: DateTime<Utc>,
    /// Kind of object in `data`.
    #[schema(example = "customer")]
    pub object_type: String,
    /// Id of the object.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000002")]
    pub object_id: String,
    #[schema(schema_with = data_schema)]
    pub data: serde_json::Value,
    #[schema(schema_with = previous_schema)]
    pub previous: Option<serde_json::Value>,
    /// The `X-Request-Id` of the request that made the change, if any.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub request_id: Option<String>,
}

/// Why a customer's stage moved: the key `lifecycle_change` that a
/// `customer.lifecycle_changed` event adds to the customer in its `data`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LifecycleChangeNote {
    /// The move's free-text reason (`lifecycle_reason` of the change, or the reason the
    /// system gave for a move it made); `null` when none was given.
    #[schema(example = "no purchase for six months")]
    pub reason: Option<String>,
    /// The move's reason code (`reason_code`): given with every move into `dissolution` or
    /// `churned`, `null` for other moves.
    pub reason_code: Option<crate::domain::ChurnCause>,
}

fn data_schema() -> utoipa::openapi::schema::Object {
    use utoipa::PartialSchema;
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "The object after the change, exactly as its own endpoint shows it (a customer, \
             interaction, purchase, loyalty member, survey response or import). \
             `customer.lifecycle_changed` adds one key to the customer, `lifecycle_change`: \
             why the stage moved.",
        ))
        .property("lifecycle_change", LifecycleChangeNote::schema())
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .examples([serde_json::json!({
            "id": "0193b0a6-0000-7000-8000-000000000002",
            "name": "Ada Lovelace",
            "lifecycle_stage": "churned",
            "lifecycle_change": {"reason": "moved to a rival", "reason_code": "competitor"},
        })])
        .build()
}

fn previous_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "For changes: the changed fields' values before the change; `null` otherwise.",
        serde_json::json!({"name": "Ada King"}),
        true,
    )
}

/// A page of the feed. Unlike other lists it always carries a cursor: poll again with it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Events in the order they committed.
    pub data: Vec<Event>,
    /// Pass as `cursor` next time; when the page was short, poll with it later.
    #[schema(example = "eyJvIjoiZmVlZCIsImsiOlsxLDJdfQ")]
    pub next_cursor: String,
    /// Whether more events are already waiting (fetch again now).
    #[schema(example = false)]
    pub has_more: bool,
}

/// Where to read from, and which events.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Start after this event (the id of the last event processed).
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub after: Option<Uuid>,
    /// Event types separated by commas; all by default.
    #[serde(rename = "type")]
    #[param(rename = "type", example = "customer.created,customer.updated")]
    pub type_: Option<String>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page (instead of `after`).
    pub cursor: Option<String>,
}
