use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    Advance, AdvanceInput, Advances, Forecast, ForecastQuery, OpportunitiesQuery, Opportunity,
    OpportunityInput, OpportunityPatch, OpportunitySort, OpportunityStatus, PipelineSettings,
    PipelineSettingsInput, Stage, StageChange, StageHistory, StageInput, StagePatch, Stages,
    Target, TargetInput, TargetsQuery,
};
use super::store::{self, OpportunityRecord, SortValue};
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, ErrorCode, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::{self, comma_list, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_stages)
        .service(create_stage)
        .service(get_stage)
        .service(update_stage)
        .service(delete_stage)
        .service(create_opportunity)
        .service(list_opportunities)
        .service(customer_opportunities)
        .service(get_opportunity)
        .service(update_opportunity)
        .service(delete_opportunity)
        .service(opportunity_history)
        .service(create_advance)
        .service(list_advances)
        .service(get_settings)
        .service(put_settings)
        .service(put_target)
        .service(list_targets)
        .service(delete_target)
        .service(forecast);
}

fn one_stage(record: store::StageRecord) -> HttpResponse {
    let stage = super::stage_view(record);
    response::versioned(stage.version, &stage)
}

fn one(record: OpportunityRecord) -> HttpResponse {
    let opportunity = super::view(record);
    response::versioned(opportunity.version, &opportunity)
}

// ---- stages -----------------------------------------------------------------------------

/// List the pipeline's stages.
///
/// First to last, each with its win probability (the weight of an open opportunity's amount
/// in the forecast). A new installation has six: `lead` 5 %, `contacted` 10 %, `qualified`
/// 20 %, `needs_analysis` 30 %, `proposal` 50 %, `negotiation` 80 %.
#[utoipa::path(
    tag = "Pipeline",
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "The stages, by position", body = Stages))
)]
#[get("/pipeline/stages")]
async fn list_stages(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let mut conn = state.pool.get().await?;
    let data = store::stages(&mut conn)
        .await?
        .into_iter()
        .map(super::stage_view)
        .collect();
    Ok(HttpResponse::Ok().json(Stages { data }))
}

/// Add a pipeline stage.
///
/// At `position` (the stages from there on move down one), last by default. The key of a
/// deleted stage may be used again: that stage comes back with the new values.
#[utoipa::path(
    tag = "Pipeline",
    request_body = StageInput,
    security(("bearer" = ["pipeline:manage"])),
    responses(
        (status = 201, description = "The new stage", body = Stage,
            headers(("Location" = String, description = "URL of the new stage"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 409, description = "A stage has this key, or a request with this \
            `Idempotency-Key` is still running", body = Problem, content_type = PROBLEM),
    )
)]
#[post("/pipeline/stages")]
async fn create_stage(
    state: web::Data<AppState>,
    principal: Principal,
    input: Json<StageInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineManage)?;
    let mut conn = state.pool.get().await?;
    let record = super::create_stage(&mut conn, &principal.actor, input.into_inner()).await?;
    let stage = super::stage_view(record);
    Ok(response::created(
        &format!("/v1/pipeline/stages/{}", stage.key),
        stage.version,
        &stage,
    ))
}

/// Get a pipeline stage.
#[utoipa::path(
    tag = "Pipeline",
    params(("key" = String, Path, description = "Stage key", example = "proposal")),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "The stage", body = Stage,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/pipeline/stages/{key}")]
async fn get_stage(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let mut conn = state.pool.get().await?;
    let record = store::stage(&mut conn, &key)
        .await?
        .filter(|s| s.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("pipeline stage"))?;
    Ok(one_stage(record))
}

