//! What the API shows of the pipeline and what it accepts (never the diesel structs). Money is
//! an integer in the currency's minor unit, as for purchases.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::patch::Patch;

crate::text_enum! {
    /// Where an opportunity stands: `open` (in the pipeline), `won` or `lost` (closed). A
    /// closed opportunity is reopened by setting it `open` again.
    pub enum OpportunityStatus {
        Open = "open",
        Won = "won",
        Lost = "lost",
    }
}

// ---- stages -----------------------------------------------------------------------------

/// A stage of the sales pipeline.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stage {
    /// The stage's key: its id, fixed once created.
    #[schema(example = "proposal")]
    pub key: String,
    /// The stage's name, as shown to people.
    #[schema(example = "Proposal")]
    pub name: String,
    /// Its place in the pipeline: 1 for the first stage, without gaps.
    #[schema(example = 5)]
    pub position: i32,
    /// The chance that an opportunity in this stage is won, in whole percent (0 to 100):
    /// the weight of its amount in the forecast.
    #[schema(example = 50, minimum = 0, maximum = 100)]
    pub probability: i32,
    /// When it was created.
    #[schema(example = "2026-11-23T09:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed (a move of another stage can change its position).
    #[schema(example = "2026-11-23T09:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
}

/// The pipeline's stages, first to last.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stages {
    /// Every stage, by position.
    pub data: Vec<Stage>,
}

/// A stage to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    /// Lower case letters, digits or `_`, starting with a letter, up to 50 characters;
    /// unique. The key of a deleted stage may be used again: the stage comes back with these
    /// values.
    #[schema(
        example = "demo",
        min_length = 1,
        max_length = 50,
        pattern = "^[a-z][a-z0-9_]*$"
    )]
    pub key: String,
    /// 1 to 100 characters.
    #[schema(example = "Demo", min_length = 1, max_length = 100)]
    pub name: String,
    /// Win probability in whole percent, 0 to 100.
    #[schema(example = 40, minimum = 0, maximum = 100)]
    pub probability: i32,
    /// Where to insert it, 1 to the number of stages + 1 (the stages from there on move one
    /// down); last by default.
    #[schema(example = 5, minimum = 1)]
    pub position: Option<i32>,
}

/// Changes to a stage (JSON merge patch: absent fields stay). The key cannot change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StagePatch {
    /// 1 to 100 characters.
    #[serde(default)]
    #[schema(value_type = String, example = "Proposal sent", min_length = 1, max_length = 100)]
    pub name: Patch<String>,
    /// Move it here, 1 to the number of stages; the stages in between shift by one.
    #[serde(default)]
    #[schema(value_type = i32, example = 2, minimum = 1)]
    pub position: Patch<i32>,
    /// Win probability in whole percent, 0 to 100. The forecast uses the current
    /// probability of each open opportunity's stage.
    #[serde(default)]
    #[schema(value_type = i32, example = 60, minimum = 0, maximum = 100)]
    pub probability: Patch<i32>,
}

// ---- opportunities ----------------------------------------------------------------------

/// A possible sale to a customer, moving through the pipeline's stages.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Opportunity {
    /// Opportunity id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub id: Uuid,
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// What is being sold.
    #[schema(example = "50 office chairs")]
    pub title: String,
    /// The expected value of the sale, in minor units of `currency`.
    #[schema(example = 1250000)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Key of the pipeline stage it is in.
    #[schema(example = "proposal")]
    pub stage: String,
    /// The staff member responsible for it.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Uuid,
    /// When it is expected to close.
    #[schema(example = "2026-12-15")]
    pub expected_close_date: NaiveDate,
    /// `open`, `won` or `lost`.
    pub status: OpportunityStatus,
    /// Why it was won or lost (always set when lost).
    #[schema(example = "a competitor was cheaper")]
    pub close_reason: Option<String>,
    /// When it was won or lost; `null` while open.
    #[schema(example = "2026-12-10T15:00:00Z")]
    pub closed_at: Option<DateTime<Utc>>,
    /// The people of the customer organization the sale is worked with: its contacts (see
    /// `/v1/customers/{id}/contacts`), current or past when they were named.
    #[schema(example = json!(["0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b"]))]
    pub contact_ids: Vec<Uuid>,
    /// Whether one of `contact_ids` is, now, a current contact of the customer with the
    /// `decision_maker` buying role: the person with the power to decide is known (the A of
    /// MAN). Updated with every change of their links, roles or liveness, in the same
    /// transaction, so it always follows them.
    #[schema(example = true)]
    pub has_decision_maker: bool,
    /// When its latest advance happened (see `/v1/opportunities/{id}/advances`); `null`
    /// before the first.
    #[schema(example = "2026-11-30T14:00:00Z")]
    pub last_advance_at: Option<DateTime<Utc>>,
    /// Its latest progress of any kind: its creation, a stage move or status change, or an
    /// advance (when it happened). `stalled_days` lists the open ones by it.
    #[schema(example = "2026-11-30T14:00:00Z")]
    pub last_progress_at: DateTime<Utc>,
    /// When it was created.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
}

