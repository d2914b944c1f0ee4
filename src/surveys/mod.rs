//! Satisfaction surveys (DOMAIN.md section 4): definitions with typed questions, responses
//! checked against them, and results (NPS, CSAT, CES, the expectation-performance gap per
//! attribute and Kano category, the satisfaction index) computed from a daily and monthly
//! roll-up. Each response appends its counts in its own transaction, and [`fold_counts`]
//! adds them to the roll-up every `RAPPORT_SURVEY_FOLD_INTERVAL`. Writes are composed here,
//! once.

pub mod json;
pub mod results;
mod routes;
pub mod rules;
pub mod store;

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::Value;
use uuid::Uuid;

use crate::audit;
use crate::auth::{Actor, CustomerAccess, Principal};
use crate::domain::{Channel, optional_text, required_text};
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, ErrorCode, FieldError};
use crate::http::etag::IfMatch;
use crate::http::patch::{Patch, nullable};
use crate::http::query::{bounds, comma_list};
use crate::http::validation::Checks;
use crate::interactions::json::{Direction, InteractionInput, InteractionKind};
use crate::journal::{self, Change};
use json::{
    FollowUpRule, Question, ResponseInput, ResponseSegment, ResponseSort, ResponsesQuery, Survey,
    SurveyInput, SurveyPatch, SurveyResponse, SurveyStatus,
};
use store::{NO_SEGMENT, ResponseRecord, SurveyDraft, SurveyRecord};

pub use routes::configure;

/// The questions of a stored survey.
pub fn questions(record: &SurveyRecord) -> Vec<Question> {
    serde_json::from_value(record.draft.questions.clone()).unwrap_or_default()
}

fn follow_up_rule(record: &SurveyRecord) -> Option<FollowUpRule> {
    record
        .draft
        .follow_up
        .clone()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// The API view of a survey.
pub fn view(record: SurveyRecord) -> Survey {
    Survey {
        questions: questions(&record),
        follow_up: follow_up_rule(&record),
        id: record.id,
        name: record.draft.name,
        description: record.draft.description,
        status: record.status,
        allow_multiple_responses: record.draft.allow_multiple_responses,
        revision: record.revision,
        revises: record.revises,
        activated_at: record.activated_at,
        closed_at: record.closed_at,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
    }
}

/// The API view of a response.
pub fn response_view(r: ResponseRecord) -> SurveyResponse {
    SurveyResponse {
        id: r.id,
        survey_id: r.survey_id,
        customer_id: r.customer_id,
        interaction_id: r.interaction_id,
        purchase_id: r.purchase_id,
        submitted_at: r.submitted_at,
        verdicts: rules::verdicts(&r.answers),
        answers: r.answers,
        nps: r.nps,
        nps_category: r.nps.map(rules::nps_category),
        csat: r.csat,
        ces: r.ces,
        segment: ResponseSegment {
            loyalty_tier: r.loyalty_tier,
            lifecycle_stage: r.lifecycle_stage,
            region_type: r.region_type,
        },
        follow_up_interaction_id: r.follow_up_id,
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

fn follow_up_checked(
    checks: &mut Checks,
    rule: Option<FollowUpRule>,
    questions: &[Question],
) -> Option<FollowUpRule> {
    if let Some(rule) = &rule {
        rules::follow_up(checks, rule, questions);
    }
    rule
}

/// Creates a draft survey.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: SurveyInput,
) -> Result<SurveyRecord, ApiError> {
    let mut checks = Checks::new();
    let name = checks.check("name", required_text(&input.name, 200));
    let description = checks
        .check(
            "description",
            optional_text(input.description.as_deref(), 2000),
        )
        .flatten();
    let questions = rules::questions(&mut checks, input.questions);
    let follow_up = follow_up_checked(&mut checks, input.follow_up, &questions);
    let name = checks.done(name)?;
    let draft = SurveyDraft {
        name,
        description,
        questions: to_json(&questions)?,
        allow_multiple_responses: input.allow_multiple_responses,
        follow_up: follow_up.as_ref().map(to_json).transpose()?,
    };
    insert(conn, actor, &draft, None).await
}

async fn insert(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    draft: &SurveyDraft,
    revises: Option<(Uuid, i32)>,
) -> Result<SurveyRecord, ApiError> {
    conn.transaction(async |conn| {
        let record = store::insert(conn, Uuid::now_v7(), draft, revises).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "survey.created",
                "survey",
                record.id,
                audit::created(&view(record.clone())),
            ),
        )
        .await?;
        Ok(record)
    })
    .await
}

