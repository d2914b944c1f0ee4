//! What the API shows of an interaction and what it accepts (never the diesel structs).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::{Channel, ChurnCause};
use crate::http::patch::Patch;

crate::text_enum! {
    /// Who started the contact: the customer (`inbound`) or the company (`outbound`).
    pub enum Direction {
        Inbound = "inbound",
        Outbound = "outbound",
    }
}

crate::text_enum! {
    /// What the contact was about (DOMAIN.md section 3). A `complaint` carries a severity and
    /// a status workflow.
    pub enum InteractionKind {
        Inquiry = "inquiry",
        Purchase = "purchase",
        Complaint = "complaint",
        Feedback = "feedback",
        Callback = "callback",
        Service = "service",
        Promotion = "promotion",
        Meeting = "meeting",
        Note = "note",
    }
}

crate::text_enum! {
    /// How serious a complaint is, lowest to highest.
    pub enum Severity {
        Low = "low",
        Medium = "medium",
        High = "high",
        Critical = "critical",
    }
}

crate::text_enum! {
    /// Where a complaint is in its workflow: `open` → `in_progress` → `resolved` → `closed`;
    /// `resolved` and `closed` complaints can be reopened (back to `open`).
    pub enum ComplaintStatus {
        Open = "open",
        InProgress = "in_progress",
        Resolved = "resolved",
        Closed = "closed",
    }
}

crate::text_enum! {
    /// Where a follow-up stands: `due` (not done, due time still ahead), `overdue` (not
    /// done, due time passed), `done` (the contact took place).
    pub enum FollowUpState {
        Due = "due",
        Overdue = "overdue",
        Done = "done",
    }
}

/// One contact with a customer (or one scheduled), with its complaint workflow and follow-up
/// when it has them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Interaction {
    /// Interaction id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e60")]
    pub id: Uuid,
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// How the contact took place.
    pub channel: Channel,
    /// Who started it.
    pub direction: Direction,
    /// What it was about.
    pub kind: InteractionKind,
    /// One line summary.
    #[schema(example = "Parcel arrived damaged")]
    pub subject: Option<String>,
    /// What was said and learnt (needs, evaluations, what is lacking).
    #[schema(example = "Box crushed on one side; the vase inside is broken.")]
    pub notes: Option<String>,
    /// When the contact took place; `null` while a scheduled follow-up is not done.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// How long it took, in seconds.
    #[schema(example = 420)]
    pub duration_seconds: Option<i32>,
    /// The staff member who had the contact.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub staff_id: Option<Uuid>,
    /// How it ended.
    #[schema(example = "replacement sent")]
    pub outcome: Option<String>,
    /// For a follow-up: when it is due.
    #[schema(example = "2026-11-25T09:00:00Z")]
    pub due_at: Option<DateTime<Utc>>,
    /// For a follow-up: where it stands now; `null` for an interaction that was not scheduled.
    pub follow_up_state: Option<FollowUpState>,
    /// The staff member a complaint or follow-up is assigned to.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000002")]
    pub assignee_id: Option<Uuid>,
    /// The purchase this interaction follows (a complaint about it, a thank-you call).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e70")]
    pub purchase_id: Option<Uuid>,
    /// Who was spoken to at an organization customer: one of its contacts (an individual
    /// customer), current or past.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub contact_id: Option<Uuid>,
    /// Complaints only: how serious it is.
    pub severity: Option<Severity>,
    /// Complaints only: what it was about, from the list of reasons customers are lost for.
    #[schema(value_type = Option<ChurnCause>, example = "product_defect")]
    pub cause: Option<ChurnCause>,
    /// Complaints only: where it is in the workflow.
    pub status: Option<ComplaintStatus>,
    /// Complaints only: the statuses it may move to next.
    pub next_statuses: Vec<ComplaintStatus>,
    /// Complaints only: how it was resolved.
    #[schema(example = "Replacement vase sent by express; apologised.")]
    pub resolution: Option<String>,
    /// Complaints only: when work on it started (first time).
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub in_progress_at: Option<DateTime<Utc>>,
    /// Complaints only: when it was (last) resolved.
    #[schema(example = "2026-11-24T16:00:00Z")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Complaints only: when it was closed.
    #[schema(example = "2026-11-30T08:00:00Z")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Complaints only: when it was last reopened.
    #[schema(example = "2026-11-24T18:00:00Z")]
    pub reopened_at: Option<DateTime<Utc>>,
    /// Complaints only: how many times it was reopened.
    #[schema(example = 0)]
    pub reopen_count: Option<i32>,
    /// Complaints only: hours from `occurred_at` (when it was opened) to `resolved_at`, once
    /// resolved; the time to resolve.
    #[schema(example = 30.5)]
    pub resolution_hours: Option<f64>,
    /// Complaints only: hours it has been waiting since it was opened, while unresolved.
    #[schema(example = 4.25)]
    pub age_hours: Option<f64>,
    /// When it was recorded.
    #[schema(example = "2026-11-23T09:35:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-11-23T09:35:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
    /// When it was deleted, if it was (visible to callers with `interactions:delete`).
    #[schema(example = json!(null))]
    pub deleted_at: Option<DateTime<Utc>>,
}

