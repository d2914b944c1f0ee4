//! The sales pipeline and forecast (DOMAIN.md section 7): ordered stages with win
//! probabilities (admins manage them), opportunities moving through them with every move on
//! record, and the forecast. Writes are composed here, once, for the routes.

pub mod forecast;
pub mod json;
mod routes;
pub mod rules;
pub mod store;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::audit;
use crate::auth::{Actor, CustomerAccess};
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::etag::IfMatch;
use crate::http::validation::Checks;
use crate::journal::{self, Change};
use json::{
    Advance, AdvanceInput, Opportunity, OpportunityInput, OpportunityPatch, OpportunityStatus,
    PipelineSettings, PipelineSettingsInput, Stage, StageInput, StagePatch, Target, TargetInput,
};
use store::{AdvanceRecord, OpportunityRecord, SettingsRecord, StageRecord, TargetRecord};

pub use routes::configure;

// ---- stages -----------------------------------------------------------------------------

/// The API view of a stage.
pub fn stage_view(record: StageRecord) -> Stage {
    Stage {
        key: record.key,
        name: record.name,
        position: record.position.unwrap_or_default(),
        probability: record.probability,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
    }
}

/// Gives the stages the positions of `order`, except `skip` (written by its own update).
async fn place(conn: &mut AsyncPgConnection, order: &[String], skip: &str) -> Result<(), ApiError> {
    let (keys, positions): (Vec<String>, Vec<i32>) = order
        .iter()
        .zip(1..)
        .filter(|(key, _)| key.as_str() != skip)
        .map(|(key, p)| (key.clone(), p))
        .unzip();
    store::reorder(conn, &keys, &positions).await?;
    Ok(())
}

/// Adds a stage at its position (last by default); the stages from there on move down one.
pub async fn create_stage(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: StageInput,
) -> Result<StageRecord, ApiError> {
    let mut checks = Checks::new();
    let key = checks.check("key", rules::stage_key(&input.key));
    let name = checks.check("name", crate::domain::required_text(&input.name, 100));
    checks.check("probability", rules::probability(input.probability));
    if input.position.is_some_and(|p| p < 1) {
        checks.fail("position", "must be at least 1");
    }
    let (key, name) = checks.done(key.zip(name))?;
    conn.transaction(async |conn| {
        store::lock_stages(conn).await?;
        let stages = store::stages(conn).await?;
        if stages.iter().any(|s| s.key == key) {
            return Err(ApiError::duplicate("key"));
        }
        let last = stages.len() + 1;
        let position = input.position.map_or(last, |p| p as usize);
        if position > last {
            return Err(ApiError::invalid_field(
                "position",
                format!("must be from 1 to {last}"),
            ));
        }
        let mut order: Vec<String> = stages.into_iter().map(|s| s.key).collect();
        order.insert(position - 1, key.clone());
        place(conn, &order, &key).await?;
        let record =
            store::insert_stage(conn, &key, &name, input.probability, position as i32).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "pipeline_stage.created",
                "pipeline_stage",
                &key,
                audit::created(&stage_view(record.clone())),
            ),
        )
        .await?;
        Ok(record)
    })
    .await
}

/// The live stage `key` and the others, first to last, with the order locked; `If-Match`
/// checked against it.
async fn lock_stage(
    conn: &mut AsyncPgConnection,
    key: &str,
    if_match: &IfMatch,
) -> Result<(StageRecord, Vec<String>), ApiError> {
    store::lock_stages(conn).await?;
    let stages = store::stages(conn).await?;
    let stage = stages
        .iter()
        .find(|s| s.key == key)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pipeline stage"))?;
    if_match.check(stage.version)?;
    Ok((stage, stages.into_iter().map(|s| s.key).collect()))
}

