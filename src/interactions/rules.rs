//! Pure interaction logic: applying input with every field checked, the complaint workflow,
//! follow-up states. No database, no HTTP.

use chrono::{DateTime, Duration, Utc};

use super::json::{ComplaintStatus, FollowUpState, InteractionInput, InteractionKind};
use super::store::{InteractionDraft, Steps};
use crate::domain::{Channel, clearable_text as text, optional_text};
use crate::http::error::FieldError;
use crate::http::patch::{Patch, nullable, required};
use crate::http::validation::Checks;

/// How far ahead of the server's clock a "past" time may be (clients' clocks drift).
pub const CLOCK_SKEW: Duration = Duration::minutes(1);

pub const MAX_SUBJECT: usize = 200;
pub const MAX_NOTES: usize = 20_000;
pub const MAX_OUTCOME: usize = 500;
pub const MAX_RESOLUTION: usize = 5_000;
pub const MAX_NOTE: usize = 500;

impl InteractionDraft {
    /// What a new interaction starts from before its input applies.
    pub fn blank() -> Self {
        InteractionDraft {
            channel: Channel::Other,
            direction: super::json::Direction::Inbound,
            kind: InteractionKind::Note,
            subject: None,
            notes: None,
            occurred_at: None,
            duration_seconds: None,
            staff_id: None,
            outcome: None,
            due_at: None,
            assignee_id: None,
            severity: None,
            resolution: None,
            purchase_id: None,
            contact_id: None,
            cause: None,
        }
    }
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

fn duration(seconds: i32) -> Result<i32, String> {
    if (0..=86_400).contains(&seconds) {
        Ok(seconds)
    } else {
        Err("must be from 0 to 86400 seconds".to_owned())
    }
}

/// Applies `input` to `base` (a blank for a new interaction, or the current record),
/// reporting every error at once.
pub fn apply(
    input: InteractionInput,
    base: &InteractionDraft,
    creating: bool,
    now: DateTime<Utc>,
) -> Result<InteractionDraft, Vec<FieldError>> {
    let mut checks = Checks::new();
    let mut draft = base.clone();
    if creating {
        for (field, absent) in [
            ("channel", input.channel.is_absent()),
            ("direction", input.direction.is_absent()),
            ("kind", input.kind.is_absent()),
        ] {
            if absent {
                checks.fail(field, "is required");
            }
        }
    }
    required(
        &mut checks,
        "channel",
        input.channel,
        &mut draft.channel,
        Ok,
    );
    required(
        &mut checks,
        "direction",
        input.direction,
        &mut draft.direction,
        Ok,
    );
    match input.kind {
        Patch::Value(kind) if !creating && kind != base.kind => checks.fail(
            "kind",
            "cannot change once recorded; record a new interaction instead",
        ),
        kind => required(&mut checks, "kind", kind, &mut draft.kind, Ok),
    }
    nullable(
        &mut checks,
        "subject",
        input.subject,
        &mut draft.subject,
        text(MAX_SUBJECT),
    );
    nullable(
        &mut checks,
        "notes",
        input.notes,
        &mut draft.notes,
        text(MAX_NOTES),
    );
    nullable(
        &mut checks,
        "occurred_at",
        input.occurred_at,
        &mut draft.occurred_at,
        not_future(now),
    );
    nullable(
        &mut checks,
        "duration_seconds",
        input.duration_seconds,
        &mut draft.duration_seconds,
        duration,
    );
    nullable(
        &mut checks,
        "staff_id",
        input.staff_id,
        &mut draft.staff_id,
        Ok,
    );
    nullable(
        &mut checks,
        "outcome",
        input.outcome,
        &mut draft.outcome,
        text(MAX_OUTCOME),
    );
    nullable(&mut checks, "due_at", input.due_at, &mut draft.due_at, Ok);
    nullable(
        &mut checks,
        "assignee_id",
        input.assignee_id,
        &mut draft.assignee_id,
        Ok,
    );
    nullable(
        &mut checks,
        "purchase_id",
        input.purchase_id,
        &mut draft.purchase_id,
        Ok,
    );
    nullable(
        &mut checks,
        "contact_id",
        input.contact_id,
        &mut draft.contact_id,
        Ok,
    );
    let complaint = draft.kind == InteractionKind::Complaint;
    let severity_given = !input.severity.is_absent();
    nullable(
        &mut checks,
        "severity",
        input.severity,
        &mut draft.severity,
        Ok,
    );
    let cause_given = !input.cause.is_absent();
    nullable(&mut checks, "cause", input.cause, &mut draft.cause, Ok);
    let resolution_given = !input.resolution.is_absent();
    nullable(
        &mut checks,
        "resolution",
        input.resolution,
        &mut draft.resolution,
        text(MAX_RESOLUTION),
    );
    if checks.is_ok() {
        if complaint && draft.severity.is_none() {
            checks.fail("severity", "is required for a complaint");
        }
        if !complaint && severity_given && draft.severity.is_some() {
            checks.fail("severity", "is for complaints only");
        }
        if !complaint && cause_given && draft.cause.is_some() {
            checks.fail("cause", "is for complaints only");
        }
        if !complaint && resolution_given && draft.resolution.is_some() {
            checks.fail("resolution", "is for complaints only");
        }
        if complaint && draft.occurred_at.is_none() {
            checks.fail(
                "occurred_at",
                "is required for a complaint: it is when the complaint was opened",
            );
        } else if draft.occurred_at.is_none() && draft.due_at.is_none() {
            checks.fail(
                "occurred_at",
                "is required, unless `due_at` schedules a follow-up",
            );
        }
    }
    checks.finish().map_err(|e| e.errors().to_vec())?;
    Ok(draft)
}

/// Where a follow-up stands at `now`; `None` for an interaction that was not scheduled.
pub fn follow_up_state(
    due_at: Option<DateTime<Utc>>,
    occurred_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<FollowUpState> {
    let due_at = due_at?;
    Some(if occurred_at.is_some() {
        FollowUpState::Done
    } else if due_at < now {
        FollowUpState::Overdue
    } else {
        FollowUpState::Due
    })
}

/// The statuses a complaint may move to from `status`.
pub fn next_statuses(status: ComplaintStatus) -> &'static [ComplaintStatus] {
    use ComplaintStatus::{Closed, InProgress, Open, Resolved};
    match status {
        Open => &[InProgress, Resolved],
        InProgress => &[Resolved],
        Resolved => &[Closed, Open],
        Closed => &[Open],
    }
}

/// The workflow's rules over its times ([`Steps`], stored by `store`).
impl Steps {
    /// When the last step happened (a new one may not be earlier).
    pub fn last(&self, opened_at: DateTime<Utc>) -> DateTime<Utc> {
        [
            Some(opened_at),
            self.in_progress_at,
            self.resolved_at,
            self.closed_at,
            self.reopened_at,
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(opened_at)
    }

    /// The times after moving to `to` at `at`. Reopening forgets the resolution and closing
    /// times: the time to resolve then runs to the next resolution.
    pub fn after(&self, to: ComplaintStatus, at: DateTime<Utc>) -> Steps {
        let mut steps = self.clone();
        match to {
            ComplaintStatus::InProgress => {
                steps.in_progress_at = steps.in_progress_at.or(Some(at));
            }
            ComplaintStatus::Resolved => steps.resolved_at = Some(at),
            ComplaintStatus::Closed => steps.closed_at = Some(at),
            ComplaintStatus::Open => {
                steps.resolved_at = None;
                steps.closed_at = None;
                steps.reopened_at = Some(at);
                steps.reopen_count += 1;
            }
        }
        steps
    }
}

/// A checked step of the workflow.
#[derive(Debug, PartialEq, Eq)]
pub struct Transition {
    pub to: ComplaintStatus,
    pub at: DateTime<Utc>,
    pub steps: Steps,
    /// The resolution text after the step.
    pub resolution: Option<String>,
    pub note: Option<String>,
}

/// Why a step cannot be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum TransitionError {
    /// Not allowed from the current status: the allowed ones.
    Illegal(&'static [ComplaintStatus]),
    Invalid(Vec<FieldError>),
}

/// Checks a step from `status` (with `steps`, opened at `opened_at`) to `to`.
#[allow(clippy::too_many_arguments)]
pub fn transition(
    status: ComplaintStatus,
    steps: &Steps,
    opened_at: DateTime<Utc>,
    current_resolution: Option<&str>,
    to: ComplaintStatus,
    resolution: Option<String>,
    note: Option<String>,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Transition, TransitionError> {
    let allowed = next_statuses(status);
    if !allowed.contains(&to) {
        return Err(TransitionError::Illegal(allowed));
    }
    let mut checks = Checks::new();
    let at = at.unwrap_or(now);
    if at > now + CLOCK_SKEW {
        checks.fail("at", "must not be in the future");
    } else if at < steps.last(opened_at) {
        checks.fail(
            "at",
            format!(
                "must not be before the previous step ({})",
                steps.last(opened_at).to_rfc3339()
            ),
        );
    }
    let resolution = match resolution {
        Some(raw) => checks
            .check("resolution", optional_text(Some(&raw), MAX_RESOLUTION))
            .flatten(),
        None => current_resolution.map(str::to_owned),
    };
    if to == ComplaintStatus::Resolved && resolution.is_none() {
        checks.fail("resolution", "is required to resolve a complaint");
    }
    let note = match note {
        Some(raw) => checks
            .check("note", optional_text(Some(&raw), MAX_NOTE))
            .flatten(),
        None => None,
    };
    checks
        .finish()
        .map_err(|e| TransitionError::Invalid(e.errors().to_vec()))?;
    Ok(Transition {
        to,
        at,
        steps: steps.after(to, at),
        resolution,
        note,
    })
}

/// Hours between two times, to the second.
pub fn hours(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_seconds() as f64 / 3600.0
}

/// The relationship levels a sale is followed by a callback at (DOMAIN.md section 2: the
/// `accountable` company calls soon after the sale, and so do the levels above it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackLevel {
    Accountable,
    Proactive,
    Partnership,
}

impl CallbackLevel {
    /// The level's key (as `analytics_settings.callback_days` names it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accountable => "accountable",
            Self::Proactive => "proactive",
            Self::Partnership => "partnership",
        }
    }
}

