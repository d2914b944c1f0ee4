//! The loyalty programme as the API shows and accepts it: configuration, points, tiers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

crate::text_enum! {
    /// How earned points are rounded to whole points: `down`, `nearest` (half up) or `up`.
    pub enum Rounding {
        Down = "down",
        Nearest = "nearest",
        Up = "up",
    }
}

crate::text_enum! {
    /// When earned points expire: `never`, `after_days` (N days after they were earned),
    /// `end_of_month` or `end_of_year` (of the month or year they were earned in, UTC).
    pub enum ExpiryPolicy {
        Never = "never",
        AfterDays = "after_days",
        EndOfMonth = "end_of_month",
        EndOfYear = "end_of_year",
    }
}

crate::text_enum! {
    /// What qualifies a customer for a tier over the qualification window: `points_earned`
    /// (points, before redemptions) or `amount_spent` (minor units, net of refunds, in the
    /// programme's currency).
    pub enum QualificationBasis {
        PointsEarned = "points_earned",
        AmountSpent = "amount_spent",
    }
}

crate::text_enum! {
    /// When a customer whose qualifying sum fell below their tier's threshold moves down:
    /// `window_end` (at the next evaluation), `grace_period` (once the grace period has
    /// passed below the threshold) or `never`.
    pub enum DowngradePolicy {
        WindowEnd = "window_end",
        GracePeriod = "grace_period",
        Never = "never",
    }
}

/// How points are earned on a purchase in the programme's currency: `points` per
/// `per_amount` minor units, times the tier's multiplier, rounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarnRule {
    /// Points earned per `per_amount`, 1 to 1 000 000.
    #[schema(example = 1, minimum = 1)]
    pub points: i32,
    /// Minor units of the currency that earn `points`, 1 to 100 000 000 (100: per euro).
    #[schema(example = 100, minimum = 1)]
    pub per_amount: i64,
    /// How fractions of a point are rounded.
    pub rounding: Rounding,
}

/// When points expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Expiry {
    /// The policy.
    pub policy: ExpiryPolicy,
    /// For `after_days` (and only then): 1 to 3650 days.
    #[schema(example = 365, minimum = 1)]
    pub days: Option<i32>,
}

/// What qualifies a customer for a tier.
/// (Named `TierQualification` in the spec: `Qualification` is the customers' MAN grading.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = TierQualification)]
#[serde(deny_unknown_fields)]
pub struct Qualification {
    /// Points earned or amount spent.
    pub basis: QualificationBasis,
    /// The rolling window, 1 to 120 months back from the evaluation.
    #[schema(example = 12, minimum = 1)]
    pub months: i32,
}

/// When a customer moves down a tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Downgrade {
    /// The policy.
    pub policy: DowngradePolicy,
    /// For `grace_period` (and only then): 1 to 365 days.
    #[schema(example = 30, minimum = 1)]
    pub grace_days: Option<i32>,
}

/// The programme's configuration, as sent with `PUT` (every part required).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgramInput {
    /// ISO 4217 code of the purchases that earn points and count as amount spent.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// How points are earned.
    pub earn: EarnRule,
    /// When points expire.
    pub expiry: Expiry,
    /// What qualifies for a tier.
    pub qualification: Qualification,
    /// When customers move down.
    pub downgrade: Downgrade,
}

/// The loyalty programme: its configuration and version. Answered as [`ProgramView`].
#[derive(Debug, Clone, Serialize)]
#[serde(into = "ProgramView")]
pub struct Program {
    pub config: ProgramInput,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The loyalty programme, as answered. Its fields are spelt out rather than composed from
/// `ProgramInput`: the input refuses unknown fields, so a schema built on it would refuse
/// the very answer it describes.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Program)]
pub struct ProgramView {
    /// ISO 4217 code of the purchases that earn points and count as amount spent.
    #[schema(example = "EUR")]
    pub currency: String,
    /// How points are earned.
    pub earn: EarnRule,
    /// When points expire.
    pub expiry: Expiry,
    /// What qualifies for a tier.
    pub qualification: Qualification,
    /// When customers move down.
    pub downgrade: Downgrade,
    /// When the configuration (programme or tiers) last changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
    /// The configuration's version (programme and tiers); the `ETag` is this in quotes.
    #[schema(example = 3)]
    pub version: i64,
}

impl From<Program> for ProgramView {
    fn from(program: Program) -> Self {
        let ProgramInput {
            currency,
            earn,
            expiry,
            qualification,
            downgrade,
        } = program.config;
        Self {
            currency,
            earn,
            expiry,
            qualification,
            downgrade,
            updated_at: program.updated_at,
            version: program.version,
        }
    }
}

/// A tier of the programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Stable key: lower case letters, digits and `_`, starting with a letter, up to 50.
    #[schema(
        example = "gold",
        min_length = 1,
        max_length = 50,
        pattern = "^[a-z][a-z0-9_]*$"
    )]
    pub key: String,
    /// Display name, 1 to 100 characters.
    #[schema(example = "Gold", min_length = 1, max_length = 100)]
    pub name: String,
    /// The qualifying sum (points or minor units, by the programme's basis) that reaches
    /// the tier; the first tier's is 0, each next one higher.
    #[schema(example = 5000, minimum = 0)]
    pub threshold: i64,
    /// Points multiplier in percent: 150 earns one and a half times the base points.
    #[schema(example = 150, minimum = 0, maximum = 1000)]
    pub multiplier_percent: i32,
    /// What members of the tier get, up to 20 lines of up to 200 characters.
    #[schema(example = json!(["free delivery", "birthday voucher"]), max_items = 20)]
    pub benefits: Vec<String>,
}