/// An interaction to record, or changes to one (JSON merge patch: absent fields stay as they
/// are, `null` clears). The kind cannot change once recorded; a complaint's status moves
/// through `POST /v1/interactions/{id}/status`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InteractionInput {
    /// Required on creation.
    #[serde(default)]
    #[schema(value_type = Channel)]
    pub channel: Patch<Channel>,
    /// Required on creation.
    #[serde(default)]
    #[schema(value_type = Direction)]
    pub direction: Patch<Direction>,
    /// Required on creation; cannot change afterwards.
    #[serde(default)]
    #[schema(value_type = InteractionKind)]
    pub kind: Patch<InteractionKind>,
    /// Up to 200 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Parcel arrived damaged", max_length = 200)]
    pub subject: Patch<String>,
    /// Up to 20 000 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Box crushed on one side; the vase inside is broken.", max_length = 20000)]
    pub notes: Patch<String>,
    /// When the contact took place; not in the future. Required unless `due_at` schedules a
    /// follow-up; setting it on a follow-up marks it done.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2026-11-23T09:30:00Z")]
    pub occurred_at: Patch<DateTime<Utc>>,
    /// 0 to 86 400 seconds.
    #[serde(default)]
    #[schema(value_type = Option<i32>, example = 420, minimum = 0, maximum = 86400)]
    pub duration_seconds: Patch<i32>,
    /// An active staff user; by default the user recording the interaction.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-0000-7000-8000-000000000001")]
    pub staff_id: Patch<Uuid>,
    /// Up to 500 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "replacement sent", max_length = 500)]
    pub outcome: Patch<String>,
    /// Schedules a follow-up due at this time.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2026-11-25T09:00:00Z")]
    pub due_at: Patch<DateTime<Utc>>,
    /// An active staff user to whom a complaint or follow-up is assigned.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-0000-7000-8000-000000000002")]
    pub assignee_id: Patch<Uuid>,
    /// The purchase this interaction follows: one of the same customer's.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e70")]
    pub purchase_id: Patch<Uuid>,
    /// Who was spoken to at an organization customer: one of its contacts, current or past
    /// (`422` otherwise).
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub contact_id: Patch<Uuid>,
    /// Complaints only, and required for them.
    #[serde(default)]
    #[schema(value_type = Option<Severity>)]
    pub severity: Patch<Severity>,
    /// Complaints only, optional: what it was about (`service_quality`, `product_defect`,
    /// `communication`, `price`, `competitor`, `moved_away`, `other`), the list of reasons
    /// customers are lost for.
    #[serde(default)]
    #[schema(value_type = Option<ChurnCause>, example = "product_defect")]
    pub cause: Patch<ChurnCause>,
    /// Complaints only: how it was resolved, up to 5 000 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Replacement vase sent by express; apologised.", max_length = 5000)]
    pub resolution: Patch<String>,
}

/// A step of a complaint's workflow.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChangeInput {
    /// The new status; it must be one of the complaint's `next_statuses`.
    pub status: ComplaintStatus,
    /// How it was resolved: required to move to `resolved` unless the complaint already
    /// has one; up to 5 000 characters.
    #[schema(
        example = "Replacement vase sent by express; apologised.",
        max_length = 5000
    )]
    pub resolution: Option<String>,
    /// Why, for the history; up to 500 characters.
    #[schema(
        example = "customer called back: the replacement is broken too",
        max_length = 500
    )]
    pub note: Option<String>,
    /// When the step happened, for steps recorded afterwards: not in the future, not before
    /// the previous step. Now by default.
    #[schema(example = "2026-11-24T16:00:00Z")]
    pub at: Option<DateTime<Utc>>,
}

/// Marks a follow-up done: the scheduled contact took place.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    /// When it took place; now by default; not in the future.
    #[schema(example = "2026-11-25T09:10:00Z")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// How it ended, up to 500 characters.
    #[schema(example = "customer happy with the replacement", max_length = 500)]
    pub outcome: Option<String>,
    /// Notes to record (replace the current ones), up to 20 000 characters.
    #[schema(
        example = "Called back; the new vase arrived intact.",
        max_length = 20000
    )]
    pub notes: Option<String>,
    /// How long it took, 0 to 86 400 seconds.
    #[schema(example = 180, minimum = 0, maximum = 86400)]
    pub duration_seconds: Option<i32>,
}

