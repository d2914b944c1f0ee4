use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{Purchase, PurchaseInput, PurchasesQuery, RefundInput};
use super::store;
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::{self, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_purchase)
        .service(customer_purchases)
        .service(list_purchases)
        .service(get_purchase)
        .service(refund_purchase);
}

/// Record a purchase.
///
/// Amounts are integers in the currency's minor unit (4900 = 49.00 EUR). Send the till's
/// receipt id as `external_ref`: sending the same purchase again answers `200` with the
/// purchase already recorded (`Idempotent-Replayed: true`), so a retry never records it
/// twice.
#[utoipa::path(
    tag = "Purchases",
    params(("id" = Uuid, Path, description = "Customer id")),
    request_body = PurchaseInput,
    security(("bearer" = ["purchases:write"])),
    responses(
        (status = 201, description = "The new purchase", body = Purchase,
            headers(("Location" = String, description = "URL of the new purchase"),
                    ("ETag" = String, description = "Version tag"))),
        (status = 200, description = "This `external_ref` was recorded already, for the same \
            customer, amount and currency: the recorded purchase", body = Purchase,
            headers(("ETag" = String, description = "Version tag"),
                    ("Idempotent-Replayed" = bool, description = "`true`: an earlier \
                        request's result, nothing was recorded again"))),
        (status = 404, description = "No such live customer", body = Problem,
            content_type = PROBLEM),
        (status = 409, description = "Another purchase has this `external_ref`, or the \
            customer's personal data was erased", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/purchases")]
async fn create_purchase(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<PurchaseInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let (purchase, created) =
        super::create(&mut conn, &principal.actor, *id, input.into_inner()).await?;
    Ok(if created {
        response::created(
            &format!("/v1/purchases/{}", purchase.id),
            purchase.version,
            &purchase,
        )
    } else {
        response::replayed_versioned(purchase.version, &purchase)
    })
}

async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    query: PurchasesQuery,
    customer_id: Option<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (filter, sort) = super::list_filter(principal, &query, customer_id)?;
    let page = pagination::request::<(DateTime<Utc>, Uuid)>(
        query.limit,
        query.cursor.as_deref(),
        sort.as_str(),
    )?;
    let rows = state
        .read(req, async |conn| {
            Ok(store::list(conn, &filter, sort, page.after, page.fetch()).await?)
        })
        .await?;
    let rows: Vec<Purchase> = rows.into_iter().map(super::view).collect();
    Ok(
        HttpResponse::Ok().json(pagination::page(rows, &page, sort.as_str(), |p| {
            (p.occurred_at, p.id)
        })),
    )
}

/// List a customer's purchases, newest first by default.
#[utoipa::path(
    tag = "Purchases",
    params(("id" = Uuid, Path, description = "Customer id"), PurchasesQuery),
    security(("bearer" = ["purchases:read"])),
    responses((status = 200, description = "A page of purchases", body = Page<Purchase>))
)]
#[get("/customers/{id}/purchases")]
async fn customer_purchases(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesRead)?;
    let query: PurchasesQuery = query::parse(req.query_string())?;
    if query.customer_id.is_some_and(|c| c != *id) {
        return Err(invalid(
            "customer_id",
            "differs from the customer in the path",
        ));
    }
    list_page(&state, &req, &principal, query, Some(*id)).await
}

/// List purchases across customers, newest first by default.
#[utoipa::path(
    tag = "Purchases",
    params(PurchasesQuery),
    security(("bearer" = ["purchases:read"])),
    responses((status = 200, description = "A page of purchases", body = Page<Purchase>))
)]
#[get("/purchases")]
async fn list_purchases(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesRead)?;
    let query: PurchasesQuery = query::parse(req.query_string())?;
    list_page(&state, &req, &principal, query, None).await
}

/// Get a purchase.
#[utoipa::path(
    tag = "Purchases",
    params(("id" = Uuid, Path, description = "Purchase id")),
    security(("bearer" = ["purchases:read"])),
    responses((status = 200, description = "The purchase", body = Purchase,
        headers(("ETag" = String, description = "Version tag"))))
)]
#[get("/purchases/{id}")]
async fn get_purchase(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesRead)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Purchase(*id)).await?;
    let record = store::get(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("purchase"))?;
    let purchase = super::view(record);
    Ok(response::versioned(purchase.version, &purchase))
}

/// Refund a purchase, in full or in part.
///
/// Without `amount`, what is left of the purchase is refunded. A refund never exceeds what
/// is left (`409` naming it), whatever runs at the same time. Send an `Idempotency-Key` so
/// that a retry does not refund twice.
#[utoipa::path(
    tag = "Purchases",
    params(("id" = Uuid, Path, description = "Purchase id")),
    request_body = RefundInput,
    security(("bearer" = ["purchases:write"])),
    responses(
        (status = 200, description = "The purchase after the refund", body = Purchase,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "More than what is left, or refunded in full already",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/purchases/{id}/refund")]
async fn refund_purchase(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<RefundInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Purchase(*id)).await?;
    let purchase = super::refund(&mut conn, &principal.actor, *id, input.into_inner()).await?;
    Ok(response::versioned(purchase.version, &purchase))
}
