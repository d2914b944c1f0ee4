//! Customers written in bulk (imports): each row checked by the very rules of the single
//! endpoints, then a batch written set-wise: one statement inserts the new customers with
//! their first lifecycle entry, one updates the changed ones (only if unchanged since read:
//! no lost update) with their stage changes.

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Failure, Mode, Outcome, Raw, Row};
use crate::auth::{Actor, CustomerAccess};
use crate::customers::bulk::{Written, written_records};
use crate::customers::json::{AuthoritySource, CustomerInput};
use crate::customers::rules;
use crate::customers::store::{CustomerDraft, CustomerRecord};
use crate::db::Prepare;
use crate::db::functions::lower;
use crate::db::schema::{customers, users};
use crate::http::patch::Patch;
use crate::journal;

/// The columns a customer's draft fills, as named in the table.
const COLUMNS: [&str; 25] = [
    "kind",
    "name",
    "organization_name",
    "email",
    "phone",
    "address",
    "region_type",
    "birth_date",
    "gender",
    "occupation",
    "income_band",
    "national_id",
    "preferred_channel",
    "consent_email",
    "consent_email_at",
    "consent_sms",
    "consent_sms_at",
    "tags",
    "attributes",
    "source",
    "external_id",
    "account_manager_id",
    "lifecycle_stage",
    "relationship_level",
    "qualification",
];

/// A draft as one JSON object keyed by column (read back with `jsonb_populate_recordset`).
fn draft_json(id: Uuid, version: i64, d: &CustomerDraft, reason: Option<&str>) -> Value {
    json!({
        "id": id, "version": version, "kind": d.kind, "name": d.name,
        "organization_name": d.organization_name, "email": d.email, "phone": d.phone,
        "address": d.address, "region_type": d.region_type, "birth_date": d.birth_date,
        "gender": d.gender, "occupation": d.occupation, "income_band": d.income_band,
        "national_id": d.national_id, "preferred_channel": d.preferred_channel,
        "consent_email": d.consent_email, "consent_email_at": d.consent_email_at,
        "consent_sms": d.consent_sms, "consent_sms_at": d.consent_sms_at, "tags": d.tags,
        "attributes": d.attributes, "source": d.source, "external_id": d.external_id,
        "account_manager_id": d.account_manager_id, "lifecycle_stage": d.lifecycle_stage,
        "relationship_level": d.relationship_level, "qualification": d.qualification,
        "lifecycle_reason": reason,
    })
}

/// The natural key a row is matched on: its external id, else its email.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    External(String),
    Email(String),
}

impl Key {
    fn of(input: &CustomerInput) -> Option<Key> {
        match (&input.external_id, &input.email) {
            (Patch::Value(id), _) if !id.trim().is_empty() => {
                Some(Key::External(id.trim().to_owned()))
            }
            (_, Patch::Value(email)) if !email.trim().is_empty() => {
                Some(Key::Email(email.trim().to_lowercase()))
            }
            _ => None,
        }
    }

    fn field(&self) -> &'static str {
        match self {
            Key::External(_) => "external_id",
            Key::Email(_) => "email",
        }
    }
}

/// A row ready to write.
struct Ready {
    line: u64,
    raw: Raw,
    base: Option<CustomerRecord>,
    draft: CustomerDraft,
    reason: Option<String>,
}