/// One step of a complaint's workflow, as recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChange {
    /// Id of this entry.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e61")]
    pub id: Uuid,
    /// The status before; `null` for the opening.
    pub from: Option<ComplaintStatus>,
    /// The status after.
    pub to: ComplaintStatus,
    /// When it happened.
    #[schema(example = "2026-11-24T16:00:00Z")]
    pub changed_at: DateTime<Utc>,
    /// Who made it: `user`, `api_client`, `service` or `system`.
    #[schema(example = "user")]
    pub actor_type: String,
    /// Id of the user or client, or the service's name.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub actor_id: String,
    /// Why, as given with the change.
    #[schema(example = "customer called back")]
    pub note: Option<String>,
}

/// A complaint's workflow history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusHistory {
    /// Every step, oldest first.
    pub data: Vec<StatusChange>,
}

crate::text_enum! {
    /// Order of an interaction list: by `occurred_at` (for a pending follow-up, its
    /// `due_at`), `-occurred_at` newest first (the default).
    pub enum InteractionSort {
        OccurredAt = "occurred_at",
        OccurredAtDesc = "-occurred_at",
    }
}

/// Filters of an interaction list, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InteractionsQuery {
    /// Only this customer's interactions. On `/v1/customers/{id}/interactions` it may be
    /// left out; given, it must be the customer of the path.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Option<Uuid>,
    /// One channel, or several separated by commas.
    #[param(example = "phone,email")]
    pub channel: Option<String>,
    /// One kind, or several separated by commas.
    #[param(example = "complaint")]
    pub kind: Option<String>,
    /// Only inbound or only outbound contacts.
    pub direction: Option<Direction>,
    /// Only contacts of this staff member.
    #[param(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub staff_id: Option<Uuid>,
    /// Only complaints and follow-ups assigned to this staff member.
    #[param(example = "0193b0a6-0000-7000-8000-000000000002")]
    pub assignee_id: Option<Uuid>,
    /// Only interactions that follow this purchase.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e70")]
    pub purchase_id: Option<Uuid>,
    /// Complaints in this status, or several separated by commas.
    #[param(example = "open,in_progress")]
    pub status: Option<String>,
    /// Complaints of this severity, or several separated by commas.
    #[param(example = "high,critical")]
    pub severity: Option<String>,
    /// Occurred (or, pending, due) at or after (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub occurred_after: Option<DateTime<Utc>>,
    /// Occurred (or, pending, due) before (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub occurred_before: Option<DateTime<Utc>>,
    /// Words that must all appear in the subject or notes (any case; `"quoted phrase"`,
    /// `or` and `-word` work as in a web search).
    #[param(example = "damaged parcel")]
    pub q: Option<String>,
    /// `-occurred_at` (default) or `occurred_at`.
    #[param(inline)]
    pub sort: Option<InteractionSort>,
    /// Deleted interactions too (`include`) or only them (`only`); these need
    /// `interactions:delete`.
    #[param(inline)]
    pub deleted: Option<crate::customers::json::DeletedFilter>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

crate::text_enum! {
    /// Order of the complaint list: `oldest` first (the default) or `severity` (most severe
    /// first, then oldest).
    pub enum ComplaintSort {
        Oldest = "oldest",
        Severity = "severity",
    }
}

/// Filters of the complaint list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplaintsQuery {
    /// Statuses separated by commas; `open,in_progress` (the unresolved) by default.
    #[param(example = "open,in_progress")]
    pub status: Option<String>,
    /// Severities separated by commas.
    #[param(example = "high,critical")]
    pub severity: Option<String>,
    /// Causes separated by commas (`service_quality`, `product_defect`, `communication`,
    /// `price`, `competitor`, `moved_away`, `other`): only complaints with one of them.
    #[param(example = "product_defect,service_quality")]
    pub cause: Option<String>,
    /// Only complaints assigned to this staff member (`me`: the caller).
    #[param(example = "0193b0a6-0000-7000-8000-000000000002")]
    pub assignee_id: Option<String>,
    /// Only this customer's complaints.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Option<Uuid>,
    /// `oldest` (default) or `severity`.
    #[param(inline)]
    pub sort: Option<ComplaintSort>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The period of the complaint statistics.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplaintStatsQuery {
    /// Complaints resolved at or after (RFC 3339), before `to`; 90 days before `to` by
    /// default.
    #[param(example = "2026-10-01T00:00:00Z")]
    pub from: Option<DateTime<Utc>>,
    /// Complaints resolved before (RFC 3339), after `from`; now by default.
    #[param(example = "2026-11-01T00:00:00Z")]
    pub to: Option<DateTime<Utc>>,
}

