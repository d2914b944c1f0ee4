//! What the API shows of a customer and what it accepts (never the diesel structs).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Channel, ChurnCause};
use crate::http::error::Problem;
use crate::http::patch::Patch;

crate::text_enum! {
    /// An individual person, or an organization (often a wholesaler, retailer or intermediary).
    pub enum CustomerKind {
        Individual = "individual",
        Organization = "organization",
    }
}

crate::text_enum! {
    /// Stage of the relationship (DOMAIN.md section 2): `prospect` (not yet a customer),
    /// `acquaintance` (first purchases), `exploration` (testing the relationship), `stable`
    /// (regular business), `commitment` (firm, loyal), `dissolution` (activity falling),
    /// `churned` (gone).
    pub enum LifecycleStage {
        Prospect = "prospect",
        Acquaintance = "acquaintance",
        Exploration = "exploration",
        Stable = "stable",
        Commitment = "commitment",
        Dissolution = "dissolution",
        Churned = "churned",
    }
}

pub use super::figures::{CreditGrade, RelationshipLevel};

crate::text_enum! {
    /// How an individual buyer sees a sale (the course's sales-view types, DOMAIN.md section
    /// 9): `economic` (经济型, after the best price for the value), `ethical` (道德型, feels
    /// bound to buy from those they trust or support), `personalizing` (个性型, after a
    /// personal relationship with the seller), `convenience` (方便型, after the easiest way
    /// to buy). Individuals only.
    pub enum BuyerType {
        Economic = "economic",
        Ethical = "ethical",
        Personalizing = "personalizing",
        Convenience = "convenience",
    }
}

crate::text_enum! {
    /// What kind of organisation a customer organisation is (DOMAIN.md section 9):
    /// `government` (政府机构, buying for the state), `business` (商业客户), `non_profit`, or
    /// `reseller` (a wholesaler, retailer or intermediary buying to sell on). Organisations
    /// only.
    pub enum OrganizationType {
        Government = "government",
        Business = "business",
        NonProfit = "non_profit",
        Reseller = "reseller",
    }
}

crate::text_enum! {
    /// Urban or rural region.
    pub enum RegionType {
        Urban = "urban",
        Rural = "rural",
    }
}

crate::text_enum! {
    /// Gender, as the customer gave it.
    pub enum Gender {
        Female = "female",
        Male = "male",
        NonBinary = "non_binary",
        Undisclosed = "undisclosed",
    }
}

crate::text_enum! {
    /// Income band, lowest to highest.
    pub enum IncomeBand {
        Low = "low",
        LowerMiddle = "lower_middle",
        Middle = "middle",
        UpperMiddle = "upper_middle",
        High = "high",
    }
}

crate::text_enum! {
    /// The MAN grade of a prospect, derived from its qualification (DOMAIN.md section 2):
    /// `ideal` (M+A+N: money, authority and need; the best sales target), `reachable`
    /// (M+A+n, M+a+N, m+A+N, m+A+n, M+a+n: needs a matching strategy: find the decision
    /// maker, check credit, cultivate the need), `not_a_prospect` (m+a+n, m+a+N: stop contact).
    pub enum ProspectGrade {
        Ideal = "ideal",
        Reachable = "reachable",
        NotAProspect = "not_a_prospect",
    }
}

/// A customer's credit standing: its grade, the most it may owe, and when both were last
/// reviewed.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Jsonb)]
pub struct Credit {
    /// `a` (best) to `d` (worst).
    pub grade: CreditGrade,
    /// The most the customer may owe, in minor units of `currency` (500000 = 5 000.00);
    /// `null`: no limit set.
    #[schema(example = 500000)]
    pub limit: Option<i64>,
    /// ISO 4217 code of `limit`; set exactly when `limit` is.
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    /// When the grade and limit were last reviewed.
    #[schema(example = "2026-12-01T09:00:00Z")]
    pub reviewed_at: DateTime<Utc>,
}

