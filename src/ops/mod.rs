//! Operations endpoints outside `/v1`: liveness and readiness (unauthenticated), and metrics
//! (`metrics:read`, or without a token on their own address when `RAPPORT_METRICS_BIND` is set).

use actix_web::{FromRequest, HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{Principal, Scope};
use crate::db;
use crate::http::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// The path of the metrics endpoint, on the main address or on `RAPPORT_METRICS_BIND`.
pub const METRICS_PATH: &str = "/metrics";

/// Health of the process or of its dependencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (can serve requests).
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Readiness only: `following` while this instance hears at once of changes made
    /// elsewhere to users, clients, tokens and signing keys (LISTEN on a direct connection);
    /// `lost` while it reconnects (changes elsewhere are then in force here within a second).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "following")]
    pub change_notifications: Option<&'static str>,
    /// Readiness only, when `RAPPORT_RATE_LIMIT_SHARED` is on: `shared` while this instance
    /// counts requests against the limits it shares with the other instances (through the
    /// database, a few times a second); `local` while it cannot reach them and counts on its
    /// own (every instance then allows each caller its whole limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "shared")]
    pub rate_limits: Option<&'static str>,
    /// Readiness only, when read replicas are configured: each replica in the order of
    /// `RAPPORT_READ_DATABASE_URLS`. The service stays ready while replicas are down: the
    /// primary then serves their reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<Vec<ReplicaHealth>>,
}

/// One read replica as the service last saw it (a few times a second).
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplicaHealth {
    /// `replica-N`: its place in `RAPPORT_READ_DATABASE_URLS`, from 1.
    #[schema(example = "replica-1")]
    pub name: String,
    /// `serving` (up and within `RAPPORT_REPLICA_MAX_LAG`), `lagging` (further behind: its
    /// reads go to the primary until it catches up) or `down` (not answering, or not
    /// replaying: skipped and retried).
    #[schema(example = "serving")]
    pub state: &'static str,
    /// How long ago the primary wrote past what the replica has replayed, in milliseconds
    /// (0: it has replayed everything). Absent while down.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 0)]
    pub lag_ms: Option<u64>,
}

fn rate_limits_health(state: &AppState) -> Option<&'static str> {
    state.settings.rate_limit_shared.then(|| {
        if state.rate_limits.shared() {
            "shared"
        } else {
            "local"
        }
    })
}

/// Whether the request limits are shared right now (when `RAPPORT_RATE_LIMIT_SHARED` is on).
fn rate_limit_metrics(state: &AppState) -> String {
    match rate_limits_health(state) {
        None => String::new(),
        Some(health) => format!(
            "# HELP rapport_rate_limits_shared Whether request limits are counted with the other instances (1) or on this one alone because the database cannot be reached (0).\n\
             # TYPE rapport_rate_limits_shared gauge\nrapport_rate_limits_shared {}\n",
            u8::from(health == "shared")
        ),
    }
}

fn replica_health(state: &AppState) -> Option<Vec<ReplicaHealth>> {
    let replicas = state.replicas.as_ref()?;
    Some(
        replicas
            .members
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let status = r.status();
                let lag = status.lag.filter(|_| status.up);
                ReplicaHealth {
                    name: format!("replica-{}", i + 1),
                    state: match lag {
                        None => "down",
                        Some(lag) if lag > replicas.max_lag => "lagging",
                        Some(_) => "serving",
                    },
                    lag_ms: lag.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
                }
            })
            .collect(),
    )
}