/// Update a pipeline stage.
///
/// A JSON merge patch of `name`, `probability` and `position`; the key cannot change. Moving
/// a stage shifts the stages in between by one, so positions stay 1, 2, 3 … A new
/// probability applies to the forecast at once.
#[utoipa::path(
    tag = "Pipeline",
    params(("key" = String, Path, description = "Stage key", example = "proposal"), IfMatchHeader),
    request_body(content = StagePatch, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["pipeline:manage"])),
    responses((status = 200, description = "The updated stage", body = Stage,
        headers(("ETag" = String, description = "The new version tag"))))
)]
#[patch("/pipeline/stages/{key}")]
async fn update_stage(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    if_match: IfMatch,
    input: Json<StagePatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineManage)?;
    let mut conn = state.pool.get().await?;
    let record = super::update_stage(
        &mut conn,
        &principal.actor,
        &key,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(one_stage(record))
}

/// Delete a pipeline stage.
///
/// Refused (`409`) while open opportunities are in it: move them first. The stages after it
/// move up one. Won and lost opportunities and the histories keep naming it; its key can be
/// used again.
#[utoipa::path(
    tag = "Pipeline",
    params(("key" = String, Path, description = "Stage key", example = "proposal"), IfMatchHeader),
    security(("bearer" = ["pipeline:manage"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Open opportunities are in this stage", body = Problem,
            content_type = PROBLEM),
    )
)]
#[delete("/pipeline/stages/{key}")]
async fn delete_stage(
    state: web::Data<AppState>,
    principal: Principal,
    key: web::Path<String>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineManage)?;
    let mut conn = state.pool.get().await?;
    super::delete_stage(&mut conn, &principal.actor, &key, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- opportunities ----------------------------------------------------------------------

/// Create an opportunity.
///
/// For a live customer; in the first stage unless `stage` names one; owned by the calling
/// staff user unless `owner_id` names an active one (integrations must). Amounts are integers
/// in the currency's minor unit. Its creation is the first entry of its history.
///
/// With owned-only access (`access: owned`), a customer the caller does not manage is answered
/// as a missing one (`422` on `customer_id`).
#[utoipa::path(
    tag = "Pipeline",
    request_body = OpportunityInput,
    security(("bearer" = ["pipeline:write"])),
    responses(
        (status = 201, description = "The new opportunity", body = Opportunity,
            headers(("Location" = String, description = "URL of the new opportunity"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 409, description = "The customer's personal data was erased, the \
            pipeline has no stages, or a request with this `Idempotency-Key` is still running",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/opportunities")]
async fn create_opportunity(
    state: web::Data<AppState>,
    principal: Principal,
    input: Json<OpportunityInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineWrite)?;
    let input = input.into_inner();
    let mut conn = state.pool.get().await?;
    // A customer the caller does not reach is answered as a missing one.
    ownership::check(
        &mut conn,
        principal.access,
        Held::Customer(input.customer_id),
    )
    .await
    .map_err(|_| super::no_live_customer())?;
    let record = super::create(&mut conn, &principal.actor, principal.access, input).await?;
    let opportunity = super::view(record);
    Ok(response::created(
        &format!("/v1/opportunities/{}", opportunity.id),
        opportunity.version,
        &opportunity,
    ))
}

fn list_filter(
    principal: &Principal,
    query: &OpportunitiesQuery,
    customer_id: Option<Uuid>,
) -> Result<store::ListFilter, ApiError> {
    let currency = query::currency(query.currency.as_deref())?;
    let stages = match query.stage.as_deref() {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|s| super::rules::stage_key(s.trim()))
            .collect::<Result<_, _>>()
            .map_err(|e| invalid("stage", e))?,
    };
    if let (Some(a), Some(b)) = (query.expected_close_after, query.expected_close_before)
        && b < a
    {
        return Err(invalid(
            "expected_close_before",
            "must not be before `expected_close_after`",
        ));
    }
    let statuses: Vec<OpportunityStatus> = comma_list("status", query.status.as_deref())?;
    let progress_before = match query.stalled_days {
        None => None,
        Some(days) if !(1..=3650).contains(&days) => {
            return Err(invalid("stalled_days", "must be from 1 to 3650"));
        }
        Some(_) if statuses.iter().any(|s| *s != OpportunityStatus::Open) => {
            return Err(invalid(
                "status",
                "goes with `stalled_days` only as `open`: stalled deals are open ones",
            ));
        }
        Some(days) => Some(chrono::Utc::now() - chrono::Duration::days(i64::from(days))),
    };
    let by_progress = matches!(
        query.sort,
        Some(OpportunitySort::LastProgressAt | OpportunitySort::LastProgressAtDesc)
    );
    if by_progress && progress_before.is_none() && statuses != [OpportunityStatus::Open] {
        return Err(invalid(
            "sort",
            "`last_progress_at` orders open deals only: add `stalled_days` or `status=open`",
        ));
    }
    Ok(store::ListFilter {
        customer_id: customer_id.or(query.customer_id),
        owner_id: query.owner_id,
        stages,
        statuses,
        progress_before,
        currency,
        expected_close_after: query.expected_close_after,
        expected_close_before: query.expected_close_before,
        account_manager_id: principal.access.owner(),
        has_decision_maker: query.has_decision_maker,
    })
}

async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    query: OpportunitiesQuery,
    customer_id: Option<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let filter = list_filter(principal, &query, customer_id)?;
    let sort = query.sort.unwrap_or(OpportunitySort::ExpectedCloseDate);
    let page = pagination::request::<(serde_json::Value, Uuid)>(
        query.limit,
        query.cursor.as_deref(),
        sort.as_str(),
    )?;
    let after = match page.after.clone() {
        None => None,
        Some((value, id)) => Some((
            SortValue::from_json(value, sort)
                .ok_or_else(|| invalid("cursor", "does not fit this sort order"))?,
            id,
        )),
    };
    let rows = state
        .read(req, async |conn| {
            Ok(store::list(conn, &filter, sort, after.clone(), page.fetch()).await?)
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let key = (SortValue::of(&r, sort).to_json(), r.id);
            (super::view(r), key)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, sort.as_str())))
}

/// List opportunities.
///
/// Filters combine with AND; `stage` and `status` take several values separated by commas.
/// Soonest expected close first by default; `sort` also takes `amount` and `created_at`, each
/// reversed with a leading `-`, and `last_progress_at` (open deals only: with
/// `stalled_days` or `status=open`). `stalled_days=N` lists the stalled deals: open ones
/// with no advance, stage move or status change for N days (see `last_progress_at`).
#[utoipa::path(
    tag = "Pipeline",
    params(OpportunitiesQuery),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "A page of opportunities", body = Page<Opportunity>))
)]
#[get("/opportunities")]
async fn list_opportunities(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let query: OpportunitiesQuery = query::parse(req.query_string())?;
    list_page(&state, &req, &principal, query, None).await
}