/// Postal address.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Jsonb)]
pub struct Address {
    /// Street and number.
    #[schema(example = "Unter den Linden 1")]
    pub line1: Option<String>,
    /// Additional line (floor, c/o).
    #[schema(example = "3rd floor")]
    pub line2: Option<String>,
    /// City or town.
    #[schema(example = "Berlin")]
    pub city: Option<String>,
    /// State, province or region.
    #[schema(example = "Berlin")]
    pub region: Option<String>,
    /// Postal code, up to 20 characters.
    #[schema(example = "10117")]
    pub postal_code: Option<String>,
    /// ISO 3166-1 alpha-2 code, upper case.
    #[schema(example = "DE")]
    pub country: Option<String>,
}

crate::jsonb_sql!(Address);
crate::jsonb_sql!(Qualification);
crate::jsonb_sql!(Credit);

/// One marketing consent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsentState {
    /// Whether the customer agreed to be contacted this way.
    pub granted: bool,
    /// When consent was last given or withdrawn; `null` if it never was.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub at: Option<DateTime<Utc>>,
}

/// Explicit, auditable consent to marketing, per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Consent {
    /// Consent to marketing by email.
    pub email: ConsentState,
    /// Consent to marketing by SMS.
    pub sms: ConsentState,
}

crate::text_enum! {
    /// Where a qualification's `authority` comes from: `manual` (set by hand, the default) or
    /// `derived` (an organization's only: true while it has a current contact with the
    /// `decision_maker` buying role, kept so as its contacts change).
    #[derive(Default)]
    pub enum AuthoritySource {
        #[default]
        Manual = "manual",
        Derived = "derived",
    }
}

/// MAN qualification of a prospect: can pay, can decide, has the need.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    diesel::expression::AsExpression,
    diesel::deserialize::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Jsonb)]
pub struct Qualification {
    /// Money: the prospect can pay.
    pub money: bool,
    /// Authority: the contact can decide.
    pub authority: bool,
    /// Need: the prospect has the need.
    pub need: bool,
    /// Whether `authority` was set by hand or is derived from the organization's contacts.
    #[serde(default)]
    pub authority_source: AuthoritySource,
}

