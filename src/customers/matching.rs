//! The duplicate rules (issue 23), pure: what each reason weighs, how reasons add up to a
//! score, and how a merge picks each field of the merged record. The SQL that finds
//! candidates (`store::matches`, `duplicates::store`) reads the same keys through the
//! database's `customer_email_key`, `customer_address_key` and `customer_id_values`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::json::{DuplicateReason, FieldChoice};
use super::store::{CustomerDraft, MatchRules};
use crate::http::error::FieldError;

/// How the rules compare. Two names at the same address count when their trigram
/// similarity is at least one half. A key more than 20 live customers hold (a shared mailbox,
/// a switchboard, a building) matches nobody, on the way in as in the list of duplicates
/// (whose `customer_duplicates_refresh`, migration `2026-12-05-000030`, holds the same 20).
pub const RULES: MatchRules = MatchRules {
    name_similarity: 0.5,
    key_holders_at_most: 20,
};

/// How strongly one reason alone says "the same customer", in percent.
pub fn weight(reason: DuplicateReason) -> i64 {
    match reason {
        DuplicateReason::ExternalId => 95,
        DuplicateReason::Email => 90,
        DuplicateReason::Phone => 80,
        DuplicateReason::NameAddress => 70,
    }
}

/// A pair's score, 0–100: the chance that not all its reasons are wrong, taking each
/// reason's weight as the chance it is right on its own:
/// `100 − 100 × Π (1 − weight/100)`, rounded half up. One reason scores its weight; email and
/// phone together 98.
pub fn score(reasons: &[DuplicateReason]) -> i64 {
    if reasons.is_empty() {
        return 0;
    }
    // Π (100 − w) / 100^(n−1) is the percentage left; integers keep it exact.
    let mut num: i128 = 1;
    let mut den: i128 = 1;
    for (i, r) in reasons.iter().enumerate() {
        num *= i128::from(100 - weight(*r));
        if i > 0 {
            den *= 100;
        }
    }
    let left = (2 * num + den) / (2 * den);
    100 - left as i64
}

/// The fields a merge may be told whose value to keep (`fields` of the merge request).
pub const MERGE_FIELDS: &[&str] = &[
    "name",
    "organization_name",
    "email",
    "phone",
    "address",
    "region_type",
    "birth_date",
    "gender",
    "occupation",
    "income_band",
    "national_id",
    "preferred_channel",
    "consent",
    "attributes",
    "source",
    "external_id",
    "account_manager_id",
    "lifecycle_stage",
    "relationship_level",
    "qualification",
];

/// Checks a merge's field choices: every key must be one of [`MERGE_FIELDS`].
pub fn check_choices(choices: &HashMap<String, FieldChoice>) -> Result<(), Vec<FieldError>> {
    let mut errors: Vec<FieldError> = choices
        .keys()
        .filter(|k| !MERGE_FIELDS.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                format!("fields.{k}"),
                format!(
                    "is not a field a merge chooses; use one of: {}",
                    MERGE_FIELDS.join(", ")
                ),
            )
        })
        .collect();
    errors.sort_by(|a, b| a.field.cmp(&b.field));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// One record taking part in a merge: its fields and when it was last updated.
#[derive(Clone, Copy)]
pub struct Side<'a> {
    pub draft: &'a CustomerDraft,
    pub updated_at: DateTime<Utc>,
}

