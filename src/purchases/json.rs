//! What the API shows of a purchase and what it accepts. Money is an integer in the
//! currency's minor unit (cents for EUR and USD, yen for JPY), as payment APIs do, so no
//! amount is ever rounded on the way.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::domain::Channel;

/// One line of a purchase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Stock keeping unit, up to 100 characters.
    #[schema(example = "VASE-01", max_length = 100)]
    pub sku: Option<String>,
    /// Product name, 1 to 200 characters.
    #[schema(example = "Blue vase", min_length = 1, max_length = 200)]
    pub name: String,
    /// How many, 1 to 1 000 000.
    #[schema(example = 2, minimum = 1)]
    pub quantity: i64,
    /// Price of one, in minor units, not negative.
    #[schema(example = 2450, minimum = 0)]
    pub unit_price: i64,
}

/// A purchase to record.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurchaseInput {
    /// The till's receipt id or the shop's order number, unique: sending the same purchase
    /// again returns the one recorded (`200`) instead of recording it twice; another
    /// purchase with the same reference is a `409`. 1 to 100 characters.
    #[schema(example = "till-7-000123")]
    pub external_ref: Option<String>,
    /// What was paid, in minor units of `currency` (4900 = 49.00 EUR), not negative.
    #[schema(example = 4900, minimum = 0)]
    pub amount: i64,
    /// ISO 4217 code, upper case.
    #[schema(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: String,
    /// What the goods cost the business, in minor units, for the profit contribution.
    #[schema(example = 2100, minimum = 0)]
    pub cost: Option<i64>,
    /// When the purchase was made; not in the future. Now by default.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// Where it was made.
    pub channel: Option<Channel>,
    /// The lines, up to 500.
    #[serde(default)]
    #[schema(max_items = 500)]
    pub items: Vec<Item>,
    /// The opportunity this sale closes, one of this customer's (`422` on
    /// `opportunity_id` otherwise). A purchase linked to a won opportunity is a sale inside
    /// the funnel; any other counts in the forecast's `outside_funnel_sales`.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub opportunity_id: Option<Uuid>,
}

/// A purchase.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Purchase {
    /// Purchase id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e70")]
    pub id: Uuid,
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// The till's receipt id or the shop's order number.
    #[schema(example = "till-7-000123")]
    pub external_ref: Option<String>,
    /// What was paid, in minor units.
    #[schema(example = 4900)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// What the goods cost, in minor units.
    #[schema(example = 2100)]
    pub cost: Option<i64>,
    /// How much has been refunded, in minor units.
    #[schema(example = 0)]
    pub refunded: i64,
    /// `amount` − `refunded`.
    #[schema(example = 4900)]
    pub net_amount: i64,
    /// When it was made.
    #[schema(example = "2026-11-23T09:30:00Z")]
    pub occurred_at: DateTime<Utc>,
    /// Where it was made.
    pub channel: Option<Channel>,
    /// The lines.
    pub items: Vec<Item>,
    /// The opportunity this sale closes, if one was named.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e80")]
    pub opportunity_id: Option<Uuid>,
    /// When it was recorded.
    #[schema(example = "2026-11-23T09:31:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed (a refund).
    #[schema(example = "2026-11-23T09:31:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
    /// What this request did to the customer's loyalty points (on the answers to recording
    /// and refunding a purchase only; absent when the purchase is not in the programme's
    /// currency).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loyalty: Option<crate::loyalty::json::PointsSummary>,
}

/// A refund of (part of) a purchase.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundInput {
    /// How much to refund, in minor units, at least 1; what is left of the purchase by
    /// default (a full refund).
    #[schema(example = 2450, minimum = 1)]
    pub amount: Option<i64>,
    /// Why, up to 500 characters.
    #[schema(example = "one vase arrived broken", max_length = 500)]
    pub reason: Option<String>,
}

crate::text_enum! {
    /// Order of a purchase list: `-occurred_at` newest first (the default) or `occurred_at`.
    pub enum PurchaseSort {
        OccurredAt = "occurred_at",
        OccurredAtDesc = "-occurred_at",
    }
}

