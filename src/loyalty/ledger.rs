//! The points ledger (DOMAIN.md section 6), written set-wise: every statement here takes a
//! set of customers, so one customer's redemption and a bulk award of a million use the same
//! SQL.
//!
//! Invariants, kept under the account's row lock (`lock_accounts`) and by the table checks:
//! - each credit (earn, adjustment up) opens a lot; each debit takes from lots, oldest
//!   expiring first, with one ledger entry per lot it touches;
//! - a member's balance is the sum of their ledger and of their lots' remaining points, and
//!   never goes below zero (`loyalty_accounts.balance >= 0` backs the 409 up);
//! - points that lapse leave as `expire` entries, never silently.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::Prepare;

use super::json::EntryKind;
use crate::auth::Actor;
use crate::db::schema::loyalty_ledger;

/// The actor of what the programme does by itself (expiry, evaluation).
pub fn programme_actor() -> Actor {
    Actor::Service("loyalty".to_owned())
}

/// Makes the customers members (when they are not yet) and locks their accounts, in id
/// order, until the transaction ends; their balances as they stand. Members' accounts (a
/// purchase's customer, nearly always) are locked in one statement; only customers without
/// an account yet cost an insert and a second lock.
pub async fn lock_accounts(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
) -> QueryResult<Vec<Balance>> {
    let locked = lock_existing(conn, customer_ids).await?;
    if locked.len() == customer_ids.len() {
        return Ok(locked);
    }
    diesel::sql_query(
        "INSERT INTO loyalty_accounts (customer_id) SELECT unnest($1::uuid[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind::<Array<SqlUuid>, _>(customer_ids)
    .prepared()
    .execute(conn)
    .await?;
    // A new statement, so a new snapshot: it sees an account another transaction made
    // (and committed) while this one's insert waited on it.
    lock_existing(conn, customer_ids).await
}

/// Locks the accounts the customers have, in id order.
async fn lock_existing(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
) -> QueryResult<Vec<Balance>> {
    diesel::sql_query(
        "SELECT customer_id, balance FROM loyalty_accounts WHERE customer_id = ANY($1) \
         ORDER BY customer_id FOR UPDATE",
    )
    .bind::<Array<SqlUuid>, _>(customer_ids)
    .prepared()
    .load(conn)
    .await
}

#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct Balance {
    #[diesel(sql_type = SqlUuid)]
    pub customer_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub balance: i64,
}

/// A ledger row as written.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = loyalty_ledger)]
pub struct EntryRecord {
    pub id: Uuid,
    pub seq: i64,
    pub customer_id: Uuid,
    pub posting_id: Uuid,
    pub kind: EntryKind,
    pub points: i64,
    pub lot_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    pub purchase_id: Option<Uuid>,
    pub reason: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: String,
}

const ENTRY_COLUMNS: &str = "id, seq, customer_id, posting_id, kind, points, lot_id, \
    expires_at, purchase_id, reason, occurred_at, created_at, actor_type, actor_id";

/// Adds the credited points to the balances of the accounts in `{credits}` (a CTE of
/// `customer_id, points`), and returns `{entries}`' rows: the tail every write shares.
fn finish(credits: &str) -> String {
    format!(
        "balances AS (UPDATE loyalty_accounts a SET balance = a.balance + s.points, \
                      updated_at = now() \
                      FROM (SELECT customer_id, sum(points) AS points FROM {credits} \
                            GROUP BY customer_id) s \
                      WHERE a.customer_id = s.customer_id) \
         SELECT {ENTRY_COLUMNS} FROM entries ORDER BY seq"
    )
}

/// Credits points: one new lot per row of `source`, a query of `customer_id, posting_id,
/// kind, points, earned_at, purchase_id, qualifying_at, reason` (and `$1`, `$2`: the
/// actor's type and id). Lots expire by the programme's policy, counted from `earned_at`.
fn credit_sql(source: &str) -> String {
    format!(
        "WITH src AS MATERIALIZED (
             SELECT uuid_v7() AS id, s.*,
                    loyalty_expiry(p.expiry, p.expiry_days, s.earned_at) AS expires_at
             FROM ({source}) s CROSS JOIN loyalty_program p WHERE s.points > 0),
         lots AS (INSERT INTO loyalty_lots (id, customer_id, earned_at, expires_at, points,
                                            remaining)
                  SELECT id, customer_id, earned_at, expires_at, points, points FROM src),
         entries AS (INSERT INTO loyalty_ledger (id, customer_id, posting_id, kind, points,
                         lot_id, expires_at, purchase_id, qualifying_at, reason, occurred_at,
                         actor_type, actor_id)
                     SELECT id, customer_id, posting_id, kind, points, id, expires_at,
                            purchase_id, qualifying_at, reason, earned_at, $1, $2 FROM src
                     ORDER BY customer_id, earned_at
                     RETURNING {ENTRY_COLUMNS}),
         {}",
        finish("src")
    )
}

