//! What the customer list accepts: its filters and its orders.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::customers::json::{
    CustomerKind, DeletedFilter, ProspectGrade, RegionType, RelationshipLevel,
};

crate::text_enum! {
    /// List order: a field, `-` for descending.
    pub enum CustomerSort {
        CreatedAt = "created_at",
        CreatedAtDesc = "-created_at",
        UpdatedAt = "updated_at",
        UpdatedAtDesc = "-updated_at",
        Name = "name",
        NameDesc = "-name",
        /// Best match of `q` first (the default when `q` is given).
        Relevance = "relevance",
    }
}

crate::text_enum! {
    /// What a search adds to the customers it finds.
    pub enum Include {
        /// The organizations where a person found is a current contact.
        Organizations = "organizations",
    }
}

/// What only the customer list takes (not the export, nor a bulk action's filter).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListOnly {
    /// `organizations`: with `q` (and `sort=relevance`, its default), also list the
    /// organizations where a person the search finds is a current contact (live
    /// organizations the caller can see). Each stands right after the best ranked such
    /// person, with that person's id in `matched_via`, or at its own rank when it matches
    /// `q` itself and ranks better so; it is listed once. The other filters select the
    /// customers found, not the organizations added (as an `include` adds related records).
    /// A cursor of such a list goes with `include=organizations` only.
    #[param(inline)]
    pub include: Option<Include>,
}

