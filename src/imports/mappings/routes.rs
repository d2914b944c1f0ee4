use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    ImportMapping, ImportMappingPatch, ImportMappingReplacement, ImportMappingVersion,
    ImportMappingsQuery, NewImportMapping, Presets, VersionsQuery,
};
use super::{presets, store};
use crate::auth::Principal;
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::Query;
use crate::http::response;
use crate::imports::json::Resource;
use crate::imports::{read_scope, write_scope};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_presets)
        .service(list_mappings)
        .service(create_mapping)
        .service(get_mapping)
        .service(update_mapping)
        .service(replace_mapping)
        .service(delete_mapping)
        .service(list_versions)
        .service(get_version);
}

fn location(id: Uuid) -> String {
    format!("/v1/import-mappings/{id}")
}

/// `403` unless the caller may import into `resource` (which editing its mappings needs).
fn writer(principal: &Principal) -> impl Fn(Resource) -> Result<(), ApiError> + Sync + '_ {
    move |resource| principal.require(write_scope(resource))
}

/// The readable mapping `id`: `404` when there is none, `403` when the caller may not read
/// its resource.
async fn find(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<store::MappingRecord, ApiError> {
    let mut conn = state.pool.get().await?;
    let record = store::get(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("import mapping"))?;
    principal.require(read_scope(record.resource))?;
    Ok(record)
}

/// List the presets.
///
/// Ready-made mappings for the exports of HubSpot (contacts, companies), Salesforce
/// (contacts, accounts) and Twenty (people, companies). Use one on an import with
/// `preset=hubspot_contacts`, or copy it into a saved mapping (`POST /v1/import-mappings`
/// with `preset`) to edit it.
#[utoipa::path(
    tag = "Imports",
    operation_id = "list_import_mapping_presets",
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "Every preset", body = Presets))
)]
#[get("/import-mappings/presets")]
async fn list_presets(principal: Principal) -> Result<HttpResponse, ApiError> {
    principal.require(crate::auth::Scope::CustomersRead)?;
    Ok(HttpResponse::Ok().json(Presets {
        data: presets::all().to_vec(),
    }))
}

