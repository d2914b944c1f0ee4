//! Operations endpoints: liveness, readiness and metrics, outside `/v1` and unauthenticated.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db;
use crate::http::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// Health of the process or of its dependencies.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (can serve requests).
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Is the process alive?
///
/// Answers `200` as long as the process serves HTTP, whatever the database's state: for a
/// liveness probe, which should not restart the service because PostgreSQL is down.
#[utoipa::path(tag = "Operations", responses((status = 200, description = "Alive", body = Health)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Can the service serve requests?
///
/// `200` when the database answers and every migration this build embeds is applied;
/// `503` otherwise. For a readiness probe and load balancers.
#[utoipa::path(tag = "Operations", responses((status = 200, description = "Ready", body = Health)))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    if !db::migrations_applied(&mut conn).await? {
        return Err(ApiError::new(
            crate::http::ErrorCode::ServiceUnavailable,
            "the database lacks migrations this version needs; run `rapport migrate`",
        ));
    }
    Ok(HttpResponse::Ok().json(Health { status: "ready" }))
}

/// Metrics in Prometheus text format.
///
/// `http_requests_total` and `http_request_duration_seconds` by method, route pattern and
/// status; `db_pool_*` gauges for the connection pool.
#[utoipa::path(
    tag = "Operations",
    responses((status = 200, description = "Prometheus text exposition", body = String,
        content_type = "text/plain; version=0.0.4"))
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.pool, &state.statements))
}
