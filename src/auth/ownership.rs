//! Owned-only access: the one rule that limits a staff user to the customers they manage
//! (`customers.account_manager_id`), and everything that hangs off those customers.
//!
//! Every path that reaches a customer goes through here: lists and exports add
//! [`owned_ids`] as a condition (or [`sql_condition`] in hand-written SQL), single-resource
//! paths call [`check`] (or [`CustomerAccess::allows`] on a customer already read). A
//! customer the caller may not reach answers `404` exactly like a missing one; lists,
//! searches and counts leave it out.

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::customers;
use crate::http::error::ApiError;

crate::text_enum! {
    /// Which customers a staff user reaches. Admins, integration clients and service tokens
    /// always reach every customer.
    pub enum AccessLevel {
        /// Every customer (the default).
        All = "all",
        /// Only the customers whose `account_manager_id` is the user's own id, and what hangs
        /// off them (interactions, purchases, loyalty, survey responses, opportunities,
        /// timeline, exports, import rows). Others answer `404` as if missing and are left
        /// out of lists, searches and counts. Feeds spanning all customers (events, webhooks,
        /// audit) and program-wide operations are refused with `403`. Not for admins.
        Owned = "owned",
    }
}

/// The customers a request's caller reaches, carried by the principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAccess {
    All,
    /// Only customers managed by this user.
    Owned(Uuid),
}

impl CustomerAccess {
    /// The access of a staff user with this stored level.
    pub fn of_user(id: Uuid, level: AccessLevel) -> Self {
        match level {
            AccessLevel::All => Self::All,
            AccessLevel::Owned => Self::Owned(id),
        }
    }

    /// The manager every reachable customer has, when the caller is limited to their own.
    pub fn owner(self) -> Option<Uuid> {
        match self {
            Self::All => None,
            Self::Owned(me) => Some(me),
        }
    }

    /// Whether a customer with this account manager is reachable.
    pub fn allows(self, account_manager_id: Option<Uuid>) -> bool {
        match self {
            Self::All => true,
            Self::Owned(me) => account_manager_id == Some(me),
        }
    }

    /// `403` for a caller limited to their own customers: for what spans every customer
    /// (`what` says which), which no filter can make theirs.
    pub fn require_all(self, what: &str) -> Result<(), ApiError> {
        match self {
            Self::All => Ok(()),
            Self::Owned(_) => Err(ApiError::forbidden(format!(
                "{what} spans every customer; your access is limited to the customers you \
                 manage (`access: owned`)"
            ))),
        }
    }
}

/// The ids of the customers `owner` manages, as a subquery:
/// `column.eq_any(owned_ids(owner))`.
pub fn owned_ids(owner: Uuid) -> customers::BoxedQuery<'static, Pg, SqlUuid> {
    customers::table
        .filter(customers::account_manager_id.eq(owner))
        .select(customers::id)
        .into_boxed()
}

/// Which of `ids` are customers `owner` manages: one query for a batch.
pub async fn owned_among(
    conn: &mut AsyncPgConnection,
    owner: Uuid,
    ids: &[Uuid],
) -> QueryResult<std::collections::HashSet<Uuid>> {
    let owned: Vec<Uuid> = customers::table
        .filter(customers::id.eq_any(ids))
        .filter(customers::account_manager_id.eq(owner))
        .select(customers::id)
        .load(conn)
        .await?;
    Ok(owned.into_iter().collect())
}

/// The same rule for hand-written SQL: `{column} IN (customers managed by ${param})`, true
/// for everyone when the bound uuid is NULL (bind [`CustomerAccess::owner`]).
pub fn sql_condition(column: &str, param: usize) -> String {
    format!(
        "(${param}::uuid IS NULL OR {column} IN \
         (SELECT id FROM customers WHERE account_manager_id = ${param}::uuid))"
    )
}

/// A resource that belongs to a customer, by its own id.
#[derive(Debug, Clone, Copy)]
pub enum Held {
    Customer(Uuid),
    Interaction(Uuid),
    Purchase(Uuid),
    SurveyResponse(Uuid),
    Opportunity(Uuid),
}

impl Held {
    fn parts(self) -> (Uuid, &'static str, &'static str) {
        match self {
            Self::Customer(id) => (id, "customer", "customers"),
            Self::Interaction(id) => (id, "interaction", "interactions"),
            Self::Purchase(id) => (id, "purchase", "purchases"),
            Self::SurveyResponse(id) => (id, "survey response", "survey_responses"),
            Self::Opportunity(id) => (id, "opportunity", "opportunities"),
        }
    }
}

#[derive(QueryableByName)]
struct Reached {
    #[diesel(sql_type = Bool)]
    reached: bool,
}

/// `404` (as if missing) unless the caller reaches the customer `held` belongs to. No query
/// for a caller who reaches every customer; a missing resource passes (its own lookup says
/// `404` next).
pub async fn check(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    held: Held,
) -> Result<(), ApiError> {
    let Some(owner) = access.owner() else {
        return Ok(());
    };
    let (id, what, table) = held.parts();
    let customer = if table == "customers" {
        "t.id"
    } else {
        "t.customer_id"
    };
    // `table` and `customer` are fixed words above, never input.
    let sql = format!(
        "SELECT coalesce(bool_and(c.account_manager_id IS NOT DISTINCT FROM $2), true) AS reached \
         FROM {table} t JOIN customers c ON c.id = {customer} WHERE t.id = $1"
    );
    let row: Reached = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(owner)
        .get_result(conn)
        .await?;
    if row.reached {
        Ok(())
    } else {
        Err(ApiError::not_found(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owned_reaches_only_its_own() {
        let me = Uuid::now_v7();
        let other = Uuid::now_v7();
        let owned = CustomerAccess::Owned(me);
        assert!(owned.allows(Some(me)));
        assert!(!owned.allows(Some(other)));
        assert!(!owned.allows(None));
        assert!(CustomerAccess::All.allows(None));
        assert!(owned.require_all("the event feed").is_err());
        assert!(CustomerAccess::All.require_all("the event feed").is_ok());
        assert_eq!(
            CustomerAccess::of_user(me, AccessLevel::Owned).owner(),
            Some(me)
        );
    }
}
