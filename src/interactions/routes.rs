use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{Duration, Utc};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    AssigneeResolution, CauseCount, ComplaintSort, ComplaintStats, ComplaintStatsQuery,
    ComplaintStatus, ComplaintsQuery, CompleteInput, FollowUpState, FollowUpsQuery, Interaction,
    InteractionInput, InteractionsQuery, OpenComplaints, ResolutionTimes, SeverityResolution,
    StatusChange, StatusChangeInput, StatusHistory,
};
use super::store::{self, CursorKey, InteractionRecord};
use crate::auth::{Actor, Held, Principal, Scope, ownership};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::{self, comma_list, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_interaction)
        .service(customer_interactions)
        .service(list_interactions)
        .service(get_interaction)
        .service(update_interaction)
        .service(delete_interaction)
        .service(restore_interaction)
        .service(change_status)
        .service(status_history)
        .service(complete_follow_up)
        .service(list_complaints)
        .service(complaint_stats)
        .service(list_follow_ups);
}

fn location(id: Uuid) -> String {
    format!("/v1/interactions/{id}")
}

fn show(record: InteractionRecord) -> Interaction {
    super::view(record, Utc::now())
}

fn one(record: InteractionRecord) -> HttpResponse {
    let interaction = show(record);
    response::versioned(interaction.version, &interaction)
}

/// `me` (the calling user) or a user id.
fn staff_member(field: &str, raw: &str, principal: &Principal) -> Result<Uuid, ApiError> {
    match (raw, &principal.actor) {
        ("me", Actor::User(id)) => Ok(*id),
        ("me", _) => Err(invalid(field, "`me` needs a staff user's token")),
        (id, _) => Uuid::parse_str(id).map_err(|_| invalid(field, "must be a user id or `me`")),
    }
}

fn cursor_misfit(err: diesel::result::Error) -> ApiError {
    match err {
        diesel::result::Error::NotFound => invalid("cursor", "does not fit this sort order"),
        other => ApiError::from(other),
    }
}

/// Record an interaction with a customer.
///
/// `channel`, `direction` and `kind` are required, and `occurred_at` unless `due_at`
/// schedules a follow-up. A `complaint` needs a `severity` and starts `open`. The staff
/// member is the calling user unless `staff_id` says otherwise.
#[utoipa::path(
    tag = "Interactions",
    params(("id" = Uuid, Path, description = "Customer id")),
    request_body = InteractionInput,
    security(("bearer" = ["interactions:write"])),
    responses(
        (status = 201, description = "The new interaction", body = Interaction,
            headers(("Location" = String, description = "URL of the new interaction"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 404, description = "No such live customer", body = Problem,
            content_type = PROBLEM),
        (status = 409, description = "The customer's personal data was erased",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/interactions")]
async fn create_interaction(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<InteractionInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let record = super::create(
        &mut conn,
        &principal.actor,
        principal.access,
        *id,
        input.into_inner(),
    )
    .await?;
    let interaction = show(record);
    Ok(response::created(
        &location(interaction.id),
        interaction.version,
        &interaction,
    ))
}

async fn list_page(
    state: &AppState,
    req: &HttpRequest,
    principal: &Principal,
    query: InteractionsQuery,
    customer_id: Option<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (filter, sort) = super::list_filter(principal, &query, customer_id)?;
    let page =
        pagination::request::<CursorKey>(query.limit, query.cursor.as_deref(), sort.as_str())?;
    let rows = state
        .read(req, async |conn| {
            store::list(conn, &filter, sort, page.after.clone(), page.fetch())
                .await
                .map_err(cursor_misfit)
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let key = CursorKey::Time(r.timeline_at, r.id);
            (show(r), key)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, sort.as_str())))
}

/// List a customer's interactions.
///
/// Newest first by default; a pending follow-up sits at its due time. The filters are those
/// of `GET /v1/interactions` (its `customer_id` is this path's).
#[utoipa::path(
    tag = "Interactions",
    params(("id" = Uuid, Path, description = "Customer id"), InteractionsQuery),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "A page of interactions", body = Page<Interaction>))
)]
#[get("/customers/{id}/interactions")]
async fn customer_interactions(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let query: InteractionsQuery = query::parse(req.query_string())?;
    if query.customer_id.is_some_and(|c| c != *id) {
        return Err(invalid(
            "customer_id",
            "differs from the customer in the path",
        ));
    }
    list_page(&state, &req, &principal, query, Some(*id)).await
}

