//! Ready-made mappings for the exports of the CRMs people move from, written from those
//! tools' documented export columns: HubSpot's property labels ("First Name", "Lifecycle
//! Stage", "Record ID"), Salesforce's field API names as Data Loader and reports export them
//! ("FirstName", "AccountId", "BillingCity"), and Twenty's composite fields, flattened with
//! dots ("name.firstName", "emails.primaryEmail") in its CSV and nested in its JSON.
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

fn twenty_people() -> MappingSpec {
    spec(json!({
        "fields": {
            "kind": {"default": "individual"},
            "external_id": {"from": "id", "prefix": "twenty-person-"},
            "name": {"from": ["name.firstName", "name.lastName"]},
            "email": {"from": "emails.primaryEmail"},
            "phone": {"from": ["phones.primaryPhoneCallingCode", "phones.primaryPhoneNumber"],
                      "join": ""},
            "occupation": {"from": "jobTitle"},
            "address.city": {"from": "city"},
            "source": {"default": "twenty"}
        },
        "ignore": ["phones.primaryPhoneCountryCode", "linkedinLink.primaryLinkUrl",
                   "company.name", "companyId", "createdAt", "updatedAt", "position"]
    }))
}

fn twenty_companies() -> MappingSpec {
    spec(json!({
        "fields": {
            "kind": {"default": "organization"},
            "external_id": {"from": "id", "prefix": "twenty-company-"},
            "name": {"from": "name"},
            "organization_name": {"from": "name"},
            "address.line1": {"from": "address.addressStreet1"},
            "address.line2": {"from": "address.addressStreet2"},
            "address.city": {"from": "address.addressCity"},
            "address.region": {"from": "address.addressState"},
            "address.postal_code": {"from": "address.addressPostcode"},
            "address.country": {"from": "address.addressCountry", "values": countries()},
            "source": {"default": "twenty"}
        },
        "ignore": ["domainName.primaryLinkUrl", "employees", "idealCustomerProfile",
                   "annualRecurringRevenue.amountMicros",
                   "annualRecurringRevenue.currencyCode", "createdAt", "updatedAt", "position"]
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
            "Salesforce contacts (Data Loader or report export, API field names)",
            salesforce_contacts(),
        ),
        preset(
            PresetKey::SalesforceAccounts,
            "Salesforce accounts (Data Loader or report export, API field names)",
            salesforce_accounts(),
        ),
        preset(
            PresetKey::TwentyPeople,
            "Twenty people export (CSV with dotted columns, or JSON)",
            twenty_people(),
        ),
        preset(
            PresetKey::TwentyCompanies,
            "Twenty companies export (CSV with dotted columns, or JSON)",
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
