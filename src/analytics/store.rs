//! The analytics' SQL: the set-wise computation, and the reads of its results.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{
    Array, BigInt, Bool, Date, Float8, Int2, Int4, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::json::{CallbackDays, RetentionRate, SettingsInput};
use crate::customers::figures::{LoyaltyQuadrant, Measure, ValueClass, ValueTier};
use crate::db::Prepare;
use crate::db::schema::{analytics_settings, customer_analytics, customers};

/// The lock a computation holds, so that instances never compute at once.
const LOCK: i64 = 0x5261_7070_6f72_7441; // "RapporTA"

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = analytics_settings)]
pub struct SettingsRow {
    pub currency: String,
    pub measure: String,
    pub window_days: i32,
    pub key_percent: i32,
    pub development_percent: i32,
    pub maintenance_percent: i32,
    pub high_value_percent: i32,
    pub churn_threshold: i32,
    pub contact_days: i32,
    pub move_to_dissolution: bool,
    pub computed_at: Option<DateTime<Utc>>,
    pub computed_with: Option<serde_json::Value>,
    pub computed_customers: Option<i64>,
    pub computed_ms: Option<i64>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub retention_rate: Option<f64>,
    pub discount_rate: f64,
    pub influential_referrals: i32,
    pub few_customers_percent: i32,
    pub medium_customers_percent: i32,
    pub low_margin_percent: i32,
    pub high_margin_percent: i32,
    pub callback_days_accountable: Option<i32>,
    pub callback_days_proactive: Option<i32>,
    pub callback_days_partnership: Option<i32>,
    pub loyalty_periods: i32,
    pub loyalty_period_days: i32,
    pub loyal_percent: i32,
    pub computed_all_sales: Option<i64>,
    pub computed_last_year_buyers: Option<i64>,
    pub computed_retained: Option<i64>,
}

impl SettingsRow {
    pub fn input(&self) -> SettingsInput {
        SettingsInput {
            currency: self.currency.clone(),
            measure: self.measure.parse().unwrap_or(Measure::Revenue),
            window_days: self.window_days,
            key_percent: self.key_percent,
            development_percent: self.development_percent,
            maintenance_percent: self.maintenance_percent,
            high_value_percent: self.high_value_percent,
            churn_threshold: self.churn_threshold,
            contact_days: self.contact_days,
            move_to_dissolution: self.move_to_dissolution,
            retention_rate: match self.retention_rate {
                Some(r) => RetentionRate::Fixed(r),
                None => RetentionRate::default(),
            },
            discount_rate: self.discount_rate,
            influential_referrals: self.influential_referrals,
            few_customers_percent: self.few_customers_percent,
            medium_customers_percent: self.medium_customers_percent,
            low_margin_percent: self.low_margin_percent,
            high_margin_percent: self.high_margin_percent,
            callback_days: CallbackDays {
                accountable: self.callback_days_accountable,
                proactive: self.callback_days_proactive,
                partnership: self.callback_days_partnership,
            },
            loyalty_periods: self.loyalty_periods,
            loyalty_period_days: self.loyalty_period_days,
            loyal_percent: self.loyal_percent,
        }
    }

    /// The set-wide inputs of the value aspects as of the last computation (zeros before
    /// the first).
    pub fn totals(&self) -> Totals {
        Totals {
            all_sales: self.computed_all_sales.unwrap_or(0),
            last_year_buyers: self.computed_last_year_buyers.unwrap_or(0),
            retained: self.computed_retained.unwrap_or(0),
        }
    }

    /// The settings the last computation used (its figures are read with them).
    pub fn computed_with(&self) -> Option<SettingsInput> {
        self.computed_with
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
    }
}

pub async fn settings(conn: &mut AsyncPgConnection) -> QueryResult<SettingsRow> {
    analytics_settings::table
        .select(SettingsRow::as_select())
        .first(conn)
        .await
}

pub async fn lock_settings(conn: &mut AsyncPgConnection) -> QueryResult<SettingsRow> {
    analytics_settings::table
        .select(SettingsRow::as_select())
        .for_update()
        .first(conn)
        .await
}

pub async fn update_settings(
    conn: &mut AsyncPgConnection,
    input: &SettingsInput,
) -> QueryResult<SettingsRow> {
    use analytics_settings as s;
    diesel::update(s::table)
        .set((
            s::currency.eq(&input.currency),
            s::measure.eq(input.measure.as_str()),
            s::window_days.eq(input.window_days),
            s::key_percent.eq(input.key_percent),
            s::development_percent.eq(input.development_percent),
            s::maintenance_percent.eq(input.maintenance_percent),
            s::high_value_percent.eq(input.high_value_percent),
            s::churn_threshold.eq(input.churn_threshold),
            s::contact_days.eq(input.contact_days),
            s::move_to_dissolution.eq(input.move_to_dissolution),
            s::retention_rate.eq(match input.retention_rate {
                RetentionRate::Fixed(r) => Some(r),
                RetentionRate::Measured(_) => None,
            }),
            s::discount_rate.eq(input.discount_rate),
            s::influential_referrals.eq(input.influential_referrals),
            s::few_customers_percent.eq(input.few_customers_percent),
            s::medium_customers_percent.eq(input.medium_customers_percent),
            s::low_margin_percent.eq(input.low_margin_percent),
            s::high_margin_percent.eq(input.high_margin_percent),
            s::callback_days_accountable.eq(input.callback_days.accountable),
            s::callback_days_proactive.eq(input.callback_days.proactive),
            s::callback_days_partnership.eq(input.callback_days.partnership),
            s::loyalty_periods.eq(input.loyalty_periods),
            s::loyalty_period_days.eq(input.loyalty_period_days),
            s::loyal_percent.eq(input.loyal_percent),
            s::updated_at.eq(diesel::dsl::now),
            s::version.eq(s::version + 1),
        ))
        .returning(SettingsRow::as_returning())
        .get_result(conn)
        .await
}

/// Gives the transaction's sorts and hashes room (`SET LOCAL`: until it ends).
pub async fn set_work_mem(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("SET LOCAL work_mem = '256MB'")
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}

/// Takes the computation's lock for the transaction; `false` when another holds it.
pub async fn try_lock(conn: &mut AsyncPgConnection) -> QueryResult<bool> {
    #[derive(QueryableByName)]
    struct Locked {
        #[diesel(sql_type = Bool)]
        locked: bool,
    }
    let row: Locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
        .bind::<BigInt, _>(LOCK)
        .prepared()
        .get_result(conn)
        .await?;
    Ok(row.locked)
}

/// Every live customer's figures as of `now`, in one statement (see the module docs for the
/// definitions), as the stored rows' JSON; only those that differ from the stored row (or
/// have none) come out, then one row of the set-wide totals. The value aspects' sums are
/// [`ASPECT_SUMS`], shared with [`value_aspects`].
static COMPUTE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    include_str!("compute.sql").replace("/*ASPECT_SUMS*/", ASPECT_SUMS)
});

/// The sums behind the lifetime potential and demand contribution (DOMAIN.md section 9),
/// per group of purchases `pu` (a customer's, in a currency), with the times in `s`
/// (`year_start` 12 months ago, `two_years_start` 24, `window_start` the analytics window's
/// start): the one definition both the value endpoint and the analytics computation use.
const ASPECT_SUMS: &str = include_str!("aspect_sums.sql");

