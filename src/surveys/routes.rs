use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    ResponseInput, ResponsesQuery, ResultsQuery, Survey, SurveyInput, SurveyPatch, SurveyResponse,
    SurveyResults, SurveysQuery,
};
use super::store;
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query::{self, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_survey)
        .service(list_surveys)
        .service(get_survey)
        .service(update_survey)
        .service(delete_survey)
        .service(revise_survey)
        .service(create_response)
        .service(survey_responses)
        .service(survey_results)
        .service(list_responses)
        .service(get_response);
}

fn one(record: store::SurveyRecord) -> HttpResponse {
    let survey = super::view(record);
    response::versioned(survey.version, &survey)
}

fn created(record: store::SurveyRecord) -> HttpResponse {
    let survey = super::view(record);
    response::created(
        &format!("/v1/surveys/{}", survey.id),
        survey.version,
        &survey,
    )
}

/// Create a survey.
///
/// It starts as a `draft`; `PATCH` its `status` to `active` to take responses. Each
/// question's `key` is what answers are keyed by. An `expectation_performance` question
/// rates one service attribute twice on the same scale (expectation E, perceived performance
/// P) and carries its Kano category and weight: the results report the gap P − E per
/// attribute and category, and the satisfaction index.
#[utoipa::path(
    tag = "Surveys",
    request_body = SurveyInput,
    security(("bearer" = ["surveys:manage"])),
    responses(
        (status = 201, description = "The new survey", body = Survey,
            headers(("Location" = String, description = "URL of the new survey"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
    )
)]
#[post("/surveys")]
async fn create_survey(
    state: web::Data<AppState>,
    principal: Principal,
    input: Json<SurveyInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysManage)?;
    let mut conn = state.pool.get().await?;
    let record = super::create(&mut conn, &principal.actor, input.into_inner()).await?;
    Ok(created(record))
}

/// List surveys, newest first.
#[utoipa::path(
    tag = "Surveys",
    params(SurveysQuery),
    security(("bearer" = ["surveys:read"])),
    responses((status = 200, description = "A page of surveys", body = Page<Survey>))
)]
#[get("/surveys")]
async fn list_surveys(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    let query: SurveysQuery = query::parse(req.query_string())?;
    let page = pagination::request::<(DateTime<Utc>, Uuid)>(
        query.limit,
        query.cursor.as_deref(),
        "-created_at",
    )?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, query.status, page.after, page.fetch()).await?;
    let rows: Vec<Survey> = rows.into_iter().map(super::view).collect();
    Ok(
        HttpResponse::Ok().json(pagination::page(rows, &page, "-created_at", |s| {
            (s.created_at, s.id)
        })),
    )
}