/// Renames a stage, changes its probability or moves it (the stages in between shift).
pub async fn update_stage(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    key: &str,
    if_match: &IfMatch,
    patch: StagePatch,
) -> Result<StageRecord, ApiError> {
    conn.transaction(async |conn| {
        let (before, mut order) = lock_stage(conn, key, if_match).await?;
        let (mut name, mut probability) = (before.name.clone(), before.probability);
        let mut position = before.position.unwrap_or(1);
        let mut checks = Checks::new();
        crate::http::patch::required(&mut checks, "name", patch.name, &mut name, |n| {
            crate::domain::required_text(&n, 100)
        });
        crate::http::patch::required(
            &mut checks,
            "probability",
            patch.probability,
            &mut probability,
            rules::probability,
        );
        let count = order.len() as i32;
        crate::http::patch::required(
            &mut checks,
            "position",
            patch.position,
            &mut position,
            |p| {
                if (1..=count).contains(&p) {
                    Ok(p)
                } else {
                    Err(format!("must be from 1 to {count}"))
                }
            },
        );
        checks.finish()?;
        if Some(position) == before.position
            && name == before.name
            && probability == before.probability
        {
            return Ok(before);
        }
        order.retain(|k| k != key);
        order.insert(position as usize - 1, key.to_owned());
        place(conn, &order, key).await?;
        store::update_stage(conn, key, &name, probability, position).await?;
        let after = store::stage(conn, key)
            .await?
            .ok_or_else(|| ApiError::internal("updated stage vanished"))?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "pipeline_stage.updated",
                "pipeline_stage",
                key,
                audit::diff(&stage_view(before), &stage_view(after.clone())),
            ),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Deletes a stage no open opportunity is in; the stages after it move up one. Its row stays
/// (closed opportunities and histories still name it); its key can be used again.
pub async fn delete_stage(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    key: &str,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        let (_, mut order) = lock_stage(conn, key, if_match).await?;
        if store::lock_settings(conn)
            .await?
            .credit_required_after
            .as_deref()
            == Some(key)
        {
            return Err(ApiError::conflict(
                "this stage is the pipeline's credit rule stage (`credit_required_after` of \
                 /v1/pipeline/settings); name another stage there first",
            ));
        }
        // Waits for the opportunities moving into it right now.
        store::lock_stage_row(conn, key).await?;
        let open = store::open_in_stage(conn, key).await?;
        if open > 0 {
            return Err(ApiError::conflict(format!(
                "{open} open opportunit{} in this stage; move {} to another stage first",
                if open == 1 { "y is" } else { "ies are" },
                if open == 1 { "it" } else { "them" },
            )));
        }
        store::delete_stage(conn, key).await?;
        order.retain(|k| k != key);
        place(conn, &order, key).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "pipeline_stage.deleted",
                "pipeline_stage",
                key,
                serde_json::json!({}),
            ),
        )
        .await?;
        Ok(())
    })
    .await
}

// ---- opportunities ----------------------------------------------------------------------

/// The API view of an opportunity.
pub fn view(record: OpportunityRecord) -> Opportunity {
    let d = record.draft;
    Opportunity {
        id: record.id,
        customer_id: record.customer_id,
        title: d.title,
        amount: d.amount,
        currency: d.currency,
        stage: d.stage,
        owner_id: d.owner_id,
        expected_close_date: d.expected_close_date,
        status: d.status,
        close_reason: d.close_reason,
        closed_at: d.closed_at,
        contact_ids: d.contact_ids,
        has_decision_maker: record.has_decision_maker,
        last_advance_at: record.last_advance_at,
        last_progress_at: record.last_progress_at,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
    }
}

/// Checks that an opportunity may move into the stage `key`, and keeps the stage from being
/// deleted until the transaction ends.
async fn check_stage(conn: &mut AsyncPgConnection, key: &str) -> Result<(), ApiError> {
    if store::share_live_stage(conn, key).await?.is_some() {
        return Ok(());
    }
    let keys: Vec<String> = store::stages(conn)
        .await?
        .into_iter()
        .map(|s| s.key)
        .collect();
    Err(ApiError::invalid_field(
        "stage",
        format!("must be the key of a pipeline stage: {}", keys.join(", ")),
    ))
}