/// A customer: identifying, demographic, marketing and overlay data, and the relationship.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Customer {
    /// Customer id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub id: Uuid,
    pub kind: CustomerKind,
    /// Full name of a person, or the name of an organization.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The organization a person belongs to, or an organization's legal name.
    #[schema(example = "Analytical Engines Ltd")]
    pub organization_name: Option<String>,
    /// Email, unique among customers whatever its case.
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    /// Phone in E.164 form.
    #[schema(example = "+493012345678")]
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<Address>,
    /// Urban or rural region.
    pub region_type: Option<RegionType>,
    /// Date of birth.
    #[schema(example = "1990-12-10")]
    pub birth_date: Option<NaiveDate>,
    /// Age in whole years today, from `birth_date`.
    #[schema(example = 35)]
    pub age: Option<u32>,
    /// Gender, as the customer gave it.
    pub gender: Option<Gender>,
    /// Occupation.
    #[schema(example = "Engineer")]
    pub occupation: Option<String>,
    /// Income band.
    pub income_band: Option<IncomeBand>,
    /// ID document number: sensitive. In full only for callers with `pii:read`, otherwise
    /// masked to its last four characters.
    #[schema(example = "****1234")]
    pub national_id: Option<String>,
    /// How the customer prefers to be contacted.
    pub preferred_channel: Option<Channel>,
    /// Marketing consent per channel, with the time it was given or withdrawn.
    pub consent: Consent,
    /// Free labels, lower case.
    #[schema(example = json!(["vip", "newsletter"]))]
    pub tags: Vec<String>,
    #[schema(schema_with = attributes_schema)]
    pub attributes: Value,
    /// How the customer was acquired.
    #[schema(example = "webshop")]
    pub source: Option<String>,
    /// The integration's own id for this customer; unique; upsert with
    /// `PUT /v1/customers/by-external-id/{external_id}`.
    #[schema(example = "shop-000123")]
    pub external_id: Option<String>,
    /// The staff user responsible for the relationship.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub account_manager_id: Option<Uuid>,
    /// Stage of the relationship; every change is in the lifecycle history.
    pub lifecycle_stage: LifecycleStage,
    /// How actively the relationship is managed.
    pub relationship_level: RelationshipLevel,
    /// MAN qualification of a prospect.
    pub qualification: Option<Qualification>,
    /// Derived from `qualification` (all three known).
    pub prospect_grade: Option<ProspectGrade>,
    /// Credit standing (等级信用): grade, limit and time of review; `null` until graded. An
    /// opportunity of a customer whose `qualification.money` is false may not move past the
    /// pipeline's `credit_required_after` stage without it.
    pub credit: Option<Credit>,
    /// An individual's sales-view type; always `null` for an organization.
    pub buyer_type: Option<BuyerType>,
    /// An organization's type; always `null` for an individual.
    pub organization_type: Option<OrganizationType>,
    /// When the customer was created.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub created_at: DateTime<Utc>,
    /// When the customer last changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
    /// Set when the customer is deleted (restorable by managers).
    #[schema(example = json!(null))]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Set when personal data was erased: the record is an anonymous shell from then on.
    #[schema(example = json!(null))]
    pub erased_at: Option<DateTime<Utc>>,
    /// The organization this organization belongs to (its parent in the group); `null` for
    /// a group's root, an organization on its own, and every individual. The whole tree
    /// below an organization is at `GET /v1/customers/{id}/subsidiaries`.
    #[schema(example = json!(null))]
    pub parent_id: Option<Uuid>,
    /// The customer who referred this one (brought them in). The referrer's `referrals` and
    /// `referred_value` are at `GET /v1/customers/{id}/value`.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub referred_by_id: Option<Uuid>,
    /// Set by hand: the customer is an influential key customer (重点客户) whatever the
    /// number of their referrals (see `key_class`).
    #[schema(example = false)]
    pub influential: bool,
    /// Value tier, value matrix class, RFM scores and churn risk as of the last computation
    /// (see `/v1/analytics/settings`). On `GET /v1/customers/{id}` and the list, for callers
    /// with `analytics:read`, once the customer has been computed; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analytics: Option<super::figures::CustomerAnalytics>,
    /// Only in a search with `include=organizations` (`GET /v1/customers?q=…`): the person
    /// the search found through whom this organization is listed (one of its current
    /// contacts, the best ranked one); absent when the customer matched `q` itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5c")]
    pub matched_via: Option<Uuid>,
}

fn attributes_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "Custom and third-party (overlay) data: a JSON object. Filter the list with \
         `attributes.<key>=<value>`.",
        serde_json::json!({"loyalty_card": "A-1234", "segment": "b2c"}),
        false,
    )
}

fn attributes_input_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "Custom attributes: a JSON object of up to 100 keys (letters, digits, `_` or `-`), at \
         most 16 KiB. Merged key by key: `null` removes a key.",
        serde_json::json!({"segment": "b2c", "old_key": null}),
        true,
    )
}

/// Address changes: as a JSON merge patch, absent fields stay.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// Street and number, up to 200 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Unter den Linden 1", max_length = 200)]
    pub line1: Patch<String>,
    /// Additional line, up to 200 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "3rd floor", max_length = 200)]
    pub line2: Patch<String>,
    /// City, up to 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Berlin", max_length = 100)]
    pub city: Patch<String>,
    /// State, province or region, up to 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Berlin", max_length = 100)]
    pub region: Patch<String>,
    /// Postal code, up to 20 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "10117", max_length = 20)]
    pub postal_code: Patch<String>,
    /// ISO 3166-1 alpha-2 code (any case).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "DE", pattern = "^[A-Za-z]{2}$")]
    pub country: Patch<String>,
}

