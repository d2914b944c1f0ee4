use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    BatchRequest, BatchResponse, CreateQuery, Customer, CustomerInput, LifecycleHistory,
    LifecycleStages, MergedCustomer, NoParameters, Subsidiaries, SubsidiariesQuery,
};
use super::store;
use super::visible;
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::query::Query;
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_customer)
        .service(batch_customers)
        .service(get_customer_by_external_id)
        .service(upsert_customer_by_external_id)
        .service(update_customer)
        .service(delete_customer)
        .service(restore_customer)
        .service(customer_lifecycle)
        .service(customer_subsidiaries)
        .service(lifecycle_stages);
}

fn location(id: Uuid) -> String {
    format!("/v1/customers/{id}")
}

/// Create a customer.
///
/// `name` is required; everything else is optional (see `CustomerInput`). The email and
/// external id must not be in use by another customer (`409` naming the field). The first
/// lifecycle stage is recorded in the history, with `lifecycle_reason` if given.
///
/// With owned-only access (`access: owned`) the caller becomes the account manager; naming
/// anyone else is `403` (they would lose the customer).
///
/// With `on_duplicate`, the new customer is first checked against the live customers of its
/// kind by the duplicate rules (see `GET /v1/customers/duplicates`); on a match, `fail`
/// answers `409` naming the matched customer (in `detail`, `errors` and `Location`), `skip`
/// answers `200` with the matched customer, `merge` fills the matched customer's empty
/// fields from the request, adds its tags and attributes, and answers `200` with it. An
/// owned-only caller is matched against their own customers only.
#[utoipa::path(
    tag = "Customers",
    params(CreateQuery),
    request_body = CustomerInput,
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 201, description = "The new customer", body = Customer,
            headers(("Location" = String, description = "URL of the new customer"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 200, description = "`on_duplicate=skip` or `merge` matched an existing \
            customer: it is answered (merged with the request for `merge`)", body = Customer,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 400, description = "An unknown query parameter or `on_duplicate` value",
            body = Problem, content_type = PROBLEM),
        (status = 409, description = "The email or external id is in use (`errors` names \
            it), or with `on_duplicate=fail` the customer matches another (`detail` and \
            `Location` name it)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers")]
async fn create_customer(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<CreateQuery>,
    input: Json<CustomerInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let (record, created) = match query.into_inner().on_duplicate {
        None => (
            super::create(
                &mut conn,
                &principal.actor,
                principal.access,
                input.into_inner(),
            )
            .await?,
            true,
        ),
        Some(on_duplicate) => {
            super::create_checked(
                &mut conn,
                &principal.actor,
                principal.access,
                input.into_inner(),
                on_duplicate,
            )
            .await?
        }
    };
    let customer = super::view_for(&principal, record);
    Ok(if created {
        response::created(&location(customer.id), customer.version, &customer)
    } else {
        response::versioned(customer.version, &customer)
    })
}

