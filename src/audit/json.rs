use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// One recorded write.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Event id (UUIDv7: its order is time order).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub id: Uuid,
    /// When the write was committed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub occurred_at: DateTime<Utc>,
    /// `user`, `api_client`, `service` (a `rapport token` or the CLI) or `system`.
    #[schema(example = "user")]
    pub actor_type: String,
    /// Id of the actor: a user or client id, or a service token's subject.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub actor_id: String,
    /// What was done, as `entity.verb`.
    #[schema(example = "user.created")]
    pub action: String,
    /// Kind of the entity written.
    #[schema(example = "user")]
    pub entity_type: String,
    /// Id of the entity written.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000002")]
    pub entity_id: String,
    #[schema(schema_with = changes_schema)]
    pub changes: serde_json::Value,
    /// The `X-Request-Id` of the request that made the write.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub request_id: Option<String>,
}

fn changes_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "Changed fields as `{\"field\": {\"from\": old, \"to\": new}}` (`from` absent on \
         creation); sensitive values appear masked or as `[redacted]`. Always an object: `{}` when \
         nothing is recorded (a deletion), `{\"erased\": true}` after erasure.",
        serde_json::json!({"role": {"from": "agent", "to": "manager"}}),
        false,
    )
}

/// Filters of the audit log; all optional, combined with AND. Newest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only events on this kind of entity.
    #[param(example = "user")]
    pub entity_type: Option<String>,
    /// Only events on this entity (use with `entity_type`).
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub entity_id: Option<String>,
    /// Only events by this kind of actor.
    #[param(example = "user")]
    pub actor_type: Option<String>,
    /// Only events by this actor.
    #[param(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub actor_id: Option<String>,
    /// Only this action.
    #[param(example = "user.updated")]
    pub action: Option<String>,
    /// Only events written by this request.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub request_id: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub occurred_after: Option<DateTime<Utc>>,
    /// Only events before this time (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub occurred_before: Option<DateTime<Utc>>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
