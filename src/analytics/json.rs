//! Customer value analytics as the API shows and accepts them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::customers::figures::{ChurnRisk, Measure, ValueTier};
use crate::customers::json::LifecycleStage;
use crate::domain::ChurnCause;

crate::text_enum! {
    /// The word that asks for a measured retention rate.
    pub enum Measured {
        Measured = "measured",
    }
}

/// The retention rate r of the lifetime potential: a share from 0 to 1, or `"measured"`:
/// the share of last year's buyers (in the currency) who bought again in the last 12
/// months, capped at 1 + d − 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RetentionRate {
    /// A fixed share, 0 to 1.
    Fixed(f64),
    Measured(Measured),
}

/// `RetentionRate` in the OpenAPI document: a number from 0 to 1, or `"measured"`.
fn retention_rate_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(0.0))
                .maximum(Some(1.0))
                .description(Some("A fixed share of customers retained, 0 to 1.")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["measured"]))
                .description(Some(
                    "Measured: the share of last year's buyers in the currency who bought \
                     again in the last 12 months, capped at 1 + d − 0.01.",
                )),
        )
        .description(Some(
            "r of the lifetime potential m·r/(1 + d − r): a share from 0 to 1, or `\"measured\"`.",
        ))
        .examples([serde_json::json!(0.8), serde_json::json!("measured")])
        .build();
    Schema::OneOf(one_of)
}

impl Default for RetentionRate {
    fn default() -> Self {
        RetentionRate::Measured(Measured::Measured)
    }
}

fn default_discount_rate() -> f64 {
    0.1
}

fn default_influential_referrals() -> i32 {
    3
}

fn default_few_customers_percent() -> i32 {
    5
}
fn default_medium_customers_percent() -> i32 {
    20
}
fn default_low_margin_percent() -> i32 {
    10
}
fn default_high_margin_percent() -> i32 {
    30
}
fn default_callback_days() -> Option<i32> {
    Some(7)
}
fn default_loyalty_periods() -> i32 {
    12
}
fn default_loyalty_period_days() -> i32 {
    30
}
fn default_loyal_percent() -> i32 {
    50
}

/// The callback (回访) after each purchase, per relationship level: a follow-up due this
/// many days (1 to 365) after the purchase, assigned to the account manager; `null` for
/// none at that level. Levels below `accountable` get none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackDays {
    /// Days after the sale for `accountable` customers (7 by default).
    #[serde(default = "default_callback_days")]
    #[schema(example = 7, minimum = 1, maximum = 365)]
    pub accountable: Option<i32>,
    /// Days after the sale for `proactive` customers (7 by default).
    #[serde(default = "default_callback_days")]
    #[schema(example = 7, minimum = 1, maximum = 365)]
    pub proactive: Option<i32>,
    /// Days after the sale for `partnership` customers (7 by default).
    #[serde(default = "default_callback_days")]
    #[schema(example = 3, minimum = 1, maximum = 365)]
    pub partnership: Option<i32>,
}

impl Default for CallbackDays {
    fn default() -> Self {
        Self {
            accountable: default_callback_days(),
            proactive: default_callback_days(),
            partnership: default_callback_days(),
        }
    }
}

