use actix_web::{HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::CustomerExport;
use crate::auth::{Held, Principal, Scope, ownership};
use crate::customers::json::Customer;
use crate::http::error::ApiError;
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(export_customer).service(erase_customer);
}

/// Export everything held on a customer.
///
/// The data-subject access document: the record unmasked, its lifecycle history, every
/// interaction and purchase, the loyalty points ledger and tier history, every survey
/// response and sales opportunity, and the audit trail
/// of its changes, as one JSON document. Needs `pii:read`.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = ["pii:read"])),
    responses((status = 200, description = "Everything held on the customer", body = CustomerExport))
)]
#[get("/customers/{id}/export")]
async fn export_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    principal.require(Scope::PiiRead)?;
    let mut conn = state.pool.get().await?;
    let export = super::export(&mut conn, principal.access, *id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(export))
}

/// Erase a customer's personal data.
///
/// Irreversible: the record stays as an anonymous shell (so that aggregates stay true),
/// personal data and free text about the person are removed, past audit entries keep who
/// changed the record and when but no longer what, and the erasure itself is audited.
/// Admins only. Erasing an erased customer changes nothing.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    security(("bearer" = ["customers:erase"])),
    responses((status = 200, description = "The anonymous shell", body = Customer))
)]
#[post("/customers/{id}/erase")]
async fn erase_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersErase)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let record = super::erase(&mut conn, &principal.actor, *id, &if_match).await?;
    let customer = crate::customers::view_for(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}
