//! A customer's value figures, as the customer shows them (`Customer.analytics`) and the
//! analytics area computes them. The words sit here, below analytics: the customer record
//! carries them, and the area that computes them stands above customers.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

crate::text_enum! {
    /// How actively the company manages the relationship: `basic` (sell, never contact
    /// again), `reactive` (customer calls with problems), `accountable` (company calls after
    /// the sale), `proactive` (regular contact with advice), `partnership` (continuous joint work).
    pub enum RelationshipLevel {
        Basic = "basic",
        Reactive = "reactive",
        Accountable = "accountable",
        Proactive = "proactive",
        Partnership = "partnership",
    }
}

crate::text_enum! {
    /// What a customer's value is: `revenue` (amount − refunded) or `profit` (amount −
    /// refunded − cost, over the purchases recorded with a cost).
    pub enum Measure {
        Revenue = "revenue",
        Profit = "profit",
    }
}

crate::text_enum! {
    /// A customer's credit grade (等级信用, the fourth aspect of a customer's value): `a`
    /// (best: pays on time, may buy on credit up to its limit) to `d` (worst: prepayment
    /// only). What each grade allows is the company's policy; Rapport keeps the grade.
    pub enum CreditGrade {
        A = "a",
        B = "b",
        C = "c",
        D = "d",
    }
}

crate::text_enum! {
    /// The customer's value tier, from their rank by value (the settings' cut-offs):
    /// `key` (the largest value), `development` (the next band: high value, the ones to
    /// grow), `maintenance` (ordinary) and `opportunity` (the many with low or no value).
    pub enum ValueTier {
        Key = "key",
        Development = "development",
        Maintenance = "maintenance",
        Opportunity = "opportunity",
    }
}

crate::text_enum! {
    /// The value matrix: current value × estimated future value. `vip` (both high),
    /// `improve` (low current, high future), `maintain` (high current, low future),
    /// `abandon` (both low).
    pub enum ValueClass {
        Vip = "vip",
        Improve = "improve",
        Maintain = "maintain",
        Abandon = "abandon",
    }
}

crate::text_enum! {
    /// Why a customer's churn risk rose, each with its points (the score is their sum, at
    /// most 100): `purchase_frequency_falling` (25), `purchase_overdue` (25),
    /// `no_recent_contact` (15), `open_complaints` (15 each, at most 30), `dissatisfied` (20).
    pub enum ChurnReason {
        PurchaseFrequencyFalling = "purchase_frequency_falling",
        PurchaseOverdue = "purchase_overdue",
        NoRecentContact = "no_recent_contact",
        OpenComplaints = "open_complaints",
        Dissatisfied = "dissatisfied",
    }
}

crate::text_enum! {
    /// Volume × loyalty (the course's "large but not loyal" customers, a risk to watch):
    /// large is a `key` or `development` value tier, loyal a `loyalty_index` at or above the
    /// settings' `loyal_percent`.
    pub enum LoyaltyQuadrant {
        LargeLoyal = "large_loyal",
        LargeDisloyal = "large_disloyal",
        SmallLoyal = "small_loyal",
        SmallDisloyal = "small_disloyal",
    }
}

/// RFM quintile scores, 1 to 5: a score is 1 + ⌊5 × (customers it strictly beats) ÷
/// (customers who ever bought in the currency)⌋, so tied customers share a score.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rfm {
    /// Recency: by the last purchase (later beats earlier).
    #[schema(example = 5, minimum = 1, maximum = 5)]
    pub recency: i16,
    /// Frequency: by purchases in the window.
    #[schema(example = 4, minimum = 1, maximum = 5)]
    pub frequency: i16,
    /// Monetary: by value in the window.
    #[schema(example = 3, minimum = 1, maximum = 5)]
    pub monetary: i16,
    /// The three digits together, `recency` first.
    #[schema(example = "543")]
    pub code: String,
    /// The last purchase in the currency.
    #[schema(example = "2026-11-20T15:04:05Z")]
    pub last_purchase_at: DateTime<Utc>,
}

