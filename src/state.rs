//! What every handler shares, built once at startup and handed to each worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::{HttpRequest, ResponseError};
use diesel_async::AsyncPgConnection;
use tokio::sync::Notify;

use crate::auth::AccessCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::db::DbPool;
use crate::http::error::ApiError;
use crate::http::metrics::Metrics;

pub struct AppState {
    pub settings: Settings,
    pub pool: DbPool,
    /// Read replicas (`RAPPORT_READ_DATABASE_URLS`), when configured.
    pub replicas: Option<Arc<crate::db::replicas::Replicas>>,
    /// The background jobs' connections, with their longer statement timeout.
    pub jobs: DbPool,
    /// What the pool's connections sent to PostgreSQL and how much they prepared.
    pub statements: Arc<crate::db::StatementStats>,
    pub jwt: JwtKeys,
    /// The server key sealing secrets kept in the database.
    pub secrets: Arc<crate::secrets::SecretBox>,
    pub access: AccessCache,
    pub throttle: LoginThrottle,
    /// Each caller's request budget on this instance.
    pub rate_limits: crate::http::limiter::Limiter,
    /// Import uploads in flight, per caller.
    pub uploads: crate::http::in_flight::InFlight,
    pub metrics: Arc<Metrics>,
    /// Sends webhooks (the worker's and test pings).
    pub webhooks: crate::webhooks::Sender,
    /// Started on SIGTERM: `/readyz` answers `503` while the listener still serves, so that
    /// load balancers stop sending before it closes, and the background jobs hand back what
    /// they hold.
    pub draining: Drain,
}

impl AppState {
    /// Runs a read a replica may serve (lists, search, the timeline, analytics, the event
    /// feed): on a replica that is up, within the lag limit and, when the request carries a
    /// `Rapport-Consistency-Token`, past that write; else on the primary. A read that fails on
    /// a replica with a server-side error (the replica stopped, its connection broke, or a
    /// recovery conflict cancelled the statement) runs once more on the primary, so that a
    /// replica failing under load fails no request. Never for a read inside a write: that
    /// stays on the write's connection.
    pub async fn read<T>(
        &self,
        req: &HttpRequest,
        read: impl AsyncFn(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let token = crate::http::consistency::token(req)?;
        let Some(replicas) = &self.replicas else {
            let mut conn = self.pool.get().await?;
            return read(&mut conn).await;
        };
        let (mut conn, on_replica) = replicas.connection(&self.pool, token).await?;
        match read(&mut conn).await {
            Err(e) if on_replica && e.status_code().is_server_error() => {
                drop(conn);
                let mut conn = replicas.instead_of_replica(&self.pool).await?;
                read(&mut conn).await
            }
            outcome => outcome,
        }
    }

    /// The connections of a read that takes them over time (a streaming export), chosen as
    /// for [`read`](Self::read) once, when it starts.
    pub fn read_pool(&self, req: &HttpRequest) -> Result<crate::db::replicas::ReadPool, ApiError> {
        let token = crate::http::consistency::token(req)?;
        Ok(match &self.replicas {
            None => crate::db::replicas::ReadPool::primary(&self.pool),
            Some(replicas) => replicas.read_pool(&self.pool, token),
        })
    }
}

/// The service stopping: set once, on SIGTERM. Background jobs look at it between units of
/// work (a committed batch, a delivery) and then hand their leases back, so that another
/// instance takes their work at once instead of when the lease runs out.
#[derive(Debug, Default)]
pub struct Drain {
    started: AtomicBool,
    wake: Notify,
}

impl Drain {
    pub fn start(&self) {
        self.started.store(true, Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    /// Sleeps for `interval`, or less when the drain starts meanwhile; true when it has.
    pub async fn sleep(&self, interval: Duration) -> bool {
        let woken = self.wake.notified();
        if self.started() {
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = woken => {}
        }
        self.started()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::Drain;

    #[tokio::test]
    async fn a_drain_wakes_the_jobs_that_sleep() {
        let drain = Arc::new(Drain::default());
        assert!(!drain.sleep(Duration::from_millis(1)).await);
        let sleeper = {
            let drain = drain.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                (
                    drain.sleep(Duration::from_secs(3600)).await,
                    started.elapsed(),
                )
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drain.start();
        let (woken, slept) = sleeper.await.unwrap();
        assert!(woken && slept < Duration::from_secs(60));
        // Once started, it stays started and nobody sleeps.
        assert!(drain.started() && drain.sleep(Duration::from_secs(3600)).await);
    }
}