/// The set-wide inputs of the value aspects: every customer's net sales in the window (in
/// the currency; erased and deleted customers' purchases count: they were sold), and last
/// year's buyers (a purchase 12 to 24 months ago) with those of them who bought again in
/// the last 12 months.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Totals {
    pub all_sales: i64,
    pub last_year_buyers: i64,
    pub retained: i64,
}

/// The time of the caller's transaction (`now()`): what the computation is as of, and when
/// the stage changes it makes are recorded, so that the two compare on one clock.
pub async fn transaction_time(conn: &mut AsyncPgConnection) -> QueryResult<DateTime<Utc>> {
    #[derive(QueryableByName)]
    struct At {
        #[diesel(sql_type = Timestamptz)]
        at: DateTime<Utc>,
    }
    let row: At = diesel::sql_query("SELECT now() AS at")
        .prepared()
        .get_result(conn)
        .await?;
    Ok(row.at)
}

/// One row of [`changed`]: a changed stored row's JSON, or (once, last) the [`Totals`]'
/// JSON.
#[derive(QueryableByName)]
pub struct Changed {
    #[diesel(sql_type = Nullable<Text>)]
    pub figures: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub totals: Option<String>,
}

/// The figures as of `now` that differ from the stored ones (see [`COMPUTE`]), row by row as
/// PostgreSQL yields them: read in a read-only transaction, written with [`write`].
pub async fn changed<'conn>(
    conn: &'conn mut AsyncPgConnection,
    now: DateTime<Utc>,
) -> QueryResult<impl futures_util::Stream<Item = QueryResult<Changed>> + 'conn> {
    diesel::sql_query(COMPUTE.as_str())
        .bind::<Timestamptz, _>(now)
        .load_stream(conn)
        .await
}

/// Writes rows given as [`Changed::figures`], in one statement; a row that another
/// computation has written the same meanwhile is left alone. Returns the rows written.
pub async fn write(conn: &mut AsyncPgConnection, rows: &[String]) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Written {
        #[diesel(sql_type = BigInt)]
        written: i64,
    }
    let json = format!("[{}]", rows.join(","));
    let row: Written = diesel::sql_query(
        "WITH written AS (
             INSERT INTO customer_analytics AS a
             SELECT * FROM json_populate_recordset(NULL::customer_analytics, $1::json)
             ON CONFLICT (customer_id) DO UPDATE SET
                 value = EXCLUDED.value, purchases = EXCLUDED.purchases,
                 purchases_recent = EXCLUDED.purchases_recent,
                 purchases_earlier = EXCLUDED.purchases_earlier,
                 value_tier = EXCLUDED.value_tier, future_value = EXCLUDED.future_value,
                 value_class = EXCLUDED.value_class, last_purchase_at = EXCLUDED.last_purchase_at,
                 recency_score = EXCLUDED.recency_score,
                 frequency_score = EXCLUDED.frequency_score,
                 monetary_score = EXCLUDED.monetary_score, churn_score = EXCLUDED.churn_score,
                 churn_reasons = EXCLUDED.churn_reasons,
                 mean_interval_days = EXCLUDED.mean_interval_days,
                 expected_recent = EXCLUDED.expected_recent,
                 last_contact_at = EXCLUDED.last_contact_at,
                 open_complaints = EXCLUDED.open_complaints, latest_nps = EXCLUDED.latest_nps,
                 latest_csat = EXCLUDED.latest_csat, at_risk_since = EXCLUDED.at_risk_since,
                 year_value = EXCLUDED.year_value, window_sales = EXCLUDED.window_sales,
                 margin_percent = EXCLUDED.margin_percent,
                 recommended_relationship_level = EXCLUDED.recommended_relationship_level,
                 relationship_below_recommended = EXCLUDED.relationship_below_recommended,
                 loyalty_periods_bought = EXCLUDED.loyalty_periods_bought,
                 loyalty_quadrant = EXCLUDED.loyalty_quadrant
             WHERE a IS DISTINCT FROM EXCLUDED
             RETURNING 1)
         SELECT count(*) AS written FROM written",
    )
    .bind::<Text, _>(json)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(row.written)
}