/// Checks and writes one batch of customer rows, in `conn`'s transaction. With owned-only
/// access, a row that matches a customer the sender does not manage fails as a missing one
/// would (`update_only`) or as the duplicate its creation would be; a created customer is
/// the sender's, and a row naming another account manager fails.
pub async fn import(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    mode: Mode,
    rows: &[Row],
) -> Result<Outcome, crate::http::error::ApiError> {
    let mut outcome = Outcome::default();
    let mut parsed = Vec::with_capacity(rows.len());
    for row in rows {
        match super::typed::<CustomerInput>(row) {
            Ok(input) => parsed.push((row, input)),
            Err(failures) => outcome.failures.extend(failures),
        }
    }
    // The records the rows name, in one query.
    let mut found: HashMap<Key, CustomerRecord> = HashMap::new();
    if mode != Mode::Insert {
        let keys: Vec<Key> = parsed.iter().filter_map(|(_, i)| Key::of(i)).collect();
        let externals: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                Key::External(id) => Some(id.clone()),
                Key::Email(_) => None,
            })
            .collect();
        let emails: Vec<String> = keys
            .iter()
            .filter_map(|k| match k {
                Key::Email(e) => Some(e.clone()),
                Key::External(_) => None,
            })
            .collect();
        let records: Vec<CustomerRecord> = customers::table
            .filter(
                customers::external_id
                    .eq_any(&externals)
                    .or(lower(customers::email.assume_not_null()).eq_any(&emails)),
            )
            .select(CustomerRecord::as_select())
            .load(conn)
            .await?;
        for record in records {
            if let Some(id) = &record.draft.external_id {
                found.insert(Key::External(id.clone()), record.clone());
            }
            if let Some(email) = &record.draft.email {
                found.insert(Key::Email(email.to_lowercase()), record);
            }
        }
    }
    let now = Utc::now();
    let mut ready = Vec::with_capacity(parsed.len());
    let mut claimed: HashMap<Uuid, u64> = HashMap::new();
    for (row, input) in parsed {
        let key = Key::of(&input);
        let base = key.as_ref().and_then(|k| found.get(k)).cloned();
        let fail = |field: &str, message: String| Failure {
            line: row.line,
            field: field.to_owned(),
            message,
            raw: row.raw.clone(),
        };
        if mode != Mode::Insert && key.is_none() {
            outcome.failures.push(fail(
                "external_id",
                "is required to match a customer (or an email)".to_owned(),
            ));
            continue;
        }
        if let (Mode::UpdateOnly, None, Some(key)) = (mode, &base, &key) {
            outcome
                .failures
                .push(fail(key.field(), "matches no customer".to_owned()));
            continue;
        }
        if let (Some(record), Some(key)) = (&base, &key)
            && !access.allows(record.draft.account_manager_id)
        {
            let message = match mode {
                Mode::UpdateOnly => "matches no customer",
                _ => "is already in use",
            };
            outcome.failures.push(fail(key.field(), message.to_owned()));
            continue;
        }
        if let (Some(record), Some(key)) = (&base, &key) {
            if record.erased_at.is_some() || record.deleted_at.is_some() {
                outcome.failures.push(fail(
                    key.field(),
                    "matches a deleted or erased customer".to_owned(),
                ));
                continue;
            }
            if let Some(line) = claimed.insert(record.id, row.line) {
                outcome.failures.push(fail(
                    key.field(),
                    format!("matches the customer of line {line} too: one row per customer"),
                ));
                continue;
            }
        }
        // A derived authority is computed from the contacts by the single endpoints; the
        // set-wise writes here do not read them.
        if let Patch::Value(q) = &input.qualification
            && q.authority_source == Some(AuthoritySource::Derived)
        {
            outcome.failures.push(fail(
                "qualification.authority_source",
                "cannot be set by an import: use PATCH /v1/customers/{id}".to_owned(),
            ));
            continue;
        }
        let creating = base.is_none();
        let blank = CustomerDraft::blank();
        let from = base.as_ref().map_or(&blank, |r| &r.draft);
        match rules::apply(input, from, creating, now) {
            Err(errors) => outcome.failures.extend(errors.into_iter().map(|e| Failure {
                line: row.line,
                field: e.field,
                message: e.message,
                raw: row.raw.clone(),
            })),
            Ok(applied) if !creating && applied.draft == *from => outcome.unchanged += 1,
            Ok(mut applied) => {
                if let Some(me) = access.owner() {
                    if creating && applied.draft.account_manager_id.is_none() {
                        applied.draft.account_manager_id = Some(me);
                    }
                    if applied.draft.account_manager_id != Some(me) {
                        outcome.failures.push(fail(
                            "account_manager_id",
                            "must be your own id: your access is limited to the customers you \
                             manage"
                                .to_owned(),
                        ));
                        continue;
                    }
                }
                ready.push(Ready {
                    line: row.line,
                    raw: row.raw.clone(),
                    base,
                    draft: applied.draft,
                    reason: applied.lifecycle_reason,
                });
            }
        }
    }
    // Account managers must be active staff users: one query for the batch.
    let managers: Vec<Uuid> = ready
        .iter()
        .filter(|r| {
            r.draft.account_manager_id != r.base.as_ref().and_then(|b| b.draft.account_manager_id)
        })
        .filter_map(|r| r.draft.account_manager_id)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let active: HashSet<Uuid> = users::table
        .filter(users::id.eq_any(&managers))
        .filter(users::active.eq(true))
        .select(users::id)
        .load::<Uuid>(conn)
        .await?
        .into_iter()
        .collect();
    let (ready, bad): (Vec<Ready>, Vec<Ready>) = ready.into_iter().partition(|r| {
        r.draft.account_manager_id.is_none_or(|m| {
            active.contains(&m)
                || r.base.as_ref().and_then(|b| b.draft.account_manager_id) == Some(m)
        })
    });
    outcome.failures.extend(bad.into_iter().map(|r| Failure {
        line: r.line,
        field: "account_manager_id".to_owned(),
        message: "must be the id of an active staff user".to_owned(),
        raw: r.raw,
    }));
    let (new, changed): (Vec<Ready>, Vec<Ready>) =
        ready.into_iter().partition(|r| r.base.is_none());
    insert(conn, actor, new, &mut outcome).await?;
    update(conn, actor, changed, &mut outcome).await?;
    Ok(outcome)
}