/// A change of one consent.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentInput {
    /// Whether the customer agrees to be contacted this way.
    pub granted: bool,
    /// When it was given or withdrawn (not in the future); now, when absent and `granted`
    /// changes.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentsInput {
    /// Consent to marketing by email.
    #[serde(default)]
    pub email: Option<ConsentInput>,
    /// Consent to marketing by SMS.
    #[serde(default)]
    pub sms: Option<ConsentInput>,
}

/// Qualification changes: absent flags stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QualificationInput {
    /// Money: the prospect can pay.
    pub money: Option<bool>,
    /// Authority: the contact can decide. Setting it makes it `manual`.
    pub authority: Option<bool>,
    /// Need: the prospect has the need.
    pub need: Option<bool>,
    /// `derived` (organizations only) hands `authority` to the contacts: true while a
    /// current contact is a `decision_maker`; `authority` may then be left out, even when the
    /// qualification is first set. Not with `authority` in the same change. Imports cannot
    /// set it.
    pub authority_source: Option<AuthoritySource>,
}

/// Credit changes: absent fields stay as they are, `null` clears `limit` (and its
/// `currency`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditInput {
    /// `a` (best) to `d` (worst); required when the credit is first set.
    #[serde(default)]
    pub grade: Option<CreditGrade>,
    /// The most the customer may owe, in minor units of `currency`, from 0 to 10^13;
    /// `null` removes the limit.
    #[serde(default)]
    #[schema(value_type = Option<i64>, example = 500000, minimum = 0)]
    pub limit: Patch<i64>,
    /// ISO 4217 code, upper case: required with a `limit` (unless the limit already has
    /// one), refused without.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "EUR", pattern = "^[A-Z]{3}$")]
    pub currency: Patch<String>,
    /// When the grade and limit were reviewed (not in the future); now by default whenever
    /// the grade or limit changes.
    #[serde(default)]
    #[schema(example = "2026-12-01T09:00:00Z")]
    pub reviewed_at: Option<DateTime<Utc>>,
}