/// How the analytics are computed. Every field is required on `PUT` except
/// `retention_rate` (`measured` by default), `discount_rate` (0.1 by default) and
/// `influential_referrals` (3 by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// Purchases in this currency (ISO 4217) make the customers' value; others are left out.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    pub measure: Measure,
    /// The value window in days (28 to 3660), ending at the computation. Its two halves
    /// give the purchase trend.
    #[schema(example = 365, minimum = 28, maximum = 3660)]
    pub window_days: i32,
    /// `key`: customers with a positive value of whom fewer than this share (in %) of all
    /// customers rank strictly above. 1 to 100, below `development_percent`.
    #[schema(example = 5, minimum = 1, maximum = 100)]
    pub key_percent: i32,
    /// `development`: the next customers up to this share, in %; above `key_percent`.
    #[schema(example = 20, minimum = 1, maximum = 100)]
    pub development_percent: i32,
    /// `maintenance`: the next customers up to this share, in %; the rest (and everyone
    /// without a positive value) is `opportunity`.
    #[schema(example = 50, minimum = 1, maximum = 100)]
    pub maintenance_percent: i32,
    /// The value matrix: a current or future value is high when fewer than this share of
    /// customers (in %) rank strictly above it, and it is positive.
    #[schema(example = 20, minimum = 1, maximum = 100)]
    pub high_value_percent: i32,
    /// A customer is at risk from this churn score (1 to 100).
    #[schema(example = 50, minimum = 1, maximum = 100)]
    pub churn_threshold: i32,
    /// No interaction for this many days is the reason `no_recent_contact`.
    #[schema(example = 90, minimum = 1, maximum = 3660)]
    pub contact_days: i32,
    /// Whether each computation moves the customers at risk in `acquaintance`,
    /// `exploration`, `stable` or `commitment` into `dissolution`, recording the score and
    /// reasons as the stage change's reason.
    #[schema(example = false)]
    pub move_to_dissolution: bool,
    /// r of the lifetime potential m·r/(1 + d − r): a share from 0 to 1, or `"measured"`
    /// (the default). A fixed r must keep 1 + d − r above 0.
    #[serde(default)]
    #[schema(schema_with = retention_rate_schema)]
    pub retention_rate: RetentionRate,
    /// d of the lifetime potential, 0 to 1 (0.1 by default).
    #[serde(default = "default_discount_rate")]
    #[schema(example = 0.1, minimum = 0, maximum = 1)]
    pub discount_rate: f64,
    /// A customer with at least this many live referrals (customers whose `referred_by_id`
    /// names them) is an influential key customer (`key_class`), 1 to 10000; 3 by default.
    #[serde(default = "default_influential_referrals")]
    #[schema(example = 3, minimum = 1, maximum = 10000)]
    pub influential_referrals: i32,
    /// The recommended relationship level's count axis: a customer with a positive value is
    /// among the "few" when fewer than this share (in %) of customers have a greater value
    /// (1 to 100, below `medium_customers_percent`; 5 by default).
    #[serde(default = "default_few_customers_percent")]
    #[schema(example = 5, minimum = 1, maximum = 100)]
    pub few_customers_percent: i32,
    /// A "medium" number of customers up to this share, in % (20 by default); the rest are
    /// the "many".
    #[serde(default = "default_medium_customers_percent")]
    #[schema(example = 20, minimum = 1, maximum = 100)]
    pub medium_customers_percent: i32,
    /// The margin axis: a margin under this, in %, is low (0 to 100, below
    /// `high_margin_percent`; 10 by default).
    #[serde(default = "default_low_margin_percent")]
    #[schema(example = 10, minimum = 0, maximum = 100)]
    pub low_margin_percent: i32,
    /// A margin from this, in %, is high (1 to 100; 30 by default); between the two, medium.
    #[serde(default = "default_high_margin_percent")]
    #[schema(example = 30, minimum = 1, maximum = 100)]
    pub high_margin_percent: i32,
    /// The callbacks after a sale, per relationship level (7 days each by default).
    #[serde(default)]
    pub callback_days: CallbackDays,
    /// Loyalty: how many periods back the `loyalty_index` looks (1 to 60; 12 by default).
    #[serde(default = "default_loyalty_periods")]
    #[schema(example = 12, minimum = 1, maximum = 60)]
    pub loyalty_periods: i32,
    /// The length of a loyalty period in days (1 to 366; 30 by default).
    #[serde(default = "default_loyalty_period_days")]
    #[schema(example = 30, minimum = 1, maximum = 366)]
    pub loyalty_period_days: i32,
    /// Loyal from this `loyalty_index`, in % (1 to 100; 50 by default): loyal when
    /// 100 × periods with a purchase ≥ loyal_percent × loyalty_periods.
    #[serde(default = "default_loyal_percent")]
    #[schema(example = 50, minimum = 1, maximum = 100)]
    pub loyal_percent: i32,
}

