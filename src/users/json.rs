use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::store::UserRecord;
use crate::auth::{AccessLevel, Role};
use crate::domain::{Email, Password, required_text};
use crate::http::error::ApiError;
use crate::http::patch::Patch;
use crate::http::validation::Checks;

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
    /// What the user may do (see the README's roles table).
    pub role: Role,
    /// Which customers the user reaches: `all`, or `owned` (only those whose
    /// `account_manager_id` is this user; see the README's "Owned-only access").
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
            email: r.email,
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

/// `422` on `access` when an admin would be limited to their own customers.
pub fn check_access(role: Role, access: AccessLevel) -> Result<(), String> {
    if role == Role::Admin && access == AccessLevel::Owned {
        Err("cannot be `owned` for an admin; admins reach every customer".to_owned())
    } else {
        Ok(())
    }
}

/// A new user whose every field is valid.
#[derive(Debug)]
pub struct ValidNewUser {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub access: AccessLevel,
    pub password: Option<Password>,
}

impl NewUser {
    pub fn validate(self) -> Result<ValidNewUser, ApiError> {
        let mut checks = Checks::new();
        let email = checks.check("email", Email::parse(&self.email));
        let name = checks.check("name", required_text(&self.name, 200));
        let password = match self.password {
            Some(p) => checks.check("password", Password::parse(p)).map(Some),
            None => Some(None),
        };
        let access = self.access.unwrap_or(AccessLevel::All);
        let access = checks
            .check("access", check_access(self.role, access))
            .map(|()| access);
        let valid = match (email, name, password, access) {
            (Some(email), Some(name), Some(password), Some(access)) => Some(ValidNewUser {
                email,
                name,
                role: self.role,
                access,
                password,
            }),
            _ => None,
        };
        checks.done(valid)
    }
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

/// Validated changes to a user.
#[derive(Debug, Default)]
pub struct UserChanges {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub access: Option<AccessLevel>,
    pub password: Option<Password>,
}

impl UserPatch {
    pub fn validate(self) -> Result<UserChanges, ApiError> {
        let mut checks = Checks::new();
        let mut changes = UserChanges::default();
        if let Some(Some(email)) = checks.check("email", self.email.required()) {
            changes.email = checks.check("email", Email::parse(&email));
        }
        if let Some(Some(name)) = checks.check("name", self.name.required()) {
            changes.name = checks.check("name", required_text(&name, 200));
        }
        if let Some(role) = checks.check("role", self.role.required()) {
            changes.role = role;
        }
        if let Some(access) = checks.check("access", self.access.required()) {
            changes.access = access;
        }
        if let Some(Some(password)) = checks.check("password", self.password.required()) {
            changes.password = checks.check("password", Password::parse(password));
        }
        checks.finish()?;
        Ok(changes)
    }
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