/// A customer to create, or changes to one (JSON merge patch, RFC 7396): a field absent
/// stays as it is (or takes its default on creation), `null` clears it, a value sets it.
/// `address`, `consent`, `qualification`, `credit` and `attributes` merge key by key; `tags` is
/// replaced whole.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// `individual` by default.
    #[serde(default)]
    #[schema(value_type = CustomerKind)]
    pub kind: Patch<CustomerKind>,
    /// Required on creation, 1 to 200 characters.
    #[serde(default)]
    #[schema(value_type = String, example = "Ada Lovelace", min_length = 1, max_length = 200)]
    pub name: Patch<String>,
    /// The organization a person belongs to, or an organization's legal name; up to 200
    /// characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Analytical Engines Ltd", max_length = 200)]
    pub organization_name: Patch<String>,
    /// Email, unique among customers whatever its case.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "ada@example.com")]
    pub email: Patch<String>,
    /// International (`+49 30 1234567`), or national to `address.country`; stored as E.164.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "+49 30 12345678")]
    pub phone: Patch<String>,
    /// Postal address; its fields merge one by one.
    #[serde(default)]
    #[schema(value_type = Option<AddressInput>)]
    pub address: Patch<AddressInput>,
    /// Urban or rural region.
    #[serde(default)]
    #[schema(value_type = Option<RegionType>)]
    pub region_type: Patch<RegionType>,
    /// Not in the future, not before 1900.
    #[serde(default)]
    #[schema(value_type = Option<NaiveDate>, example = "1990-12-10")]
    pub birth_date: Patch<NaiveDate>,
    /// Gender, as the customer gave it.
    #[serde(default)]
    #[schema(value_type = Option<Gender>)]
    pub gender: Patch<Gender>,
    /// Occupation, up to 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Engineer", max_length = 100)]
    pub occupation: Patch<String>,
    /// Income band.
    #[serde(default)]
    #[schema(value_type = Option<IncomeBand>)]
    pub income_band: Patch<IncomeBand>,
    /// ID document number, 1 to 64 letters, digits, spaces, `-` or `/` (the pattern names
    /// the ASCII ones; letters and digits of other scripts are accepted too).
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "T22000129", min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9 /-]*[A-Za-z0-9/-][A-Za-z0-9 /-]*$")]
    pub national_id: Patch<String>,
    /// How the customer prefers to be contacted.
    #[serde(default)]
    #[schema(value_type = Option<Channel>)]
    pub preferred_channel: Patch<Channel>,
    /// Marketing consent per channel; each given one replaces its state.
    #[serde(default)]
    #[schema(value_type = Option<ConsentsInput>)]
    pub consent: Option<ConsentsInput>,
    /// Up to 50 labels of 1 to 50 characters (no commas or semicolons), stored lower case.
    #[serde(default)]
    #[schema(value_type = Option<Vec<String>>, example = json!(["vip"]), max_items = 50)]
    pub tags: Patch<Vec<String>>,
    #[serde(default)]
    #[schema(schema_with = attributes_input_schema)]
    pub attributes: Patch<Value>,
    /// How the customer was acquired, up to 100 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "webshop", max_length = 100)]
    pub source: Patch<String>,
    /// Up to 255 visible ASCII characters other than `/ ? # %`.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "shop-000123", min_length = 1, max_length = 255, pattern = "^[!\"$&-.0->@-~]+$")]
    pub external_id: Patch<String>,
    /// An active staff user.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-0000-7000-8000-000000000001")]
    pub account_manager_id: Patch<Uuid>,
    /// `prospect` by default. Every change is recorded in the lifecycle history.
    #[serde(default)]
    #[schema(value_type = LifecycleStage)]
    pub lifecycle_stage: Patch<LifecycleStage>,
    /// Why the stage changes, kept in the lifecycle history (with `lifecycle_stage` only).
    #[schema(example = "second purchase within a month", max_length = 500)]
    pub lifecycle_reason: Option<String>,
    /// Why the customer was lost: required with a move into `dissolution` or `churned` (a
    /// creation in one of them too), refused with any other change; kept in the lifecycle
    /// history beside `lifecycle_reason`.
    #[schema(value_type = Option<ChurnCause>, example = "price")]
    pub reason_code: Option<ChurnCause>,
    /// `basic` by default.
    #[serde(default)]
    #[schema(value_type = RelationshipLevel)]
    pub relationship_level: Patch<RelationshipLevel>,
    /// MAN qualification: all three flags when first set, then any of them.
    #[serde(default)]
    #[schema(value_type = Option<QualificationInput>)]
    pub qualification: Patch<QualificationInput>,
    /// Organizations only: the organization this one belongs to, a live organization the
    /// caller can see. No cycles (an organization cannot sit below itself: `422` naming
    /// the cycle's ids) and at most 10 levels in a group. `null` takes it out of its group.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub parent_id: Patch<Uuid>,
    /// The customer who referred this one: a live customer the caller can see, never the
    /// customer itself.
    #[serde(default)]
    #[schema(value_type = Option<Uuid>, example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub referred_by_id: Patch<Uuid>,
    /// Makes the customer an influential key customer by hand (`false` by default).
    #[serde(default)]
    #[schema(value_type = bool, example = true)]
    pub influential: Patch<bool>,
    /// Credit standing: `grade` when first set, then any of its fields; `null` removes it.
    #[serde(default)]
    #[schema(value_type = Option<CreditInput>)]
    pub credit: Patch<CreditInput>,
    /// An individual's sales-view type (`422` on an organization; clear it with `null`
    /// before making an individual an organization).
    #[serde(default)]
    #[schema(value_type = Option<BuyerType>)]
    pub buyer_type: Patch<BuyerType>,
    /// An organization's type (`422` on an individual; clear it with `null` before making
    /// an organization an individual).
    #[serde(default)]
    #[schema(value_type = Option<OrganizationType>)]
    pub organization_type: Patch<OrganizationType>,
}

