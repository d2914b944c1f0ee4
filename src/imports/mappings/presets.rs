//! Ready-made mappings for the exports of the CRMs people move from, written from those
//! tools' documented export columns (docs/imports.md names the source of each):
//! - HubSpot: an export's columns are the properties' labels ("Record ID", "First Name",
//!   "Lifecycle Stage", "Company name").
//! - Salesforce: the fields' API names ("FirstName", "MailingCity", "BillingCountry"), as
//!   Data Loader (in capitals: `FIRSTNAME`) and the Bulk API write them; headers match in
//!   any case.
//! - Twenty: its CSV export names a composite field's parts "Label / Part" ("Name / First
//!   Name", "Emails / Primary Email", "Address / Post Code"), other fields by their label
//!   ("Job Title", "Id"); its API's JSON records nest them (`name.firstName`). Each rule
//!   names both, so one preset reads the CSV export and the API's records alike (a rule
//!   reads whichever the file has).
//!
//! A sample file for each is in `tests/fixtures/imports/`.

use std::sync::LazyLock;

use serde_json::{Value, json};

use super::json::{MappingSpec, Preset, PresetKey};
use crate::imports::json::Resource;

/// Country names as exports write them, to ISO 3166-1 alpha-2 codes (codes pass as they
/// are; a name not listed fails its row, naming `address.country`).
fn countries() -> Value {
    json!({
        "United States": "US", "United States of America": "US", "USA": "US",
        "United Kingdom": "GB", "UK": "GB", "Great Britain": "GB", "Ireland": "IE",
        "Canada": "CA", "Australia": "AU", "New Zealand": "NZ", "Germany": "DE",
        "France": "FR", "Spain": "ES", "Italy": "IT", "Portugal": "PT", "Netherlands": "NL",
        "Belgium": "BE", "Switzerland": "CH", "Austria": "AT", "Sweden": "SE", "Norway": "NO",
        "Denmark": "DK", "Finland": "FI", "Poland": "PL", "Japan": "JP", "China": "CN",
        "India": "IN", "Brazil": "BR", "Mexico": "MX", "Singapore": "SG"
    })
}

/// HubSpot's lifecycle stages (labels and internal names) as Rapport's.
fn hubspot_stages() -> Value {
    json!({
        "Subscriber": "prospect", "Lead": "prospect",
        "Marketing Qualified Lead": "prospect", "marketingqualifiedlead": "prospect",
        "Sales Qualified Lead": "prospect", "salesqualifiedlead": "prospect",
        "Opportunity": "prospect", "Customer": "stable", "Evangelist": "commitment"
    })
}

/// A preset's rules: an export holds the columns chosen for it, so every source is
/// optional (a column the file lacks reads as empty).
fn spec(value: Value) -> MappingSpec {
    // Checked by this file's tests: every preset reads as a mapping.
    let mut spec: MappingSpec = serde_json::from_value(value).unwrap_or_default();
    for rule in spec.fields.values_mut() {
        if !rule.from.is_empty() {
            rule.optional = Some(true);
        }
    }
    spec
}

fn hubspot_contacts() -> MappingSpec {
    spec(json!({
        "fields": {
            "kind": {"default": "individual"},
            "external_id": {"from": "Record ID", "prefix": "hubspot-contact-"},
            "name": {"from": ["First Name", "Last Name"]},
            "email": {"from": "Email"},
            "phone": {"from": "Phone Number"},
            "occupation": {"from": "Job Title"},
            "organization_name": {"from": "Company Name"},
            "lifecycle_stage": {"from": "Lifecycle Stage", "values": hubspot_stages()},
            "address.line1": {"from": "Street Address"},
            "address.city": {"from": "City"},
            "address.region": {"from": "State/Region"},
            "address.postal_code": {"from": "Postal Code"},
            "address.country": {"from": "Country/Region", "values": countries()},
            "source": {"default": "hubspot"}
        },
        "ignore": ["Create Date", "Last Activity Date", "Contact owner", "Lead Status",
                   "Associated Company"]
    }))
}

