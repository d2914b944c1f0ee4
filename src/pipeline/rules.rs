//! The pipeline's rules, without database or HTTP: what a stage and an opportunity may hold,
//! and how a status change closes or reopens an opportunity.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use uuid::Uuid;

use super::json::{OpportunityInput, OpportunityPatch, OpportunityStatus};
use super::store::OpportunityDraft;
use crate::auth::Actor;
use crate::domain::{clearable_text, currency_code, money, required_text};
use crate::http::error::ApiError;
use crate::http::patch::{Patch, required};
use crate::http::validation::Checks;

pub fn stage_key(key: &str) -> Result<String, String> {
    let mut chars = key.chars();
    let valid = key.len() <= 50
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(key.to_owned())
    } else {
        Err(
            "must be lower case letters, digits or `_`, starting with a letter, up to 50"
                .to_owned(),
        )
    }
}

pub fn probability(value: i32) -> Result<i32, String> {
    if (0..=100).contains(&value) {
        Ok(value)
    } else {
        Err("must be a whole percent from 0 to 100".to_owned())
    }
}

fn close_date(date: NaiveDate) -> Result<NaiveDate, String> {
    if (1900..=2999).contains(&date.year()) {
        Ok(date)
    } else {
        Err("must be a date from 1900 to 2999".to_owned())
    }
}

/// The blank an opportunity is created from: open, in no stage yet.
fn blank(owner_id: Uuid) -> OpportunityDraft {
    OpportunityDraft {
        title: String::new(),
        amount: 0,
        currency: String::new(),
        stage: String::new(),
        owner_id,
        expected_close_date: NaiveDate::default(),
        status: OpportunityStatus::Open,
        close_reason: None,
        closed_at: None,
        contact_ids: Vec::new(),
    }
}

