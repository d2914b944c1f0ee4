//! Pipeline queries. Every function takes a connection, so handlers compose them in one
//! transaction.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::{now, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Date, Int4, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::json::{OpportunitySort, OpportunityStatus};
use crate::auth::Actor;
use crate::db::schema::{opportunities, opportunity_stage_changes, pipeline_stages};
use crate::db::{NullableUuids, Prepare};

// ---- stages -----------------------------------------------------------------------------

/// A stage row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = pipeline_stages)]
pub struct StageRecord {
    pub key: String,
    pub name: String,
    pub position: Option<i32>,
    pub probability: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Serialises the changes of the stages' order (the other writers wait; readers do not).
pub async fn lock_stages(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("LOCK TABLE pipeline_stages IN SHARE ROW EXCLUSIVE MODE")
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}

/// The live stages, first to last.
pub async fn stages(conn: &mut AsyncPgConnection) -> QueryResult<Vec<StageRecord>> {
    pipeline_stages::table
        .filter(pipeline_stages::deleted_at.is_null())
        .order(pipeline_stages::position.asc())
        .select(StageRecord::as_select())
        .load(conn)
        .await
}

/// A stage, live or deleted.
pub async fn stage(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<Option<StageRecord>> {
    pipeline_stages::table
        .find(key)
        .select(StageRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// A live stage, locked against deletion until the transaction ends (an opportunity is
/// moving into it).
pub async fn share_live_stage(
    conn: &mut AsyncPgConnection,
    key: &str,
) -> QueryResult<Option<StageRecord>> {
    pipeline_stages::table
        .find(key)
        .filter(pipeline_stages::deleted_at.is_null())
        .select(StageRecord::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()
}

/// The first live stage, locked like [`share_live_stage`].
pub async fn share_first_stage(conn: &mut AsyncPgConnection) -> QueryResult<Option<StageRecord>> {
    pipeline_stages::table
        .filter(pipeline_stages::deleted_at.is_null())
        .order(pipeline_stages::position.asc())
        .select(StageRecord::as_select())
        .for_share()
        .first(conn)
        .await
        .optional()
}

/// Inserts a stage at `position`, or brings a deleted one back with these values. Call under
/// [`lock_stages`], once no live stage has the key.
pub async fn insert_stage(
    conn: &mut AsyncPgConnection,
    key: &str,
    name: &str,
    probability: i32,
    position: i32,
) -> QueryResult<StageRecord> {
    diesel::insert_into(pipeline_stages::table)
        .values((
            pipeline_stages::key.eq(key),
            pipeline_stages::name.eq(name),
            pipeline_stages::probability.eq(probability),
            pipeline_stages::position.eq(position),
        ))
        .on_conflict(pipeline_stages::key)
        .do_update()
        .set((
            pipeline_stages::name.eq(name),
            pipeline_stages::probability.eq(probability),
            pipeline_stages::position.eq(position),
            pipeline_stages::deleted_at.eq(None::<DateTime<Utc>>),
            pipeline_stages::version.eq(pipeline_stages::version + 1),
            pipeline_stages::updated_at.eq(now),
        ))
        .returning(StageRecord::as_returning())
        .get_result(conn)
        .await
}

/// Locks a stage row until the transaction ends, waiting for the opportunities moving into
/// it (they hold it shared).
pub async fn lock_stage_row(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    pipeline_stages::table
        .find(key)
        .select(pipeline_stages::key)
        .for_update()
        .first::<String>(conn)
        .await
        .map(drop)
}

/// Sets a stage's name, probability and position.
pub async fn update_stage(
    conn: &mut AsyncPgConnection,
    key: &str,
    name: &str,
    probability: i32,
    position: i32,
) -> QueryResult<()> {
    diesel::update(pipeline_stages::table.find(key))
        .set((
            pipeline_stages::name.eq(name),
            pipeline_stages::probability.eq(probability),
            pipeline_stages::position.eq(position),
            pipeline_stages::version.eq(pipeline_stages::version + 1),
            pipeline_stages::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Gives live stages new positions, changing only those that move; the positions'
/// uniqueness is checked at commit.
pub async fn reorder(
    conn: &mut AsyncPgConnection,
    keys: &[String],
    positions: &[i32],
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE pipeline_stages s
         SET position = v.position, version = s.version + 1, updated_at = now()
         FROM unnest($1::text[], $2::int[]) AS v(key, position)
         WHERE s.key = v.key AND s.deleted_at IS NULL AND s.position IS DISTINCT FROM v.position",
    )
    .bind::<Array<Text>, _>(keys)
    .bind::<Array<Int4>, _>(positions)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes a stage: it leaves the order; its row stays for what still names it.
pub async fn delete_stage(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<()> {
    diesel::update(pipeline_stages::table.find(key))
        .set((
            pipeline_stages::position.eq(None::<i32>),
            pipeline_stages::deleted_at.eq(now),
            pipeline_stages::version.eq(pipeline_stages::version + 1),
            pipeline_stages::updated_at.eq(now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// How many live open opportunities are in a stage.
pub async fn open_in_stage(conn: &mut AsyncPgConnection, key: &str) -> QueryResult<i64> {
    opportunities::table
        .filter(opportunities::stage.eq(key))
        .filter(opportunities::status.eq(OpportunityStatus::Open))
        .filter(opportunities::deleted_at.is_null())
        .count()
        .get_result(conn)
        .await
}

// ---- opportunities ----------------------------------------------------------------------

/// An opportunity row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = opportunities)]
pub struct OpportunityRecord {
    pub id: Uuid,
    pub customer_id: Uuid,
    #[diesel(embed)]
    pub draft: OpportunityDraft,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    /// Derived as it is read: see [`HAS_DECISION_MAKER`].
    #[diesel(select_expression = sql::<Bool>(HAS_DECISION_MAKER), select_expression_type = diesel::expression::SqlLiteral<Bool>)]
    pub has_decision_maker: bool,
}

/// Whether one of the opportunity's people is, now, a current contact of its customer with
/// the `decision_maker` role (each probe served by contacts_organization_person_key).
pub const HAS_DECISION_MAKER: &str = "EXISTS (SELECT 1 FROM contacts \
     WHERE contacts.organization_id = opportunities.customer_id \
       AND contacts.person_id = ANY (opportunities.contact_ids) \
       AND contacts.ended_at IS NULL \
       AND 'decision_maker' = ANY (contacts.buying_roles))";

/// Everything about an opportunity that a write sets.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = opportunities, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct OpportunityDraft {
    pub title: String,
    pub amount: i64,
    pub currency: String,
    pub stage: String,
    pub owner_id: Uuid,
    pub expected_close_date: NaiveDate,
    pub status: OpportunityStatus,
    pub close_reason: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = NullableUuids, serialize_as = NullableUuids)]
    pub contact_ids: Vec<Uuid>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    draft: &OpportunityDraft,
) -> QueryResult<OpportunityRecord> {
    diesel::insert_into(opportunities::table)
        .values((
            opportunities::id.eq(Uuid::now_v7()),
            opportunities::customer_id.eq(customer_id),
            draft.clone(),
        ))
        .returning(OpportunityRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<OpportunityRecord>> {
    opportunities::table
        .find(id)
        .select(OpportunityRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads an opportunity and locks it until the transaction ends.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<OpportunityRecord>> {
    opportunities::table
        .find(id)
        .select(OpportunityRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &OpportunityDraft,
) -> QueryResult<OpportunityRecord> {
    diesel::update(opportunities::table.find(id))
        .set((
            draft.clone(),
            opportunities::version.eq(opportunities::version + 1),
            opportunities::updated_at.eq(now),
        ))
        .returning(OpportunityRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<OpportunityRecord> {
    diesel::update(opportunities::table.find(id))
        .set((
            opportunities::deleted_at.eq(now),
            opportunities::version.eq(opportunities::version + 1),
            opportunities::updated_at.eq(now),
        ))
        .returning(OpportunityRecord::as_returning())
        .get_result(conn)
        .await
}

// ---- history ----------------------------------------------------------------------------

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = opportunity_stage_changes)]
pub struct StageChangeRecord {
    pub id: Uuid,
    pub from_stage: Option<String>,
    pub to_stage: String,
    pub from_status: Option<OpportunityStatus>,
    pub to_status: OpportunityStatus,
    pub changed_at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: String,
    pub reason: Option<String>,
}

/// Records a creation (`before` = `None`), a stage move or a status change.
pub async fn record_change(
    conn: &mut AsyncPgConnection,
    opportunity_id: Uuid,
    before: Option<&OpportunityDraft>,
    after: &OpportunityDraft,
    actor: &Actor,
) -> QueryResult<()> {
    // A closing keeps its reason with it.
    let reason = after
        .close_reason
        .as_deref()
        .filter(|_| before.is_none_or(|b| b.status != after.status));
    diesel::insert_into(opportunity_stage_changes::table)
        .values((
            opportunity_stage_changes::id.eq(Uuid::now_v7()),
            opportunity_stage_changes::opportunity_id.eq(opportunity_id),
            opportunity_stage_changes::from_stage.eq(before.map(|b| b.stage.as_str())),
            opportunity_stage_changes::to_stage.eq(&after.stage),
            opportunity_stage_changes::from_status.eq(before.map(|b| b.status)),
            opportunity_stage_changes::to_status.eq(after.status),
            opportunity_stage_changes::actor_type.eq(actor.kind()),
            opportunity_stage_changes::actor_id.eq(actor.id()),
            opportunity_stage_changes::reason.eq(reason),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn history(
    conn: &mut AsyncPgConnection,
    opportunity_id: Uuid,
) -> QueryResult<Vec<StageChangeRecord>> {
    opportunity_stage_changes::table
        .filter(opportunity_stage_changes::opportunity_id.eq(opportunity_id))
        .order((
            opportunity_stage_changes::changed_at.asc(),
            opportunity_stage_changes::id.asc(),
        ))
        .select(StageChangeRecord::as_select())
        .load(conn)
        .await
}

// ---- lists ------------------------------------------------------------------------------

/// The sort key of a list's row, after the column of its order.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Date(NaiveDate),
    Amount(i64),
    Time(DateTime<Utc>),
}

impl SortValue {
    /// The key of `record` in the order `sort`.
    pub fn of(record: &OpportunityRecord, sort: OpportunitySort) -> Self {
        use OpportunitySort::*;
        match sort {
            ExpectedCloseDate | ExpectedCloseDateDesc => {
                Self::Date(record.draft.expected_close_date)
            }
            Amount | AmountDesc => Self::Amount(record.draft.amount),
            CreatedAt | CreatedAtDesc => Self::Time(record.created_at),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Date(d) => serde_json::json!(d),
            Self::Amount(a) => serde_json::json!(a),
            Self::Time(t) => serde_json::json!(t),
        }
    }

    /// The key a cursor holds, if it fits the order `sort`.
    pub fn from_json(value: serde_json::Value, sort: OpportunitySort) -> Option<Self> {
        use OpportunitySort::*;
        match sort {
            ExpectedCloseDate | ExpectedCloseDateDesc => {
                serde_json::from_value(value).ok().map(Self::Date)
            }
            Amount | AmountDesc => serde_json::from_value(value).ok().map(Self::Amount),
            CreatedAt | CreatedAtDesc => serde_json::from_value(value).ok().map(Self::Time),
        }
    }
}

/// Filters of the opportunity list.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub customer_id: Option<Uuid>,
    pub owner_id: Option<Uuid>,
    pub stages: Vec<String>,
    pub statuses: Vec<OpportunityStatus>,
    pub currency: Option<String>,
    pub expected_close_after: Option<NaiveDate>,
    pub expected_close_before: Option<NaiveDate>,
    /// Owned-only access: only opportunities of customers this user manages (not the
    /// opportunity's own `owner_id`).
    pub account_manager_id: Option<Uuid>,
    /// Only those with (`true`) or without (`false`) a decision maker known.
    pub has_decision_maker: Option<bool>,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    sort: OpportunitySort,
    after: Option<(SortValue, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<OpportunityRecord>> {
    use OpportunitySort::*;
    let mut query = opportunities::table
        .into_boxed::<Pg>()
        .filter(opportunities::deleted_at.is_null());
    if let Some(manager) = filter.account_manager_id {
        query = query
            .filter(opportunities::customer_id.eq_any(crate::auth::ownership::owned_ids(manager)));
    }
    if let Some(id) = filter.customer_id {
        query = query.filter(opportunities::customer_id.eq(id));
    }
    if let Some(id) = filter.owner_id {
        query = query.filter(opportunities::owner_id.eq(id));
    }
    if !filter.stages.is_empty() {
        query = query.filter(opportunities::stage.eq_any(filter.stages.clone()));
    }
    if !filter.statuses.is_empty() {
        query = query.filter(opportunities::status.eq_any(filter.statuses.clone()));
    }
    if let Some(currency) = &filter.currency {
        query = query.filter(opportunities::currency.eq(currency.clone()));
    }
    if let Some(d) = filter.expected_close_after {
        query = query.filter(opportunities::expected_close_date.ge(d));
    }
    if let Some(d) = filter.expected_close_before {
        query = query.filter(opportunities::expected_close_date.lt(d));
    }
    match filter.has_decision_maker {
        Some(true) => query = query.filter(sql::<Bool>(HAS_DECISION_MAKER)),
        Some(false) => query = query.filter(sql::<Bool>(&format!("NOT {HAS_DECISION_MAKER}"))),
        None => {}
    }
    let descending = matches!(sort, ExpectedCloseDateDesc | AmountDesc | CreatedAtDesc);
    if let Some((value, id)) = after {
        query = query.filter(after_key(value, id, if descending { "<" } else { ">" }));
    }
    query = match sort {
        ExpectedCloseDate => query.order((
            opportunities::expected_close_date.asc(),
            opportunities::id.asc(),
        )),
        ExpectedCloseDateDesc => query.order((
            opportunities::expected_close_date.desc(),
            opportunities::id.desc(),
        )),
        Amount => query.order((opportunities::amount.asc(), opportunities::id.asc())),
        AmountDesc => query.order((opportunities::amount.desc(), opportunities::id.desc())),
        CreatedAt => query.order((opportunities::created_at.asc(), opportunities::id.asc())),
        CreatedAtDesc => query.order((opportunities::created_at.desc(), opportunities::id.desc())),
    };
    query
        .select(OpportunityRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// `(column, id) <cmp> (value, id)`: the keyset condition of a page after a row, which the
/// `(column, id)` indexes serve.
fn after_key(
    value: SortValue,
    id: Uuid,
    cmp: &str,
) -> Box<dyn BoxableExpression<opportunities::table, Pg, SqlType = Bool>> {
    let head = |column: &str| {
        sql::<Bool>(&format!(
            "(opportunities.{column}, opportunities.id) {cmp} ("
        ))
    };
    match value {
        SortValue::Date(d) => Box::new(
            head("expected_close_date")
                .bind::<Date, _>(d)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
        SortValue::Amount(a) => Box::new(
            head("amount")
                .bind::<BigInt, _>(a)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
        SortValue::Time(t) => Box::new(
            head("created_at")
                .bind::<Timestamptz, _>(t)
                .sql(", ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
    }
}

// ---- a customer's personal data ---------------------------------------------------------

/// Every opportunity of a customer, deleted ones too, oldest first (data-subject access).
pub async fn of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<OpportunityRecord>> {
    opportunities::table
        .filter(opportunities::customer_id.eq(customer_id))
        .order((opportunities::created_at.asc(), opportunities::id.asc()))
        .select(OpportunityRecord::as_select())
        .load(conn)
        .await
}

/// Forgets the free text of an erased customer's opportunities (titles and close reasons
/// become `[erased]`, the history's reasons go); amounts, stages and dates stay for the
/// forecast. The ids of the opportunities changed.
pub async fn erase_texts(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<Uuid>> {
    let ids: Vec<Uuid> =
        diesel::update(opportunities::table.filter(opportunities::customer_id.eq(customer_id)))
            .set((
                opportunities::title.eq(ERASED),
                opportunities::close_reason.eq(sql::<diesel::sql_types::Nullable<Text>>(
                    "CASE WHEN close_reason IS NULL THEN NULL ELSE ",
                )
                .bind::<Text, _>(ERASED)
                .sql(" END")),
                opportunities::version.eq(opportunities::version + 1),
                opportunities::updated_at.eq(now),
            ))
            .returning(opportunities::id)
            .get_results(conn)
            .await?;
    diesel::update(
        opportunity_stage_changes::table
            .filter(opportunity_stage_changes::opportunity_id.eq_any(&ids)),
    )
    .set(opportunity_stage_changes::reason.eq(None::<String>))
    .execute(conn)
    .await?;
    Ok(ids)
}

/// What erased free text reads as.
const ERASED: &str = "[erased]";