/// One change of lifecycle stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleChange {
    /// Id of this entry.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub id: Uuid,
    /// The stage before; `null` for the stage the customer was created in.
    pub from: Option<LifecycleStage>,
    /// The stage after.
    pub to: LifecycleStage,
    /// When the stage changed.
    #[schema(example = "2026-11-23T10:15:00Z")]
    pub changed_at: DateTime<Utc>,
    /// Who changed it: `user`, `api_client`, `service` or `system`.
    #[schema(example = "user")]
    pub actor_type: String,
    /// Id of the user or client, or the service's name.
    #[schema(example = "0193b0a6-0000-7000-8000-000000000001")]
    pub actor_id: String,
    /// Why, as given with the change.
    #[schema(example = "second purchase within a month")]
    pub reason: Option<String>,
    /// Why the customer was lost, for a move into `dissolution` or `churned`; `null` for
    /// other moves (and for loss moves recorded before codes existed).
    #[schema(value_type = Option<ChurnCause>, example = "price")]
    pub reason_code: Option<ChurnCause>,
}

/// Lifecycle history, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleHistory {
    /// Every change, oldest first.
    pub data: Vec<LifecycleChange>,
}

/// One lifecycle stage as the course teaches it, for showing "what to do now" beside a
/// customer's stage.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleStageGuide {
    /// Rapport's key for the stage, as in `lifecycle_stage`.
    pub key: LifecycleStage,
    /// The stage's place in the relationship, from 1 (`prospect`) to 7 (`churned`).
    #[schema(example = 2, minimum = 1, maximum = 7)]
    pub position: u8,
    /// The course's name for the stage (初识期, 矜持期, 平稳期, 稳固期, 思异期); `null` for
    /// `prospect` and `churned`, which lie before and after the relationship the course
    /// describes.
    #[schema(example = "初识期")]
    pub course_name: Option<String>,
    /// What the stage means.
    #[schema(example = "First purchases: the customer and the company get to know each other.")]
    pub description: String,
    /// Rapport's management focus for the stage.
    #[schema(example = json!(["product and service quality", "breadth of offer"]))]
    pub focus: Vec<String>,
    /// The course's management focus for the stage; `null` where the course gives none
    /// (稳固期 `commitment`, 思异期 `dissolution`, and the stages it does not name).
    #[schema(example = json!(["a rich choice of brands", "product and service quality",
        "a shared view of the value of goods, service and price", "free non-material extras"]))]
    pub course_focus: Option<Vec<String>>,
}

/// `GET /v1/customers/{id}/subsidiaries`: how deep to go.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubsidiariesQuery {
    /// Levels below the organization, 1 (its direct subsidiaries) to 10; 10 by default.
    #[param(minimum = 1, maximum = 10, example = 2)]
    pub depth: Option<i32>,
}

/// One organization of a group, below the one asked about.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subsidiary {
    /// The subsidiary's customer id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5c")]
    pub id: Uuid,
    /// Its parent: the organization asked about, or a subsidiary listed before it.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub parent_id: Uuid,
    /// Its name.
    #[schema(example = "Analytical Engines GmbH")]
    pub name: String,
    /// Its external id.
    #[schema(example = "erp-4711")]
    pub external_id: Option<String>,
    /// Levels below the organization asked about: 1 for a direct subsidiary.
    #[schema(example = 1, minimum = 1, maximum = 10)]
    pub depth: i32,
}

