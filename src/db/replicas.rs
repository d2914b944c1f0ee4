//! Read replicas: streaming standbys of the primary that reads may be served from.
//!
//! A monitor polls the primary's WAL position and each replica's replayed position a few
//! times a second. A replica serves a read only while it is up, in recovery, no more than
//! `max_lag` behind, and, when the read carries a write's consistency token (the primary's
//! WAL position after that write committed), once it has replayed past that token. Otherwise
//! the primary serves it: no client reads its own write as missing.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel_async::RunQueryDsl;

use diesel_async::pooled_connection::deadpool::PoolError;

use super::{DbConn, DbPool};

/// A position in the primary's write-ahead log (`pg_lsn`), as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Reads PostgreSQL's text form, `16/B374D848`.
    pub fn parse(text: &str) -> Option<Self> {
        let (high, low) = text.trim().split_once('/')?;
        let valid = |part: &str| !part.is_empty() && part.len() <= 8;
        if !valid(high) || !valid(low) {
            return None;
        }
        let high = u64::from_str_radix(high, 16).ok()?;
        let low = u64::from_str_radix(low, 16).ok()?;
        Some(Self((high << 32) | low))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// What the monitor last saw of a replica.
#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    /// Answering, and replaying the primary's WAL (not promoted).
    pub up: bool,
    pub replayed: Option<Lsn>,
    /// How long ago the primary passed the position the replica has replayed (zero when it
    /// has replayed everything the primary wrote).
    pub lag: Option<Duration>,
    /// Why it is down, in one line (no credentials).
    pub error: Option<String>,
}

pub struct Replica {
    /// The replica's URL without its password, for `/readyz` and `/metrics`.
    pub name: String,
    pub pool: DbPool,
    status: Mutex<ReplicaStatus>,
    /// Reads it served.
    pub served: AtomicU64,
}

impl Replica {
    pub fn new(name: String, pool: DbPool) -> Self {
        Self {
            name,
            pool,
            status: Mutex::new(ReplicaStatus::default()),
            served: AtomicU64::new(0),
        }
    }

    pub fn status(&self) -> ReplicaStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn set(&self, status: ReplicaStatus) {
        if let Ok(mut s) = self.status.lock() {
            if s.up != status.up {
                match &status.error {
                    Some(error) => {
                        tracing::warn!(replica = %self.name, %error, "read replica down: its reads go to the primary");
                    }
                    None => tracing::info!(replica = %self.name, "read replica up"),
                }
            }
            *s = status;
        }
    }

    fn fail(&self, error: String) {
        self.set(ReplicaStatus {
            error: Some(error),
            ..ReplicaStatus::default()
        });
    }
}

/// The replicas, and what reads they and the primary served.
pub struct Replicas {
    pub members: Vec<Replica>,
    pub max_lag: Duration,
    /// Reads the primary served while replicas were configured.
    pub primary_served: AtomicU64,
    next: AtomicUsize,
    /// The primary's recent WAL positions, oldest first, with when they were seen.
    history: Mutex<VecDeque<(Instant, Lsn)>>,
}

/// How often the monitor looks; also the resolution of the lag it reports.
pub const POLL: Duration = Duration::from_millis(200);

/// How long one look at a replica may take before it counts as down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

impl Replicas {
    pub fn new(members: Vec<Replica>, max_lag: Duration) -> Self {
        Self {
            members,
            max_lag,
            primary_served: AtomicU64::new(0),
            next: AtomicUsize::new(0),
            history: Mutex::new(VecDeque::new()),
        }
    }