fn hubspot_companies() -> MappingSpec {
    spec(json!({
        "fields": {
            "kind": {"default": "organization"},
            "external_id": {"from": "Record ID", "prefix": "hubspot-company-"},
            "name": {"from": "Company name"},
            "organization_name": {"from": "Company name"},
            "phone": {"from": "Phone Number"},
            "tags": {"from": "Industry"},
            "lifecycle_stage": {"from": "Lifecycle Stage", "values": hubspot_stages()},
            "address.line1": {"from": "Street Address"},
            "address.city": {"from": "City"},
            "address.region": {"from": "State/Region"},
            "address.postal_code": {"from": "Postal Code"},
            "address.country": {"from": "Country/Region", "values": countries()},
            "source": {"default": "hubspot"}
        },
        "ignore": ["Company Domain Name", "Number of Employees", "Annual Revenue",
                   "Create Date", "Company owner"]
    }))
}

fn salesforce_contacts() -> MappingSpec {
    spec(json!({
        "fields": {
            "kind": {"default": "individual"},
            "external_id": {"from": "Id", "prefix": "salesforce-"},
            "name": {"from": ["FirstName", "LastName"]},
            "email": {"from": "Email"},
            "phone": {"from": "Phone"},
            "occupation": {"from": "Title"},
            "birth_date": {"from": "Birthdate", "date_format": "%Y-%m-%d"},
            "address.line1": {"from": "MailingStreet"},
            "address.city": {"from": "MailingCity"},
            "address.region": {"from": "MailingState"},
            "address.postal_code": {"from": "MailingPostalCode"},
            "address.country": {"from": "MailingCountry", "values": countries()},
            "source": {"from": "LeadSource", "default": "salesforce"},
            "consent.email.granted": {"from": "HasOptedOutOfEmail",
                                      "values": {"true": "false", "false": ""}}
        },
        "ignore": ["AccountId", "Salutation", "MobilePhone", "CreatedDate"]
    }))
}

fn salesforce_accounts() -> MappingSpec {
    spec(json!({
        "fields": {
            "kind": {"default": "organization"},
            "external_id": {"from": "Id", "prefix": "salesforce-"},
            "name": {"from": "Name"},
            "organization_name": {"from": "Name"},
            "phone": {"from": "Phone"},
            "tags": {"from": "Industry"},
            "lifecycle_stage": {"from": "Type", "values": {
                "Prospect": "prospect", "Customer - Direct": "stable",
                "Customer - Channel": "stable", "Channel Partner / Reseller": "commitment",
                "Installation Partner": "commitment", "Technology Partner": "commitment"
            }},
            "address.line1": {"from": "BillingStreet"},
            "address.city": {"from": "BillingCity"},
            "address.region": {"from": "BillingState"},
            "address.postal_code": {"from": "BillingPostalCode"},
            "address.country": {"from": "BillingCountry", "values": countries()},
            "source": {"from": "AccountSource", "default": "salesforce"}
        },
        "ignore": ["Website", "NumberOfEmployees", "AnnualRevenue", "CreatedDate"]
    }))
}

/// Twenty's "Label / Part" columns of a links field (its export), as ignored columns.
fn twenty_links(label: &str) -> [String; 3] {
    ["Link URL", "Link Label", "Secondary Links"].map(|part| format!("{label} / {part}"))
}

/// Twenty's columns every object's export has, and its API's keys for them.
fn twenty_common() -> Vec<String> {
    let mut ignored: Vec<String> = [
        "Creation date",
        "Last update",
        "Position",
        "Created by / Source",
        "Created by / Name",
        "Created by / Workspace Member",
        "Created by / Context",
        "Updated by / Source",
        "Updated by / Name",
        "Updated by / Workspace Member",
        "Updated by / Context",
        "createdAt",
        "updatedAt",
        "deletedAt",
        "position",
        "createdBy",
        "updatedBy",
        "linkedinLink",
        "xLink",
    ]
    .map(str::to_owned)
    .into();
    ignored.extend(twenty_links("Linkedin"));
    ignored.extend(twenty_links("X"));
    ignored
}