/// A customer's churn risk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChurnRisk {
    /// 0 to 100: the sum of the reasons' points, at most 100.
    #[schema(example = 65, minimum = 0, maximum = 100)]
    pub score: i16,
    /// Whether the score reaches the settings' `churn_threshold`.
    #[schema(example = true)]
    pub at_risk: bool,
    /// The computation that first found the customer at risk, in this episode of risk (it
    /// lasts while the score stays at or above the threshold); `null` when not at risk. With
    /// `move_to_dissolution`, a customer is moved into `dissolution` once per episode.
    #[schema(example = "2026-11-02T03:00:00Z")]
    pub at_risk_since: Option<DateTime<Utc>>,
    /// The reasons, each with its points and the figures behind it.
    pub reasons: Vec<ChurnReasonDetail>,
}

/// One reason of a churn risk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ChurnReasonDetail {
    pub reason: ChurnReason,
    /// Points it adds to the score.
    #[schema(example = 25)]
    pub points: i16,
    /// The figures behind it, in words.
    #[schema(example = "no purchase for 130 days; the mean interval is 30.0 days")]
    pub detail: String,
}

/// The customer's value analytics as of the last computation.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CustomerAnalytics {
    /// When they were computed.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub computed_at: DateTime<Utc>,
    /// The currency of `value` and `future_value`.
    #[schema(example = "EUR")]
    pub currency: String,
    pub measure: Measure,
    /// Value in the window, in minor units.
    #[schema(example = 129900)]
    pub value: i64,
    /// Purchases in the window.
    #[schema(example = 7)]
    pub purchases: i32,
    pub value_tier: ValueTier,
    /// Estimated value over the next window, in minor units: the purchases expected (twice
    /// those of the window's recent half plus their change from the earlier half, at least
    /// 0) times the window's mean purchase value.
    #[schema(example = 150000)]
    pub future_value: i64,
    pub value_class: ValueClass,
    /// `null` for a customer who never bought in the currency.
    pub rfm: Option<Rfm>,
    pub churn_risk: ChurnRisk,
    /// Lifetime potential (终身潜在销售预期) m·r / (1 + d − r) in minor units, as on
    /// `GET /v1/customers/{id}/value` for the settings' currency: m the value over the 12
    /// months before the computation, r and d the settings' rates (a measured r as of the
    /// computation). `null` when r cannot be measured, or for `profit` when none of those
    /// purchases has a cost.
    #[schema(example = 42667)]
    pub lifetime_potential: Option<i64>,
    /// Demand contribution (需求贡献): the customer's net sales in the window as a share of
    /// every customer's, in % (2 decimals), as on `GET /v1/customers/{id}/value`; `null` when
    /// nobody bought in the currency in the window.
    #[schema(example = 2.5)]
    pub demand_contribution_percent: Option<f64>,
    /// Credit grade (等级信用): the customer's `credit.grade` as it stands now (not as of
    /// the computation: it is set by hand, not computed); `null` when not graded.
    pub credit_grade: Option<CreditGrade>,
    /// Margin of the window's purchases recorded with a cost: (net − cost) ÷ net, in % (2
    /// decimals); `null` without such purchases (or with no positive net on them).
    #[schema(example = 32.5)]
    pub margin_percent: Option<f64>,
    /// The relationship level the course's matrix of customer count against margin calls
    /// for. The count: the customer is among the "few" when their value is positive and
    /// fewer than `few_customers_percent` % of customers have a greater one, a "medium"
    /// number under `medium_customers_percent` %, else the "many". The margin
    /// (`margin_percent`): low under `low_margin_percent`, high from `high_margin_percent`.
    /// Many: low `basic`, medium `reactive`, high `accountable`; medium: `reactive`,
    /// `accountable`, `proactive`; few: `accountable`, `proactive`, `partnership`. `null`
    /// without a margin to judge by.
    pub recommended_relationship_level: Option<RelationshipLevel>,
    /// Whether `relationship_level` was below the recommended level when computed (the list
    /// filter `relationship_below_recommended=true`).
    #[schema(example = false)]
    pub relationship_below_recommended: bool,
    /// The share of the last `loyalty_periods` periods of `loyalty_period_days` days with a
    /// purchase in the currency, 0 to 1 (4 decimals): period i holds the purchases made
    /// i × days to (i + 1) × days before the computation.
    #[schema(example = 0.75, minimum = 0, maximum = 1)]
    pub loyalty_index: f64,
    pub loyalty_quadrant: LoyaltyQuadrant,
}