/// Time to resolve over a group of complaints.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResolutionTimes {
    /// Complaints resolved in the period.
    #[schema(example = 12)]
    pub n: i64,
    /// Median hours from opening to resolution (`null` when `n` is 0).
    #[schema(example = 20.5)]
    pub median_hours: Option<f64>,
    /// 90th percentile of the hours (interpolated between the nearest values).
    #[schema(example = 70.2)]
    pub p90_hours: Option<f64>,
    /// Mean hours.
    #[schema(example = 26.0)]
    pub mean_hours: Option<f64>,
}

/// Time to resolve for one severity.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeverityResolution {
    /// The severity.
    pub severity: Severity,
    /// The times.
    #[serde(flatten)]
    pub times: ResolutionTimes,
}

/// Time to resolve for one assignee.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssigneeResolution {
    /// The assignee; `null` for complaints resolved without one.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000002")]
    pub assignee_id: Option<Uuid>,
    /// The times.
    #[serde(flatten)]
    pub times: ResolutionTimes,
}

/// Unresolved complaints of one severity now.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenComplaints {
    /// The severity.
    pub severity: Severity,
    /// How many are `open` or `in_progress`.
    #[schema(example = 3)]
    pub n: i64,
    /// When the oldest of them was opened.
    #[schema(example = "2026-11-20T08:00:00Z")]
    pub oldest_opened_at: Option<DateTime<Utc>>,
}

/// How fast complaints get resolved: over the complaints resolved in the period (and still
/// resolved or closed), hours from opening (`occurred_at`) to the last resolution. Median and
/// p90 are `percentile_cont`: interpolated between the two nearest values.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComplaintStats {
    /// Start of the period.
    #[schema(example = "2026-08-25T00:00:00Z")]
    pub from: DateTime<Utc>,
    /// End of the period (excluded).
    #[schema(example = "2026-11-23T00:00:00Z")]
    pub to: DateTime<Utc>,
    /// Over all complaints resolved in the period.
    pub overall: ResolutionTimes,
    /// Per severity, most severe first (severities without resolutions are left out).
    pub by_severity: Vec<SeverityResolution>,
    /// Per assignee, most resolutions first.
    pub by_assignee: Vec<AssigneeResolution>,
    /// Unresolved complaints now, per severity, most severe first.
    pub open: Vec<OpenComplaints>,
    /// Complaints opened in the period (by `occurred_at`), per cause, most first (ties in
    /// the list's order, those without a cause last); causes without complaints are left out.
    pub by_cause: Vec<CauseCount>,
}

/// How many complaints had one cause.
#[derive(Debug, Serialize, ToSchema)]
pub struct CauseCount {
    /// The cause; `null` for complaints recorded without one.
    #[schema(value_type = Option<ChurnCause>, example = "product_defect")]
    pub cause: Option<ChurnCause>,
    /// How many complaints.
    #[schema(example = 4)]
    pub n: i64,
}

/// Filters of a follow-up work list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowUpsQuery {
    /// The staff member whose list it is: a user id, or `me` for the caller (a staff user's
    /// token only); everyone's by default.
    #[param(
        example = "me",
        pattern = "^(me|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
    )]
    pub assignee: Option<String>,
    /// `due`, `overdue` or `done`; by default both `due` and `overdue` (everything not done).
    #[param(inline)]
    pub state: Option<FollowUpState>,
    /// Only this customer's follow-ups.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Option<Uuid>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An interaction as a CSV row (exports write these columns, imports read them).
pub const COLUMNS: &[crate::http::tabular::Column] = {
    use crate::http::tabular::{Kind::*, r, w};
    &[
        r("id", Text),
        w("customer_id", Text),
        w("channel", Text),
        w("direction", Text),
        w("kind", Text),
        w("subject", Text),
        w("notes", Text),
        w("occurred_at", Text),
        w("duration_seconds", Int),
        w("staff_id", Text),
        w("outcome", Text),
        w("due_at", Text),
        r("follow_up_state", Text),
        w("assignee_id", Text),
        w("purchase_id", Text),
        w("contact_id", Text),
        w("severity", Text),
        w("cause", Text),
        r("status", Text),
        r("next_statuses", List),
        w("resolution", Text),
        r("in_progress_at", Text),
        r("resolved_at", Text),
        r("closed_at", Text),
        r("reopened_at", Text),
        r("reopen_count", Int),
        r("resolution_hours", Float),
        r("age_hours", Float),
        r("created_at", Text),
        r("updated_at", Text),
        r("version", Int),
        r("deleted_at", Text),
    ]
};
