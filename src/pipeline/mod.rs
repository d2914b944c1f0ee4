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
use crate::auth::Actor;
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::etag::IfMatch;
use crate::http::validation::Checks;
use crate::journal::{self, Change};
use json::{
    Opportunity, OpportunityInput, OpportunityPatch, OpportunityStatus, Stage, StageInput,
    StagePatch,
};
use store::{OpportunityRecord, StageRecord};

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

/// Creates an opportunity for a live customer, in the first stage unless the input names
/// one, owned by the calling user unless it names an owner.
/// What an opportunity naming no live customer (or one the caller does not reach) is
/// answered.
pub(crate) fn no_live_customer() -> ApiError {
    ApiError::invalid_field("customer_id", "must be the id of a live customer")
}

pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
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
        crate::contacts::check_people(conn, customer_id, "contact_ids", &draft.contact_ids).await?;
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
        crate::contacts::check_people(conn, before.customer_id, "contact_ids", &added).await?;
        let after = store::update(conn, id, &draft).await?;
        if draft.stage != before.draft.stage || draft.status != before.draft.status {
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
