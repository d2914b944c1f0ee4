use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Jsonb, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::json::Event;
use crate::db::Prepare;
use crate::db::schema::events;

/// The condition that makes an event visible to readers in (txid, position) order: its
/// transaction is older than every transaction still running in this database, so nothing
/// can commit before it any more (`rapport_settled_horizon`, migration
/// `2026-12-06-000050`: transactions in the server's other databases cannot write here and
/// hold nothing back). Computed once per statement (the sub-select), not per row. One
/// definition for the feed and the webhook fan-out.
pub(crate) const SETTLED: &str = "txid < (SELECT rapport_settled_horizon())";

/// An event to insert.
pub struct NewRow {
    pub id: Uuid,
    pub type_: &'static str,
    pub object_type: &'static str,
    pub object_id: String,
    pub data: serde_json::Value,
    pub previous: Option<serde_json::Value>,
    pub request_id: Option<String>,
}

/// Inserts the rows with one statement, whatever their number, positioned in their order:
/// the columns go as arrays (a row-per-tuple INSERT would run out of bind parameters past
/// some 9 000 events, fewer than one import batch or evaluation batch can write).
pub async fn insert(conn: &mut AsyncPgConnection, rows: Vec<NewRow>) -> QueryResult<()> {
    let n = rows.len();
    let (mut ids, mut types, mut objects) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut object_ids, mut data, mut previous, mut request_ids) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for r in rows {
        ids.push(r.id);
        types.push(r.type_);
        objects.push(r.object_type);
        object_ids.push(r.object_id);
        data.push(r.data);
        previous.push(r.previous);
        request_ids.push(r.request_id);
    }
    diesel::sql_query(
        "INSERT INTO events (id, type, object_type, object_id, data, previous, request_id) \
         SELECT id, type, object_type, object_id, data, previous, request_id \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], \
                     $6::jsonb[], $7::text[]) WITH ORDINALITY \
              AS e(id, type, object_type, object_id, data, previous, request_id, n) \
         ORDER BY n",
    )
    .bind::<Array<diesel::sql_types::Uuid>, _>(ids)
    .bind::<Array<Text>, _>(types)
    .bind::<Array<Text>, _>(objects)
    .bind::<Array<Text>, _>(object_ids)
    .bind::<Array<Jsonb>, _>(data)
    .bind::<Array<Nullable<Jsonb>>, _>(previous)
    .bind::<Array<Nullable<Text>>, _>(request_ids)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// A position in the event order: (transaction id, position).
pub type Position = (i64, i64);

/// An event as stored, readable by column list or by name.
#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = events)]
struct EventRow {
    id: Uuid,
    type_: String,
    occurred_at: DateTime<Utc>,
    object_type: String,
    object_id: String,
    data: serde_json::Value,
    previous: Option<serde_json::Value>,
    request_id: Option<String>,
}

impl From<EventRow> for Event {
    fn from(r: EventRow) -> Self {
        Event {
            id: r.id,
            type_: r.type_,
            occurred_at: r.occurred_at,
            object_type: r.object_type,
            object_id: r.object_id,
            data: r.data,
            previous: r.previous,
            request_id: r.request_id,
        }
    }
}

#[derive(QueryableByName)]
struct FeedRow {
    #[diesel(embed)]
    event: EventRow,
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// Settled events after `after`, of the given types (all when empty), in order.
pub async fn feed(
    conn: &mut AsyncPgConnection,
    after: Position,
    types: &[String],
    fetch: i64,
) -> QueryResult<Vec<(Event, Position)>> {
    let rows: Vec<FeedRow> = diesel::sql_query(format!(
        "SELECT id, type AS type_, occurred_at, object_type, object_id, data, previous, \
                request_id, txid::text::bigint AS txid, position \
         FROM events \
         WHERE (txid, position) > ($1::text::xid8, $2) AND {SETTLED} \
           AND type <> 'webhook.ping' AND (cardinality($3) = 0 OR type = ANY($3)) \
         ORDER BY events.txid, events.position LIMIT $4"
    ))
    .bind::<Text, _>(after.0.to_string())
    .bind::<BigInt, _>(after.1)
    .bind::<Array<Text>, _>(types)
    .bind::<BigInt, _>(fetch)
    .prepared()
    .load(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (Event::from(r.event), (r.txid, r.position)))
        .collect())
}

#[derive(QueryableByName)]
struct PositionRow {
    #[diesel(sql_type = BigInt)]
    txid: i64,
    #[diesel(sql_type = BigInt)]
    position: i64,
}