/// The ordered tiers, lowest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    /// Every tier, lowest first (up to 20; none: the programme has no tiers).
    #[schema(max_items = 20)]
    pub tiers: Vec<Tier>,
}

crate::text_enum! {
    /// What a ledger entry records: `earn` (a purchase), `redeem`, `adjust` (by a manager,
    /// with a reason), `expire` (points that lapsed) or `reverse` (a refund).
    pub enum EntryKind {
        Earn = "earn",
        Redeem = "redeem",
        Adjust = "adjust",
        Expire = "expire",
        Reverse = "reverse",
    }
}

crate::text_enum! {
    /// Which way a tier change went: `up`, `down`, or `moved` (the tier left the programme).
    pub enum ChangeDirection {
        Up = "up",
        Down = "down",
        Moved = "moved",
    }
}

crate::text_enum! {
    /// Why a tier changed: `qualified` (the qualifying sum reached the tier), `below_threshold`
    /// (it fell below the tier's threshold; policy `window_end`), `grace_period_ended` (it
    /// stayed below through the grace period) or `tier_removed` (the tier left the programme).
    pub enum ChangeReason {
        Qualified = "qualified",
        BelowThreshold = "below_threshold",
        GracePeriodEnded = "grace_period_ended",
        TierRemoved = "tier_removed",
    }
}

/// One entry of a member's points ledger.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerEntry {
    /// The entry's id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e60")]
    pub id: Uuid,
    pub kind: EntryKind,
    /// Points added (positive) or taken (negative).
    #[schema(example = -150)]
    pub points: i64,
    /// The lot the points went into or came from (for a credit: the entry itself).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e61")]
    pub lot_id: Uuid,
    /// When the lot's points expire; none: never.
    #[schema(example = "2027-12-01T00:00:00Z")]
    pub expires_at: Option<DateTime<Utc>>,
    /// The purchase that earned them (`earn`) or was refunded (`reverse`).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e62")]
    pub purchase_id: Option<Uuid>,
    /// The entries one request wrote share it (a redemption across three lots: three).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e63")]
    pub posting_id: Uuid,
    /// Why (adjustments, redemptions with a note, refund reversals).
    #[schema(example = "goodwill after complaint")]
    pub reason: Option<String>,
    /// When it took effect (for `earn`: when the purchase occurred; for `expire`: when the
    /// lot lapsed).
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub occurred_at: DateTime<Utc>,
    /// When it was written.
    #[schema(example = "2026-11-23T09:30:01Z")]
    pub created_at: DateTime<Utc>,
}

/// What a points request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PointsRequestKind {
    /// Spend points (`points` positive).
    Redeem,
    /// Add (positive) or take (negative) points, with a `reason`.
    Adjust,
}

/// A redemption or an adjustment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointsInput {
    pub kind: PointsRequestKind,
    /// For `redeem`: 1 or more. For `adjust`: not 0; negative takes points away.
    #[schema(example = 150)]
    pub points: i64,
    /// Why: required for `adjust`, optional for `redeem` (1 to 500 characters).
    #[schema(example = "voucher V-1042", min_length = 1, max_length = 500)]
    pub reason: Option<String>,
}

/// What a points request wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Posting {
    /// The id its entries share.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e63")]
    pub id: Uuid,
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e64")]
    pub customer_id: Uuid,
    pub kind: EntryKind,
    /// The points moved in all (negative: taken).
    #[schema(example = -150)]
    pub points: i64,
    /// The balance after it.
    #[schema(example = 1084)]
    pub balance: i64,
    /// One entry per lot touched.
    pub entries: Vec<LedgerEntry>,
}