/// Get a survey.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id")),
    security(("bearer" = ["surveys:read"])),
    responses((status = 200, description = "The survey", body = Survey,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/surveys/{id}")]
async fn get_survey(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    let mut conn = state.pool.get().await?;
    Ok(one(super::find(&mut conn, *id).await?))
}

/// Update a survey.
///
/// A JSON merge patch. `status` moves `draft` → `active` → `closed`, and `closed` →
/// `active` to reopen (other moves are a `409` naming the allowed ones). Once the survey
/// has responses, `questions` and `allow_multiple_responses` cannot change (`409`): create
/// a revision instead, so that every response stays readable against the questions it
/// answered.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id"), IfMatchHeader),
    request_body(content = SurveyPatch, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["surveys:manage"])),
    responses(
        (status = 200, description = "The updated survey", body = Survey,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "A status move that is not allowed, or questions of a \
            survey with responses", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/surveys/{id}")]
async fn update_survey(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<SurveyPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysManage)?;
    let mut conn = state.pool.get().await?;
    let record = super::update(
        &mut conn,
        &principal.actor,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(one(record))
}

/// Delete a survey without responses.
///
/// A survey with responses is kept with them (`409`): close it instead.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id"), IfMatchHeader),
    security(("bearer" = ["surveys:manage"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "The survey has responses or later revisions",
            body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/surveys/{id}")]
async fn delete_survey(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysManage)?;
    let mut conn = state.pool.get().await?;
    super::delete(&mut conn, &principal.actor, *id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Start a new revision of a survey.
///
/// A new `draft` with the same questions and settings, `revision` one higher and `revises`
/// naming this survey. Change its questions freely, activate it, and close this one: each
/// revision keeps its own responses and results.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id")),
    security(("bearer" = ["surveys:manage"])),
    responses((status = 201, description = "The new revision", body = Survey,
        headers(("Location" = String, description = "URL of the new survey"),
                ("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[post("/surveys/{id}/revisions")]
async fn revise_survey(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysManage)?;
    let mut conn = state.pool.get().await?;
    Ok(created(
        super::revise(&mut conn, &principal.actor, *id).await?,
    ))
}

/// Record a response to an active survey.
///
/// Every answer is checked against its question (type, range, required, known choice), all
/// errors reported at once under `answers.<key>`. A customer responds once unless the
/// survey allows more (`409`). The response shows on the customer's timeline, updates their
/// latest NPS and CSAT (the customer list filters on them) and, when the survey's follow-up
/// rule calls for it, opens a follow-up interaction assigned to their account manager.
///
/// With owned-only access (`access: owned`), a customer the caller does not manage is answered
/// as a missing one (`422` on `customer_id`).
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id")),
    request_body = ResponseInput,
    security(("bearer" = ["surveys:respond"])),
    responses(
        (status = 201, description = "The recorded response", body = SurveyResponse,
            headers(("Location" = String, description = "URL of the response"),
                    ("ETag" = String, description = "Version tag"))),
        (status = 404, description = "No such survey", body = Problem, content_type = PROBLEM),
        (status = 409, description = "The survey is not active, the customer has responded \
            already, or their personal data was erased", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/surveys/{id}/responses")]
async fn create_response(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<ResponseInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRespond)?;
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
    let record = super::respond(&mut conn, &principal.actor, *id, input).await?;
    let response = super::response_view(record);
    Ok(response::created(
        &format!("/v1/survey-responses/{}", response.id),
        response.version,
        &response,
    ))
}

async fn responses_page(
    state: &AppState,
    principal: &Principal,
    query: ResponsesQuery,
    survey_id: Option<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (filter, sort) = super::response_filter(principal, &query, survey_id)?;
    let page = pagination::request::<(DateTime<Utc>, Uuid)>(
        query.limit,
        query.cursor.as_deref(),
        sort.as_str(),
    )?;
    let mut conn = state.pool.get().await?;
    if let Some(id) = filter.survey_id {
        super::find(&mut conn, id).await?;
    }
    let rows = store::list_responses(&mut conn, &filter, sort, page.after, page.fetch()).await?;
    let rows: Vec<SurveyResponse> = rows.into_iter().map(super::response_view).collect();
    Ok(
        HttpResponse::Ok().json(pagination::page(rows, &page, sort.as_str(), |r| {
            (r.submitted_at, r.id)
        })),
    )
}

/// List a survey's responses.
///
/// Newest first by default. Filters combine with AND: the customer, the time answered,
/// score ranges (on the survey's first NPS, CSAT and CES questions: `nps_max=6` lists the
/// detractors), and the customer's segments when they answered.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id"), ResponsesQuery),
    security(("bearer" = ["surveys:read"])),
    responses((status = 200, description = "A page of responses", body = Page<SurveyResponse>))
)]
#[get("/surveys/{id}/responses")]
async fn survey_responses(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    let query: ResponsesQuery = query::parse(req.query_string())?;
    if query.survey_id.is_some_and(|s| s != *id) {
        return Err(invalid("survey_id", "differs from the survey in the path"));
    }
    responses_page(&state, &principal, query, Some(*id)).await
}

/// List responses across surveys.
///
/// With `customer_id`, everything a customer answered. The filters are those of
/// `GET /v1/surveys/{id}/responses`.
#[utoipa::path(
    tag = "Surveys",
    params(ResponsesQuery),
    security(("bearer" = ["surveys:read"])),
    responses(
        (status = 200, description = "A page of responses", body = Page<SurveyResponse>),
        (status = 404, description = "`survey_id` names no survey",
            body = crate::http::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/survey-responses")]
async fn list_responses(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    let query: ResponsesQuery = query::parse(req.query_string())?;
    responses_page(&state, &principal, query, None).await
}

/// Get a survey response.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Response id")),
    security(("bearer" = ["surveys:read"])),
    responses((status = 200, description = "The response", body = SurveyResponse,
        headers(("ETag" = String, description = "Version tag"))))
)]
#[get("/survey-responses/{id}")]
async fn get_response(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::SurveyResponse(*id)).await?;
    let record = store::response(&mut conn, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("survey response"))?;
    let response = super::response_view(record);
    Ok(response::versioned(response.version, &response))
}

/// A survey's results.
///
/// Over whole UTC days from `from` to `to` (inclusive; all responses by default), from the
/// answers as recorded, exactly as DOMAIN.md section 4 defines each figure:
///
/// - **NPS** (`nps` questions): % promoters (9–10) − % detractors (0–6), −100 to 100, with
///   the counts and shares of promoters, passives (7–8) and detractors.
/// - **CSAT** (`csat`): % of answers that are 4 or 5.
/// - **CES** (`ces`): the mean answer, 1 to 7.
/// - **Gap** (`expectation_performance`): mean P − mean E per attribute, with n and the
///   distribution of each; per Kano category, the weight-weighted means of the attributes'.
/// - **Satisfaction index**, 0 to 100: Σ wₐ · (mean Pₐ − 1) / (scale_maxₐ − 1) · 100 / Σ wₐ
///   over the attributes a with answers, wₐ their weights.
/// - Every scored question's distribution (each point of the scale, zeros included) and
///   mean; every choice's count and share.
///
/// Figures are rounded to 2 decimals (half away from zero), each from the counts. With
/// `group_by=month|week` the same figures follow per period, every period of the range
/// listed (empty ones with `responses: 0` and no scores): the trend. With
/// `group_by=tier|lifecycle_stage|region_type` they follow per segment of the customers
/// when they responded (`none`: without one), largest first. Served from a roll-up by day
/// and by month (a few rows per question, answer and segment), not every response: a range
/// reads its whole months, and at most half a month of days at either end. A response
/// counts from the moment it is recorded.
///
/// Refused (`403`) with owned-only access (`access: owned`): the roll-up counts every
/// respondent, and no filter makes it a count of one manager's customers.
#[utoipa::path(
    tag = "Surveys",
    params(("id" = Uuid, Path, description = "Survey id"), ResultsQuery),
    security(("bearer" = ["surveys:read"])),
    responses((status = 200, description = "The results", body = SurveyResults))
)]
#[get("/surveys/{id}/results")]
async fn survey_results(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    // Results are counted as responses arrive, over every respondent: no filter makes them
    // a count of one manager's customers.
    principal.access.require_all("a survey's results")?;
    let query: ResultsQuery = query::parse(req.query_string())?;
    let mut conn = state.pool.get().await?;
    let survey = super::find(&mut conn, *id).await?;
    let questions = super::questions(&survey);
    let results = super::results::of(&mut conn, &survey, &questions, &query).await?;
    Ok(HttpResponse::Ok().json(results))
}
