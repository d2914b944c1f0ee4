//! What the API shows of a contact link and what it accepts (never the diesel structs).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::customers::json::CustomerInput;
use crate::http::patch::Patch;

crate::text_enum! {
    /// A part a person plays in their organization's purchases (DOMAIN.md section 9):
    /// `purchaser` (采购人员, places the order), `user` (使用者, uses what is bought),
    /// `technical_gatekeeper` (技术把关者, checks the technical side), `financial_gatekeeper`
    /// (财务把关者, checks the money), `decision_maker` (决策人, has the power to decide: the A
    /// of MAN).
    pub enum BuyingRole {
        Purchaser = "purchaser",
        User = "user",
        TechnicalGatekeeper = "technical_gatekeeper",
        FinancialGatekeeper = "financial_gatekeeper",
        DecisionMaker = "decision_maker",
    }
}

/// A person at an organization: an individual customer linked to an organization customer,
/// with their title there, their buying roles, and when the link began and ended. A link
/// whose `ended_at` is set is a past contact: it stays, as history.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Contact {
    /// Id of the link (UUIDv7); the events and audit rows about it name this id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e90")]
    pub id: Uuid,
    /// The organization customer.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub organization_id: Uuid,
    /// The individual customer: the person.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub person_id: Uuid,
    /// The person's job title at the organization.
    #[schema(example = "Head of Procurement")]
    pub title: Option<String>,
    /// The parts the person plays in the organization's purchases, in the order of
    /// `BuyingRole`, each at most once.
    #[schema(example = json!(["purchaser", "decision_maker"]))]
    pub buying_roles: Vec<BuyingRole>,
    /// Whether the person is the organization's primary contact. At most one current link of
    /// an organization is primary; a past link keeps the flag it had.
    #[schema(example = true)]
    pub primary: bool,
    /// Whether the link is current (`ended_at` is not set).
    #[schema(example = true)]
    pub current: bool,
    /// Since when the person is there.
    #[schema(example = "2024-03-01T00:00:00Z")]
    pub started_at: DateTime<Utc>,
    /// When the person left; `null` while they are there.
    #[schema(example = json!(null))]
    pub ended_at: Option<DateTime<Utc>>,
    /// Free notes about the person's part.
    #[schema(example = "Signs every order above 10 000 EUR.")]
    pub note: Option<String>,
    /// When the link was recorded.
    #[schema(example = "2026-12-03T09:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-12-03T09:00:00Z")]
    pub updated_at: DateTime<Utc>,
    /// Incremented by every change; the `ETag` is this number in quotes.
    #[schema(example = 1)]
    pub version: i64,
}

/// A person to link to the organization: an existing individual customer (`person_id`) or a
/// new one (`person`, created with every rule of `POST /v1/customers`), exactly one of the
/// two; and the link's own fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// An existing live individual customer, not yet linked to this organization.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b")]
    pub person_id: Option<Uuid>,
    /// A new individual customer to create and link (`kind` must be `individual`, the
    /// default); its errors name their fields under `person.`.
    pub person: Option<CustomerInput>,
    /// Job title, up to 200 characters.
    #[schema(example = "Head of Procurement", max_length = 200)]
    pub title: Option<String>,
    /// Buying roles; each at most once, up to 5.
    #[schema(example = json!(["purchaser", "decision_maker"]), max_items = 5)]
    pub buying_roles: Option<Vec<BuyingRole>>,
    /// Make the person the organization's primary contact (`409` on `primary` when another
    /// current contact is). Only a current link can become primary.
    #[schema(example = true)]
    pub primary: Option<bool>,
    /// Since when the person is there; not in the future; now by default.
    #[schema(example = "2024-03-01T00:00:00Z")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the person left, for a past contact recorded afterwards: not in the future, not
    /// before `started_at`.
    #[schema(example = json!(null))]
    pub ended_at: Option<DateTime<Utc>>,
    /// Up to 2 000 characters.
    #[schema(example = "Signs every order above 10 000 EUR.", max_length = 2000)]
    pub note: Option<String>,
}

/// Changes to a link (JSON merge patch: absent fields stay, `null` clears). Setting
/// `ended_at` records that the person left (the link becomes past); clearing it reopens it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// Job title, up to 200 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Chief Financial Officer", max_length = 200)]
    pub title: Patch<String>,
    /// The whole new set of buying roles (`null` or `[]` clears them); each at most once.
    #[serde(default)]
    #[schema(value_type = Option<Vec<BuyingRole>>, example = json!(["financial_gatekeeper"]), max_items = 5)]
    pub buying_roles: Patch<Vec<BuyingRole>>,
    /// Primary contact or not; cannot be `null`.
    #[serde(default)]
    #[schema(value_type = Option<bool>, example = false)]
    pub primary: Patch<bool>,
    /// Since when the person is there; not in the future; cannot be `null`.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2024-03-01T00:00:00Z")]
    pub started_at: Patch<DateTime<Utc>>,
    /// When the person left: not in the future, not before `started_at`; `null` makes the
    /// link current again.
    #[serde(default)]
    #[schema(value_type = Option<DateTime<Utc>>, example = "2026-11-30T17:00:00Z")]
    pub ended_at: Patch<DateTime<Utc>>,
    /// Up to 2 000 characters.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Left for a competitor.", max_length = 2000)]
    pub note: Patch<String>,
}

/// Filters of a contact list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// `true`: only current links; `false`: only past ones; both by default.
    #[param(example = true)]
    pub current: Option<bool>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A link as an export writes it: the link, and the natural keys of both sides (so that a
/// file imports into another Rapport holding the same customers).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ContactRow {
    #[serde(flatten)]
    pub contact: Contact,
    /// The organization's external id.
    #[schema(example = "erp-4711")]
    pub organization_external_id: Option<String>,
    /// The organization's email.
    #[schema(example = "orders@acme.example")]
    pub organization_email: Option<String>,
    /// The person's external id.
    #[schema(example = "crm-0042")]
    pub person_external_id: Option<String>,
    /// The person's email.
    #[schema(example = "ada@acme.example")]
    pub person_email: Option<String>,
}

/// A contact link as a CSV row (exports write these columns, imports read the writable
/// ones: both sides by external id or email, and the link's own fields).
pub const COLUMNS: &[crate::http::tabular::Column] = {
    use crate::http::tabular::{Kind::*, r, w};
    &[
        r("id", Text),
        r("organization_id", Text),
        w("organization_external_id", Text),
        w("organization_email", Text),
        r("person_id", Text),
        w("person_external_id", Text),
        w("person_email", Text),
        w("title", Text),
        w("buying_roles", List),
        w("primary", Bool),
        r("current", Bool),
        w("started_at", Text),
        w("ended_at", Text),
        w("note", Text),
        r("created_at", Text),
        r("updated_at", Text),
        r("version", Int),
    ]
};