/// Create or upsert up to 100 customers.
///
/// Each item is applied on its own, as `POST /v1/customers` (`create`) or
/// `PUT /v1/customers/by-external-id/{external_id}` (`upsert`, with the item's `external_id`)
/// would: valid items are applied even when others fail. The answer lists, in request order,
/// each item's status and the customer or the problem. Send an `Idempotency-Key` to make a
/// retry of the whole batch safe.
///
/// With owned-only access each item follows the single endpoints' rules: another's customer is
/// a `409` on `external_id`, naming another account manager a `403`.
#[utoipa::path(
    tag = "Customers",
    request_body = BatchRequest,
    security(("bearer" = ["customers:write"])),
    responses((status = 200, description = "Per-item outcomes", body = BatchResponse))
)]
#[post("/customers/batch")]
async fn batch_customers(
    state: web::Data<AppState>,
    principal: Principal,
    batch: Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let results = super::batch(&state.pool, &principal, batch.into_inner().items).await?;
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

/// Get a customer by the integration's external id.
///
/// A customer merged into another still answers by its external id (unless the survivor
/// took it): `301` to the survivor, with `MergedCustomer` as the body.
#[utoipa::path(
    tag = "Customers",
    params(("external_id" = String, Path, description = "The integration's id for the customer",
        example = "shop-000123")),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "The customer", body = Customer,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 301, description = "The customer was merged into another", body = MergedCustomer,
            headers(("Location" = String, description = "URL of the customer it was merged into"))),
    )
)]
#[get("/customers/by-external-id/{external_id}")]
async fn get_customer_by_external_id(
    state: web::Data<AppState>,
    principal: Principal,
    external_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let mut conn = state.pool.get().await?;
    let found = store::get_by_external_id(&mut conn, &external_id, false).await?;
    if let Some(record) = &found
        && record.deleted_at.is_some()
        && let Some(moved) = super::merged_into(&mut conn, &principal, record.id).await?
    {
        return Ok(response::moved(&moved.location, &moved));
    }
    let record = visible(&principal, found)?;
    let customer = super::view_for(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}

/// Create or update a customer by the integration's external id.
///
/// For integrations that keep their own ids: `201` when the customer is created, `200` when
/// it is updated. On update the body is a merge patch: fields absent stay as they are (so an
/// integration never wipes what staff entered). `If-Match` guards the update. A deleted
/// customer is `409` until restored.
///
/// With owned-only access, an external id of a customer the caller does not manage is `409` on
/// `external_id`, as creating it would be (uniqueness cannot be hidden); naming another
/// account manager is `403`.
#[utoipa::path(
    tag = "Customers",
    params(("external_id" = String, Path, description = "The integration's id for the customer",
        example = "shop-000123"),
        IfMatchHeader),
    request_body = CustomerInput,
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 200, description = "The updated customer", body = Customer,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 201, description = "The new customer", body = Customer,
            headers(("Location" = String, description = "URL of the new customer"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 409, description = "The email is in use, or the customer is deleted",
            body = Problem, content_type = PROBLEM),
    )
)]
#[put("/customers/by-external-id/{external_id}")]
async fn upsert_customer_by_external_id(
    state: web::Data<AppState>,
    principal: Principal,
    external_id: web::Path<String>,
    if_match: IfMatch,
    input: Json<CustomerInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let (record, created) = super::upsert(
        &mut conn,
        &principal.actor,
        principal.access,
        &external_id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    let customer = super::view_for(&principal, record);
    Ok(if created {
        response::created(&location(customer.id), customer.version, &customer)
    } else {
        response::versioned(customer.version, &customer)
    })
}

/// Update a customer.
///
/// A JSON merge patch (RFC 7396): absent fields stay, `null` clears, nested objects merge.
/// Send `If-Match` with the `ETag` you read to be sure nobody changed the customer since.
/// A change of `lifecycle_stage` is recorded in the history with `lifecycle_reason`.
///
/// With owned-only access, a customer the caller does not manage is `404`, and changing
/// `account_manager_id` away from the caller is `403`.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    request_body(content = CustomerInput, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 200, description = "The updated customer", body = Customer,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "The email or external id is in use",
            body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/customers/{id}")]
async fn update_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<CustomerInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let record = super::update(
        &mut conn,
        &principal.actor,
        principal.access,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    let customer = super::view_for(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}

/// Delete a customer.
///
/// A soft delete: the customer leaves every list and lookup but can be restored by a
/// manager. Its interactions leave the interaction, complaint and follow-up lists and the
/// statistics with it, and come back when it is restored. Deleting a deleted customer
/// changes nothing.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    security(("bearer" = ["customers:delete"])),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/customers/{id}")]
async fn delete_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersDelete)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    super::delete(&mut conn, &principal.actor, *id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Restore a deleted customer.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    security(("bearer" = ["customers:delete"])),
    responses(
        (status = 200, description = "The restored customer", body = Customer),
        (status = 409, description = "The customer was erased", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/restore")]
async fn restore_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersDelete)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let record = super::restore(&mut conn, &principal.actor, *id, &if_match).await?;
    let customer = super::view_for(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}

/// The lifecycle history of a customer.
///
/// Every change of stage, oldest first: from, to, when, who, and why.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "The history", body = LifecycleHistory))
)]
#[get("/customers/{id}/lifecycle")]
async fn customer_lifecycle(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let mut conn = state.pool.get().await?;
    visible(&principal, store::get(&conn, *id).await?)?;
    let data = super::lifecycle(&mut conn, *id).await?;
    Ok(HttpResponse::Ok().json(LifecycleHistory { data }))
}

/// The subsidiaries of an organization (its group below it).
///
/// Organizations form groups through `parent_id`: this walks the tree down from the
/// organization, `depth` levels (10, the deepest a group goes, by default), and lists the
/// subsidiaries depth first, each after its parent, with `parent_id` and `depth` to rebuild
/// the tree; `root_id` is the top of the organization's group. Deleted subsidiaries are left
/// out with the tree below them. At most 1000 are listed (`truncated` says when there were
/// more).
///
/// With owned-only access (`access: owned`), the organization must be one the caller
/// manages (`404` otherwise), and subsidiaries they do not manage are left out with the tree
/// below them.
#[utoipa::path(
    tag = "Customers",
    operation_id = "customer_subsidiaries",
    params(("id" = Uuid, Path, description = "Organization id"), SubsidiariesQuery),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "The subsidiaries, depth first", body = Subsidiaries,
            example = json!({"id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b", "parent_id": null,
                "root_id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b", "truncated": false,
                "data": [{"id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5c",
                          "parent_id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b",
                          "name": "Analytical Engines GmbH", "external_id": "erp-4711",
                          "depth": 1}]})),
        (status = 400, description = "A malformed id, an unknown parameter, or `depth`             outside 1 to 10", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Without `customers:read`", body = Problem,
            content_type = PROBLEM),
        (status = 404, description = "No such customer (or not one the caller may see)",
            body = Problem, content_type = PROBLEM),
        (status = 422, description = "The customer is an individual", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/subsidiaries")]
async fn customer_subsidiaries(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    query: Query<SubsidiariesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let depth = match query.into_inner().depth {
        None => 10,
        Some(d) if (1..=10).contains(&d) => d,
        Some(_) => {
            return Err(crate::http::query::invalid("depth", "must be from 1 to 10"));
        }
    };
    let mut conn = state.pool.get().await?;
    let tree = super::subsidiaries(&mut conn, &principal, *id, depth).await?;
    Ok(HttpResponse::Ok().json(tree))
}

/// The lifecycle stages as the course teaches them.
///
/// Every stage in order, from `prospect` to `churned`, with the course's name for it (初识期
/// `acquaintance`, 矜持期 `exploration`, 平稳期 `stable`, 稳固期 `commitment`, 思异期
/// `dissolution`; the course does not name `prospect` and `churned`), what it means, Rapport's
/// management focus and the course's (where the course gives one). A frontend shows it as
/// "what to do now" beside a customer's stage. Any signed-in caller may read it: it holds no
/// customer data.
#[utoipa::path(
    tag = "Customers",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The stages, in order", body = LifecycleStages),
        (status = 400, description = "A query parameter was given (it takes none)",
            body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/lifecycle/stages")]
async fn lifecycle_stages(
    _principal: Principal,
    _query: Query<NoParameters>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(LifecycleStages {
        data: super::stages(),
    }))
}