    /// A replica that may serve a read carrying `token` (or none), taking turns among them.
    pub fn choose(&self, token: Option<Lsn>) -> Option<&Replica> {
        let count = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..count)
            .map(|i| &self.members[(start + i) % count])
            .find(|r| {
                let s = r.status();
                s.up && s.lag.is_some_and(|lag| lag <= self.max_lag)
                    && token.is_none_or(|t| s.replayed.is_some_and(|seen| seen >= t))
            })
    }

    /// A connection for a read carrying `token`, and whether a replica gave it: from a
    /// replica that may serve it, else from the primary. A replica whose pool fails (its
    /// connections are checked at checkout) is marked down and the primary serves.
    pub async fn connection(
        &self,
        primary: &DbPool,
        token: Option<Lsn>,
    ) -> Result<(DbConn, bool), PoolError> {
        if let Some(replica) = self.choose(token) {
            match replica.pool.get().await {
                Ok(conn) => {
                    replica.served.fetch_add(1, Ordering::Relaxed);
                    return Ok((conn, true));
                }
                Err(e) => replica.fail(super::one_line(&e.to_string())),
            }
        }
        self.primary_served.fetch_add(1, Ordering::Relaxed);
        Ok((primary.get().await?, false))
    }

    /// The primary's connection for a read that failed on a replica, to run it again.
    pub async fn instead_of_replica(&self, primary: &DbPool) -> Result<DbConn, PoolError> {
        tracing::warn!("a read failed on a read replica: the primary serves it again");
        self.primary_served.fetch_add(1, Ordering::Relaxed);
        primary.get().await
    }

    /// Where a read that takes connections over time (a streaming export) reads from: a
    /// replica that may serve `token` when it starts, counted once; else the primary.
    pub fn read_pool(&self, primary: &DbPool, token: Option<Lsn>) -> ReadPool {
        match self.choose(token) {
            Some(replica) => {
                replica.served.fetch_add(1, Ordering::Relaxed);
                ReadPool {
                    replica: Some(replica.pool.clone()),
                    primary: primary.clone(),
                }
            }
            None => {
                self.primary_served.fetch_add(1, Ordering::Relaxed);
                ReadPool::primary(primary)
            }
        }
    }

    /// One look at the primary and every replica.
    pub async fn poll(&self, primary: &DbPool) {
        let now = Instant::now();
        if let Ok(Ok(Some(lsn))) =
            tokio::time::timeout(PROBE_TIMEOUT, primary_position(primary)).await
            && let Ok(mut history) = self.history.lock()
        {
            if history.back().is_none_or(|(_, last)| *last != lsn) {
                history.push_back((now, lsn));
            }
            // Enough history to tell any lag up to well past the limit.
            let keep = self.max_lag.max(Duration::from_secs(10)) * 2;
            while history.len() > 1
                && history
                    .front()
                    .is_some_and(|(at, _)| now.duration_since(*at) > keep)
            {
                history.pop_front();
            }
        }
        for replica in &self.members {
            match tokio::time::timeout(PROBE_TIMEOUT, replica_position(&replica.pool)).await {
                Ok(Ok((true, Some(replayed)))) => replica.set(ReplicaStatus {
                    up: true,
                    replayed: Some(replayed),
                    lag: self.lag(replayed, now),
                    error: None,
                }),
                Ok(Ok((false, _))) => replica.fail("not in recovery (promoted?)".to_owned()),
                Ok(Ok((true, None))) => replica.fail("has replayed nothing yet".to_owned()),
                Ok(Err(e)) => replica.fail(e),
                Err(_) => replica.fail(format!("no answer within {PROBE_TIMEOUT:?}")),
            }
        }
    }

    /// How long ago the primary first wrote past `replayed`: zero when it has not.
    fn lag(&self, replayed: Lsn, now: Instant) -> Option<Duration> {
        let history = self.history.lock().ok()?;
        let (_, newest) = history.back()?;
        if replayed >= *newest {
            return Some(Duration::ZERO);
        }
        // The primary was at most at `replayed` until the first position past it was seen.
        let passed = history
            .iter()
            .find(|(_, lsn)| *lsn > replayed)
            .map_or(now, |(at, _)| *at);
        // Before the history starts: at least as old as the history.
        Some(now.duration_since(passed))
    }
}

/// The connections of one long read: the replica chosen when it started, and the primary
/// once that replica fails. A replica that stops answering mid-way costs the read nothing
/// but the switch; it is never sent back to the replica (which may have fallen behind).
#[derive(Clone)]
pub struct ReadPool {
    replica: Option<DbPool>,
    primary: DbPool,
}

impl ReadPool {
    pub fn primary(pool: &DbPool) -> Self {
        Self {
            replica: None,
            primary: pool.clone(),
        }
    }

    /// A connection: the replica's while it gives one, else the primary's.
    pub async fn get(&mut self) -> Result<DbConn, PoolError> {
        if let Some(replica) = &self.replica {
            match replica.get().await {
                Ok(conn) => return Ok(conn),
                Err(e) => {
                    tracing::warn!(error = %super::one_line(&e.to_string()),
                        "read replica failed during a long read: the primary serves the rest");
                    self.replica = None;
                }
            }
        }
        self.primary.get().await
    }

    /// After a failed statement on the replica's connection: the rest goes to the primary.
    /// False when the primary was already serving (the failure is the read's own).
    pub fn fall_back(&mut self) -> bool {
        self.replica.take().is_some()
    }
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Nullable<Text>)]
    lsn: Option<String>,
}

#[derive(QueryableByName)]
struct Replay {
    #[diesel(sql_type = Bool)]
    recovering: bool,
    #[diesel(sql_type = Nullable<Text>)]
    lsn: Option<String>,
}

/// The primary's current WAL position.
pub async fn primary_position(pool: &DbPool) -> Result<Option<Lsn>, String> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| super::one_line(&e.to_string()))?;
    current_position(&mut conn).await
}

/// The WAL position of the primary `conn` is connected to.
pub async fn current_position(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<Option<Lsn>, String> {
    let row: Position = diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn")
        .get_result(conn)
        .await
        .map_err(|e| super::one_line(&e.to_string()))?;
    Ok(row.lsn.as_deref().and_then(Lsn::parse))
}

async fn replica_position(pool: &DbPool) -> Result<(bool, Option<Lsn>), String> {
    let mut conn = pool
        .get()
        .await
        .map_err(|e| super::one_line(&e.to_string()))?;
    let row: Replay = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS recovering, pg_last_wal_replay_lsn()::text AS lsn",
    )
    .get_result(&mut conn)
    .await
    .map_err(|e| super::one_line(&e.to_string()))?;
    Ok((row.recovering, row.lsn.as_deref().and_then(Lsn::parse)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_and_print_as_postgresql_writes_them() {
        let lsn = Lsn::parse("16/B374D848").unwrap();
        assert_eq!(lsn.0, (0x16 << 32) | 0xB374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!(Lsn::parse("0/A").unwrap() < Lsn::parse("1/0").unwrap());
        for bad in ["", "16", "/1", "1/", "x/1", "1/2/3", "123456789/0", "-1/0"] {
            assert_eq!(Lsn::parse(bad), None, "{bad}");
        }
    }
}
