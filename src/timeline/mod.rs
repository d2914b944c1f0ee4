//! The customer timeline: everything that happened with a customer, newest first, one typed
//! item per event (DOMAIN.md section 3).
//!
//! Each resource that belongs on the timeline is a `Source` of `store.rs`: a table, the column that
//! places a row in time, and the condition for a row to show. One query merges the sources
//! (each branch walks its own `(customer_id, time, id)` index, limited to the page), then
//! each item type is loaded by id with one query. A new resource adds
//! a `Source`, an [`ItemType`], a field of [`TimelineItem`] and its loader.

mod json;
mod routes;
mod store;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::customers::json::LifecycleChange;
use crate::interactions::json::Interaction;
use crate::loyalty::json::TierChange;
use crate::purchases::json::Purchase;
use crate::surveys::json::SurveyResponse;
pub use json::{ItemType, TimelineItem};
pub use store::Key;

pub use routes::configure;

/// A page of a customer's timeline: its keys, then its items, in one read-only transaction
/// whose statements are planned once per connection (every row is found by key, so no plan
/// depends on the values; planned for each call, they cost more than they run).
pub async fn page(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    contacts: &[Uuid],
    types: &[ItemType],
    after: Option<&Key>,
    fetch: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<(Vec<Key>, Vec<TimelineItem>)> {
    crate::db::planned_once(conn, crate::db::Access::ReadOnly, async |conn| {
        let keys = store::keys(conn, customer_id, contacts, types, after, fetch).await?;
        let items = load(conn, &keys, now).await?;
        Ok((keys, items))
    })
    .await
}

/// The items of `keys`, in their order: one query per item type.
pub async fn load(
    conn: &mut AsyncPgConnection,
    keys: &[Key],
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<TimelineItem>> {
    let ids = |t: ItemType| -> Vec<Uuid> {
        keys.iter()
            .filter(|k| k.item_type == t)
            .map(|k| k.id)
            .collect()
    };
    // A type the page holds no item of is not read.
    macro_rules! read {
        ($loader:expr, $item:expr, $view:expr) => {{
            let ids = ids($item);
            if ids.is_empty() {
                std::collections::HashMap::new()
            } else {
                $loader(conn, &ids)
                    .await?
                    .into_iter()
                    .map(|r| (r.id, $view(r)))
                    .collect()
            }
        }};
    }
    let mut interactions: std::collections::HashMap<Uuid, Interaction> = read!(
        crate::interactions::store::by_ids,
        ItemType::Interaction,
        |r| crate::interactions::view(r, now)
    );
    let mut changes: std::collections::HashMap<Uuid, LifecycleChange> = read!(
        crate::customers::store::lifecycle_by_ids,
        ItemType::LifecycleChange,
        crate::customers::lifecycle_change
    );
    let mut purchases: std::collections::HashMap<Uuid, Purchase> = read!(
        crate::purchases::store::by_ids,
        ItemType::Purchase,
        crate::purchases::view
    );
    let mut responses: std::collections::HashMap<Uuid, SurveyResponse> = read!(
        crate::surveys::store::responses_by_ids,
        ItemType::SurveyResponse,
        crate::surveys::response_view
    );
    let mut tier_changes: std::collections::HashMap<Uuid, TierChange> = read!(
        crate::loyalty::evaluation::changes_by_ids,
        ItemType::TierChange,
        crate::loyalty::members::change_view
    );
    Ok(keys
        .iter()
        .map(|k| TimelineItem {
            item_type: k.item_type,
            at: k.at,
            id: k.id,
            interaction: interactions.remove(&k.id),
            lifecycle_change: changes.remove(&k.id),
            purchase: purchases.remove(&k.id),
            survey_response: responses.remove(&k.id),
            tier_change: tier_changes.remove(&k.id),
        })
        .collect())
}
