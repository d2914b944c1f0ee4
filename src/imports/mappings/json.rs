//! Import mappings as the API shows and accepts them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::http::patch::Patch;
use crate::imports::resource::Resource;

crate::text_enum! {
    /// What an empty source means for a field: `keep` (the field is left as it is: out of
    /// the row, so an update keeps its value and a creation leaves it empty) or `clear`
    /// (the field is emptied: `null`).
    pub enum Blank {
        Keep = "keep",
        Clear = "clear",
    }
}

crate::text_enum! {
    /// A ready-made mapping for another system's export: `hubspot_contacts`,
    /// `hubspot_companies`, `salesforce_contacts`, `salesforce_accounts`, `twenty_people`,
    /// `twenty_companies`.
    pub enum PresetKey {
        HubspotContacts = "hubspot_contacts",
        HubspotCompanies = "hubspot_companies",
        SalesforceContacts = "salesforce_contacts",
        SalesforceAccounts = "salesforce_accounts",
        TwentyPeople = "twenty_people",
        TwentyCompanies = "twenty_companies",
    }
}

/// How one field of the resource is filled from the file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// The source column (a CSV header name) or columns, joined with `join`; for NDJSON a
    /// key or a dotted path into nested objects (`name.firstName`). A name or a list of up
    /// to 8. Without it, the field is always `default`.
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[schema(value_type = Vec<String>, example = json!(["First Name", "Last Name"]), max_items = 8)]
    pub from: Vec<String>,
    /// What joins several sources' non-empty values (a space by default; `""` joins them
    /// with nothing, as a calling code and a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = " ", max_length = 10, pattern = "^[^\\u0000]*$")]
    pub join: Option<String>,
    /// Source values and what they become (matched exactly, else ignoring case); a value
    /// not listed is kept as it is. Up to 500.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(example = json!({"Lead": "prospect", "Customer": "stable"}))]
    pub values: BTreeMap<String, String>,
    /// Text put before a non-empty value (after `values`), such as `hubspot-` before a
    /// record id made an `external_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "hubspot-", max_length = 50)]
    pub prefix: Option<String>,
    /// How the source writes a date or time (only for date and time fields: `birth_date`,
    /// `…_at`): a `strftime` pattern such as `%m/%d/%Y` or `%Y-%m-%d %H:%M` (times without
    /// an offset are UTC), or `rfc3339`, `unix` (seconds) or `unix_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "%m/%d/%Y", max_length = 64)]
    pub date_format: Option<String>,
    /// The value when the source is empty (or the field's only value, without `from`), as
    /// the resource's own field takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "prospect", max_length = 1000)]
    pub default: Option<String>,
    /// What an empty source means when there is no `default`: `keep` (the default) or
    /// `clear`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank: Option<Blank>,
    /// `true`: the file may lack the columns of `from` (they read as empty), as exports
    /// hold only the columns chosen for them; the presets' rules are so. By default a column
    /// the header lacks is a `422` naming it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = false)]
    pub optional: Option<bool>,
}

fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(deserializer) {
        Ok(OneOrMany::One(one)) => Ok(vec![one]),
        Ok(OneOrMany::Many(many)) => Ok(many),
        Err(_) => Err(serde::de::Error::custom(
            "must be a column name or a list of column names",
        )),
    }
}

/// A mapping: for each field of the resource, where its value comes from; and the source
/// columns to leave out. A column of the file that no rule names and that is not ignored
/// is still read when it is named as a field of the resource (`email`, `address.city`), and
/// named in the import's `unmapped_columns` otherwise.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingSpec {
    /// Field of the resource (as its CSV header names it: `name`, `address.city`,
    /// `consent.email.granted`) → how it is filled. Up to 64.
    #[schema(example = json!({
        "name": {"from": ["First Name", "Last Name"]},
        "email": {"from": "Email"},
        "lifecycle_stage": {"from": "Lifecycle Stage", "values": {"Lead": "prospect", "Customer": "stable"}},
        "birth_date": {"from": "Birthdate", "date_format": "%m/%d/%Y", "blank": "clear"}
    }))]
    pub fields: BTreeMap<String, FieldRule>,
    /// Source columns to leave out without naming them. Up to 256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["Record ID"]), max_items = 256)]
    pub ignore: Vec<String>,
}

