use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Role, Scope};

/// A token request: a staff user's email and password, or an integration client's id and
/// secret (OAuth 2.0 `password` and `client_credentials` grants, as JSON).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TokenRequest {
    /// Sign in as a staff user.
    Password {
        /// The staff user's sign-in email.
        #[schema(example = "ada@example.com")]
        email: String,
        /// The staff user's password.
        #[schema(example = "correct horse battery staple", format = Password)]
        password: String,
    },
    /// Authenticate an integration client.
    ClientCredentials {
        /// The integration client's id.
        #[schema(example = "0193b0a6-0000-7000-8000-00000000c1e7")]
        client_id: String,
        /// The secret shown when the client was created.
        #[schema(example = "rps_q2x8Yw3k0bG7pWc9V4nLr1TzHfM6dJsA5eU8oKiQyXc", format = Password)]
        client_secret: String,
    },
}

/// A bearer token for the `Authorization` header.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIuLi4ifQ.c2lnbmF0dXJl")]
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 1800)]
    pub expires_in: i64,
    /// When the token expires.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub expires_at: DateTime<Utc>,
}

/// The caller, as their token identifies them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// `user` (staff), `api_client` (integration) or `service` (a token from `rapport token`).
    #[schema(example = "user")]
    pub kind: &'static str,
    /// User or client id, or the service token's subject.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub id: String,
    /// Name of the user or client; the subject for a service token.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The user's email (users only).
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    /// Role of a user or service token; absent for clients.
    pub role: Option<Role>,
    /// Everything the caller may do.
    pub scopes: Vec<Scope>,
    /// Which customers the caller reaches: a user's `access` (`all` or `owned`, only the
    /// customers they manage); integration clients and service tokens always `all`.
    pub access: crate::auth::AccessLevel,
    /// When the token presented expires.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub token_expires_at: DateTime<Utc>,
}
