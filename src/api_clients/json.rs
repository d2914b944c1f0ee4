use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::store::ClientRecord;
use crate::auth::Scope;
use crate::http::patch::Patch;

/// An integration client.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiClient {
    /// Client id: send it as `client_id` to `POST /v1/auth/token`.
    #[schema(example = "0193b0a6-0000-7000-8000-00000000c1e7")]
    pub id: Uuid,
    /// Name of the integration, unique among active clients.
    #[schema(example = "Webshop")]
    pub name: String,
    /// What the integration is for.
    #[schema(example = "Pushes orders and customers from the webshop")]
    pub description: Option<String>,
    /// What the client may do.
    pub scopes: Vec<Scope>,
    /// Who created it (`user:<id>`, `service:<name>`).
    #[schema(example = "user:0193b0a6-0000-7000-8000-000000000001")]
    pub created_by: String,
    /// When it was revoked; a revoked client cannot get tokens and its tokens stop working.
    #[schema(example = json!(null))]
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it last exchanged its secret for a token.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the client was created.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// When the client last changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
    /// Its own request limit, requests per window (`1200/60s`) or `off`; `null` takes the
    /// service's default (`RAPPORT_RATE_LIMIT`).
    #[schema(example = json!(null))]
    pub rate_limit: Option<String>,
}

impl From<ClientRecord> for ApiClient {
    fn from(r: ClientRecord) -> Self {
        ApiClient {
            id: r.id,
            name: r.name,
            description: r.description,
            scopes: r
                .scopes
                .into_iter()
                .flatten()
                .filter_map(|s| s.parse().ok())
                .collect(),
            created_by: r.created_by,
            revoked_at: r.revoked_at,
            last_used_at: r.last_used_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
            rate_limit: r.rate_limit,
        }
    }
}

/// A new client, with its secret: the only time the secret is ever shown.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiClient {
    #[serde(flatten)]
    pub client: ApiClient,
    /// The client secret. Store it now: it cannot be shown again.
    #[schema(example = "rps_q2x8Yw3k0bG7pWc9V4nLr1TzHfM6dJsA5eU8oKiQyXc")]
    pub client_secret: String,
}

/// A new integration client.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiClient {
    /// Name of the integration, 1 to 200 characters.
    #[schema(example = "Webshop", min_length = 1, max_length = 200)]
    pub name: String,
    /// What the integration is for, up to 2000 characters.
    #[schema(
        example = "Pushes orders and customers from the webshop",
        max_length = 2000
    )]
    pub description: Option<String>,
    /// What it may do; `users:write` and `api_clients:manage` are for staff only.
    #[schema(example = json!(["customers:read", "customers:write"]), min_items = 1)]
    pub scopes: Vec<Scope>,
    /// Its own request limit instead of the default: requests per window from 1s to 1d
    /// (`1200/60s`), or `off`. Counted per instance.
    #[schema(example = "1200/60s")]
    pub rate_limit: Option<String>,
}

/// Changes to a client (JSON merge patch): absent fields stay as they are. The secret
/// cannot be changed: create a new client and revoke this one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClientPatch {
    /// New name, 1 to 200 characters, unique among active clients.
    #[serde(default)]
    #[schema(value_type = String, example = "Webshop", min_length = 1, max_length = 200)]
    pub name: Patch<String>,
    /// New description, up to 2000 characters; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Pushes orders from the webshop", max_length = 2000)]
    pub description: Patch<String>,
    /// The new full list of scopes, at least one. A change ends the tokens the client holds:
    /// it must fetch a new one, which carries the new scopes.
    #[serde(default)]
    #[schema(value_type = Vec<Scope>, example = json!(["customers:read"]), min_items = 1)]
    pub scopes: Patch<Vec<Scope>>,
    /// Its own request limit (`1200/60s`, or `off`); `null` returns it to the default.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "1200/60s")]
    pub rate_limit: Patch<String>,
}

/// Filters of the client list; ordered by creation, oldest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ApiClientsQuery {
    /// Only revoked (`true`) or usable (`false`) clients.
    pub revoked: Option<bool>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