/// The live customers (the computation's count, in its snapshot).
pub async fn live_customers(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    customers::table
        .filter(customers::deleted_at.is_null())
        .filter(customers::erased_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// Forgets the figures of these customers, as [`finish`] does for those no longer live: they
/// read as not computed until the next computation writes them (a merge moved what they
/// were computed from).
pub async fn forget(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<usize> {
    diesel::delete(customer_analytics::table.filter(customer_analytics::customer_id.eq_any(ids)))
        .execute(conn)
        .await
}

/// Ends a computation: forgets the figures of customers no longer live and records the run
/// (as of `now`, over `customers`, taking `took_ms`, with its `totals`) in the settings.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    now: DateTime<Utc>,
    used: &SettingsInput,
    customers: i64,
    took_ms: i64,
    totals: Totals,
) -> QueryResult<()> {
    diesel::sql_query(
        "DELETE FROM customer_analytics a USING customers c
         WHERE c.id = a.customer_id AND (c.deleted_at IS NOT NULL OR c.erased_at IS NOT NULL)",
    )
    .prepared()
    .execute(conn)
    .await?;
    diesel::update(analytics_settings::table)
        .set((
            analytics_settings::computed_at.eq(now),
            analytics_settings::computed_with
                .eq(serde_json::to_value(used).unwrap_or(serde_json::Value::Null)),
            analytics_settings::computed_customers.eq(customers),
            analytics_settings::computed_ms.eq(took_ms),
            analytics_settings::computed_all_sales.eq(totals.all_sales),
            analytics_settings::computed_last_year_buyers.eq(totals.last_year_buyers),
            analytics_settings::computed_retained.eq(totals.retained),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// The customers at risk who are in a stage the computation may move to `dissolution` and
/// were not moved into it (by anyone) since their episode of risk began, with their score
/// and reasons.
pub async fn dissolution_candidates(
    conn: &mut AsyncPgConnection,
    threshold: i16,
    movable: &[&str],
) -> QueryResult<Vec<(Uuid, i16, Vec<String>)>> {
    use crate::db::schema::customer_lifecycle_events as e;
    let moved_this_episode = e::table
        .filter(e::customer_id.eq(customer_analytics::customer_id))
        .filter(e::to_stage.eq("dissolution"))
        .filter(
            e::changed_at
                .nullable()
                .ge(customer_analytics::at_risk_since),
        );
    customer_analytics::table
        .inner_join(customers::table)
        .filter(customer_analytics::churn_score.ge(threshold))
        .filter(customers::deleted_at.is_null())
        .filter(customers::lifecycle_stage.eq_any(movable))
        .filter(diesel::dsl::not(diesel::dsl::exists(moved_this_episode)))
        .select((
            customer_analytics::customer_id,
            customer_analytics::churn_score,
            customer_analytics::churn_reasons,
        ))
        .order(customer_analytics::customer_id)
        .load(conn)
        .await
}

/// One customer's stored figures.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customer_analytics)]
pub struct Row {
    pub customer_id: Uuid,
    pub value: i64,
    pub purchases: i32,
    pub purchases_recent: i32,
    pub value_tier: String,
    pub future_value: i64,
    pub value_class: String,
    pub last_purchase_at: Option<DateTime<Utc>>,
    pub recency_score: Option<i16>,
    pub frequency_score: Option<i16>,
    pub monetary_score: Option<i16>,
    pub churn_score: i16,
    pub churn_reasons: Vec<String>,
    pub mean_interval_days: Option<f64>,
    pub expected_recent: Option<f64>,
    pub last_contact_at: Option<DateTime<Utc>>,
    pub open_complaints: i32,
    pub latest_nps: Option<i16>,
    pub latest_csat: Option<i16>,
    pub at_risk_since: Option<DateTime<Utc>>,
    pub year_value: Option<i64>,
    pub window_sales: i64,
    pub margin_percent: Option<f64>,
    pub recommended_relationship_level: Option<String>,
    pub relationship_below_recommended: bool,
    pub loyalty_periods_bought: i32,
    pub loyalty_quadrant: String,
}

/// Stored figures with the computation they come from.
pub struct Computed {
    pub row: Row,
    /// The customer's credit grade now (read beside the row, never stored with it).
    pub credit_grade: Option<crate::customers::json::CreditGrade>,
    pub computed_at: Option<DateTime<Utc>>,
    /// The settings used, as JSON text: the same on every row of a statement, so it is parsed
    /// once (for the first row), not decoded row by row.
    pub computed_with: Option<String>,
    pub totals: Totals,
}

/// The computation's time, settings and totals, as selected beside stored rows.
type ComputationColumns = (
    Option<DateTime<Utc>>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

/// A subselect of the settings' row, beside stored rows.
type Literal<T> = diesel::expression::SqlLiteral<Nullable<T>>;

/// The subselects of [`ComputationColumns`].
type ComputationSql = (
    Literal<Timestamptz>,
    Literal<Text>,
    Literal<BigInt>,
    Literal<BigInt>,
    Literal<BigInt>,
);

fn computation_columns() -> ComputationSql {
    use diesel::dsl::sql;
    (
        sql("(SELECT computed_at FROM analytics_settings)"),
        sql("(SELECT computed_with::text FROM analytics_settings)"),
        sql("(SELECT computed_all_sales FROM analytics_settings)"),
        sql("(SELECT computed_last_year_buyers FROM analytics_settings)"),
        sql("(SELECT computed_retained FROM analytics_settings)"),
    )
}

fn computed(
    row: Row,
    credit_grade: Option<crate::customers::json::CreditGrade>,
    c: ComputationColumns,
) -> Computed {
    Computed {
        row,
        credit_grade,
        computed_at: c.0,
        computed_with: c.1,
        totals: Totals {
            all_sales: c.2.unwrap_or(0),
            last_year_buyers: c.3.unwrap_or(0),
            retained: c.4.unwrap_or(0),
        },
    }
}

/// The stored figures of some customers with their computation, in no particular order
/// (one query of `customer_analytics` alone). Each customer comes with their credit grade,
/// already read with the customer.
pub async fn rows(
    conn: &mut AsyncPgConnection,
    customers: &[(Uuid, Option<crate::customers::json::CreditGrade>)],
) -> QueryResult<Vec<Computed>> {
    let ids: Vec<Uuid> = customers.iter().map(|(id, _)| *id).collect();
    let rows: Vec<(Row, ComputationColumns)> = customer_analytics::table
        .filter(customer_analytics::customer_id.eq_any(ids))
        .select((Row::as_select(), computation_columns()))
        .prepared()
        .load(conn)
        .await?;
    let grades: std::collections::HashMap<Uuid, Option<crate::customers::json::CreditGrade>> =
        customers.iter().copied().collect();
    Ok(rows
        .into_iter()
        .map(|(row, c)| {
            let grade = grades.get(&row.customer_id).copied().flatten();
            computed(row, grade, c)
        })
        .collect())
}

/// One customer with their stored figures and the computation they come from, in one
/// statement (a customer read by someone who may see the analytics).
pub async fn customer_with_row(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<(crate::customers::store::CustomerRecord, Option<Computed>)>> {
    use crate::customers::store::CustomerRecord;
    type Found = (CustomerRecord, Option<Row>, ComputationColumns);
    let found: Option<Found> = customers::table
        .left_join(customer_analytics::table.on(customer_analytics::customer_id.eq(customers::id)))
        .filter(customers::id.eq(id))
        .select((
            CustomerRecord::as_select(),
            Option::<Row>::as_select(),
            computation_columns(),
        ))
        .fixed()
        .get_result(conn)
        .await
        .optional()?;
    Ok(found.map(|(customer, row, c)| {
        let grade = customer.draft.credit.as_ref().map(|credit| credit.grade);
        (customer, row.map(|row| computed(row, grade, c)))
    }))
}

/// A validated filter of the customer list on the stored figures.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Filter {
    pub value_tiers: Vec<ValueTier>,
    pub value_classes: Vec<ValueClass>,
    pub recency: Vec<i16>,
    pub frequency: Vec<i16>,
    pub monetary: Vec<i16>,
    pub churn_score_min: Option<i16>,
    /// Customers managed below the recommended relationship level.
    pub below_recommended: bool,
    pub loyalty_quadrants: Vec<LoyaltyQuadrant>,
}

/// The relationship levels in order, as an SQL array (a level's rank is its position).
pub const LEVELS_SQL: &str =
    "ARRAY['basic', 'reactive', 'accountable', 'proactive', 'partnership']";

impl Filter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The ids of the customers it keeps, as a subquery.
    pub fn customer_ids(&self) -> customer_analytics::BoxedQuery<'static, diesel::pg::Pg, SqlUuid> {
        use customer_analytics as a;
        let mut query = a::table.select(a::customer_id).into_boxed();
        if !self.value_tiers.is_empty() {
            let tiers: Vec<&str> = self.value_tiers.iter().map(|t| t.as_str()).collect();
            query = query.filter(a::value_tier.eq_any(tiers));
        }
        if !self.value_classes.is_empty() {
            let classes: Vec<&str> = self.value_classes.iter().map(|c| c.as_str()).collect();
            query = query.filter(a::value_class.eq_any(classes));
        }
        if !self.recency.is_empty() {
            query = query.filter(a::recency_score.eq_any(self.recency.clone()));
        }
        if !self.frequency.is_empty() {
            query = query.filter(a::frequency_score.eq_any(self.frequency.clone()));
        }
        if !self.monetary.is_empty() {
            query = query.filter(a::monetary_score.eq_any(self.monetary.clone()));
        }
        if let Some(min) = self.churn_score_min {
            query = query.filter(a::churn_score.ge(min));
        }
        if self.below_recommended {
            // The computation's flag (its partial index holds the few flagged rows), checked
            // against the level now: a customer raised since leaves the list at once.
            query = query
                .filter(a::relationship_below_recommended)
                .filter(diesel::dsl::sql::<Bool>(&format!(
                    "array_position({LEVELS_SQL}, (SELECT c.relationship_level FROM customers c \
                     WHERE c.id = customer_analytics.customer_id)) \
                     < array_position({LEVELS_SQL}, customer_analytics.recommended_relationship_level)"
                )));
        }
        if !self.loyalty_quadrants.is_empty() {
            let quadrants: Vec<&str> = self.loyalty_quadrants.iter().map(|q| q.as_str()).collect();
            query = query.filter(a::loyalty_quadrant.eq_any(quadrants));
        }
        query
    }
}

/// A validated churn-risk list request.
#[derive(Debug, Default)]
pub struct ChurnFilter {
    pub min_score: i16,
    pub reasons: Vec<String>,
    pub lifecycle_stages: Vec<String>,
    pub account_manager_id: Option<Uuid>,
    pub value_tiers: Vec<String>,
    /// Owned-only access: only customers this user manages.
    pub owner: Option<Uuid>,
}

/// A churn-risk list row: the customer's figures and who they are.
pub struct ChurnRow {
    pub row: Row,
    pub name: String,
    pub lifecycle_stage: String,
    pub account_manager_id: Option<Uuid>,
}

/// Customers at risk, highest score first, after `(score, id)`.
pub async fn churn_list(
    conn: &mut AsyncPgConnection,
    filter: &ChurnFilter,
    after: Option<(i16, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<ChurnRow>> {
    use customer_analytics as a;
    let mut query = a::table
        .inner_join(customers::table)
        .filter(a::churn_score.ge(filter.min_score))
        .filter(customers::deleted_at.is_null())
        .into_boxed();
    if !filter.reasons.is_empty() {
        query = query.filter(a::churn_reasons.overlaps_with(filter.reasons.clone()));
    }
    if !filter.lifecycle_stages.is_empty() {
        query = query.filter(customers::lifecycle_stage.eq_any(filter.lifecycle_stages.clone()));
    }
    if let Some(manager) = filter.account_manager_id {
        query = query.filter(customers::account_manager_id.eq(manager));
    }
    if let Some(owner) = filter.owner {
        query = query.filter(customers::account_manager_id.eq(owner));
    }
    if !filter.value_tiers.is_empty() {
        query = query.filter(a::value_tier.eq_any(filter.value_tiers.clone()));
    }
    if let Some((score, id)) = after {
        query = query.filter(
            a::churn_score
                .lt(score)
                .or(a::churn_score.eq(score).and(a::customer_id.gt(id))),
        );
    }
    let rows: Vec<(Row, String, String, Option<Uuid>)> = query
        .order((a::churn_score.desc(), a::customer_id.asc()))
        .select((
            Row::as_select(),
            customers::name,
            customers::lifecycle_stage,
            customers::account_manager_id,
        ))
        .limit(fetch)
        .prepared()
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(row, name, lifecycle_stage, account_manager_id)| ChurnRow {
                row,
                name,
                lifecycle_stage,
                account_manager_id,
            },
        )
        .collect())
}

/// One segment row of the breakdown: a dimension, a key and its figures.
#[derive(Debug, QueryableByName)]
pub struct SegmentRow {
    #[diesel(sql_type = Text)]
    pub dimension: String,
    #[diesel(sql_type = Text)]
    pub key: String,
    #[diesel(sql_type = BigInt)]
    pub customers: i64,
    #[diesel(sql_type = BigInt)]
    pub value: i64,
    #[diesel(sql_type = BigInt)]
    pub mean_value: i64,
    #[diesel(sql_type = BigInt)]
    pub nps_respondents: i64,
    #[diesel(sql_type = Nullable<Float8>)]
    pub mean_nps: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    pub nps: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub csat_respondents: i64,
    #[diesel(sql_type = Nullable<Float8>)]
    pub mean_csat: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    pub csat: Option<f64>,
    #[diesel(sql_type = BigInt)]
    pub at_risk: i64,
    /// Σ m of the segment's customers who have one, and how many have one.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub year_value: Option<i64>,
    /// Σ net sales in the window.
    #[diesel(sql_type = BigInt)]
    pub window_sales: i64,
}

/// The breakdown's statement: $1 the churn threshold, $2 the owner (or NULL), $3 by group.
const SEGMENTS: &str = include_str!("segments.sql");

/// Every live customer (only those `owner` manages, with owned-only access) counted once per
/// dimension, in one scan (GROUPING SETS). With `group`, each group of organizations counts
/// once, as its root with the value of all its (live, visible) organizations.
pub async fn segments(
    conn: &mut AsyncPgConnection,
    churn_threshold: i16,
    owner: Option<Uuid>,
    group: bool,
) -> QueryResult<Vec<SegmentRow>> {
    diesel::sql_query(SEGMENTS)
        .bind::<Int2, _>(churn_threshold)
        .bind::<Nullable<SqlUuid>, _>(owner)
        .bind::<Bool, _>(group)
        .prepared()
        .load(conn)
        .await
}

/// The period, measure and currency of a Pareto request.
#[derive(Debug, Clone)]
pub struct ParetoFilter {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub measure: Measure,
    pub currency: String,
    pub top_sales_percent: Option<i32>,
    /// Owned-only access: the ranking of the customers this user manages.
    pub owner: Option<Uuid>,
    /// Rank groups of organizations as their roots.
    pub group: bool,
}

/// A ranked customer, with the summary of the whole ranking repeated on every row (one
/// statement ranks once for both). With no row on the page, one row of summary alone.
#[derive(Debug, QueryableByName)]
pub struct ParetoLine {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
    /// Value of the top 10, 20, 40 and 50 % of customers.
    #[diesel(sql_type = Array<BigInt>)]
    pub band_values: Vec<i64>,
    /// Customers needed to reach 10, 20, 40, 50 and 80 % of the total.
    #[diesel(sql_type = Array<BigInt>)]
    pub sales_customers: Vec<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rank: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub customer_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    pub name: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub value: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub purchases: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub cumulative: Option<i64>,
    /// The customer's stored m and window sales (the last computation's), when computed.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub year_value: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub window_sales: Option<i64>,
    /// The customer's credit grade now, shown when the name is.
    #[diesel(sql_type = Nullable<Text>)]
    pub credit_grade: Option<String>,
}

/// The shares of customers the summary reports the value of.
pub const CUSTOMER_BANDS: [i32; 4] = [10, 20, 40, 50];
/// The shares of the total the summary reports the customers of.
pub const SALES_BANDS: [i32; 5] = [10, 20, 40, 50, 80];

/// A page of the Pareto ranking after rank `after`, with the summary.
pub async fn pareto(
    conn: &mut AsyncPgConnection,
    filter: &ParetoFilter,
    after: i64,
    fetch: i64,
) -> QueryResult<Vec<ParetoLine>> {
    pareto_query(filter, after, fetch).load(conn).await
}

/// The whole ranking of `filter`, row by row as PostgreSQL yields them.
pub async fn pareto_lines<'conn>(
    conn: &'conn mut AsyncPgConnection,
    filter: &ParetoFilter,
) -> QueryResult<impl futures_util::Stream<Item = QueryResult<ParetoLine>> + 'conn> {
    pareto_query(filter, 0, i64::MAX).load_stream(conn).await
}

/// The CTEs of a Pareto ranking by `measure`: `t` (each ranked customer's value and
/// purchases, from the purchases in currency `{cur}` from day `{from}` to day `{to}`
/// included, whose customer meets `owned`, counted for their group's root when `{group}`),
/// `r` (the ranking, with each line's cumulative sum) and `summary` (its figures). The
/// parameters are SQL (placeholders), so that the page and the kept ranking share them.
fn ranking_ctes(
    measure: Measure,
    cur: &str,
    from: &str,
    to: &str,
    owned: &str,
    group: &str,
) -> String {
    let value = match measure {
        Measure::Revenue => "amount - refunded",
        Measure::Profit => "amount - refunded - cost",
    };
    let with_cost = match measure {
        Measure::Revenue => "",
        Measure::Profit => "AND cost IS NOT NULL",
    };
    format!(
        "WITH RECURSIVE {groups},
         t AS (
             SELECT coalesce(g.root_id, p.customer_id) AS customer_id,
                    sum({value})::bigint AS value, count(*) AS purchases
             FROM purchases p
             LEFT JOIN g ON g.id = p.customer_id
             WHERE currency = {cur} AND occurred_at >= {from}::date
                   AND occurred_at < {to}::date + 1 {with_cost}
                   AND {owned}
             GROUP BY 1
             HAVING sum({value}) > 0),
         r AS MATERIALIZED (
             SELECT customer_id, value, purchases,
                    row_number() OVER w AS rank,
                    sum(value) OVER w AS cumulative,
                    count(*) OVER () AS n,
                    sum(value) OVER () AS total
             FROM t WINDOW w AS (ORDER BY value DESC, customer_id)),
         summary AS (
             SELECT count(*) AS n, coalesce(sum(value), 0)::bigint AS total,
                    ARRAY[{bands}] AS band_values,
                    ARRAY[{sales}] AS sales_customers
             FROM r)",
        bands = CUSTOMER_BANDS
            .iter()
            .map(|p| format!(
                "coalesce(sum(value) FILTER (WHERE rank <= ceil(n * {p} / 100.0)), 0)::bigint"
            ))
            .collect::<Vec<_>>()
            .join(", "),
        sales = SALES_BANDS
            .iter()
            .map(|p| format!(
                "coalesce(min(rank) FILTER (WHERE cumulative * 100 >= {p} * total), 0)::bigint"
            ))
            .collect::<Vec<_>>()
            .join(", "),
        groups = groups_cte(group),
    )
}

/// The query of [`pareto`] and [`pareto_lines`], to run or to stream.
pub fn pareto_query(
    filter: &ParetoFilter,
    after: i64,
    fetch: i64,
) -> BoxedSqlQuery<'static, Pg, SqlQuery> {
    diesel::sql_query(format!(
        "{ranking}
         SELECT summary.*, page.rank, page.customer_id, page.name, page.value,
                page.purchases, page.cumulative, page.year_value, page.window_sales,
                CASE WHEN page.name IS NOT NULL THEN page.credit->>'grade' END AS credit_grade
         FROM summary
         LEFT JOIN LATERAL (
             -- The page first, then its customers: joining the whole ranking to customers
             -- before the LIMIT read every ranked customer's row.
             SELECT p.rank, p.customer_id,
                    CASE WHEN c.deleted_at IS NULL AND c.erased_at IS NULL
                              AND ($7::uuid IS NULL OR c.account_manager_id = $7::uuid)
                         THEN c.name END AS name,
                    p.value, p.purchases, p.cumulative::bigint AS cumulative,
                    a.year_value, a.window_sales, c.credit
             FROM (SELECT * FROM r
                   WHERE r.rank > $4
                     AND ($5::int IS NULL OR (r.cumulative - r.value) * 100 < $5 * r.total)
                   ORDER BY r.rank
                   LIMIT $6) p
             JOIN customers c ON c.id = p.customer_id
             LEFT JOIN customer_analytics a ON a.customer_id = p.customer_id) page ON true
         ORDER BY page.rank",
        ranking = ranking_ctes(
            filter.measure,
            "$1",
            "$2",
            "$3",
            &crate::auth::ownership::sql_condition("p.customer_id", 7),
            "$8"
        ),
    ))
    .into_boxed()
    .bind::<Text, _>(filter.currency.clone())
    .bind::<Date, _>(filter.from)
    .bind::<Date, _>(filter.to)
    .bind::<BigInt, _>(after)
    .bind::<Nullable<Int4>, _>(filter.top_sales_percent)
    .bind::<BigInt, _>(fetch)
    .bind::<Nullable<SqlUuid>, _>(filter.owner)
    .bind::<Bool, _>(filter.group)
}

// ---- what each computation keeps: the default rankings and the breakdown ----------------

/// A ranking a computation keeps: of all customers (full access), over a period, by a
/// measure, in a currency, of customers or of groups.
#[derive(Debug, Clone)]
pub struct KeptSpec {
    pub measure: Measure,
    pub group: bool,
    pub currency: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl KeptSpec {
    /// The lines' key of the ranking: 0 revenue, 1 revenue by group, 2 profit, 3 profit by
    /// group.
    pub fn ranking(&self) -> i16 {
        let measure = match self.measure {
            Measure::Revenue => 0,
            Measure::Profit => 2,
        };
        measure + i16::from(self.group)
    }
}

/// One row of [`kept_ranking`]'s stream: a ranked line, or (once) the summary.
#[derive(Debug, QueryableByName)]
pub struct RankedLine {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub rank: Option<i64>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub customer_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub value: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub purchases: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub cumulative: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub n: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total: Option<i64>,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    pub band_values: Option<Vec<i64>>,
    #[diesel(sql_type = Nullable<Array<BigInt>>)]
    pub sales_customers: Option<Vec<i64>>,
}

/// Lines of a kept ranking, as columns, to write with [`write_lines`].
#[derive(Debug, Default)]
pub struct Lines {
    pub rank: Vec<i64>,
    pub customer_id: Vec<Uuid>,
    pub value: Vec<i64>,
    pub purchases: Vec<i64>,
    pub cumulative: Vec<i64>,
}

impl Lines {
    pub fn len(&self) -> usize {
        self.rank.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rank.is_empty()
    }
}

/// The summary of a kept ranking (the page's [`ParetoLine`] figures), and where each
/// `top_sales_percent` ends.
#[derive(Debug, Clone)]
pub struct RankingSummary {
    pub n: i64,
    pub total: i64,
    pub band_values: Vec<i64>,
    pub sales_customers: Vec<i64>,
    /// Element p − 1: the last rank listed with `top_sales_percent=p` (0: none).
    pub top_sales_ranks: Vec<i64>,
}

impl Default for RankingSummary {
    fn default() -> Self {
        Self {
            n: 0,
            total: 0,
            band_values: Vec::new(),
            sales_customers: Vec::new(),
            top_sales_ranks: vec![0; 100],
        }
    }
}

impl RankingSummary {
    /// Notes a line of the ranking (in any order), of `total`: it is the last line of the
    /// first p % of the total for each p whose share it crosses, the p with
    /// (cumulative − value) × 100 < p × total ≤ cumulative × 100, as a page filters live.
    pub fn crossed(&mut self, rank: i64, value: i64, cumulative: i64, total: i64) {
        if total <= 0 {
            return;
        }
        let total = i128::from(total);
        let low = i128::from(cumulative - value) * 100 / total + 1;
        let high = (i128::from(cumulative) * 100 / total).min(100);
        for p in low.max(1)..=high {
            if let Some(slot) = self.top_sales_ranks.get_mut(p as usize - 1) {
                *slot = rank;
            }
        }
    }
}

/// The whole ranking of `spec`, every customer's (the same CTEs as a page: the same
/// ranking), line by line as PostgreSQL yields them, and one row of its summary.
pub async fn kept_ranking<'conn>(
    conn: &'conn mut AsyncPgConnection,
    spec: &KeptSpec,
) -> QueryResult<impl futures_util::Stream<Item = QueryResult<RankedLine>> + 'conn> {
    diesel::sql_query(format!(
        "{ranking}
         SELECT rank, customer_id, value, purchases, cumulative::bigint AS cumulative,
                NULL::bigint AS n, total::bigint AS total, NULL::bigint[] AS band_values,
                NULL::bigint[] AS sales_customers
         FROM r
         UNION ALL
         SELECT NULL, NULL, NULL, NULL, NULL, n, total, band_values, sales_customers
         FROM summary",
        ranking = ranking_ctes(spec.measure, "$1", "$2", "$3", "true", "$4"),
    ))
    .bind::<Text, _>(spec.currency.clone())
    .bind::<Date, _>(spec.from)
    .bind::<Date, _>(spec.to)
    .bind::<Bool, _>(spec.group)
    .load_stream(conn)
    .await
}