/// List a customer's opportunities.
///
/// The filters and orders of `GET /v1/opportunities` (its `customer_id` is this path's).
#[utoipa::path(
    tag = "Pipeline",
    params(("id" = Uuid, Path, description = "Customer id"), OpportunitiesQuery),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "A page of opportunities", body = Page<Opportunity>))
)]
#[get("/customers/{id}/opportunities")]
async fn customer_opportunities(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let query: OpportunitiesQuery = query::parse(req.query_string())?;
    if query.customer_id.is_some_and(|c| c != *id) {
        return Err(invalid(
            "customer_id",
            "differs from the customer in the path",
        ));
    }
    state
        .read(&req, async |conn| {
            crate::customers::visible(&principal, crate::customers::store::get(conn, *id).await?)
        })
        .await?;
    list_page(&state, &req, &principal, query, Some(*id)).await
}

/// A live opportunity of a customer the caller reaches, `404` otherwise.
async fn live(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<OpportunityRecord, ApiError> {
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Opportunity(id)).await?;
    store::get(&mut conn, id)
        .await?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("opportunity"))
}

/// Get an opportunity.
#[utoipa::path(
    tag = "Pipeline",
    params(("id" = Uuid, Path, description = "Opportunity id")),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "The opportunity", body = Opportunity,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/opportunities/{id}")]
