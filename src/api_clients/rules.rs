//! API clients' rules, without database or HTTP: what a client may hold (a patch is checked
//! by the rules of creation) and when it may change.

use super::json::{ApiClient, ApiClientPatch, NewApiClient};
use super::store::ClientUpdate;
use crate::auth::Scope;
use crate::domain::RateLimit;
use crate::domain::{optional_text, required_text};
use crate::http::error::ApiError;
use crate::http::patch::Patch;
use crate::http::validation::Checks;

/// A client whose every field is valid, new or after a patch.
pub struct ValidNewApiClient {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<Scope>,
    pub rate_limit: Option<RateLimit>,
}

impl ValidNewApiClient {
    /// The stored form of the client's changeable fields.
    pub fn into_update(self) -> ClientUpdate {
        ClientUpdate {
            scopes: self.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            rate_limit: self.rate_limit.map(|limit| limit.to_string()),
            name: self.name,
            description: self.description,
        }
    }

    /// Whether `client` already is this (a patch that changes nothing writes nothing).
    pub fn is_unchanged(&self, client: &ApiClient) -> bool {
        self.name == client.name
            && self.description == client.description
            && self.scopes == client.scopes
            && self.rate_limit.map(|limit| limit.to_string()) == client.rate_limit
    }
}

/// A new client, every field checked (all mistakes at once); its scopes sorted, once each.
pub fn validate_new(input: NewApiClient) -> Result<ValidNewApiClient, ApiError> {
    let mut checks = Checks::new();
    let name = checks.check("name", required_text(&input.name, 200));
    let description = checks.check(
        "description",
        optional_text(input.description.as_deref(), 2000),
    );
    if input.scopes.is_empty() {
        checks.fail("scopes", "must list at least one scope");
    }
    for (i, scope) in input.scopes.iter().enumerate() {
        if !scope.for_clients() {
            checks.fail(
                &format!("scopes[{i}]"),
                format!("`{scope}` cannot be given to an integration client"),
            );
        }
    }
    let rate_limit = match input.rate_limit.as_deref().map(RateLimit::parse) {
        None => Some(None),
        Some(Some(limit)) => Some(Some(limit)),
        Some(None) => {
            checks.fail(
                "rate_limit",
                "must be requests per window from 1s to 1d, such as 1200/60s, or off",
            );
            None
        }
    };
    let mut scopes = input.scopes;
    scopes.sort();
    scopes.dedup();
    let valid = match (name, description, rate_limit) {
        (Some(name), Some(description), Some(rate_limit)) => Some(ValidNewApiClient {
            name,
            description,
            scopes,
            rate_limit,
        }),
        _ => None,
    };
    checks.done(valid)
}

/// The client as it would be after the patch, checked by the rules of creation. A revoked
/// client cannot change (`409`).
pub fn apply(patch: ApiClientPatch, current: &ApiClient) -> Result<ValidNewApiClient, ApiError> {
    if current.revoked_at.is_some() {
        return Err(ApiError::conflict(
            "the client is revoked and cannot change; create a new one",
        ));
    }
    let mut checks = Checks::new();
    let name = checks.check("name", patch.name.required()).flatten();
    let scopes = checks.check("scopes", patch.scopes.required()).flatten();
    checks.finish()?;
    let keep_or = |patch: Patch<String>, current: &Option<String>| match patch {
        Patch::Absent => current.clone(),
        Patch::Null => None,
        Patch::Value(value) => Some(value),
    };
    validate_new(NewApiClient {
        name: name.unwrap_or_else(|| current.name.clone()),
        description: keep_or(patch.description, &current.description),
        scopes: scopes.unwrap_or_else(|| current.scopes.clone()),
        rate_limit: keep_or(patch.rate_limit, &current.rate_limit),
    })
}