/// The slot the next computation keeps its rankings and breakdown in: the one the served
/// computation does not use.
pub async fn next_slot(conn: &mut AsyncPgConnection) -> QueryResult<i16> {
    Ok(match served(conn).await? {
        Some((0, _)) => 1,
        _ => 0,
    })
}

/// The slot of the served computation, and its time: the slot whose rankings are of the
/// settings' `computed_at`; `None` before the first computation that kept any.
pub async fn served(conn: &mut AsyncPgConnection) -> QueryResult<Option<(i16, DateTime<Utc>)>> {
    #[derive(QueryableByName)]
    struct Served {
        #[diesel(sql_type = Int2)]
        slot: i16,
        #[diesel(sql_type = Timestamptz)]
        computed_at: DateTime<Utc>,
    }
    let found: Option<Served> = diesel::sql_query(
        "SELECT k.slot, k.computed_at FROM analytics_kept_rankings k
         JOIN analytics_settings s ON s.computed_at = k.computed_at
         LIMIT 1",
    )
    .prepared()
    .get_result(conn)
    .await
    .optional()?;
    Ok(found.map(|s| (s.slot, s.computed_at)))
}

/// Empties `slot` (0 or 1) for a computation to fill: its lines' partition is truncated
/// (no dead rows), its rankings' and breakdown's rows deleted. The slot is not the served
/// one: no reader reads it.
pub async fn clear_slot(conn: &mut AsyncPgConnection, slot: i16) -> QueryResult<()> {
    use diesel_async::SimpleAsyncConnection;
    let slot = if slot == 0 { 0 } else { 1 };
    conn.batch_execute(&format!(
        "TRUNCATE analytics_kept_lines_{slot};
         DELETE FROM analytics_kept_rankings WHERE slot = {slot};
         DELETE FROM analytics_kept_segments WHERE slot = {slot};"
    ))
    .await
}