/// Checks a new opportunity, reporting every error at once: the draft (its stage empty when
/// none is given: the first stage, found in the database) and whether a stage was given.
pub fn validate_new(
    input: OpportunityInput,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(OpportunityDraft, bool), ApiError> {
    let mut checks = Checks::new();
    let owner_id = match (input.owner_id, actor) {
        (Some(id), _) => id,
        (None, Actor::User(id)) => *id,
        (None, _) => {
            checks.fail(
                "owner_id",
                "is required: it defaults to the calling staff user, and this caller is none",
            );
            Uuid::nil()
        }
    };
    let stage_given = input.stage.is_some();
    let patch = OpportunityPatch {
        title: Patch::Value(input.title),
        amount: Patch::Value(input.amount),
        currency: Patch::Value(input.currency),
        stage: input.stage.into(),
        owner_id: Patch::Absent,
        expected_close_date: Patch::Value(input.expected_close_date),
        status: input.status.into(),
        close_reason: input.close_reason.into(),
        closed_at: input.closed_at.into(),
        contact_ids: input.contact_ids.into(),
    };
    let draft = apply_checked(&mut checks, patch, &blank(owner_id), now);
    checks.finish()?;
    Ok((draft, stage_given))
}

/// Applies a merge patch to an opportunity, reporting every error at once.
pub fn apply(
    patch: OpportunityPatch,
    before: &OpportunityDraft,
    now: DateTime<Utc>,
) -> Result<OpportunityDraft, ApiError> {
    let mut checks = Checks::new();
    let draft = apply_checked(&mut checks, patch, before, now);
    checks.finish()?;
    Ok(draft)
}

/// Applies a merge patch, recording what is wrong in `checks`.
///
/// The status rules: `won` and `lost` close the opportunity (`closed_at` now unless given;
/// `lost` needs a `close_reason`, `won` may have one); back to `open` reopens it
/// (`closed_at` and `close_reason` cleared). A change of status starts from a fresh reason.
fn apply_checked(
    checks: &mut Checks,
    patch: OpportunityPatch,
    before: &OpportunityDraft,
    now: DateTime<Utc>,
) -> OpportunityDraft {
    use OpportunityStatus::{Lost, Open};
    let mut draft = before.clone();
    required(checks, "title", patch.title, &mut draft.title, |t| {
        required_text(&t, 200)
    });
    required(checks, "amount", patch.amount, &mut draft.amount, money);
    required(
        checks,
        "currency",
        patch.currency,
        &mut draft.currency,
        |c| currency_code(&c),
    );
    required(checks, "stage", patch.stage, &mut draft.stage, |k| {
        stage_key(&k)
    });
    required(checks, "owner_id", patch.owner_id, &mut draft.owner_id, Ok);
    required(
        checks,
        "expected_close_date",
        patch.expected_close_date,
        &mut draft.expected_close_date,
        close_date,
    );
    required(checks, "status", patch.status, &mut draft.status, Ok);
    let changed = draft.status != before.status;
    let closed = draft.status != Open;

    draft.closed_at = match (closed, patch.closed_at) {
        (false, Patch::Value(_)) => {
            checks.fail("closed_at", "only won or lost opportunities have one");
            None
        }
        (false, _) => None,
        (true, Patch::Value(t)) => {
            if t > now + Duration::minutes(1) {
                checks.fail("closed_at", "must not be in the future");
            }
            Some(t)
        }
        (true, Patch::Null) => {
            checks.fail("closed_at", "cannot be null on a won or lost opportunity");
            before.closed_at
        }
        (true, Patch::Absent) if changed || before.closed_at.is_none() => Some(now),
        (true, Patch::Absent) => before.closed_at,
    };

    let mut reason_error = false;
    draft.close_reason = match (closed, patch.close_reason) {
        (false, Patch::Value(_)) => {
            checks.fail("close_reason", "only won or lost opportunities have one");
            reason_error = true;
            None
        }
        (false, _) => None,
        (true, Patch::Value(text)) => match clearable_text(500)(text) {
            Ok(text) => Some(text),
            Err(message) => {
                checks.fail("close_reason", message);
                reason_error = true;
                None
            }
        },
        (true, Patch::Null) => None,
        (true, Patch::Absent) if changed => None,
        (true, Patch::Absent) => before.close_reason.clone(),
    };
    if draft.status == Lost && draft.close_reason.is_none() && !reason_error {
        checks.fail("close_reason", "is required when an opportunity is lost");
    }
    match patch.contact_ids {
        Patch::Absent => {}
        Patch::Null => draft.contact_ids = Vec::new(),
        Patch::Value(ids) => {
            if let Some(ids) = checks.check("contact_ids", contact_ids(ids)) {
                draft.contact_ids = ids;
            }
        }
    }
    draft
}

/// The most people an opportunity names.
pub const MAX_CONTACTS: usize = 50;

/// An opportunity's people: each once, up to [`MAX_CONTACTS`]. Whether they are contacts of
/// its customer is the service's to check.
pub fn contact_ids(ids: Vec<Uuid>) -> Result<Vec<Uuid>, String> {
    if ids.len() > MAX_CONTACTS {
        return Err(format!("must hold at most {MAX_CONTACTS} people"));
    }
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(format!("names {id} twice; give each person once"));
        }
    }
    Ok(ids)
}

/// The advance kinds the course names (销售进展: what moves a deal on).
pub const ADVANCE_KINDS: [&str; 6] = [
    "demo",
    "met_decision_maker",
    "trial",
    "budget_confirmed",
    "proposal",
    "joint_plan",
];

/// The prefix of an advance kind of one's own.
pub const CUSTOM_KIND_PREFIX: &str = "custom:";

/// An advance kind: one of [`ADVANCE_KINDS`], or `custom:<name>` with a name of 1 to 50
/// lower case letters, digits or `_`, starting with a letter.
pub fn advance_kind(kind: &str) -> Result<String, String> {
    if ADVANCE_KINDS.contains(&kind) {
        return Ok(kind.to_owned());
    }
    let custom = kind.strip_prefix(CUSTOM_KIND_PREFIX).is_some_and(|name| {
        let mut chars = name.chars();
        name.len() <= 50
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    });
    if custom {
        Ok(kind.to_owned())
    } else {
        Err(format!(
            "must be one of {}, or `custom:<name>` (1 to 50 lower case letters, digits or `_`, \
             starting with a letter)",
            ADVANCE_KINDS.join(", ")
        ))
    }
}