crate::text_enum! {
    /// Where a lifetime potential's retention rate r comes from: `fixed` (the analytics
    /// settings' `retention_rate`) or `measured` (the share of last year's buyers in the
    /// currency who bought again this year).
    pub enum RetentionSource {
        Fixed = "fixed",
        Measured = "measured",
    }
}

/// What a lifetime potential m·r / (1 + d − r) was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LifetimeBasis {
    /// What m measures (the analytics settings' measure).
    pub measure: Measure,
    /// m: the customer's value over the last 12 months in the measure, in minor units;
    /// `null` for `profit` when none of those purchases has a cost.
    #[schema(example = 48000)]
    pub yearly_value: Option<i64>,
    pub retention: RetentionSource,
    /// r as used; `null` when it is measured and nobody bought in the currency in the year
    /// before the last 12 months.
    #[schema(example = 0.8)]
    pub retention_rate: Option<f64>,
    /// For `measured`: the share as measured, before the cap at 1 + d − 0.01 (a measured
    /// r of 1 with d = 0 would make the potential infinite); `null` for `fixed`.
    #[schema(example = 0.8)]
    pub measured_retention_rate: Option<f64>,
    /// d, the analytics settings' discount rate.
    #[schema(example = 0.1)]
    pub discount_rate: f64,
}

/// What a demand contribution was computed from.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DemandBasis {
    /// The analytics window, in days, ending now.
    #[schema(example = 365)]
    pub window_days: i32,
    /// The customer's net sales (amount − refunded) in the window, in minor units.
    #[schema(example = 12000)]
    pub sales: i64,
    /// Every customer's net sales in the window, in minor units (erased and deleted
    /// customers' purchases count: they were sold).
    #[schema(example = 480000)]
    pub all_sales: i64,
}

crate::text_enum! {
    /// A key customer's class (DOMAIN.md section 9): `high_value` (高价值客户: value tier
    /// `key`), `influential` (重点客户: brings others, with at least the analytics settings'
    /// `influential_referrals` referrals, or made so by hand with `influential`), `dual`
    /// (双料客户: both at once). A customer is of one class at most; one who is neither has
    /// none.
    pub enum KeyClass {
        HighValue = "high_value",
        Influential = "influential",
        Dual = "dual",
    }
}

impl KeyClass {
    /// The class of a customer who is (or not) of value tier `key` and (or not) influential.
    pub fn of(high_value: bool, influential: bool) -> Option<Self> {
        match (high_value, influential) {
            (true, true) => Some(Self::Dual),
            (true, false) => Some(Self::HighValue),
            (false, true) => Some(Self::Influential),
            (false, false) => None,
        }
    }
}

/// The customers a customer referred, and what they brought.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Referrals {
    /// Live customers whose `referred_by_id` is this customer.
    #[schema(example = 3)]
    pub referrals: i64,
    /// Their value in the analytics settings' measure, currency and window (ending now):
    /// revenue is amount − refunded, profit amount − refunded − cost over the purchases
    /// recorded with a cost; in minor units of `currency`.
    #[schema(example = 45000)]
    pub referred_value: i64,
    /// The currency of `referred_value` (the analytics settings').
    #[schema(example = "EUR")]
    pub currency: String,
    pub measure: Measure,
    /// The analytics window, in days, ending now.
    #[schema(example = 365)]
    pub window_days: i32,
    /// Whether the customer's value tier is `key` (as of the last analytics computation).
    #[schema(example = true)]
    pub high_value: bool,
    /// Whether the customer is influential: `referrals` reaches the analytics settings'
    /// `influential_referrals`, or `influential` was set by hand.
    #[schema(example = true)]
    pub influential: bool,
    /// The key-customer class; `null` for a customer who is neither.
    pub key_class: Option<KeyClass>,
}

/// The group whose figures a value answer with `group=true` gives.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GroupScope {
    /// The root organization of the customer's group (the customer itself when it has no
    /// parent).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub root_id: Uuid,
    /// The customers whose purchases the figures sum: the root and every organization
    /// below it, at most 10 levels (for a caller limited to their own customers, those of
    /// them they manage).
    #[schema(example = 3)]
    pub customers: i64,
}
