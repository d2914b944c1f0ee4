//! Pure checks and arithmetic of duplicates: the ids a request names, what a merge added.

use serde_json::Value;
use uuid::Uuid;

use super::json::MovedCounts;
use crate::http::error::FieldError;

/// The most customers one merge takes in.
pub const MAX_MERGED: usize = 10;

/// The two customers of a `not_duplicate` mark, smaller id first.
pub fn pair(ids: &[Uuid]) -> Result<(Uuid, Uuid), FieldError> {
    match ids {
        [a, b] if a != b => Ok(((*a).min(*b), (*a).max(*b))),
        [_, _] => Err(FieldError::new(
            "customer_ids",
            "must name two different customers",
        )),
        _ => Err(FieldError::new(
            "customer_ids",
            "must name exactly two customers",
        )),
    }
}

/// The customers to merge into `survivor`: 1 to [`MAX_MERGED`], each once, never the
/// survivor itself.
pub fn merged(survivor: Uuid, ids: &[Uuid]) -> Result<Vec<Uuid>, Vec<FieldError>> {
    if ids.is_empty() || ids.len() > MAX_MERGED {
        return Err(vec![FieldError::new(
            "merge_ids",
            format!("must name 1 to {MAX_MERGED} customers"),
        )]);
    }
    let mut errors = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if *id == survivor {
            errors.push(FieldError::new(
                format!("merge_ids[{i}]"),
                "is the survivor itself; a customer cannot be merged into itself",
            ));
        } else if ids[..i].contains(id) {
            errors.push(FieldError::new(format!("merge_ids[{i}]"), "is named twice"));
        }
    }
    if errors.is_empty() {
        Ok(ids.to_vec())
    } else {
        Err(errors)
    }
}

/// The tags `after` has that `before` had not, in order.
pub fn tags_added(before: &[String], after: &[String]) -> Vec<String> {
    after
        .iter()
        .filter(|t| !before.contains(t))
        .cloned()
        .collect()
}

/// The attribute keys `after` has that `before` had not, sorted.
pub fn attributes_added(before: &Value, after: &Value) -> Vec<String> {
    let (Value::Object(before), Value::Object(after)) = (before, after) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = after
        .keys()
        .filter(|k| !before.contains_key(*k))
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// The counts of a merge (or unmerge) from the rows moved per kind.
pub fn counts(moved: &[(&str, i64)], points: i64, contact_links: i64) -> MovedCounts {
    let of = |kind: &str| {
        moved
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| *n)
            .sum::<i64>()
    };
    MovedCounts {
        interactions: of("interaction"),
        interaction_contacts: of("interaction_contact"),
        purchases: of("purchase"),
        loyalty_points: points,
        loyalty_lots: of("loyalty_lot"),
        loyalty_ledger_entries: of("loyalty_ledger"),
        loyalty_tier_changes: of("loyalty_tier_change"),
        survey_responses: of("survey_response"),
        opportunities: of("opportunity"),
        opportunity_contacts: of("opportunity_contact"),
        contact_links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_two_different_ids_in_order() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(pair(&[b, a]).unwrap(), (a, b));
        assert!(pair(&[a, a]).is_err());
        assert!(pair(&[a]).is_err());
        assert!(pair(&[a, b, a]).is_err());
    }

    #[test]
    fn a_merge_names_others_once() {
        let (s, a) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(merged(s, &[a]).unwrap(), vec![a]);
        assert_eq!(merged(s, &[s]).unwrap_err()[0].field, "merge_ids[0]");
        assert_eq!(merged(s, &[a, a]).unwrap_err()[0].field, "merge_ids[1]");
        assert!(merged(s, &[]).is_err());
        let many: Vec<Uuid> = (2..14).map(Uuid::from_u128).collect();
        assert!(merged(s, &many).is_err());
    }

    #[test]
    fn additions_are_listed() {
        let before = vec!["vip".to_owned()];
        let after = vec!["vip".to_owned(), "news".to_owned()];
        assert_eq!(tags_added(&before, &after), vec!["news".to_owned()]);
        let added = attributes_added(
            &serde_json::json!({"a": 1}),
            &serde_json::json!({"a": 2, "c": 1, "b": 1}),
        );
        assert_eq!(added, vec!["b".to_owned(), "c".to_owned()]);
    }
}