async fn lock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<SurveyRecord, ApiError> {
    let record = store::lock(conn, id, true)
        .await?
        .ok_or_else(|| ApiError::not_found("survey"))?;
    if_match.check(record.version)?;
    Ok(record)
}

/// Where a survey may go from each status.
fn next_statuses(status: SurveyStatus) -> &'static [SurveyStatus] {
    match status {
        SurveyStatus::Draft => &[SurveyStatus::Active],
        SurveyStatus::Active => &[SurveyStatus::Closed],
        SurveyStatus::Closed => &[SurveyStatus::Active],
    }
}

/// Applies a merge patch to a survey. What responses were given to stays as it is.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    input: SurveyPatch,
) -> Result<SurveyRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock(conn, id, if_match).await?;
        let mut draft = before.draft.clone();
        let mut checks = Checks::new();
        match input.name {
            Patch::Absent => {}
            Patch::Null => checks.fail("name", "cannot be null"),
            Patch::Value(name) => {
                if let Some(name) = checks.check("name", required_text(&name, 200)) {
                    draft.name = name;
                }
            }
        }
        nullable(
            &mut checks,
            "description",
            input.description,
            &mut draft.description,
            crate::domain::clearable_text(2000),
        );
        let mut questions = questions(&before);
        match input.questions {
            Patch::Absent => {}
            Patch::Null => checks.fail("questions", "cannot be null"),
            Patch::Value(list) => questions = rules::questions(&mut checks, list),
        }
        match input.allow_multiple_responses {
            Patch::Absent => {}
            Patch::Null => checks.fail("allow_multiple_responses", "cannot be null"),
            Patch::Value(allow) => draft.allow_multiple_responses = allow,
        }
        let follow_up = match input.follow_up {
            Patch::Absent => follow_up_rule(&before),
            Patch::Null => None,
            Patch::Value(rule) => Some(rule),
        };
        let follow_up = follow_up_checked(&mut checks, follow_up, &questions);
        let status = match input.status {
            Patch::Absent => before.status,
            Patch::Null => {
                checks.fail("status", "cannot be null");
                before.status
            }
            Patch::Value(status) => status,
        };
        checks.finish()?;
        draft.questions = to_json(&questions)?;
        draft.follow_up = follow_up.as_ref().map(to_json).transpose()?;
        let frozen = draft.questions != before.draft.questions
            || draft.allow_multiple_responses != before.draft.allow_multiple_responses;
        if frozen && store::has_responses(conn, id).await? {
            return Err(ApiError::conflict(
                "this survey has responses: its questions and `allow_multiple_responses` \
                 cannot change; create a revision (POST /v1/surveys/{id}/revisions) instead",
            ));
        }
        let moved = status != before.status;
        if moved && !next_statuses(before.status).contains(&status) {
            let allowed: Vec<&str> = next_statuses(before.status)
                .iter()
                .map(|s| s.as_str())
                .collect();
            return Err(ApiError::conflict(format!(
                "a survey cannot go from `{}` to `{status}`; it can go to: {}",
                before.status,
                allowed.join(", ")
            ))
            .with_errors(vec![FieldError::new(
                "status",
                format!("must be one of: {}", allowed.join(", ")),
            )]));
        }
        if draft == before.draft && !moved {
            return Ok(before);
        }
        let now = Utc::now();
        let times = (
            if moved && status == SurveyStatus::Active {
                Some(now)
            } else {
                before.activated_at
            },
            if moved && status == SurveyStatus::Closed {
                Some(now)
            } else {
                before.closed_at
            },
        );
        let after = store::update(conn, id, &draft, status, times).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "survey.updated",
                "survey",
                id,
                audit::diff(&view(before), &view(after.clone())),
            ),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Starts a new revision of a survey: a draft with the same questions and settings, free to