/// An opportunity to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpportunityInput {
    /// A live customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// 1 to 200 characters.
    #[schema(example = "50 office chairs", min_length = 1, max_length = 200)]
    pub title: String,
    /// The expected value, in minor units of `currency` (1250000 = 12 500.00 EUR), from 0
    /// to 10^13.
    #[schema(example = 1250000, minimum = 0)]
    pub amount: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// Key of a pipeline stage; the first stage by default.
    #[schema(example = "lead")]
    pub stage: Option<String>,
    /// An active staff user; by default the user creating it (integrations must name one).
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Option<Uuid>,
    /// When it is expected to close.
    #[schema(example = "2026-12-15")]
    pub expected_close_date: NaiveDate,
    /// `open` by default; `won` or `lost` records a sale already closed.
    pub status: Option<OpportunityStatus>,
    /// Why it was won or lost: required with `lost`, optional with `won`, refused while
    /// open; up to 500 characters.
    #[schema(example = "best offer on delivery time", max_length = 500)]
    pub close_reason: Option<String>,
    /// When it was won or lost (with those statuses only); not in the future; now by default.
    #[schema(example = "2026-11-20T15:00:00Z")]
    pub closed_at: Option<DateTime<Utc>>,
    /// People the sale is worked with: each a contact (current or past) of the customer
    /// organization (`422` on `contact_ids` otherwise), each once, up to 50.
    #[schema(example = json!(["0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b"]), max_items = 50)]
    pub contact_ids: Option<Vec<Uuid>>,
}

/// Changes to an opportunity (JSON merge patch: absent fields stay, `null` clears). Moving it
/// to another `stage` or `status` is recorded in its history. Setting `status` to `won` or
/// `lost` closes it (`closed_at` now unless given; `lost` needs a `close_reason`); setting it
/// back to `open` reopens it (`closed_at` and `close_reason` are cleared).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpportunityPatch {
    /// 1 to 200 characters.
    #[serde(default)]
    #[schema(value_type = String, example = "60 office chairs", min_length = 1, max_length = 200)]
    pub title: Patch<String>,
    /// In minor units, from 0 to 10^13.
    #[serde(default)]
    #[schema(value_type = i64, example = 1500000, minimum = 0)]
    pub amount: Patch<i64>,
    /// ISO 4217 code, upper case.
    #[serde(default)]
    #[schema(value_type = String, example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Patch<String>,
    /// Key of a pipeline stage.
    #[serde(default)]
    #[schema(value_type = String, example = "negotiation")]
    pub stage: Patch<String>,
    /// An active staff user.
    #[serde(default)]
    #[schema(value_type = Uuid, example = "0193b0a6-0000-7000-8000-000000000002")]
    pub owner_id: Patch<Uuid>,
    /// When it is expected to close.
    #[serde(default)]
    #[schema(value_type = NaiveDate, example = "2027-01-15")]
    pub expected_close_date: Patch<NaiveDate>,
    /// `open`, `won` or `lost`.
    #[serde(default)]
    #[schema(value_type = OpportunityStatus)]
    pub status: Patch<OpportunityStatus>,
    /// Why it was won or lost; required when it becomes `lost`; up to 500 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "a competitor was cheaper", max_length = 500)]
    pub close_reason: Patch<String>,
    /// When it was won or lost, for a closing recorded afterwards; not in the future.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2026-12-10T15:00:00Z")]
    pub closed_at: Patch<DateTime<Utc>>,
    /// The whole new list of people the sale is worked with (`null` or `[]` clears it): each
    /// a contact (current or past) of the customer organization, each once, up to 50.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Uuid>>, example = json!(["0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b"]), max_items = 50)]
    pub contact_ids: Patch<Vec<Uuid>>,
}

