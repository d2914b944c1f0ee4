//! The loyalty programme's configuration as the API shows and accepts it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
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
}

/// The loyalty programme.
#[derive(Debug, Serialize, ToSchema)]
pub struct Program {
    /// The configuration.
    #[serde(flatten)]
    pub config: ProgramInput,
    /// When the configuration (programme or tiers) last changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
    /// The configuration's version (programme and tiers); the `ETag` is this in quotes.
    #[schema(example = 3)]
    pub version: i64,
}

/// A tier of the programme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// Stable key: lower case letters, digits and `_`, starting with a letter, up to 50.
    #[schema(example = "gold")]
    pub key: String,
    /// Display name, 1 to 100 characters.
    #[schema(example = "Gold")]
    pub name: String,
    /// The qualifying sum (points or minor units, by the programme's basis) that reaches
    /// the tier; the first tier's is 0, each next one higher.
    #[schema(example = 5000, minimum = 0)]
    pub threshold: i64,
    /// Points multiplier in percent: 150 earns one and a half times the base points.
    #[schema(example = 150, minimum = 0, maximum = 1000)]
    pub multiplier_percent: i32,
    /// What members of the tier get, up to 20 lines of up to 200 characters.
    #[schema(example = json!(["free delivery", "birthday voucher"]))]
    pub benefits: Vec<String>,
}

/// The ordered tiers, lowest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Tiers {
    /// Every tier, lowest first (up to 20; none: the programme has no tiers).
    pub tiers: Vec<Tier>,
}