/// The index of the record a choice takes a whole value from (`sides[0]` is the survivor).
fn source(choice: FieldChoice, sides: &[Side<'_>]) -> usize {
    match choice {
        FieldChoice::Survivor => 0,
        FieldChoice::Other => usize::from(sides.len() > 1),
        FieldChoice::Newer => newest(sides, |_| true).unwrap_or(0),
    }
}

/// The record updated last among those `has` accepts (the earlier one on a tie).
fn newest(sides: &[Side<'_>], has: impl Fn(&CustomerDraft) -> bool) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, side) in sides.iter().enumerate() {
        if has(side.draft) && best.is_none_or(|b| side.updated_at > sides[b].updated_at) {
            best = Some(i);
        }
    }
    best
}

/// An optional field as the choice says (see [`FieldChoice`]).
fn pick<T: Clone>(
    choice: FieldChoice,
    sides: &[Side<'_>],
    get: impl Fn(&CustomerDraft) -> &Option<T>,
) -> Option<T> {
    let survivor = get(sides[0].draft).clone();
    let first_other = || sides[1..].iter().find_map(|s| get(s.draft).clone());
    match choice {
        FieldChoice::Survivor => survivor.or_else(first_other),
        FieldChoice::Other => first_other().or(survivor),
        FieldChoice::Newer => {
            newest(sides, |d| get(d).is_some()).and_then(|i| get(sides[i].draft).clone())
        }
    }
}

/// The merged record: `sides[0]` is the survivor, the rest the records merged into it, in
/// request order. Each field follows its choice (`survivor` when not given). Tags are united
/// (the survivor's first); attributes are united key by key, the chosen record's value
/// winning where both have the key.
pub fn combine(sides: &[Side<'_>], choices: &HashMap<String, FieldChoice>) -> CustomerDraft {
    let choice = |field: &str| choices.get(field).copied().unwrap_or(FieldChoice::Survivor);
    let mut out = sides[0].draft.clone();
    macro_rules! optional {
        ($($field:ident),* $(,)?) => {
            $( out.$field = pick(choice(stringify!($field)), sides, |d| &d.$field); )*
        };
    }
    optional!(
        organization_name,
        email,
        phone,
        address,
        region_type,
        birth_date,
        gender,
        occupation,
        income_band,
        national_id,
        preferred_channel,
        source,
        external_id,
        account_manager_id,
        qualification,
    );
    macro_rules! whole {
        ($($field:ident),* $(,)?) => {
            $( out.$field = sides[source(choice(stringify!($field)), sides)].draft.$field.clone(); )*
        };
    }
    whole!(name, lifecycle_stage, relationship_level);
    let consent = sides[source(choice("consent"), sides)].draft;
    out.consent_email = consent.consent_email;
    out.consent_email_at = consent.consent_email_at;
    out.consent_sms = consent.consent_sms;
    out.consent_sms_at = consent.consent_sms_at;

    let mut tags = sides[0].draft.tags.clone();
    for side in &sides[1..] {
        for tag in &side.draft.tags {
            if !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
    }
    out.tags = tags;

    // The winner's keys last, so that they overwrite.
    let winner = source(choice("attributes"), sides);
    let mut attributes = serde_json::Map::new();
    let order = (0..sides.len())
        .rev()
        .filter(|i| *i != winner)
        .chain([winner]);
    for i in order {
        if let Value::Object(map) = &sides[i].draft.attributes {
            for (k, v) in map {
                attributes.insert(k.clone(), v.clone());
            }
        }
    }
    out.attributes = Value::Object(attributes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::customers::json::DuplicateReason::*;
    use crate::domain::Email;
    use chrono::TimeZone;

    #[test]
    fn scores_combine_the_weights() {
        assert_eq!(score(&[]), 0);
        assert_eq!(score(&[Email]), 90);
        assert_eq!(score(&[ExternalId]), 95);
        assert_eq!(score(&[Phone]), 80);
        assert_eq!(score(&[NameAddress]), 70);
        assert_eq!(score(&[Email, Phone]), 98);
        // 10 × 20 × 30 / 10 000 = 0.6 left, rounded to 1.
        assert_eq!(score(&[Email, Phone, NameAddress]), 99);
        assert_eq!(score(&[Phone, NameAddress]), 94);
        assert_eq!(score(&[ExternalId, Email, Phone, NameAddress]), 100);
    }

    fn draft(name: &str, email: Option<&str>) -> CustomerDraft {
        let mut d = CustomerDraft::blank();
        d.name = name.to_owned();
        d.email = email.map(|e| Email::parse(e).unwrap());
        d
    }

    #[test]
    fn a_merge_fills_blanks_and_follows_choices() {
        let mut survivor = draft("Ada", None);
        survivor.tags = vec!["vip".into()];
        survivor.attributes = serde_json::json!({"a": 1, "b": 1});
        survivor.occupation = Some("engineer".into());
        let mut other = draft("Ada Lovelace", Some("ada@example.com"));
        other.tags = vec!["news".into(), "vip".into()];
        other.attributes = serde_json::json!({"b": 2, "c": 2});
        other.occupation = Some("mathematician".into());
        let old = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let new = Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).unwrap();
        let sides = [
            Side {
                draft: &survivor,
                updated_at: old,
            },
            Side {
                draft: &other,
                updated_at: new,
            },
        ];
        let kept = combine(&sides, &HashMap::new());
        assert_eq!(kept.name, "Ada");
        assert_eq!(
            kept.email.as_ref().map(Email::as_str),
            Some("ada@example.com")
        );
        assert_eq!(kept.occupation.as_deref(), Some("engineer"));
        assert_eq!(kept.tags, vec!["vip".to_owned(), "news".to_owned()]);
        assert_eq!(kept.attributes, serde_json::json!({"a": 1, "b": 1, "c": 2}));

        let choices = HashMap::from([
            ("name".to_owned(), FieldChoice::Newer),
            ("occupation".to_owned(), FieldChoice::Other),
            ("attributes".to_owned(), FieldChoice::Other),
        ]);
        let kept = combine(&sides, &choices);
        assert_eq!(kept.name, "Ada Lovelace");
        assert_eq!(kept.occupation.as_deref(), Some("mathematician"));
        assert_eq!(kept.attributes, serde_json::json!({"a": 1, "b": 2, "c": 2}));
    }

    #[test]
    fn unknown_fields_are_named() {
        let choices = HashMap::from([("shoe_size".to_owned(), FieldChoice::Other)]);
        let errors = check_choices(&choices).unwrap_err();
        assert_eq!(errors[0].field, "fields.shoe_size");
    }
}
