//! The customer timeline: everything that happened with a customer, newest first, one typed
//! item per event (DOMAIN.md section 3).
//!
//! Each resource that belongs on the timeline is a [`Source`]: a table, the column that
//! places a row in time, and the condition for a row to show. One query merges the sources
//! (each branch walks its own `(customer_id, time, id)` index, limited to the page), then
//! each item type is loaded by id with one query. A new resource adds
//! a `Source`, an [`ItemType`], a field of [`TimelineItem`] and its loader.

mod routes;

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::customers::json::LifecycleChange;
use crate::db::Prepare;
use crate::interactions::json::Interaction;
use crate::loyalty::json::TierChange;
use crate::purchases::json::Purchase;
use crate::surveys::json::SurveyResponse;

pub use routes::configure;

crate::text_enum! {
    /// What a timeline item is.
    pub enum ItemType {
        Interaction = "interaction",
        LifecycleChange = "lifecycle_change",
        Purchase = "purchase",
        SurveyResponse = "survey_response",
        TierChange = "tier_change",
    }
}

/// One resource on the timeline.
struct Source {
    item_type: ItemType,
    table: &'static str,
    /// When a row happened (indexed with the customer and the id).
    at: &'static str,
    /// Which rows show.
    visible: &'static str,
}

const SOURCES: [Source; 5] = [
    Source {
        item_type: ItemType::Interaction,
        table: "interactions",
        at: "timeline_at",
        visible: "deleted_at IS NULL",
    },
    Source {
        item_type: ItemType::LifecycleChange,
        table: "customer_lifecycle_events",
        at: "changed_at",
        visible: "true",
    },
    Source {
        item_type: ItemType::Purchase,
        table: "purchases",
        at: "occurred_at",
        visible: "true",
    },
    Source {
        item_type: ItemType::SurveyResponse,
        table: "survey_responses",
        at: "submitted_at",
        visible: "true",
    },
    Source {
        item_type: ItemType::TierChange,
        table: "loyalty_tier_changes",
        at: "changed_at",
        visible: "true",
    },
];

/// An item of the timeline: its type, time, and the object under the field its type names.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineItem {
    /// What the item is; the object is in the field of that name.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// When it happened (for a pending follow-up: when it is due).
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub at: DateTime<Utc>,
    /// Id of the object.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e60")]
    pub id: Uuid,
    /// The interaction, for `interaction` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interaction: Option<Interaction>,
    /// The change of lifecycle stage, for `lifecycle_change` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle_change: Option<LifecycleChange>,
    /// The purchase, for `purchase` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purchase: Option<Purchase>,
    /// The survey response, for `survey_response` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey_response: Option<SurveyResponse>,
    /// The change of loyalty tier, for `tier_change` items.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tier_change: Option<TierChange>,
}

/// The position of an item: newest first, then type, then id (all descending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, QueryableByName)]
pub struct Key {
    #[diesel(sql_type = Timestamptz)]
    pub at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    #[serde(rename = "t")]
    pub item_type: ItemType,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
}

/// The branch of one source: its rows after `after` in timeline order, at most `$4`.
/// Binds: `$1` customer, `$2` time and `$3` id of the cursor.
fn branch(source: &Source, after: Option<&Key>) -> String {
    let Source {
        item_type,
        table,
        at,
        visible,
    } = source;
    // Rows come after the cursor when older, or as old with a smaller type, or as old and
    // of the same type with a smaller id: one indexable condition per branch.
    let keyset = match after {
        None => "true".to_owned(),
        Some(key) if *item_type < key.item_type => format!("{at} <= $2"),
        Some(key) if *item_type > key.item_type => format!("{at} < $2"),
        Some(_) => format!("({at}, id) < ($2, $3)"),
    };
    format!(
        "(SELECT {at} AS at, '{item_type}'::text AS item_type, id FROM {table} \
         WHERE customer_id = $1 AND {visible} AND {keyset} \
         ORDER BY {at} DESC, id DESC LIMIT $4)"
    )
}

/// A page of a customer's timeline: its keys, then its items, in one read-only transaction
/// whose statements are planned once per connection (every row is found by key, so no plan
/// depends on the values; planned for each call, they cost more than they run).
pub async fn page(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    types: &[ItemType],
    after: Option<&Key>,
    fetch: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<(Vec<Key>, Vec<TimelineItem>)> {
    conn.build_transaction()
        .read_only()
        .run(async |conn| {
            crate::db::plan_once(conn).await?;
            let keys = keys(conn, customer_id, types, after, fetch).await?;
            let items = load(conn, &keys, now).await?;
            Ok((keys, items))
        })
        .await
}

/// The keys of a page of a customer's timeline, of the given types (all when empty).
pub async fn keys(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    types: &[ItemType],
    after: Option<&Key>,
    fetch: i64,
) -> diesel::QueryResult<Vec<Key>> {
    let branches: Vec<String> = SOURCES
        .iter()
        .filter(|s| types.is_empty() || types.contains(&s.item_type))
        .map(|s| branch(s, after))
        .collect();
    // Branches sort by text, like the outer query: ItemType's order is its text's.
    let sql = format!(
        "SELECT at, item_type, id FROM ({}) merged \
         ORDER BY at DESC, item_type COLLATE \"C\" DESC, id DESC LIMIT $4",
        branches.join(" UNION ALL ")
    );
    let (at, id) = after.map_or((DateTime::<Utc>::UNIX_EPOCH, Uuid::nil()), |k| (k.at, k.id));
    diesel::sql_query(sql)
        .bind::<SqlUuid, _>(customer_id)
        .bind::<Timestamptz, _>(at)
        .bind::<SqlUuid, _>(id)
        .bind::<BigInt, _>(fetch)
        .prepared()
        .load(conn)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_types_order_as_their_text_does() {
        // The merge orders by the text; cursors compare the enum.
        let mut by_enum = ItemType::ALL.to_vec();
        by_enum.sort();
        let mut by_text = ItemType::ALL.to_vec();
        by_text.sort_by_key(|t| t.as_str());
        assert_eq!(by_enum, by_text);
    }

    #[test]
    fn each_branch_continues_after_the_cursor_on_its_own_index() {
        let key = Key {
            at: DateTime::<Utc>::MIN_UTC,
            item_type: ItemType::Interaction,
            id: Uuid::nil(),
        };
        assert!(branch(&SOURCES[0], Some(&key)).contains("(timeline_at, id) < ($2, $3)"));
        assert!(branch(&SOURCES[1], Some(&key)).contains("changed_at < $2"));
        assert!(branch(&SOURCES[0], None).contains("AND true ORDER BY"));
    }
}