async fn insert(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rows: Vec<Ready>,
    outcome: &mut Outcome,
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let data = Value::Array(
        rows.iter()
            .zip(&ids)
            .map(|(r, id)| draft_json(*id, 1, &r.draft, r.reason.as_deref()))
            .collect(),
    );
    let columns = COLUMNS.join(", ");
    // Rows whose email or external id is taken (by a customer or an earlier row) are
    // skipped, and reported below.
    let written: Vec<Written> = diesel::sql_query(format!(
        "WITH input AS (SELECT * FROM jsonb_populate_recordset(NULL::customers, $1)),
              reasons AS (SELECT (e->>'id')::uuid AS id, e->>'lifecycle_reason' AS reason
                          FROM jsonb_array_elements($1) e),
              inserted AS (INSERT INTO customers (id, {columns})
                           SELECT id, {columns} FROM input
                           ON CONFLICT DO NOTHING
                           RETURNING id, lifecycle_stage),
              staged AS (INSERT INTO customer_lifecycle_events
                             (id, customer_id, from_stage, to_stage, actor_type, actor_id, reason)
                         SELECT uuid_v7(), i.id, NULL, i.lifecycle_stage, $2, $3, r.reason
                         FROM inserted i JOIN reasons r USING (id))
         SELECT id FROM inserted"
    ))
    .bind::<Jsonb, _>(data)
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id())
    .prepared()
    .load(conn)
    .await?;
    let written: HashSet<Uuid> = written.into_iter().map(|w| w.id).collect();
    outcome.created += written.len() as i64;
    let created = written_records(conn, &written)
        .await?
        .iter()
        .map(crate::customers::created)
        .collect();
    journal::record_all(conn, actor, created).await?;
    let skipped: Vec<&Ready> = rows
        .iter()
        .zip(&ids)
        .filter(|(_, id)| !written.contains(id))
        .map(|(r, _)| r)
        .collect();
    if skipped.is_empty() {
        return Ok(());
    }
    // Which key each skipped row collided on.
    let emails: Vec<String> = skipped
        .iter()
        .filter_map(|r| r.draft.email.as_ref().map(|e| e.to_lowercase()))
        .collect();
    let taken: HashSet<String> = customers::table
        .filter(lower(customers::email.assume_not_null()).eq_any(&emails))
        .select(lower(customers::email.assume_not_null()))
        .load::<String>(conn)
        .await?
        .into_iter()
        .collect();
    outcome.failures.extend(skipped.into_iter().map(|r| {
        let email = r
            .draft
            .email
            .as_ref()
            .is_some_and(|e| taken.contains(&e.to_lowercase()));
        Failure {
            line: r.line,
            field: if email { "email" } else { "external_id" }.to_owned(),
            message: "is already in use (by a customer or an earlier row)".to_owned(),
            raw: r.raw.clone(),
        }
    }));
    Ok(())
}