async fn get_opportunity(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    Ok(one(live(&state, &principal, *id).await?))
}

/// Update an opportunity.
///
/// A JSON merge patch: absent fields stay, `null` clears. A move to another `stage` or
/// `status` is recorded in its history. `won` or `lost` closes it (`closed_at` now unless
/// given; `lost` needs a `close_reason`); `open` reopens a closed one, clearing `closed_at`
/// and `close_reason` (in a live stage: a reopened opportunity whose stage was deleted needs
/// a new `stage`). Send `If-Match` so that no change is lost (`412` when stale).
#[utoipa::path(
    tag = "Pipeline",
    params(("id" = Uuid, Path, description = "Opportunity id"), IfMatchHeader),
    request_body(content = OpportunityPatch, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["pipeline:write"])),
    responses((status = 200, description = "The updated opportunity", body = Opportunity,
        headers(("ETag" = String, description = "The new version tag"))))
)]
#[patch("/opportunities/{id}")]
async fn update_opportunity(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<OpportunityPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Opportunity(*id)).await?;
    let record = super::update(
        &mut conn,
        &principal.actor,
        principal.access,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(one(record))
}

/// Delete an opportunity.
///
/// It leaves every list and the forecast for good (a soft delete: the row and its history
/// stay for the audit trail; there is no restore).
#[utoipa::path(
    tag = "Pipeline",
    params(("id" = Uuid, Path, description = "Opportunity id"), IfMatchHeader),
    security(("bearer" = ["pipeline:write"])),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/opportunities/{id}")]
async fn delete_opportunity(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Opportunity(*id)).await?;
    super::delete(&mut conn, &principal.actor, *id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An opportunity's history.
///
/// Its creation, every stage move and every status change (won, lost, reopened), oldest
/// first: from, to, when, who, and the close reason of a closing.
#[utoipa::path(
    tag = "Pipeline",
    params(("id" = Uuid, Path, description = "Opportunity id")),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "The entries, oldest first", body = StageHistory))
)]
#[get("/opportunities/{id}/history")]
async fn opportunity_history(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    live(&state, &principal, *id).await?;
    let mut conn = state.pool.get().await?;
    let data = store::history(&mut conn, *id)
        .await?
        .into_iter()
        .map(|r| StageChange {
            id: r.id,
            from_stage: r.from_stage,
            to_stage: r.to_stage,
            from_status: r.from_status,
            to_status: r.to_status,
            changed_at: r.changed_at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            reason: r.reason,
        })
        .collect();
    Ok(HttpResponse::Ok().json(StageHistory { data }))
}

// ---- advances ---------------------------------------------------------------------------

