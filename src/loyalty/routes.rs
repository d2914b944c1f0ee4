use actix_web::{HttpResponse, get, put, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::json::{Program, ProgramInput, Tiers};
use super::store;
use crate::auth::{Principal, Scope};
use crate::http::error::ApiError;
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_program)
        .service(put_program)
        .service(get_tiers)
        .service(put_tiers);
}

/// The loyalty programme's configuration.
///
/// Its `ETag` is the configuration's version, shared with the tiers: send it as `If-Match`
/// with a change so that two admins' edits never silently overwrite each other.
#[utoipa::path(
    tag = "Loyalty",
    security(("bearer" = ["loyalty:read"])),
    responses((status = 200, description = "The programme", body = Program,
        headers(("ETag" = String, description = "The configuration's version"))))
)]
#[get("/loyalty/program")]
async fn get_program(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyRead)?;
    let mut conn = state.pool.get().await?;
    let program = store::program(&mut conn).await?;
    Ok(response::versioned(program.version, &program))
}

/// Change the loyalty programme.
///
/// The whole configuration, every part required; versioned and audited. Sending the
/// configuration in force changes nothing.
#[utoipa::path(
    tag = "Loyalty",
    params(IfMatchHeader),
    request_body = ProgramInput,
    security(("bearer" = ["loyalty:admin"])),
    responses((status = 200, description = "The programme after the change", body = Program,
        headers(("ETag" = String, description = "The configuration's new version"))))
)]
#[put("/loyalty/program")]
async fn put_program(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<ProgramInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdmin)?;
    let mut conn = state.pool.get().await?;
    let program =
        super::set_program(&mut conn, &principal.actor, &if_match, input.into_inner()).await?;
    Ok(response::versioned(program.version, &program))
}

/// The programme's tiers, lowest first.
#[utoipa::path(
    tag = "Loyalty",
    security(("bearer" = ["loyalty:read"])),
    responses((status = 200, description = "The tiers", body = Tiers,
        headers(("ETag" = String, description = "The configuration's version"))))
)]
#[get("/loyalty/tiers")]
async fn get_tiers(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyRead)?;
    let mut conn = state.pool.get().await?;
    let program = store::program(&mut conn).await?;
    let tiers = store::tiers(&mut conn).await?;
    Ok(response::versioned(program.version, &Tiers { tiers }))
}

/// Replace the tiers.
///
/// The full ordered list, lowest first: unique keys, the first threshold 0 and each next
/// one higher. A customer will hold the highest tier whose threshold their qualifying sum
/// (points earned or amount spent in the window, by the programme's basis) reaches.
/// Versioned with the programme and audited.
#[utoipa::path(
    tag = "Loyalty",
    params(IfMatchHeader),
    request_body = Tiers,
    security(("bearer" = ["loyalty:admin"])),
    responses((status = 200, description = "The tiers after the change", body = Tiers,
        headers(("ETag" = String, description = "The configuration's new version"))))
)]
#[put("/loyalty/tiers")]
async fn put_tiers(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<Tiers>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdmin)?;
    let mut conn = state.pool.get().await?;
    let (tiers, version) = super::set_tiers(
        &mut conn,
        &principal.actor,
        &if_match,
        input.into_inner().tiers,
    )
    .await?;
    Ok(response::versioned(version, &Tiers { tiers }))
}
