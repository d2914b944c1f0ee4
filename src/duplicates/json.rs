//! Wire types of duplicate finding, merging and unmerging.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::customers::json::{Customer, CustomerKind, DuplicateReason, FieldChoice};

/// The query of `GET /v1/customers/duplicates`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DuplicatesQuery {
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only pairs that match for this reason (their score still counts every reason).
    #[param(inline)]
    pub reason: Option<DuplicateReason>,
}

/// One customer of a likely duplicate pair: enough to tell them apart.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicateCustomer {
    /// The customer's id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub id: Uuid,
    pub kind: CustomerKind,
    /// The customer's name.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// The email as stored.
    #[schema(example = "ada.lovelace+news@example.com")]
    pub email: Option<String>,
    /// The phone in E.164.
    #[schema(example = "+4930123456")]
    pub phone: Option<String>,
    /// The integration's id for the customer.
    #[schema(example = "shop-000123")]
    pub external_id: Option<String>,
    /// When the customer was created.
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When the customer last changed (what `newer` in a merge compares).
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub updated_at: DateTime<Utc>,
}

/// Two live customers of one kind that look like one, with why and how sure.
#[derive(Debug, Serialize, ToSchema)]
pub struct DuplicatePair {
    /// The two customers, the older id first.
    #[schema(min_items = 2, max_items = 2)]
    pub customers: Vec<DuplicateCustomer>,
    /// 0–100: `100 − 100 × Π (1 − weight/100)` over the reasons, rounded; weights:
    /// `external_id` 95, `email` 90, `phone` 80, `name_address` 70.
    #[schema(minimum = 0, maximum = 100, example = 98)]
    pub score: i64,
    /// Every reason the two match for, alphabetically.
    pub reasons: Vec<DuplicateReason>,
}

/// Two customers staff know are not one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"customer_ids": [
    "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a", "0193b0a6-8d2f-7d2a-9f3e-2b6f1c9d4e5b"]}))]
pub struct NotDuplicateInput {
    /// Exactly two different customers.
    #[schema(min_items = 2, max_items = 2)]
    pub customer_ids: Vec<Uuid>,
}

/// A pair marked as not duplicate: never listed again.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotDuplicate {
    /// The two customers, the smaller id first.
    #[schema(min_items = 2, max_items = 2, example = json!(["0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a", "0193b0a6-8d2f-7d2a-9f3e-2b6f1c9d4e5b"]))]
    pub customer_ids: Vec<Uuid>,
    /// When the pair was first marked.
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub marked_at: DateTime<Utc>,
}

/// What to merge into the survivor, and whose values to keep.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "merge_ids": ["0193b0a6-8d2f-7d2a-9f3e-2b6f1c9d4e5b"],
    "fields": {"email": "other", "name": "newer"}
}))]
pub struct MergeInput {
    /// The customers merged into the survivor (1–10, live, of the survivor's kind); they
    /// become tombstones that point to it.
    #[schema(min_items = 1, max_items = 10)]
    pub merge_ids: Vec<Uuid>,
    /// Per field, whose value to keep (`survivor` for a field not named): `name`,
    /// `organization_name`, `email`, `phone`, `address`, `region_type`, `birth_date`,
    /// `gender`, `occupation`, `income_band`, `national_id`, `preferred_channel`, `consent`,
    /// `attributes`, `source`, `external_id`, `account_manager_id`, `lifecycle_stage`,
    /// `relationship_level`, `qualification`. Tags are always united.
    #[serde(default)]
    pub fields: HashMap<String, FieldChoice>,
}