/// Record an advance of a deal.
///
/// The sales progress (销售进展): something that happened and moved the deal on, of a
/// `kind` the course names (`demo`, `met_decision_maker`, `trial`, `budget_confirmed`,
/// `proposal`, `joint_plan`) or of your own (`custom:<name>`, e.g. `custom:site_visit`),
/// dated `occurred_at` (now by default; may be in the past). It becomes the opportunity's
/// `last_advance_at` and `last_progress_at` when later than those, so the deal leaves the
/// stalled list. Open opportunities only (`409` otherwise). Send the opportunity's `ETag` as
/// `If-Match` to record it only on the version you saw; audited, and announced as
/// `opportunity.updated`.
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "create_advance",
    params(("id" = Uuid, Path, description = "Opportunity id"), IfMatchHeader),
    request_body = AdvanceInput,
    security(("bearer" = ["pipeline:write"])),
    responses(
        (status = 201, description = "The advance", body = Advance,
            headers(("Location" = String, description = "URL of the opportunity's advances"),
                    ("ETag" = String, description = "The opportunity's new version tag"))),
        (status = 404, description = "No such opportunity (or not one the caller reaches)",
            body = Problem, content_type = PROBLEM),
        (status = 409, description = "The opportunity is won or lost, or a request with this \
            `Idempotency-Key` is still running", body = Problem, content_type = PROBLEM),
        (status = 412, description = "`If-Match` names an older version of the opportunity",
            body = Problem, content_type = PROBLEM),
        (status = 422, description = "An invalid kind, time or note", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/opportunities/{id}/advances")]
async fn create_advance(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<AdvanceInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Opportunity(*id)).await?;
    let (advance, opportunity) = super::advance(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(response::created(
        &format!("/v1/opportunities/{}/advances", *id),
        opportunity.version,
        &super::advance_view(advance),
    ))
}

/// An opportunity's advances.
///
/// Every advance recorded, oldest `occurred_at` first.
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "list_advances",
    params(("id" = Uuid, Path, description = "Opportunity id")),
    security(("bearer" = ["pipeline:read"])),
    responses(
        (status = 200, description = "The advances, oldest first", body = Advances),
        (status = 404, description = "No such opportunity (or not one the caller reaches)",
            body = Problem, content_type = PROBLEM),
    )
)]
#[get("/opportunities/{id}/advances")]
async fn list_advances(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    live(&state, &principal, *id).await?;
    let mut conn = state.pool.get().await?;
    let data = store::advances(&mut conn, *id)
        .await?
        .into_iter()
        .map(super::advance_view)
        .collect();
    Ok(HttpResponse::Ok().json(Advances { data }))
}

// ---- settings ---------------------------------------------------------------------------

/// The pipeline's settings.
///
/// The credit rule (`credit_required_after`). Its `ETag` is the settings' version: send it
/// as `If-Match` with a change.
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "get_pipeline_settings",
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "The settings", body = PipelineSettings,
        headers(("ETag" = String, description = "The settings' version"))))
)]
#[get("/pipeline/settings")]
async fn get_settings(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let mut conn = state.pool.get().await?;
    let settings = super::settings_view(store::settings(&mut conn).await?);
    Ok(response::versioned(settings.version, &settings))
}

/// Change the pipeline's settings.
///
/// Replaced whole (a field left out takes its default); versioned and audited
/// (`pipeline.settings_changed`). `credit_required_after` names the stage past which an
/// opportunity of a customer whose MAN `qualification.money` is false (an `m` prospect)
/// needs that customer's `credit` grade: creating one in a later stage, moving one there or
/// winning it without a grade is a `422` naming the rule. Opportunities already past it
/// stay where they are.
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "put_pipeline_settings",
    params(IfMatchHeader),
    request_body = PipelineSettingsInput,
    security(("bearer" = ["pipeline:manage"])),
    responses(
        (status = 200, description = "The settings after the change", body = PipelineSettings,
            headers(("ETag" = String, description = "The settings' new version"))),
        (status = 412, description = "`If-Match` names an older version", body = Problem,
            content_type = PROBLEM),
        (status = 422, description = "Not the key of a live stage", body = Problem,
            content_type = PROBLEM),
    )
)]
#[put("/pipeline/settings")]
async fn put_settings(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<PipelineSettingsInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineManage)?;
    let mut conn = state.pool.get().await?;
    let record =
        super::set_settings(&mut conn, &principal.actor, &if_match, input.into_inner()).await?;
    let settings = super::settings_view(record);
    Ok(response::versioned(settings.version, &settings))
}

// ---- targets ----------------------------------------------------------------------------

