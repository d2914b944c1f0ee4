//! Privacy: what a person may ask of the data held on them. The data-subject export gathers
//! it from every area; erasure forgets it in every area. Both read or write across the house,
//! so they stand above the areas they reach, and customers stays below all of them.

pub mod json;
mod routes;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::audit;
use crate::auth::{Actor, CustomerAccess};
use crate::customers::{self, store::CustomerRecord};
use crate::events::{self, EventType, NewEvent};
use crate::http::error::ApiError;
use crate::http::etag::IfMatch;
use crate::journal::{self, Change};
use json::CustomerExport;

pub use routes::configure;

/// Everything held on a customer the caller reaches, unmasked, as one document.
pub async fn export(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    id: Uuid,
) -> Result<CustomerExport, ApiError> {
    let record = customers::store::get(conn, id)
        .await?
        .filter(|r| access.allows(r.draft.account_manager_id))
        .ok_or_else(|| ApiError::not_found("customer"))?;
    Ok(CustomerExport {
        exported_at: Utc::now(),
        customer: customers::view(record, true),
        lifecycle: customers::lifecycle(conn, id).await?,
        interactions: crate::interactions::store::of_customer(conn, id)
            .await?
            .into_iter()
            .map(|r| crate::interactions::view(r, Utc::now()))
            .collect(),
        purchases: crate::purchases::store::of_customer(conn, id)
            .await?
            .into_iter()
            .map(crate::purchases::view)
            .collect(),
        points: crate::loyalty::ledger::of_customer(conn, id)
            .await?
            .into_iter()
            .map(crate::loyalty::members::entry_view)
            .collect(),
        tier_history: crate::loyalty::evaluation::history(conn, id)
            .await?
            .into_iter()
            .map(crate::loyalty::members::change_view)
            .collect(),
        survey_responses: crate::surveys::store::responses_of_customer(conn, id)
            .await?
            .into_iter()
            .map(crate::surveys::response_view)
            .collect(),
        opportunities: crate::pipeline::store::of_customer(conn, id)
            .await?
            .into_iter()
            .map(crate::pipeline::view)
            .collect(),
        opportunity_advances: crate::pipeline::store::advances_of_customer(conn, id)
            .await?
            .into_iter()
            .map(crate::pipeline::advance_view)
            .collect(),
        organizations: crate::contacts::store::of_person(conn, id)
            .await?
            .into_iter()
            .map(crate::contacts::view)
            .collect(),
        audit: audit::trail(conn, "customer", &id.to_string()).await?,
    })
}

/// Erases a customer's personal data irreversibly: the record becomes an anonymous shell
/// (aggregates stay true), free text about them is forgotten, the audit trail of their
/// record keeps who changed it and when but no longer what, and kept idempotent responses
/// that held their data are dropped. Erasing twice changes nothing.
pub async fn erase(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<CustomerRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = customers::lock_current(conn, id, if_match).await?;
        if before.erased_at.is_some() {
            return Ok(before);
        }
        let after = customers::store::erase(conn, id).await?;
        customers::store::erase_lifecycle_reasons(conn, id).await?;
        crate::loyalty::ledger::erase_reasons(conn, id).await?;
        audit::forget_changes(conn, "customer", &[id.to_string()]).await?;
        // Past events keep their type and time, not the person: the customer's own and
        // their loyalty account's (keyed by the customer's id), then those below.
        events::forget(conn, EventType::CustomerCreated.object(), &[id.to_string()]).await?;
        events::forget(
            conn,
            EventType::LoyaltyPointsChanged.object(),
            &[id.to_string()],
        )
        .await?;
        // What was said with them is personal data too.
        let interactions: Vec<String> = crate::interactions::store::erase_texts(conn, id)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        audit::forget_changes(conn, "interaction", &interactions).await?;
        events::forget(conn, EventType::InteractionCreated.object(), &interactions).await?;
        let responses: Vec<String> = crate::surveys::store::erase_text(conn, id)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        audit::forget_changes(conn, "survey_response", &responses).await?;
        events::forget(conn, EventType::SurveyResponseCreated.object(), &responses).await?;
        let opportunities: Vec<String> = crate::pipeline::store::erase_texts(conn, id)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        audit::forget_changes(conn, "opportunity", &opportunities).await?;
        events::forget(conn, EventType::OpportunityCreated.object(), &opportunities).await?;
        // What was noted of them at their organizations.
        let links: Vec<String> = crate::contacts::store::erase_texts(conn, id)
            .await?
            .iter()
            .map(Uuid::to_string)
            .collect();
        audit::forget_changes(conn, EventType::ContactLinked.object(), &links).await?;
        events::forget(conn, EventType::ContactLinked.object(), &links).await?;
        crate::http::idempotency::forget_responses_mentioning(conn, &id.to_string()).await?;
        // Erased, the person is deleted too: their link, kept as an anonymous role, no longer
        // gives an organization a decision maker.
        customers::rederive_for_person(conn, actor, id).await?;
        let event = NewEvent::new(
            EventType::CustomerErased,
            id,
            &serde_json::json!({ "id": id }),
        );
        journal::record(conn, actor, Change::announced(event, serde_json::json!({}))).await?;
        Ok(after)
    })
    .await
}
