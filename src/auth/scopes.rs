//! Who may do what: scopes, the roles that grant them, and which scopes integration clients
//! may be given. One table ([`Scope::ROWS`]) holds it all; the OpenAPI security of each
//! endpoint names the scope it needs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// A permission an endpoint requires. Staff get scopes through their role, integration
/// clients are given them explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    UsersRead,
    UsersWrite,
    ApiClientsManage,
    AuditRead,
    CustomersRead,
    CustomersWrite,
    CustomersDelete,
    CustomersErase,
    PiiRead,
    InteractionsRead,
    InteractionsWrite,
    InteractionsDelete,
    PurchasesRead,
    PurchasesWrite,
    LoyaltyRead,
    LoyaltyRedeem,
    LoyaltyAdjust,
    LoyaltyAdmin,
    SurveysRead,
    SurveysManage,
    SurveysRespond,
    EventsRead,
    WebhooksManage,
    AnalyticsRead,
    AnalyticsManage,
    PipelineRead,
    PipelineWrite,
    PipelineManage,
    MetricsRead,
}

use Role::{Admin, Agent, Manager, Viewer};

struct Row {
    scope: Scope,
    name: &'static str,
    /// Roles that hold the scope.
    roles: &'static [Role],
    /// Whether an admin may give it to an integration client.
    for_clients: bool,
}

impl Scope {
    const ROWS: [Row; 29] = [
        Row {
            scope: Scope::UsersRead,
            name: "users:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::UsersWrite,
            name: "users:write",
            roles: &[Admin],
            for_clients: false,
        },
        Row {
            scope: Scope::ApiClientsManage,
            name: "api_clients:manage",
            roles: &[Admin],
            for_clients: false,
        },
        Row {
            scope: Scope::AuditRead,
            name: "audit:read",
            roles: &[Admin],
            for_clients: true,
        },
        Row {
            scope: Scope::CustomersRead,
            name: "customers:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::CustomersWrite,
            name: "customers:write",
            roles: &[Admin, Manager, Agent],
            for_clients: true,
        },
        Row {
            scope: Scope::CustomersDelete,
            name: "customers:delete",
            roles: &[Admin, Manager],
            for_clients: true,
        },
        Row {
            scope: Scope::CustomersErase,
            name: "customers:erase",
            roles: &[Admin],
            for_clients: true,
        },
        Row {
            scope: Scope::PiiRead,
            name: "pii:read",
            roles: &[Admin, Manager],
            for_clients: true,
        },
        Row {
            scope: Scope::InteractionsRead,
            name: "interactions:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::InteractionsWrite,
            name: "interactions:write",
            roles: &[Admin, Manager, Agent],
            for_clients: true,
        },
        Row {
            scope: Scope::InteractionsDelete,
            name: "interactions:delete",
            roles: &[Admin, Manager],
            for_clients: true,
        },
        Row {
            scope: Scope::PurchasesRead,
            name: "purchases:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::PurchasesWrite,
            name: "purchases:write",
            roles: &[Admin, Manager, Agent],
            for_clients: true,
        },
        Row {
            scope: Scope::LoyaltyRead,
            name: "loyalty:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::LoyaltyRedeem,
            name: "loyalty:redeem",
            roles: &[Admin, Manager, Agent],
            for_clients: true,
        },
        Row {
            scope: Scope::LoyaltyAdjust,
            name: "loyalty:adjust",
            roles: &[Admin, Manager],
            for_clients: true,
        },
        Row {
            scope: Scope::LoyaltyAdmin,
            name: "loyalty:admin",
            roles: &[Admin],
            for_clients: false,
        },
        Row {
            scope: Scope::SurveysRead,
            name: "surveys:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::SurveysManage,
            name: "surveys:manage",
            roles: &[Admin, Manager],
            for_clients: true,
        },
        Row {
            scope: Scope::SurveysRespond,
            name: "surveys:respond",
            roles: &[Admin, Manager, Agent],
            for_clients: true,
        },
        Row {
            scope: Scope::EventsRead,
            name: "events:read",
            roles: &[Admin],
            for_clients: true,
        },
        Row {
            scope: Scope::WebhooksManage,
            name: "webhooks:manage",
            roles: &[Admin],
            for_clients: false,
        },
        Row {
            scope: Scope::AnalyticsRead,
            name: "analytics:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::AnalyticsManage,
            name: "analytics:manage",
            roles: &[Admin],
            for_clients: false,
        },
        Row {
            scope: Scope::PipelineRead,
            name: "pipeline:read",
            roles: &[Admin, Manager, Agent, Viewer],
            for_clients: true,
        },
        Row {
            scope: Scope::PipelineWrite,
            name: "pipeline:write",
            roles: &[Admin, Manager, Agent],
            for_clients: true,
        },
        Row {
            scope: Scope::PipelineManage,
            name: "pipeline:manage",
            roles: &[Admin],
            for_clients: false,
        },
        Row {
            scope: Scope::MetricsRead,
            name: "metrics:read",
            roles: &[Admin],
            for_clients: true,
        },
    ];

