//! The timeline's query: the keys of a page, merged from every source's own index.

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::json::ItemType;
use crate::db::Prepare;

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
/// Binds: `$1` customer, `$2` time and `$3` id of the cursor, `$5` the customer's contacts
/// (people whose interactions show too, when `with_contacts`).
fn branch(source: &Source, after: Option<&Key>, with_contacts: bool) -> String {
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
    // Interactions of the contacts too: each person's own index, merged with the customer's.
    let whose = if with_contacts && *item_type == ItemType::Interaction {
        "(customer_id = $1 OR customer_id = ANY($5))"
    } else {
        "customer_id = $1"
    };
    format!(
        "(SELECT {at} AS at, '{item_type}'::text AS item_type, id FROM {table} \
         WHERE {whose} AND {visible} AND {keyset} \
         ORDER BY {at} DESC, id DESC LIMIT $4)"
    )
}

/// The keys of a page of a customer's timeline, of the given types (all when empty), with
/// the interactions of `contacts` (people) too.
pub async fn keys(
    mut conn: &AsyncPgConnection,
    customer_id: Uuid,
    contacts: &[Uuid],
    types: &[ItemType],
    after: Option<&Key>,
    fetch: i64,
) -> diesel::QueryResult<Vec<Key>> {
    let branches: Vec<String> = SOURCES
        .iter()
        .filter(|s| types.is_empty() || types.contains(&s.item_type))
        .map(|s| branch(s, after, !contacts.is_empty()))
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
        .bind::<diesel::sql_types::Array<SqlUuid>, _>(contacts.to_vec())
        .prepared()
        .load(&mut conn)
        .await
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
        assert!(branch(&SOURCES[0], Some(&key), false).contains("(timeline_at, id) < ($2, $3)"));
        assert!(branch(&SOURCES[1], Some(&key), false).contains("changed_at < $2"));
        assert!(branch(&SOURCES[0], None, false).contains("AND true ORDER BY"));
        assert!(branch(&SOURCES[0], None, true).contains("customer_id = ANY($5)"));
        assert!(!branch(&SOURCES[1], None, true).contains("$5"));
    }
}
