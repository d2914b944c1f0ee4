//! Pure contact logic: a link's fields checked, buying roles put in order, the kinds of the
//! two customers a link joins. No database, no HTTP.

use chrono::{DateTime, Duration, Utc};

use super::json::{BuyingRole, ContactInput, ContactPatch};
use super::store::ContactDraft;
use crate::customers::json::CustomerKind;
use crate::domain::{clearable_text, optional_text};
use crate::http::error::FieldError;
use crate::http::patch::{Patch, nullable, required};
use crate::http::validation::Checks;

/// How far ahead of the server's clock a "past" time may be (clients' clocks drift).
pub const CLOCK_SKEW: Duration = Duration::minutes(1);

pub const MAX_TITLE: usize = 200;
pub const MAX_NOTE: usize = 2_000;

/// The roles' words, each once, in the order of [`BuyingRole::ALL`]; a role given twice is
/// refused.
pub fn buying_roles(roles: Vec<BuyingRole>) -> Result<Vec<String>, String> {
    for (i, role) in roles.iter().enumerate() {
        if roles[..i].contains(role) {
            return Err(format!("lists `{role}` twice; give each role once"));
        }
    }
    Ok(BuyingRole::ALL
        .iter()
        .filter(|r| roles.contains(r))
        .map(|r| r.as_str().to_owned())
        .collect())
}

/// The roles a stored link holds (words it does not know are left out).
pub fn roles_of(draft: &ContactDraft) -> Vec<BuyingRole> {
    draft
        .buying_roles
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect()
}

fn not_future(now: DateTime<Utc>) -> impl FnOnce(DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    move |t| {
        if t > now + CLOCK_SKEW {
            Err("must not be in the future".to_owned())
        } else {
            Ok(t)
        }
    }
}

/// The checks that span fields, on the result: the link ends after it starts, and only a
/// current link is made primary (`made_primary`: this input asks for it).
fn consistent(checks: &mut Checks, draft: &ContactDraft, made_primary: bool) {
    if draft.ended_at.is_some_and(|end| end < draft.started_at) {
        checks.fail("ended_at", "must not be before `started_at`");
    }
    if made_primary && draft.ended_at.is_some() {
        checks.fail(
            "primary",
            "only a current contact can be made primary (this one has `ended_at`)",
        );
    }
}

/// A new link's fields, checked, every error at once. Which person it links (`person_id` or
/// `person`) is checked by [`person_choice`].
pub fn new_link(input: &ContactInput, now: DateTime<Utc>) -> Result<ContactDraft, Vec<FieldError>> {
    let mut checks = Checks::new();
    let title = checks
        .check("title", optional_text(input.title.as_deref(), MAX_TITLE))
        .flatten();
    let note = checks
        .check("note", optional_text(input.note.as_deref(), MAX_NOTE))
        .flatten();
    let roles = checks
        .check(
            "buying_roles",
            buying_roles(input.buying_roles.clone().unwrap_or_default()),
        )
        .unwrap_or_default();
    let started_at = input
        .started_at
        .map(|t| checks.check("started_at", not_future(now)(t)))
        .unwrap_or(Some(now))
        .unwrap_or(now);
    let ended_at = input
        .ended_at
        .and_then(|t| checks.check("ended_at", not_future(now)(t)));
    let draft = ContactDraft {
        title,
        buying_roles: roles,
        is_primary: input.primary.unwrap_or(false),
        started_at,
        ended_at,
        note,
    };
    consistent(&mut checks, &draft, draft.is_primary);
    checks.finish().map_err(|e| e.errors().to_vec())?;
    Ok(draft)
}

/// Whether a new link names exactly one person: an existing one or one to create.
pub fn person_choice(input: &ContactInput) -> Result<(), FieldError> {
    match (input.person_id.is_some(), input.person.is_some()) {
        (true, false) | (false, true) => Ok(()),
        (true, true) => Err(FieldError::new(
            "person",
            "give either `person_id` (an existing person) or `person` (a new one), not both",
        )),
        (false, false) => Err(FieldError::new(
            "person_id",
            "is required, unless `person` describes a new person to create",
        )),
    }
}