/// List interactions across customers.
///
/// Filters combine with AND; each list filter takes several values separated by commas.
/// Newest first by default.
#[utoipa::path(
    tag = "Interactions",
    params(InteractionsQuery),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "A page of interactions", body = Page<Interaction>))
)]
#[get("/interactions")]
async fn list_interactions(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let query: InteractionsQuery = query::parse(req.query_string())?;
    list_page(&state, &req, &principal, query, None).await
}

/// The interaction as the caller may see it: deleted ones only with `interactions:delete`,
/// those with customers the caller does not reach (owned-only access) never.
async fn visible(
    conn: &mut diesel_async::AsyncPgConnection,
    principal: &Principal,
    record: Option<InteractionRecord>,
) -> Result<InteractionRecord, ApiError> {
    let record = record
        .filter(|r| r.deleted_at.is_none() || principal.can(Scope::InteractionsDelete))
        .ok_or_else(|| ApiError::not_found("interaction"))?;
    ownership::check(conn, principal.access, Held::Interaction(record.id)).await?;
    Ok(record)
}

/// Get an interaction.
#[utoipa::path(
    tag = "Interactions",
    params(("id" = Uuid, Path, description = "Interaction id")),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "The interaction", body = Interaction,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/interactions/{id}")]
async fn get_interaction(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let mut conn = state.pool.get().await?;
    let record = store::get(&mut conn, *id).await?;
    Ok(one(visible(&mut conn, &principal, record).await?))
}

/// Update an interaction.
///
/// A JSON merge patch: absent fields stay, `null` clears. The kind cannot change, nor a
/// complaint's `occurred_at` (when it was opened); its status moves through
/// `POST /v1/interactions/{id}/status`. Setting `occurred_at` on a follow-up marks it done.
#[utoipa::path(
    tag = "Interactions",
    params(("id" = Uuid, Path, description = "Interaction id"), IfMatchHeader),
    request_body(content = InteractionInput, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["interactions:write"])),
    responses((status = 200, description = "The updated interaction", body = Interaction,
        headers(("ETag" = String, description = "The new version tag"))))
)]
#[patch("/interactions/{id}")]
async fn update_interaction(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<InteractionInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Interaction(*id)).await?;
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

/// Delete an interaction.
///
/// A soft delete: it leaves every list, the timeline and the statistics, and can be
/// restored. Deleting a deleted interaction changes nothing.
#[utoipa::path(
    tag = "Interactions",
    params(("id" = Uuid, Path, description = "Interaction id"), IfMatchHeader),
    security(("bearer" = ["interactions:delete"])),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/interactions/{id}")]
async fn delete_interaction(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsDelete)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Interaction(*id)).await?;
    super::set_deleted(&mut conn, &principal.actor, *id, &if_match, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Restore a deleted interaction.
#[utoipa::path(
    tag = "Interactions",
    params(("id" = Uuid, Path, description = "Interaction id"), IfMatchHeader),
    security(("bearer" = ["interactions:delete"])),
    responses((status = 200, description = "The restored interaction", body = Interaction,
        headers(("ETag" = String, description = "The new version tag"))))
)]
#[post("/interactions/{id}/restore")]
async fn restore_interaction(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsDelete)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Interaction(*id)).await?;
    let record = super::set_deleted(&mut conn, &principal.actor, *id, &if_match, false).await?;
    Ok(one(record))
}

