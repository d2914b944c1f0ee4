//! Tier evaluation (DOMAIN.md section 6), set-wise in SQL: the qualifying sum of each member
//! over the programme's window, the tier it reaches, and the move the downgrade policy
//! allows. The same statement serves one customer's purchase (upgrades only) and the
//! evaluation pass over every member, a batch at a time.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Deserialize;
use uuid::Uuid;

use crate::db::Prepare;

use super::json::{ChangeDirection, ChangeReason, QualificationBasis};

/// Where a basis's qualifying contributions live: rows of `table` (alias `c`) placed in
/// time by `at`, worth `value`, counted when `filter` holds (`w`: the window's row).
struct Source {
    table: &'static str,
    at: &'static str,
    value: &'static str,
    filter: &'static str,
}

const fn source(basis: QualificationBasis) -> Source {
    match basis {
        // Points earned on purchases in the window, net of refund reversals; redemptions,
        // expiry and adjustments do not count.
        QualificationBasis::PointsEarned => Source {
            table: "loyalty_ledger",
            at: "qualifying_at",
            value: "c.points",
            filter: "true",
        },
        // Money spent in the programme's currency, net of refunds.
        QualificationBasis::AmountSpent => Source {
            table: "purchases",
            at: "occurred_at",
            value: "c.amount - c.refunded",
            filter: "c.currency = w.currency",
        },
    }
}

/// The contributions of `customer` (an SQL expression) in the window `w`.
fn contributions(basis: QualificationBasis, customer: &str) -> String {
    let Source {
        table,
        at,
        value,
        filter,
    } = source(basis);
    format!(
        "SELECT c.{at} AS at, {value} AS value FROM {table} c \
         WHERE c.customer_id = {customer} AND {filter} \
           AND c.{at} > w.window_from AND c.{at} <= w.window_to"
    )
}

/// The qualifying sum of `customer` in the window `w`, as an SQL expression.
fn qualifying(basis: QualificationBasis, customer: &str) -> String {
    format!(
        "(SELECT COALESCE(sum(x.value), 0)::bigint FROM ({}) x)",
        contributions(basis, customer)
    )
}

/// The window row `w`: `$2` is the evaluation's time, `months` an SQL expression.
fn window(months: &str) -> String {
    format!(
        "w AS (SELECT p.currency, p.downgrade, p.grace_days, p.version, \
                      loyalty_window_start($2, {months}) AS window_from, \
                      $2::timestamptz AS window_to \
               FROM loyalty_program p)"
    )
}

/// A change of tier as recorded.
#[derive(Debug, Clone, QueryableByName, Deserialize)]
pub struct ChangeRecord {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub customer_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub from_tier: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub to_tier: Option<String>,
    #[diesel(sql_type = Text)]
    pub direction: ChangeDirection,
    #[diesel(sql_type = Text)]
    pub reason: ChangeReason,
    #[diesel(sql_type = Text)]
    pub basis: QualificationBasis,
    #[diesel(sql_type = BigInt)]
    pub qualifying: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub threshold: Option<i64>,
    #[diesel(sql_type = Timestamptz)]
    pub window_from: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub window_to: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub changed_at: DateTime<Utc>,
    #[diesel(sql_type = BigInt)]
    pub config_version: i64,
}

pub const CHANGE_COLUMNS: &str = "id, customer_id, from_tier, to_tier, direction, reason, \
    basis, qualifying, threshold, window_from, window_to, changed_at, config_version";

/// Evaluates the tiers of these members (their accounts locked by the caller) at `now`.
///
/// - A member whose qualifying sum reaches a higher tier moves up at once (`qualified`),
///   as does a member with no tier yet; one on a tier no longer in the programme moves to
///   the tier their sum reaches (`tier_removed`).
/// - With `upgrades_only` (a purchase), nothing else happens.
/// - Otherwise a member below their tier's threshold moves down to the tier their sum
///   reaches: at once under `window_end` (`below_threshold`); under `grace_period` once the
///   grace period has passed since an evaluation first found them below
///   (`grace_period_ended`); never under `never`.
///
/// Every move is written to the tier history; the moves are returned.
pub async fn evaluate(
    mut conn: &AsyncPgConnection,
    basis: QualificationBasis,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
    upgrades_only: bool,
) -> diesel::QueryResult<Vec<ChangeRecord>> {
    let sql = include_str!("evaluation_tiers.sql")
        .replace("{window}", &window("p.qualification_months"))
        .replace("{q}", &qualifying(basis, "a.customer_id"))
        .replace("{CHANGE_COLUMNS}", CHANGE_COLUMNS);
    diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(customer_ids)
        .bind::<Timestamptz, _>(now)
        .bind::<Bool, _>(upgrades_only)
        .bind::<Text, _>(basis)
        .prepared()
        .load(&mut conn)
        .await
}

