use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::store::UserRecord;
use crate::auth::{AccessLevel, Role};
use crate::http::patch::Patch;

/// A staff user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    /// User id (UUIDv7).
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub id: Uuid,
    /// Sign-in email, unique whatever its case.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Display name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// What the user may do (see the roles table in docs/security.md).
    pub role: Role,
    /// Which customers the user reaches: `all`, or `owned` (only those whose
    /// `account_manager_id` is this user; see "Owned-only access" in docs/security.md).
    pub access: AccessLevel,
    /// Whether the user may sign in; deactivated users' tokens stop working at once.
    pub active: bool,
    /// Whether a password is set (a user without one cannot sign in yet).
    pub has_password: bool,
    /// When the user was deactivated, if they are.
    #[schema(example = json!(null))]
    pub deactivated_at: Option<DateTime<Utc>>,
    /// When the user was created.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        User {
            id: r.id,
            email: r.email.into_inner(),
            name: r.name,
            role: r.role,
            access: r.access,
            active: r.active,
            has_password: r.has_password,
            deactivated_at: r.deactivated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// A new staff user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Sign-in email.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Display name, 1 to 200 characters.
    #[schema(example = "Ada Lovelace", min_length = 1, max_length = 200)]
    pub name: String,
    /// What the user may do.
    pub role: Role,
    /// Which customers the user reaches: `all` (the default, also when `null`) or `owned`,
    /// only the customers they manage and what hangs off them. An admin always reaches all: `owned` with
    /// `role: admin` is refused (`422`).
    #[serde(default)]
    pub access: Option<AccessLevel>,
    /// Initial password, 12 to 256 characters; without one the user cannot sign in yet.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 12, max_length = 256)]
    pub password: Option<String>,
}

/// Changes to a user (JSON merge patch): absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New sign-in email.
    #[serde(default)]
    #[schema(value_type = String, example = "ada@example.org")]
    pub email: Patch<String>,
    /// New display name.
    #[serde(default)]
    #[schema(value_type = String, example = "Ada King", min_length = 1, max_length = 200)]
    pub name: Patch<String>,
    /// New role; the last active admin cannot be demoted. Making an `owned` user admin needs
    /// `access: all` too (`422` otherwise).
    #[serde(default)]
    #[schema(value_type = Role)]
    pub role: Patch<Role>,
    /// New access: `all` or `owned` (not for an admin: `422`). A change ends the user's
    /// tokens at once, like a role change.
    #[serde(default)]
    #[schema(value_type = Option<AccessLevel>)]
    pub access: Patch<AccessLevel>,
    /// New password, 12 to 256 characters.
    #[serde(default)]
    #[schema(value_type = String, format = Password, example = "a new long passphrase", min_length = 12, max_length = 256)]
    pub password: Patch<String>,
}

/// Filters of the user list; ordered by creation, oldest first.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only active (`true`) or deactivated (`false`) users.
    pub active: Option<bool>,
    /// Only users whose name or email contains this text (any case).
    #[param(example = "ada")]
    pub q: Option<String>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