/// Filters of a purchase list, combined with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PurchasesQuery {
    /// Only this customer's purchases. On `/v1/customers/{id}/purchases` it may be left out;
    /// given, it must be the customer of the path.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Option<Uuid>,
    /// Only purchases in this currency.
    #[param(example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Option<String>,
    /// Only purchases made this way.
    pub channel: Option<Channel>,
    /// Made at or after (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub occurred_after: Option<DateTime<Utc>>,
    /// Made before (RFC 3339).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub occurred_before: Option<DateTime<Utc>>,
    /// `-occurred_at` (default) or `occurred_at`.
    #[param(inline)]
    pub sort: Option<PurchaseSort>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// What a customer is worth in one currency (DOMAIN.md section 5), from their purchases net
/// of refunds, as of now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrencyValue {
    /// ISO 4217 code; each currency is summed on its own.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Number of purchases.
    #[schema(example = 12)]
    pub purchases: i64,
    /// Cumulative sales: Σ (amount − refunded), in minor units.
    #[schema(example = 58800)]
    pub cumulative_sales: i64,
    /// Σ refunded, in minor units.
    #[schema(example = 2450)]
    pub refunded: i64,
    /// Average order value: cumulative sales / purchases, rounded half away from zero to the
    /// minor unit.
    #[schema(example = 4900)]
    pub average_order_value: i64,
    /// Profit contribution: Σ (amount − refunded − cost) over the purchases with a cost;
    /// `null` when none has one.
    #[schema(example = 31600)]
    pub profit_contribution: Option<i64>,
    /// How many purchases the profit contribution is computed from.
    #[schema(example = 10)]
    pub purchases_with_cost: i64,
    /// The first purchase.
    #[schema(example = "2025-02-01T10:00:00Z")]
    pub first_purchase_at: DateTime<Utc>,
    /// The last purchase.
    #[schema(example = "2026-11-20T10:00:00Z")]
    pub last_purchase_at: DateTime<Utc>,
    /// Lifetime potential sales (终身潜在销售预期): m · r / (1 + d − r) with m the value over
    /// the last 12 months, r the retention rate and d the discount rate (see
    /// `lifetime_basis`), rounded half away from zero to the minor unit; `null` when m or
    /// r is unknown.
    #[schema(example = 96000)]
    pub lifetime_potential: Option<i64>,
    pub lifetime_basis: crate::customers::figures::LifetimeBasis,
    /// Demand contribution (需求贡献): the customer's share of all customers' net sales in
    /// the analytics window, × 100, rounded to 2 decimals; `null` when nobody bought in the
    /// currency in the window.
    #[schema(example = 2.5)]
    pub demand_contribution_percent: Option<f64>,
    pub demand_basis: crate::customers::figures::DemandBasis,
}

/// A customer's value figures, per currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerValue {
    /// The customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// One entry per currency the customer bought in, most purchases first; empty before
    /// the first purchase. With `group=true`, of the whole group's purchases.
    pub currencies: Vec<CurrencyValue>,
    /// With `group=true`: the group the figures are of; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<crate::customers::figures::GroupScope>,
    /// The customer's referrals, what they brought, and the key-customer class (of the
    /// customer itself, also with `group=true`).
    pub referrals: crate::customers::figures::Referrals,
}

/// A purchase as a CSV row (exports write these columns, imports read them).
pub const COLUMNS: &[crate::http::tabular::Column] = {
    use crate::http::tabular::{Kind::*, r, w};
    &[
        r("id", Text),
        w("customer_id", Text),
        w("external_ref", Text),
        w("amount", Int),
        w("currency", Text),
        w("cost", Int),
        r("refunded", Int),
        r("net_amount", Int),
        w("occurred_at", Text),
        w("channel", Text),
        w("items", Json),
        w("opportunity_id", Text),
        r("created_at", Text),
        r("updated_at", Text),
        r("version", Int),
    ]
};
