use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::json::{Me, TokenRequest, TokenResponse};
use crate::auth::jwt::Minted;
use crate::auth::{Actor, Principal};
use crate::http::client_address::client_address;
use crate::http::error::ApiError;
use crate::http::json::Json;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(issue_token).service(logout).service(me);
}

fn token_response(minted: Minted) -> HttpResponse {
    let expires_in = (minted.expires_at - chrono::Utc::now())
        .num_seconds()
        .max(0);
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(TokenResponse {
            access_token: minted.token,
            token_type: "Bearer",
            expires_in,
            expires_at: minted.expires_at,
        })
}

/// Get a token.
///
/// Exchanges a staff user's email and password, or an integration client's id and secret,
/// for a short-lived bearer token. A failure never says whether the account exists. Each
/// account gets five checks (failed or still running) before further attempts must wait
/// (`429` with `Retry-After`), twice as long each time; an address whose attempts failed at
/// many different accounts waits the same way, except for accounts that signed in from it.
/// The token stops working when the password, role, scopes or activity change.
#[utoipa::path(
    tag = "Authentication",
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A bearer token", body = TokenResponse),
        (status = 401, description = "The credentials do not match an active account",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts; wait `Retry-After` seconds",
            body = crate::http::error::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/auth/token")]
async fn issue_token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let address = client_address(&req, &state.settings.trusted_proxies);
    let minted = super::sign_in(
        &state.pool,
        &state.throttle,
        &state.jwt,
        body.into_inner(),
        &address,
    )
    .await?;
    Ok(token_response(minted))
}

/// Sign out.
///
/// Revokes the token this request carries, at once and on every instance (within a second):
/// it is answered `401` from then on, until it would have expired anyway. Other tokens of the
/// same user or client stay valid; sign in again for a new one.
#[utoipa::path(
    tag = "Authentication",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "The token is revoked"),
        (status = 401, description = "No valid token",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/auth/logout")]
async fn logout(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    super::sign_out(&mut conn, &principal).await?;
    if let Actor::Service(_) = principal.actor {
        state.access.forget_token(&principal.token_id);
    }
    state.access.forget(&principal.actor);
    Ok(HttpResponse::NoContent().finish())
}

/// Who am I?
///
/// The caller as the token identifies them: kind, id, name, role and every permission held.
#[utoipa::path(
    tag = "Authentication",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = Me))
)]
#[get("/me")]
async fn me(state: web::Data<AppState>, principal: Principal) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let (name, email) = super::name_of(&mut conn, &principal.actor).await?;
    Ok(HttpResponse::Ok().json(Me {
        kind: principal.actor.kind(),
        id: principal.actor.id(),
        name,
        email,
        role: principal
            .role
            .filter(|_| !matches!(principal.actor, Actor::Client(_))),
        scopes: principal.scopes.iter().collect(),
        access: match principal.access {
            crate::auth::CustomerAccess::All => crate::auth::AccessLevel::All,
            crate::auth::CustomerAccess::Owned(_) => crate::auth::AccessLevel::Owned,
        },
        token_expires_at: principal.token_expires_at,
    }))
}
