use actix_web::{HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    DuplicatePair, DuplicatesQuery, MergeInput, MergeReport, NotDuplicate, NotDuplicateInput,
    UnmergeInput, UnmergeReport,
};
use crate::auth::{Principal, Scope};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::Query;
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_duplicates)
        .service(mark_not_duplicate)
        .service(merge_customers)
        .service(unmerge_customers);
}

/// Likely duplicate customers.
///
/// Pairs of live customers of one kind that look like one, best first (by `score`, then
/// ids), each with every reason they match for: `email` (the same address in another case,
/// with dots in the local part or a `+tag`), `phone` (the same E.164 number), `name_address`
/// (names at least 50 % alike by trigrams at the same postal code and street line),
/// `external_id` (one's external id, or an id under an attribute whose key ends in `_id`,
/// is the other's). The score is `100 − 100 × Π (1 − weight/100)` with the weights
/// `external_id` 95, `email` 90, `phone` 80, `name_address` 70. Candidates come from indexes
/// on those keys, never from comparing every pair; a key shared by more than 20 customers
/// (a shared mailbox or switchboard) makes no pairs. Pairs marked `not-duplicate` are left
/// out. An owned-only caller sees pairs of their own customers only.
#[utoipa::path(
    tag = "Duplicates",
    operation_id = "list_duplicates",
    params(DuplicatesQuery),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "One page of pairs", body = Page<DuplicatePair>),
        (status = 400, description = "An unknown parameter, a bad `reason`, `limit` or \
            `cursor`", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The caller lacks `customers:read`", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/customers/duplicates")]
async fn list_duplicates(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<DuplicatesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let query = query.into_inner();
    let page =
        pagination::request::<super::Cursor>(query.limit, query.cursor.as_deref(), super::ORDER)?;
    let mut conn = state.pool.get().await?;
    let result = super::list(&mut conn, &principal, query.reason, &page).await?;
    Ok(HttpResponse::Ok().json(result))
}

/// Mark two customers as not duplicates.
///
/// The pair is never listed by `GET /v1/customers/duplicates` again. `201` when newly
/// marked, `200` when it was marked already. Both must be live customers the caller can see.
#[utoipa::path(
    tag = "Duplicates",
    operation_id = "mark_not_duplicate",
    request_body = NotDuplicateInput,
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 201, description = "Marked", body = NotDuplicate),
        (status = 200, description = "Marked already", body = NotDuplicate),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The caller lacks `customers:write`", body = Problem,
            content_type = PROBLEM),
        (status = 422, description = "Not two different live customers the caller can see \
            (`errors` names them)", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/duplicates/not-duplicate")]
async fn mark_not_duplicate(
    state: web::Data<AppState>,
    principal: Principal,
    input: Json<NotDuplicateInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let (marked, new) =
        super::not_duplicate(&mut conn, &principal, &input.into_inner().customer_ids).await?;
    Ok(if new {
        HttpResponse::Created().json(marked)
    } else {
        HttpResponse::Ok().json(marked)
    })
}

/// Merge duplicate customers into a survivor.
///
/// In one transaction, everything that hangs off the customers of `merge_ids` moves to the
/// survivor: interactions (and those naming them as the contact person), purchases, the
/// loyalty balance (summed), points lots (with their expiry) and ledger entries, tier history,
/// survey responses, opportunities (and their contact people), contact links. Where a survey
/// takes one response per customer and the survivor answered it, the survivor keeps its own
/// and the other stays with its tombstone (listed in `kept`); likewise a contact link the
/// survivor has already. Fields follow `fields` (the survivor's value, filled from the merged
/// ones where it has none, by default); tags and attributes are united. The survivor's
/// tier stays; each record keeps its lifecycle history.
///
/// The merged customers become tombstones: `GET /v1/customers/{id}` and `by-external-id`
/// answer `301` to the survivor. The answer counts every row moved. A `customer.merged`
/// event and audit rows record it; `POST /v1/customers/{id}/unmerge` undoes it within
/// `RAPPORT_MERGE_UNDO_WINDOW`. `If-Match` guards the survivor. Needs `customers:write` and
/// `customers:delete`; an owned-only caller merges only their own customers.
#[utoipa::path(
    tag = "Duplicates",
    operation_id = "merge_customers",
    params(("id" = Uuid, Path, description = "The survivor's id"), IfMatchHeader),
    request_body = MergeInput,
    security(("bearer" = ["customers:write", "customers:delete"])),
    responses(
        (status = 200, description = "Merged: what moved, and the survivor", body = MergeReport,
            headers(("ETag" = String, description = "The survivor's new version tag"))),
        (status = 400, description = "Malformed JSON or id", body = Problem,
            content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The caller lacks `customers:write` or \
            `customers:delete`", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such survivor the caller can see", body = Problem,
            content_type = PROBLEM),
        (status = 409, description = "A customer is a tombstone, deleted or erased",
            body = Problem, content_type = PROBLEM),
        (status = 412, description = "`If-Match` names an older version of the survivor",
            body = Problem, content_type = PROBLEM),
        (status = 422, description = "Bad `merge_ids` (the survivor itself, twice, unknown, \
            another kind) or `fields`", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/merge")]
async fn merge_customers(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<MergeInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    principal.require(Scope::CustomersDelete)?;
    let mut conn = state.pool.get().await?;
    let report = super::merge(
        &mut conn,
        &principal,
        *id,
        &if_match,
        input.into_inner(),
        state.settings.merge_undo_window,
    )
    .await?;
    Ok(response::versioned(report.survivor.version, &report))
}

/// Undo a merge.
///
/// Moves back everything the merge moved and puts the survivor and the merged customers
/// back as they were (each a new version), within `RAPPORT_MERGE_UNDO_WINDOW` of the merge.
/// `409` with the reason when the window closed, the merge was undone already, or something
/// was written since that the undo would lose: the survivor changed, a moved row was
/// updated, or the survivor got points or survey responses. Needs `customers:write` and
/// `customers:delete`.
#[utoipa::path(
    tag = "Duplicates",
    operation_id = "unmerge_customers",
    params(("id" = Uuid, Path, description = "The survivor's id")),
    request_body = UnmergeInput,
    security(("bearer" = ["customers:write", "customers:delete"])),
    responses(
        (status = 200, description = "Undone", body = UnmergeReport),
        (status = 400, description = "Malformed JSON or id", body = Problem,
            content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "The caller lacks `customers:write` or \
            `customers:delete`", body = Problem, content_type = PROBLEM),
        (status = 404, description = "No such survivor the caller can see, or no such merge",
            body = Problem, content_type = PROBLEM),
        (status = 409, description = "The merge cannot be undone (`detail` says why)",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/unmerge")]
async fn unmerge_customers(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<UnmergeInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    principal.require(Scope::CustomersDelete)?;
    let mut conn = state.pool.get().await?;
    let report = super::unmerge(
        &mut conn,
        &principal,
        *id,
        input.into_inner().merge_id,
        state.settings.merge_undo_window,
    )
    .await?;
    Ok(HttpResponse::Ok().json(report))
}
