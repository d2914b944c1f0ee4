//! Interactions: the customer log (DOMAIN.md section 3), complaints with their workflow and
//! statistics, and scheduled follow-ups. Writes are composed here, once, for the routes.

pub mod json;
mod routes;
pub mod rules;
pub mod store;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::audit;
use crate::auth::{Actor, CustomerAccess, Principal, Scope};
use crate::customers::json::DeletedFilter;
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, FieldError};
use crate::http::etag::IfMatch;
use crate::http::query::{self, comma_list};
use crate::journal::{self, Change};
use json::{
    CompleteInput, Interaction, InteractionInput, InteractionSort, InteractionsQuery,
    StatusChangeInput,
};
use rules::TransitionError;
use store::{InteractionDraft, InteractionRecord};

pub use routes::configure;

/// The API view of a record at `now` (follow-up state and complaint age move with time).
pub fn view(record: InteractionRecord, now: DateTime<Utc>) -> Interaction {
    let d = record.draft;
    let opened_at = d.occurred_at;
    let unresolved = record.status.is_some() && record.resolved_at.is_none();
    Interaction {
        id: record.id,
        customer_id: record.customer_id,
        channel: d.channel,
        direction: d.direction,
        kind: d.kind,
        subject: d.subject,
        notes: d.notes,
        occurred_at: d.occurred_at,
        duration_seconds: d.duration_seconds,
        staff_id: d.staff_id,
        outcome: d.outcome,
        due_at: d.due_at,
        follow_up_state: rules::follow_up_state(d.due_at, d.occurred_at, now),
        assignee_id: d.assignee_id,
        purchase_id: d.purchase_id,
        contact_id: d.contact_id,
        severity: d.severity,
        cause: d.cause,
        status: record.status,
        next_statuses: record
            .status
            .map(|s| rules::next_statuses(s).to_vec())
            .unwrap_or_default(),
        resolution: d.resolution,
        in_progress_at: record.in_progress_at,
        resolved_at: record.resolved_at,
        closed_at: record.closed_at,
        reopened_at: record.reopened_at,
        reopen_count: record.status.map(|_| record.reopen_count),
        resolution_hours: opened_at
            .zip(record.resolved_at)
            .map(|(from, to)| round2(rules::hours(from, to))),
        age_hours: opened_at
            .filter(|_| unresolved)
            .map(|from| round2(rules::hours(from, now))),
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
        deleted_at: record.deleted_at,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// What the audit log keeps of an interaction (times that move are left out of diffs).
fn audited(record: &InteractionRecord) -> Interaction {
    let mut view = view(record.clone(), record.updated_at);
    view.follow_up_state = None;
    view.age_hours = None;
    view
}

/// The `interaction.updated` event of a change, `changes` its audit diff.
fn updated(after: &InteractionRecord, changes: &serde_json::Value) -> NewEvent {
    NewEvent::new(
        EventType::InteractionUpdated,
        after.id,
        &view(after.clone(), Utc::now()),
    )
    .previous_from_diff(changes)
}

/// The callback (回访) after a sale (DOMAIN.md section 9): for a customer at the
/// `accountable` level or above, a phone follow-up due the analytics settings' days for the
/// level after the purchase (`callback_days`), assigned to the account manager and linked to
/// the purchase; none when the level has no days set. One statement in the purchase's
/// transaction, which the caller journals with the purchase (its `interaction.created`
/// event and audit row); the purchase being new, it opens at most one.
pub async fn callback_after_purchase(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    level: crate::customers::json::RelationshipLevel,
    purchase_id: Uuid,
    purchased_at: DateTime<Utc>,
) -> Result<Option<Change>, ApiError> {
    let Some(level) = rules::callback_level(level) else {
        return Ok(None);
    };
    let created = store::insert_callback(
        conn,
        Uuid::now_v7(),
        customer_id,
        level.as_str(),
        rules::CALLBACK_SUBJECT,
        purchase_id,
        purchased_at,
    )
    .await?;
    Ok(created.map(|record| {
        let shown = view(record.clone(), Utc::now());
        let event = NewEvent::new(EventType::InteractionCreated, record.id, &shown);
        Change::announced(event, audit::created(&audited(&record)))
    }))
}

/// Checks what an interaction refers to, when it changes: active staff members, a purchase
/// of the same customer, and a contact (current or past) of the customer organization.
async fn check_links(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    customer_id: Uuid,
    draft: &InteractionDraft,
    before: Option<&InteractionDraft>,
) -> Result<(), ApiError> {
    if let Some(id) = draft
        .purchase_id
        .filter(|id| Some(*id) != before.and_then(|b| b.purchase_id))
    {
        let buyer = store::purchase_customer(conn, id).await?;
        if buyer != Some(customer_id) {
            return Err(ApiError::invalid_field(
                "purchase_id",
                "must be the id of a purchase of this customer",
            ));
        }
    }
    if let Some(id) = draft
        .contact_id
        .filter(|id| Some(*id) != before.and_then(|b| b.contact_id))
    {
        crate::contacts::check_people(conn, access, customer_id, "contact_id", &[id]).await?;
    }
    for (field, id, was) in [
        ("staff_id", draft.staff_id, before.and_then(|b| b.staff_id)),
        (
            "assignee_id",
            draft.assignee_id,
            before.and_then(|b| b.assignee_id),
        ),
    ] {
        if let Some(id) = id.filter(|id| Some(*id) != was) {
            crate::users::check_active(conn, field, id).await?;
        }
    }
    Ok(())
}

/// Records an interaction with a live customer; the staff member is the recording user
/// unless the input names one. `access` is the caller's: a `contact_id` they cannot see is
/// answered as a missing one.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    customer_id: Uuid,
    input: InteractionInput,
) -> Result<InteractionRecord, ApiError> {
    let staff_given = !input.staff_id.is_absent();
    let mut draft = rules::apply(input, &InteractionDraft::blank(), true, Utc::now())
        .map_err(ApiError::validation)?;
    if let (false, Actor::User(id)) = (staff_given, actor) {
        draft.staff_id = Some(*id);
    }
    conn.transaction(async |conn| {
        crate::customers::lock_live(conn, customer_id).await?;
        check_links(conn, access, customer_id, &draft, None).await?;
        let record = store::insert(conn, Uuid::now_v7(), customer_id, &draft).await?;
        if let (Some(status), Some(opened_at)) = (record.status, record.draft.occurred_at) {
            store::record_status_change(conn, record.id, None, status, opened_at, actor, None)
                .await?;
        }
        let shown = view(record.clone(), Utc::now());
        let event = NewEvent::new(EventType::InteractionCreated, record.id, &shown);
        let change = Change::announced(event, audit::created(&audited(&record)));
        journal::record(conn, actor, change).await?;
        Ok(record)
    })
    .await
}

/// Locks a live interaction for the transaction and checks `If-Match` against it.
async fn lock_live(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<InteractionRecord, ApiError> {
    let record = store::lock(conn, id)
        .await?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("interaction"))?;
    if_match.check(record.version)?;
    Ok(record)
}

/// Writes a changed draft with its audit event; nothing when nothing changes.
async fn save(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    before: InteractionRecord,
    draft: InteractionDraft,
) -> Result<InteractionRecord, ApiError> {
    if draft == before.draft {
        return Ok(before);
    }
    check_links(
        conn,
        access,
        before.customer_id,
        &draft,
        Some(&before.draft),
    )
    .await?;
    let after = store::update(conn, before.id, &draft).await?;
    let changes = audit::diff(&audited(&before), &audited(&after));
    let event = updated(&after, &changes);
    journal::record(conn, actor, Change::announced(event, changes)).await?;
    Ok(after)
}

/// Applies a merge patch to a live interaction.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    id: Uuid,
    if_match: &IfMatch,
    input: InteractionInput,
) -> Result<InteractionRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock_live(conn, id, if_match).await?;
        let draft =
            rules::apply(input, &before.draft, false, Utc::now()).map_err(ApiError::validation)?;
        if before.status.is_some() && draft.occurred_at != before.draft.occurred_at {
            return Err(ApiError::invalid_field(
                "occurred_at",
                "cannot change on a complaint: it is when the complaint was opened",
            ));
        }
        save(conn, actor, access, before, draft).await
    })
    .await
}