/// How many rows of each kind moved to the survivor (or back, on unmerge).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct MovedCounts {
    /// Interactions of the merged customers.
    #[schema(example = 12)]
    pub interactions: i64,
    /// Interactions whose contact person was a merged customer.
    #[schema(example = 1)]
    pub interaction_contacts: i64,
    /// Purchases of the merged customers.
    #[schema(example = 3)]
    pub purchases: i64,
    /// Points added to (or taken back from) the survivor's balance.
    #[schema(example = 80)]
    pub loyalty_points: i64,
    /// Points lots, each with its expiry.
    #[schema(example = 2)]
    pub loyalty_lots: i64,
    /// Points ledger entries.
    #[schema(example = 2)]
    pub loyalty_ledger_entries: i64,
    /// Tier history entries.
    #[schema(example = 1)]
    pub loyalty_tier_changes: i64,
    /// Survey responses.
    #[schema(example = 1)]
    pub survey_responses: i64,
    /// Opportunities of the merged customers.
    #[schema(example = 1)]
    pub opportunities: i64,
    /// Opportunities whose contact people named a merged customer.
    #[schema(example = 1)]
    pub opportunity_contacts: i64,
    /// Contact links (people at organizations) of the merged customers.
    #[schema(example = 1)]
    pub contact_links: i64,
}

/// What a merge left with the tombstones, and why.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeptCounts {
    /// Responses to a one-response-per-customer survey the survivor (or an earlier merged
    /// customer) had answered already: the survivor keeps its own, these stay with their
    /// tombstone.
    #[schema(example = json!(["0193b0a6-9e3a-7d2a-9f3e-2b6f1c9d4e5c"]))]
    pub survey_responses: Vec<Uuid>,
    /// Contact links the survivor already had (the same person at the same organization).
    #[schema(example = json!([]))]
    pub contact_links: Vec<Uuid>,
    /// Lifecycle history entries: each record keeps its own history.
    #[schema(example = 2)]
    pub lifecycle_changes: i64,
}

/// What a merge did.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MergeSummary {
    /// The merge's id (for `unmerge`).
    #[schema(example = "0193b0a6-9e3a-7d2a-9f3e-2b6f1c9d4e5c")]
    pub merge_id: Uuid,
    /// The customer the others were merged into.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub survivor_id: Uuid,
    /// The customers merged in, now tombstones.
    #[schema(example = json!(["0193b0a6-8d2f-7d2a-9f3e-2b6f1c9d4e5b"]))]
    pub merged_ids: Vec<Uuid>,
    pub moved: MovedCounts,
    pub kept: KeptCounts,
    /// Tags the survivor gained.
    #[schema(example = json!(["newsletter"]))]
    pub tags_added: Vec<String>,
    /// Attribute keys the survivor gained.
    #[schema(example = json!(["hubspot_id"]))]
    pub attributes_added: Vec<String>,
    /// The loyalty tier the survivor moved up to, its summed points re-evaluated as a
    /// purchase would (never down); `null` when it stayed.
    #[serde(default)]
    #[schema(example = "gold")]
    pub tier_raised_to: Option<String>,
    /// When the merge was made.
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub merged_at: DateTime<Utc>,
    /// Until when `POST /v1/customers/{survivor_id}/unmerge` may undo it.
    #[schema(example = "2026-12-11T10:00:00Z")]
    pub unmerge_until: DateTime<Utc>,
}

/// The answer of a merge: what it did, and the survivor as it is now.
#[derive(Debug, Serialize, ToSchema)]
pub struct MergeReport {
    #[serde(flatten)]
    pub summary: MergeSummary,
    pub survivor: Customer,
}

/// Which merge to undo.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"merge_id": "0193b0a6-9e3a-7d2a-9f3e-2b6f1c9d4e5c"}))]
pub struct UnmergeInput {
    /// The merge to undo; the survivor's latest merge when absent.
    pub merge_id: Option<Uuid>,
}

/// What an unmerge did.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnmergeReport {
    /// The merge undone.
    #[schema(example = "0193b0a6-9e3a-7d2a-9f3e-2b6f1c9d4e5c")]
    pub merge_id: Uuid,
    pub survivor: Customer,
    /// The customers brought back, as they were before the merge.
    pub restored: Vec<Customer>,
    /// What moved back to them.
    pub moved_back: MovedCounts,
}