/// The last computation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Computation {
    /// When it ran; the figures are as of this time.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub computed_at: DateTime<Utc>,
    /// Live customers it computed.
    #[schema(example = 1000000)]
    pub customers: i64,
    /// How long it took, in milliseconds.
    #[schema(example = 41250)]
    pub duration_ms: i64,
}

/// The analytics settings and the last computation, as answered (not `SettingsInput` plus
/// fields: the input refuses unknown fields, so a schema composed from it would refuse the
/// very answer it describes). Every field is always present.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Settings {
    /// Purchases in this currency (ISO 4217) make the customers' value; others are left out.
    #[schema(example = "EUR")]
    pub currency: String,
    pub measure: Measure,
    /// The value window in days, ending at the computation.
    #[schema(example = 365)]
    pub window_days: i32,
    /// `key`: the top share of customers, in %.
    #[schema(example = 5)]
    pub key_percent: i32,
    /// `development`: the next customers up to this share, in %.
    #[schema(example = 20)]
    pub development_percent: i32,
    /// `maintenance`: the next customers up to this share, in %.
    #[schema(example = 50)]
    pub maintenance_percent: i32,
    /// The value matrix: the share (in %) under which a value is high.
    #[schema(example = 20)]
    pub high_value_percent: i32,
    /// A customer is at risk from this churn score.
    #[schema(example = 50)]
    pub churn_threshold: i32,
    /// No interaction for this many days is the reason `no_recent_contact`.
    #[schema(example = 90)]
    pub contact_days: i32,
    /// Whether each computation moves the customers at risk into `dissolution`.
    #[schema(example = false)]
    pub move_to_dissolution: bool,
    /// r of the lifetime potential: a share from 0 to 1, or `"measured"`.
    #[schema(schema_with = retention_rate_schema)]
    pub retention_rate: RetentionRate,
    /// d of the lifetime potential.
    #[schema(example = 0.1)]
    pub discount_rate: f64,
    /// From this many referrals a customer is an influential key customer.
    #[schema(example = 3)]
    pub influential_referrals: i32,
    /// The count axis of the recommended relationship level: the "few", in %.
    #[schema(example = 5)]
    pub few_customers_percent: i32,
    /// The count axis: up to this share, in %, a "medium" number; the rest the "many".
    #[schema(example = 20)]
    pub medium_customers_percent: i32,
    /// The margin axis: low under this margin, in %.
    #[schema(example = 10)]
    pub low_margin_percent: i32,
    /// The margin axis: high from this margin, in %.
    #[schema(example = 30)]
    pub high_margin_percent: i32,
    /// The callbacks after a sale, per relationship level.
    pub callback_days: CallbackDays,
    /// Periods the `loyalty_index` looks back.
    #[schema(example = 12)]
    pub loyalty_periods: i32,
    /// Days per loyalty period.
    #[schema(example = 30)]
    pub loyalty_period_days: i32,
    /// Loyal from this `loyalty_index`, in %.
    #[schema(example = 50)]
    pub loyal_percent: i32,
    /// The last computation; `null` before the first.
    #[schema(required = true)]
    pub last_computation: Option<Computation>,
    /// Last change of the settings.
    #[schema(example = "2026-11-23T09:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// The settings' version (the `ETag`).
    #[schema(example = 1)]
    pub version: i64,
}

/// What a computation did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Recomputed {
    #[serde(flatten)]
    pub computation: Computation,
    /// Customers whose figures changed since the last computation (the others' rows are
    /// not rewritten).
    #[schema(example = 5210)]
    pub changed: i64,
    /// Customers it moved into `dissolution` (when the settings ask for it).
    #[schema(example = 12)]
    pub moved_to_dissolution: i64,
}