/// Gives the planner the statistics of what a computation kept in `slot` (autovacuum may
/// come much later, or, off, never): a page's plan stays an index range.
pub async fn analyze_slot(conn: &mut AsyncPgConnection, slot: i16) -> QueryResult<()> {
    use diesel_async::SimpleAsyncConnection;
    let slot = if slot == 0 { 0 } else { 1 };
    conn.batch_execute(&format!(
        "ANALYZE analytics_kept_lines_{slot}, analytics_kept_rankings"
    ))
    .await
}

/// Writes lines of the ranking `ranking` into `slot`, in one statement.
pub async fn write_lines(
    conn: &mut AsyncPgConnection,
    slot: i16,
    ranking: i16,
    lines: &Lines,
) -> QueryResult<usize> {
    diesel::sql_query(
        "INSERT INTO analytics_kept_lines (slot, ranking, rank, customer_id, value, purchases,
                                           cumulative)
         SELECT $1, $2, l.* FROM unnest($3::bigint[], $4::uuid[], $5::bigint[], $6::bigint[],
                                        $7::bigint[]) l",
    )
    .bind::<Int2, _>(slot)
    .bind::<Int2, _>(ranking)
    .bind::<Array<BigInt>, _>(&lines.rank)
    .bind::<Array<SqlUuid>, _>(&lines.customer_id)
    .bind::<Array<BigInt>, _>(&lines.value)
    .bind::<Array<BigInt>, _>(&lines.purchases)
    .bind::<Array<BigInt>, _>(&lines.cumulative)
    .prepared()
    .execute(conn)
    .await
}