fn twenty_people() -> MappingSpec {
    let mut ignore = twenty_common();
    ignore.extend(
        [
            "Emails / Additional Emails",
            "Phones / Primary Phone Country Code",
            "Phones / Additional Phones",
            "Company Id",
            "Avatar",
            "companyId",
            "avatarUrl",
        ]
        .map(str::to_owned),
    );
    spec(json!({
        "fields": {
            "kind": {"default": "individual"},
            "external_id": {"from": ["Id", "id"], "prefix": "twenty-person-"},
            "name": {"from": ["Name / First Name", "Name / Last Name",
                              "name.firstName", "name.lastName"]},
            "email": {"from": ["Emails / Primary Email", "emails.primaryEmail"]},
            "phone": {"from": ["Phones / Primary Phone Calling Code",
                               "Phones / Primary Phone Number",
                               "phones.primaryPhoneCallingCode", "phones.primaryPhoneNumber"],
                      "join": ""},
            "occupation": {"from": ["Job Title", "jobTitle"]},
            "address.city": {"from": ["City", "city"]},
            "source": {"default": "twenty"}
        },
        "ignore": ignore
    }))
}

fn twenty_companies() -> MappingSpec {
    let mut ignore = twenty_common();
    ignore.extend(twenty_links("Domain"));
    ignore.extend(
        [
            "Employees",
            "ICP",
            "ARR / Amount",
            "ARR / Currency",
            "Account Owner Id",
            "domainName",
            "employees",
            "idealCustomerProfile",
            "annualRecurringRevenue",
            "accountOwnerId",
        ]
        .map(str::to_owned),
    );
    spec(json!({
        "fields": {
            "kind": {"default": "organization"},
            "external_id": {"from": ["Id", "id"], "prefix": "twenty-company-"},
            "name": {"from": ["Name", "name"]},
            "organization_name": {"from": ["Name", "name"]},
            "address.line1": {"from": ["Address / Address 1", "address.addressStreet1"]},
            "address.line2": {"from": ["Address / Address 2", "address.addressStreet2"]},
            "address.city": {"from": ["Address / City", "address.addressCity"]},
            "address.region": {"from": ["Address / State", "address.addressState"]},
            "address.postal_code": {"from": ["Address / Post Code", "address.addressPostcode"]},
            "address.country": {"from": ["Address / Country", "address.addressCountry"],
                                "values": countries()},
            "source": {"default": "twenty"}
        },
        "ignore": ignore
    }))
}

static PRESETS: LazyLock<Vec<Preset>> = LazyLock::new(|| {
    let preset = |key, name: &str, mapping| Preset {
        key,
        name: name.to_owned(),
        resource: Resource::Customers,
        mapping,
    };
    vec![
        preset(
            PresetKey::HubspotContacts,
            "HubSpot contacts export (CSV)",
            hubspot_contacts(),
        ),
        preset(
            PresetKey::HubspotCompanies,
            "HubSpot companies export (CSV)",
            hubspot_companies(),
        ),
        preset(
            PresetKey::SalesforceContacts,
            "Salesforce contacts (Data Loader or Bulk API export: API field names)",
            salesforce_contacts(),
        ),
        preset(
            PresetKey::SalesforceAccounts,
            "Salesforce accounts (Data Loader or Bulk API export: API field names)",
            salesforce_accounts(),
        ),
        preset(
            PresetKey::TwentyPeople,
            "Twenty people (the CSV export, or the API's JSON records)",
            twenty_people(),
        ),
        preset(
            PresetKey::TwentyCompanies,
            "Twenty companies (the CSV export, or the API's JSON records)",
            twenty_companies(),
        ),
    ]
});

/// Every preset.
pub fn all() -> &'static [Preset] {
    &PRESETS
}

/// One preset.
pub fn get(key: PresetKey) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.key == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_a_valid_mapping_of_its_resource() {
        assert_eq!(all().len(), PresetKey::ALL.len());
        for preset in all() {
            assert!(!preset.mapping.fields.is_empty(), "{}", preset.key);
            let columns = crate::imports::columns(preset.resource);
            if let Err(problems) = super::super::rules::check(&preset.mapping, columns) {
                panic!("{}: {problems:?}", preset.key);
            }
        }
    }
}