/// Filters of the churn-risk list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChurnQuery {
    /// Lowest score listed, 1 to 100; the settings' `churn_threshold` by default.
    #[param(minimum = 1, maximum = 100, example = 50)]
    pub min_score: Option<i16>,
    /// Only customers with this reason (several separated by commas: any of them).
    #[param(example = "open_complaints,dissatisfied")]
    pub reason: Option<String>,
    /// Only customers in these lifecycle stages (separated by commas).
    #[param(example = "stable,commitment")]
    pub lifecycle_stage: Option<String>,
    /// Only customers of this account manager.
    #[param(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub account_manager_id: Option<Uuid>,
    /// Only customers of these value tiers (separated by commas).
    #[param(example = "key,development")]
    pub value_tier: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(example = "eyJvIjoic2NvcmUiLCJrIjpbNjUsIjAxOTMiXX0")]
    pub cursor: Option<String>,
}

/// A customer at risk, highest score first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChurnEntry {
    /// Customer id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// The customer's name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    pub lifecycle_stage: LifecycleStage,
    /// Their account manager, if any.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub account_manager_id: Option<Uuid>,
    pub value_tier: ValueTier,
    /// Value in the window, in minor units.
    #[schema(example = 129900)]
    pub value: i64,
    pub churn_risk: ChurnRisk,
}

/// The period and measure of a Pareto analysis.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ParetoQuery {
    /// First day (UTC) of the period, not after `to`; 365 days before `to` by default.
    #[param(example = "2026-01-01")]
    pub from: Option<NaiveDate>,
    /// Last day (UTC) of the period, included; today by default.
    #[param(example = "2026-12-31")]
    pub to: Option<NaiveDate>,
    /// `revenue` (the default) or `profit`.
    pub measure: Option<Measure>,
    /// The currency of the purchases counted; the analytics settings' by default.
    #[param(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Only the customers who make the first `top_sales_percent` % of the total (1 to 100):
    /// `20` lists those who bring the top 20 % of sales.
    #[param(minimum = 1, maximum = 100, example = 20)]
    pub top_sales_percent: Option<u8>,
    /// `true` ranks groups of organizations: the purchases of every organization of a group
    /// (`parent_id`, 10 levels at most) count for its root, which is ranked in their place;
    /// customers in no group are ranked as they are. `false` by default.
    #[param(example = true)]
    pub group: Option<bool>,
    /// `true` ranks the purchases now, never the ranking the last analytics computation
    /// kept (see the endpoint); without `from` and `to`, the period then ends today.
    /// `false` by default. The export always ranks now.
    #[param(example = true)]
    pub live: Option<bool>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(example = "eyJvIjoicmFuayIsImsiOjUwfQ")]
    pub cursor: Option<String>,
}

/// One customer in the Pareto ranking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParetoRow {
    /// 1 for the largest value; ties are ordered by customer id.
    #[schema(example = 1)]
    pub rank: i64,
    /// Customer id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// The customer's name; `null` for a deleted or erased customer (their purchases still
    /// count).
    #[schema(example = "Ada Lovelace")]
    pub name: Option<String>,
    /// The customer's value in the period, in minor units.
    #[schema(example = 129900)]
    pub value: i64,
    /// Purchases in the period.
    #[schema(example = 7)]
    pub purchases: i64,
    /// This customer's share of the total, in % (2 decimals).
    #[schema(example = 12.5)]
    pub share: f64,
    /// The share of the total of this customer and all ranked before, in % (2 decimals).
    #[schema(example = 37.5)]
    pub cumulative_share: f64,
    /// `rank` as a share of the customers ranked, in % (2 decimals): this customer is in
    /// the top `customer_percent` % of customers.
    #[schema(example = 2.5)]
    pub customer_percent: f64,
    /// The customer's lifetime potential as of the last analytics computation (the
    /// settings' currency and measure, whatever the ranking's), in minor units; `null` when
    /// not computed or not computable (see `Customer.analytics`).
    #[schema(example = 42667)]
    pub lifetime_potential: Option<i64>,
    /// The customer's demand contribution as of the last analytics computation (the
    /// settings' window), in % (2 decimals); `null` when not computed or nobody bought.
    #[schema(example = 2.5)]
    pub demand_contribution_percent: Option<f64>,
    /// The customer's credit grade (`credit.grade`) as it stands now; `null` when not
    /// graded, and when `name` is `null` (a deleted or erased customer, or a group's root
    /// the caller does not manage).
    pub credit_grade: Option<crate::customers::json::CreditGrade>,
}