/// Paging and filters of a ledger.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LedgerQuery {
    /// Only these kinds, comma separated (`earn,reverse`).
    #[param(example = "earn,reverse")]
    pub kind: Option<String>,
    /// Entries per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The tier a member holds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HeldTier {
    /// The tier's key.
    #[schema(example = "gold")]
    pub key: String,
    /// The tier's name, benefits and multiplier (none when the tier has left the programme).
    pub tier: Option<Tier>,
    /// Since when (none: not yet a member).
    #[schema(example = "2026-03-14T10:00:00Z")]
    pub since: Option<DateTime<Utc>>,
}

/// Why a member is where they are: the qualifying sum over the window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Qualifying {
    pub basis: QualificationBasis,
    /// Points earned, or minor units spent, in the window.
    #[schema(example = 5200)]
    pub sum: i64,
    /// The window's start (excluded): the evaluation's time less the programme's months.
    #[schema(example = "2025-11-23T09:30:00Z")]
    pub window_from: DateTime<Utc>,
    /// The window's end (included): now.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub window_to: DateTime<Utc>,
    /// The same, in words.
    #[schema(example = "5200 points earned from 2025-11-23 to 2026-11-23 reach gold (5000)")]
    pub explanation: String,
}

/// What it takes to reach the next tier.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NextTier {
    /// The next tier's key.
    #[schema(example = "platinum")]
    pub key: String,
    /// Its threshold.
    #[schema(example = 10000)]
    pub threshold: i64,
    /// What the qualifying sum lacks.
    #[schema(example = 4800)]
    pub missing: i64,
}

/// What it takes to keep the tier held.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Keep {
    /// The threshold to stay above.
    #[schema(example = 5000)]
    pub threshold: i64,
    /// What the qualifying sum lacks now (0: it is met).
    #[schema(example = 0)]
    pub shortfall: i64,
    /// Until when the contributions already in the window keep the sum at the threshold;
    /// none: the sum is below it already, or the threshold is 0.
    #[schema(example = "2027-05-02T14:10:00Z")]
    pub secure_until: Option<DateTime<Utc>>,
    /// The programme's downgrade policy.
    pub downgrade: DowngradePolicy,
    /// Since when an evaluation has found the sum below the threshold.
    #[schema(example = "2026-11-01T02:00:00Z")]
    pub below_since: Option<DateTime<Utc>>,
    /// Under `grace_period`: the first evaluation after this moves the member down unless
    /// the sum is back at the threshold.
    #[schema(example = "2026-12-01T02:00:00Z")]
    pub downgrade_after: Option<DateTime<Utc>>,
}

/// Points lapsing at one time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ExpiringPoints {
    /// When they lapse.
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub expires_at: DateTime<Utc>,
    /// How many.
    #[schema(example = 120)]
    pub points: i64,
}

/// A customer's standing in the loyalty programme.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LoyaltyStatus {
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e64")]
    pub customer_id: Uuid,
    /// When the customer became a member (their first points or purchase in the
    /// programme's currency); none: not yet.
    #[schema(example = "2026-03-14T10:00:00Z")]
    pub member_since: Option<DateTime<Utc>>,
    /// Points available now.
    #[schema(example = 1234)]
    pub balance: i64,
    /// The tier held (none: the programme has no tiers).
    pub tier: Option<HeldTier>,
    pub qualifying: Qualifying,
    /// None on the highest tier.
    pub next_tier: Option<NextTier>,
    /// None without a tier.
    pub keep: Option<Keep>,
    /// Points lapsing within `expiring_days`, soonest first.
    pub expiring: Vec<ExpiringPoints>,
    /// The tier history, oldest first.
    pub history: Vec<TierChange>,
}

/// Query of a loyalty status.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// How far ahead to list expiring points, 1 to 3650 days (default 90).
    #[param(example = 90, minimum = 1, maximum = 3650)]
    pub expiring_days: Option<i32>,
}

