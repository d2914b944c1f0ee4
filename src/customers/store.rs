//! Customer queries. Every function takes a connection, so handlers compose them in one
//! transaction.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::Timestamptz;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::json::{
    Address, CustomerKind, Gender, IncomeBand, LifecycleStage, ProspectGrade, Qualification,
    RegionType, RelationshipLevel,
};
use crate::auth::Actor;
use crate::db::NullableTexts;
use crate::db::schema::{customer_lifecycle_events, customers, interactions};
use crate::domain::Channel;

/// A customer row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct CustomerRecord {
    pub id: Uuid,
    #[diesel(embed)]
    pub draft: CustomerDraft,
    pub prospect_grade: Option<ProspectGrade>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// Everything about a customer that a write sets (the rest is derived or bookkeeping).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct CustomerDraft {
    pub kind: CustomerKind,
    pub name: String,
    pub organization_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<Address>,
    pub region_type: Option<RegionType>,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<Gender>,
    pub occupation: Option<String>,
    pub income_band: Option<IncomeBand>,
    pub national_id: Option<String>,
    pub preferred_channel: Option<Channel>,
    pub consent_email: bool,
    pub consent_email_at: Option<DateTime<Utc>>,
    pub consent_sms: bool,
    pub consent_sms_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = NullableTexts, serialize_as = NullableTexts)]
    pub tags: Vec<String>,
    pub attributes: Value,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub account_manager_id: Option<Uuid>,
    pub lifecycle_stage: LifecycleStage,
    pub relationship_level: RelationshipLevel,
    pub qualification: Option<Qualification>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &CustomerDraft,
) -> QueryResult<CustomerRecord> {
    diesel::insert_into(customers::table)
        .values((customers::id.eq(id), draft.clone()))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<CustomerRecord>> {
    customers::table
        .find(id)
        .select(CustomerRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads a customer and keeps it from being updated or deleted until the transaction ends
/// (while others may read and share-lock it too).
pub async fn lock_shared(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<CustomerRecord>> {
    customers::table
        .find(id)
        .select(CustomerRecord::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()
}

/// Reads a customer and locks the row until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<CustomerRecord>> {
    customers::table
        .find(id)
        .select(CustomerRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn get_by_external_id(
    conn: &mut AsyncPgConnection,
    external_id: &str,
    for_update: bool,
) -> QueryResult<Option<CustomerRecord>> {
    let query = customers::table
        .filter(customers::external_id.eq(external_id))
        .select(CustomerRecord::as_select());
    if for_update {
        query.for_update().first(conn).await.optional()
    } else {
        query.first(conn).await.optional()
    }
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &CustomerDraft,
) -> QueryResult<CustomerRecord> {
    diesel::update(customers::table.find(id))
        .set((
            draft.clone(),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(now),
        ))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

/// Soft-deletes (`Some(now)`) or restores (`None`) a customer.
pub async fn set_deleted(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    deleted_at: Option<DateTime<Utc>>,
) -> QueryResult<CustomerRecord> {
    diesel::update(customers::table.find(id))
        .set((
            customers::deleted_at.eq(deleted_at),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(now),
        ))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

/// Hides a deleted customer's live interactions with it (`deleted_at` = the customer's), so
/// they leave every list, work list and statistic; `restore` brings back exactly those. The
/// interactions hang off the customer, and its deletion reaches them as a cascade would: the
/// statement is the customer's, the interactions area only sees deleted rows.
pub async fn interactions_follow_deletion(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    deleted_at: DateTime<Utc>,
    restore: bool,
) -> QueryResult<usize> {
    let of_customer = interactions::customer_id.eq(customer_id);
    let changed = (
        interactions::version.eq(interactions::version + 1),
        interactions::updated_at.eq(now),
    );
    if restore {
        diesel::update(interactions::table.filter(of_customer))
            .filter(interactions::deleted_at.eq(deleted_at))
            .set((interactions::deleted_at.eq(None::<DateTime<Utc>>), changed))
            .execute(conn)
            .await
    } else {
        diesel::update(interactions::table.filter(of_customer))
            .filter(interactions::deleted_at.is_null())
            .set((interactions::deleted_at.eq(deleted_at), changed))
            .execute(conn)
            .await
    }
}

/// Replaces the personal data with an anonymous shell, keeping what aggregates need
/// (id, kind, stage, level, manager, source, times).
pub async fn erase(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<CustomerRecord> {
    let shell = {
        let mut draft = get(conn, id)
            .await?
            .ok_or(diesel::result::Error::NotFound)?
            .draft;
        draft.name = "Erased customer".to_owned();
        draft.organization_name = None;
        draft.email = None;
        draft.phone = None;
        draft.address = None;
        draft.birth_date = None;
        draft.gender = None;
        draft.occupation = None;
        draft.income_band = None;
        draft.national_id = None;
        draft.preferred_channel = None;
        draft.consent_email = false;
        draft.consent_sms = false;
        draft.tags = Vec::new();
        draft.attributes = Value::Object(serde_json::Map::new());
        draft.external_id = None;
        draft.qualification = None;
        draft
    };
    diesel::update(customers::table.find(id))
        .set((
            shell,
            customers::erased_at.eq(now),
            customers::deleted_at.eq(
                diesel::dsl::sql::<diesel::sql_types::Nullable<Timestamptz>>(
                    "coalesce(customers.deleted_at, now())",
                ),
            ),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(now),
        ))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

// ---- lifecycle history ----------------------------------------------------------------

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = customer_lifecycle_events)]
pub struct LifecycleRecord {
    pub id: Uuid,
    pub from_stage: Option<LifecycleStage>,
    pub to_stage: LifecycleStage,
    pub changed_at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: String,
    pub reason: Option<String>,
}

pub async fn record_stage_change(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    from: Option<LifecycleStage>,
    to: LifecycleStage,
    actor: &Actor,
    reason: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(customer_lifecycle_events::table)
        .values((
            customer_lifecycle_events::id.eq(Uuid::now_v7()),
            customer_lifecycle_events::customer_id.eq(customer_id),
            customer_lifecycle_events::from_stage.eq(from.map(LifecycleStage::as_str)),
            customer_lifecycle_events::to_stage.eq(to.as_str()),
            customer_lifecycle_events::actor_type.eq(actor.kind()),
            customer_lifecycle_events::actor_id.eq(actor.id()),
            customer_lifecycle_events::reason.eq(reason),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn lifecycle(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<LifecycleRecord>> {
    customer_lifecycle_events::table
        .filter(customer_lifecycle_events::customer_id.eq(customer_id))
        .order((
            customer_lifecycle_events::changed_at.asc(),
            customer_lifecycle_events::id.asc(),
        ))
        .select(LifecycleRecord::as_select())
        .load(conn)
        .await
}

/// Lifecycle entries by id, in no particular order (the timeline's loader).
pub async fn lifecycle_by_ids(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<LifecycleRecord>> {
    customer_lifecycle_events::table
        .filter(customer_lifecycle_events::id.eq_any(ids))
        .select(LifecycleRecord::as_select())
        .load(conn)
        .await
}

/// Forgets the free-text reasons of an erased customer's stage changes.
pub async fn erase_lifecycle_reasons(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<()> {
    diesel::update(
        customer_lifecycle_events::table
            .filter(customer_lifecycle_events::customer_id.eq(customer_id)),
    )
    .set(customer_lifecycle_events::reason.eq(None::<String>))
    .execute(conn)
    .await
    .map(drop)
}

/// Whether the organization has a current contact with the `decision_maker` buying role (its
/// derived MAN authority). Reads the contacts' table; contacts_organization_person_key serves
/// it.
pub async fn has_current_decision_maker(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
) -> QueryResult<bool> {
    use crate::db::schema::contacts;
    diesel::select(diesel::dsl::exists(
        contacts::table
            .filter(contacts::organization_id.eq(organization_id))
            .filter(contacts::ended_at.is_null())
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "'decision_maker' = ANY (contacts.buying_roles)",
            ))
            .select(contacts::id),
    ))
    .get_result(conn)
    .await
}
