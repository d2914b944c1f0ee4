//! Interaction queries. Every function takes a connection, so handlers compose them in one
//! transaction.

use chrono::{DateTime, Utc};
use diesel::dsl::{now, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, SmallInt, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::json::{
    ComplaintSort, ComplaintStatus, Direction, FollowUpState, InteractionKind, InteractionSort,
    Severity,
};
use crate::auth::{Actor, ownership};
use crate::customers::json::DeletedFilter;
use crate::db::Prepare;
use crate::db::schema::{complaint_status_changes, interactions};
use crate::domain::{Channel, ChurnCause};

/// An interaction row.
#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = interactions)]
pub struct InteractionRecord {
    pub id: Uuid,
    pub customer_id: Uuid,
    #[diesel(embed)]
    pub draft: InteractionDraft,
    pub status: Option<ComplaintStatus>,
    pub in_progress_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopen_count: i32,
    pub timeline_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// The times a complaint's workflow keeps: the first start of work, the last resolution,
/// the closing, the last reopening. Its rules are in `rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Steps {
    pub in_progress_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub reopened_at: Option<DateTime<Utc>>,
    pub reopen_count: i32,
}

impl InteractionRecord {
    pub fn steps(&self) -> Steps {
        Steps {
            in_progress_at: self.in_progress_at,
            resolved_at: self.resolved_at,
            closed_at: self.closed_at,
            reopened_at: self.reopened_at,
            reopen_count: self.reopen_count,
        }
    }
}

/// Everything about an interaction that a write sets (the workflow has its own update).
#[derive(
    Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable, Insertable, AsChangeset,
)]
#[diesel(table_name = interactions, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct InteractionDraft {
    pub channel: Channel,
    pub direction: Direction,
    pub kind: InteractionKind,
    pub subject: Option<String>,
    pub notes: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub duration_seconds: Option<i32>,
    pub staff_id: Option<Uuid>,
    pub outcome: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub assignee_id: Option<Uuid>,
    pub severity: Option<Severity>,
    pub resolution: Option<String>,
    pub purchase_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub cause: Option<ChurnCause>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    customer_id: Uuid,
    draft: &InteractionDraft,
) -> QueryResult<InteractionRecord> {
    let status = (draft.kind == InteractionKind::Complaint).then_some(ComplaintStatus::Open);
    diesel::insert_into(interactions::table)
        .values((
            interactions::id.eq(id),
            interactions::customer_id.eq(customer_id),
            interactions::status.eq(status),
            draft.clone(),
        ))
        .returning(InteractionRecord::as_returning())
        .get_result(conn)
        .await
}

/// The customer a purchase belongs to (`None`: no such purchase).
pub async fn purchase_customer(
    conn: &mut AsyncPgConnection,
    purchase_id: Uuid,
) -> QueryResult<Option<Uuid>> {
    use crate::db::schema::purchases;
    purchases::table
        .find(purchase_id)
        .select(purchases::customer_id)
        .first(conn)
        .await
        .optional()
}