/// One entry of an opportunity's history: its creation, a stage move or a status change.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageChange {
    /// Id of this entry.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e81")]
    pub id: Uuid,
    /// The stage before; `null` for the creation.
    #[schema(example = "proposal")]
    pub from_stage: Option<String>,
    /// The stage after.
    #[schema(example = "negotiation")]
    pub to_stage: String,
    /// The status before; `null` for the creation.
    pub from_status: Option<OpportunityStatus>,
    /// The status after.
    pub to_status: OpportunityStatus,
    /// When it happened.
    #[schema(example = "2026-11-24T16:00:00Z")]
    pub changed_at: DateTime<Utc>,
    /// Who made it: `user`, `api_client`, `service` or `system`.
    #[schema(example = "user")]
    pub actor_type: String,
    /// Id of the user or client, or the service's name.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub actor_id: String,
    /// The close reason, when the change closed the opportunity.
    #[schema(example = "a competitor was cheaper")]
    pub reason: Option<String>,
}

/// An opportunity's history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageHistory {
    /// Every entry, oldest first.
    pub data: Vec<StageChange>,
}

crate::text_enum! {
    /// Order of an opportunity list: `expected_close_date` soonest first (the default),
    /// `amount`, `created_at` or `last_progress_at` (longest stalled first); a leading `-`
    /// reverses.
    pub enum OpportunitySort {
        ExpectedCloseDate = "expected_close_date",
        ExpectedCloseDateDesc = "-expected_close_date",
        Amount = "amount",
        AmountDesc = "-amount",
        CreatedAt = "created_at",
        CreatedAtDesc = "-created_at",
        LastProgressAt = "last_progress_at",
        LastProgressAtDesc = "-last_progress_at",
    }
}

/// Filters of an opportunity list, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OpportunitiesQuery {
    /// Only this customer's opportunities. On `/v1/customers/{id}/opportunities` it may be
    /// left out; given, it must be the customer of the path.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Option<Uuid>,
    /// Only this staff member's opportunities.
    #[param(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Option<Uuid>,
    /// A stage key, or several separated by commas.
    #[param(example = "proposal,negotiation")]
    pub stage: Option<String>,
    /// A status, or several separated by commas.
    #[param(example = "open")]
    pub status: Option<String>,
    /// Only opportunities in this currency.
    #[param(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Expected to close on or after this date.
    #[param(example = "2026-10-01")]
    pub expected_close_after: Option<NaiveDate>,
    /// Expected to close before this date.
    #[param(example = "2027-01-01")]
    pub expected_close_before: Option<NaiveDate>,
    /// `false`: only deals with no decision maker known (see `has_decision_maker`), the
    /// ones where the person with the power to decide is still to be found; `true`: only
    /// those with one.
    #[param(example = false)]
    pub has_decision_maker: Option<bool>,
    /// Stalled deals: only open opportunities with no progress (advance, stage move or
    /// status change; creation counts) in the last N days, 1 to 3650: their
    /// `last_progress_at` is more than N × 24 hours ago. Not with a `status` other than
    /// `open`.
    #[param(minimum = 1, maximum = 3650, example = 30)]
    pub stalled_days: Option<u32>,
    /// `expected_close_date` (default), `amount`, `created_at` or `last_progress_at`, each
    /// reversed with a leading `-`.
    #[param(inline)]
    pub sort: Option<OpportunitySort>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

// ---- forecast ---------------------------------------------------------------------------

/// The period of a forecast: `period`, or `from` and `to`; the current calendar quarter by
/// default.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForecastQuery {
    /// A year (`2026`), a quarter (`2026-Q4`) or a month (`2026-11`).
    #[param(example = "2026-Q4")]
    pub period: Option<String>,
    /// First day of the period (instead of `period`; with `to`).
    #[param(example = "2026-10-01")]
    pub from: Option<NaiveDate>,
    /// Last day of the period, included (instead of `period`; with `from`).
    #[param(example = "2026-12-31")]
    pub to: Option<NaiveDate>,
    /// Only this staff member's opportunities (their own forecast).
    #[param(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Option<Uuid>,
    /// Only opportunities in this currency.
    #[param(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
}

