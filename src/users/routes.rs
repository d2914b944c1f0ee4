use actix_web::{HttpResponse, get, patch, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{NewUser, User, UserPatch, UsersQuery};
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
    cfg.service(create_user)
        .service(list_users)
        .service(get_user)
        .service(update_user)
        .service(deactivate_user)
        .service(reactivate_user);
}

/// Create a staff user.
///
/// Admins only. The email must not be in use by another user (any case).
#[utoipa::path(
    tag = "Users",
    request_body = NewUser,
    security(("bearer" = ["users:write"])),
    responses(
        (status = 201, description = "The new user", body = User,
            headers(("Location" = String, description = "URL of the new user"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 409, description = "The email is in use", body = crate::http::error::Problem,
            content_type = "application/problem+json"),
    )
)]
#[post("/users")]
async fn create_user(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::UsersWrite)?;
    let input = rules::validate_new(body.into_inner())?;
    let mut conn = state.pool.get().await?;
    let user = super::create(&mut conn, &principal.actor, input).await?;
    Ok(response::created(
        &format!("/v1/users/{}", user.id),
        user.version,
        &user,
    ))
}

/// List staff users.
#[utoipa::path(
    tag = "Users",
    params(UsersQuery),
    security(("bearer" = ["users:read"])),
    responses((status = 200, description = "A page of users, oldest first", body = Page<User>))
)]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<UsersQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::UsersRead)?;
    let filter = query.into_inner();
    let page = pagination::request::<Uuid>(filter.limit, filter.cursor.as_deref(), "id")?;
    let mut conn = state.pool.get().await?;
    let kept = store::UserFilter {
        role: filter.role,
        active: filter.active,
        q: filter.q.as_deref(),
    };
    let rows = store::list(&mut conn, &kept, page.after, page.fetch()).await?;
    let users: Vec<User> = rows.into_iter().map(User::from).collect();
    Ok(HttpResponse::Ok().json(pagination::page(users, &page, "id", |u| u.id)))
}

/// Get a staff user.
#[utoipa::path(
    tag = "Users",
    params(("id" = Uuid, Path, description = "User id")),
    security(("bearer" = ["users:read"])),
    responses((status = 200, description = "The user", body = User,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/users/{id}")]
async fn get_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::UsersRead)?;
    let mut conn = state.pool.get().await?;
    let user = store::get(&mut conn, *id)
        .await?
        .map(User::from)
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(response::versioned(user.version, &user))
}

/// Update a staff user's email, name, role, access or password.
///
/// A JSON merge patch: only the fields sent change. Send `If-Match` with the user's `ETag`
/// to be sure nobody changed it since you read it. The last active admin cannot be demoted.
/// A change of password, role or access ends the user's tokens at once. An admin cannot be
/// `owned` (`422` on `access`, nothing written).
#[utoipa::path(
    tag = "Users",
    params(("id" = Uuid, Path, description = "User id"), IfMatchHeader),
    request_body(content = UserPatch, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["users:write"])),
    responses(
        (status = 200, description = "The updated user", body = User,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "The email is in use, or this would leave no active admin",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/users/{id}")]
async fn update_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::UsersWrite)?;
    let changes = rules::validate_patch(body.into_inner())?;
    let user = super::update(&state.pool, &principal.actor, *id, &if_match, changes).await?;
    state.access.forget(&Actor::User(*id));
    Ok(response::versioned(user.version, &user))
}

/// Deactivate a staff user.
///
/// The user can no longer sign in and their tokens stop working at once. The record stays
/// (it is the account manager of customers and the actor of audit events). The last active
/// admin cannot be deactivated.
#[utoipa::path(
    tag = "Users",
    params(("id" = Uuid, Path, description = "User id"), IfMatchHeader),
    security(("bearer" = ["users:write"])),
    responses(
        (status = 200, description = "The deactivated user", body = User),
        (status = 409, description = "This would leave no active admin",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/users/{id}/deactivate")]
async fn deactivate_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::UsersWrite)?;
    let user = super::set_active(&state.pool, &principal.actor, *id, &if_match, false).await?;
    state.access.forget(&Actor::User(*id));
    Ok(response::versioned(user.version, &user))
}

/// Reactivate a deactivated staff user.
#[utoipa::path(
    tag = "Users",
    params(("id" = Uuid, Path, description = "User id"), IfMatchHeader),
    security(("bearer" = ["users:write"])),
    responses((status = 200, description = "The reactivated user", body = User))
)]
#[post("/users/{id}/reactivate")]
async fn reactivate_user(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::UsersWrite)?;
    let user = super::set_active(&state.pool, &principal.actor, *id, &if_match, true).await?;
    state.access.forget(&Actor::User(*id));
    Ok(response::versioned(user.version, &user))
}