/// Marks a follow-up done.
pub async fn complete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    input: CompleteInput,
) -> Result<InteractionRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock_live(conn, id, if_match).await?;
        if before.draft.due_at.is_none() {
            return Err(ApiError::conflict(
                "this interaction is not a follow-up (it has no `due_at`)",
            ));
        }
        if before.draft.occurred_at.is_some() {
            return Err(ApiError::conflict("this follow-up is already done"));
        }
        let patch = InteractionInput {
            occurred_at: crate::http::patch::Patch::Value(
                input.occurred_at.unwrap_or_else(Utc::now),
            ),
            outcome: input.outcome.into(),
            notes: input.notes.into(),
            duration_seconds: input.duration_seconds.into(),
            ..InteractionInput::default()
        };
        let draft =
            rules::apply(patch, &before.draft, false, Utc::now()).map_err(ApiError::validation)?;
        // Marking a follow-up done changes no `contact_id`, which is all access decides here.
        save(conn, actor, CustomerAccess::All, before, draft).await
    })
    .await
}

/// Moves a complaint one step through its workflow.
pub async fn change_status(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    input: StatusChangeInput,
) -> Result<InteractionRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock_live(conn, id, if_match).await?;
        let (Some(status), Some(opened_at)) = (before.status, before.draft.occurred_at) else {
            return Err(ApiError::conflict("only complaints have a status workflow"));
        };
        let step = rules::transition(
            status,
            &before.steps(),
            opened_at,
            before.draft.resolution.as_deref(),
            input.status,
            input.resolution,
            input.note,
            input.at,
            Utc::now(),
        )
        .map_err(|err| match err {
            TransitionError::Illegal(allowed) => illegal(status, input.status, allowed),
            TransitionError::Invalid(errors) => ApiError::validation(errors),
        })?;
        let after =
            store::set_status(conn, id, step.to, &step.steps, step.resolution.as_deref()).await?;
        store::record_status_change(
            conn,
            id,
            Some(status),
            step.to,
            step.at,
            actor,
            step.note.as_deref(),
        )
        .await?;
        let changes = audit::diff(&audited(&before), &audited(&after));
        let shown = view(after.clone(), Utc::now());
        let events = vec![
            updated(&after, &changes),
            NewEvent::new(EventType::ComplaintStatusChanged, id, &shown)
                .previous(serde_json::json!({ "status": status })),
        ];
        let change = Change::audited("complaint.status_changed", "interaction", id, changes);
        journal::record(conn, actor, change.and_all(events)).await?;
        Ok(after)
    })
    .await
}

