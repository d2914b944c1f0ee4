//! Contact link queries. Every function takes a connection, so the service composes them in
//! one transaction.

use chrono::{DateTime, Utc};
use diesel::dsl::{exists, now};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{contacts, customers};
use crate::db::{NullableTexts, Prepare};

/// A link row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = contacts)]
pub struct ContactRecord {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub person_id: Uuid,
    #[diesel(embed)]
    pub draft: ContactDraft,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Everything about a link that a write sets. `buying_roles` holds the roles' words, each
/// once, in the order of `BuyingRole`.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = contacts, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct ContactDraft {
    pub title: Option<String>,
    #[diesel(deserialize_as = NullableTexts, serialize_as = NullableTexts)]
    pub buying_roles: Vec<String>,
    pub is_primary: bool,
    pub started_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub note: Option<String>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    person_id: Uuid,
    draft: &ContactDraft,
) -> QueryResult<ContactRecord> {
    diesel::insert_into(contacts::table)
        .values((
            contacts::id.eq(Uuid::now_v7()),
            contacts::organization_id.eq(organization_id),
            contacts::person_id.eq(person_id),
            draft.clone(),
        ))
        .returning(ContactRecord::as_returning())
        .get_result(conn)
        .await
}

/// The link of a person to an organization, if there is one.
pub async fn get(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    person_id: Uuid,
) -> QueryResult<Option<ContactRecord>> {
    contacts::table
        .filter(contacts::organization_id.eq(organization_id))
        .filter(contacts::person_id.eq(person_id))
        .select(ContactRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads a link and locks its row until the transaction ends.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    person_id: Uuid,
) -> QueryResult<Option<ContactRecord>> {
    contacts::table
        .filter(contacts::organization_id.eq(organization_id))
        .filter(contacts::person_id.eq(person_id))
        .select(ContactRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &ContactDraft,
) -> QueryResult<ContactRecord> {
    diesel::update(contacts::table.find(id))
        .set((
            draft.clone(),
            contacts::version.eq(contacts::version + 1),
            contacts::updated_at.eq(now),
        ))
        .returning(ContactRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(contacts::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Whether another current link of the organization than `except` is primary.
pub async fn other_current_primary(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    except: Option<Uuid>,
) -> QueryResult<bool> {
    let mut query = contacts::table
        .filter(contacts::organization_id.eq(organization_id))
        .filter(contacts::is_primary)
        .filter(contacts::ended_at.is_null())
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(contacts::id.ne(id));
    }
    diesel::select(exists(query.select(contacts::id)))
        .get_result(conn)
        .await
}

/// Which side of the links a list starts from.
#[derive(Debug, Clone, Copy)]
pub enum Side {
    /// The contacts of an organization.
    Organization(Uuid),
    /// The organizations of a person.
    Person(Uuid),
}

/// A page of links from one side, in the order they were made (by id), after the link
/// `after`: only those whose other side is a live customer (and, with `owner`, one managed by
/// `owner`); `current` keeps only current (`true`) or past (`false`) links.
pub async fn list(
    conn: &mut AsyncPgConnection,
    side: Side,
    current: Option<bool>,
    owner: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<ContactRecord>> {
    let mut live = customers::table
        .filter(customers::deleted_at.is_null())
        .select(customers::id)
        .into_boxed();
    if let Some(owner) = owner {
        live = live.filter(customers::account_manager_id.eq(owner));
    }
    let mut query = contacts::table.into_boxed();
    query = match side {
        Side::Organization(id) => query
            .filter(contacts::organization_id.eq(id))
            .filter(contacts::person_id.eq_any(live)),
        Side::Person(id) => query
            .filter(contacts::person_id.eq(id))
            .filter(contacts::organization_id.eq_any(live)),
    };
    match current {
        Some(true) => query = query.filter(contacts::ended_at.is_null()),
        Some(false) => query = query.filter(contacts::ended_at.is_not_null()),
        None => {}
    }
    if let Some(after) = after {
        query = query.filter(contacts::id.gt(after));
    }
    query
        .order(contacts::id.asc())
        .limit(limit)
        .select(ContactRecord::as_select())
        .load(conn)
        .await
}

/// Which of `people` are linked (now or once) to the organization; with `owner`, only
/// people this user manages (one the caller cannot see is as unlinked as a missing one).
pub async fn linked_people(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    people: &[Uuid],
    owner: Option<Uuid>,
) -> QueryResult<Vec<Uuid>> {
    let mut query = contacts::table
        .filter(contacts::organization_id.eq(organization_id))
        .filter(contacts::person_id.eq_any(people))
        .select(contacts::person_id)
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(
            contacts::person_id.eq_any(
                customers::table
                    .filter(customers::account_manager_id.eq(owner))
                    .select(customers::id),
            ),
        );
    }
    query.load(conn).await
}

/// Every link of a person to an organization, current and past, oldest first (their
/// data-subject export).
pub async fn of_person(
    conn: &mut AsyncPgConnection,
    person_id: Uuid,
) -> QueryResult<Vec<ContactRecord>> {
    contacts::table
        .filter(contacts::person_id.eq(person_id))
        .order(contacts::id.asc())
        .select(ContactRecord::as_select())
        .load(conn)
        .await
}

/// Forgets what was written about a person at their organizations (title and note), for
/// their erasure; the links themselves (who, which roles, when) stay for the figures.
/// Returns the ids of every link of theirs.
pub async fn erase_texts(conn: &mut AsyncPgConnection, person_id: Uuid) -> QueryResult<Vec<Uuid>> {
    diesel::update(contacts::table.filter(contacts::person_id.eq(person_id)))
        .set((
            contacts::title.eq(None::<String>),
            contacts::note.eq(None::<String>),
            contacts::version.eq(contacts::version + 1),
            contacts::updated_at.eq(now),
        ))
        .returning(contacts::id)
        .get_results(conn)
        .await
}

/// The people linked (now or once) to an organization, live ones only, oldest link first;
/// with `owner`, only those this user manages (its timeline with `include=contacts`).
/// Served by `contacts_organization_idx`.
pub async fn people_of(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    owner: Option<Uuid>,
) -> QueryResult<Vec<Uuid>> {
    use crate::db::schema::customers;
    let mut query = contacts::table
        .inner_join(customers::table.on(customers::id.eq(contacts::person_id)))
        .filter(contacts::organization_id.eq(organization_id))
        .filter(customers::deleted_at.is_null())
        .select(contacts::person_id)
        .order(contacts::id.asc())
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(customers::account_manager_id.eq(owner));
    }
    query.load(conn).await
}

/// Up to `limit` links after `after` (by id), both sides live and, with `owner`, both
/// managed by this user: an export's batch. Served by the primary key.
pub async fn export_batch(
    conn: &mut AsyncPgConnection,
    owner: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<ContactRecord>> {
    let reached = || {
        let mut query = customers::table
            .filter(customers::deleted_at.is_null())
            .select(customers::id)
            .into_boxed();
        if let Some(owner) = owner {
            query = query.filter(customers::account_manager_id.eq(owner));
        }
        query
    };
    let mut query = contacts::table
        .filter(contacts::organization_id.eq_any(reached()))
        .filter(contacts::person_id.eq_any(reached()))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(contacts::id.gt(after));
    }
    query
        .order(contacts::id.asc())
        .limit(limit)
        .select(ContactRecord::as_select())
        .load(conn)
        .await
}

/// The external id and email of each of `ids` (one query for a batch).
pub async fn keys_of(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, Option<String>, Option<String>)>> {
    customers::table
        .filter(customers::id.eq_any(ids))
        .select((customers::id, customers::external_id, customers::email))
        .load(conn)
        .await
}

/// Live organizations (only those `owner` manages, when given): those a search may add to
/// its answer for the people it finds.
fn includable(
    owner: Option<Uuid>,
) -> customers::BoxedQuery<'static, diesel::pg::Pg, diesel::sql_types::Uuid> {
    let mut query = customers::table
        .filter(customers::deleted_at.is_null())
        .filter(customers::kind.eq(crate::customers::json::CustomerKind::Organization))
        .select(customers::id)
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(customers::account_manager_id.eq(owner));
    }
    query
}

/// The current links of `people` to live organizations (with `owner`, only organizations
/// this user manages), as (person, organization) pairs: the organizations a search with
/// `include=organizations` adds. Served by `contacts_current_person_idx`.
pub async fn current_organizations_of(
    conn: &mut AsyncPgConnection,
    people: &[Uuid],
    owner: Option<Uuid>,
) -> QueryResult<Vec<(Uuid, Uuid)>> {
    if people.is_empty() {
        return Ok(Vec::new());
    }
    contacts::table
        .filter(contacts::person_id.eq_any(people))
        .filter(contacts::ended_at.is_null())
        .filter(contacts::organization_id.eq_any(includable(owner)))
        .select((contacts::person_id, contacts::organization_id))
        .prepared()
        .load(conn)
        .await
}

/// The current contacts of those of `organizations` that are live organizations (with
/// `owner`, managed by this user), as (organization, person) pairs: the people through whom
/// a search may find them. Served by `contacts_current_organization_idx`.
pub async fn current_people_at(
    conn: &mut AsyncPgConnection,
    organizations: &[Uuid],
    owner: Option<Uuid>,
) -> QueryResult<Vec<(Uuid, Uuid)>> {
    if organizations.is_empty() {
        return Ok(Vec::new());
    }
    // The organizations checked among these only: unbounded, the check was planned as a
    // walk of every customer in id order up to the last organization (12 ms at a million).
    let live = includable(owner).filter(customers::id.eq_any(organizations.to_vec()));
    contacts::table
        .filter(contacts::organization_id.eq_any(organizations))
        .filter(contacts::ended_at.is_null())
        .filter(contacts::organization_id.eq_any(live))
        .select((contacts::organization_id, contacts::person_id))
        .prepared()
        .load(conn)
        .await
}
