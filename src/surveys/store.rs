//! Survey queries.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Integer, Nullable, SmallInt, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::json::{NpsCategory, ResponseSort, SurveyStatus};
use super::rules::{RollUpReads, StatRow};
use crate::customers::json::{LifecycleStage, RegionType};
use crate::db::Prepare;
use crate::db::schema::{
    customer_attribute_answers, customer_satisfaction, survey_responses, surveys,
};

/// A survey row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = surveys)]
pub struct SurveyRecord {
    pub id: Uuid,
    #[diesel(embed)]
    pub draft: SurveyDraft,
    pub status: SurveyStatus,
    pub revision: i32,
    pub revises: Option<Uuid>,
    pub activated_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// What a survey's writes set.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = surveys, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct SurveyDraft {
    pub name: String,
    pub description: Option<String>,
    pub questions: Value,
    pub allow_multiple_responses: bool,
    pub follow_up: Option<Value>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &SurveyDraft,
    revises: Option<(Uuid, i32)>,
) -> QueryResult<SurveyRecord> {
    diesel::insert_into(surveys::table)
        .values((
            surveys::id.eq(id),
            draft.clone(),
            surveys::revises.eq(revises.map(|r| r.0)),
            surveys::revision.eq(revises.map_or(1, |r| r.1 + 1)),
        ))
        .returning(SurveyRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<SurveyRecord>> {
    surveys::table
        .find(id)
        .select(SurveyRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads a survey and locks it: `exclusive` against everything (for changes to it), or
/// shared (a response being recorded, so that its questions cannot change meanwhile).
pub async fn lock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    exclusive: bool,
) -> QueryResult<Option<SurveyRecord>> {
    let query = surveys::table.find(id).select(SurveyRecord::as_select());
    if exclusive {
        query.for_update().first(conn).await.optional()
    } else {
        query.for_share().first(conn).await.optional()
    }
}

/// Writes a survey's new state; `times` are its `activated_at` and `closed_at`.
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &SurveyDraft,
    status: SurveyStatus,
    times: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> QueryResult<SurveyRecord> {
    diesel::update(surveys::table.find(id))
        .set((
            draft.clone(),
            surveys::status.eq(status),
            surveys::activated_at.eq(times.0),
            surveys::closed_at.eq(times.1),
            surveys::version.eq(surveys::version + 1),
            surveys::updated_at.eq(now),
        ))
        .returning(SurveyRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<usize> {
    diesel::delete(surveys::table.find(id)).execute(conn).await
}

pub async fn has_responses(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        survey_responses::table.filter(survey_responses::survey_id.eq(id)),
    ))
    .get_result(conn)
    .await
}

/// Whether the customer has answered the survey.
pub async fn has_responded(
    conn: &mut AsyncPgConnection,
    survey_id: Uuid,
    customer_id: Uuid,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        survey_responses::table
            .filter(survey_responses::survey_id.eq(survey_id))
            .filter(survey_responses::customer_id.eq(customer_id)),
    ))
    .get_result(conn)
    .await
}

/// Whether a later revision of the survey refers to it.
pub async fn is_revised(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        surveys::table.filter(surveys::revises.eq(id)),
    ))
    .get_result(conn)
    .await
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    status: Option<SurveyStatus>,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<SurveyRecord>> {
    let mut query = surveys::table.into_boxed::<Pg>();
    if let Some(status) = status {
        query = query.filter(surveys::status.eq(status));
    }
    if let Some((t, id)) = after {
        query = query.filter(crate::db::after_key(
            "surveys.created_at",
            "surveys.id",
            "<",
            t,
            id,
        ));
    }
    query
        .order((surveys::created_at.desc(), surveys::id.desc()))
        .select(SurveyRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// A response row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = survey_responses, treat_none_as_default_value = false)]
pub struct ResponseRecord {
    pub id: Uuid,
    pub survey_id: Uuid,
    pub customer_id: Uuid,
    pub interaction_id: Option<Uuid>,
    pub purchase_id: Option<Uuid>,
    pub submitted_at: DateTime<Utc>,
    pub answers: Value,
    pub nps: Option<i16>,
    pub csat: Option<i16>,
    pub ces: Option<i16>,
    pub loyalty_tier: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub region_type: Option<RegionType>,
    pub single: bool,
    pub follow_up_id: Option<Uuid>,
    #[diesel(skip_insertion)]
    pub created_at: DateTime<Utc>,
    #[diesel(skip_insertion)]
    pub updated_at: DateTime<Utc>,
    #[diesel(skip_insertion)]
    pub version: i64,
}

pub async fn insert_response(
    conn: &mut AsyncPgConnection,
    record: &ResponseRecord,
) -> QueryResult<ResponseRecord> {
    diesel::insert_into(survey_responses::table)
        .values(record.clone())
        .returning(ResponseRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn response(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<ResponseRecord>> {
    survey_responses::table
        .find(id)
        .select(ResponseRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Responses by id, in no particular order (the timeline's loader).
pub async fn responses_by_ids(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<ResponseRecord>> {
    survey_responses::table
        .filter(survey_responses::id.eq_any(ids))
        .select(ResponseRecord::as_select())
        .load(&mut conn)
        .await
}

/// Every response of a customer, oldest first (for a data-subject export).
pub async fn responses_of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<ResponseRecord>> {
    survey_responses::table
        .filter(survey_responses::customer_id.eq(customer_id))
        .order((
            survey_responses::submitted_at.asc(),
            survey_responses::id.asc(),
        ))
        .select(ResponseRecord::as_select())
        .load(conn)
        .await
}

/// Filters of a response list.
#[derive(Debug, Default)]
pub struct ResponseFilter {
    pub survey_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    pub submitted_after: Option<DateTime<Utc>>,
    pub submitted_before: Option<DateTime<Utc>>,
    pub nps: (Option<i16>, Option<i16>),
    pub csat: (Option<i16>, Option<i16>),
    pub ces: (Option<i16>, Option<i16>),
    /// Tier keys; `None` in the list: customers in no tier.
    pub loyalty_tiers: Vec<Option<String>>,
    pub lifecycle_stages: Vec<LifecycleStage>,
    pub region_type: Option<RegionType>,
    /// Owned-only access: only responses of customers this user manages.
    pub owner: Option<Uuid>,
}

pub async fn list_responses(
    conn: &mut AsyncPgConnection,
    filter: &ResponseFilter,
    sort: ResponseSort,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<ResponseRecord>> {
    use survey_responses as r;
    let mut query = r::table.into_boxed::<Pg>();
    if let Some(owner) = filter.owner {
        query = query.filter(r::customer_id.eq_any(crate::auth::ownership::owned_ids(owner)));
    }
    if let Some(id) = filter.survey_id {
        query = query.filter(r::survey_id.eq(id));
    }
    if let Some(id) = filter.customer_id {
        query = query.filter(r::customer_id.eq(id));
    }
    if let Some(t) = filter.submitted_after {
        query = query.filter(r::submitted_at.ge(t));
    }
    if let Some(t) = filter.submitted_before {
        query = query.filter(r::submitted_at.lt(t));
    }
    macro_rules! range {
        ($column:expr, $range:expr) => {
            if let Some(low) = $range.0 {
                query = query.filter($column.ge(low));
            }
            if let Some(high) = $range.1 {
                query = query.filter($column.le(high));
            }
        };
    }
    range!(r::nps, filter.nps);
    range!(r::csat, filter.csat);
    range!(r::ces, filter.ces);
    if !filter.loyalty_tiers.is_empty() {
        let keys: Vec<String> = filter.loyalty_tiers.iter().flatten().cloned().collect();
        query = if filter.loyalty_tiers.contains(&None) {
            query.filter(r::loyalty_tier.eq_any(keys).or(r::loyalty_tier.is_null()))
        } else {
            query.filter(r::loyalty_tier.eq_any(keys))
        };
    }
    if !filter.lifecycle_stages.is_empty() {
        query = query.filter(r::lifecycle_stage.eq_any(filter.lifecycle_stages.clone()));
    }
    if let Some(region) = filter.region_type {
        query = query.filter(r::region_type.eq(region));
    }
    let descending = sort == ResponseSort::SubmittedAtDesc;
    if let Some((t, id)) = after {
        let cmp = if descending { "<" } else { ">" };
        query = query.filter(crate::db::after_key(
            "survey_responses.submitted_at",
            "survey_responses.id",
            cmp,
            t,
            id,
        ));
    }
    query = if descending {
        query.order((r::submitted_at.desc(), r::id.desc()))
    } else {
        query.order((r::submitted_at.asc(), r::id.asc()))
    };
    query
        .select(ResponseRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// One response's counts for the roll-up: the day and segments it falls in.
pub struct Counted<'a> {
    pub survey_id: Uuid,
    pub day: NaiveDate,
    pub tier: Option<&'a str>,
    pub stage: LifecycleStage,
    pub region: Option<RegionType>,
    pub rows: &'a [StatRow],
}

/// The segment a response counts under when the customer has none.
pub const NO_SEGMENT: &str = "none";

/// The roll-up rows of [`count`], column by column.
#[derive(Default)]
struct Columns {
    survey: Vec<Uuid>,
    day: Vec<NaiveDate>,
    tier: Vec<String>,
    stage: Vec<String>,
    region: Vec<String>,
    key: Vec<String>,
    score: Vec<Option<i16>>,
    expectation: Vec<Option<i16>>,
    choice: Vec<Option<String>>,
}

/// Adds responses to the results, overall and under each dimension's segment: their counts
/// are appended to survey_stats_deltas, one row per cell, in one statement for any number of
/// responses. Appending locks no row another response needs (the roll-up's rows of a day are
/// every response's), so postings do not queue on each other; `surveys::fold` adds the rows to the
/// roll-up later.
pub async fn count(conn: &mut AsyncPgConnection, responses: &[Counted<'_>]) -> QueryResult<()> {
    let mut c = Columns::default();
    for r in responses {
        for row in r.rows {
            c.survey.push(r.survey_id);
            c.day.push(r.day);
            c.tier.push(r.tier.unwrap_or(NO_SEGMENT).to_owned());
            c.stage.push(r.stage.as_str().to_owned());
            c.region
                .push(r.region.map_or(NO_SEGMENT, |g| g.as_str()).to_owned());
            c.key.push(row.question_key.clone());
            c.score.push(row.score);
            c.expectation.push(row.expectation);
            c.choice.push(row.choice.clone());
        }
    }

    diesel::sql_query(
        "INSERT INTO survey_stats_deltas
             (survey_id, dimension, day, segment, question_key, score, expectation, choice, n)
         SELECT a.survey_id, d.dimension, a.day, d.segment, a.question_key, a.score,
                a.expectation, a.choice, count(*)
         FROM unnest($1::uuid[], $2::date[], $3::text[], $4::text[], $5::text[],
                     $6::text[], $7::smallint[], $8::smallint[], $9::text[])
              AS a(survey_id, day, tier, stage, region, question_key, score, expectation, choice)
         CROSS JOIN LATERAL (VALUES ('', ''), ('tier', a.tier),
                                    ('lifecycle_stage', a.stage), ('region_type', a.region))
              AS d(dimension, segment)
         GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    )
    .bind::<Array<SqlUuid>, _>(c.survey)
    .bind::<Array<Date>, _>(c.day)
    .bind::<Array<Text>, _>(c.tier)
    .bind::<Array<Text>, _>(c.stage)
    .bind::<Array<Text>, _>(c.region)
    .bind::<Array<Text>, _>(c.key)
    .bind::<Array<Nullable<SmallInt>>, _>(c.score)
    .bind::<Array<Nullable<SmallInt>>, _>(c.expectation)
    .bind::<Array<Nullable<Text>>, _>(c.choice)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Key of the advisory lock under which one connection at a time folds the appended counts.
const FOLD_LOCK: i64 = 7_340_124_917;

/// Appended counts folded per statement (oldest first).
pub const FOLD_BATCH: i64 = 50_000;

/// Waits for the lock under which one connection at a time folds (held to the commit).
pub async fn lock_fold(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(FOLD_LOCK)
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}

#[derive(QueryableByName)]
struct Folded {
    #[diesel(sql_type = BigInt)]
    folded: i64,
}

/// Folds the oldest [`FOLD_BATCH`] counts [`count`] appended into the roll-up, by day and by
/// month, and returns how many rows it folded. They are deleted in the statement that adds
/// them to the roll-up, so any snapshot counts a response once; roll-up rows are taken in
/// key order.
pub async fn fold_batch(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    diesel::sql_query(
        "WITH taken AS (
             DELETE FROM survey_stats_deltas
             WHERE id IN (SELECT id FROM survey_stats_deltas ORDER BY id LIMIT $1)
             RETURNING survey_id, dimension, day, segment, question_key, score, expectation,
                       choice, n
         ), counted AS (
             SELECT survey_id, dimension, day, segment, question_key, score, expectation,
                    choice, sum(n)::bigint AS n
             FROM taken
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
         ), by_day AS (
             INSERT INTO survey_stats AS s
                 (survey_id, dimension, day, segment, question_key, score, expectation, choice, n)
             SELECT * FROM counted
             ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
             ON CONFLICT (survey_id, dimension, day, segment, question_key, score, expectation, choice)
             DO UPDATE SET n = s.n + excluded.n
         ), by_month AS (
             INSERT INTO survey_stats_months AS m
                 (survey_id, dimension, month, segment, question_key, score, expectation, choice, n)
             SELECT survey_id, dimension, day - (extract(day FROM day)::int - 1), segment,
                    question_key, score, expectation, choice, sum(n)
             FROM counted
             GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
             ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
             ON CONFLICT (survey_id, dimension, month, segment, question_key, score, expectation, choice)
             DO UPDATE SET n = m.n + excluded.n
         )
         SELECT count(*) AS folded FROM taken",
    )
    .bind::<BigInt, _>(FOLD_BATCH)
    .prepared()
    .get_result::<Folded>(conn)
    .await
    .map(|f| f.folded)
}

/// Reclaims the space of the folded rows (no autovacuum is counted on).
pub async fn vacuum_deltas(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("VACUUM survey_stats_deltas")
        .execute(conn)
        .await
        .map(drop)
}

/// Counts of a survey's answers in a range of days, per group (`''` when not grouped).
#[derive(Debug, QueryableByName)]
pub struct StatsRow {
    #[diesel(sql_type = Text)]
    pub grp: String,
    #[diesel(sql_type = Text)]
    pub question_key: String,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub score: Option<i16>,
    #[diesel(sql_type = Nullable<SmallInt>)]
    pub expectation: Option<i16>,
    #[diesel(sql_type = Nullable<Text>)]
    pub choice: Option<String>,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// How the roll-up's rows are grouped: by nothing, a period of days, or the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    None,
    Month,
    Week,
    Segment(&'static str),
}

/// The counts of the days from `from` to `to`, grouped as asked: `reads` of the roll-up
/// (whole months from the monthly one, days from the daily one, each with its sign), and the
/// counts of those days appended and not folded yet. Cells that sum to nothing are left
/// out, as they would be had every day been read.
pub async fn stats(
    conn: &mut AsyncPgConnection,
    survey_id: Uuid,
    grouping: Grouping,
    (from, to): (NaiveDate, NaiveDate),
    reads: &RollUpReads,
) -> QueryResult<Vec<StatsRow>> {
    let (by_day, by_month, dimension) = match grouping {
        Grouping::None => ("''", "''", ""),
        Grouping::Month => (
            "to_char(s.day, 'YYYY-MM')",
            "to_char(m.month, 'YYYY-MM')",
            "",
        ),
        // Weeks do not align with months: their reads are daily only.
        Grouping::Week => ("to_char(s.day, 'IYYY-\"W\"IW')", "''", ""),
        Grouping::Segment(dimension) => ("s.segment", "m.segment", dimension),
    };
    // Day by day: an equality per day is read through the key index whatever the planner
    // guesses of a range's rows (a range join made it scan the dimension whole).
    let (days, signs): (Vec<NaiveDate>, Vec<i32>) = reads
        .days
        .iter()
        .flat_map(|&(first, last, sign)| {
            first
                .iter_days()
                .take_while(move |d| *d <= last)
                .map(move |d| (d, sign))
        })
        .unzip();
    diesel::sql_query(format!(
        "SELECT grp, question_key, score, expectation, choice, sum(n)::bigint AS n
         FROM (SELECT {by_day} AS grp, s.question_key, s.score, s.expectation, s.choice,
                      s.n * p.sign AS n
               FROM unnest($3::date[], $4::int[]) AS p(day, sign)
               JOIN survey_stats s ON s.survey_id = $1 AND s.dimension = $2 AND s.day = p.day
               UNION ALL
               SELECT {by_month}, m.question_key, m.score, m.expectation, m.choice, m.n
               FROM survey_stats_months m
               WHERE m.survey_id = $1 AND m.dimension = $2 AND m.month BETWEEN $5 AND $6
               UNION ALL
               SELECT {by_day}, s.question_key, s.score, s.expectation, s.choice, s.n
               FROM survey_stats_deltas s
               WHERE s.survey_id = $1 AND s.dimension = $2 AND s.day BETWEEN $7 AND $8) r
         GROUP BY 1, 2, 3, 4, 5
         HAVING sum(n) <> 0"
    ))
    .bind::<SqlUuid, _>(survey_id)
    .bind::<Text, _>(dimension)
    .bind::<Array<Date>, _>(days)
    .bind::<Array<Integer>, _>(signs)
    .bind::<Nullable<Date>, _>(reads.months.map(|m| m.0))
    .bind::<Nullable<Date>, _>(reads.months.map(|m| m.1))
    .bind::<Date, _>(from)
    .bind::<Date, _>(to)
    .prepared()
    .load(conn)
    .await
}

#[derive(Debug, QueryableByName)]
pub struct DayRange {
    #[diesel(sql_type = Nullable<Date>)]
    pub first: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Date>)]
    pub last: Option<NaiveDate>,
}

/// The first and last day with responses, folded or not.
pub async fn days(conn: &mut AsyncPgConnection, survey_id: Uuid) -> QueryResult<DayRange> {
    diesel::sql_query(
        "SELECT least((SELECT min(day) FROM survey_stats
                       WHERE survey_id = $1 AND dimension = ''),
                      (SELECT min(day) FROM survey_stats_deltas
                       WHERE survey_id = $1 AND dimension = '')) AS first,
                greatest((SELECT max(day) FROM survey_stats
                          WHERE survey_id = $1 AND dimension = ''),
                         (SELECT max(day) FROM survey_stats_deltas
                          WHERE survey_id = $1 AND dimension = '')) AS last",
    )
    .bind::<SqlUuid, _>(survey_id)
    .prepared()
    .get_result(conn)
    .await
}

/// Keeps a customer's latest NPS and CSAT (by time answered) for the customer list.
pub async fn remember_scores(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    at: DateTime<Utc>,
    nps: Option<i16>,
    csat: Option<i16>,
) -> QueryResult<()> {
    if nps.is_none() && csat.is_none() {
        return Ok(());
    }

    diesel::sql_query(
        "INSERT INTO customer_satisfaction AS c (customer_id, nps, nps_at, csat, csat_at)
             VALUES ($1, $2, CASE WHEN $2 IS NOT NULL THEN $4 END,
                     $3, CASE WHEN $3 IS NOT NULL THEN $4 END)
             ON CONFLICT (customer_id) DO UPDATE SET
                 nps = CASE WHEN excluded.nps_at >= coalesce(c.nps_at, '-infinity')
                            THEN excluded.nps ELSE c.nps END,
                 nps_at = CASE WHEN excluded.nps_at >= coalesce(c.nps_at, '-infinity')
                               THEN excluded.nps_at ELSE c.nps_at END,
                 csat = CASE WHEN excluded.csat_at >= coalesce(c.csat_at, '-infinity')
                             THEN excluded.csat ELSE c.csat END,
                 csat_at = CASE WHEN excluded.csat_at >= coalesce(c.csat_at, '-infinity')
                                THEN excluded.csat_at ELSE c.csat_at END",
    )
    .bind::<SqlUuid, _>(customer_id)
    .bind::<Nullable<SmallInt>, _>(nps)
    .bind::<Nullable<SmallInt>, _>(csat)
    .bind::<diesel::sql_types::Timestamptz, _>(at)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Keeps a customer's latest answer to each `expectation_performance` question key (by time
/// answered, then response id), for the customer list's `dissatisfied_with`. `answers`:
/// (key, expectation E, performance P).
pub async fn remember_attributes(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    response_id: Uuid,
    at: DateTime<Utc>,
    answers: &[(String, i16, i16)],
) -> QueryResult<()> {
    if answers.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "INSERT INTO customer_attribute_answers AS a
             (customer_id, question_key, response_id, submitted_at, expectation, performance)
         SELECT $1, t.key, $2, $3, t.e, t.p
         FROM unnest($4::text[], $5::smallint[], $6::smallint[]) AS t (key, e, p)
         ON CONFLICT (customer_id, question_key) DO UPDATE SET
             response_id = excluded.response_id, submitted_at = excluded.submitted_at,
             expectation = excluded.expectation, performance = excluded.performance
         WHERE (excluded.submitted_at, excluded.response_id) >= (a.submitted_at, a.response_id)",
    )
    .bind::<SqlUuid, _>(customer_id)
    .bind::<SqlUuid, _>(response_id)
    .bind::<diesel::sql_types::Timestamptz, _>(at)
    .bind::<Array<Text>, _>(answers.iter().map(|a| a.0.clone()).collect::<Vec<_>>())
    .bind::<Array<SmallInt>, _>(answers.iter().map(|a| a.1).collect::<Vec<_>>())
    .bind::<Array<SmallInt>, _>(answers.iter().map(|a| a.2).collect::<Vec<_>>())
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Customers by their latest NPS and CSAT (each bound inclusive), and by their latest answer
/// to an attribute, for the customer list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SatisfactionFilter {
    pub nps: (Option<i16>, Option<i16>),
    pub csat: (Option<i16>, Option<i16>),
    /// Latest NPS in any of these categories.
    pub nps_categories: Vec<NpsCategory>,
    /// The latest answer to this `expectation_performance` question key had P < E.
    pub dissatisfied_with: Option<String>,
}

impl SatisfactionFilter {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether a score filter (NPS, CSAT) is set: [`SatisfactionFilter::customer_ids`] applies.
    pub fn has_scores(&self) -> bool {
        self.nps != (None, None) || self.csat != (None, None) || !self.nps_categories.is_empty()
    }

    /// The customers whose latest answer to `dissatisfied_with` had P < E, as a subquery
    /// (served by the partial index of dissatisfied answers); `None` when not asked.
    pub fn dissatisfied_ids(
        &self,
    ) -> Option<customer_attribute_answers::BoxedQuery<'static, Pg, SqlUuid>> {
        use customer_attribute_answers as a;
        let key = self.dissatisfied_with.clone()?;
        Some(
            a::table
                .filter(a::question_key.eq(key))
                .filter(a::performance.lt(a::expectation))
                .select(a::customer_id)
                .into_boxed(),
        )
    }

    /// The ids of the customers its scores keep, as a subquery (served by the score indexes).
    pub fn customer_ids(&self) -> customer_satisfaction::BoxedQuery<'static, Pg, SqlUuid> {
        use customer_satisfaction as c;
        let mut query = c::table.select(c::customer_id).into_boxed();
        if let Some(low) = self.nps.0 {
            query = query.filter(c::nps.ge(low));
        }
        if let Some(high) = self.nps.1 {
            query = query.filter(c::nps.le(high));
        }
        if !self.nps_categories.is_empty() {
            let values: Vec<i16> = (0..=10)
                .filter(|v| {
                    self.nps_categories
                        .contains(&super::rules::nps_category(*v))
                })
                .collect();
            query = query.filter(c::nps.eq_any(values));
        }
        if let Some(low) = self.csat.0 {
            query = query.filter(c::csat.ge(low));
        }
        if let Some(high) = self.csat.1 {
            query = query.filter(c::csat.le(high));
        }
        query
    }
}

/// Removes an erased customer's text answers (free text is where personal data hides);
/// the scores stay, anonymous, in the results. The ids of the responses changed.
pub async fn erase_text(conn: &mut AsyncPgConnection, customer_id: Uuid) -> QueryResult<Vec<Uuid>> {
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = SqlUuid)]
        id: Uuid,
    }
    let ids: Vec<Id> = diesel::sql_query(
        "UPDATE survey_responses r
         SET answers = r.answers - ARRAY(
                 SELECT q->>'key' FROM surveys s, jsonb_array_elements(s.questions) q
                 WHERE s.id = r.survey_id AND q->>'type' = 'text'),
             version = version + 1, updated_at = now()
         WHERE customer_id = $1
         RETURNING id",
    )
    .bind::<SqlUuid, _>(customer_id)
    .prepared()
    .load(conn)
    .await?;
    Ok(ids.into_iter().map(|i| i.id).collect())
}
