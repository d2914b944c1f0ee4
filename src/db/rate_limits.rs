//! The shared request-limit buckets (`RAPPORT_RATE_LIMIT_SHARED`, table `rate_limit_buckets`,
//! migration `2026-12-07-000010_shared_rate_limits`): SQL only. `http::shared_limits` calls
//! it a few times a second from each instance.
//!
//! Each statement stands alone (no transaction, no session state), so it runs on the request
//! pool as it is, through a transaction-mode pooler too, and always on the primary.

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Double, Integer, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::Prepare;

/// A shared bucket's tokens, as of the statement that returned them.
#[derive(Debug, QueryableByName)]
pub struct SharedTokens {
    #[diesel(sql_type = Text)]
    pub caller: String,
    #[diesel(sql_type = Double)]
    pub tokens: f64,
}

/// Adds what this instance admitted to each caller's shared bucket, in one statement: the
/// bucket is refilled for the time since it was last touched (by any instance), less what
/// was admitted; a bucket under another limit than the one given starts afresh under it.
/// Returns each bucket's tokens left. Pass the callers in one order (by key) from every
/// instance, so that flushes that touch the same buckets lock them in the same order.
pub async fn add_admitted(
    conn: &mut AsyncPgConnection,
    callers: &[String],
    admitted: &[i32],
    quotas: &[i32],
    windows_ms: &[i64],
) -> QueryResult<Vec<SharedTokens>> {
    diesel::sql_query(
        "INSERT INTO rate_limit_buckets AS b (caller, tokens, at, quota, window_ms)
         SELECT caller, quota::float8 - admitted, now(), quota, window_ms
         FROM unnest($1::text[], $2::int[], $3::int[], $4::bigint[])
             WITH ORDINALITY AS a (caller, admitted, quota, window_ms, n)
         ORDER BY n
         ON CONFLICT (caller) DO UPDATE SET
             tokens = CASE
                 WHEN b.quota = excluded.quota AND b.window_ms = excluded.window_ms THEN
                     least(b.quota::float8, b.tokens
                         + greatest(0, extract(epoch FROM excluded.at - b.at)::float8)
                           * 1000 * b.quota / b.window_ms)
                     - (excluded.quota - excluded.tokens)
                 ELSE excluded.tokens
             END,
             at = greatest(b.at, excluded.at),
             quota = excluded.quota,
             window_ms = excluded.window_ms
         RETURNING caller, tokens",
    )
    .bind::<Array<Text>, _>(callers)
    .bind::<Array<Integer>, _>(admitted)
    .bind::<Array<Integer>, _>(quotas)
    .bind::<Array<BigInt>, _>(windows_ms)
    .prepared()
    .load(conn)
    .await
}

/// Forgets the buckets that have refilled: a caller without one starts with a full bucket,
/// which is the same. Returns how many.
pub async fn forget_refilled(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM rate_limit_buckets
         WHERE at + (quota - tokens) * window_ms / quota * interval '1 millisecond' <= now()",
    )
    .prepared()
    .execute(conn)
    .await
}