/// Opens the callback after a purchase (see `interactions::callback_after_purchase`): a
/// phone follow-up asking `subject`, due the settings' days for `level` (`accountable`,
/// `proactive` or `partnership`) after the purchase, assigned to the
/// customer's account manager; nothing when the level has no days set. One statement: the
/// settings and the manager are read in it, the row comes back whole.
pub async fn insert_callback(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    customer_id: Uuid,
    level: &str,
    subject: &str,
    purchase_id: Uuid,
    purchased_at: DateTime<Utc>,
) -> QueryResult<Option<InteractionRecord>> {
    diesel::sql_query(
        "INSERT INTO interactions (id, customer_id, channel, direction, kind, subject, due_at,
                                   assignee_id, purchase_id)
         SELECT $1, c.id, 'phone', 'outbound', 'callback', $2,
                $3 + make_interval(days => d.days), c.account_manager_id, $4
         FROM customers c
         CROSS JOIN analytics_settings s
         CROSS JOIN LATERAL (
             SELECT CASE $6 WHEN 'accountable' THEN s.callback_days_accountable
                            WHEN 'proactive' THEN s.callback_days_proactive
                            WHEN 'partnership' THEN s.callback_days_partnership END AS days) d
         WHERE c.id = $5 AND d.days IS NOT NULL
         RETURNING *",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(subject)
    .bind::<Timestamptz, _>(purchased_at)
    .bind::<SqlUuid, _>(purchase_id)
    .bind::<SqlUuid, _>(customer_id)
    .bind::<Text, _>(level)
    .prepared()
    .get_result(conn)
    .await
    .optional()
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<InteractionRecord>> {
    interactions::table
        .find(id)
        .select(InteractionRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads an interaction and locks the row until the transaction ends.
pub async fn lock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<InteractionRecord>> {
    interactions::table
        .find(id)
        .select(InteractionRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &InteractionDraft,
) -> QueryResult<InteractionRecord> {
    diesel::update(interactions::table.find(id))
        .set((
            draft.clone(),
            interactions::version.eq(interactions::version + 1),
            interactions::updated_at.eq(now),
        ))
        .returning(InteractionRecord::as_returning())
        .get_result(conn)
        .await
}

/// Moves a complaint to `status` with the workflow's times and resolution.
pub async fn set_status(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: ComplaintStatus,
    steps: &Steps,
    resolution: Option<&str>,
) -> QueryResult<InteractionRecord> {
    diesel::update(interactions::table.find(id))
        .set((
            interactions::status.eq(status),
            interactions::in_progress_at.eq(steps.in_progress_at),
            interactions::resolved_at.eq(steps.resolved_at),
            interactions::closed_at.eq(steps.closed_at),
            interactions::reopened_at.eq(steps.reopened_at),
            interactions::reopen_count.eq(steps.reopen_count),
            interactions::resolution.eq(resolution),
            interactions::version.eq(interactions::version + 1),
            interactions::updated_at.eq(now),
        ))
        .returning(InteractionRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn set_deleted(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    deleted: bool,
) -> QueryResult<InteractionRecord> {
    let deleted_at: Option<DateTime<Utc>> = deleted.then(Utc::now);
    diesel::update(interactions::table.find(id))
        .set((
            interactions::deleted_at.eq(deleted_at),
            interactions::version.eq(interactions::version + 1),
            interactions::updated_at.eq(now),
        ))
        .returning(InteractionRecord::as_returning())
        .get_result(conn)
        .await
}

/// Every interaction of a customer, oldest first (for a data-subject export).
pub async fn of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<InteractionRecord>> {
    interactions::table
        .filter(interactions::customer_id.eq(customer_id))
        .order((interactions::timeline_at.asc(), interactions::id.asc()))
        .select(InteractionRecord::as_select())
        .load(conn)
        .await
}

/// Forgets the free text of a customer's interactions (erasure): what was said may hold
/// personal data; the facts (when, how, what kind) stay for the aggregates. The ids of the
/// interactions touched.
pub async fn erase_texts(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<Uuid>> {
    let ids = interactions::table
        .filter(interactions::customer_id.eq(customer_id))
        .select(interactions::id);
    diesel::update(complaint_status_changes::table)
        .filter(complaint_status_changes::interaction_id.eq_any(ids))
        .set(complaint_status_changes::note.eq(None::<String>))
        .execute(conn)
        .await?;
    diesel::update(interactions::table.filter(interactions::customer_id.eq(customer_id)))
        .set((
            interactions::subject.eq(None::<String>),
            interactions::notes.eq(None::<String>),
            interactions::outcome.eq(None::<String>),
            interactions::resolution.eq(None::<String>),
            interactions::version.eq(interactions::version + 1),
            interactions::updated_at.eq(now),
        ))
        .returning(interactions::id)
        .get_results(conn)
        .await
}

/// Loads interactions by id, in no particular order (the timeline's loader).
pub async fn by_ids(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<InteractionRecord>> {
    interactions::table
        .filter(interactions::id.eq_any(ids))
        .select(InteractionRecord::as_select())
        .load(&mut conn)
        .await
}

// ---- complaint workflow history ---------------------------------------------------------

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = complaint_status_changes)]
pub struct StatusChangeRecord {
    pub id: Uuid,
    pub from_status: Option<ComplaintStatus>,
    pub to_status: ComplaintStatus,
    pub changed_at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: String,
    pub note: Option<String>,
}

pub async fn record_status_change(
    conn: &mut AsyncPgConnection,
    interaction_id: Uuid,
    from: Option<ComplaintStatus>,
    to: ComplaintStatus,
    at: DateTime<Utc>,
    actor: &Actor,
    note: Option<&str>,
) -> QueryResult<()> {
    diesel::insert_into(complaint_status_changes::table)
        .values((
            complaint_status_changes::id.eq(Uuid::now_v7()),
            complaint_status_changes::interaction_id.eq(interaction_id),
            complaint_status_changes::from_status.eq(from),
            complaint_status_changes::to_status.eq(to),
            complaint_status_changes::changed_at.eq(at),
            complaint_status_changes::actor_type.eq(actor.kind()),
            complaint_status_changes::actor_id.eq(actor.id()),
            complaint_status_changes::note.eq(note),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn status_history(
    conn: &mut AsyncPgConnection,
    interaction_id: Uuid,
) -> QueryResult<Vec<StatusChangeRecord>> {
    complaint_status_changes::table
        .filter(complaint_status_changes::interaction_id.eq(interaction_id))
        .order((
            complaint_status_changes::changed_at.asc(),
            complaint_status_changes::id.asc(),
        ))
        .select(StatusChangeRecord::as_select())
        .load(conn)
        .await
}

// ---- lists ------------------------------------------------------------------------------

/// A list's sort key: a time and the id, or for complaints by severity the rank first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorKey {
    Time(DateTime<Utc>, Uuid),
    Ranked(i16, DateTime<Utc>, Uuid),
}

type Boxed<'a> = interactions::BoxedQuery<'a, Pg>;

/// Filters of the interaction list.
#[derive(Debug)]
pub struct ListFilter {
    pub customer_id: Option<Uuid>,
    pub channels: Vec<Channel>,
    pub kinds: Vec<InteractionKind>,
    pub direction: Option<Direction>,
    pub staff_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub purchase_id: Option<Uuid>,
    pub statuses: Vec<ComplaintStatus>,
    pub severities: Vec<Severity>,
    pub occurred_after: Option<DateTime<Utc>>,
    pub occurred_before: Option<DateTime<Utc>>,
    pub q: Option<String>,
    pub deleted: DeletedFilter,
    /// Owned-only access: only interactions with customers this user manages.
    pub owner: Option<Uuid>,
}

/// Owned-only access on a boxed interactions query.
fn reachable(query: Boxed<'_>, owner: Option<Uuid>) -> Boxed<'_> {
    match owner {
        Some(owner) => query.filter(interactions::customer_id.eq_any(ownership::owned_ids(owner))),
        None => query,
    }
}

fn live(mut query: Boxed<'_>, deleted: DeletedFilter) -> Boxed<'_> {
    match deleted {
        DeletedFilter::Exclude => query = query.filter(interactions::deleted_at.is_null()),
        DeletedFilter::Only => query = query.filter(interactions::deleted_at.is_not_null()),
        DeletedFilter::Include => {}
    }
    query
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    sort: InteractionSort,
    after: Option<CursorKey>,
    fetch: i64,
) -> QueryResult<Vec<InteractionRecord>> {
    let mut query = live(interactions::table.into_boxed(), filter.deleted);
    query = reachable(query, filter.owner);
    if let Some(id) = filter.customer_id {
        query = query.filter(interactions::customer_id.eq(id));
    }
    if !filter.channels.is_empty() {
        query = crate::filter_one_of!(query, interactions::channel, filter.channels.clone());
    }
    if !filter.kinds.is_empty() {
        query = crate::filter_one_of!(query, interactions::kind, filter.kinds.clone());
    }
    if let Some(direction) = filter.direction {
        query = query.filter(interactions::direction.eq(direction));
    }
    if let Some(id) = filter.staff_id {
        query = query.filter(interactions::staff_id.eq(id));
    }
    if let Some(id) = filter.assignee_id {
        query = query.filter(interactions::assignee_id.eq(id));
    }
    if let Some(id) = filter.purchase_id {
        query = query.filter(interactions::purchase_id.eq(id));
    }
    if !filter.statuses.is_empty() {
        query = crate::filter_one_of!(query, interactions::status, filter.statuses.clone());
    }
    if !filter.severities.is_empty() {
        query = crate::filter_one_of!(query, interactions::severity, filter.severities.clone());
    }
    if let Some(t) = filter.occurred_after {
        query = query.filter(interactions::timeline_at.ge(t));
    }
    if let Some(t) = filter.occurred_before {
        query = query.filter(interactions::timeline_at.lt(t));
    }
    if let Some(q) = &filter.q {
        // The expression of interactions_search_idx (a generated column).
        query = query.filter(
            sql::<Bool>("(interactions.search @@ websearch_to_tsquery('simple', ")
                .bind::<Text, _>(q.clone())
                .sql("))"),
        );
    }
    let descending = sort == InteractionSort::OccurredAtDesc;
    if let Some(after) = after {
        let CursorKey::Time(t, id) = after else {
            return Err(diesel::result::Error::NotFound);
        };
        let cmp = if descending { "<" } else { ">" };
        query = query.filter(crate::db::after_key(
            "interactions.timeline_at",
            "interactions.id",
            cmp,
            t,
            id,
        ));
    }
    query = if descending {
        query.order((interactions::timeline_at.desc(), interactions::id.desc()))
    } else {
        query.order((interactions::timeline_at.asc(), interactions::id.asc()))
    };
    query
        .select(InteractionRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// Filters of the complaint list.
#[derive(Debug)]
pub struct ComplaintFilter {
    pub statuses: Vec<ComplaintStatus>,
    pub severities: Vec<Severity>,
    pub causes: Vec<ChurnCause>,
    pub assignee_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    /// Owned-only access.
    pub owner: Option<Uuid>,
}

pub async fn complaints(
    conn: &mut AsyncPgConnection,
    filter: &ComplaintFilter,
    sort: ComplaintSort,
    after: Option<CursorKey>,
    fetch: i64,
) -> QueryResult<Vec<InteractionRecord>> {
    let mut query = interactions::table
        .into_boxed()
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::kind.eq(InteractionKind::Complaint));
    query = reachable(query, filter.owner);
    query = crate::filter_one_of!(query, interactions::status, filter.statuses.clone());
    if !filter.severities.is_empty() {
        query = crate::filter_one_of!(query, interactions::severity, filter.severities.clone());
    }
    if !filter.causes.is_empty() {
        let causes: Vec<&'static str> = filter.causes.iter().map(|c| c.as_str()).collect();
        query = query.filter(interactions::cause.eq_any(causes));
    }
    if let Some(id) = filter.assignee_id {
        query = query.filter(interactions::assignee_id.eq(id));
    }
    if let Some(id) = filter.customer_id {
        query = query.filter(interactions::customer_id.eq(id));
    }
    match (sort, after) {
        (_, None) => {}
        (ComplaintSort::Oldest, Some(CursorKey::Time(t, id))) => {
            query = query.filter(crate::db::after_key(
                "interactions.timeline_at",
                "interactions.id",
                ">",
                t,
                id,
            ));
        }
        (ComplaintSort::Severity, Some(CursorKey::Ranked(rank, t, id))) => {
            // Most severe first, then oldest: the rank falls, or stays and the time rises.
            query = query.filter(
                sql::<Bool>("(interactions.severity_rank < ")
                    .bind::<SmallInt, _>(rank)
                    .sql(" OR (interactions.severity_rank = ")
                    .bind::<SmallInt, _>(rank)
                    .sql(" AND (interactions.timeline_at, interactions.id) > (")
                    .bind::<Timestamptz, _>(t)
                    .sql(", ")
                    .bind::<SqlUuid, _>(id)
                    .sql(")))"),
            );
        }
        _ => return Err(diesel::result::Error::NotFound),
    }
    query = match sort {
        ComplaintSort::Oldest => {
            query.order((interactions::timeline_at.asc(), interactions::id.asc()))
        }
        ComplaintSort::Severity => query.order((
            interactions::severity_rank.desc(),
            interactions::timeline_at.asc(),
            interactions::id.asc(),
        )),
    };
    query
        .select(InteractionRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// Filters of the follow-up work list.
#[derive(Debug)]
pub struct FollowUpFilter {
    pub assignee_id: Option<Uuid>,
    pub customer_id: Option<Uuid>,
    /// `None`: everything not done.
    pub state: Option<FollowUpState>,
    /// Owned-only access.
    pub owner: Option<Uuid>,
}

/// The work list: pending follow-ups by due time (soonest first), done ones by completion
/// (latest first).
pub async fn follow_ups(
    conn: &mut AsyncPgConnection,
    filter: &FollowUpFilter,
    at: DateTime<Utc>,
    after: Option<CursorKey>,
    fetch: i64,
) -> QueryResult<Vec<InteractionRecord>> {
    let mut query = interactions::table
        .into_boxed()
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::due_at.is_not_null());
    query = reachable(query, filter.owner);
    if let Some(id) = filter.assignee_id {
        query = query.filter(interactions::assignee_id.eq(id));
    }
    if let Some(id) = filter.customer_id {
        query = query.filter(interactions::customer_id.eq(id));
    }
    let done = filter.state == Some(FollowUpState::Done);
    query = match filter.state {
        Some(FollowUpState::Done) => query.filter(interactions::occurred_at.is_not_null()),
        Some(FollowUpState::Overdue) => query
            .filter(interactions::occurred_at.is_null())
            .filter(interactions::due_at.lt(at)),
        Some(FollowUpState::Due) => query
            .filter(interactions::occurred_at.is_null())
            .filter(interactions::due_at.ge(at)),
        None => query.filter(interactions::occurred_at.is_null()),
    };
    if let Some(after) = after {
        let CursorKey::Time(t, id) = after else {
            return Err(diesel::result::Error::NotFound);
        };
        query = query.filter(if done {
            crate::db::after_key("interactions.occurred_at", "interactions.id", "<", t, id)
        } else {
            crate::db::after_key("interactions.due_at", "interactions.id", ">", t, id)
        });
    }
    query = if done {
        query.order((interactions::occurred_at.desc(), interactions::id.desc()))
    } else {
        query.order((interactions::due_at.asc(), interactions::id.asc()))
    };
    query
        .select(InteractionRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

// ---- complaint statistics ---------------------------------------------------------------

/// Time to resolve over one group (all, one severity or one assignee).
#[derive(Debug, QueryableByName)]
pub struct ResolutionRow {
    #[diesel(sql_type = Nullable<Text>)]
    pub severity: Option<Severity>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    pub assignee_id: Option<Uuid>,
    /// 0 for the overall row, 1 for a severity, 2 for an assignee.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub grp: i32,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub n: i64,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    pub median_hours: Option<f64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    pub p90_hours: Option<f64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Double>)]
    pub mean_hours: Option<f64>,
}

/// Hours from opening to resolution of the complaints resolved in `[from, to)`, overall, per
/// severity and per assignee, in one pass (grouping sets); hours to two decimals.
pub async fn resolution_times(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    owner: Option<Uuid>,
) -> QueryResult<Vec<ResolutionRow>> {
    diesel::sql_query(format!(
        "SELECT severity, assignee_id,
                (CASE WHEN GROUPING(severity) = 0 THEN 1
                      WHEN GROUPING(assignee_id) = 0 THEN 2 ELSE 0 END)::int AS grp,
                count(*) AS n,
                round(percentile_cont(0.5) WITHIN GROUP (ORDER BY hours)::numeric, 2)::float8 AS median_hours,
                round(percentile_cont(0.9) WITHIN GROUP (ORDER BY hours)::numeric, 2)::float8 AS p90_hours,
                round(avg(hours)::numeric, 2)::float8 AS mean_hours
         FROM (SELECT severity, assignee_id,
                      extract(epoch FROM resolved_at - occurred_at)::float8 / 3600 AS hours
               FROM interactions
               WHERE resolved_at >= $1 AND resolved_at < $2 AND deleted_at IS NULL
                     AND {owned}) resolved
         GROUP BY GROUPING SETS ((), (severity), (assignee_id))
         ORDER BY grp, n DESC, severity, assignee_id",
        owned = ownership::sql_condition("customer_id", 3),
    ))
    .bind::<Timestamptz, _>(from)
    .bind::<Timestamptz, _>(to)
    .bind::<Nullable<SqlUuid>, _>(owner)
    .prepared().load(conn)
    .await
}

/// Complaints opened in `[from, to)` (by `occurred_at`), per cause (`None`: without one),
/// most first, then in the list's order.
pub async fn complaints_by_cause(
    conn: &mut AsyncPgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    owner: Option<Uuid>,
) -> QueryResult<Vec<(Option<ChurnCause>, i64)>> {
    let mut query = interactions::table
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::kind.eq(InteractionKind::Complaint))
        .filter(interactions::occurred_at.ge(from))
        .filter(interactions::occurred_at.lt(to))
        .group_by(interactions::cause)
        .select((interactions::cause, diesel::dsl::count_star()))
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(interactions::customer_id.eq_any(ownership::owned_ids(owner)));
    }
    let mut rows = query.load::<(Option<ChurnCause>, i64)>(conn).await?;
    // Most first; ties in the list's order, complaints without a cause last.
    rows.sort_by_key(|(cause, n)| (std::cmp::Reverse(*n), cause.is_none(), *cause));
    Ok(rows)
}

/// Unresolved complaints now, per severity.
#[derive(Debug)]
pub struct OpenRow {
    pub severity: Option<Severity>,
    pub n: i64,
    pub oldest: Option<DateTime<Utc>>,
}

pub async fn open_complaints(
    conn: &mut AsyncPgConnection,
    owner: Option<Uuid>,
) -> QueryResult<Vec<OpenRow>> {
    let mut query = interactions::table
        .filter(interactions::deleted_at.is_null())
        .filter(interactions::status.eq_any([ComplaintStatus::Open, ComplaintStatus::InProgress]))
        .group_by(interactions::severity)
        .select((
            interactions::severity,
            diesel::dsl::count_star(),
            diesel::dsl::min(interactions::occurred_at),
        ))
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(interactions::customer_id.eq_any(ownership::owned_ids(owner)));
    }
    query
        .load::<(Option<Severity>, i64, Option<DateTime<Utc>>)>(conn)
        .await
        .map(|rows| {
            rows.into_iter()
                .map(|(severity, n, oldest)| OpenRow {
                    severity,
                    n,
                    oldest,
                })
                .collect()
        })
}
