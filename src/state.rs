//! What every handler shares, built once at startup and handed to each worker.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::auth::AccessCache;
use crate::auth::jwt::JwtKeys;
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::db::DbPool;
use crate::http::metrics::Metrics;

pub struct AppState {
    pub settings: Settings,
    pub pool: DbPool,
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
    /// Set on SIGTERM: `/readyz` answers `503` while the listener still serves, so that load
    /// balancers stop sending before it closes.
    pub draining: AtomicBool,
}
