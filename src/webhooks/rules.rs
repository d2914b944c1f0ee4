//! Webhooks' rules, without database or HTTP: what a definition may hold (the URL's form;
//! its addresses are looked up by the service), and how long an old secret keeps signing.

use chrono::Duration;
use serde_json::Value;

use super::json::{NewWebhook, WebhookPatch};
use super::store::{Definition, Row};
use super::target;
use crate::domain::{clearable_text, optional_text};
use crate::events::EventType;
use crate::http::error::ApiError;
use crate::http::patch::{self, Patch};
use crate::http::validation::Checks;

/// Largest filter object, serialised.
const MAX_FILTER_BYTES: usize = 4096;

/// A definition from a creation request, every field checked (not yet the URL's addresses).
pub fn validate_new(input: NewWebhook) -> Result<Definition, ApiError> {
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
pub fn apply(current: &Definition, input: WebhookPatch) -> Result<Definition, ApiError> {
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

/// Whether `next` leaves the webhook `before` as it is; turning a disabled webhook back on
/// is a change even when its definition says `active` already.
pub fn changes_nothing(before: &Row, next: &Definition) -> bool {
    let reenabling = next.active && before.disabled_reason.is_some();
    Definition::of(before) == *next && !reenabling
}

/// How long the old secret keeps signing after a rotation: `overlap_hours` from 0 to 168,
/// 24 by default; `None` for 0 (dropped at once).
pub fn overlap(hours: Option<i64>) -> Result<Option<Duration>, ApiError> {
    let hours = hours.unwrap_or(24);
    if !(0..=168).contains(&hours) {
        return Err(ApiError::invalid_field(
            "overlap_hours",
            "must be from 0 to 168",
        ));
    }
    Ok((hours > 0).then(|| Duration::hours(hours)))
}