/// Checks the credit rule (`credit_required_after` of the settings) for an opportunity of
/// `customer_id` that is now as `draft` says: open in a stage past the rule's, or won, needs
/// the customer's credit grade when its qualification says no money.
async fn check_credit(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    draft: &store::OpportunityDraft,
) -> Result<(), ApiError> {
    if draft.status == OpportunityStatus::Lost {
        return Ok(());
    }
    let won = draft.status == OpportunityStatus::Won;
    let Some(gate) = store::credit_gate(conn, customer_id, &draft.stage, won).await? else {
        return Ok(());
    };
    let (field, what) = if won {
        ("status", "be won".to_owned())
    } else {
        ("stage", format!("move past the stage `{gate}`"))
    };
    Err(ApiError::invalid_field(
        field,
        format!(
            "breaks the credit rule (`credit_required_after: {gate}` of \
             /v1/pipeline/settings): the customer's qualification says no money (an `m` \
             prospect), so the opportunity cannot {what} until the customer has a credit \
             grade (`credit` of PATCH /v1/customers/{customer_id})"
        ),
    ))
}

/// What an opportunity naming no live customer (or one the caller does not reach) is
/// answered.
pub(crate) fn no_live_customer() -> ApiError {
    ApiError::invalid_field("customer_id", "must be the id of a live customer")
}

/// Creates an opportunity for a live customer, in the first stage unless the input names
/// one, owned by the calling user unless it names an owner.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    input: OpportunityInput,
) -> Result<OpportunityRecord, ApiError> {
    let customer_id = input.customer_id;
    let (mut draft, stage_given) = rules::validate_new(input, actor, Utc::now())?;
    conn.transaction(async |conn| {
        crate::customers::lock_live(conn, customer_id)
            .await
            .map_err(|err| match err.code() {
                ErrorCode::NotFound => no_live_customer(),
                _ => err,
            })?;
        if stage_given {
            check_stage(conn, &draft.stage).await?;
        } else {
            draft.stage = store::share_first_stage(conn)
                .await?
                .ok_or_else(|| ApiError::conflict("the pipeline has no stages; add one first"))?
                .key;
        }
        crate::users::check_active(conn, "owner_id", draft.owner_id).await?;
        crate::contacts::check_people(conn, access, customer_id, "contact_ids", &draft.contact_ids)
            .await?;
        check_credit(conn, customer_id, &draft).await?;
        let record = store::insert(conn, customer_id, &draft).await?;
        store::record_change(conn, record.id, None, &record.draft, actor).await?;
        let shown = view(record.clone());
        let change = Change::created(EventType::OpportunityCreated, record.id, &shown);
        journal::record(conn, actor, change).await?;
        Ok(record)
    })
    .await
}

/// Locks a live opportunity for the transaction and checks `If-Match` against it.
async fn lock_live(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<OpportunityRecord, ApiError> {
    let record = store::lock(conn, id)
        .await?
        .filter(|r| r.deleted_at.is_none())
        .ok_or_else(|| ApiError::not_found("opportunity"))?;
    if_match.check(record.version)?;
    Ok(record)
}

/// Applies a merge patch; a stage move or status change is recorded in the history.
/// Nothing is written when nothing changes.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    id: Uuid,
    if_match: &IfMatch,
    patch: OpportunityPatch,
) -> Result<OpportunityRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock_live(conn, id, if_match).await?;
        let draft = rules::apply(patch, &before.draft, Utc::now())?;
        if draft == before.draft {
            return Ok(before);
        }
        let reopened = draft.status == OpportunityStatus::Open
            && before.draft.status != OpportunityStatus::Open;
        if draft.stage != before.draft.stage || reopened {
            check_stage(conn, &draft.stage).await?;
        }
        if draft.owner_id != before.draft.owner_id {
            crate::users::check_active(conn, "owner_id", draft.owner_id).await?;
        }
        // Only the people added are checked: one named while a contact stays named.
        let added: Vec<Uuid> = draft
            .contact_ids
            .iter()
            .filter(|id| !before.draft.contact_ids.contains(id))
            .copied()
            .collect();
        crate::contacts::check_people(conn, access, before.customer_id, "contact_ids", &added)
            .await?;
        let progressed = draft.stage != before.draft.stage || draft.status != before.draft.status;
        if progressed {
            check_credit(conn, before.customer_id, &draft).await?;
        }
        let after = store::update(conn, id, &draft, progressed).await?;
        if progressed {
            store::record_change(conn, id, Some(&before.draft), &after.draft, actor).await?;
        }
        let (was, shown) = (view(before), view(after.clone()));
        let change = Change::updated(EventType::OpportunityUpdated, id, &was, &shown);
        journal::record(conn, actor, change).await?;
        Ok(after)
    })
    .await
}