/// How much the top customers bring.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CustomerBand {
    /// The top share of customers, in %.
    #[schema(example = 20)]
    pub customer_percent: i32,
    /// That many customers: ⌈customers × customer_percent ÷ 100⌉.
    #[schema(example = 8)]
    pub customers: i64,
    /// Their value, in minor units.
    #[schema(example = 800000)]
    pub value: i64,
    /// Their share of the total, in % (2 decimals).
    #[schema(example = 80.0)]
    pub share: f64,
}

/// How few customers make a share of sales.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SalesBand {
    /// The share of the total, in %.
    #[schema(example = 50)]
    pub sales_percent: i32,
    /// The fewest top customers whose value reaches that share.
    #[schema(example = 3)]
    pub customers: i64,
    /// They as a share of the customers ranked, in % (2 decimals).
    #[schema(example = 7.5)]
    pub customer_percent: f64,
}

/// The Pareto figures of the period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParetoSummary {
    /// Customers ranked: those whose value in the period is positive.
    #[schema(example = 40)]
    pub customers: i64,
    /// Their total value, in minor units.
    #[schema(example = 1000000)]
    pub total: i64,
    /// The share of the total brought by the top 20 % of customers, in % (2 decimals): the
    /// "80" of 80/20.
    #[schema(example = 80.0)]
    pub top_20_percent_share: f64,
    /// The top 10, 20, 40 and 50 % of customers and what they bring.
    pub customer_bands: Vec<CustomerBand>,
    /// How many top customers make 10, 20, 40, 50 and 80 % of the total.
    pub sales_bands: Vec<SalesBand>,
}

/// A Pareto (80/20) analysis: customers ranked by value over a period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ParetoReport {
    /// First day of the period.
    #[schema(example = "2026-01-01")]
    pub from: NaiveDate,
    /// Last day of the period (included).
    #[schema(example = "2026-12-31")]
    pub to: NaiveDate,
    pub measure: Measure,
    /// The currency of the values.
    #[schema(example = "EUR")]
    pub currency: String,
    /// `false`: the ranking the analytics computation at `computed_at` kept, of the
    /// purchases as they stood then; `true`: ranked for this request.
    #[schema(example = false)]
    pub live: bool,
    /// The computation whose kept ranking this is; `null` when ranked live.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub computed_at: Option<DateTime<Utc>>,
    pub summary: ParetoSummary,
    /// A page of the ranking.
    pub data: Vec<ParetoRow>,
    /// Pass as `cursor` for the next page; `null` on the last.
    #[schema(example = "eyJvIjoicmFuayIsImsiOjUwfQ")]
    pub next_cursor: Option<String>,
}

/// One group of customers in a segment breakdown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Segment {
    /// The group: a tier, class, stage, level, type or credit grade, or `none` (customers
    /// without a loyalty tier or a credit grade, or not computed yet).
    #[schema(example = "key")]
    pub key: String,
    /// Live customers in it.
    #[schema(example = 50000)]
    pub customers: i64,
    /// Their value in the window (the settings' measure and currency), in minor units.
    #[schema(example = 4200000000_i64)]
    pub value: i64,
    /// Their mean value, in minor units (rounded).
    #[schema(example = 84000)]
    pub mean_value: i64,
    /// Customers with a latest NPS answer.
    #[schema(example = 12000)]
    pub nps_respondents: i64,
    /// Mean of their latest NPS answers (0 to 10, 2 decimals); `null` without any.
    #[schema(example = 8.25)]
    pub mean_nps: Option<f64>,
    /// NPS of their latest answers: % promoters − % detractors (−100 to 100, 2 decimals).
    #[schema(example = 41.5)]
    pub nps: Option<f64>,
    /// Customers with a latest CSAT answer.
    #[schema(example = 9000)]
    pub csat_respondents: i64,
    /// Mean of their latest CSAT answers (1 to 5, 2 decimals).
    #[schema(example = 4.1)]
    pub mean_csat: Option<f64>,
    /// CSAT of their latest answers: % of answers that are 4 or 5 (2 decimals).
    #[schema(example = 78.4)]
    pub csat: Option<f64>,
    /// Of them, customers at churn risk.
    #[schema(example = 1200)]
    pub at_risk: i64,
    /// Their lifetime potential: m·r / (1 + d − r) of their summed m (each one's value over
    /// the 12 months before the computation, those without one left out), in minor units;
    /// `null` when r cannot be measured or no customer in it has an m.
    #[schema(example = 12600000000_i64)]
    pub lifetime_potential: Option<i64>,
    /// Their demand contribution: their net sales in the window as a share of every
    /// customer's, in % (2 decimals); `null` when nobody bought in the window.
    #[schema(example = 42.17)]
    pub demand_contribution_percent: Option<f64>,
}

