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
        .body(state.metrics.render(&state.pool, &state.statements))
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