/// Move a complaint through its workflow.
///
/// `open` → `in_progress` or `resolved`; `in_progress` → `resolved`; `resolved` → `closed`
/// or back to `open` (reopened); `closed` → `open`. Any other step is `409`, naming the
/// allowed ones (also in the complaint's `next_statuses`). Resolving needs a `resolution`.
/// A reopened complaint's time to resolve runs from its opening to its next resolution.
/// Each step is kept in the complaint's status history.
#[utoipa::path(
    tag = "Complaints",
    params(("id" = Uuid, Path, description = "Interaction id of the complaint"), IfMatchHeader),
    request_body = StatusChangeInput,
    security(("bearer" = ["interactions:write"])),
    responses(
        (status = 200, description = "The complaint after the step", body = Interaction,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "Not a complaint, or a step the workflow does not allow \
            from the current status (`errors` names the allowed ones)",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/interactions/{id}/status")]
async fn change_status(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<StatusChangeInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Interaction(*id)).await?;
    let record = super::change_status(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(one(record))
}

/// A complaint's status history.
///
/// Every step from its opening, oldest first: from, to, when, who and why.
#[utoipa::path(
    tag = "Complaints",
    params(("id" = Uuid, Path, description = "Interaction id of the complaint")),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "The steps, oldest first", body = StatusHistory))
)]
#[get("/interactions/{id}/status-history")]
async fn status_history(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let mut conn = state.pool.get().await?;
    let record = store::get(&mut conn, *id).await?;
    let record = visible(&mut conn, &principal, record).await?;
    if record.status.is_none() {
        return Err(ApiError::not_found("complaint"));
    }
    let data = store::status_history(&mut conn, *id)
        .await?
        .into_iter()
        .map(|r| StatusChange {
            id: r.id,
            from: r.from_status,
            to: r.to_status,
            changed_at: r.changed_at,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            note: r.note,
        })
        .collect();
    Ok(HttpResponse::Ok().json(StatusHistory { data }))
}

/// Mark a follow-up done.
///
/// The scheduled contact took place (now, or at `occurred_at`); `outcome`, `notes` and
/// `duration_seconds` can be recorded with it. `409` if it is not a follow-up or already
/// done.
#[utoipa::path(
    tag = "Follow-ups",
    params(("id" = Uuid, Path, description = "Interaction id of the follow-up"), IfMatchHeader),
    request_body = CompleteInput,
    security(("bearer" = ["interactions:write"])),
    responses(
        (status = 200, description = "The follow-up, done", body = Interaction,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "Not a follow-up, or already done", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/interactions/{id}/complete")]
async fn complete_follow_up(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<CompleteInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Interaction(*id)).await?;
    let record = super::complete(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(one(record))
}

/// List complaints: by default the unresolved ones, oldest first.
///
/// `sort=severity` puts the most severe first, oldest first within a severity. Each
/// complaint carries its `age_hours` while unresolved and `resolution_hours` once resolved.
#[utoipa::path(
    tag = "Complaints",
    params(ComplaintsQuery),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "A page of complaints", body = Page<Interaction>))
)]
#[get("/complaints")]
async fn list_complaints(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let query: ComplaintsQuery = query::parse(req.query_string())?;
    let mut statuses = comma_list("status", query.status.as_deref())?;
    if statuses.is_empty() {
        statuses = vec![ComplaintStatus::Open, ComplaintStatus::InProgress];
    }
    let filter = store::ComplaintFilter {
        statuses,
        severities: comma_list("severity", query.severity.as_deref())?,
        causes: comma_list("cause", query.cause.as_deref())?,
        assignee_id: query
            .assignee_id
            .as_deref()
            .map(|raw| staff_member("assignee_id", raw, &principal))
            .transpose()?,
        customer_id: query.customer_id,
        owner: principal.access.owner(),
    };
    let sort = query.sort.unwrap_or(ComplaintSort::Oldest);
    let page =
        pagination::request::<CursorKey>(query.limit, query.cursor.as_deref(), sort.as_str())?;
    let rows = state
        .read(&req, async |conn| {
            store::complaints(conn, &filter, sort, page.after.clone(), page.fetch())
                .await
                .map_err(cursor_misfit)
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let t = r.timeline_at;
            let key = match sort {
                ComplaintSort::Oldest => CursorKey::Time(t, r.id),
                ComplaintSort::Severity => {
                    CursorKey::Ranked(r.draft.severity.map_or(0, |s| s as i16 + 1), t, r.id)
                }
            };
            (show(r), key)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, sort.as_str())))
}