/// Members' standing at `now`: what each account holds, what qualifies, what is available
/// and lapsing, and the tier history; what a member's view is made of. Customers who are no
/// members yet come back too, with no tier and nothing earned.
#[derive(Debug, Clone, QueryableByName)]
pub struct Standing {
    #[diesel(sql_type = SqlUuid)]
    pub customer_id: Uuid,
    #[diesel(sql_type = Nullable<Text>)]
    pub tier_key: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub tier_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub below_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub member_since: Option<DateTime<Utc>>,
    #[diesel(sql_type = BigInt)]
    pub qualifying: i64,
    #[diesel(sql_type = Timestamptz)]
    pub window_from: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub window_to: DateTime<Utc>,
    /// Points available at `now` (lots not lapsed).
    #[diesel(sql_type = BigInt)]
    pub balance: i64,
    /// `[Contribution]`: the qualifying contributions in the window, oldest first.
    #[diesel(sql_type = Jsonb)]
    pub contributions: serde_json::Value,
    /// `[Expiring]`: points lapsing after `now` and up to the horizon, soonest first.
    #[diesel(sql_type = Jsonb)]
    pub expiring: serde_json::Value,
    /// `[ChangeRecord]`: the tier history, oldest first.
    #[diesel(sql_type = Jsonb)]
    pub history: serde_json::Value,
}

/// The standing of these customers at `now`, points lapsing up to `horizon` included: one
/// statement, whatever their number (a member's view, and the events of a bulk change).
pub async fn standings(
    mut conn: &AsyncPgConnection,
    basis: QualificationBasis,
    customer_ids: &[Uuid],
    now: DateTime<Utc>,
    horizon: DateTime<Utc>,
) -> diesel::QueryResult<Vec<Standing>> {
    // `ids` rather than `c`: the contributions' own alias is `c`.
    let sql = include_str!("evaluation_standings.sql")
        .replace("{window}", &window("p.qualification_months"))
        .replace("{q}", &qualifying(basis, "ids.customer_id"))
        .replace("{c}", &contributions(basis, "ids.customer_id"))
        .replace("{CHANGE_COLUMNS}", CHANGE_COLUMNS);
    diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(customer_ids)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(horizon)
        .prepared()
        .load(&mut conn)
        .await
}

/// One qualifying contribution in the window.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Contribution {
    pub at: DateTime<Utc>,
    pub value: i64,
}

/// Points lapsing at one time.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Expiring {
    pub expires_at: DateTime<Utc>,
    pub points: i64,
}

/// Members counted by the tier they hold and the tier a qualifying sum would place them in.
#[derive(Debug, Clone, QueryableByName)]
pub struct Placement {
    #[diesel(sql_type = Nullable<Text>)]
    pub current: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub proposed: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub members: i64,
}

/// Where every member's qualifying sum at `now` would place them among `tiers` (keys and
/// thresholds, lowest first) with the given basis and window: one pass over the members.
pub async fn place(
    conn: &mut AsyncPgConnection,
    basis: QualificationBasis,
    months: i32,
    keys: &[String],
    thresholds: &[i64],
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<Placement>> {
    let sql = format!(
        "WITH {window},
         t AS (SELECT * FROM unnest($3::text[], $4::bigint[]) WITH ORDINALITY
               AS t(key, threshold, position)),
         m AS (SELECT a.tier_key, {q} AS qualifying FROM loyalty_accounts a CROSS JOIN w)
         SELECT m.tier_key AS current,
                (SELECT t.key FROM t WHERE t.threshold <= m.qualifying
                 ORDER BY t.position DESC LIMIT 1) AS proposed,
                count(*) AS members
         FROM m GROUP BY 1, 2",
        window = window("$1"),
        q = qualifying(basis, "a.customer_id"),
    );

    diesel::sql_query(sql)
        .bind::<Integer, _>(months)
        .bind::<Timestamptz, _>(now)
        .bind::<Array<Text>, _>(keys)
        .bind::<Array<BigInt>, _>(thresholds)
        .prepared()
        .load(conn)
        .await
}

/// A member's tier history, oldest first.
pub async fn history(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> diesel::QueryResult<Vec<ChangeRecord>> {
    diesel::sql_query(format!(
        "SELECT {CHANGE_COLUMNS} FROM loyalty_tier_changes WHERE customer_id = $1 \
         ORDER BY changed_at, id"
    ))
    .bind::<SqlUuid, _>(customer_id)
    .prepared()
    .load(conn)
    .await
}

/// Tier changes by id (the timeline's loader).
pub async fn changes_by_ids(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> diesel::QueryResult<Vec<ChangeRecord>> {
    diesel::sql_query(format!(
        "SELECT {CHANGE_COLUMNS} FROM loyalty_tier_changes WHERE id = ANY($1)"
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .prepared()
    .load(&mut conn)
    .await
}