/// Records a kept ranking's summary in `slot`, as of `computed_at` (written once its lines
/// are: it is served from when the settings' `computed_at` moves to its time).
pub async fn write_ranking(
    conn: &mut AsyncPgConnection,
    slot: i16,
    spec: &KeptSpec,
    computed_at: DateTime<Utc>,
    summary: &RankingSummary,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO analytics_kept_rankings (slot, ranking, measure, grouped, currency,
             period_from, period_to, computed_at, customers, total, band_values, sales_customers,
             top_sales_ranks)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind::<Int2, _>(slot)
    .bind::<Int2, _>(spec.ranking())
    .bind::<Text, _>(spec.measure.as_str())
    .bind::<Bool, _>(spec.group)
    .bind::<Text, _>(&spec.currency)
    .bind::<Date, _>(spec.from)
    .bind::<Date, _>(spec.to)
    .bind::<Timestamptz, _>(computed_at)
    .bind::<BigInt, _>(summary.n)
    .bind::<BigInt, _>(summary.total)
    .bind::<Array<BigInt>, _>(&summary.band_values)
    .bind::<Array<BigInt>, _>(&summary.sales_customers)
    .bind::<Array<BigInt>, _>(&summary.top_sales_ranks)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Keeps the breakdown (of customers, or with `group` of groups) in `slot`, as of
/// `computed_at`: the live statement's rows, written set-wise by one statement.
pub async fn keep_segments(
    conn: &mut AsyncPgConnection,
    slot: i16,
    computed_at: DateTime<Utc>,
    churn_threshold: i16,
    group: bool,
) -> QueryResult<usize> {
    diesel::sql_query(format!(
        "INSERT INTO analytics_kept_segments (slot, grouped, computed_at, dimension, key,
             customers, value, mean_value, nps_respondents, mean_nps, nps, csat_respondents,
             mean_csat, csat, at_risk, year_value, window_sales)
         SELECT $4, $3, $5, s.* FROM ({SEGMENTS}) s"
    ))
    .bind::<Int2, _>(churn_threshold)
    .bind::<Nullable<SqlUuid>, _>(None::<Uuid>)
    .bind::<Bool, _>(group)
    .bind::<Int2, _>(slot)
    .bind::<Timestamptz, _>(computed_at)
    .execute(conn)
    .await
}

/// The breakdown the served computation kept (of customers, or with `group` of groups),
/// with its time, in the live statement's order; `None` when none is kept (yet: the
/// computation writes it last; an empty one, of no customer, is counted live too).
pub async fn kept_segments(
    conn: &mut AsyncPgConnection,
    group: bool,
) -> QueryResult<Option<(DateTime<Utc>, Vec<SegmentRow>)>> {
    let Some((slot, at)) = served(conn).await? else {
        return Ok(None);
    };
    let rows = diesel::sql_query(
        "SELECT dimension, key, customers, value, mean_value, nps_respondents, mean_nps, nps,
                csat_respondents, mean_csat, csat, at_risk, year_value, window_sales
         FROM analytics_kept_segments
         WHERE slot = $1 AND grouped = $2 AND computed_at = $3
         ORDER BY dimension, key",
    )
    .bind::<Int2, _>(slot)
    .bind::<Bool, _>(group)
    .bind::<Timestamptz, _>(at)
    .prepared()
    .load::<SegmentRow>(conn)
    .await?;
    Ok((!rows.is_empty()).then_some((at, rows)))
}