/// Earns the points of the given purchases (those in the programme's currency), at the
/// multiplier of each customer's tier as it stands: one lot and one `earn` entry each.
pub async fn earn(
    mut conn: &AsyncPgConnection,
    actor: &Actor,
    purchase_ids: &[Uuid],
) -> QueryResult<Vec<EntryRecord>> {
    // A member without a tier (or on a tier no longer in the programme) earns at the
    // first tier's multiplier; with no tiers at all, at 100 %.
    let source = "SELECT pu.customer_id, uuid_v7() AS posting_id, 'earn' AS kind,
                         loyalty_points(pu.amount, p.earn_points, p.earn_per_amount,
                             COALESCE(t.multiplier_percent,
                                      (SELECT multiplier_percent FROM loyalty_tiers
                                       ORDER BY position LIMIT 1), 100),
                             p.rounding) AS points,
                         pu.occurred_at AS earned_at, pu.id AS purchase_id,
                         pu.occurred_at AS qualifying_at, NULL::text AS reason
                  FROM purchases pu
                  CROSS JOIN loyalty_program p
                  JOIN loyalty_accounts a ON a.customer_id = pu.customer_id
                  LEFT JOIN loyalty_tiers t ON t.key = a.tier_key
                  WHERE pu.id = ANY($3) AND pu.currency = p.currency";

    diesel::sql_query(credit_sql(source))
        .bind::<Text, _>(actor.kind())
        .bind::<Text, _>(actor.id())
        .bind::<Array<SqlUuid>, _>(purchase_ids)
        .prepared()
        .load(&mut conn)
        .await
}

/// Adjusts balances up: `points[i]` new points for `customer_ids[i]`, earned now, with the
/// reason; the posting of each customer is `postings[i]`.
pub async fn credit(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    credits: &Postings<'_>,
) -> QueryResult<Vec<EntryRecord>> {
    let source = "SELECT customer_id, posting_id, 'adjust' AS kind, points,
                         now() AS earned_at, NULL::uuid AS purchase_id,
                         NULL::timestamptz AS qualifying_at, $6::text AS reason
                  FROM unnest($3::uuid[], $4::uuid[], $5::bigint[])
                       AS r(customer_id, posting_id, points)";

    diesel::sql_query(credit_sql(source))
        .bind::<Text, _>(actor.kind())
        .bind::<Text, _>(actor.id())
        .bind::<Array<SqlUuid>, _>(credits.customer_ids)
        .bind::<Array<SqlUuid>, _>(credits.posting_ids)
        .bind::<Array<BigInt>, _>(credits.points)
        .bind::<Nullable<Text>, _>(credits.reason)
        .prepared()
        .load(conn)
        .await
}

/// Points to move for a set of customers: `points[i]` for `customer_ids[i]`, written as the
/// posting `posting_ids[i]`.
pub struct Postings<'a> {
    pub customer_ids: &'a [Uuid],
    pub posting_ids: &'a [Uuid],
    pub points: &'a [i64],
    pub reason: Option<&'a str>,
}

/// What a debit is, beyond its amounts.
pub struct Debit {
    pub kind: EntryKind,
    /// For `reverse`: the purchase refunded.
    pub purchase: Option<PurchaseRef>,
}

/// A purchase whose points are taken back.
pub struct PurchaseRef {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// The lot its points were earned into: taken from first.
    pub lot_id: Option<Uuid>,
}

/// The statement of [`debit`], with the ledger's columns and the balance update put in.
static DEBIT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    include_str!("ledger_debit.sql")
        .replace("{ENTRY_COLUMNS}", ENTRY_COLUMNS)
        .replace("{balances}", &finish("debits"))
});

/// Takes `points[i]` (positive) from `customer_ids[i]`'s lots, oldest expiring first (lots
/// that never expire last), one entry per lot touched. The caller has locked the accounts,
/// expired what lapsed, and checked the balances suffice.
pub async fn debit(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    debits: &Postings<'_>,
    what: Debit,
) -> QueryResult<Vec<EntryRecord>> {
    let purchase = what.purchase.as_ref();
    diesel::sql_query(DEBIT_SQL.as_str())
        .bind::<Text, _>(actor.kind())
        .bind::<Text, _>(actor.id())
        .bind::<Array<SqlUuid>, _>(debits.customer_ids)
        .bind::<Array<SqlUuid>, _>(debits.posting_ids)
        .bind::<Array<BigInt>, _>(debits.points)
        .bind::<Text, _>(what.kind)
        .bind::<Nullable<SqlUuid>, _>(purchase.map(|p| p.id))
        .bind::<Nullable<SqlUuid>, _>(purchase.and_then(|p| p.lot_id))
        .bind::<Nullable<Timestamptz>, _>(purchase.map(|p| p.occurred_at))
        .bind::<Nullable<Text>, _>(debits.reason)
        .prepared()
        .load(conn)
        .await
}

