use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{AuditEvent, AuditQuery};
use super::store;
use crate::auth::{Principal, Scope};
use crate::http::error::ApiError;
use crate::http::pagination::{self, Page};
use crate::http::query::Query;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_audit_events);
}

/// List the audit log.
///
/// Every write to Rapport, newest first: who (actor), what (action, entity, changed fields),
/// when, and the request id. Needs `audit:read` (admins).
#[utoipa::path(
    tag = "Audit",
    params(AuditQuery),
    security(("bearer" = ["audit:read"])),
    responses((status = 200, description = "A page of audit events", body = Page<AuditEvent>))
)]
#[get("/audit")]
async fn list_audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::AuditRead)?;
    let filter = query.into_inner();
    let page = pagination::request::<Uuid>(filter.limit, filter.cursor.as_deref(), "id")?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, &filter, page.after, page.fetch()).await?;
    Ok(HttpResponse::Ok().json(pagination::page(rows, &page, "id", |e| e.id)))
}