/// What a callback after a sale asks, as the course's example does.
pub const CALLBACK_SUBJECT: &str =
    "Callback after the sale: does the purchase work as expected? Any suggestions?";

/// The callback level of a relationship level; `None` below `accountable`.
pub fn callback_level(level: crate::customers::json::RelationshipLevel) -> Option<CallbackLevel> {
    use crate::customers::json::RelationshipLevel as L;
    match level {
        L::Basic | L::Reactive => None,
        L::Accountable => Some(CallbackLevel::Accountable),
        L::Proactive => Some(CallbackLevel::Proactive),
        L::Partnership => Some(CallbackLevel::Partnership),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComplaintStatus::{Closed, InProgress, Open, Resolved};
    use chrono::TimeZone;

    fn t(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, hour, 0, 0).unwrap()
    }

    #[test]
    fn every_status_names_its_next_ones_and_refuses_the_rest() {
        let all = [Open, InProgress, Resolved, Closed];
        let legal = [
            (Open, InProgress),
            (Open, Resolved),
            (InProgress, Resolved),
            (Resolved, Closed),
            (Resolved, Open),
            (Closed, Open),
        ];
        for from in all {
            for to in all {
                let outcome = transition(
                    from,
                    &Steps::default(),
                    t(1),
                    Some("fixed"),
                    to,
                    None,
                    None,
                    Some(t(2)),
                    t(3),
                );
                if legal.contains(&(from, to)) {
                    assert!(outcome.is_ok(), "{from} -> {to}");
                } else {
                    assert_eq!(
                        outcome,
                        Err(TransitionError::Illegal(next_statuses(from))),
                        "{from} -> {to}"
                    );
                }
            }
        }
    }

    #[test]
    fn reopening_forgets_the_resolution_and_counts() {
        let resolved = Steps::default()
            .after(InProgress, t(2))
            .after(Resolved, t(3));
        assert_eq!(resolved.resolved_at, Some(t(3)));
        let reopened = resolved.after(Closed, t(4)).after(Open, t(5));
        assert_eq!(reopened.resolved_at, None);
        assert_eq!(reopened.closed_at, None);
        assert_eq!(reopened.reopened_at, Some(t(5)));
        assert_eq!(reopened.reopen_count, 1);
        assert_eq!(reopened.in_progress_at, Some(t(2)));
        assert_eq!(reopened.last(t(1)), t(5));
    }

    #[test]
    fn steps_cannot_go_back_in_time_or_resolve_without_a_resolution() {
        let steps = Steps::default().after(InProgress, t(5));
        let early = transition(
            InProgress,
            &steps,
            t(1),
            Some("x"),
            Resolved,
            None,
            None,
            Some(t(4)),
            t(9),
        );
        assert!(matches!(early, Err(TransitionError::Invalid(e)) if e[0].field == "at"));
        let bare = transition(
            InProgress,
            &steps,
            t(1),
            None,
            Resolved,
            None,
            None,
            None,
            t(9),
        );
        assert!(matches!(bare, Err(TransitionError::Invalid(e)) if e[0].field == "resolution"));
        let future = transition(
            Open,
            &steps,
            t(1),
            None,
            InProgress,
            None,
            None,
            Some(t(12)),
            t(9),
        );
        assert!(matches!(future, Err(TransitionError::Invalid(e)) if e[0].field == "at"));
    }

    #[test]
    fn follow_ups_move_from_due_to_overdue_to_done() {
        assert_eq!(follow_up_state(None, Some(t(1)), t(2)), None);
        assert_eq!(
            follow_up_state(Some(t(5)), None, t(4)),
            Some(FollowUpState::Due)
        );
        assert_eq!(
            follow_up_state(Some(t(5)), None, t(6)),
            Some(FollowUpState::Overdue)
        );
        assert_eq!(
            follow_up_state(Some(t(5)), Some(t(7)), t(8)),
            Some(FollowUpState::Done)
        );
    }
}
