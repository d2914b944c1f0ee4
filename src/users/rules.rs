//! Users' rules, without database or HTTP: what a new user and a change may hold, and what
//! a change does (an admin lost, an activity change, nothing at all).

use super::json::{NewUser, User, UserPatch};
use super::store::UserUpdate;
use crate::auth::{AccessLevel, Role};
use crate::domain::{Email, Password, required_text};
use crate::http::error::ApiError;
use crate::http::validation::Checks;

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

/// A new user, every field checked (all mistakes at once).
pub fn validate_new(input: NewUser) -> Result<ValidNewUser, ApiError> {
    let mut checks = Checks::new();
    let email = checks.check("email", Email::parse(&input.email));
    let name = checks.check("name", required_text(&input.name, 200));
    let password = match input.password {
        Some(p) => checks.check("password", Password::parse(p)).map(Some),
        None => Some(None),
    };
    let access = input.access.unwrap_or(AccessLevel::All);
    let access = checks
        .check("access", check_access(input.role, access))
        .map(|()| access);
    let valid = match (email, name, password, access) {
        (Some(email), Some(name), Some(password), Some(access)) => Some(ValidNewUser {
            email,
            name,
            role: input.role,
            access,
            password,
        }),
        _ => None,
    };
    checks.done(valid)
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

/// The changes a merge patch asks for, every field checked (all mistakes at once).
pub fn validate_patch(patch: UserPatch) -> Result<UserChanges, ApiError> {
    let mut checks = Checks::new();
    let mut changes = UserChanges::default();
    if let Some(Some(email)) = checks.check("email", patch.email.required()) {
        changes.email = checks.check("email", Email::parse(&email));
    }
    if let Some(Some(name)) = checks.check("name", patch.name.required()) {
        changes.name = checks.check("name", required_text(&name, 200));
    }
    if let Some(role) = checks.check("role", patch.role.required()) {
        changes.role = role;
    }
    if let Some(access) = checks.check("access", patch.access.required()) {
        changes.access = access;
    }
    if let Some(Some(password)) = checks.check("password", patch.password.required()) {
        changes.password = checks.check("password", Password::parse(password));
    }
    checks.finish()?;
    Ok(changes)
}

/// The activity a request to (de)activate `user` changes to; `None` when the user already
/// is so, or none was asked.
pub fn activity_change(user: &User, wanted: Option<bool>) -> Option<bool> {
    wanted.filter(|&active| active != user.active)
}

/// Whether `update` takes an active admin away (deactivates or demotes them); the last one
/// may not go.
pub fn loses_admin(before: &User, update: &UserUpdate) -> bool {
    before.role == Role::Admin
        && before.active
        && (update.active == Some(false) || update.role.is_some_and(|r| r != Role::Admin))
}

/// `422` on `access` when the user after `update` would be an admin limited to their own
/// customers.
pub fn check_access_after(before: &User, update: &UserUpdate) -> Result<(), ApiError> {
    let role = update.role.unwrap_or(before.role);
    let access = update.access.unwrap_or(before.access);
    check_access(role, access).map_err(|message| ApiError::invalid_field("access", message))
}

/// Whether `update` leaves `before` as it is (then nothing is written nor audited).
pub fn changes_nothing(before: &User, update: &UserUpdate) -> bool {
    update
        .email
        .as_ref()
        .is_none_or(|e| e.as_str() == before.email)
        && update.name.as_deref().is_none_or(|n| n == before.name)
        && update.role.is_none_or(|r| r == before.role)
        && update.access.is_none_or(|a| a == before.access)
        && update.password_hash.is_none()
        && update.active.is_none()
}

/// The audit action of `update`: an activity change names itself.
pub fn action(update: &UserUpdate) -> &'static str {
    match update.active {
        Some(false) => "user.deactivated",
        Some(true) => "user.reactivated",
        None => "user.updated",
    }
}
