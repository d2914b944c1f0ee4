//! Contact links written in bulk: each row names its organization and its person by external
//! id, else email, and is then written through the single endpoint's code
//! (`contacts::link`: every rule, its audit row, its `contact.linked` event, the derived
//! authority), each row in a savepoint of its own.

use std::collections::HashMap;

use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use super::{Failure, Outcome, Row, failures, typed};
use crate::auth::{Actor, CustomerAccess};
use crate::contacts::json::ContactInput;
use crate::http::error::{ApiError, ErrorCode};

/// How a row names one side: the column it used and the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    External(String),
    Email(String),
}

/// The side `prefix` (`organization` or `person`) of a row: its external id, else its email,
/// with the column named; taken out of the row's object.
fn side(row: &mut Row, prefix: &str) -> Result<(Key, String), Failure> {
    let mut text = |column: String| match row.object.remove(&column) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some((s.trim().to_owned(), column)),
        _ => None,
    };
    let external = text(format!("{prefix}_external_id"));
    let email = text(format!("{prefix}_email"));
    match (external, email) {
        (Some((id, column)), _) => Ok((Key::External(id), column)),
        (None, Some((email, column))) => Ok((Key::Email(email.to_lowercase()), column)),
        (None, None) => Err(Failure {
            line: row.line,
            field: format!("{prefix}_external_id"),
            message: format!("or `{prefix}_email` is required to name the {prefix}"),
            raw: row.raw.clone(),
        }),
    }
}

/// Checks and writes one batch of contact rows, in `conn`'s transaction (insert only: a link
/// that exists fails its row, as on `POST /v1/customers/{id}/contacts`).
pub async fn import(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    rows: Vec<Row>,
) -> Result<Outcome, ApiError> {
    let mut outcome = Outcome::default();
    let mut named = Vec::with_capacity(rows.len());
    for mut row in rows {
        let organization = side(&mut row, "organization");
        let person = side(&mut row, "person");
        match (organization, person) {
            (Ok(o), Ok(p)) => named.push((row, o, p)),
            (o, p) => outcome
                .failures
                .extend([o.err(), p.err()].into_iter().flatten()),
        }
    }
    // Every side of the batch, in one query.
    let mut externals = Vec::new();
    let mut emails = Vec::new();
    for (_, (o, _), (p, _)) in &named {
        for key in [o, p] {
            match key {
                Key::External(id) => externals.push(id.clone()),
                Key::Email(email) => emails.push(email.clone()),
            }
        }
    }
    let mut found: HashMap<Key, Uuid> = HashMap::new();
    for record in crate::customers::store::by_keys(conn, &externals, &emails).await? {
        if record.deleted_at.is_some() {
            continue;
        }
        if let Some(id) = &record.draft.external_id {
            found.insert(Key::External(id.clone()), record.id);
        }
        if let Some(email) = &record.draft.email {
            found.insert(Key::Email(email.lowercase()), record.id);
        }
    }
    for (row, (o, o_column), (p, p_column)) in named {
        let fail = |field: &str, message: &str| Failure {
            line: row.line,
            field: field.to_owned(),
            message: message.to_owned(),
            raw: row.raw.clone(),
        };
        let (Some(organization), Some(person)) = (found.get(&o), found.get(&p)) else {
            if !found.contains_key(&o) {
                outcome
                    .failures
                    .push(fail(&o_column, "matches no live customer"));
            }
            if !found.contains_key(&p) {
                outcome
                    .failures
                    .push(fail(&p_column, "matches no live customer"));
            }
            continue;
        };
        let mut input: ContactInput = match typed(&row) {
            Ok(input) => input,
            Err(more) => {
                outcome.failures.extend(more);
                continue;
            }
        };
        input.person_id = Some(*person);
        match crate::contacts::link(conn, actor, access, *organization, input).await {
            Ok(_) => outcome.created += 1,
            // An organization the sender does not reach is as absent as a missing one.
            Err(err) if err.code() == ErrorCode::NotFound => outcome
                .failures
                .push(fail(&o_column, "matches no customer you can reach")),
            Err(err) if err.code().status().is_client_error() => {
                // The single endpoint names the sides by id; the file named them by key.
                outcome
                    .failures
                    .extend(failures(&row, &err).into_iter().map(|mut f| {
                        if f.field == "organization_id" {
                            f.field = o_column.clone();
                        } else if f.field == "person_id" {
                            f.field = p_column.clone();
                        }
                        f
                    }));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(outcome)
}