/// List saved mappings, oldest first.
///
/// Only the mappings of resources the caller may read.
#[utoipa::path(
    tag = "Imports",
    operation_id = "list_import_mappings",
    params(ImportMappingsQuery),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses(
        (status = 200, description = "A page of mappings", body = Page<ImportMapping>),
        (status = 400, description = "A bad filter or cursor", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/import-mappings")]
async fn list_mappings(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<ImportMappingsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner();
    let resources: Vec<Resource> = match filter.resource {
        Some(resource) => {
            principal.require(read_scope(resource))?;
            vec![resource]
        }
        None => Resource::ALL
            .iter()
            .copied()
            .filter(|r| principal.can(read_scope(*r)))
            .collect(),
    };
    if resources.is_empty() {
        return Err(ApiError::forbidden(
            "listing import mappings needs a read permission of an importable resource",
        ));
    }
    let page = pagination::request::<Uuid>(filter.limit, filter.cursor.as_deref(), "id")?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, &resources, page.after, page.fetch()).await?;
    let mappings: Vec<ImportMapping> = rows.into_iter().map(super::view).collect();
    Ok(HttpResponse::Ok().json(pagination::page(mappings, &page, "id", |m| m.id)))
}

/// Save a mapping.
///
/// The rules given in `mapping`, or a copy of a preset (`preset`, then `resource` and
/// `mapping` may be left out) to edit afterwards. Checked as an import checks it: a field
/// the resource does not have, a bad date format, a column both read and ignored are `422`,
/// each named at `mapping.fields.…`. Needs the write permission of its resource.
#[utoipa::path(
    tag = "Imports",
    operation_id = "create_import_mapping",
    request_body = NewImportMapping,
    security(("bearer" = ["customers:write", "interactions:write", "purchases:write"])),
    responses(
        (status = 201, description = "The mapping, at version 1", body = ImportMapping,
            headers(("Location" = String, description = "URL of the mapping"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 403, description = "The caller may not import into its resource",
            body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A field or a rule is invalid", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/import-mappings")]
async fn create_mapping(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<NewImportMapping>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let record = super::create(
        &mut conn,
        &principal.actor,
        body.into_inner(),
        writer(&principal),
    )
    .await?;
    let shown = super::view(record);
    Ok(response::created(
        &location(shown.id),
        shown.version,
        &shown,
    ))
}

/// Get a saved mapping.
#[utoipa::path(
    tag = "Imports",
    operation_id = "get_import_mapping",
    params(("id" = Uuid, Path, description = "Mapping id")),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses(
        (status = 200, description = "The mapping", body = ImportMapping,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 404, description = "No such mapping", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/import-mappings/{id}")]
async fn get_mapping(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let shown = super::view(find(&state, &principal, *id).await?);
    Ok(response::versioned(shown.version, &shown))
}

/// Change a saved mapping.
///
/// A JSON merge patch; `mapping` is merged into the rules too, so
/// `{"mapping": {"fields": {"lifecycle_stage": {"values": {"Other": "prospect"}}}}}` adds
/// one value and `{"mapping": {"fields": {"phone": null}}}` drops a rule. A change makes a
/// new version; the earlier ones stay readable.
#[utoipa::path(
    tag = "Imports",
    operation_id = "update_import_mapping",
    params(("id" = Uuid, Path, description = "Mapping id"), IfMatchHeader),
    request_body = ImportMappingPatch,
    security(("bearer" = ["customers:write", "interactions:write", "purchases:write"])),
    responses(
        (status = 200, description = "The mapping, at its new version", body = ImportMapping,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 403, description = "The caller may not import into its resource",
            body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such mapping", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken", body = Problem, content_type = PROBLEM),
        (status = 412, description = "`If-Match` names another version", body = Problem,
            content_type = PROBLEM),
        (status = 422, description = "A field or a rule is invalid", body = Problem,
            content_type = PROBLEM),
    )
)]
#[patch("/import-mappings/{id}")]
async fn update_mapping(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<ImportMappingPatch>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let record = super::update(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        body.into_inner(),
        writer(&principal),
    )
    .await?;
    let shown = super::view(record);
    Ok(response::versioned(shown.version, &shown))
}

/// Replace a saved mapping.
///
/// Its name, description and rules as a whole; its resource stays. A change makes a new
/// version; the earlier ones stay readable.
#[utoipa::path(
    tag = "Imports",
    operation_id = "replace_import_mapping",
    params(("id" = Uuid, Path, description = "Mapping id"), IfMatchHeader),
    request_body = ImportMappingReplacement,
    security(("bearer" = ["customers:write", "interactions:write", "purchases:write"])),
    responses(
        (status = 200, description = "The mapping, at its new version", body = ImportMapping,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 403, description = "The caller may not import into its resource",
            body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such mapping", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The name is taken", body = Problem, content_type = PROBLEM),
        (status = 412, description = "`If-Match` names another version", body = Problem,
            content_type = PROBLEM),
        (status = 422, description = "A field or a rule is invalid", body = Problem,
            content_type = PROBLEM),
    )
)]
#[put("/import-mappings/{id}")]
async fn replace_mapping(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<ImportMappingReplacement>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    let record = super::replace(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        body.into_inner(),
        writer(&principal),
    )
    .await?;
    let shown = super::view(record);
    Ok(response::versioned(shown.version, &shown))
}

/// Delete a saved mapping, with its versions.
///
/// Imports that ran with it keep the copy they ran with.
#[utoipa::path(
    tag = "Imports",
    operation_id = "delete_import_mapping",
    params(("id" = Uuid, Path, description = "Mapping id"), IfMatchHeader),
    security(("bearer" = ["customers:write", "interactions:write", "purchases:write"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "The caller may not import into its resource",
            body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such mapping", body = Problem, content_type = PROBLEM),
        (status = 412, description = "`If-Match` names another version", body = Problem,
            content_type = PROBLEM),
    )
)]
#[delete("/import-mappings/{id}")]
async fn delete_mapping(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.get().await?;
    super::delete(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        writer(&principal),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

const VERSION_ORDER: &str = "-version";

/// List a saved mapping's versions, newest first.
#[utoipa::path(
    tag = "Imports",
    operation_id = "list_import_mapping_versions",
    params(("id" = Uuid, Path, description = "Mapping id"), VersionsQuery),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses(
        (status = 200, description = "A page of versions", body = Page<ImportMappingVersion>),
        (status = 404, description = "No such mapping", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/import-mappings/{id}/versions")]
async fn list_versions(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    query: Query<VersionsQuery>,
) -> Result<HttpResponse, ApiError> {
    let filter = query.into_inner();
    let page = pagination::request::<i64>(filter.limit, filter.cursor.as_deref(), VERSION_ORDER)?;
    find(&state, &principal, *id).await?;
    let mut conn = state.pool.get().await?;
    let rows = store::versions(&mut conn, *id, page.after, page.fetch()).await?;
    let versions: Vec<ImportMappingVersion> = rows.into_iter().map(super::version_view).collect();
    Ok(
        HttpResponse::Ok().json(pagination::page(versions, &page, VERSION_ORDER, |v| {
            v.version
        })),
    )
}

/// Get one version of a saved mapping, as it was.
#[utoipa::path(
    tag = "Imports",
    operation_id = "get_import_mapping_version",
    params(
        ("id" = Uuid, Path, description = "Mapping id"),
        ("version" = i64, Path, description = "Version, from 1", minimum = 1, example = 1),
    ),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses(
        (status = 200, description = "The version", body = ImportMappingVersion),
        (status = 404, description = "No such mapping or version", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/import-mappings/{id}/versions/{version}")]
async fn get_version(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(Uuid, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (id, version) = path.into_inner();
    find(&state, &principal, id).await?;
    let mut conn = state.pool.get().await?;
    let record = store::version(&mut conn, id, version)
        .await?
        .ok_or_else(|| ApiError::not_found("import mapping version"))?;
    Ok(HttpResponse::Ok().json(super::version_view(record)))
}