    pub fn all() -> impl Iterator<Item = Scope> {
        Self::ROWS.iter().map(|row| row.scope)
    }

    fn row(self) -> &'static Row {
        // ROWS lists every variant, in order; a test checks it.
        &Self::ROWS[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.row().name
    }

    pub fn for_clients(self) -> bool {
        self.row().for_clients
    }

    /// Whether the scope opens a feed or setting that spans every customer (the event feed,
    /// webhooks, the audit log): refused to a user limited to their own customers, whatever
    /// their role holds.
    pub fn spans_all_customers(self) -> bool {
        matches!(
            self,
            Scope::EventsRead | Scope::WebhooksManage | Scope::AuditRead
        )
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ROWS
            .iter()
            .find(|row| row.name == s)
            .map(|row| row.scope)
            .ok_or_else(|| {
                let known: Vec<_> = Self::ROWS.iter().map(|r| r.name).collect();
                format!("unknown scope `{s}` (known: {})", known.join(", "))
            })
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let names: Vec<&str> = Self::ROWS.iter().map(|row| row.name).collect();
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(names))
            .description(Some("A permission: `area:action`."))
            .examples(["customers:read"])
            .into()
    }
}

impl ToSchema for Scope {}

crate::text_enum! {
    /// A staff member's role. Each grants a fixed set of scopes (see the table in docs/security.md).
    pub enum Role {
        /// Everything, including staff, integration clients and the audit log.
        Admin = "admin",
        /// Runs the team: reads personal data, deletes and restores records.
        Manager = "manager",
        /// Works with customers: reads and writes them.
        Agent = "agent",
        /// Reads only.
        Viewer = "viewer",
    }
}

impl Role {
    pub fn scopes(self) -> Scopes {
        Scope::ROWS
            .iter()
            .filter(|row| row.roles.contains(&self))
            .map(|row| row.scope)
            .collect()
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scopes(u64);

impl Scopes {
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::all().filter(move |s| self.contains(*s))
    }

    pub fn names(self) -> Vec<String> {
        self.iter().map(|s| s.as_str().to_owned()).collect()
    }

    /// The scopes stored by name (a text array); a name no longer known is left out.
    pub fn from_stored(names: Vec<Option<String>>) -> Self {
        names
            .into_iter()
            .flatten()
            .filter_map(|name| name.parse::<Scope>().ok())
            .collect()
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Scopes(iter.into_iter().fold(0, |bits, s| bits | s.bit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_in_variant_order() {
        for (i, row) in Scope::ROWS.iter().enumerate() {
            assert_eq!(row.scope as usize, i, "{}", row.name);
            assert_eq!(row.scope.as_str().parse::<Scope>(), Ok(row.scope));
        }
    }

    #[test]
    fn roles_nest() {
        let admin = Role::Admin.scopes();
        assert!(Scope::all().all(|s| admin.contains(s)));
        assert!(!Role::Viewer.scopes().contains(Scope::CustomersWrite));
        assert!(Role::Agent.scopes().contains(Scope::CustomersWrite));
        assert!(!Role::Agent.scopes().contains(Scope::PiiRead));
        assert!(Role::Manager.scopes().contains(Scope::PiiRead));
    }
}
