//! The customer timeline: everything that happened with a customer, newest first, one typed
//! item per event (DOMAIN.md section 3).
//!
//! Each resource that belongs on the timeline is a `Source` of `store.rs`: a table, the column that
//! places a row in time, and the condition for a row to show. One query merges the sources
//! (each branch walks its own `(customer_id, time, id)` index, limited to the page), then
//! each item type is loaded by id with one query, all of them pipelined. A new resource adds
//! a `Source`, an [`ItemType`], a field of [`TimelineItem`] and its loader.

mod json;
mod routes;
mod store;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use uuid::Uuid;

use crate::auth::Principal;
use crate::customers::store as customer_store;
use crate::http::error::ApiError;
pub use json::{ItemType, TimelineItem};
pub use store::Key;

pub use routes::configure;

/// A page of a customer's timeline (`404` unless `principal` may see the customer): its keys,
/// then its items, in one read-only transaction whose statements are planned once per
/// connection (every row is found by key, so no plan depends on the values; planned for each
/// call, they cost more than they run). Independent statements are pipelined, sent together
/// and answered in one round trip: the customer with the keys, and the items of every type.
/// `include_contacts`: the interactions of the organization's people too (`contacts`).
#[allow(clippy::too_many_arguments)]
pub async fn page(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    customer_id: Uuid,
    include_contacts: bool,
    types: &[ItemType],
    after: Option<&Key>,
    fetch: i64,
    now: DateTime<Utc>,
) -> Result<(Vec<Key>, Vec<TimelineItem>), ApiError> {
    crate::db::planned_once(conn, crate::db::Access::ReadOnly, async |conn| {
        let keys = if include_contacts {
            // The people are read first: the keys are theirs too.
            crate::customers::visible(principal, customer_store::get(conn, customer_id).await?)?;
            let owner = principal.access.owner();
            let contacts = crate::contacts::store::people_of(conn, customer_id, owner).await?;
            store::keys(conn, customer_id, &contacts, types, after, fetch).await?
        } else {
            let conn: &AsyncPgConnection = conn;
            let (customer, keys) = tokio::try_join!(
                customer_store::get(conn, customer_id),
                store::keys(conn, customer_id, &[], types, after, fetch),
            )?;
            // Read beside the customer, the keys are shown only once it may be seen.
            crate::customers::visible(principal, customer)?;
            keys
        };
        let items = load(conn, &keys, now).await?;
        Ok((keys, items))
    })
    .await
}

/// The items of `keys`, in their order: one query per item type the page holds, pipelined.
async fn load(
    conn: &AsyncPgConnection,
    keys: &[Key],
    now: DateTime<Utc>,
) -> diesel::QueryResult<Vec<TimelineItem>> {
    // The items of one type by id, as its own resource shows them; a type the page holds no
    // item of is not read.
    macro_rules! read {
        ($loader:expr, $item:expr, $view:expr) => {{
            let ids: Vec<Uuid> = keys
                .iter()
                .filter(|k| k.item_type == $item)
                .map(|k| k.id)
                .collect();
            async move {
                let rows = if ids.is_empty() {
                    Vec::new()
                } else {
                    $loader(conn, &ids).await?
                };
                diesel::QueryResult::Ok(
                    rows.into_iter()
                        .map(|r| (r.id, $view(r)))
                        .collect::<HashMap<Uuid, _>>(),
                )
            }
        }};
    }
    let (mut interactions, mut changes, mut purchases, mut responses, mut tier_changes) = tokio::try_join!(
        read!(
            crate::interactions::store::by_ids,
            ItemType::Interaction,
            |r| crate::interactions::view(r, now)
        ),
        read!(
            customer_store::lifecycle_by_ids,
            ItemType::LifecycleChange,
            crate::customers::lifecycle_change
        ),
        read!(
            crate::purchases::store::by_ids,
            ItemType::Purchase,
            crate::purchases::view
        ),
        read!(
            crate::surveys::store::responses_by_ids,
            ItemType::SurveyResponse,
            crate::surveys::response_view
        ),
        read!(
            crate::loyalty::evaluation::changes_by_ids,
            ItemType::TierChange,
            crate::loyalty::members::change_view
        ),
    )?;
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