/// Checks an advance, reporting every error at once: its kind, when it happened (now by
/// default; not in the future, not before 1900) and its note.
pub fn validate_advance(
    input: super::json::AdvanceInput,
    now: DateTime<Utc>,
) -> Result<(String, DateTime<Utc>, Option<String>), ApiError> {
    let mut checks = Checks::new();
    let kind = checks.check("kind", advance_kind(&input.kind));
    let occurred_at = input.occurred_at.unwrap_or(now);
    if occurred_at > now + Duration::minutes(1) {
        checks.fail("occurred_at", "must not be in the future");
    } else if occurred_at.year() < 1900 {
        checks.fail("occurred_at", "must not be before 1900");
    }
    let note = match input.note {
        None => None,
        Some(raw) => checks.check("note", clearable_text(1000)(raw)),
    };
    let kind = checks.done(kind)?;
    Ok((kind, occurred_at, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::patch::Patch::{Absent, Null, Value};

    fn open() -> OpportunityDraft {
        OpportunityDraft {
            title: "Chairs".to_owned(),
            amount: 1000,
            currency: "EUR".to_owned(),
            stage: "lead".to_owned(),
            ..blank(Uuid::nil())
        }
    }

    fn fields(result: Result<OpportunityDraft, ApiError>) -> Vec<String> {
        match result {
            Ok(_) => vec![],
            Err(e) => e.errors().iter().map(|e| e.field.clone()).collect(),
        }
    }

    #[test]
    fn advance_kinds_are_the_courses_or_custom() {
        for good in [
            "demo",
            "joint_plan",
            "custom:site_visit",
            "custom:a",
            "custom:x9_",
        ] {
            assert_eq!(advance_kind(good).ok().as_deref(), Some(good));
        }
        let long = format!("custom:a{}", "b".repeat(50));
        for bad in [
            "",
            "Demo",
            "custom:",
            "custom:9x",
            "custom:Site",
            "custom:a-b",
            "other",
            "custom",
            &long,
        ] {
            assert!(advance_kind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn closing_and_reopening() {
        let now = Utc::now();
        let won = apply(
            OpportunityPatch {
                status: Value(OpportunityStatus::Won),
                ..Default::default()
            },
            &open(),
            now,
        )
        .unwrap_or_else(|_| open());
        assert_eq!(won.status, OpportunityStatus::Won);
        assert_eq!(won.closed_at, Some(now));
        assert_eq!(won.close_reason, None);

        let lost = OpportunityPatch {
            status: Value(OpportunityStatus::Lost),
            ..Default::default()
        };
        assert_eq!(fields(apply(lost, &won, now)), ["close_reason"]);
        let lost = OpportunityPatch {
            status: Value(OpportunityStatus::Lost),
            close_reason: Value("  price ".to_owned()),
            ..Default::default()
        };
        let lost = apply(lost, &won, now).unwrap_or_else(|_| open());
        assert_eq!(lost.close_reason.as_deref(), Some("price"));

        let reopened = OpportunityPatch {
            status: Value(OpportunityStatus::Open),
            ..Default::default()
        };
        let reopened = apply(reopened, &lost, now).unwrap_or_else(|_| won.clone());
        assert_eq!(reopened.status, OpportunityStatus::Open);
        assert_eq!((reopened.closed_at, reopened.close_reason), (None, None));

        let reason_while_open = OpportunityPatch {
            close_reason: Value("x".to_owned()),
            closed_at: Value(now),
            ..Default::default()
        };
        assert_eq!(
            fields(apply(reason_while_open, &open(), now)),
            ["closed_at", "close_reason"]
        );
        let clear_lost_reason = OpportunityPatch {
            close_reason: Null,
            ..Default::default()
        };
        assert_eq!(
            fields(apply(clear_lost_reason, &lost, now)),
            ["close_reason"]
        );
        let nulls = OpportunityPatch {
            title: Null,
            amount: Value(-1),
            stage: Value("Bad Key".to_owned()),
            status: Absent,
            ..Default::default()
        };
        assert_eq!(
            fields(apply(nulls, &open(), now)),
            ["title", "amount", "stage"]
        );
    }
}
