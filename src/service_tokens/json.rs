use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::store::Row;
pub use super::store::TokenStatus;
use crate::auth::Role;

/// A token minted by `rapport token`, as recorded (never the token itself).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceToken {
    /// The token's id (its `jti` claim).
    #[schema(example = "0193b0a6-0000-7000-8000-0000000000aa")]
    pub jti: String,
    /// Who the token is for, recorded as the actor of what it does.
    #[schema(example = "deploy-script")]
    pub subject: String,
    /// The role it acts with.
    pub role: Role,
    /// The id of the key that signed it.
    #[schema(example = "k0193b0a600007000800000000000000a")]
    pub kid: String,
    /// `active`, `revoked` or `expired`, as of this answer.
    pub status: TokenStatus,
    /// When it was minted.
    #[schema(example = "2026-12-03T08:00:00Z")]
    pub issued_at: DateTime<Utc>,
    /// Who minted it (`service:cli`).
    #[schema(example = "service:cli")]
    pub issued_by: String,
    /// When it stops being accepted.
    #[schema(example = "2026-12-03T08:30:00Z")]
    pub expires_at: DateTime<Utc>,
    /// When it was revoked.
    #[schema(example = json!(null))]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it (`user:<id>`, `service:cli`).
    #[schema(example = json!(null))]
    pub revoked_by: Option<String>,
}

impl From<Row> for ServiceToken {
    fn from(r: Row) -> Self {
        let status = if r.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if r.expires_at <= Utc::now() {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        };
        ServiceToken {
            role: r.role.parse().unwrap_or(Role::Viewer),
            jti: r.jti,
            subject: r.subject,
            kid: r.kid,
            status,
            issued_at: r.issued_at,
            issued_by: r.issued_by,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            revoked_by: r.revoked_by,
        }
    }
}

/// Why a token is revoked; the body of a revocation may be empty.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// Why, kept in the audit log with the revocation (at most 500 characters).
    #[schema(max_length = 500, example = "the deploy script was retired")]
    pub reason: Option<String>,
}

/// Longest revocation reason.
pub const MAX_REASON: usize = 500;

/// Filters of the service token list; in the order they were issued, oldest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceTokensQuery {
    /// Only tokens in this state.
    #[param(inline)]
    pub status: Option<TokenStatus>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