/// The tree of an organization's subsidiaries, flattened depth first: each subsidiary
/// follows its parent (and the parent's earlier subsidiaries with their own trees), so
/// `parent_id` and `depth` rebuild the tree in one pass.
#[derive(Debug, Serialize, ToSchema)]
pub struct Subsidiaries {
    /// The organization asked about.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub id: Uuid,
    /// Its parent, when it is itself a subsidiary.
    #[schema(example = json!(null))]
    pub parent_id: Option<Uuid>,
    /// The root of its group (itself when it has no parent).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub root_id: Uuid,
    /// The subsidiaries down to `depth` levels, depth first; deleted ones (with the tree
    /// below them) are left out, and so are, for a caller limited to their own customers,
    /// those they do not manage (with the tree below them).
    pub data: Vec<Subsidiary>,
    /// Whether more than 1000 subsidiaries were found: only the first 1000 are listed.
    #[schema(example = false)]
    pub truncated: bool,
}

/// Every lifecycle stage, in order.
#[derive(Debug, Serialize, ToSchema)]
pub struct LifecycleStages {
    /// The stages, from `prospect` to `churned`.
    pub data: Vec<LifecycleStageGuide>,
}

/// `GET /v1/lifecycle/stages` takes no parameters (any given is a `400`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParameters {}

crate::text_enum! {
    /// What a batch item does.
    pub enum BatchAction {
        /// Create a new customer.
        Create = "create",
        /// Create or update the customer with the item's `external_id`.
        Upsert = "upsert",
    }
}

/// One item of a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    pub action: BatchAction,
    /// The customer (as for `POST /v1/customers`); for `upsert`, with its `external_id`.
    #[schema(value_type = CustomerInput)]
    pub customer: Value,
}

/// Up to 100 creates or upserts, each applied on its own.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to 100 items.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<BatchItem>,
}

/// The outcome of one batch item.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResult {
    /// Position of the item in the request.
    #[schema(example = 0)]
    pub index: usize,
    /// The status the item would have had on its own: 201 created, 200 updated, 4xx refused.
    #[schema(example = 201)]
    pub status: u16,
    /// The customer, when the item was applied.
    pub customer: Option<Customer>,
    /// Why the item was refused (field paths are within the item's `customer`).
    pub problem: Option<Problem>,
}

/// Per-item outcomes, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One outcome per item, in request order.
    pub results: Vec<BatchResult>,
}

crate::text_enum! {
    /// Which records a list includes, by deletion.
    pub enum DeletedFilter {
        /// Live records only (the default).
        Exclude = "exclude",
        /// Live and deleted records (needs the area's `delete` permission).
        Include = "include",
        /// Deleted records only (needs the area's `delete` permission).
        Only = "only",
    }
}

impl DeletedFilter {
    /// The filter a list asked for (`exclude` when absent), refused (`403`) when it includes
    /// deleted `what` and the caller lacks the area's `delete` permission.
    pub fn checked(
        requested: Option<Self>,
        principal: &crate::auth::Principal,
        delete: crate::auth::Scope,
        what: &str,
    ) -> Result<Self, crate::http::error::ApiError> {
        let filter = requested.unwrap_or(Self::Exclude);
        if filter != Self::Exclude && !principal.can(delete) {
            return Err(crate::http::error::ApiError::forbidden(format!(
                "listing deleted {what} needs the `{delete}` permission"
            )));
        }
        Ok(filter)
    }
}

/// What an import row may say beyond the customer's own columns: why its stage moves (the
/// lifecycle entry's free text and, for a move into `dissolution` or `churned`, its code).
/// They belong to the move, not the customer, so exports have no such columns.
pub const IMPORT_ONLY_COLUMNS: &[crate::http::tabular::Column] = {
    use crate::http::tabular::{Kind::*, w};
    &[w("lifecycle_reason", Text), w("reason_code", Text)]
};