/// The mapping an import ran with: where it came from, and the rules themselves (a copy:
/// a saved mapping changed later does not change it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AppliedMapping {
    /// The preset used, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<PresetKey>,
    /// The saved mapping used, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")]
    pub mapping_id: Option<Uuid>,
    /// The saved mapping's version used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = 2)]
    pub version: Option<i64>,
    /// The rules.
    pub spec: MappingSpec,
}

/// A saved mapping.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportMapping {
    /// Mapping id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")]
    pub id: Uuid,
    /// A name, unique (ignoring case).
    #[schema(example = "HubSpot contacts, sales team")]
    pub name: String,
    /// The resource its files import into.
    pub resource: Resource,
    /// What it is for.
    #[schema(example = "The quarterly HubSpot export")]
    pub description: Option<String>,
    /// The rules.
    pub mapping: MappingSpec,
    /// Version, for `If-Match`: each change makes a new one, and every version stays
    /// readable at `/v1/import-mappings/{id}/versions/{version}`.
    #[schema(example = 2)]
    pub version: i64,
    /// When it was created.
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[schema(example = "2026-12-04T10:05:00Z")]
    pub updated_at: DateTime<Utc>,
}

/// One version of a saved mapping, as it was.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportMappingVersion {
    /// The mapping's id.
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")]
    pub mapping_id: Uuid,
    /// Which version.
    #[schema(example = 1)]
    pub version: i64,
    /// Its name then.
    #[schema(example = "HubSpot contacts")]
    pub name: String,
    /// Its description then.
    #[schema(example = json!(null))]
    pub description: Option<String>,
    /// Its rules then.
    pub mapping: MappingSpec,
    /// When this version was written.
    #[schema(example = "2026-12-04T10:00:00Z")]
    pub created_at: DateTime<Utc>,
}

/// A new saved mapping: its rules given, or copied from a preset (then `resource` and
/// `mapping` may be left out).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewImportMapping {
    /// 1 to 100 characters, unique (ignoring case).
    #[schema(
        example = "HubSpot contacts, sales team",
        min_length = 1,
        max_length = 100
    )]
    pub name: String,
    /// The resource its files import into (the preset's when copying one).
    pub resource: Option<Resource>,
    /// Up to 2000 characters.
    #[schema(example = "The quarterly HubSpot export", max_length = 2000)]
    pub description: Option<String>,
    /// The rules (the preset's when copying one).
    pub mapping: Option<MappingSpec>,
    /// A preset to start from: its resource and rules are copied, to edit afterwards.
    pub preset: Option<PresetKey>,
}

/// A saved mapping replaced as a whole (`PUT`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportMappingReplacement {
    /// 1 to 100 characters, unique (ignoring case).
    #[schema(example = "HubSpot contacts", min_length = 1, max_length = 100)]
    pub name: String,
    /// Up to 2000 characters.
    #[schema(example = json!(null), max_length = 2000)]
    pub description: Option<String>,
    /// The rules.
    pub mapping: MappingSpec,
}

/// Changes to a saved mapping (JSON merge patch: absent leaves a field, `null` clears it;
/// `mapping` is merged too, so `{"mapping": {"fields": {"email": null}}}` drops one rule).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportMappingPatch {
    /// A new name.
    #[serde(default)]
    #[schema(value_type = String, example = "HubSpot contacts (EU)", min_length = 1, max_length = 100)]
    pub name: Patch<String>,
    /// A new description; `null` clears it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Only the EU portal", max_length = 2000)]
    pub description: Patch<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>, schema_with = mapping_patch_schema)]
    pub mapping: Option<Value>,
}

fn mapping_patch_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "A JSON merge patch of the rules (`MappingSpec`): keys given replace or merge, `null` \
         removes one.",
        serde_json::json!({"fields": {"lifecycle_stage": {"values": {"Evangelist": "commitment"}}}}),
        false,
    )
}

/// Which saved mappings; oldest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportMappingsQuery {
    /// Only mappings into this resource.
    #[param(inline)]
    pub resource: Option<Resource>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of a mapping's versions, newest first.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VersionsQuery {
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A ready-made mapping for another system's export.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preset {
    /// Its key, for `preset=` on an import or a new saved mapping.
    pub key: PresetKey,
    /// What export it reads.
    #[schema(example = "HubSpot contacts export (CSV)")]
    pub name: String,
    /// The resource it imports into.
    pub resource: Resource,
    /// The rules.
    pub mapping: MappingSpec,
}

/// The presets.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Presets {
    /// Every preset.
    pub data: Vec<Preset>,
}
