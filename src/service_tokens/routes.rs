use actix_web::{HttpMessage, HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{Revocation, ServiceToken, ServiceTokensQuery};
use super::store;
use crate::auth::{Principal, Scope};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::json;
use crate::http::pagination::{self, Page};
use crate::http::query::Query;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_service_tokens)
        .service(get_service_token)
        .service(revoke_service_token);
}

fn sent_as_json(req: &HttpRequest) -> bool {
    matches!(req.mime_type(), Ok(Some(m))
        if m.subtype() == mime::JSON || m.suffix().is_some_and(|s| s == mime::JSON))
}

/// List service tokens.
///
/// Admins only. The tokens `rapport token` minted, in the order they were issued, with who
/// they are for, their role, the key that signed them and where they stand; never the
/// tokens themselves.
#[utoipa::path(
    tag = "Service tokens",
    params(ServiceTokensQuery),
    security(("bearer" = ["api_clients:manage"])),
    responses(
        (status = 200, description = "A page of service tokens, oldest first",
            body = Page<ServiceToken>),
    )
)]
#[get("/service-tokens")]
async fn list_service_tokens(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ServiceTokensQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let filter = query.into_inner();
    let page = pagination::request::<String>(filter.limit, filter.cursor.as_deref(), "jti")?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, filter.status, page.after.clone(), page.fetch()).await?;
    let tokens: Vec<ServiceToken> = rows.into_iter().map(ServiceToken::from).collect();
    Ok(HttpResponse::Ok().json(pagination::page(tokens, &page, "jti", |t| t.jti.clone())))
}

/// Get a service token.
///
/// Admins only. The record of one token `rapport token` minted (never the token itself).
#[utoipa::path(
    tag = "Service tokens",
    params(("jti" = Uuid, Path, description = "The token's id (its `jti` claim)")),
    security(("bearer" = ["api_clients:manage"])),
    responses(
        (status = 200, description = "The service token", body = ServiceToken),
        (status = 404, description = "No such service token",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/service-tokens/{jti}")]
async fn get_service_token(
    state: web::Data<AppState>,
    principal: Principal,
    jti: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let mut conn = state.pool.get().await?;
    let token = store::get(&mut conn, &jti.to_string())
        .await?
        .map(ServiceToken::from)
        .ok_or_else(|| ApiError::not_found("service token"))?;
    Ok(HttpResponse::Ok().json(token))
}

/// Revoke a service token.
///
/// Admins only. The token is refused from now on, on every instance within a second.
/// Revoking is final (mint a new token with `rapport token`); revoking a revoked token
/// changes nothing. Audited as `service_token.revoked`, with the `reason` when given. The
/// body may be empty.
#[utoipa::path(
    tag = "Service tokens",
    params(("jti" = Uuid, Path, description = "The token's id (its `jti` claim)")),
    request_body(content = Option<Revocation>, description = "Optional"),
    security(("bearer" = ["api_clients:manage"])),
    responses(
        (status = 200, description = "The revoked service token", body = ServiceToken),
        (status = 422, description = "`reason` is too long",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such service token",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/service-tokens/{jti}/revoke")]
async fn revoke_service_token(
    state: web::Data<AppState>,
    principal: Principal,
    jti: web::Path<Uuid>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let body = json::raw_body(&req, payload.into_inner()).await?;
    let revocation: Revocation = if body.iter().all(u8::is_ascii_whitespace) {
        Revocation::default()
    } else if !sent_as_json(&req) {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body as JSON (Content-Type: application/json), or none",
        ));
    } else {
        json::parse(&body)?
    };
    let jti = jti.to_string();
    let mut conn = state.pool.get().await?;
    let token = super::revoke(
        &mut conn,
        &principal.actor,
        &jti,
        revocation.reason.as_deref(),
    )
    .await?
    .ok_or_else(|| ApiError::not_found("service token"))?;
    state.access.forget_token(&jti);
    Ok(HttpResponse::Ok().json(token))
}