/// Customers, value and satisfaction by segment, from the last computation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Segments {
    /// The computation the tiers and classes come from; `null` before the first.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub computed_at: Option<DateTime<Utc>>,
    /// `false`: the breakdown the computation at `computed_at` kept, every figure as it
    /// stood then; `true`: counted for this request.
    #[schema(example = false)]
    pub live: bool,
    /// The currency of the values.
    #[schema(example = "EUR")]
    pub currency: String,
    pub measure: Measure,
    /// By value tier.
    pub value_tier: Vec<Segment>,
    /// By value matrix class.
    pub value_class: Vec<Segment>,
    /// By lifecycle stage.
    pub lifecycle_stage: Vec<Segment>,
    /// By relationship level.
    pub relationship_level: Vec<Segment>,
    /// By loyalty tier.
    pub loyalty_tier: Vec<Segment>,
    /// By key-customer class: `high_value`, `influential`, `dual` and `none`.
    pub key_class: Vec<Segment>,
    /// By volume × loyalty quadrant (`none`: not computed yet).
    pub loyalty_quadrant: Vec<Segment>,
    /// By the relationship level the course's matrix recommends (`none`: no margin to
    /// judge by, or not computed yet).
    pub recommended_relationship_level: Vec<Segment>,
    /// By an individual's buyer type (`none`: not set, and every organization).
    pub buyer_type: Vec<Segment>,
    /// By an organization's type (`none`: not set, and every individual).
    pub organization_type: Vec<Segment>,
    /// By credit grade (等级信用), `a` to `d` as each customer's `credit.grade` stands now
    /// (`none`: not graded).
    pub credit_grade: Vec<Segment>,
}

/// The options of the segment breakdown.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SegmentsQuery {
    /// `true` counts groups of organizations as one: the root of each group (`parent_id`,
    /// 10 levels at most) stands for it, with the value, the m and the window sales of all
    /// its organizations (so the group's lifetime potential and demand contribution), and the
    /// subsidiaries are not counted on their own; customers in no group count as they are.
    /// `false` by default.
    #[param(example = true)]
    pub group: Option<bool>,
    /// `true` counts now, never the breakdown the last analytics computation kept (see the
    /// endpoint). `false` by default.
    #[param(example = true)]
    pub live: Option<bool>,
}

/// The options of a customer's value figures.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ValueQuery {
    /// `true` gives the figures of the customer's whole group: the purchases of its root
    /// organization and of every organization below it (10 levels at most; for a caller
    /// limited to their own customers, those they manage). `false` by default.
    #[param(example = true)]
    pub group: Option<bool>,
}

crate::text_enum! {
    /// How the win-back report groups its figures: per calendar `month` of the period, or
    /// per `reason_code` over the whole period.
    pub enum WinBackGrouping {
        Month = "month",
        ReasonCode = "reason_code",
    }
}