fn times(row: &store::ResolutionRow) -> ResolutionTimes {
    ResolutionTimes {
        n: row.n,
        median_hours: row.median_hours,
        p90_hours: row.p90_hours,
        mean_hours: row.mean_hours,
    }
}

/// How fast complaints are resolved.
///
/// Over the complaints resolved in `[from, to)` (and not reopened since): the hours from
/// opening (`occurred_at`) to resolution (`resolved_at`) as median, 90th percentile
/// (`percentile_cont`: interpolated between the nearest values) and mean, to two decimals;
/// overall, per severity and per assignee. Also the unresolved complaints now per severity.
///
/// With owned-only access (`access: owned`), over the complaints of the customers the caller
/// manages.
#[utoipa::path(
    tag = "Complaints",
    params(ComplaintStatsQuery),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "Time to resolve", body = ComplaintStats))
)]
#[get("/complaints/stats")]
async fn complaint_stats(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let query: ComplaintStatsQuery = query::parse(req.query_string())?;
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - Duration::days(90));
    if from >= to {
        return Err(invalid("from", "must be before `to`"));
    }
    let owner = principal.access.owner();
    let (rows, mut open, by_cause) = state
        .read(&req, async |conn| {
            Ok((
                store::resolution_times(conn, from, to, owner).await?,
                store::open_complaints(conn, owner).await?,
                store::complaints_by_cause(conn, from, to, owner).await?,
            ))
        })
        .await?;
    let by_cause = by_cause
        .into_iter()
        .map(|(cause, n)| CauseCount { cause, n })
        .collect();
    open.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let overall = rows
        .iter()
        .find(|r| r.grp == 0)
        .map(times)
        .unwrap_or(ResolutionTimes {
            n: 0,
            median_hours: None,
            p90_hours: None,
            mean_hours: None,
        });
    let mut by_severity: Vec<SeverityResolution> = rows
        .iter()
        .filter(|r| r.grp == 1)
        .filter_map(|r| {
            r.severity.map(|severity| SeverityResolution {
                severity,
                times: times(r),
            })
        })
        .collect();
    by_severity.sort_by_key(|r| std::cmp::Reverse(r.severity));
    let by_assignee = rows
        .iter()
        .filter(|r| r.grp == 2)
        .map(|r| AssigneeResolution {
            assignee_id: r.assignee_id,
            times: times(r),
        })
        .collect();
    let open = open
        .into_iter()
        .filter_map(|r| {
            r.severity.map(|severity| OpenComplaints {
                severity,
                n: r.n,
                oldest_opened_at: r.oldest,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(ComplaintStats {
        from,
        to,
        overall,
        by_severity,
        by_assignee,
        open,
        by_cause,
    }))
}

/// A staff member's follow-up work list.
///
/// `state=due` (not done, due time ahead) and `overdue` (not done, due time passed) list
/// soonest due first; both by default; `done` lists the latest done first.
#[utoipa::path(
    tag = "Follow-ups",
    params(FollowUpsQuery),
    security(("bearer" = ["interactions:read"])),
    responses((status = 200, description = "A page of follow-ups", body = Page<Interaction>))
)]
#[get("/follow-ups")]
async fn list_follow_ups(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let query: FollowUpsQuery = query::parse(req.query_string())?;
    let filter = store::FollowUpFilter {
        assignee_id: query
            .assignee
            .as_deref()
            .map(|raw| staff_member("assignee", raw, &principal))
            .transpose()?,
        customer_id: query.customer_id,
        state: query.state,
        owner: principal.access.owner(),
    };
    let done = filter.state == Some(FollowUpState::Done);
    let order = if done { "-occurred_at" } else { "due_at" };
    let page = pagination::request::<CursorKey>(query.limit, query.cursor.as_deref(), order)?;
    let now = Utc::now();
    let rows = state
        .read(&req, async |conn| {
            store::follow_ups(conn, &filter, now, page.after.clone(), page.fetch())
                .await
                .map_err(cursor_misfit)
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let t = if done {
                r.draft.occurred_at
            } else {
                r.draft.due_at
            };
            let key = CursorKey::Time(t.unwrap_or(r.timeline_at), r.id);
            (super::view(r, now), key)
        })
        .collect();
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, order)))
}