/// The header of a kept ranking the served computation holds.
#[derive(Debug, Clone, QueryableByName)]
pub struct KeptRanking {
    #[diesel(sql_type = Int2)]
    pub slot: i16,
    #[diesel(sql_type = Int2)]
    pub ranking: i16,
    #[diesel(sql_type = Date)]
    pub period_from: NaiveDate,
    #[diesel(sql_type = Date)]
    pub period_to: NaiveDate,
    #[diesel(sql_type = Timestamptz)]
    pub computed_at: DateTime<Utc>,
}

/// The served computation's kept ranking by `measure` in `currency` (of groups when
/// `group`), if it kept one.
pub async fn kept_header(
    conn: &mut AsyncPgConnection,
    measure: Measure,
    group: bool,
    currency: &str,
) -> QueryResult<Option<KeptRanking>> {
    diesel::sql_query(
        "SELECT k.slot, k.ranking, k.period_from, k.period_to, k.computed_at
         FROM analytics_kept_rankings k
         JOIN analytics_settings s ON s.computed_at = k.computed_at
         WHERE k.measure = $1 AND k.grouped = $2 AND k.currency = $3",
    )
    .bind::<Text, _>(measure.as_str())
    .bind::<Bool, _>(group)
    .bind::<Text, _>(currency)
    .prepared()
    .get_result(conn)
    .await
    .optional()
}

/// A page of a kept ranking after rank `after` (only the lines that make the first
/// `top_sales_percent` % when given: up to the rank kept for it), with its summary, as
/// [`pareto`] gives it: an index range on rank, then the page's customers (their names and credit grades as they stand
/// now, hidden for the deleted and erased) and their stored figures.
pub async fn kept_page(
    conn: &mut AsyncPgConnection,
    kept: &KeptRanking,
    top_sales_percent: Option<i32>,
    after: i64,
    fetch: i64,
) -> QueryResult<Vec<ParetoLine>> {
    diesel::sql_query(
        "SELECT k.customers AS n, k.total, k.band_values, k.sales_customers, page.rank,
                page.customer_id, page.name, page.value, page.purchases, page.cumulative,
                page.year_value, page.window_sales,
                CASE WHEN page.name IS NOT NULL THEN page.credit->>'grade' END AS credit_grade
         FROM analytics_kept_rankings k
         LEFT JOIN LATERAL (
             SELECT l.rank, l.customer_id,
                    CASE WHEN c.deleted_at IS NULL AND c.erased_at IS NULL THEN c.name END
                        AS name,
                    l.value, l.purchases, l.cumulative, a.year_value, a.window_sales, c.credit
             FROM (SELECT * FROM analytics_kept_lines l
                   -- Ranks are 1 to n without a gap: the page is a range of them, read
                   -- as such whatever the plan.
                   WHERE l.slot = $1 AND l.ranking = $2 AND l.rank > $4
                     AND l.rank <= least($4 + $6,
                                         coalesce(k.top_sales_ranks[$5::int], k.customers))
                   ORDER BY l.rank
                   LIMIT $6) l
             JOIN customers c ON c.id = l.customer_id
             LEFT JOIN customer_analytics a ON a.customer_id = l.customer_id) page ON true
         WHERE k.slot = $1 AND k.ranking = $2 AND k.computed_at = $3
         ORDER BY page.rank",
    )
    .bind::<Int2, _>(kept.slot)
    .bind::<Int2, _>(kept.ranking)
    .bind::<Timestamptz, _>(kept.computed_at)
    .bind::<BigInt, _>(after)
    .bind::<Nullable<Int4>, _>(top_sales_percent)
    .bind::<BigInt, _>(fetch)
    .prepared()
    .load(conn)
    .await
}

/// One currency's inputs to a customer's lifetime potential and demand contribution.
#[derive(Debug, Clone, QueryableByName)]
pub struct AspectRow {
    #[diesel(sql_type = Text)]
    pub currency: String,
    /// m in the measure asked for: `None` when no purchase counts.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub year_value: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub window_sales: i64,
    #[diesel(sql_type = BigInt)]
    pub all_sales: i64,
    #[diesel(sql_type = BigInt)]
    pub last_year_buyers: i64,
    #[diesel(sql_type = BigInt)]
    pub retained: i64,
}

/// A customer's value-aspect inputs per currency they bought in (`value_aspects.sql`);
/// last year's buyers are counted only when `measure_retention`; m is profit when
/// `by_profit`, else revenue.
pub async fn value_aspects(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
    window_days: i32,
    measure_retention: bool,
    by_profit: bool,
) -> QueryResult<Vec<AspectRow>> {
    static VALUE_ASPECTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        include_str!("value_aspects.sql").replace("/*ASPECT_SUMS*/", ASPECT_SUMS)
    });
    diesel::sql_query(VALUE_ASPECTS.as_str())
        .bind::<Array<SqlUuid>, _>(customer_ids.to_vec())
        .bind::<Int4, _>(window_days)
        .bind::<Bool, _>(measure_retention)
        .bind::<Bool, _>(by_profit)
        .prepared()
        .load(conn)
        .await
}

// ---- win-back --------------------------------------------------------------------------

const WIN_BACK_LOSSES: &str = include_str!("win_back_losses.sql");

/// One row of the win-back figures: a period (its position, from 1), or a period and a
/// reason code.
#[derive(Debug, QueryableByName)]
pub struct WinBackRow {
    #[diesel(sql_type = BigInt)]
    pub ord: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub reason_code: Option<crate::domain::ChurnCause>,
    #[diesel(sql_type = BigInt)]
    pub active_at_start: i64,
    #[diesel(sql_type = BigInt)]
    pub lost: i64,
    #[diesel(sql_type = BigInt)]
    pub won_back: i64,
    #[diesel(sql_type = Nullable<Float8>)]
    pub median_days: Option<f64>,
}

/// The customers lost (moved into `churned`) in each period `[starts[i], ends[i])` (all
/// within `[from, to)`), with the customers active at its start and the losses won back,
/// per period or (`by_reason`) per period and reason code: one statement.
pub async fn win_back_figures(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    owner: Option<Uuid>,
    starts: &[DateTime<Utc>],
    ends: &[DateTime<Utc>],
    by_reason: bool,
) -> QueryResult<Vec<WinBackRow>> {
    diesel::sql_query(format!(
        "{WIN_BACK_LOSSES}{}",
        include_str!("win_back_figures.sql")
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Nullable<SqlUuid>, _>(owner)
    .bind::<Array<Timestamptz>, _>(starts.to_vec())
    .bind::<Array<Timestamptz>, _>(ends.to_vec())
    .bind::<Bool, _>(by_reason)
    .prepared()
    .load(conn)
    .await
}

/// One loss of the win-back report.
#[derive(Debug, QueryableByName)]
pub struct WinBackLoss {
    /// The lifecycle entry of the move into `churned`.
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub customer_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Timestamptz)]
    pub churned_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    pub reason_code: Option<crate::domain::ChurnCause>,
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub won_back_at: Option<DateTime<Utc>>,
}