/// The period and grouping of a win-back report.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WinBackQuery {
    /// First day (UTC) of the period, not after `to`.
    #[param(example = "2026-01-01")]
    pub from: Option<NaiveDate>,
    /// Last day (UTC) of the period, included; at most 3660 days after `from`.
    #[param(example = "2026-06-30")]
    pub to: Option<NaiveDate>,
    /// `month` (the default) or `reason_code`.
    pub group_by: Option<WinBackGrouping>,
    /// Churned customers per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The leaking bucket over one period (a month) or one reason code.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct WinBackPeriod {
    /// The month (`YYYY-MM`), when grouped by month.
    #[schema(example = "2026-03")]
    pub month: Option<String>,
    /// The reason code, when grouped by reason code; `null` there for losses recorded
    /// without one.
    #[schema(value_type = Option<ChurnCause>, example = "price")]
    pub reason_code: Option<ChurnCause>,
    /// First day of the period (a month is cut to the report's `from` and `to`).
    #[schema(example = "2026-03-01")]
    pub from: NaiveDate,
    /// Last day of the period, included.
    #[schema(example = "2026-03-31")]
    pub to: NaiveDate,
    /// Live customers whose stage just before the period started was an active one
    /// (`acquaintance`, `exploration`, `stable`, `commitment` or `dissolution`).
    #[schema(example = 200)]
    pub active_at_start: i64,
    /// Moves into `churned` in the period (a customer lost twice counts twice).
    #[schema(example = 6)]
    pub lost: i64,
    /// `lost` ÷ `active_at_start`, to 4 decimals; `null` with nobody active at the start.
    #[schema(example = 0.03)]
    pub churn_rate: Option<f64>,
    /// Of those losses, the ones won back since: a purchase, or a move out of `churned` into
    /// an active stage, before the customer's next loss.
    #[schema(example = 2)]
    pub won_back: i64,
    /// `won_back` ÷ `lost`, to 4 decimals; `null` without losses.
    #[schema(example = 0.3333)]
    pub win_back_rate: Option<f64>,
    /// Median days from the loss to its win-back (interpolated), over the losses won back;
    /// `null` when none was.
    #[schema(example = 12.5)]
    pub median_days_to_win_back: Option<f64>,
}

/// One loss (a move into `churned`) in the report's period.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChurnedCustomer {
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// Their name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// When they moved into `churned`.
    #[schema(example = "2026-03-04T10:00:00Z")]
    pub churned_at: DateTime<Utc>,
    /// Why, as coded with the move.
    #[schema(value_type = Option<ChurnCause>, example = "price")]
    pub reason_code: Option<ChurnCause>,
    /// Why, as written with the move.
    #[schema(example = "a cheaper offer")]
    pub reason: Option<String>,
    /// When they were won back, if they were.
    #[schema(example = "2026-03-16T12:00:00Z")]
    pub won_back_at: Option<DateTime<Utc>>,
    /// Days from `churned_at` to `won_back_at`, to 2 decimals.
    #[schema(example = 12.08)]
    pub days_to_win_back: Option<f64>,
}

/// The win-back report: the leaking bucket per period or reason code, and the period's
/// churned customers, a page at a time.
#[derive(Debug, Serialize, ToSchema)]
pub struct WinBackReport {
    /// First day of the period.
    #[schema(example = "2026-01-01")]
    pub from: NaiveDate,
    /// Last day of the period, included.
    #[schema(example = "2026-06-30")]
    pub to: NaiveDate,
    /// How the rows are grouped.
    pub group_by: WinBackGrouping,
    /// Per month in order, or per reason code in the list's order (codes without losses
    /// included, then losses without a code if any); the same on every page.
    pub periods: Vec<WinBackPeriod>,
    /// The period's losses, oldest first: this page.
    pub data: Vec<ChurnedCustomer>,
    /// Pass as `cursor` for the next page of `data`; `null` on the last page.
    #[schema(example = "eyJvIjoiY2h1cm5lZF9hdCIsImsiOlsiMjAyNi0wMy0wNVQxMjowMDowMFoiXX0")]
    pub next_cursor: Option<String>,
}