/// A change of tier, with why.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierChange {
    /// The change's id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e65")]
    pub id: Uuid,
    /// The member.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e64")]
    pub customer_id: Uuid,
    /// The tier left; none: the member had no tier yet.
    #[schema(example = "silver")]
    pub from_tier: Option<String>,
    /// The tier reached; none: the programme has no tiers left.
    #[schema(example = "gold")]
    pub to_tier: Option<String>,
    pub direction: ChangeDirection,
    pub reason: ChangeReason,
    pub basis: QualificationBasis,
    /// The qualifying sum the decision was made on.
    #[schema(example = 5200)]
    pub qualifying: i64,
    /// The threshold reached (up) or missed (down).
    #[schema(example = 5000)]
    pub threshold: Option<i64>,
    /// The window's start (excluded).
    #[schema(example = "2025-11-23T09:30:00Z")]
    pub window_from: DateTime<Utc>,
    /// The window's end (included).
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub window_to: DateTime<Utc>,
    /// When it happened.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub changed_at: DateTime<Utc>,
    /// The configuration version it was made under.
    #[schema(example = 4)]
    pub config_version: i64,
}

/// A tier move counted.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Move {
    /// The tier held before (none: no tier).
    #[schema(example = "gold")]
    pub from_tier: Option<String>,
    /// The tier after (none: no tier).
    #[schema(example = "silver")]
    pub to_tier: Option<String>,
    /// How many members.
    #[schema(example = 42)]
    pub members: i64,
}

/// What an evaluation pass changed.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct EvaluationReport {
    /// When the pass started.
    #[schema(example = "2026-11-23T02:00:00Z")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[schema(example = "2026-11-23T02:00:41Z")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Members evaluated (those locked by a request at that instant wait for the next pass).
    #[schema(example = 1000000)]
    pub members: i64,
    /// Lots that lapsed.
    #[schema(example = 5210)]
    pub expired_lots: i64,
    /// Their points.
    #[schema(example = 390115)]
    pub expired_points: i64,
    /// Members moved up.
    #[schema(example = 12)]
    pub upgrades: i64,
    /// Members moved down.
    #[schema(example = 340)]
    pub downgrades: i64,
    /// Members moved off tiers that left the programme.
    #[schema(example = 0)]
    pub moved: i64,
    /// Every move, counted by tiers.
    pub moves: Vec<Move>,
}

/// A proposed tier configuration to try.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulationInput {
    /// The proposed tiers, lowest first, as `PUT /v1/loyalty/tiers` takes them.
    pub tiers: Vec<Tier>,
    /// A proposed qualification; the programme's when absent.
    pub qualification: Option<Qualification>,
}

/// Members a proposed tier would hold.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SimulatedTier {
    /// The proposed tier's key.
    #[schema(example = "gold")]
    pub key: String,
    /// Its proposed threshold.
    #[schema(example = 5000)]
    pub threshold: i64,
    /// Members whose qualifying sum reaches it (and no higher one).
    #[schema(example = 1520)]
    pub members: i64,
    /// Of them, members holding a tier of this key today.
    #[schema(example = 1400)]
    pub unchanged: i64,
}

/// Where members would land.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Simulation {
    /// The qualification the sums were taken with.
    pub qualification: Qualification,
    /// When the qualifying sums were taken.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub at: DateTime<Utc>,
    /// Members in all.
    #[schema(example = 25000)]
    pub members: i64,
    /// Each proposed tier.
    pub tiers: Vec<SimulatedTier>,
    /// Members by tier held today and tier proposed, where they differ.
    pub moves: Vec<Move>,
}

/// Points for many customers at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkInput {
    /// Points for each customer: positive awards, negative takes (not 0).
    #[schema(example = 500)]
    pub points: i64,
    /// Why (1 to 500 characters), on every entry.
    #[schema(example = "spring campaign bonus", min_length = 1, max_length = 500)]
    pub reason: String,
    /// The customers (up to 10 000): this or `filter`.
    #[schema(example = json!(["0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e64"]), max_items = 10000)]
    pub customer_ids: Option<Vec<Uuid>>,
    /// The customers a `GET /v1/customers` query string selects (without paging or sort),
    /// e.g. `lifecycle_stage=retention&tags=vip`: this or `customer_ids`.
    #[schema(example = "lifecycle_stage=retention&tags=vip")]
    pub filter: Option<String>,
}

/// What a bulk request wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BulkReport {
    /// Customers whose balance changed.
    #[schema(example = 1520)]
    pub customers: i64,
    /// Points moved in all.
    #[schema(example = 760000)]
    pub points: i64,
    /// Ledger entries written.
    #[schema(example = 1520)]
    pub entries: i64,
}

/// What a purchase or refund did to the customer's points (on the answer to that request).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PointsSummary {
    /// Points earned (positive) or taken back (negative).
    #[schema(example = 74)]
    pub points: i64,
    /// The balance after it.
    #[schema(example = 1308)]
    pub balance: i64,
    /// The tier held after it.
    #[schema(example = "gold")]
    pub tier: Option<String>,
}