/// change, whose results are its own.
pub async fn revise(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<SurveyRecord, ApiError> {
    let before = store::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("survey"))?;
    insert(
        conn,
        actor,
        &before.draft,
        Some((before.id, before.revision)),
    )
    .await
}

/// Deletes a survey that has no responses (one that has is closed instead).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        let before = lock(conn, id, if_match).await?;
        if store::has_responses(conn, id).await? {
            return Err(ApiError::conflict(
                "this survey has responses and is kept with them: close it instead",
            ));
        }
        if store::is_revised(conn, id).await? {
            return Err(ApiError::conflict(
                "later revisions refer to this survey: close it instead",
            ));
        }
        store::delete(conn, id).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "survey.deleted",
                "survey",
                id,
                audit::created(&view(before)),
            ),
        )
        .await?;
        Ok(())
    })
    .await
}

/// The live customer a response names, as a field error when there is none.
async fn responding_customer(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<crate::customers::store::CustomerRecord, ApiError> {
    crate::customers::lock_live(conn, id).await.map_err(|err| {
        if err.code() == ErrorCode::NotFound {
            no_live_customer()
        } else {
            err
        }
    })
}

/// What a response naming no live customer (or one the caller does not reach) is answered.
pub(crate) fn no_live_customer() -> ApiError {
    ApiError::invalid_field("customer_id", "must be the id of a live customer")
}

/// Checks that what a response follows belongs to its customer.
async fn check_links(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    input: &ResponseInput,
) -> Result<(), ApiError> {
    let mut checks = Checks::new();
    if let Some(id) = input.interaction_id {
        let found = crate::interactions::store::by_ids(conn, &[id]).await?;
        if !found
            .iter()
            .any(|i| i.customer_id == customer_id && i.deleted_at.is_none())
        {
            checks.fail(
                "interaction_id",
                "must be the id of an interaction of this customer",
            );
        }
    }
    if let Some(id) = input.purchase_id {
        let purchase = crate::purchases::store::get(conn, id).await?;
        if purchase.is_none_or(|p| p.customer_id != customer_id) {
            checks.fail(
                "purchase_id",
                "must be the id of a purchase of this customer",
            );
        }
    }
    checks.finish()
}

/// Opens the follow-up a response calls for, assigned to the customer's account manager
/// (unassigned when they have none or theirs is no longer active).
async fn open_follow_up(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    survey: &SurveyRecord,
    customer: &crate::customers::store::CustomerRecord,
    rule: &FollowUpRule,
    reason: String,
    submitted_at: DateTime<Utc>,
) -> Result<Uuid, ApiError> {
    let manager = match customer.draft.account_manager_id {
        Some(id) => crate::auth::store::user_access(conn, id)
            .await?
            .filter(|access| access.active)
            .map(|_| id),
        None => None,
    };
    let name: String = survey.draft.name.chars().take(150).collect();
    let input = InteractionInput {
        channel: Patch::Value(customer.draft.preferred_channel.unwrap_or(Channel::Phone)),
        direction: Patch::Value(Direction::Outbound),
        kind: Patch::Value(InteractionKind::Callback),
        subject: Patch::Value(format!("Survey follow-up: {name}")),
        notes: Patch::Value(format!(
            "Opened by the survey's follow-up rule: {reason}. Find the cause, act on it, \
             and tell the customer."
        )),
        staff_id: Patch::Null,
        due_at: Patch::Value(
            submitted_at.max(Utc::now()) + Duration::hours(i64::from(rule.due_in_hours)),
        ),
        assignee_id: manager.into(),
        ..InteractionInput::default()
    };
    // A follow-up names no contact, which is all access decides there.
    let record =
        crate::interactions::create(conn, actor, CustomerAccess::All, customer.id, input).await?;
    Ok(record.id)
}

/// Records a response to an active survey: checks every answer against its question, adds
/// it to the results, keeps the customer's latest scores, and opens a follow-up when the
/// survey's rule calls for one. One response per customer unless the survey allows more.
pub async fn respond(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    survey_id: Uuid,
    input: ResponseInput,
) -> Result<ResponseRecord, ApiError> {
    let now = Utc::now();
    let submitted_at = input.submitted_at.unwrap_or(now);
    if submitted_at > now + Duration::minutes(1) {
        return Err(ApiError::invalid_field(
            "submitted_at",
            "must not be in the future",
        ));
    }
    conn.transaction(async |conn| {
        let survey = store::lock(conn, survey_id, false)
            .await?
            .ok_or_else(|| ApiError::not_found("survey"))?;
        if survey.status != SurveyStatus::Active {
            return Err(ApiError::conflict(format!(
                "this survey is {} and takes no responses",
                survey.status
            )));
        }
        let questions = questions(&survey);
        let answered = rules::answers(&questions, input.answers.clone());
        let customer = responding_customer(conn, input.customer_id).await;
        // Report the answers' and the links' errors together.
        let (answered, customer) = match (answered, customer) {
            (Ok(a), Ok(c)) => (a, c),
            (Err(a), Err(c)) if a.code() == c.code() => {
                let mut errors = c.errors().to_vec();
                errors.extend(a.errors().iter().cloned());
                return Err(ApiError::validation(errors));
            }
            (Err(err), _) | (_, Err(err)) => return Err(err),
        };
        check_links(conn, customer.id, &input).await?;
        let single = !survey.draft.allow_multiple_responses;
        if single && store::has_responded(conn, survey_id, customer.id).await? {
            return Err(already_responded());
        }
        let tier = crate::loyalty::store::account_tier(conn, customer.id)
            .await?
            .flatten();
        let follow_up_id = match follow_up_rule(&survey).and_then(|rule| {
            let gaps = rules::gaps(&questions, &answered);
            rules::follow_up_reason(&rule, answered.nps, answered.csat, &gaps)
                .map(|why| (rule, why))
        }) {
            Some((rule, why)) => Some(
                open_follow_up(conn, actor, &survey, &customer, &rule, why, submitted_at).await?,
            ),
            None => None,
        };
        let record = ResponseRecord {
            id: Uuid::now_v7(),
            survey_id,
            customer_id: customer.id,
            interaction_id: input.interaction_id,
            purchase_id: input.purchase_id,
            submitted_at,
            answers: Value::Object(answered.answers.clone()),
            nps: answered.nps,
            csat: answered.csat,
            ces: answered.ces,
            loyalty_tier: tier,
            lifecycle_stage: customer.draft.lifecycle_stage,
            region_type: customer.draft.region_type,
            single,
            follow_up_id,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let record = store::insert_response(conn, &record)
            .await
            .map_err(|err| match err {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => already_responded(),
                other => ApiError::from(other),
            })?;
        store::remember_scores(conn, customer.id, submitted_at, answered.nps, answered.csat)
            .await?;
        let attributes: Vec<(String, i16, i16)> = rules::verdicts(&record.answers)
            .into_iter()
            .map(|v| (v.key, v.expectation, v.performance))
            .collect();
        store::remember_attributes(conn, customer.id, record.id, submitted_at, &attributes).await?;
        let shown = response_view(record.clone());
        let event = NewEvent::new(EventType::SurveyResponseCreated, record.id, &shown);
        let change = Change::audited(
            "survey_response.created",
            "survey_response",
            record.id,
            audit::created(&shown),
        );
        journal::record(conn, actor, change.and(event)).await?;
        store::count(
            conn,
            &[store::Counted {
                survey_id,
                day: submitted_at.date_naive(),
                tier: record.loyalty_tier.as_deref(),
                stage: record.lifecycle_stage,
                region: record.region_type,
                rows: &answered.stats,
            }],
        )
        .await?;
        Ok(record)
    })
    .await
}

/// Folds every count responses appended into the roll-up, a batch per transaction, and
/// returns how many rows it folded. One connection folds at a time: the others wait for it,
/// then fold what is left.
pub async fn fold(conn: &mut AsyncPgConnection) -> diesel::QueryResult<usize> {
    let mut total = 0;
    loop {
        let folded = conn
            .transaction(async |conn| {
                store::lock_fold(conn).await?;
                store::fold_batch(conn).await
            })
            .await?;
        total += usize::try_from(folded).unwrap_or_default();
        if folded < store::FOLD_BATCH {
            return Ok(total);
        }
    }
}

/// Folded rows after which their space is reclaimed.
const VACUUM_AFTER: usize = 100_000;

/// Folds the counts responses append into the roll-up every `RAPPORT_SURVEY_FOLD_INTERVAL`,
/// so the results read few of them beside it (every instance runs this; one folds at a time).
/// Counted in `/metrics` (`survey_counts_folded_total`, `survey_folds_failed_total`).
pub async fn fold_counts(state: actix_web::web::Data<crate::state::AppState>) {
    let mut tick = tokio::time::interval(state.settings.survey_fold_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut since_vacuum = 0;
    loop {
        tick.tick().await;
        let mut conn = match state.jobs.get().await {
            Ok(conn) => conn,
            Err(err) => {
                state.metrics.survey_fold(None);
                tracing::warn!(error = %err, "the survey counts found no connection to fold in");
                continue;
            }
        };
        match fold(&mut conn).await {
            Ok(0) => {}
            Ok(folded) => {
                tracing::debug!(folded, "folded survey counts into the roll-up");
                state.metrics.survey_fold(Some(folded));
                since_vacuum += folded;
            }
            Err(err) => {
                state.metrics.survey_fold(None);
                tracing::warn!(error = %err, "could not fold the survey counts");
            }
        }
        if since_vacuum >= VACUUM_AFTER {
            since_vacuum = 0;
            if let Err(err) = store::vacuum_deltas(&mut conn).await {
                tracing::warn!(error = %err, "could not vacuum the folded survey counts");
            }
        }
    }
}

fn already_responded() -> ApiError {
    ApiError::conflict(
        "this customer has responded to this survey already, and it takes one response per \
         customer",
    )
    .with_errors(vec![FieldError::new(
        "customer_id",
        "has responded to this survey already",
    )])
}

/// The survey with this id (`404` when there is none).
pub async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<SurveyRecord, ApiError> {
    store::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("survey"))
}

/// The filter and order a response list query asks for (`survey_id`: the path's, on a
/// survey's list), checked: shared by the lists and the export.
pub fn response_filter(
    principal: &Principal,
    query: &ResponsesQuery,
    survey_id: Option<Uuid>,
) -> Result<(store::ResponseFilter, ResponseSort), ApiError> {
    let loyalty_tiers = query
        .loyalty_tier
        .as_deref()
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(|t| (t != NO_SEGMENT).then(|| t.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let filter = store::ResponseFilter {
        survey_id: survey_id.or(query.survey_id),
        customer_id: query.customer_id,
        submitted_after: query.submitted_after,
        submitted_before: query.submitted_before,
        nps: bounds("nps", query.nps_min, query.nps_max, (0, 10))?,
        csat: bounds("csat", query.csat_min, query.csat_max, (1, 5))?,
        ces: bounds("ces", query.ces_min, query.ces_max, (1, 7))?,
        loyalty_tiers,
        lifecycle_stages: comma_list("lifecycle_stage", query.lifecycle_stage.as_deref())?,
        region_type: query.region_type,
        owner: principal.access.owner(),
    };
    Ok((filter, query.sort.unwrap_or(ResponseSort::SubmittedAtDesc)))
}
