//! Webhooks: subscriptions to events (`crate::events`), delivered by a background worker,
//! signed (Standard Webhooks), one at a time and in event order per webhook, retried with
//! exponential backoff and jitter for `RAPPORT_WEBHOOK_RETRY_FOR`, disabled after that with
//! the reason kept, and replayable. Admins manage them at `/v1/webhooks`.

mod delivery;
mod json;
mod routes;
mod signature;
mod store;
mod target;

use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::audit;
use crate::auth::Actor;
use crate::domain::{clearable_text, optional_text};
use crate::events::EventType;
use crate::http::error::ApiError;
use crate::http::patch::{self, Patch};
use crate::http::validation::Checks;

pub use delivery::{Sender, schedule};
pub use routes::configure;

use json::{NewWebhook, WebhookPatch};
use store::Definition;

/// Largest filter object, serialised.
const MAX_FILTER_BYTES: usize = 4096;

/// A definition from a creation request, every field checked (not yet the URL's addresses).
fn create(input: NewWebhook) -> Result<Definition, ApiError> {
    let mut checks = Checks::new();
    let definition = Definition {
        url: checks.check("url", url(&input.url)).unwrap_or_default(),
        description: checks
            .check(
                "description",
                optional_text(input.description.as_deref(), 2000),
            )
            .flatten(),
        event_types: event_types(&mut checks, input.event_types.unwrap_or_default()),
        filter: input.filter.map(Value::Object),
        active: input.active.unwrap_or(true),
    };
    filter_size(&mut checks, &definition);
    checks.finish()?;
    Ok(definition)
}

/// The definition after a merge patch, every field checked.
fn change(current: &Definition, input: WebhookPatch) -> Result<Definition, ApiError> {
    let mut checks = Checks::new();
    let mut next = current.clone();
    if let Some(text) = checks.check("url", input.url.required()).flatten() {
        next.url = checks.check("url", url(&text)).unwrap_or_default();
    }
    patch::nullable(
        &mut checks,
        "description",
        input.description,
        &mut next.description,
        clearable_text(2000),
    );
    match input.event_types {
        Patch::Absent => {}
        Patch::Null => next.event_types = Vec::new(),
        Patch::Value(types) => next.event_types = event_types(&mut checks, types),
    }
    match input.filter {
        Patch::Absent => {}
        Patch::Null => next.filter = None,
        Patch::Value(map) => next.filter = Some(Value::Object(map)),
    }
    if let Some(active) = checks.check("active", input.active.required()).flatten() {
        next.active = active;
    }
    filter_size(&mut checks, &next);
    checks.finish()?;
    Ok(next)
}

fn url(text: &str) -> Result<String, String> {
    if text.len() > 2000 {
        return Err("must be at most 2000 characters".to_owned());
    }
    target::parse(text).map(|u| u.to_string())
}

fn event_types(checks: &mut Checks, names: Vec<String>) -> Vec<String> {
    let mut kept: Vec<String> = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        match EventType::named(&name) {
            Ok(_) if kept.contains(&name) => {}
            Ok(_) => kept.push(name),
            Err(message) => checks.fail(&format!("event_types[{i}]"), message),
        }
    }
    kept
}

fn filter_size(checks: &mut Checks, definition: &Definition) {
    if let Some(filter) = &definition.filter
        && filter.to_string().len() > MAX_FILTER_BYTES
    {
        checks.fail(
            "filter",
            format!("must be at most {MAX_FILTER_BYTES} bytes of JSON"),
        );
    }
}

/// Turns a webhook off for a reason, with an audit entry; nothing when it was already off.
async fn disable(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
    actor: &Actor,
) -> QueryResult<()> {
    if store::disable(conn, id, reason).await? {
        audit::record(
            conn,
            actor,
            "webhook.disabled",
            "webhook",
            &id.to_string(),
            json!({"active": {"from": true, "to": false}, "disabled_reason": {"to": reason}}),
        )
        .await?;
    }
    Ok(())
}