/// The losses of `[from, to)`, oldest first, after `after` (time and entry id), `fetch` of
/// them.
pub async fn win_back_losses(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    owner: Option<Uuid>,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<WinBackLoss>> {
    diesel::sql_query(format!(
        "{WIN_BACK_LOSSES}{}",
        include_str!("win_back_list.sql")
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Nullable<SqlUuid>, _>(owner)
    .bind::<Nullable<Timestamptz>, _>(after.map(|a| a.0))
    .bind::<Nullable<SqlUuid>, _>(after.map(|a| a.1))
    .bind::<BigInt, _>(fetch)
    .prepared()
    .load(conn)
    .await
}

// ---- groups and referrals ----------------------------------------------------------------

/// The roots of the groups of organizations and every member below them (10 levels at
/// most), as `g(id, root_id)`: a CTE for a `WITH RECURSIVE` list, empty unless `{on}` (SQL)
/// holds. A customer in no group is not in it. Read through `customers_parent_idx`.
fn groups_cte(on: &str) -> String {
    format!(
        "g(id, root_id, depth) AS (
             SELECT r.id, r.id, 1 FROM customers r
             WHERE {on} AND r.parent_id IS NULL
               AND r.id IN (SELECT parent_id FROM customers WHERE parent_id IS NOT NULL)
             UNION ALL
             SELECT c.id, g.root_id, g.depth + 1
             FROM g JOIN customers c ON c.parent_id = g.id
             WHERE g.depth < 10)"
    )
}

#[derive(QueryableByName)]
struct Ids {
    #[diesel(sql_type = Array<SqlUuid>)]
    ids: Vec<Uuid>,
}

/// The customers of the group with root `root`: the root and every customer below it (10
/// levels at most); with `owner`, those of them this user manages.
pub async fn group_members(
    conn: &mut AsyncPgConnection,
    root: Uuid,
    owner: Option<Uuid>,
) -> QueryResult<Vec<Uuid>> {
    let found: Ids = diesel::sql_query(
        "WITH RECURSIVE down(id, depth) AS (
             SELECT $1::uuid, 1
             UNION ALL
             SELECT c.id, down.depth + 1
             FROM down JOIN customers c ON c.parent_id = down.id
             WHERE down.depth < 10)
         SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}'::uuid[]) AS ids
         FROM down JOIN customers c ON c.id = down.id
         WHERE $2::uuid IS NULL OR c.account_manager_id = $2::uuid",
    )
    .bind::<SqlUuid, _>(root)
    .bind::<Nullable<SqlUuid>, _>(owner)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(found.ids)
}

/// A customer's referral figures: see [`crate::customers::figures::Referrals`].
#[derive(Debug, QueryableByName)]
pub struct ReferralRow {
    #[diesel(sql_type = BigInt)]
    pub referrals: i64,
    #[diesel(sql_type = BigInt)]
    pub referred_value: i64,
    #[diesel(sql_type = Bool)]
    pub high_value: bool,
    #[diesel(sql_type = Bool)]
    pub influential: bool,
}

/// The live customers `id` referred, their value in the settings' measure, currency and
/// window, and whether `id` is of tier `key` and influential (by hand, or by reaching
/// `influential_referrals`): one statement, through `customers_referred_by_idx`.
pub async fn referrals(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    settings: &SettingsInput,
) -> QueryResult<ReferralRow> {
    let value = match settings.measure {
        Measure::Revenue => "p.amount - p.refunded",
        Measure::Profit => "p.amount - p.refunded - p.cost",
    };
    diesel::sql_query(format!(
        "WITH r AS (SELECT id FROM customers WHERE referred_by_id = $1 AND deleted_at IS NULL),
              n AS (SELECT count(*) AS referrals FROM r)
         SELECT n.referrals,
                coalesce((SELECT sum({value}) FROM purchases p
                          WHERE p.customer_id IN (SELECT id FROM r) AND p.currency = $2
                            AND p.occurred_at > now() - make_interval(days => $3)
                            AND p.occurred_at <= now()), 0)::bigint AS referred_value,
                EXISTS (SELECT 1 FROM customer_analytics a
                        WHERE a.customer_id = $1 AND a.value_tier = 'key') AS high_value,
                (coalesce((SELECT influential FROM customers WHERE id = $1), false)
                 OR n.referrals >= $4) AS influential
         FROM n"
    ))
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(settings.currency.clone())
    .bind::<Int4, _>(settings.window_days)
    .bind::<BigInt, _>(i64::from(settings.influential_referrals))
    .prepared()
    .get_result(conn)
    .await
}

/// The SQL condition that `{id}` (a customer id column) is of one of `classes`: tier `key`
/// from the last computation; influential by hand or by counting at least the settings'
/// `influential_referrals` live referrals (each served by an index: the tier's, the
/// referrer's, the partial index of the customers made influential by hand).
pub fn key_class_condition(id: &str, classes: &[crate::customers::figures::KeyClass]) -> String {
    use crate::customers::figures::KeyClass;
    let high =
        format!("{id} IN (SELECT customer_id FROM customer_analytics WHERE value_tier = 'key')");
    let influential = format!(
        "({id} IN (SELECT id FROM customers WHERE influential) OR {id} IN (
             SELECT referred_by_id FROM customers
             WHERE referred_by_id IS NOT NULL AND deleted_at IS NULL
             GROUP BY referred_by_id
             HAVING count(*) >= (SELECT influential_referrals FROM analytics_settings)))"
    );
    let any: Vec<String> = classes
        .iter()
        .map(|class| match class {
            KeyClass::HighValue => format!("({high} AND NOT {influential})"),
            KeyClass::Influential => format!("(NOT {high} AND {influential})"),
            KeyClass::Dual => format!("({high} AND {influential})"),
        })
        .collect();
    format!("({})", any.join(" OR "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whitespace aside, so that the file's indentation is its own.
    fn words(sql: &str) -> String {
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// segments.sql writes out the groups CTE and the ownership conditions (for the bench to
    /// run it by hand): they must stay what the functions give.
    #[test]
    fn the_segments_statement_spells_the_shared_conditions_as_they_are() {
        let sql = words(SEGMENTS);
        for part in [
            groups_cte("$3"),
            crate::auth::ownership::sql_condition("c.id", 2),
            crate::auth::ownership::sql_condition("m.id", 2),
        ] {
            assert!(sql.contains(&words(&part)), "segments.sql lacks {part}");
        }
    }

    /// The last rank of each top share, as the live filter
    /// (cumulative − value) × 100 < p × total keeps them.
    #[test]
    fn the_top_sales_ranks_end_where_the_live_filter_ends() {
        let values = [50_000_i64, 25_000, 12_500, 7_500, 5_000, 1, 1];
        let total: i64 = values.iter().sum();
        let mut summary = RankingSummary::default();
        let mut cumulative = 0;
        let mut lines = Vec::new();
        for (i, v) in values.iter().enumerate() {
            cumulative += v;
            lines.push((i as i64 + 1, *v, cumulative));
        }
        // In any order.
        for (rank, value, cumulative) in lines.iter().rev() {
            summary.crossed(*rank, *value, *cumulative, total);
        }
        for p in 1..=100_i64 {
            let live = lines
                .iter()
                .filter(|(_, v, c)| i128::from(c - v) * 100 < i128::from(p * total))
                .map(|(rank, _, _)| *rank)
                .max()
                .unwrap_or(0);
            assert_eq!(summary.top_sales_ranks[p as usize - 1], live, "p = {p}");
        }
    }

    #[test]
    fn each_kept_ranking_has_its_own_key() {
        let keys: Vec<i16> = [Measure::Revenue, Measure::Profit]
            .into_iter()
            .flat_map(|measure| {
                [false, true].map(|group| {
                    KeptSpec {
                        measure,
                        group,
                        currency: "EUR".into(),
                        from: NaiveDate::MIN,
                        to: NaiveDate::MIN,
                    }
                    .ranking()
                })
            })
            .collect();
        assert_eq!(keys, [0, 1, 2, 3]);
    }
}