/// Set a sales target.
///
/// The amount an owner (`owner_id`), or the whole team (`owner_id` left out or `null`),
/// should sell in a period (`2026`, `2026-Q4`, `2026-11`) and a currency: created (`201`),
/// or its amount replaced (`200`). The forecast of exactly that period shows it beside the
/// figures, with the gap left and the coverage of that gap by the weighted open pipeline.
/// Send the target's `ETag` as `If-Match` to replace only the version you saw (a version
/// for a target not set yet is a `412`). Audited (`pipeline_target.created|updated`).
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "put_pipeline_target",
    params(IfMatchHeader),
    request_body = TargetInput,
    security(("bearer" = ["pipeline:manage"])),
    responses(
        (status = 200, description = "The target, replaced", body = Target,
            headers(("ETag" = String, description = "The target's version tag"))),
        (status = 201, description = "The target, created", body = Target,
            headers(("Location" = String, description = "The target list of its period"),
                    ("ETag" = String, description = "The target's version tag"))),
        (status = 412, description = "`If-Match` names another version", body = Problem,
            content_type = PROBLEM),
        (status = 422, description = "A bad period, currency, amount or owner",
            body = Problem, content_type = PROBLEM),
    )
)]
#[put("/pipeline/targets")]
async fn put_target(
    state: web::Data<AppState>,
    principal: Principal,
    if_match: IfMatch,
    input: Json<TargetInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineManage)?;
    let mut conn = state.pool.get().await?;
    let (record, created) =
        super::set_target(&mut conn, &principal.actor, &if_match, input.into_inner()).await?;
    let target = super::target_view(record);
    if created {
        Ok(response::created(
            &format!("/v1/pipeline/targets?period={}", target.period),
            target.version,
            &target,
        ))
    } else {
        Ok(response::versioned(target.version, &target))
    }
}

/// List sales targets.
///
/// Oldest first; narrowed to a period, a currency and an owner (or `owner_id=team` for the
/// team-wide targets).
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "list_pipeline_targets",
    params(TargetsQuery),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "A page of targets", body = Page<Target>))
)]
#[get("/pipeline/targets")]
async fn list_targets(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let query: TargetsQuery = query::parse(req.query_string())?;
    let period = match query.period.as_deref() {
        None => None,
        Some(text) => {
            let p = super::forecast::parse_period(text)
                .ok_or_else(|| invalid("period", super::forecast::PERIOD_FORMS))?;
            Some((p.from, p.to))
        }
    };
    let owner_id = match query.owner_id.as_deref() {
        None => None,
        Some("team") => Some(None),
        Some(raw) => {
            Some(Some(raw.parse::<Uuid>().map_err(|_| {
                invalid("owner_id", "must be a user id or `team`")
            })?))
        }
    };
    let filter = store::TargetFilter {
        period,
        currency: query::currency(query.currency.as_deref())?,
        owner_id,
    };
    let page = pagination::request::<Uuid>(query.limit, query.cursor.as_deref(), "id")?;
    let mut conn = state.pool.get().await?;
    let rows = store::targets(&mut conn, &filter, page.after, page.fetch())
        .await?
        .into_iter()
        .map(|r| {
            let key = r.id;
            (super::target_view(r), key)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, "id")))
}

/// A path segment of a target that names none: a `400` saying which and why.
fn bad_segment(name: &str, message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPath,
        format!("the path's `{name}` {message}"),
    )
}

