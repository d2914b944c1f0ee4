use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::patch::Patch;

/// A subscription: where events go, which ones, and how delivery stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    /// Webhook id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub id: Uuid,
    /// Where events are POSTed.
    #[schema(example = "https://hooks.example.com/rapport")]
    pub url: String,
    /// What the subscription is for.
    #[schema(example = "Sync customers to the billing system")]
    pub description: Option<String>,
    /// Event types delivered; empty means every type.
    #[schema(example = json!(["customer.created", "customer.updated"]))]
    pub event_types: Vec<String>,
    #[schema(schema_with = filter_schema)]
    pub filter: Option<Map<String, Value>>,
    /// Whether events are delivered. Turned off by hand, or automatically after sustained
    /// failure (then `disabled_reason` says why). Events keep being queued while off and are
    /// delivered in order once it is on again.
    #[schema(example = true)]
    pub active: bool,
    /// Why delivery was turned off automatically, if it was.
    #[schema(example = "no successful delivery for 24h; last attempt: HTTP 500")]
    pub disabled_reason: Option<String>,
    /// When delivery was turned off automatically.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub disabled_at: Option<DateTime<Utc>>,
    /// Until when the previous secret also signs, after a rotation.
    #[schema(example = "2026-11-24T10:15:00Z")]
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// The signing secret: only in the answer to creation and to rotation, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: Option<String>,
    /// Version, for `If-Match`.
    #[schema(example = 1)]
    pub version: i64,
    /// When the webhook was created.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// When the webhook last changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
}

fn filter_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "Only events whose object contains this JSON (PostgreSQL `@>`: every key given must \
         be present with an equal value, nested objects and arrays by containment). `null`: \
         every event of the chosen types.",
        serde_json::json!({"type": "complaint"}),
        true,
    )
}

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// An `https://` (or `http://`) URL on a public address; loopback, private and
    /// link-local addresses are refused unless the operator allows them.
    #[schema(example = "https://hooks.example.com/rapport")]
    pub url: String,
    /// Up to 2000 characters.
    #[schema(example = "Sync customers to the billing system", max_length = 2000)]
    pub description: Option<String>,
    /// Event types to deliver; absent or empty for all.
    #[schema(example = json!(["customer.created", "customer.updated"]))]
    pub event_types: Option<Vec<String>>,
    #[schema(schema_with = filter_schema)]
    pub filter: Option<Map<String, Value>>,
    /// Deliver from now on (default) or create it switched off.
    #[schema(example = true)]
    pub active: Option<bool>,
}

/// Changes to a webhook (JSON merge patch: absent leaves a field, `null` clears it).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    /// A new URL, checked as on creation.
    #[serde(default)]
    #[schema(value_type = String, example = "https://hooks.example.com/rapport-v2")]
    pub url: Patch<String>,
    /// Up to 2000 characters; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Billing sync", max_length = 2000)]
    pub description: Patch<String>,
    /// The whole new list; empty or `null` for all types.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, example = json!(["purchase.created"]))]
    pub event_types: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(value_type = Option<Object>, schema_with = filter_schema)]
    pub filter: Patch<Map<String, Value>>,
    /// `true` turns delivery back on (also after an automatic disabling, clearing the
    /// reason); `false` pauses it.
    #[serde(default)]
    #[schema(value_type = bool, example = true)]
    pub active: Patch<bool>,
}

/// How long the old secret keeps signing after a rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Hours, 0 to 168 (a week); 24 by default. During the overlap every delivery carries a
    /// signature under each secret, so receivers can switch at their own pace.
    #[schema(minimum = 0, maximum = 168, example = 24)]
    pub overlap_hours: Option<i64>,
}

/// One attempt to deliver.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    /// When the request was sent.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; `null` when no answer came (timeout, refused).
    #[schema(example = 500)]
    pub status_code: Option<i32>,
    /// From sending to the answer (or to giving up), in milliseconds.
    #[schema(example = 87)]
    pub latency_ms: i32,
    /// What went wrong, when it did.
    #[schema(example = "HTTP 500")]
    pub error: Option<String>,
}

/// `pending` (queued or waiting for a retry), `succeeded` (a 2xx came back) or `failed`
/// (retries ran out, the receiver answered 410 Gone, or it was a test ping that failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Self {
        match text {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One event's delivery to one webhook, with every attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// Delivery id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub id: Uuid,
    /// The event delivered (sent as `webhook-id`).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub event_id: Uuid,
    /// Its type.
    #[schema(example = "customer.created")]
    pub event_type: String,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    #[schema(example = 2)]
    pub attempt_count: i32,
    /// When the next attempt is due (pending deliveries; later ones of the same webhook wait
    /// for this one, to keep the order).
    #[schema(example = "2026-11-23T10:16:00Z")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The status of the last answer.
    #[schema(example = 500)]
    pub last_status_code: Option<i32>,
    /// The last attempt's latency in milliseconds.
    #[schema(example = 87)]
    pub last_latency_ms: Option<i32>,
    /// The last attempt's error.
    #[schema(example = "HTTP 500")]
    pub last_error: Option<String>,
    /// The delivery this one replays, if it is a replay.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5c")]
    pub replay_of: Option<Uuid>,
    /// When it was queued.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it succeeded or finally failed.
    #[schema(example = "2026-11-23T10:15:01Z")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Every attempt, oldest first.
    pub attempts: Vec<Attempt>,
}

/// Which deliveries; newest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries of this event.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub event_id: Option<Uuid>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Which webhooks; oldest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WebhooksQuery {
    /// Only active (`true`) or inactive (`false`) webhooks.
    #[param(example = true)]
    pub active: Option<bool>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