fn illegal(
    from: json::ComplaintStatus,
    to: json::ComplaintStatus,
    allowed: &[json::ComplaintStatus],
) -> ApiError {
    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    ApiError::conflict(format!(
        "a complaint cannot go from `{from}` to `{to}`; from `{from}` it can go to: {}",
        names.join(", ")
    ))
    .with_errors(vec![FieldError::new(
        "status",
        format!("must be one of: {}", names.join(", ")),
    )])
}

/// Deletes (soft) or restores an interaction.
pub async fn set_deleted(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    deleted: bool,
) -> Result<InteractionRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = store::lock(conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("interaction"))?;
        if_match.check(before.version)?;
        if before.deleted_at.is_some() == deleted {
            return Ok(before);
        }
        let after = store::set_deleted(conn, id, deleted).await?;
        let action = if deleted {
            "interaction.deleted"
        } else {
            "interaction.restored"
        };
        // No event type announces it (yet): audited only.
        let change = Change::audited(action, "interaction", id, serde_json::Value::Null);
        journal::record(conn, actor, change).await?;
        Ok(after)
    })
    .await
}

/// The filter and order an interaction list query asks for (`customer_id`: the path's, on a
/// customer's list), checked: shared by the lists and the export.
pub fn list_filter(
    principal: &Principal,
    query: &InteractionsQuery,
    customer_id: Option<Uuid>,
) -> Result<(store::ListFilter, InteractionSort), ApiError> {
    let deleted = DeletedFilter::checked(
        query.deleted,
        principal,
        Scope::InteractionsDelete,
        "interactions",
    )?;
    let q = query::search_text("q", query.q.as_deref(), 200)?
        .filter(|q| !q.is_empty())
        .map(str::to_owned);
    let filter = store::ListFilter {
        customer_id: customer_id.or(query.customer_id),
        channels: comma_list("channel", query.channel.as_deref())?,
        kinds: comma_list("kind", query.kind.as_deref())?,
        direction: query.direction,
        staff_id: query.staff_id,
        assignee_id: query.assignee_id,
        purchase_id: query.purchase_id,
        statuses: comma_list("status", query.status.as_deref())?,
        severities: comma_list("severity", query.severity.as_deref())?,
        occurred_after: query.occurred_after,
        occurred_before: query.occurred_before,
        q,
        deleted,
        owner: principal.access.owner(),
    };
    Ok((
        filter,
        query.sort.unwrap_or(InteractionSort::OccurredAtDesc),
    ))
}