/// Deletes an opportunity (soft: it leaves every list and the forecast; its row and history
/// stay for the audit trail).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        lock_live(conn, id, if_match).await?;
        let record = store::delete(conn, id).await?;
        let event = NewEvent::new(EventType::OpportunityDeleted, id, &view(record));
        journal::record(conn, actor, Change::announced(event, serde_json::json!({}))).await?;
        Ok(())
    })
    .await
}

// ---- settings ---------------------------------------------------------------------------

/// The API view of the settings.
pub fn settings_view(record: SettingsRecord) -> PipelineSettings {
    PipelineSettings {
        credit_required_after: record.credit_required_after,
        updated_at: record.updated_at,
        version: record.version,
    }
}

/// Replaces the settings (versioned, audited). The credit rule's stage must be live.
pub async fn set_settings(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    if_match: &IfMatch,
    input: PipelineSettingsInput,
) -> Result<SettingsRecord, ApiError> {
    let gate = match input.credit_required_after {
        None => None,
        Some(key) => Some(
            rules::stage_key(&key)
                .map_err(|e| ApiError::invalid_field("credit_required_after", e))?,
        ),
    };
    conn.transaction(async |conn| {
        let before = store::lock_settings(conn).await?;
        if_match.check(before.version)?;
        if let Some(key) = &gate
            && store::share_live_stage(conn, key).await?.is_none()
        {
            return Err(ApiError::invalid_field(
                "credit_required_after",
                "must be the key of a live pipeline stage, or null",
            ));
        }
        if before.credit_required_after == gate {
            return Ok(before);
        }
        let after = store::update_settings(conn, gate.as_deref()).await?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "pipeline.settings_changed",
                "pipeline_settings",
                "settings",
                audit::diff(&settings_view(before), &settings_view(after.clone())),
            ),
        )
        .await?;
        Ok(after)
    })
    .await
}

// ---- targets ----------------------------------------------------------------------------

/// The API view of a target.
pub fn target_view(record: TargetRecord) -> Target {
    Target {
        id: record.id,
        owner_id: record.owner_id,
        period: record.period,
        from: record.period_from,
        to: record.period_to,
        currency: record.currency,
        amount: record.amount,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
    }
}