/// Remove a sales target.
///
/// The target `PUT /v1/pipeline/targets` set for an owner (`owner`: their user id, or
/// `team` for the team-wide target), a period (`2026`, `2026-Q4`, `2026-11`) and a
/// currency: the same three that name it there. The forecast of that period no longer
/// shows it (with no target left: `target`, `gap_to_target` and `coverage` are `null`).
/// Send its `ETag` as `If-Match` to remove only the version you saw. Audited
/// (`pipeline_target.deleted`, with the amount it had).
#[utoipa::path(
    tag = "Pipeline",
    operation_id = "delete_pipeline_target",
    params(
        ("owner" = String, Path, description = "The owner's user id, or `team` for the \
            team-wide target", example = "team"),
        ("period" = String, Path, description = "A year (`2026`), a quarter (`2026-Q4`) or a \
            month (`2026-11`), 1900 to 2999", example = "2026-Q4"),
        ("currency" = String, Path, description = "ISO 4217 code, upper case",
            example = "EUR", pattern = "^[A-Z]{3}$"),
        IfMatchHeader,
    ),
    security(("bearer" = ["pipeline:manage"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "An `owner` that is neither a user id nor `team`, a \
            malformed period or currency", body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Without `pipeline:manage`", body = Problem,
            content_type = PROBLEM),
        (status = 404, description = "No target is set for that owner, period and currency",
            body = Problem, content_type = PROBLEM),
        (status = 412, description = "`If-Match` names another version", body = Problem,
            content_type = PROBLEM),
    )
)]
#[delete("/pipeline/targets/{owner}/{period}/{currency}")]
async fn delete_target(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String, String)>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineManage)?;
    let (owner, period, currency) = path.into_inner();
    let owner_id = match owner.as_str() {
        "team" => None,
        raw => Some(
            raw.parse::<Uuid>()
                .map_err(|_| bad_segment("owner", "must be a user id or `team`"))?,
        ),
    };
    let period = super::forecast::parse_period(&period)
        .ok_or_else(|| bad_segment("period", super::forecast::PERIOD_FORMS))?;
    let currency = crate::domain::currency_code(&currency)
        .map_err(|message| bad_segment("currency", &message))?;
    let mut conn = state.pool.get().await?;
    super::delete_target(
        &mut conn,
        &principal.actor,
        &if_match,
        owner_id,
        &period,
        &currency,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

// ---- forecast ---------------------------------------------------------------------------

/// The sales forecast of a period.
///
/// **forecast = won + weighted open**, per currency (currencies are never added together):
///
/// - *won* (`won_amount`): revenue already closed, Σ `amount` of the opportunities won whose
///   `closed_at` falls in the period (UTC days);
/// - *weighted open* (`weighted_open`): Σ (`amount` × win probability of its stage) over the
///   open opportunities whose `expected_close_date` falls in the period, with each stage's
///   current probability. The products are summed exactly, in minor units × percent, and
///   divided by 100 once per figure, rounding half away from zero (a figure is rounded from
///   its own exact sum, so the owners' or stages' figures may differ from the total by a
///   minor unit or so).
///
/// Also the unweighted open pipeline (`open_pipeline`) and the counts, per currency in total,
/// per owner and per stage (won opportunities count in the stage they were won from). Lost
/// and deleted opportunities never count. The period is `period` (`2026`, `2026-Q4`,
/// `2026-11`) or `from` and `to` (days, both included); the current quarter by default.
/// `owner_id` and `currency` narrow it to one owner's opportunities or one currency.
///
/// **Against the target** (`PUT /v1/pipeline/targets`, set for exactly this period): the
/// totals show the team-wide target (with `owner_id`: that owner's), each owner row its
/// owner's: `target`, `gap_to_target` = target − `won_amount` (0 or less once met), and
/// `coverage` = `weighted_open` ÷ `gap_to_target` to 2 decimals (1.0: the weighted open
/// pipeline exactly covers what is left to win). No target: all `null`. Target met: the gap
/// is 0 or negative, `target_met` is true and `coverage` is `null` (nothing left to cover).
///
/// **Outside the funnel** (`outside_funnel_sales`, 漏斗外销售额): Σ net amount (amount −
/// refunded) of the purchases made in the period that no won opportunity is linked to
/// (their `opportunity_id`); with `owner_id`, the purchases of the customers that owner
/// manages.
///
/// With owned-only access (`access: owned`), over the opportunities of the customers the
/// caller manages.
#[utoipa::path(
    tag = "Pipeline",
    params(ForecastQuery),
    security(("bearer" = ["pipeline:read"])),
    responses((status = 200, description = "The forecast", body = Forecast))
)]
#[get("/analytics/forecast")]
async fn forecast(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PipelineRead)?;
    let query: ForecastQuery = query::parse(req.query_string())?;
    let period = super::forecast::period(&query, chrono::Utc::now().date_naive())?;
    let filter = super::forecast::filter(&query, principal.access)?;
    let forecast = state
        .read(&req, async |conn| {
            Ok(super::forecast::forecast(conn, period.clone(), &filter).await?)
        })
        .await?;
    Ok(HttpResponse::Ok().json(forecast))
}