/// The forecast figures of one group, in minor units of its currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Figures {
    /// `won_amount` + `weighted_open`.
    #[schema(example = 2125000)]
    pub forecast: i64,
    /// Revenue already closed: Σ amount of the opportunities won in the period.
    #[schema(example = 1500000)]
    pub won_amount: i64,
    /// How many opportunities were won in the period.
    #[schema(example = 2)]
    pub won_count: i64,
    /// Σ (amount × stage probability) / 100 over the open opportunities expected to close in
    /// the period, summed exactly and rounded once, half away from zero.
    #[schema(example = 625000)]
    pub weighted_open: i64,
    /// Σ amount of those open opportunities, unweighted.
    #[schema(example = 1250000)]
    pub open_pipeline: i64,
    /// How many open opportunities are expected to close in the period.
    #[schema(example = 1)]
    pub open_count: i64,
}

/// A forecast against its target (`PUT /v1/pipeline/targets`), in minor units. All `null`
/// when no target is set for the period, the currency and the owner (or the team).
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct TargetFigures {
    /// The amount to sell in the period.
    #[schema(example = 5000000)]
    pub target: Option<i64>,
    /// `target` − `won_amount`: what is left to win; 0 or less once the target is met
    /// (negative: exceeded by that much).
    #[schema(example = 3500000)]
    pub gap_to_target: Option<i64>,
    /// `weighted_open` ÷ `gap_to_target`, rounded to 2 decimals, half away from zero: how
    /// many times the weighted open pipeline covers what is left to win (1.0: exactly).
    /// `null` when there is no target, and when the target is met (nothing left to cover).
    #[schema(example = 0.18)]
    pub coverage: Option<f64>,
    /// Whether `won_amount` has reached the target.
    #[schema(example = false)]
    pub target_met: Option<bool>,
}

/// The forecast of one owner in one currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerForecast {
    /// The owner (staff user).
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Uuid,
    /// Their figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// Against their own target.
    #[serde(flatten)]
    pub target: TargetFigures,
}

/// The forecast of one stage in one currency (won opportunities count in the stage they were
/// won from).
#[derive(Debug, Serialize, ToSchema)]
pub struct StageForecast {
    /// The stage's key.
    #[schema(example = "proposal")]
    pub stage: String,
    /// The stage's win probability now, in percent.
    #[schema(example = 50)]
    pub probability: i32,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The forecast in one currency (currencies are never added together).
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyForecast {
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// The totals.
    #[serde(flatten)]
    pub figures: Figures,
    /// Against the team-wide target (with `owner_id`: that owner's target).
    #[serde(flatten)]
    pub target: TargetFigures,
    /// Sales outside the funnel (漏斗外销售额): Σ net amount (amount − refunded) of the
    /// purchases made in the period in this currency that are not linked to a won
    /// opportunity (no `opportunity_id`, or one that is open, lost or deleted). With
    /// `owner_id`: those of the customers that owner manages as account manager.
    #[schema(example = 120000)]
    pub outside_funnel_sales: i64,
    /// Per owner, highest forecast first (owners with a target and nothing in the period
    /// too).
    pub by_owner: Vec<OwnerForecast>,
    /// Per stage, in pipeline order (stages deleted since come last).
    pub by_stage: Vec<StageForecast>,
}

/// The sales forecast of a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Forecast {
    /// The period as asked (`2026-Q4`), or `null` when given as `from` and `to`.
    #[schema(example = "2026-Q4")]
    pub period: Option<String>,
    /// First day of the period.
    #[schema(example = "2026-10-01")]
    pub from: NaiveDate,
    /// Last day of the period (included).
    #[schema(example = "2026-12-31")]
    pub to: NaiveDate,
    /// One entry per currency with an opportunity, a purchase or a target in the period, by
    /// currency code.
    pub currencies: Vec<CurrencyForecast>,
}

// ---- settings ---------------------------------------------------------------------------

/// The pipeline's settings.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PipelineSettings {
    /// The credit rule: the key of the stage past which an opportunity of a customer whose
    /// MAN `qualification.money` is false (an `m` prospect) needs that customer's `credit`
    /// grade. Moving such an opportunity into a later stage, creating it there or winning
    /// it without one is a `422` naming the rule. `null`: no such rule. A stage named here
    /// cannot be deleted.
    #[schema(example = "qualified")]
    pub credit_required_after: Option<String>,
    /// When they last changed.
    #[schema(example = "2026-12-04T09:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 2)]
    pub version: i64,
}