/// Sets the target of an owner (or the team), period and currency: created, or its amount
/// replaced (`If-Match` checked against it; against a target not set yet, a version is a
/// `412`). `true` when created.
pub async fn set_target(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    if_match: &IfMatch,
    input: TargetInput,
) -> Result<(TargetRecord, bool), ApiError> {
    let mut checks = Checks::new();
    let period = checks.check(
        "period",
        forecast::parse_period(&input.period).ok_or_else(|| forecast::PERIOD_FORMS.to_owned()),
    );
    let currency = checks.check("currency", crate::domain::currency_code(&input.currency));
    checks.check("amount", crate::domain::money(input.amount));
    let (period, currency) = checks.done(period.zip(currency))?;
    let label = period.label.clone().unwrap_or_default();
    conn.transaction(async |conn| {
        if let Some(owner) = input.owner_id {
            crate::users::check_active(conn, "owner_id", owner).await?;
        }
        let existing =
            store::lock_target(conn, input.owner_id, period.from, period.to, &currency).await?;
        match existing {
            Some(before) => {
                if_match.check(before.version)?;
                if before.amount == input.amount {
                    return Ok((before, false));
                }
                let after = store::update_target(conn, before.id, input.amount).await?;
                let id = after.id.to_string();
                journal::record(
                    conn,
                    actor,
                    Change::audited(
                        "pipeline_target.updated",
                        "pipeline_target",
                        &id,
                        audit::diff(&target_view(before), &target_view(after.clone())),
                    ),
                )
                .await?;
                Ok((after, false))
            }
            None => {
                if matches!(if_match, IfMatch::Versions(_)) {
                    if_match.check(0)?;
                }
                let draft = store::TargetDraft {
                    owner_id: input.owner_id,
                    period: &label,
                    from: period.from,
                    to: period.to,
                    currency: &currency,
                    amount: input.amount,
                };
                let record = store::insert_target(conn, &draft).await?;
                let id = record.id.to_string();
                journal::record(
                    conn,
                    actor,
                    Change::audited(
                        "pipeline_target.created",
                        "pipeline_target",
                        &id,
                        audit::created(&target_view(record.clone())),
                    ),
                )
                .await?;
                Ok((record, true))
            }
        }
    })
    .await
}

/// Removes the target of an owner (`None`: the team), period and currency, as
/// [`set_target`] names it (`If-Match` checked against it): `404` when none is set.
/// Audited with what it was (`pipeline_target.deleted`).
pub async fn delete_target(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    if_match: &IfMatch,
    owner_id: Option<Uuid>,
    period: &forecast::Period,
    currency: &str,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        let before = store::lock_target(conn, owner_id, period.from, period.to, currency)
            .await?
            .ok_or_else(|| ApiError::not_found("target"))?;
        if_match.check(before.version)?;
        store::delete_target(conn, before.id).await?;
        let id = before.id.to_string();
        journal::record(
            conn,
            actor,
            Change::audited(
                "pipeline_target.deleted",
                "pipeline_target",
                &id,
                audit::deleted(&target_view(before)),
            ),
        )
        .await?;
        Ok(())
    })
    .await
}

// ---- advances ---------------------------------------------------------------------------

/// The API view of an advance.
pub fn advance_view(record: AdvanceRecord) -> Advance {
    Advance {
        id: record.id,
        opportunity_id: record.opportunity_id,
        kind: record.kind,
        occurred_at: record.occurred_at,
        note: record.note,
        actor_type: record.actor_type,
        actor_id: record.actor_id,
        created_at: record.created_at,
    }
}

/// Records an advance of an open opportunity; it becomes the opportunity's
/// `last_advance_at` (and `last_progress_at`) when later than those. Audited, and announced
/// as `opportunity.updated`.
pub async fn advance(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    input: AdvanceInput,
) -> Result<(AdvanceRecord, OpportunityRecord), ApiError> {
    let now = Utc::now();
    let (kind, occurred_at, note) = rules::validate_advance(input, now)?;
    conn.transaction(async |conn| {
        let before = lock_live(conn, id, if_match).await?;
        if before.draft.status != OpportunityStatus::Open {
            return Err(ApiError::conflict(format!(
                "the opportunity is {}: advances are recorded on open opportunities; reopen \
                 it first",
                before.draft.status
            )));
        }
        let (advance, after) =
            store::insert_advance(conn, id, &kind, occurred_at, note.as_deref(), actor).await?;
        let (was, shown) = (view(before), view(after.clone()));
        let event = NewEvent::new(EventType::OpportunityUpdated, id, &shown)
            .previous_from_diff(&audit::diff(&was, &shown));
        let changes = serde_json::json!({
            "advance": advance_view(advance.clone()),
            "last_advance_at": {"from": was.last_advance_at, "to": shown.last_advance_at},
        });
        journal::record(conn, actor, Change::announced(event, changes)).await?;
        Ok((advance, after))
    })
    .await
}
