//! Purchases (DOMAIN.md section 5): recorded once per receipt, refunded in full or in part.
//! Writes are composed here, once, for the routes.

pub mod json;
mod routes;
pub mod store;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::audit;
use crate::auth::{Actor, Principal};
use crate::domain::{currency_code, money, optional_text, required_text};
use crate::events::{EventType, NewEvent};
use crate::http::error::ApiError;
use crate::http::query;
use crate::http::validation::Checks;
use crate::journal::{self, Change};
use json::{Item, Purchase, PurchaseInput, PurchaseSort, PurchasesQuery, RefundInput};
use store::{PurchaseDraft, PurchaseRecord};

pub use routes::configure;

pub const MAX_ITEMS: usize = 500;

/// The API view of a record.
pub fn view(record: PurchaseRecord) -> Purchase {
    let d = record.draft;
    Purchase {
        id: record.id,
        customer_id: record.customer_id,
        external_ref: d.external_ref,
        net_amount: d.amount - record.refunded,
        amount: d.amount,
        currency: d.currency,
        cost: d.cost,
        refunded: record.refunded,
        occurred_at: d.occurred_at,
        channel: d.channel,
        items: serde_json::from_value(d.items).unwrap_or_default(),
        opportunity_id: d.opportunity_id,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
        loyalty: None,
    }
}

/// Checks a purchase's input, reporting every error at once.
pub fn validate(input: PurchaseInput, now: DateTime<Utc>) -> Result<PurchaseDraft, ApiError> {
    let mut checks = Checks::new();
    let external_ref = match input.external_ref {
        Some(raw) => checks
            .check("external_ref", optional_text(Some(&raw), 100))
            .flatten(),
        None => None,
    };
    let amount = checks.check("amount", money(input.amount));
    let currency = checks.check("currency", currency_code(&input.currency));
    let cost = input.cost.and_then(|c| checks.check("cost", money(c)));
    let occurred_at = input.occurred_at.unwrap_or(now);
    if occurred_at > now + chrono::Duration::minutes(1) {
        checks.fail("occurred_at", "must not be in the future");
    }
    if input.items.len() > MAX_ITEMS {
        checks.fail("items", format!("must hold at most {MAX_ITEMS} lines"));
    }
    let mut items = Vec::with_capacity(input.items.len());
    for (i, item) in input.items.into_iter().enumerate() {
        let name = checks.check(&format!("items[{i}].name"), required_text(&item.name, 200));
        let sku = match item.sku {
            Some(raw) => checks
                .check(&format!("items[{i}].sku"), optional_text(Some(&raw), 100))
                .flatten(),
            None => None,
        };
        if !(1..=1_000_000).contains(&item.quantity) {
            checks.fail(&format!("items[{i}].quantity"), "must be from 1 to 1000000");
        }
        let unit_price = checks.check(&format!("items[{i}].unit_price"), money(item.unit_price));
        if let (Some(name), Some(unit_price)) = (name, unit_price) {
            items.push(Item {
                sku,
                name,
                quantity: item.quantity,
                unit_price,
            });
        }
    }
    let draft = match (amount, currency) {
        (Some(amount), Some(currency)) => Some(PurchaseDraft {
            external_ref,
            currency,
            amount,
            cost,
            occurred_at,
            channel: input.channel,
            items: serde_json::to_value(&items).map_err(ApiError::internal)?,
            opportunity_id: input.opportunity_id,
        }),
        _ => None,
    };
    checks.done(draft)
}