/// Filters of the customer list, combined with AND. Also `attributes.<key>=<value>`: the custom
/// attribute equals the value (a string, or a number or boolean written as JSON).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// Only individuals or only organizations.
    pub kind: Option<CustomerKind>,
    /// One stage, or several separated by commas (any of them).
    #[param(example = "stable,commitment")]
    pub lifecycle_stage: Option<String>,
    /// Only customers at this relationship level.
    pub relationship_level: Option<RelationshipLevel>,
    /// Individuals of these sales-view types, separated by commas: `economic`, `ethical`,
    /// `personalizing`, `convenience`.
    #[param(example = "economic,convenience")]
    pub buyer_type: Option<String>,
    /// Organizations of these types, separated by commas: `government`, `business`,
    /// `non_profit`, `reseller`.
    #[param(example = "government")]
    pub organization_type: Option<String>,
    /// Tags separated by commas: customers with all of them.
    #[param(example = "vip,newsletter")]
    pub tags: Option<String>,
    /// A staff user's id, or `none` for customers without an account manager.
    #[param(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub account_manager_id: Option<String>,
    /// Only urban or only rural customers.
    pub region_type: Option<RegionType>,
    /// Only customers acquired this way.
    #[param(example = "webshop")]
    pub source: Option<String>,
    /// Only customers with this MAN grade.
    pub prospect_grade: Option<ProspectGrade>,
    /// Only customers who consented (`true`) or did not (`false`) to email marketing.
    pub consent_email: Option<bool>,
    /// Only customers who consented (`true`) or did not (`false`) to SMS marketing.
    pub consent_sms: Option<bool>,
    /// Created at or after (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub created_after: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub created_before: Option<DateTime<Utc>>,
    /// Updated at or after (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub updated_after: Option<DateTime<Utc>>,
    /// Updated before (RFC 3339).
    #[param(example = "2026-11-01T00:00:00Z")]
    pub updated_before: Option<DateTime<Utc>>,
    /// Only customers with (`true`) or without (`false`) an email.
    pub has_email: Option<bool>,
    /// Only customers with (`true`) or without (`false`) a phone.
    pub has_phone: Option<bool>,
    /// Latest NPS answer (their most recent response to any survey's first NPS question)
    /// at least, 0 to 10.
    #[param(minimum = 0, maximum = 10, example = 0)]
    pub latest_nps_min: Option<i16>,
    /// Latest NPS answer at most, 0 to 10.
    #[param(minimum = 0, maximum = 10, example = 6)]
    pub latest_nps_max: Option<i16>,
    /// Latest CSAT answer (their most recent to any survey's first CSAT question) at least,
    /// 1 to 5.
    #[param(minimum = 1, maximum = 5, example = 1)]
    pub latest_csat_min: Option<i16>,
    /// Latest CSAT answer at most, 1 to 5 (2: the dissatisfied).
    #[param(minimum = 1, maximum = 5, example = 2)]
    pub latest_csat_max: Option<i16>,
    /// Latest NPS category, several separated by commas: `detractor` (0–6), `passive`
    /// (7–8), `promoter` (9–10). `detractor` lists the unhappy customers.
    #[param(example = "detractor")]
    pub nps_category: Option<String>,
    /// An `expectation_performance` question key (of any survey): the customers whose latest
    /// answer to it had perceived performance below expectation (P < E, `dissatisfied`).
    #[param(example = "speed", pattern = "^[a-z][a-z0-9_]{0,39}$")]
    pub dissatisfied_with: Option<String>,
    /// Why customers were lost, codes separated by commas (`service_quality`,
    /// `product_defect`, `communication`, `price`, `competitor`, `moved_away`, `other`): the
    /// customers whose latest move into `dissolution` or `churned` had one of them, whatever
    /// their stage now.
    #[param(example = "price,competitor")]
    pub churn_reason: Option<String>,
    /// Credit grades separated by commas (`a` to `d`): the customers graded so (see
    /// `credit`); ungraded customers are never listed by it.
    #[param(example = "a,b")]
    pub credit_grade: Option<String>,
    /// Value tiers from the last analytics computation, separated by commas: `key`,
    /// `development`, `maintenance`, `opportunity`.
    #[param(example = "key,development")]
    pub value_tier: Option<String>,
    /// Value matrix classes, separated by commas: `vip`, `improve`, `maintain`, `abandon`.
    #[param(example = "improve")]
    pub value_class: Option<String>,
    /// RFM recency scores, 1 to 5, separated by commas.
    #[param(example = "4,5")]
    pub rfm_recency: Option<String>,
    /// RFM frequency scores, 1 to 5, separated by commas.
    #[param(example = "5")]
    pub rfm_frequency: Option<String>,
    /// RFM monetary scores, 1 to 5, separated by commas.
    #[param(example = "5")]
    pub rfm_monetary: Option<String>,
    /// Key-customer classes, separated by commas: `high_value` (value tier `key` and not
    /// influential), `influential` (at least the analytics settings' `influential_referrals`
    /// live referrals, or `influential` set by hand, and not of tier `key`), `dual` (both).
    #[param(example = "influential,dual")]
    pub key_class: Option<String>,
    /// Churn risk score at least, 0 to 100.
    #[param(minimum = 0, maximum = 100, example = 50)]
    pub churn_score_min: Option<i16>,
    /// `true` (the only value taken): the customers managed below the relationship level
    /// their value calls for: their `relationship_level` is lower than the
    /// `analytics.recommended_relationship_level` of the last computation (flagged by the
    /// computation; a customer raised since leaves the list at once, one lowered since
    /// joins it at the next computation).
    #[param(example = true)]
    pub relationship_below_recommended: Option<bool>,
    /// Volume × loyalty quadrants from the last computation, separated by commas:
    /// `large_loyal`, `large_disloyal`, `small_loyal`, `small_disloyal`.
    #[param(example = "large_disloyal")]
    pub loyalty_quadrant: Option<String>,
    /// Search name, organization, email and phone. Words (up to five, of two or more
    /// letters) must each be found closely, tolerating a typo or two, and a word's beginning
    /// matches it, so search works while typing; the best matches come first (a word exactly
    /// as typed before the words near it). Digits only (four or more)
    /// search phone numbers; text with `@` searches emails.
    #[param(example = "ada lovlace")]
    pub q: Option<String>,
    /// `created_at`, `updated_at`, `name`, each with `-` for descending (default
    /// `-created_at`), or `relevance` (default with `q`).
    #[param(inline)]
    pub sort: Option<CustomerSort>,
    /// Deleted customers: `exclude` (default), `include` or `only` (these two need
    /// `customers:delete`).
    #[param(inline)]
    pub deleted: Option<DeletedFilter>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
