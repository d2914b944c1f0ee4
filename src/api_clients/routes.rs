use actix_web::{HttpResponse, get, patch, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{ApiClient, ApiClientPatch, ApiClientsQuery, CreatedApiClient, NewApiClient};
use super::{rules, store};
use crate::auth::{Actor, Principal, Scope};
use crate::http::error::ApiError;
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::Query;
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_api_client)
        .service(list_api_clients)
        .service(get_api_client)
        .service(update_api_client)
        .service(revoke_api_client);
}

/// Create an integration client.
///
/// Admins only. The answer holds `client_secret`, shown this once and stored only as a hash:
/// the integration exchanges `id` + `client_secret` for a token at `POST /v1/auth/token`.
#[utoipa::path(
    tag = "API clients",
    request_body = NewApiClient,
    security(("bearer" = ["api_clients:manage"])),
    responses(
        (status = 201, description = "The new client, with its secret", body = CreatedApiClient,
            headers(("Location" = String, description = "URL of the new client"))),
        (status = 409, description = "An active client has this name",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/api-clients")]
async fn create_api_client(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<NewApiClient>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let input = rules::validate_new(body.into_inner())?;
    let mut conn = state.pool.get().await?;
    let body = super::create(&mut conn, &principal.actor, input).await?;
    let location = format!("/v1/api-clients/{}", body.client.id);
    let mut res = response::created(&location, body.client.version, &body);
    // Holds a secret: no cache may keep it, nor the idempotency store.
    res.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

/// List integration clients.
#[utoipa::path(
    tag = "API clients",
    params(ApiClientsQuery),
    security(("bearer" = ["api_clients:manage"])),
    responses((status = 200, description = "A page of clients, oldest first", body = Page<ApiClient>))
)]
#[get("/api-clients")]
async fn list_api_clients(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ApiClientsQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let filter = query.into_inner();
    let page = pagination::request::<Uuid>(filter.limit, filter.cursor.as_deref(), "id")?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, filter.revoked, page.after, page.fetch()).await?;
    let clients: Vec<ApiClient> = rows.into_iter().map(ApiClient::from).collect();
    Ok(HttpResponse::Ok().json(pagination::page(clients, &page, "id", |c| c.id)))
}

/// Get an integration client (never its secret).
#[utoipa::path(
    tag = "API clients",
    params(("id" = Uuid, Path, description = "Client id")),
    security(("bearer" = ["api_clients:manage"])),
    responses((status = 200, description = "The client", body = ApiClient,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/api-clients/{id}")]
async fn get_api_client(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let mut conn = state.pool.get().await?;
    let client = store::get(&mut conn, *id)
        .await?
        .map(ApiClient::from)
        .ok_or_else(|| ApiError::not_found("API client"))?;
    Ok(response::versioned(client.version, &client))
}

/// Update an integration client's name, description, scopes or request limit.
///
/// A JSON merge patch: only the fields sent change, checked by the rules of creation. Send
/// `If-Match` with the client's `ETag` to be sure nobody changed it since you read it. A
/// change of scopes ends the tokens the client holds (it fetches a new one); a new limit
/// applies from the next request. A revoked client cannot be changed.
#[utoipa::path(
    tag = "API clients",
    params(("id" = Uuid, Path, description = "Client id"), IfMatchHeader),
    request_body(content = ApiClientPatch, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["api_clients:manage"])),
    responses(
        (status = 200, description = "The updated client", body = ApiClient,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "The client is revoked, or an active client has this name",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/api-clients/{id}")]
async fn update_api_client(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<ApiClientPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let id = *id;
    let mut conn = state.pool.get().await?;
    let client = super::update(
        &mut conn,
        &principal.actor,
        id,
        &if_match,
        body.into_inner(),
    )
    .await?;
    state.access.forget(&Actor::Client(id));
    Ok(response::versioned(client.version, &client))
}

/// Revoke an integration client.
///
/// The client can no longer get tokens, and the tokens it holds stop working. Revoking is
/// final; create a new client to restore access. Revoking a revoked client changes nothing.
#[utoipa::path(
    tag = "API clients",
    params(("id" = Uuid, Path, description = "Client id"), IfMatchHeader),
    security(("bearer" = ["api_clients:manage"])),
    responses((status = 200, description = "The revoked client", body = ApiClient))
)]
#[post("/api-clients/{id}/revoke")]
async fn revoke_api_client(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::ApiClientsManage)?;
    let id = *id;
    let mut conn = state.pool.get().await?;
    let client = super::revoke(&mut conn, &principal.actor, id, &if_match).await?;
    state.access.forget(&Actor::Client(id));
    Ok(response::versioned(client.version, &client))
}
