use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::json::{Attempt, Delivery, DeliveryStatus, Webhook};
use super::signature;
use crate::db::Prepare;
use crate::db::schema::{events, webhook_attempts, webhook_deliveries, webhooks};
use crate::events::Event;
use crate::events::store::SETTLED;
use crate::secrets::{OpenError, SecretBox};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct Row {
    pub id: Uuid,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub filter: Option<Value>,
    pub active: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Row {
    /// The secrets that sign now, opened: the current one, and the previous one during its
    /// overlap.
    pub fn signing_secrets(&self, keys: &SecretBox) -> Result<Vec<String>, OpenError> {
        let mut secrets = vec![signature::open(keys, self.id, &self.secret)?];
        if self
            .previous_secret_expires_at
            .is_some_and(|at| at > Utc::now())
            && let Some(previous) = &self.previous_secret
        {
            secrets.push(signature::open(keys, self.id, previous)?);
        }
        Ok(secrets)
    }
}

impl From<Row> for Webhook {
    fn from(r: Row) -> Self {
        Webhook {
            id: r.id,
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            filter: match r.filter {
                Some(Value::Object(map)) => Some(map),
                _ => None,
            },
            active: r.active,
            disabled_reason: r.disabled_reason,
            disabled_at: r.disabled_at,
            previous_secret_expires_at: r.previous_secret_expires_at.filter(|at| *at > Utc::now()),
            secret: None,
            version: i64::from(r.version),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What a webhook is: the fields a caller sets.
#[derive(Debug, Clone, PartialEq, AsChangeset, Insertable)]
#[diesel(table_name = webhooks, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct Definition {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub filter: Option<Value>,
    pub active: bool,
}

impl Definition {
    pub fn of(row: &Row) -> Self {
        Self {
            url: row.url.clone(),
            description: row.description.clone(),
            event_types: row.event_types.clone(),
            filter: row.filter.clone(),
            active: row.active,
        }
    }

    pub fn filter_map(&self) -> Option<Map<String, Value>> {
        match &self.filter {
            Some(Value::Object(map)) => Some(map.clone()),
            _ => None,
        }
    }
}

/// Inserts a webhook; `secret` is its sealed form ([`signature::seal`]).
pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    definition: &Definition,
    secret: &str,
) -> QueryResult<Row> {
    diesel::insert_into(webhooks::table)
        .values((webhooks::id.eq(id), definition, webhooks::secret.eq(secret)))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Row>> {
    webhooks::table
        .find(id)
        .select(Row::as_select())
        .get_result(conn)
        .await
        .optional()
}

pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Row>> {
    webhooks::table
        .find(id)
        .select(Row::as_select())
        .for_update()
        .get_result(conn)
        .await
        .optional()
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    active: Option<bool>,
    after: Option<Uuid>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    let mut query = webhooks::table
        .select(Row::as_select())
        .order(webhooks::id)
        .limit(fetch)
        .into_boxed();
    if let Some(active) = active {
        query = query.filter(webhooks::active.eq(active));
    }
    if let Some(after) = after {
        query = query.filter(webhooks::id.gt(after));
    }
    query.load(conn).await
}

/// Saves a new definition. Turning a webhook on clears an automatic disabling.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    definition: &Definition,
) -> QueryResult<Row> {
    let reenabled = definition.active;
    let mut query = diesel::update(webhooks::table.find(id))
        .set((
            definition,
            webhooks::version.eq(webhooks::version + 1),
            webhooks::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Row::as_returning())
        .get_result::<Row>(conn)
        .await?;
    if reenabled && query.disabled_reason.is_some() {
        query = diesel::update(webhooks::table.find(id))
            .set((
                webhooks::disabled_reason.eq(None::<String>),
                webhooks::disabled_at.eq(None::<DateTime<Utc>>),
            ))
            .returning(Row::as_returning())
            .get_result(conn)
            .await?;
    }
    Ok(query)
}

/// Sets a new secret (sealed, [`signature::seal`]); the old one keeps signing until
/// `overlap_until` (moved as it is: both are sealed for this webhook).
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    secret: &str,
    overlap_until: Option<DateTime<Utc>>,
) -> QueryResult<Row> {
    diesel::update(webhooks::table.find(id))
        .set((
            webhooks::previous_secret.eq(diesel::dsl::case_when(
                overlap_until
                    .is_some()
                    .into_sql::<diesel::sql_types::Bool>(),
                webhooks::secret.nullable(),
            )),
            webhooks::previous_secret_expires_at.eq(overlap_until),
            webhooks::secret.eq(secret),
            webhooks::version.eq(webhooks::version + 1),
            webhooks::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Row::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(webhooks::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Turns a webhook off for a reason; false when it was already off.
pub async fn disable(conn: &mut AsyncPgConnection, id: Uuid, reason: &str) -> QueryResult<bool> {
    diesel::update(webhooks::table.find(id).filter(webhooks::active))
        .set((
            webhooks::active.eq(false),
            webhooks::disabled_reason.eq(reason),
            webhooks::disabled_at.eq(diesel::dsl::now),
            webhooks::version.eq(webhooks::version + 1),
            webhooks::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(|n| n > 0)
}

// ---- Fan-out: events to deliveries ----

/// Active webhooks with settled events past their cursor that no other worker is fanning out
/// now, locked for this transaction. When every webhook is up to date nothing is locked (and
/// an idle worker writes nothing).
pub async fn lock_behind(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let rows: Vec<Id> = diesel::sql_query(format!(
        "WITH head AS ( \
           SELECT txid, position FROM events \
           WHERE {SETTLED} AND type <> 'webhook.ping' \
           ORDER BY txid DESC, position DESC LIMIT 1) \
         SELECT w.id FROM webhooks w, head \
         WHERE w.active AND (w.cursor_txid, w.cursor_position) < (head.txid, head.position) \
         FOR UPDATE OF w SKIP LOCKED"
    ))
    .prepared()
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[derive(QueryableByName)]
struct FanOut {
    #[diesel(sql_type = BigInt)]
    scanned: i64,
}

#[derive(QueryableByName)]
struct Cursor {
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// Matches up to `batch` settled events after the webhook's cursor against its types and
/// filter, queues a delivery for each match in event order and moves the cursor past all it
/// scanned. Returns how many events it scanned. Call with the webhook locked.
pub async fn fan_out(conn: &mut AsyncPgConnection, webhook: Uuid, batch: i64) -> QueryResult<i64> {
    // The cursor goes into the scan as values: compared with a joined row, the planner could
    // not use it as an index bound and would read every event from the first each time.
    let cursor: Cursor = diesel::sql_query(
        "SELECT cursor_txid::text::bigint AS txid, cursor_position AS position \
         FROM webhooks WHERE id = $1",
    )
    .bind::<diesel::sql_types::Uuid, _>(webhook)
    .prepared()
    .get_result(conn)
    .await?;
    let row: Option<FanOut> = diesel::sql_query(format!(
        "WITH w AS (SELECT * FROM webhooks WHERE id = $1), \
         scanned AS ( \
           SELECT e.id, e.type, e.data, e.txid, e.position FROM events e \
           WHERE (e.txid, e.position) > ($3::text::xid8, $4) AND e.{SETTLED} \
             AND e.type <> 'webhook.ping' \
           ORDER BY e.txid, e.position LIMIT $2), \
         queued AS ( \
           INSERT INTO webhook_deliveries (id, webhook_id, event_id) \
           SELECT webhook_delivery_id(w.id, s.id), w.id, s.id FROM scanned s, w \
           WHERE (cardinality(w.event_types) = 0 OR s.type = ANY(w.event_types)) \
             AND (w.filter IS NULL OR s.data @> w.filter) \
           ORDER BY s.txid, s.position \
           ON CONFLICT DO NOTHING \
           RETURNING 1), \
         last AS (SELECT txid, position FROM scanned ORDER BY txid DESC, position DESC LIMIT 1) \
         UPDATE webhooks SET cursor_txid = last.txid, cursor_position = last.position \
         FROM last WHERE webhooks.id = $1 \
         RETURNING (SELECT count(*) FROM scanned) AS scanned, (SELECT count(*) FROM queued) AS queued"
    ))
    .bind::<diesel::sql_types::Uuid, _>(webhook)
    .bind::<BigInt, _>(batch)
    .bind::<Text, _>(cursor.txid.to_string())
    .bind::<BigInt, _>(cursor.position)
    .prepared().get_result(conn)
    .await
    .optional()?;
    Ok(row.map_or(0, |r| r.scanned))
}

// ---- Delivery ----

/// A delivery a worker has taken, with what it needs to send it.
#[derive(Debug, QueryableByName)]
pub struct Claimed {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub webhook_id: Uuid,
    /// Attempts made before this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub first_attempt_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Text)]
    pub url: String,
    #[diesel(sql_type = Text)]
    pub secret: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub previous_secret: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub event_id: Uuid,
    #[diesel(sql_type = Text)]
    pub event_type: String,
    #[diesel(sql_type = Timestamptz)]
    pub occurred_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    pub object_type: String,
    #[diesel(sql_type = Text)]
    pub object_id: String,
    #[diesel(sql_type = Jsonb)]
    pub data: Value,
    #[diesel(sql_type = Nullable<Jsonb>)]
    pub previous: Option<Value>,
    #[diesel(sql_type = Nullable<Text>)]
    pub request_id: Option<String>,
}

impl Claimed {
    pub fn event(&self) -> Event {
        Event {
            id: self.event_id,
            type_: self.event_type.clone(),
            occurred_at: self.occurred_at,
            object_type: self.object_type.clone(),
            object_id: self.object_id.clone(),
            data: self.data.clone(),
            previous: self.previous.clone(),
            request_id: self.request_id.clone(),
        }
    }
}

/// Takes work for up to `webhooks` webhooks: for each, when the oldest pending delivery is
/// due, that delivery and up to `run - 1` pending ones after it, in order (a webhook's events
/// go out one at a time and in order, so only its queue's head may be due later). They are
/// leased under `token` for `lease_secs`: a worker that stops mid-run loses them, and they
/// are sent again. Returned grouped by webhook, in delivery order.
pub async fn claim(
    conn: &mut AsyncPgConnection,
    webhooks: i64,
    run: i64,
    lease_secs: f64,
    token: Uuid,
) -> QueryResult<Vec<Claimed>> {
    diesel::sql_query(include_str!("claim.sql"))
        .bind::<BigInt, _>(webhooks)
        .bind::<BigInt, _>(run)
        .bind::<Double, _>(lease_secs)
        .bind::<diesel::sql_types::Uuid, _>(token)
        .prepared()
        .load(conn)
        .await
}

/// What came of one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The delivery's state after it, and when to try again if still pending.
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct Recorded {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    delivery_id: Uuid,
}

/// Records a run's attempts and the deliveries' new states, set-wise, and hands back the
/// deliveries of `run` it did not get to. Only deliveries still leased under `token` are
/// written (a worker whose lease ran out records nothing). Returns the ids recorded.
pub async fn record(
    conn: &mut AsyncPgConnection,
    token: Uuid,
    run: &[Uuid],
    results: &[(Uuid, Outcome)],
) -> QueryResult<Vec<Uuid>> {
    let ids: Vec<Uuid> = results.iter().map(|(id, _)| *id).collect();
    let statuses: Vec<&str> = results.iter().map(|(_, o)| o.status.as_str()).collect();
    let codes: Vec<Option<i32>> = results.iter().map(|(_, o)| o.status_code).collect();
    let latencies: Vec<i32> = results.iter().map(|(_, o)| o.latency_ms).collect();
    let errors: Vec<Option<&str>> = results.iter().map(|(_, o)| o.error.as_deref()).collect();
    let attempted: Vec<DateTime<Utc>> = results.iter().map(|(_, o)| o.attempted_at).collect();
    let next: Vec<Option<DateTime<Utc>>> = results.iter().map(|(_, o)| o.next_attempt_at).collect();
    let recorded: Vec<Recorded> = diesel::sql_query(
        "WITH r AS ( \
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::int[], $5::text[], \
                                $6::timestamptz[], $7::timestamptz[]) \
             AS r(id, status, status_code, latency_ms, error, attempted_at, next_attempt_at)), \
         u AS ( \
           UPDATE webhook_deliveries d \
           SET status = r.status, attempts = d.attempts + 1, \
               first_attempt_at = coalesce(d.first_attempt_at, r.attempted_at), \
               last_attempt_at = r.attempted_at, last_status_code = r.status_code, \
               last_latency_ms = r.latency_ms, last_error = r.error, \
               next_attempt_at = coalesce(r.next_attempt_at, d.next_attempt_at), \
               completed_at = CASE WHEN r.status <> 'pending' THEN now() END, \
               lease_until = NULL, lease_token = NULL \
           FROM r WHERE d.id = r.id AND d.lease_token = $8 AND d.status = 'pending' \
           RETURNING d.id) \
         INSERT INTO webhook_attempts (id, delivery_id, attempted_at, status_code, latency_ms, error) \
         SELECT uuid_v7_beside(r.id), r.id, r.attempted_at, r.status_code, r.latency_ms, r.error \
         FROM r WHERE r.id IN (SELECT id FROM u) \
         RETURNING delivery_id",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(&ids)
    .bind::<Array<Text>, _>(&statuses)
    .bind::<Array<Nullable<Integer>>, _>(&codes)
    .bind::<Array<Integer>, _>(&latencies)
    .bind::<Array<Nullable<Text>>, _>(&errors)
    .bind::<Array<Timestamptz>, _>(&attempted)
    .bind::<Array<Nullable<Timestamptz>>, _>(&next)
    .bind::<diesel::sql_types::Uuid, _>(token)
    .prepared().load(conn)
    .await?;
    diesel::update(
        webhook_deliveries::table
            .filter(webhook_deliveries::id.eq_any(run))
            .filter(webhook_deliveries::lease_token.eq(token)),
    )
    .set((
        webhook_deliveries::lease_until.eq(None::<DateTime<Utc>>),
        webhook_deliveries::lease_token.eq(None::<Uuid>),
    ))
    .execute(conn)
    .await?;
    Ok(recorded.into_iter().map(|r| r.delivery_id).collect())
}

/// Inserts a delivery that was already made (a test ping), with its one attempt.
pub async fn insert_sent(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    webhook: Uuid,
    event: Uuid,
    outcome: &Outcome,
) -> QueryResult<()> {
    diesel::insert_into(webhook_deliveries::table)
        .values((
            webhook_deliveries::id.eq(id),
            webhook_deliveries::webhook_id.eq(webhook),
            webhook_deliveries::event_id.eq(event),
            webhook_deliveries::status.eq(outcome.status.as_str()),
            webhook_deliveries::attempts.eq(1),
            webhook_deliveries::first_attempt_at.eq(outcome.attempted_at),
            webhook_deliveries::last_attempt_at.eq(outcome.attempted_at),
            webhook_deliveries::last_status_code.eq(outcome.status_code),
            webhook_deliveries::last_latency_ms.eq(outcome.latency_ms),
            webhook_deliveries::last_error.eq(&outcome.error),
            webhook_deliveries::completed_at.eq(Some(Utc::now())),
        ))
        .execute(conn)
        .await?;
    diesel::insert_into(webhook_attempts::table)
        .values((
            webhook_attempts::id.eq(crate::db::partitions::beside(id)),
            webhook_attempts::delivery_id.eq(id),
            webhook_attempts::attempted_at.eq(outcome.attempted_at),
            webhook_attempts::status_code.eq(outcome.status_code),
            webhook_attempts::latency_ms.eq(outcome.latency_ms),
            webhook_attempts::error.eq(&outcome.error),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Queues the event of `delivery` again for the same webhook, at the end of its queue. The
/// new delivery's id is in its event's millisecond (`uuid_v7_beside`), so it lands in the
/// partition of its event's month, beside the delivery it replays.
pub async fn replay(
    conn: &mut AsyncPgConnection,
    webhook: Uuid,
    delivery: Uuid,
) -> QueryResult<Option<Uuid>> {
    #[derive(QueryableByName)]
    struct Made {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let made: Option<Made> = diesel::sql_query(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, replay_of) \
         SELECT uuid_v7_beside(event_id), webhook_id, event_id, id FROM webhook_deliveries \
         WHERE id = $1 AND webhook_id = $2 \
         RETURNING id",
    )
    .bind::<diesel::sql_types::Uuid, _>(delivery)
    .bind::<diesel::sql_types::Uuid, _>(webhook)
    .prepared()
    .get_result(conn)
    .await
    .optional()?;
    Ok(made.map(|m| m.id))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
struct DeliveryRow {
    id: Uuid,
    event_id: Uuid,
    seq: i64,
    status: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    last_status_code: Option<i32>,
    last_latency_ms: Option<i32>,
    last_error: Option<String>,
    replay_of: Option<Uuid>,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhook_attempts)]
struct AttemptRow {
    delivery_id: Uuid,
    attempted_at: DateTime<Utc>,
    status_code: Option<i32>,
    latency_ms: i32,
    error: Option<String>,
}

/// A webhook's deliveries, newest first, each with its attempts (two queries per page).
pub async fn deliveries(
    conn: &mut AsyncPgConnection,
    webhook: Uuid,
    status: Option<DeliveryStatus>,
    event: Option<Uuid>,
    only: Option<Uuid>,
    after_seq: Option<i64>,
    fetch: i64,
) -> QueryResult<Vec<(Delivery, i64)>> {
    let mut query = webhook_deliveries::table
        .inner_join(events::table)
        .filter(webhook_deliveries::webhook_id.eq(webhook))
        .select((DeliveryRow::as_select(), events::type_))
        .order(webhook_deliveries::seq.desc())
        .limit(fetch)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(webhook_deliveries::status.eq(status.as_str()));
    }
    if let Some(event) = event {
        query = query.filter(webhook_deliveries::event_id.eq(event));
    }
    if let Some(only) = only {
        query = query.filter(webhook_deliveries::id.eq(only));
    }
    if let Some(seq) = after_seq {
        query = query.filter(webhook_deliveries::seq.lt(seq));
    }
    let rows: Vec<(DeliveryRow, String)> = query.load(conn).await?;
    let ids: Vec<Uuid> = rows.iter().map(|(r, _)| r.id).collect();
    let mut attempts: HashMap<Uuid, Vec<Attempt>> = HashMap::new();
    let loaded: Vec<AttemptRow> = webhook_attempts::table
        .filter(webhook_attempts::delivery_id.eq_any(&ids))
        .order((
            webhook_attempts::delivery_id,
            webhook_attempts::attempted_at,
        ))
        .select(AttemptRow::as_select())
        .load(conn)
        .await?;
    for a in loaded {
        attempts.entry(a.delivery_id).or_default().push(Attempt {
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
        });
    }
    Ok(rows
        .into_iter()
        .map(|(r, event_type)| {
            let status = DeliveryStatus::parse(&r.status);
            let delivery = Delivery {
                id: r.id,
                event_id: r.event_id,
                event_type,
                status,
                attempt_count: r.attempts,
                next_attempt_at: (status == DeliveryStatus::Pending).then_some(r.next_attempt_at),
                last_status_code: r.last_status_code,
                last_latency_ms: r.last_latency_ms,
                last_error: r.last_error,
                replay_of: r.replay_of,
                created_at: r.created_at,
                completed_at: r.completed_at,
                attempts: attempts.remove(&r.id).unwrap_or_default(),
            };
            (delivery, r.seq)
        })
        .collect())
}