async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    rows: Vec<Ready>,
    outcome: &mut Outcome,
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // A new email or external id another customer holds fails its row, not the batch.
    let mut emails = Vec::new();
    let mut externals = Vec::new();
    for r in &rows {
        let base = r.base.as_ref().map(|b| &b.draft);
        if let Some(e) = r
            .draft
            .email
            .as_ref()
            .filter(|e| base.and_then(|b| b.email.as_ref()) != Some(e))
        {
            emails.push(e.to_lowercase());
        }
        if let Some(x) = r
            .draft
            .external_id
            .as_ref()
            .filter(|x| base.and_then(|b| b.external_id.as_ref()) != Some(x))
        {
            externals.push(x.clone());
        }
    }
    let holders: Vec<(Uuid, Option<String>, Option<String>)> = customers::table
        .filter(
            lower(customers::email.assume_not_null())
                .eq_any(&emails)
                .or(customers::external_id.eq_any(&externals)),
        )
        .select((customers::id, customers::email, customers::external_id))
        .load(conn)
        .await?;
    let mut held: HashMap<(&'static str, String), Uuid> = HashMap::new();
    for (id, email, external) in holders {
        if let Some(e) = email {
            held.insert(("email", e.to_lowercase()), id);
        }
        if let Some(x) = external {
            held.insert(("external_id", x), id);
        }
    }
    let mut clear = Vec::with_capacity(rows.len());
    for r in rows {
        let id = r.base.as_ref().map(|b| b.id);
        let clash = [
            ("email", r.draft.email.as_ref().map(|e| e.to_lowercase())),
            ("external_id", r.draft.external_id.clone()),
        ]
        .into_iter()
        .find_map(|(field, value)| {
            value
                .and_then(|v| held.get(&(field, v)))
                .filter(|holder| Some(**holder) != id)
                .map(|_| field)
        });
        match clash {
            Some(field) => outcome.failures.push(Failure {
                line: r.line,
                field: field.to_owned(),
                message: "is already in use by another customer".to_owned(),
                raw: r.raw,
            }),
            None => clear.push(r),
        }
    }
    if clear.is_empty() {
        return Ok(());
    }
    let data = Value::Array(
        clear
            .iter()
            .filter_map(|r| {
                r.base.as_ref().map(|b| {
                    let mut v = draft_json(b.id, b.version, &r.draft, r.reason.as_deref());
                    v["from_stage"] = json!(b.draft.lifecycle_stage);
                    v
                })
            })
            .collect(),
    );
    let set = COLUMNS
        .iter()
        .map(|c| format!("{c} = i.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // Only rows unchanged since they were read are written: a concurrent change wins, and
    // its row is reported to re-send.
    let statement = diesel::sql_query(format!(
        "WITH input AS (SELECT * FROM jsonb_populate_recordset(NULL::customers, $1)),
              extra AS (SELECT (e->>'id')::uuid AS id, e->>'from_stage' AS from_stage,
                               e->>'lifecycle_reason' AS reason
                        FROM jsonb_array_elements($1) e),
              updated AS (UPDATE customers c SET {set}, version = c.version + 1, updated_at = now()
                          FROM input i
                          WHERE c.id = i.id AND c.version = i.version AND c.deleted_at IS NULL
                          RETURNING c.id, c.lifecycle_stage),
              staged AS (INSERT INTO customer_lifecycle_events
                             (id, customer_id, from_stage, to_stage, actor_type, actor_id, reason)
                         SELECT uuid_v7(), u.id, x.from_stage, u.lifecycle_stage, $2, $3, x.reason
                         FROM updated u JOIN extra x USING (id)
                         WHERE u.lifecycle_stage IS DISTINCT FROM x.from_stage)
         SELECT id FROM updated"
    ))
    .bind::<Jsonb, _>(data)
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id());
    // A key taken by a concurrent writer since the check aborts the statement: report the
    // batch's updates to re-send rather than fail the import.
    let written: Result<Vec<Written>, _> = conn
        .transaction(async |conn| statement.load(conn).await)
        .await;
    let written: HashSet<Uuid> = match written {
        Ok(rows) => rows.into_iter().map(|w| w.id).collect(),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => HashSet::new(),
        Err(other) => return Err(other),
    };
    outcome.updated += written.len() as i64;
    let after = written_records(conn, &written).await?;
    let changes = clear
        .iter()
        .filter_map(|r| r.base.as_ref())
        .filter_map(|before| {
            after
                .binary_search_by_key(&before.id, |a| a.id)
                .ok()
                .map(|i| crate::customers::updated(before, &after[i]))
        })
        .collect();
    journal::record_all(conn, actor, changes).await?;
    for r in clear {
        if !r.base.as_ref().is_some_and(|b| written.contains(&b.id)) {
            outcome.failures.push(Failure {
                line: r.line,
                field: "row".to_owned(),
                message: "the customer changed while this file was imported; re-send the row"
                    .to_owned(),
                raw: r.raw,
            });
        }
    }
    Ok(())
}