/// Writes `expire` entries for the lots of these customers that lapsed by `now`, and takes
/// their points off the balances. The caller holds the accounts' locks.
pub async fn expire(
    mut conn: &AsyncPgConnection,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
) -> QueryResult<Vec<EntryRecord>> {
    let actor = programme_actor();
    let sql = format!(
        "WITH lapsed AS MATERIALIZED (
             SELECT uuid_v7() AS entry_id, id, customer_id, expires_at, remaining
             FROM loyalty_lots
             WHERE customer_id = ANY($3) AND remaining > 0 AND expires_at <= $4),
         postings AS (SELECT customer_id, uuid_v7() AS posting_id
                      FROM (SELECT DISTINCT customer_id FROM lapsed) c),
         spent AS (UPDATE loyalty_lots l SET remaining = 0 FROM lapsed x WHERE l.id = x.id),
         entries AS (INSERT INTO loyalty_ledger (id, customer_id, posting_id, kind, points,
                         lot_id, expires_at, occurred_at, actor_type, actor_id)
                     SELECT x.entry_id, x.customer_id, p.posting_id, 'expire', -x.remaining,
                            x.id, x.expires_at, x.expires_at, $1, $2
                     FROM lapsed x JOIN postings p USING (customer_id)
                     ORDER BY x.customer_id, x.expires_at, x.id
                     RETURNING {ENTRY_COLUMNS}),
         debits AS (SELECT customer_id, -remaining AS points FROM lapsed),
         {}",
        finish("debits")
    );

    diesel::sql_query(sql)
        .bind::<Text, _>(actor.kind())
        .bind::<Text, _>(actor.id())
        .bind::<Array<SqlUuid>, _>(customer_ids)
        .bind::<Timestamptz, _>(now)
        .prepared()
        .load(&mut conn)
        .await
}

/// Points earned on a purchase, and taken back from it so far (positive).
#[derive(Debug, Clone, Copy, Default, QueryableByName)]
pub struct PurchasePoints {
    #[diesel(sql_type = BigInt)]
    pub earned: i64,
    #[diesel(sql_type = BigInt)]
    pub reversed: i64,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub lot_id: Option<Uuid>,
}

pub async fn purchase_points(
    conn: &mut AsyncPgConnection,
    purchase_id: Uuid,
) -> QueryResult<PurchasePoints> {
    diesel::sql_query(
        "SELECT COALESCE(sum(points) FILTER (WHERE kind = 'earn'), 0)::bigint AS earned,
                COALESCE(-sum(points) FILTER (WHERE kind = 'reverse'), 0)::bigint AS reversed,
                (array_agg(lot_id) FILTER (WHERE kind = 'earn'))[1] AS lot_id
         FROM loyalty_ledger WHERE purchase_id = $1",
    )
    .bind::<SqlUuid, _>(purchase_id)
    .prepared()
    .get_result(conn)
    .await
}

/// A page of a member's ledger, newest first, after the entry numbered `before`.
pub async fn entries(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    kinds: &[EntryKind],
    before: Option<i64>,
    fetch: i64,
) -> QueryResult<Vec<EntryRecord>> {
    let mut query = loyalty_ledger::table
        .filter(loyalty_ledger::customer_id.eq(customer_id))
        .into_boxed();
    if !kinds.is_empty() {
        query = query.filter(loyalty_ledger::kind.eq_any(kinds.to_vec()));
    }
    if let Some(seq) = before {
        query = query.filter(loyalty_ledger::seq.lt(seq));
    }
    query
        .order(loyalty_ledger::seq.desc())
        .select(EntryRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// A member's whole ledger, oldest first (for a data-subject export).
pub async fn of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<EntryRecord>> {
    loyalty_ledger::table
        .filter(loyalty_ledger::customer_id.eq(customer_id))
        .order(loyalty_ledger::seq.asc())
        .select(EntryRecord::as_select())
        .load(conn)
        .await
}

/// Points of a member available now: lots not lapsed (those waiting for the expiry pass are
/// not spendable and not counted).
pub async fn available(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    now: DateTime<Utc>,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Sum {
        #[diesel(sql_type = BigInt)]
        points: i64,
    }
    let sum: Sum = diesel::sql_query(
        "SELECT COALESCE(sum(remaining), 0)::bigint AS points FROM loyalty_lots
         WHERE customer_id = $1 AND remaining > 0 AND (expires_at IS NULL OR expires_at > $2)",
    )
    .bind::<SqlUuid, _>(customer_id)
    .bind::<Timestamptz, _>(now)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(sum.points)
}

/// Forgets the free-text reasons of an erased customer's ledger.
pub async fn erase_reasons(conn: &mut AsyncPgConnection, customer_id: Uuid) -> QueryResult<()> {
    diesel::update(loyalty_ledger::table.filter(loyalty_ledger::customer_id.eq(customer_id)))
        .set(loyalty_ledger::reason.eq(None::<String>))
        .execute(conn)
        .await
        .map(drop)
}
