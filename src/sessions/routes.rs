use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{Me, TokenRequest, TokenResponse};
use crate::api_clients;
use crate::auth::jwt::{Minted, SubjectKind};
use crate::auth::{Actor, Principal, password, revoked};
use crate::http::client_address::client_address;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::json::Json;
use crate::state::AppState;
use crate::users;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(issue_token).service(logout).service(me);
}

fn bad_credentials() -> ApiError {
    ApiError::unauthenticated("these credentials do not match an active account")
}

fn throttled(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many failed attempts; try again in {seconds} s"),
    )
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).unwrap_or(HeaderValue::from_static("60")),
    )
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
    let ttl = state.jwt.default_ttl;
    match body.into_inner() {
        TokenRequest::Password { email, password } => {
            let attempt = state.throttle.begin(&email, &address).map_err(throttled)?;
            let mut conn = state.pool.get().await?;
            let account = users::store::credentials(&mut conn, &email)
                .await?
                .filter(|c| c.active);
            drop(conn);
            let hash = account.as_ref().and_then(|c| c.password_hash.clone());
            let matches = password::verify(password, hash).await;
            let Some(account) = account.filter(|_| matches) else {
                attempt.failed();
                return Err(bad_credentials());
            };
            attempt.succeeded();
            let minted = state
                .jwt
                .mint_versioned(
                    SubjectKind::User,
                    &account.id.to_string(),
                    Some(account.role),
                    vec![],
                    ttl,
                    Some(account.credentials_version),
                )
                .map_err(ApiError::internal)?;
            Ok(token_response(minted))
        }
        TokenRequest::ClientCredentials {
            client_id,
            client_secret,
        } => {
            let attempt = state
                .throttle
                .begin(&client_id, &address)
                .map_err(throttled)?;
            let id = Uuid::parse_str(client_id.trim()).ok();
            let mut conn = state.pool.get().await?;
            let client = match id {
                Some(id) => api_clients::store::secret(&mut conn, id).await?,
                None => None,
            };
            let client = client.filter(|c| {
                c.revoked_at.is_none()
                    && api_clients::secret_matches(&client_secret, &c.secret_hash)
            });
            let (Some(id), Some(client)) = (id, client) else {
                attempt.failed();
                return Err(bad_credentials());
            };
            attempt.succeeded();
            api_clients::store::touch(&mut conn, id).await?;
            let scopes = crate::auth::Scopes::from_stored(client.scopes)
                .iter()
                .collect();
            let minted = state
                .jwt
                .mint_versioned(
                    SubjectKind::Client,
                    &id.to_string(),
                    None,
                    scopes,
                    ttl,
                    Some(client.credentials_version),
                )
                .map_err(ApiError::internal)?;
            Ok(token_response(minted))
        }
    }
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
    revoked::revoke(
        &mut conn,
        &principal.token_id,
        &principal.actor.key(),
        principal.token_expires_at,
    )
    .await?;
    if let Actor::Service(_) = principal.actor {
        crate::service_tokens::revoke(
            &mut conn,
            &principal.actor,
            &principal.token_id,
            Some("signed out"),
        )
        .await?;
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
    let (name, email) = match &principal.actor {
        Actor::User(id) => {
            let user = users::store::get(&mut conn, *id)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the token's account no longer exists"))?;
            (user.name, Some(user.email.into_inner()))
        }
        Actor::Client(id) => {
            let client = api_clients::store::get(&mut conn, *id)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the token's client no longer exists"))?;
            (client.name, None)
        }
        Actor::Service(subject) => (subject.clone(), None),
    };
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