/// Where the event `id` stands in the order, if it exists.
pub async fn position_of(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Position>> {
    let row: Option<PositionRow> =
        diesel::sql_query("SELECT txid::text::bigint AS txid, position FROM events WHERE id = $1")
            .bind::<diesel::sql_types::Uuid, _>(id)
            .prepared()
            .get_result(conn)
            .await
            .optional()?;
    Ok(row.map(|r| (r.txid, r.position)))
}

/// One event by id (for webhook deliveries).
pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Event>> {
    events::table
        .find(id)
        .select(EventRow::as_select())
        .get_result(conn)
        .await
        .optional()
        .map(|row| row.map(Event::from))
}

pub async fn forget(
    conn: &mut AsyncPgConnection,
    object_type: &str,
    object_ids: &[String],
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE events SET data = jsonb_build_object('id', object_id), previous = NULL \
         WHERE object_type = $1 AND object_id = ANY($2)",
    )
    .bind::<Text, _>(object_type)
    .bind::<Array<Text>, _>(object_ids)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes events from before `cutoff` that no delivery still waits for, in batches.
pub async fn prune(conn: &mut AsyncPgConnection, cutoff: DateTime<Utc>) -> QueryResult<usize> {
    const BATCH: usize = 10_000;
    let mut total = 0;
    loop {
        let deleted = diesel::sql_query(
            "DELETE FROM events WHERE id IN ( \
               SELECT e.id FROM events e \
               WHERE e.occurred_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                                 WHERE d.event_id = e.id AND d.status = 'pending') \
               LIMIT $2)",
        )
        .bind::<diesel::sql_types::Timestamptz, _>(cutoff)
        .bind::<BigInt, _>(BATCH as i64)
        .prepared()
        .execute(conn)
        .await?;
        total += deleted;
        if deleted < BATCH {
            return Ok(total);
        }
    }
}

/// A monthly partition of `events` whose whole month ended before a cut-off.
#[derive(QueryableByName, Debug)]
pub struct OldMonth {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub low: Uuid,
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    pub high: Uuid,
}

/// The monthly partitions of `events` whose month ended before `before`, oldest first.
pub async fn months_before(
    conn: &mut AsyncPgConnection,
    before: DateTime<Utc>,
) -> QueryResult<Vec<OldMonth>> {
    diesel::sql_query(
        "SELECT name, low, high FROM rapport_monthly_partitions('events') WHERE ends <= $1",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(before)
    .load(conn)
    .await
}

/// Whether a delivery still waits for an event of the month, or is pending in the month's
/// partition of deliveries: then the month stays.
pub async fn month_awaited(conn: &mut AsyncPgConnection, month: &OldMonth) -> QueryResult<bool> {
    use crate::db::schema::webhook_deliveries as d;
    diesel::select(diesel::dsl::exists(
        d::table.filter(
            d::status.eq("pending").and(
                (d::event_id.ge(month.low).and(d::event_id.lt(month.high)))
                    .or(d::id.ge(month.low).and(d::id.lt(month.high))),
            ),
        ),
    ))
    .get_result(conn)
    .await
}

/// Whether `name` is a monthly partition of `parent`.
async fn is_monthly_partition(
    conn: &mut AsyncPgConnection,
    parent: &str,
    name: &str,
) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        exists: bool,
    }
    let found: Exists = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM rapport_monthly_partitions($1) WHERE name = $2) AS exists",
    )
    .bind::<Text, _>(parent)
    .bind::<Text, _>(name)
    .get_result(conn)
    .await?;
    Ok(found.exists)
}

/// Drops a month of events with its month of webhook deliveries and their attempts (a
/// delivery's id is in its event's millisecond and an attempt's in its delivery's, so the
/// deliveries of a month's events and their attempts are the same month's partitions of
/// `webhook_deliveries` and `webhook_attempts`). Before a partition can be detached nothing
/// outside it may reference it: the attempts' partition goes first, then any attempt of the
/// month's deliveries kept elsewhere and the month's replays (which reference the deliveries
/// they replay, in the same partition), row by row; then the deliveries' partition, then any
/// delivery of the month's events made before the deliveries were partitioned (their
/// attempts go with them, as a row deletion would cascade), then the events' partition
/// itself, each detached first. Returns how many events went.
pub async fn drop_month(conn: &mut AsyncPgConnection, month: &OldMonth) -> QueryResult<usize> {
    use crate::db::schema::webhook_attempts as a;
    use crate::db::schema::webhook_deliveries as d;
    let attempts = month.name.replacen("events", "webhook_attempts", 1);
    if is_monthly_partition(conn, "webhook_attempts", &attempts).await? {
        diesel::sql_query("SELECT rapport_drop_partition('webhook_attempts', $1)")
            .bind::<Text, _>(&attempts)
            .execute(conn)
            .await?;
    }
    let deliveries = month.name.replacen("events", "webhook_deliveries", 1);
    if is_monthly_partition(conn, "webhook_deliveries", &deliveries).await? {
        diesel::delete(
            a::table.filter(
                a::delivery_id
                    .ge(month.low)
                    .and(a::delivery_id.lt(month.high)),
            ),
        )
        .execute(conn)
        .await?;
        diesel::delete(
            d::table.filter(
                d::id
                    .ge(month.low)
                    .and(d::id.lt(month.high))
                    .and(d::replay_of.is_not_null()),
            ),
        )
        .execute(conn)
        .await?;
        diesel::sql_query("SELECT rapport_drop_partition('webhook_deliveries', $1)")
            .bind::<Text, _>(&deliveries)
            .execute(conn)
            .await?;
    }
    diesel::delete(d::table.filter(d::event_id.ge(month.low).and(d::event_id.lt(month.high))))
        .execute(conn)
        .await?;
    let count: i64 = events::table
        .filter(events::id.ge(month.low).and(events::id.lt(month.high)))
        .count()
        .get_result(conn)
        .await?;
    diesel::sql_query("SELECT rapport_drop_partition('events', $1)")
        .bind::<Text, _>(&month.name)
        .execute(conn)
        .await?;
    Ok(count as usize)
}