/// The pipeline's settings, replaced whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSettingsInput {
    /// The key of a live stage, or `null` (the default when left out) for no credit rule.
    #[serde(default)]
    #[schema(example = "qualified")]
    pub credit_required_after: Option<String>,
}

// ---- targets ----------------------------------------------------------------------------

/// A sales target: what an owner (or the whole team) should sell in a period, in a
/// currency.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Target {
    /// Target id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e90")]
    pub id: Uuid,
    /// The owner (staff user) it is for; `null`: the whole team.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Option<Uuid>,
    /// A year (`2026`), a quarter (`2026-Q4`) or a month (`2026-11`).
    #[schema(example = "2026-Q4")]
    pub period: String,
    /// First day of the period.
    #[schema(example = "2026-10-01")]
    pub from: NaiveDate,
    /// Last day of the period (included).
    #[schema(example = "2026-12-31")]
    pub to: NaiveDate,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// The amount to sell, in minor units of `currency`.
    #[schema(example = 5000000)]
    pub amount: i64,
    /// When it was first set.
    #[schema(example = "2026-10-01T08:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-10-01T08:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
}

/// A target to set: the one of this owner (or the team), period and currency is created or
/// replaced.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetInput {
    /// A year (`2026`), a quarter (`2026-Q4`) or a month (`2026-11`), 1900 to 2999. The
    /// forecast of exactly this period shows it.
    #[schema(example = "2026-Q4")]
    pub period: String,
    /// ISO 4217 code, upper case.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// An active staff user; left out or `null`: the team-wide target.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub owner_id: Option<Uuid>,
    /// The amount to sell, in minor units, 0 to 10^13.
    #[schema(example = 5000000, minimum = 0)]
    pub amount: i64,
}

/// Filters of the target list, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TargetsQuery {
    /// Only the targets of exactly this period (`2026`, `2026-Q4`, `2026-11`).
    #[param(example = "2026-Q4")]
    pub period: Option<String>,
    /// Only targets in this currency.
    #[param(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Only this owner's targets, or `team` for the team-wide ones.
    #[param(example = "team")]
    pub owner_id: Option<String>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

// ---- advances ---------------------------------------------------------------------------

/// One advance of a deal (销售进展): something that happened and moved it on.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Advance {
    /// Advance id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e91")]
    pub id: Uuid,
    /// The opportunity.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub opportunity_id: Uuid,
    /// `demo`, `met_decision_maker`, `trial`, `budget_confirmed`, `proposal`,
    /// `joint_plan`, or a custom kind `custom:<name>`.
    #[schema(example = "demo")]
    pub kind: String,
    /// When it happened.
    #[schema(example = "2026-11-30T14:00:00Z")]
    pub occurred_at: DateTime<Utc>,
    /// What happened, in a few words.
    #[schema(example = "demo to the purchasing team, they want a trial")]
    pub note: Option<String>,
    /// Who recorded it: `user`, `api_client`, `service` or `system`.
    #[schema(example = "user")]
    pub actor_type: String,
    /// Id of the user or client, or the service's name.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub actor_id: String,
    /// When it was recorded.
    #[schema(example = "2026-11-30T15:00:00Z")]
    pub created_at: DateTime<Utc>,
}

/// An advance to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdvanceInput {
    /// One of `demo`, `met_decision_maker`, `trial`, `budget_confirmed`, `proposal`,
    /// `joint_plan`; or a kind of your own as `custom:<name>`, the name 1 to 50 lower case
    /// letters, digits or `_`, starting with a letter (`custom:site_visit`).
    #[schema(
        example = "demo",
        pattern = "^(demo|met_decision_maker|trial|budget_confirmed|proposal|joint_plan|custom:[a-z][a-z0-9_]{0,49})$"
    )]
    pub kind: String,
    /// When it happened: not in the future, not before 1900; now by default.
    #[schema(example = "2026-11-30T14:00:00Z")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// What happened, up to 1000 characters.
    #[schema(
        example = "demo to the purchasing team, they want a trial",
        max_length = 1000
    )]
    pub note: Option<String>,
}

/// An opportunity's advances, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct Advances {
    /// Every advance, by `occurred_at`, oldest first.
    pub data: Vec<Advance>,
}