/// Applies a merge patch to a link, every error at once.
pub fn apply(
    patch: ContactPatch,
    base: &ContactDraft,
    now: DateTime<Utc>,
) -> Result<ContactDraft, Vec<FieldError>> {
    let mut checks = Checks::new();
    let mut draft = base.clone();
    let made_primary = matches!(patch.primary, Patch::Value(true)) && !base.is_primary;
    nullable(
        &mut checks,
        "title",
        patch.title,
        &mut draft.title,
        clearable_text(MAX_TITLE),
    );
    nullable(
        &mut checks,
        "note",
        patch.note,
        &mut draft.note,
        clearable_text(MAX_NOTE),
    );
    match patch.buying_roles {
        Patch::Absent => {}
        Patch::Null => draft.buying_roles = Vec::new(),
        Patch::Value(roles) => {
            if let Some(roles) = checks.check("buying_roles", buying_roles(roles)) {
                draft.buying_roles = roles;
            }
        }
    }
    required(
        &mut checks,
        "primary",
        patch.primary,
        &mut draft.is_primary,
        Ok,
    );
    required(
        &mut checks,
        "started_at",
        patch.started_at,
        &mut draft.started_at,
        not_future(now),
    );
    nullable(
        &mut checks,
        "ended_at",
        patch.ended_at,
        &mut draft.ended_at,
        not_future(now),
    );
    consistent(&mut checks, &draft, made_primary);
    checks.finish().map_err(|e| e.errors().to_vec())?;
    Ok(draft)
}

/// Why two customers of these kinds cannot be linked as organization and person, if they
/// cannot: the field to blame and what is wrong.
pub fn kinds(
    organization: CustomerKind,
    person: CustomerKind,
) -> Result<(), (&'static str, &'static str)> {
    if organization != CustomerKind::Organization {
        return Err((
            "organization_id",
            "must be an organization customer: an individual has no contacts",
        ));
    }
    if person != CustomerKind::Individual {
        return Err((
            "person_id",
            "must be an individual customer: an organization cannot be a contact",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap_or_default()
    }

    fn base() -> ContactDraft {
        ContactDraft {
            title: None,
            buying_roles: Vec::new(),
            is_primary: false,
            started_at: at("2025-01-01T00:00:00Z"),
            ended_at: None,
            note: None,
        }
    }

    #[test]
    fn roles_come_out_in_order_and_once() {
        let roles = buying_roles(vec![BuyingRole::DecisionMaker, BuyingRole::Purchaser]);
        assert_eq!(
            roles,
            Ok(vec!["purchaser".to_owned(), "decision_maker".to_owned()])
        );
        assert!(buying_roles(vec![BuyingRole::User, BuyingRole::User]).is_err());
    }

    #[test]
    fn a_link_ends_after_it_starts_and_not_in_the_future() {
        let now = at("2026-12-03T12:00:00Z");
        let patch = ContactPatch {
            ended_at: Patch::Value(at("2024-12-31T00:00:00Z")),
            ..ContactPatch::default()
        };
        let errors = apply(patch, &base(), now).err().unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "ended_at");
        let patch = ContactPatch {
            ended_at: Patch::Value(at("2026-12-04T12:00:00Z")),
            ..ContactPatch::default()
        };
        assert!(apply(patch, &base(), now).is_err());
        let patch = ContactPatch {
            ended_at: Patch::Value(at("2026-11-30T00:00:00Z")),
            ..ContactPatch::default()
        };
        let ended = apply(patch, &base(), now).ok();
        assert_eq!(
            ended.and_then(|d| d.ended_at),
            Some(at("2026-11-30T00:00:00Z"))
        );
    }

    #[test]
    fn only_a_current_link_is_made_primary() {
        let now = at("2026-12-03T12:00:00Z");
        let mut past = base();
        past.ended_at = Some(at("2026-01-01T00:00:00Z"));
        let patch = ContactPatch {
            primary: Patch::Value(true),
            ..ContactPatch::default()
        };
        let errors = apply(patch, &past, now).err().unwrap_or_default();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "primary");
        // A primary that leaves keeps the flag, as history.
        let mut primary = base();
        primary.is_primary = true;
        let patch = ContactPatch {
            ended_at: Patch::Value(at("2026-11-30T00:00:00Z")),
            ..ContactPatch::default()
        };
        assert!(apply(patch, &primary, now).is_ok_and(|d| d.is_primary));
    }

    #[test]
    fn kinds_must_be_organization_and_individual() {
        use CustomerKind::{Individual, Organization};
        assert!(kinds(Organization, Individual).is_ok());
        assert_eq!(
            kinds(Individual, Individual).err().map(|e| e.0),
            Some("organization_id")
        );
        assert_eq!(
            kinds(Organization, Organization).err().map(|e| e.0),
            Some("person_id")
        );
    }
}
