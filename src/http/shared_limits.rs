//! Request limits shared across instances (`RAPPORT_RATE_LIMIT_SHARED=true`): every
//! instance behind the load balancer counts a caller's requests against ONE limit, agreed
//! through PostgreSQL, without a round trip per request.
//!
//! Each instance keeps counting in its own buckets (`limiter`), so a request never waits on
//! the database. A few times a second it hands on, in one statement for all callers, what it
//! admitted to each since the last flush: the shared bucket of each caller (table
//! `rate_limit_buckets`, see `db::rate_limits`) is refilled for the time since any instance
//! last touched it, the admitted requests are taken out of it, and what is left comes back,
//! to which the instance then sets its own bucket. Instances that admitted more between two
//! flushes than the shared bucket held leave it in debt (below zero): the caller is refused
//! until that is refilled, so over time no caller gets more than its limit.
//!
//! A flush comes every quarter second, and sooner (at most every [`GAP`]) when an instance
//! knows too little of a caller's shared bucket: the caller is new to it, it admitted a
//! quarter of the caller's quota since its last flush, or the caller is down to the last
//! quarter of its bucket (where what the others admitted matters most). So the overshoot before the
//! instances agree is bounded: each admits at most what the shared bucket held when it last
//! heard, and hands that on after at most a quarter of the quota (or 250 ms). A caller who
//! spends through `n` instances at once gets past its limit by at most about `n ×` a
//! quarter of its quota plus what it sends within one [`GAP`] and flush; one who keeps
//! sending at its limit, by at most `n × rate × 250 ms` (600/60s over 3 instances: 7.5
//! requests). What was admitted past the limit is then owed (the shared bucket goes below
//! zero and the caller is refused until that is refilled), so over any longer time no
//! caller gets more than its limit.
//!
//! When the database cannot be reached, each instance goes on counting on its own (the
//! limits fail open to per instance, they never refuse everyone), `/readyz` says
//! `rate_limits: local` and `rapport_rate_limits_shared` is 0; counts that could not be
//! handed on are dropped, and the instance agrees with the others again at the next flush
//! that goes through. Idle callers' shared buckets are forgotten once refilled
//! ([`FORGET_EVERY`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::web;

use super::limiter::Unshared;
use crate::state::{AppState, Drain};

/// How often each instance hands on what it admitted and takes back the shared counts (at
/// least): every [`GAP`] + this. A change is in force everywhere once every instance has
/// flushed: well within a second.
pub const FLUSH: Duration = Duration::from_millis(200);
/// The least time between two flushes of one instance. A bucket that knows too little of
/// the shared one (a caller new to this instance, a quarter of its quota admitted since the
/// last flush, or its last quarter reached) brings the next flush forward to this.
pub const GAP: Duration = Duration::from_millis(50);
/// The longest a flush may take before this instance counts on its own until the next.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an instance forgets the shared buckets that have refilled.
pub const FORGET_EVERY: Duration = Duration::from_secs(60);

/// Flushes every [`FLUSH`] until `stop` starts, then once more (what the last requests were
/// admitted), and returns. Does nothing unless the limits are shared.
pub async fn share(state: web::Data<AppState>, stop: Arc<Drain>) {
    if !state.settings.rate_limit_shared {
        return;
    }
    let mut forgotten = Instant::now();
    loop {
        let stopping = stop.sleep(GAP).await
            || tokio::select! {
                stopping = stop.sleep(FLUSH) => stopping,
                () = state.rate_limits.hurried() => stop.started(),
            };
        flush(&state, stopping).await;
        if stopping {
            return;
        }
        if forgotten.elapsed() >= FORGET_EVERY {
            forget_refilled(&state).await;
            forgotten = Instant::now();
        }
    }
}

/// One exchange with the shared buckets; `last` once the listener has closed.
pub async fn flush(state: &AppState, last: bool) {
    let limiter = &state.rate_limits;
    let taken = limiter.take_unshared();
    // Nothing to hand on: no round trip, unless the last one failed (this one then tells
    // whether the database is back).
    if taken.is_empty() && limiter.shared() {
        return;
    }
    let exchanged = tokio::time::timeout(FLUSH_TIMEOUT, exchange(state, &taken, last)).await;
    match exchanged {
        Ok(Ok(shared)) => {
            limiter.agree(&taken, &shared, Instant::now());
            if !limiter.shared() {
                tracing::info!("request limits are shared across instances again");
                limiter.set_shared(true);
            }
        }
        Ok(Err(err)) => lost(state, &err),
        Err(_) => lost(state, "the database did not answer in time"),
    }
}

fn lost(state: &AppState, reason: &str) {
    if state.rate_limits.shared() {
        tracing::warn!(
            reason,
            "cannot share request limits; each instance counts on its own until the database answers"
        );
        state.rate_limits.set_shared(false);
    }
}

async fn exchange(
    state: &AppState,
    taken: &[Unshared],
    last: bool,
) -> Result<Vec<(String, f64)>, String> {
    let callers: Vec<String> = taken.iter().map(|u| u.caller.clone()).collect();
    let admitted: Vec<i32> = taken
        .iter()
        .map(|u| i32::try_from(u.admitted).unwrap_or(i32::MAX))
        .collect();
    let quotas: Vec<i32> = taken
        .iter()
        .map(|u| i32::try_from(u.quota).unwrap_or(i32::MAX))
        .collect();
    let windows: Vec<i64> = taken
        .iter()
        .map(|u| i64::try_from(u.window.as_millis()).unwrap_or(i64::MAX))
        .collect();
    let add = async |conn: &mut diesel_async::AsyncPgConnection| {
        crate::db::rate_limits::add_admitted(conn, &callers, &admitted, &quotas, &windows)
            .await
            .map_err(|e| e.to_string())
    };
    let shared = if last {
        // The pool's connections were opened by the HTTP workers, and went with them when
        // the listener closed: the last flush opens one of its own.
        let database = &state.settings.database;
        let mut conn = crate::db::connect(database.session_url(), database.connect_timeout).await?;
        add(&mut conn).await?
    } else {
        let mut conn = state.pool.get().await.map_err(|e| e.to_string())?;
        add(&mut conn).await?
    };
    Ok(shared.into_iter().map(|s| (s.caller, s.tokens)).collect())
}

async fn forget_refilled(state: &AppState) {
    let forgotten = match state.pool.get().await {
        Ok(mut conn) => crate::db::rate_limits::forget_refilled(&mut conn)
            .await
            .map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    match forgotten {
        Ok(0) => {}
        Ok(n) => tracing::debug!(forgotten = n, "forgot refilled shared rate-limit buckets"),
        Err(err) => tracing::debug!(error = %err, "could not forget refilled rate-limit buckets"),
    }
}