/// Records a purchase of a live customer, and earns its loyalty points; a prospect's first
/// purchase moves it to `acquaintance` (see `customers::on_purchase`). With an
/// `external_ref` already recorded, the recorded purchase is returned (`false`: not
/// created) when it is the same purchase, and `409` when it is another.
///
/// Statements that need nothing from each other's answers are pipelined: the customer with
/// the programme, then the customer's lock with the insert (PostgreSQL runs them in the
/// order sent). The insert's answer is read only once the lock found a live customer: for a
/// missing one the insert fails on its foreign key, and the answer is the customer's `404`.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    customer_id: Uuid,
    input: PurchaseInput,
) -> Result<(Purchase, bool), ApiError> {
    let draft = validate(input, Utc::now())?;
    crate::db::planned_once(conn, crate::db::Access::ReadWrite, async |conn| {
        let shared: &AsyncPgConnection = conn;
        let (peek, program) = tokio::try_join!(
            crate::customers::store::get(shared, customer_id),
            crate::loyalty::store::program(shared),
        )?;
        let (customer, inserted) = tokio::join!(
            crate::customers::lock_buyer(shared, customer_id, peek.as_ref()),
            store::insert(shared, Uuid::now_v7(), customer_id, &draft),
        );
        let customer = customer?;
        if let Some(record) = inserted? {
            let first = crate::customers::may_move_on_purchase(&customer)
                && !store::bought_before(conn, customer_id, record.id).await?;
            let moved =
                crate::customers::on_purchase(conn, actor, &customer, first, record.id).await?;
            let (loyalty, earned) =
                crate::loyalty::members::on_purchase(conn, actor, &program, &facts(&record))
                    .await?;
            // The callback after the sale (回访), for customers at `accountable` or above:
            // no statement at all below that level.
            let callback = crate::interactions::callback_after_purchase(
                conn,
                customer_id,
                customer.draft.relationship_level,
                record.id,
                record.draft.occurred_at,
            )
            .await?;
            // Announced before the points it earns; the callback and the customer's move to
            // `acquaintance` after them.
            let shown = view(record);
            let change = Change::created(EventType::PurchaseCreated, shown.id, &shown);
            let changes = std::iter::once(change.and_all(earned))
                .chain(callback)
                .chain(moved);
            journal::record_all(conn, actor, changes.collect()).await?;
            return Ok((Purchase { loyalty, ..shown }, true));
        }
        let external_ref = draft.external_ref.as_deref().unwrap_or_default();
        let existing = store::by_external_ref(conn, external_ref)
            .await?
            .ok_or_else(|| ApiError::internal("conflicting purchase vanished"))?;
        let same = existing.customer_id == customer_id
            && existing.draft.amount == draft.amount
            && existing.draft.currency == draft.currency;
        if same {
            let loyalty =
                crate::loyalty::members::summary(conn, &program, &facts(&existing)).await?;
            Ok((
                Purchase {
                    loyalty,
                    ..view(existing)
                },
                false,
            ))
        } else {
            Err(ApiError::duplicate("external_ref"))
        }
    })
    .await
}

/// Refunds (part of) a purchase: never more than what is left of it, under any concurrency
/// (the purchase is locked while its refunded total grows). The refunded share of its
/// loyalty points is taken back.
pub async fn refund(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    input: RefundInput,
) -> Result<Purchase, ApiError> {
    let mut checks = Checks::new();
    let reason = match input.reason {
        Some(raw) => checks
            .check("reason", optional_text(Some(&raw), 500))
            .flatten(),
        None => None,
    };
    if input.amount.is_some_and(|a| a < 1) {
        checks.fail("amount", "must be at least 1 minor unit");
    }
    checks.finish()?;
    crate::db::planned_once(conn, crate::db::Access::ReadWrite, async |conn| {
        let before = store::lock(conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("purchase"))?;
        let left = before.draft.amount - before.refunded;
        let amount = input.amount.unwrap_or(left);
        if left == 0 {
            return Err(ApiError::conflict("this purchase is refunded in full"));
        }
        if amount > left {
            return Err(ApiError::conflict(format!(
                "only {left} minor units of this purchase are left to refund"
            ))
            .with_errors(vec![crate::http::error::FieldError::new(
                "amount",
                format!("must be at most {left}"),
            )]));
        }
        let after = store::refund(conn, id, amount, reason.as_deref(), actor).await?;
        let (loyalty, taken) =
            crate::loyalty::members::on_refund(conn, actor, &facts(&after), amount).await?;
        // Announced before the points it takes back.
        let (was, shown) = (view(before.clone()), view(after.clone()));
        let event = NewEvent::new(EventType::PurchaseRefunded, id, &shown)
            .previous_from_diff(&audit::diff(&was, &shown));
        let changes = serde_json::json!({"refunded": {"from": before.refunded, "to": after.refunded},
                                         "reason": reason});
        journal::record(conn, actor, Change::announced(event, changes).and_all(taken)).await?;
        Ok(Purchase {
            loyalty,
            ..view(after)
        })
    })
    .await
}

/// The filter and order a purchase list query asks for (`customer_id`: the path's, on a
/// customer's list), checked: shared by the lists and the export.
pub fn list_filter(
    principal: &Principal,
    query: &PurchasesQuery,
    customer_id: Option<Uuid>,
) -> Result<(store::ListFilter, PurchaseSort), ApiError> {
    let currency = query::currency(query.currency.as_deref())?;
    let filter = store::ListFilter {
        customer_id: customer_id.or(query.customer_id),
        currency,
        channel: query.channel,
        occurred_after: query.occurred_after,
        occurred_before: query.occurred_before,
        owner: principal.access.owner(),
    };
    Ok((filter, query.sort.unwrap_or(PurchaseSort::OccurredAtDesc)))
}

/// A purchase as the loyalty programme reads it.
fn facts(record: &PurchaseRecord) -> crate::loyalty::members::PurchaseFacts<'_> {
    crate::loyalty::members::PurchaseFacts {
        id: record.id,
        customer_id: record.customer_id,
        currency: &record.draft.currency,
        amount: record.draft.amount,
        refunded: record.refunded,
        occurred_at: record.draft.occurred_at,
    }
}