/// A customer as a CSV row (exports write these columns, imports read them).
pub const COLUMNS: &[crate::http::tabular::Column] = {
    use crate::http::tabular::{Kind::*, r, w};
    &[
        r("id", Text),
        w("kind", Text),
        w("name", Text),
        w("organization_name", Text),
        w("email", Text),
        w("phone", Text),
        w("address.line1", Text),
        w("address.line2", Text),
        w("address.city", Text),
        w("address.region", Text),
        w("address.postal_code", Text),
        w("address.country", Text),
        w("region_type", Text),
        w("birth_date", Text),
        r("age", Int),
        w("gender", Text),
        w("occupation", Text),
        w("income_band", Text),
        w("national_id", Text),
        w("preferred_channel", Text),
        w("consent.email.granted", Bool),
        w("consent.email.at", Text),
        w("consent.sms.granted", Bool),
        w("consent.sms.at", Text),
        w("tags", List),
        w("attributes", Json),
        w("source", Text),
        w("external_id", Text),
        w("account_manager_id", Text),
        w("lifecycle_stage", Text),
        w("relationship_level", Text),
        w("qualification.money", Bool),
        w("qualification.authority", Bool),
        w("qualification.need", Bool),
        r("qualification.authority_source", Text),
        r("prospect_grade", Text),
        w("credit.grade", Text),
        w("credit.limit", Int),
        w("credit.currency", Text),
        w("credit.reviewed_at", Text),
        w("buyer_type", Text),
        w("organization_type", Text),
        r("created_at", Text),
        r("updated_at", Text),
        r("version", Int),
        r("deleted_at", Text),
        r("erased_at", Text),
        w("parent_id", Text),
        w("referred_by_id", Text),
        w("influential", Bool),
    ]
};

crate::text_enum! {
    /// Why two customers look like one person or organization. Each reason has a weight (see
    /// `docs/duplicates.md`): `external_id` 95, `email` 90, `phone` 80, `name_address` 70.
    ///
    /// - `email`: the same address once lower-cased, without dots in the local part and
    ///   without a `+tag` (`Ada.Lovelace+news@example.com` is `adalovelace@example.com`);
    /// - `phone`: the same number in E.164;
    /// - `name_address`: names at least 50 % alike (trigram similarity) at the same postal
    ///   code and street line;
    /// - `external_id`: one customer's `external_id`, or an id under an attribute whose key
    ///   ends in `_id` (`hubspot_id`), is another's.
    pub enum DuplicateReason {
        ExternalId = "external_id",
        Email = "email",
        Phone = "phone",
        NameAddress = "name_address",
    }
}

crate::text_enum! {
    /// What `POST /v1/customers` does when the new customer matches an existing one by the
    /// duplicate rules: `fail` answers `409` naming the match, `skip` answers `200` with the
    /// existing customer and writes nothing, `merge` fills the existing customer's empty
    /// fields from the request (tags and attributes added) and answers `200` with it.
    pub enum OnDuplicate {
        Fail = "fail",
        Skip = "skip",
        Merge = "merge",
    }
}

crate::text_enum! {
    /// Whose value a merge keeps for a field: the `survivor`'s (filled from a merged record
    /// when the survivor has none), the `other` record's (the first of `merge_ids` that has
    /// one, else the survivor's), or the `newer` one (of the record updated last among those
    /// that have a value).
    pub enum FieldChoice {
        Survivor = "survivor",
        Other = "other",
        Newer = "newer",
    }
}

/// The query of `POST /v1/customers`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreateQuery {
    /// Check the new customer against the duplicate rules first, and what to do on a match.
    /// Without it no check is made (the email and external id must still be unique).
    #[param(inline)]
    pub on_duplicate: Option<OnDuplicate>,
}

/// Where a merged customer went: `GET /v1/customers/{id}` and
/// `GET /v1/customers/by-external-id/{external_id}` of a merged customer answer `301` with
/// this body and the survivor in `Location`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a",
    "merged_into": "0193b0a6-0000-7d2a-9f3e-2b6f1c9d4e5a",
    "location": "/v1/customers/0193b0a6-0000-7d2a-9f3e-2b6f1c9d4e5a"
}))]
pub struct MergedCustomer {
    /// The merged customer's id (a tombstone now).
    pub id: Uuid,
    /// The customer it was merged into.
    pub merged_into: Uuid,
    /// The survivor's URL, as in `Location`.
    pub location: String,
}