/// The replicas' lines of the metrics exposition: each one's lag and state, and the reads
/// each served beside the primary's.
fn replica_metrics(state: &AppState) -> String {
    use std::fmt::Write;
    use std::sync::atomic::Ordering;
    let Some(replicas) = state.replicas.as_ref() else {
        return String::new();
    };
    let mut out = String::new();
    let health = replica_health(state).unwrap_or_default();
    let _ = writeln!(
        out,
        "# HELP rapport_replica_lag_seconds How far the replica is behind the primary (absent while down).\n# TYPE rapport_replica_lag_seconds gauge"
    );
    for h in &health {
        if let Some(ms) = h.lag_ms {
            let _ = writeln!(
                out,
                "rapport_replica_lag_seconds{{replica=\"{}\"}} {}",
                h.name,
                ms as f64 / 1000.0
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP rapport_replica_serving Whether the replica serves reads (1) or is lagging or down (0).\n# TYPE rapport_replica_serving gauge"
    );
    for h in &health {
        let serving = u8::from(h.state == "serving");
        let _ = writeln!(
            out,
            "rapport_replica_serving{{replica=\"{}\"}} {serving}",
            h.name
        );
    }
    let _ = writeln!(
        out,
        "# HELP rapport_reads_total Reads a replica could serve, by who served them.\n# TYPE rapport_reads_total counter"
    );
    let _ = writeln!(
        out,
        "rapport_reads_total{{served_by=\"primary\"}} {}",
        replicas.primary_served.load(Ordering::Relaxed)
    );
    for (h, r) in health.iter().zip(&replicas.members) {
        let _ = writeln!(
            out,
            "rapport_reads_total{{served_by=\"{}\"}} {}",
            h.name,
            r.served.load(Ordering::Relaxed)
        );
    }
    out
}

/// Is the process alive?
///
/// Answers `200` as long as the process serves HTTP, whatever the database's state: for a
/// liveness probe, which should not restart the service because PostgreSQL is down.
#[utoipa::path(tag = "Operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        change_notifications: None,
        rate_limits: None,
        replicas: None,
    })
}

/// Can the service serve requests?
///
/// `200` when the database answers and every migration this build embeds is applied;
/// `503` otherwise, and from the moment the service is asked to stop (`SIGTERM`): it keeps
/// serving for `RAPPORT_SHUTDOWN_DRAIN` so that load balancers take it out first. For a
/// readiness probe and load balancers.
#[utoipa::path(tag = "Operations", responses((status = 200, description = "Ready", body = Health)))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.draining.started() {
        return Err(ApiError::new(
            crate::http::ErrorCode::ServiceUnavailable,
            "the service is shutting down",
        ));
    }
    let mut conn = state.pool.get().await?;
    if !db::migrations_applied(&mut conn).await? {
        return Err(ApiError::new(
            crate::http::ErrorCode::ServiceUnavailable,
            "the database lacks migrations this version needs; run `rapport migrate`",
        ));
    }
    Ok(HttpResponse::Ok().json(Health {
        status: "ready",
        change_notifications: Some(if state.access.listening() {
            "following"
        } else {
            "lost"
        }),
        rate_limits: rate_limits_health(&state),
        replicas: replica_health(&state),
    }))
}

/// Metrics in Prometheus text format.
///
/// `http_requests_total` and `http_request_duration_seconds` by method, route pattern and
/// status; `db_pool_*` gauges for the connection pool. Needs `metrics:read` (admins; give it
/// to a scraper's integration client). When the operator sets `RAPPORT_METRICS_BIND`, this
/// path is served there without a token instead, and is a `404` here.
#[utoipa::path(
    tag = "Operations",
    security(("bearer" = ["metrics:read"])),
    responses((status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain; version=0.0.4"))
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if state.settings.metrics_bind.is_some() {
        return Err(ApiError::new(
            crate::http::ErrorCode::NotFound,
            format!("no route {METRICS_PATH}"),
        ));
    }
    // Extracted here rather than as an argument: served elsewhere, the path is a 404 to
    // anyone, with or without a token.
    let principal = Principal::extract(&req).await?;
    principal.require(Scope::MetricsRead)?;
    Ok(exposition(&state))
}

/// The exposition itself, for the token-guarded route and for the metrics-only listener.
pub fn exposition(state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(
            state.metrics.render(&state.pool, &state.statements)
                + &replica_metrics(state)
                + &rate_limit_metrics(state),
        )
}

/// The only service of the `RAPPORT_METRICS_BIND` listener: `GET /metrics` without a token
/// (whoever reaches that address is trusted to read it), `405` for another method, `404`
/// for any other path.
pub async fn metrics_only(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    use actix_web::ResponseError;
    if req.path() != METRICS_PATH {
        return ApiError::new(
            crate::http::ErrorCode::NotFound,
            format!(
                "no route {}; this address serves {METRICS_PATH} only",
                req.path()
            ),
        )
        .error_response();
    }
    if req.method() != actix_web::http::Method::GET {
        return crate::http::fallback::method_not_allowed(req.method(), &["GET".to_owned()]);
    }
    exposition(&state)
}
