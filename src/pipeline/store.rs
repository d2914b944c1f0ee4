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
use crate::db::schema::{
    opportunities, opportunity_advances, opportunity_stage_changes, pipeline_settings,
    pipeline_stages, pipeline_targets,
};
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
    /// Kept by triggers (migration `2026-12-08-000020`): one of its people is, now, a live
    /// current contact of its customer with the `decision_maker` role.
    pub has_decision_maker: bool,
    pub last_advance_at: Option<DateTime<Utc>>,
    pub last_progress_at: DateTime<Utc>,
}

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

/// Writes a draft; `progressed` (a stage move or status change) makes now its latest
/// progress.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &OpportunityDraft,
    progressed: bool,
) -> QueryResult<OpportunityRecord> {
    let progress = sql::<Timestamptz>(if progressed {
        "now()"
    } else {
        "opportunities.last_progress_at"
    });
    diesel::update(opportunities::table.find(id))
        .set((
            draft.clone(),
            opportunities::version.eq(opportunities::version + 1),
            opportunities::updated_at.eq(now),
            opportunities::last_progress_at.eq(progress),
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
    Progress(DateTime<Utc>),
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
            LastProgressAt | LastProgressAtDesc => Self::Progress(record.last_progress_at),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Date(d) => serde_json::json!(d),
            Self::Amount(a) => serde_json::json!(a),
            Self::Time(t) | Self::Progress(t) => serde_json::json!(t),
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
            LastProgressAt | LastProgressAtDesc => {
                serde_json::from_value(value).ok().map(Self::Progress)
            }
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
    /// Only open ones whose latest progress is before this time (stalled).
    pub progress_before: Option<DateTime<Utc>>,
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
        Some(true) => query = query.filter(sql::<Bool>("opportunities.has_decision_maker")),
        // Written out, not bound, so that the planner may read the partial index
        // opportunities_no_decision_maker_idx (most deals, in the default order).
        Some(false) => query = query.filter(sql::<Bool>("NOT opportunities.has_decision_maker")),
        None => {}
    }
    if let Some(t) = filter.progress_before {
        // Served by opportunities_stalled_idx (open, live, by last progress).
        query = query
            .filter(opportunities::status.eq(OpportunityStatus::Open))
            .filter(opportunities::last_progress_at.lt(t));
    }
    let descending = matches!(
        sort,
        ExpectedCloseDateDesc | AmountDesc | CreatedAtDesc | LastProgressAtDesc
    );
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
        LastProgressAt => query.order((
            opportunities::last_progress_at.asc(),
            opportunities::id.asc(),
        )),
        LastProgressAtDesc => query.order((
            opportunities::last_progress_at.desc(),
            opportunities::id.desc(),
        )),
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
        SortValue::Progress(t) => Box::new(
            head("last_progress_at")
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
    diesel::update(
        opportunity_advances::table.filter(opportunity_advances::opportunity_id.eq_any(&ids)),
    )
    .set(opportunity_advances::note.eq(None::<String>))
    .execute(conn)
    .await?;
    Ok(ids)
}

/// What erased free text reads as.
const ERASED: &str = "[erased]";

// ---- settings ---------------------------------------------------------------------------

/// The settings row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = pipeline_settings)]
pub struct SettingsRecord {
    pub credit_required_after: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

pub async fn settings(conn: &mut AsyncPgConnection) -> QueryResult<SettingsRecord> {
    pipeline_settings::table
        .select(SettingsRecord::as_select())
        .first(conn)
        .await
}

/// The settings, locked until the transaction ends.
pub async fn lock_settings(conn: &mut AsyncPgConnection) -> QueryResult<SettingsRecord> {
    pipeline_settings::table
        .select(SettingsRecord::as_select())
        .for_update()
        .first(conn)
        .await
}

pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    credit_required_after: Option<&str>,
) -> QueryResult<SettingsRecord> {
    diesel::update(pipeline_settings::table)
        .set((
            pipeline_settings::credit_required_after.eq(credit_required_after),
            pipeline_settings::version.eq(pipeline_settings::version + 1),
            pipeline_settings::updated_at.eq(now),
        ))
        .returning(SettingsRecord::as_returning())
        .get_result(conn)
        .await
}

#[derive(QueryableByName)]
struct GateRow {
    #[diesel(sql_type = Text)]
    gate: String,
}

/// The credit rule's stage, when an opportunity of `customer_id` moving into `stage` (or
/// being won: `won`) breaks it: the rule is set, the move goes past its stage, the
/// customer's qualification says no money and the customer has no credit grade. The
/// customer row is share-locked, so its credit cannot go while the move commits.
pub async fn credit_gate(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    stage: &str,
    won: bool,
) -> QueryResult<Option<String>> {
    let row: Option<GateRow> = diesel::sql_query(
        "SELECT g.key AS gate
         FROM pipeline_settings ps
         JOIN pipeline_stages g ON g.key = ps.credit_required_after
         JOIN customers c ON c.id = $1
         LEFT JOIN pipeline_stages t ON t.key = $2
         WHERE ($3 OR t.position > g.position)
           AND (c.qualification ->> 'money')::boolean IS FALSE
           AND c.credit IS NULL
         FOR SHARE OF c",
    )
    .bind::<SqlUuid, _>(customer_id)
    .bind::<Text, _>(stage)
    .bind::<Bool, _>(won)
    .prepared()
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(|r| r.gate))
}

// ---- targets ----------------------------------------------------------------------------

/// A target row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = pipeline_targets)]
pub struct TargetRecord {
    pub id: Uuid,
    pub owner_id: Option<Uuid>,
    pub period: String,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    pub currency: String,
    pub amount: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// The target of an owner (`None`: the team), period and currency, locked until the
/// transaction ends.
pub async fn lock_target(
    conn: &mut AsyncPgConnection,
    owner_id: Option<Uuid>,
    from: NaiveDate,
    to: NaiveDate,
    currency: &str,
) -> QueryResult<Option<TargetRecord>> {
    pipeline_targets::table
        .filter(pipeline_targets::period_from.eq(from))
        .filter(pipeline_targets::period_to.eq(to))
        .filter(pipeline_targets::currency.eq(currency))
        .filter(pipeline_targets::owner_id.is_not_distinct_from(owner_id))
        .select(TargetRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// What a target write sets.
pub struct TargetDraft<'a> {
    pub owner_id: Option<Uuid>,
    pub period: &'a str,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub currency: &'a str,
    pub amount: i64,
}

pub async fn insert_target(
    conn: &mut AsyncPgConnection,
    d: &TargetDraft<'_>,
) -> QueryResult<TargetRecord> {
    diesel::insert_into(pipeline_targets::table)
        .values((
            pipeline_targets::id.eq(Uuid::now_v7()),
            pipeline_targets::owner_id.eq(d.owner_id),
            pipeline_targets::period.eq(d.period),
            pipeline_targets::period_from.eq(d.from),
            pipeline_targets::period_to.eq(d.to),
            pipeline_targets::currency.eq(d.currency),
            pipeline_targets::amount.eq(d.amount),
        ))
        .returning(TargetRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn update_target(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    amount: i64,
) -> QueryResult<TargetRecord> {
    diesel::update(pipeline_targets::table.find(id))
        .set((
            pipeline_targets::amount.eq(amount),
            pipeline_targets::version.eq(pipeline_targets::version + 1),
            pipeline_targets::updated_at.eq(now),
        ))
        .returning(TargetRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete_target(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(pipeline_targets::table.find(id))
        .execute(conn)
        .await
}

/// Filters of the target list.
#[derive(Debug, Default)]
pub struct TargetFilter {
    pub period: Option<(NaiveDate, NaiveDate)>,
    pub currency: Option<String>,
    /// `Some(None)`: the team-wide targets.
    pub owner_id: Option<Option<Uuid>>,
}

/// Targets by id (creation order), after `after`.
pub async fn targets(
    conn: &mut AsyncPgConnection,
    filter: &TargetFilter,
    after: Option<Uuid>,
    fetch: i64,
) -> QueryResult<Vec<TargetRecord>> {
    let mut query = pipeline_targets::table.into_boxed::<Pg>();
    if let Some((from, to)) = filter.period {
        query = query
            .filter(pipeline_targets::period_from.eq(from))
            .filter(pipeline_targets::period_to.eq(to));
    }
    if let Some(currency) = &filter.currency {
        query = query.filter(pipeline_targets::currency.eq(currency.clone()));
    }
    match filter.owner_id {
        Some(Some(id)) => query = query.filter(pipeline_targets::owner_id.eq(id)),
        Some(None) => query = query.filter(pipeline_targets::owner_id.is_null()),
        None => {}
    }
    if let Some(id) = after {
        query = query.filter(pipeline_targets::id.gt(id));
    }
    query
        .order(pipeline_targets::id.asc())
        .select(TargetRecord::as_select())
        .limit(fetch)
        .load(conn)
        .await
}

// ---- advances ---------------------------------------------------------------------------

/// An advance row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = opportunity_advances)]
pub struct AdvanceRecord {
    pub id: Uuid,
    pub opportunity_id: Uuid,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub note: Option<String>,
    pub actor_type: String,
    pub actor_id: String,
    pub created_at: DateTime<Utc>,
}

/// Records an advance and makes it the opportunity's latest advance and progress when it is
/// later than theirs.
pub async fn insert_advance(
    conn: &mut AsyncPgConnection,
    opportunity_id: Uuid,
    kind: &str,
    occurred_at: DateTime<Utc>,
    note: Option<&str>,
    actor: &Actor,
) -> QueryResult<(AdvanceRecord, OpportunityRecord)> {
    let advance = diesel::insert_into(opportunity_advances::table)
        .values((
            opportunity_advances::id.eq(Uuid::now_v7()),
            opportunity_advances::opportunity_id.eq(opportunity_id),
            opportunity_advances::kind.eq(kind),
            opportunity_advances::occurred_at.eq(occurred_at),
            opportunity_advances::note.eq(note),
            opportunity_advances::actor_type.eq(actor.kind()),
            opportunity_advances::actor_id.eq(actor.id()),
        ))
        .returning(AdvanceRecord::as_returning())
        .get_result(conn)
        .await?;
    let record = diesel::update(opportunities::table.find(opportunity_id))
        .set((
            opportunities::last_advance_at.eq(sql::<diesel::sql_types::Nullable<Timestamptz>>(
                "greatest(opportunities.last_advance_at, ",
            )
            .bind::<Timestamptz, _>(occurred_at)
            .sql(")")),
            opportunities::last_progress_at.eq(sql::<Timestamptz>(
                "greatest(opportunities.last_progress_at, ",
            )
            .bind::<Timestamptz, _>(occurred_at)
            .sql(")")),
            opportunities::version.eq(opportunities::version + 1),
            opportunities::updated_at.eq(now),
        ))
        .returning(OpportunityRecord::as_returning())
        .get_result(conn)
        .await?;
    Ok((advance, record))
}

/// The advances of every opportunity of a customer (deleted ones too), oldest first.
pub async fn advances_of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<AdvanceRecord>> {
    opportunity_advances::table
        .inner_join(opportunities::table)
        .filter(opportunities::customer_id.eq(customer_id))
        .order((
            opportunity_advances::occurred_at.asc(),
            opportunity_advances::id.asc(),
        ))
        .select(AdvanceRecord::as_select())
        .load(conn)
        .await
}

/// An opportunity's advances, oldest first.
pub async fn advances(
    conn: &mut AsyncPgConnection,
    opportunity_id: Uuid,
) -> QueryResult<Vec<AdvanceRecord>> {
    opportunity_advances::table
        .filter(opportunity_advances::opportunity_id.eq(opportunity_id))
        .order((
            opportunity_advances::occurred_at.asc(),
            opportunity_advances::id.asc(),
        ))
        .select(AdvanceRecord::as_select())
        .load(conn)
        .await
}
