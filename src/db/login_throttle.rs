//! The sign-in throttle's shared books (`RAPPORT_RATE_LIMIT_SHARED`, tables
//! `login_throttle_accounts`, `login_throttle_address_failures` and `login_throttle_known`,
//! migration `2026-12-08-000001_shared_login_throttle`): SQL only. `auth::throttle` reads
//! them before each credentials check and records the outcome after; the rules stay there.
//!
//! Keys are hashes (see `auth::throttle`), never emails or addresses. Times are the
//! database's `now()`, so the instances' clocks need not agree. Each statement stands alone
//! (no transaction, no session state): it runs on the request pool, through a
//! transaction-mode pooler too, and always on the primary.

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Prepare;

/// What the shared books hold of one account at one address.
#[derive(Debug, QueryableByName)]
pub struct Standing {
    /// The account's failures, when the last was within the window.
    #[diesel(sql_type = Nullable<Integer>)]
    pub failures: Option<i32>,
    /// Milliseconds since the account's last failure (with `failures`).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub since_failure_ms: Option<i64>,
    /// Other accounts that failed from the address within the window.
    #[diesel(sql_type = BigInt)]
    pub address_failed_others: i64,
    /// Milliseconds since the last failure from the address within the window.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub since_address_failure_ms: Option<i64>,
    /// Whether the account signed in from the address within `known_ms`.
    #[diesel(sql_type = Bool)]
    pub known: bool,
}

/// Reads the shared standing of `account` at `address`, in one statement: failures older
/// than `window_ms` and successes older than `known_ms` count for nothing.
pub async fn standing(
    conn: &mut AsyncPgConnection,
    account: &str,
    address: &str,
    window_ms: i64,
    known_ms: i64,
) -> QueryResult<Standing> {
    diesel::sql_query(
        "SELECT a.failures, a.since_failure_ms, f.address_failed_others,
                f.since_address_failure_ms,
                EXISTS (SELECT 1 FROM login_throttle_known
                        WHERE account = $1 AND address = $2
                          AND at > now() - $4 * interval '1 millisecond') AS known
         FROM (SELECT count(*) FILTER (WHERE account <> $1) AS address_failed_others,
                      (extract(epoch FROM now() - max(at)) * 1000)::bigint
                          AS since_address_failure_ms
               FROM login_throttle_address_failures
               WHERE address = $2 AND at > now() - $3 * interval '1 millisecond') f
         LEFT JOIN LATERAL (
             SELECT failures, (extract(epoch FROM now() - last_at) * 1000)::bigint
                        AS since_failure_ms
             FROM login_throttle_accounts
             WHERE account = $1 AND last_at > now() - $3 * interval '1 millisecond') a
         ON true",
    )
    .bind::<Text, _>(account)
    .bind::<Text, _>(address)
    .bind::<BigInt, _>(window_ms)
    .bind::<BigInt, _>(known_ms)
    .prepared()
    .get_result(conn)
    .await
}

/// Records a failed check of `account` from `address`: one more failure for the account
/// (the first again when its last was longer than `window_ms` ago), and the account among
/// those that failed from the address. One statement; it touches the account's row before
/// the address's, as [`record_success`] does, so that the two never deadlock.
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    account: &str,
    address: &str,
    window_ms: i64,
) -> QueryResult<usize> {
    // The data-modifying CTE runs after the main statement: the account's row first.
    diesel::sql_query(
        "WITH at_address AS (
             INSERT INTO login_throttle_address_failures (address, account, at)
             VALUES ($2, $1, now())
             ON CONFLICT (address, account) DO UPDATE SET at = excluded.at
         )
         INSERT INTO login_throttle_accounts AS t (account, failures, last_at)
         VALUES ($1, 1, now())
         ON CONFLICT (account) DO UPDATE SET
             failures = CASE
                 WHEN t.last_at > now() - $3 * interval '1 millisecond' THEN t.failures + 1
                 ELSE 1
             END,
             last_at = excluded.last_at",
    )
    .bind::<Text, _>(account)
    .bind::<Text, _>(address)
    .bind::<BigInt, _>(window_ms)
    .prepared()
    .execute(conn)
    .await
}

/// Records a successful check: the account's failures are cleared, it no longer counts as
/// failing from the address, and it is known there from now. One statement.
pub async fn record_success(
    conn: &mut AsyncPgConnection,
    account: &str,
    address: &str,
) -> QueryResult<usize> {
    // The data-modifying CTEs run after the main statement: the account's row first.
    diesel::sql_query(
        "WITH forgiven AS (
             DELETE FROM login_throttle_address_failures WHERE address = $2 AND account = $1
         ),
         known AS (
             INSERT INTO login_throttle_known (account, address, at) VALUES ($1, $2, now())
             ON CONFLICT (account, address) DO UPDATE SET at = excluded.at
         )
         DELETE FROM login_throttle_accounts WHERE account = $1",
    )
    .bind::<Text, _>(account)
    .bind::<Text, _>(address)
    .prepared()
    .execute(conn)
    .await
}

#[derive(Debug, QueryableByName)]
struct Forgotten {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Deletes what the throttle no longer reads: failures older than `window_ms`, successes
/// older than `known_ms`. Returns how many rows went.
pub async fn forget_stale(
    conn: &mut AsyncPgConnection,
    window_ms: i64,
    known_ms: i64,
) -> QueryResult<i64> {
    let forgotten: Forgotten = diesel::sql_query(
        "WITH accounts AS (
             DELETE FROM login_throttle_accounts
             WHERE last_at <= now() - $1 * interval '1 millisecond' RETURNING 1
         ), addresses AS (
             DELETE FROM login_throttle_address_failures
             WHERE at <= now() - $1 * interval '1 millisecond' RETURNING 1
         ), known AS (
             DELETE FROM login_throttle_known
             WHERE at <= now() - $2 * interval '1 millisecond' RETURNING 1
         )
         SELECT (SELECT count(*) FROM accounts) + (SELECT count(*) FROM addresses)
                + (SELECT count(*) FROM known) AS n",
    )
    .bind::<BigInt, _>(window_ms)
    .bind::<BigInt, _>(known_ms)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(forgotten.n)
}
