//! Import queries: the job row, its stored file, its failed rows.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::json::{ImportState, Mode, Resource};
use super::parse::Format;
use super::{Failure, LEASE, Outcome, RowMatch};
use crate::auth::Actor;
use crate::customers::json::OnDuplicate;
use crate::db::Prepare;
use crate::db::schema::{import_chunks, imports};

/// An import row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = imports)]
pub struct ImportRecord {
    pub id: Uuid,
    pub resource: Resource,
    pub mode: Mode,
    pub format: Format,
    pub dry_run: bool,
    pub all_or_nothing: bool,
    pub background: bool,
    pub state: ImportState,
    pub content_hash: Option<Vec<u8>>,
    pub bytes: i64,
    pub header: Option<String>,
    pub received: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
    pub lines_done: i64,
    pub committed: bool,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub actor_type: String,
    pub actor_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Runs that claimed it, this one included.
    pub attempts: i32,
    /// Why its last run stopped short, in words a client may read.
    pub last_error: Option<String>,
    /// Problems of its failed rows stored so far (`failed` counts the rows).
    pub errors_total: i64,
    /// The mapping it runs with (an `AppliedMapping`), if any.
    pub mapping: Option<serde_json::Value>,
    /// The file's columns the mapping left unused, once read.
    pub unmapped_columns: Option<Vec<String>>,
    /// What a customer row that matches a live customer by the duplicate rules does.
    pub on_duplicate: Option<OnDuplicate>,
}

impl ImportRecord {
    /// Who started it, to write as them.
    pub fn actor(&self) -> Actor {
        let id = Uuid::parse_str(&self.actor_id);
        match (self.actor_type.as_str(), id) {
            ("user", Ok(id)) => Actor::User(id),
            ("api_client", Ok(id)) => Actor::Client(id),
            _ => Actor::Service(self.actor_id.clone()),
        }
    }
}

/// What an upload is.
pub struct NewImport<'a> {
    pub resource: Resource,
    pub mode: Mode,
    pub format: Format,
    pub dry_run: bool,
    pub all_or_nothing: bool,
    pub background: bool,
    pub idempotency_key: Option<&'a str>,
    /// The mapping it runs with (an `AppliedMapping`), if any.
    pub mapping: Option<serde_json::Value>,
    /// Customers: check each new row against the duplicate rules, and what to do on a match.
    pub on_duplicate: Option<OnDuplicate>,
}

/// Starts an import receiving its file; `None` when the caller's `Idempotency-Key` names an
/// import already.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    new: &NewImport<'_>,
) -> QueryResult<Option<ImportRecord>> {
    diesel::insert_into(imports::table)
        .values((
            imports::id.eq(Uuid::now_v7()),
            imports::resource.eq(new.resource),
            imports::mode.eq(new.mode),
            imports::format.eq(new.format),
            imports::dry_run.eq(new.dry_run),
            imports::all_or_nothing.eq(new.all_or_nothing),
            imports::background.eq(new.background),
            imports::state.eq(ImportState::Receiving),
            imports::idempotency_key.eq(new.idempotency_key),
            imports::mapping.eq(&new.mapping),
            imports::on_duplicate.eq(new.on_duplicate),
            imports::actor_type.eq(actor.kind()),
            imports::actor_id.eq(actor.id()),
        ))
        .on_conflict_do_nothing()
        .returning(ImportRecord::as_returning())
        .get_result(conn)
        .await
        .optional()
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ImportRecord>> {
    imports::table
        .find(id)
        .select(ImportRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// The caller's import with this `Idempotency-Key`.
pub async fn by_key(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    key: &str,
) -> QueryResult<Option<ImportRecord>> {
    imports::table
        .filter(imports::actor_type.eq(actor.kind()))
        .filter(imports::actor_id.eq(actor.id()))
        .filter(imports::idempotency_key.eq(key))
        .select(ImportRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// An earlier import of the same file with the same options that was applied, by the same
/// caller, started within `window` before `job`: a re-send answered with it. Another caller's
/// file, or one sent longer ago, is imported afresh (it may be meant to apply again); a
/// window of zero never replays. Served by `imports_hash_idx` (the file's hash, nearly unique).
pub async fn same_file(
    conn: &mut AsyncPgConnection,
    job: &ImportRecord,
    hash: &[u8],
    window: std::time::Duration,
) -> QueryResult<Option<ImportRecord>> {
    if window.is_zero() {
        return Ok(None);
    }
    let mut query = imports::table
        .filter(imports::content_hash.eq(hash))
        .filter(imports::state.eq(ImportState::Succeeded))
        .filter(imports::id.ne(job.id))
        .filter(imports::actor_type.eq(&job.actor_type))
        .filter(imports::actor_id.eq(&job.actor_id))
        .filter(imports::resource.eq(job.resource))
        .filter(imports::mode.eq(job.mode))
        .filter(imports::dry_run.eq(false))
        .filter(imports::committed.eq(true))
        .filter(imports::mapping.is_not_distinct_from(job.mapping.clone()))
        .filter(imports::on_duplicate.is_not_distinct_from(job.on_duplicate))
        .into_boxed();
    // The database's clock, as `created_at` was set by it; a window too long to add up
    // reaches back to the first import.
    if let Some(since) = chrono::Duration::from_std(window)
        .ok()
        .and_then(|w| job.created_at.checked_sub_signed(w))
    {
        query = query.filter(imports::created_at.gt(since));
    }
    query
        .order(imports::created_at.desc())
        .select(ImportRecord::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn add_chunk(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    seq: i32,
    data: &[u8],
) -> QueryResult<()> {
    diesel::insert_into(import_chunks::table)
        .values((
            import_chunks::import_id.eq(id),
            import_chunks::seq.eq(seq),
            import_chunks::data.eq(data),
        ))
        .execute(conn)
        .await?;
    // The upload is alive: the worker leaves it be.
    diesel::update(imports::table.find(id))
        .set(imports::updated_at.eq(diesel::dsl::now))
        .execute(conn)
        .await
        .map(drop)
}

/// Fails the uploads that stopped arriving (nothing stored for `quiet`: the client went
/// away, or the instance receiving it died) and frees what they had stored; how many.
pub async fn abandon_stopped_uploads(
    conn: &mut AsyncPgConnection,
    quiet: std::time::Duration,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let count: Count = diesel::sql_query(
        "WITH stopped AS ( \
           UPDATE imports SET state = 'failed', finished_at = now(), updated_at = now(), \
             error = 'the upload stopped before its end: send the file again' \
           WHERE state = 'receiving' AND updated_at < now() - make_interval(secs => $1) \
           RETURNING id), \
         freed AS (DELETE FROM import_chunks WHERE import_id IN (SELECT id FROM stopped)) \
         SELECT count(*) AS n FROM stopped",
    )
    .bind::<diesel::sql_types::Double, _>(quiet.as_secs_f64())
    .get_result(conn)
    .await?;
    Ok(count.n)
}

pub async fn chunk(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    seq: i32,
) -> QueryResult<Option<Vec<u8>>> {
    import_chunks::table
        .find((id, seq))
        .select(import_chunks::data)
        .first(conn)
        .await
        .optional()
}

/// The file is in: queue it.
pub async fn received(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    hash: &[u8],
    bytes: i64,
) -> QueryResult<ImportRecord> {
    diesel::update(imports::table.find(id))
        .set((
            imports::content_hash.eq(hash),
            imports::bytes.eq(bytes),
            imports::state.eq(ImportState::Queued),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ImportRecord::as_returning())
        .get_result(conn)
        .await
}

/// Forgets an upload (a re-sent file answered by its first import, or a broken upload).
pub async fn delete(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::delete(imports::table.find(id))
        .execute(conn)
        .await
        .map(drop)
}

/// Fails an import that could not be received.
pub async fn abandon(conn: &mut AsyncPgConnection, id: Uuid, why: &str) -> QueryResult<()> {
    diesel::delete(import_chunks::table.filter(import_chunks::import_id.eq(id)))
        .execute(conn)
        .await?;
    diesel::update(imports::table.find(id))
        .set((
            imports::state.eq(ImportState::Failed),
            imports::error.eq(why),
            imports::finished_at.eq(diesel::dsl::now),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Takes a queued job, or one whose runner's lease ran out, for this runner: one attempt
/// more.
pub async fn claim(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ImportRecord>> {
    diesel::update(
        imports::table.find(id).filter(
            imports::state.eq(ImportState::Queued).or(imports::state
                .eq(ImportState::Running)
                .and(imports::lease_until.lt(diesel::dsl::now))),
        ),
    )
    .set((
        imports::state.eq(ImportState::Running),
        imports::lease_until.eq(Utc::now() + LEASE),
        imports::attempts.eq(imports::attempts + 1),
        imports::updated_at.eq(diesel::dsl::now),
    ))
    .returning(ImportRecord::as_returning())
    .get_result(conn)
    .await
    .optional()
}

/// Gives a job back that this runner stops on while the service stops: its lease ends now
/// and its attempt does not count, so any runner resumes it at once.
pub async fn hand_back(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::lease_until.eq(diesel::dsl::now),
            imports::attempts.eq(imports::attempts - 1),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Jobs waiting for a worker, oldest first. A job whose request waits for its answer
/// (not `background`) is run by that request as soon as its file is in: the worker leaves
/// it alone for `foreground_grace` after it was queued (the request would otherwise lose it
/// to the worker and answer `409`), and takes it only when that request's instance
/// evidently stopped first.
pub async fn pending(
    conn: &mut AsyncPgConnection,
    foreground_grace: std::time::Duration,
) -> QueryResult<Vec<Uuid>> {
    let queued_before = Utc::now() - foreground_grace;
    imports::table
        .filter(
            imports::state
                .eq(ImportState::Queued)
                .and(
                    imports::background
                        .eq(true)
                        .or(imports::updated_at.lt(queued_before)),
                )
                .or(imports::state
                    .eq(ImportState::Running)
                    .and(imports::lease_until.lt(diesel::dsl::now))),
        )
        .order(imports::created_at.asc())
        .select(imports::id)
        .limit(10)
        .load(conn)
        .await
}

/// Why a run stopped short, kept for the run that gives the job up.
pub async fn stopped(conn: &mut AsyncPgConnection, id: Uuid, why: &str) -> QueryResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::last_error.eq(why),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// What the file showed once read: its CSV header, and the columns its mapping left
/// unused (`None` without a mapping).
pub async fn set_header(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    header: Option<&str>,
    unmapped: Option<&[String]>,
) -> QueryResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::header.eq(header),
            imports::unmapped_columns.eq(unmapped),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// A batch's progress: committed with its rows, renewing the lease.
pub async fn progress(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    lines_done: i64,
    received: i64,
    total: &Outcome,
) -> QueryResult<()> {
    diesel::update(imports::table.find(id))
        .set((
            imports::lines_done.eq(lines_done),
            imports::received.eq(received),
            imports::created.eq(total.created),
            imports::updated.eq(total.updated),
            imports::unchanged.eq(total.unchanged),
            imports::failed.eq(total.failed),
            imports::lease_until.eq(Utc::now() + LEASE),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)
        .await
        .map(drop)
}

/// Stores failed rows, set-wise: each row once with its raw text, each of its problems
/// referring to it, and the import's count of problems, in one statement. A row's failures
/// all arrive in one call. A job run in one transaction calls this on its side connection
/// (its failed rows outlive a rollback), so nothing else may hold the import's row meanwhile.
pub async fn record_failures(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    failures: &[Failure],
) -> QueryResult<()> {
    if failures.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = failures.iter().map(|f| f.line as i64).collect();
    let fields: Vec<&str> = failures.iter().map(|f| f.field.as_str()).collect();
    let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
    // The raw text of each failed row, once: its first failure's.
    let mut row_lines: Vec<i64> = Vec::new();
    let mut row_raws: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for f in failures {
        if seen.insert(f.line) {
            row_lines.push(f.line as i64);
            row_raws.push(&f.raw);
        }
    }
    diesel::sql_query(include_str!("record_failures.sql"))
        .bind::<SqlUuid, _>(id)
        .bind::<Array<BigInt>, _>(row_lines)
        .bind::<Array<Text>, _>(row_raws)
        .bind::<Array<BigInt>, _>(lines)
        .bind::<Array<Text>, _>(fields)
        .bind::<Array<Text>, _>(messages)
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}

/// Stores the rows of a batch that were skipped or merged into the customer they matched.
pub async fn record_matches(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    matches: &[RowMatch],
) -> QueryResult<()> {
    if matches.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = matches.iter().map(|m| m.line).collect();
    let customers: Vec<Uuid> = matches.iter().map(|m| m.customer_id).collect();
    let scores: Vec<i32> = matches.iter().map(|m| m.score as i32).collect();
    let reasons: Vec<String> = matches
        .iter()
        .map(|m| {
            let names: Vec<&str> = m.reasons.iter().map(|r| r.as_str()).collect();
            names.join(",")
        })
        .collect();
    let actions: Vec<&str> = matches.iter().map(|m| m.action.as_str()).collect();
    let matched_lines: Vec<Option<i64>> = matches.iter().map(|m| m.matched_line).collect();
    diesel::sql_query(
        "INSERT INTO import_matches \
             (import_id, line, customer_id, score, reasons, action, matched_line) \
         SELECT $1, m.line, m.customer_id, m.score, string_to_array(m.reasons, ','), m.action, \
                m.matched_line \
         FROM unnest($2::bigint[], $3::uuid[], $4::int[], $5::text[], $6::text[], \
                     $7::bigint[]) \
              AS m (line, customer_id, score, reasons, action, matched_line) \
         ON CONFLICT (import_id, line) DO NOTHING",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Array<BigInt>, _>(lines)
    .bind::<Array<SqlUuid>, _>(customers)
    .bind::<Array<diesel::sql_types::Integer>, _>(scores)
    .bind::<Array<Text>, _>(reasons)
    .bind::<Array<Text>, _>(actions)
    .bind::<Array<Nullable<BigInt>>, _>(matched_lines)
    .execute(conn)
    .await
    .map(drop)
}

/// A row skipped or merged, as stored.
#[derive(Debug, Clone, QueryableByName)]
pub struct MatchRow {
    #[diesel(sql_type = SqlUuid)]
    pub import_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub line: i64,
    #[diesel(sql_type = SqlUuid)]
    pub customer_id: Uuid,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub score: i32,
    #[diesel(sql_type = Array<Text>)]
    pub reasons: Vec<String>,
    #[diesel(sql_type = Text)]
    pub action: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub matched_line: Option<i64>,
    #[diesel(sql_type = BigInt)]
    pub total: i64,
}

/// The first rows (by line) of each of some imports that matched a customer, each with how
/// many there are in all: one query for a whole page.
pub async fn first_matches(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    limit: i64,
) -> QueryResult<Vec<MatchRow>> {
    diesel::sql_query(
        "SELECT i.id AS import_id, m.line, m.customer_id, m.score, m.reasons, m.action, \
                m.matched_line, \
                (SELECT count(*) FROM import_matches a WHERE a.import_id = i.id) AS total \
         FROM unnest($1::uuid[]) AS i(id) CROSS JOIN LATERAL ( \
           SELECT line, customer_id, score, reasons, action, matched_line FROM import_matches \
           WHERE import_id = i.id ORDER BY line LIMIT $2) m",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await
}

/// Ends a job with its counts; its stored file is no longer needed.
pub async fn finish(
    conn: &mut AsyncPgConnection,
    job: &ImportRecord,
    total: &Outcome,
    received: i64,
    committed: bool,
    error: Option<&str>,
) -> QueryResult<ImportRecord> {
    diesel::delete(import_chunks::table.filter(import_chunks::import_id.eq(job.id)))
        .execute(conn)
        .await?;
    let state = if error.is_some() {
        ImportState::Failed
    } else {
        ImportState::Succeeded
    };
    diesel::update(imports::table.find(job.id))
        .set((
            imports::state.eq(state),
            imports::received.eq(received),
            imports::created.eq(total.created),
            imports::updated.eq(total.updated),
            imports::unchanged.eq(total.unchanged),
            imports::failed.eq(total.failed),
            imports::committed.eq(committed),
            imports::error.eq(error),
            imports::lease_until.eq(None::<DateTime<Utc>>),
            imports::finished_at.eq(diesel::dsl::now),
            imports::updated_at.eq(diesel::dsl::now),
        ))
        .returning(ImportRecord::as_returning())
        .get_result(conn)
        .await
}

/// Imports newest first; `sender`: only those it started (owned-only access), served by
/// imports_actor_created_idx.
pub async fn list(
    conn: &mut AsyncPgConnection,
    state: Option<ImportState>,
    sender: Option<&Actor>,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<ImportRecord>> {
    let mut query = imports::table.into_boxed();
    if let Some(actor) = sender {
        query = query
            .filter(imports::actor_type.eq(actor.kind()))
            .filter(imports::actor_id.eq(actor.id()));
    }
    if let Some(state) = state {
        query = query.filter(imports::state.eq(state));
    }
    if let Some((t, id)) = after {
        query = query.filter(crate::db::after_key(
            "imports.created_at",
            "imports.id",
            "<",
            t,
            id,
        ));
    }
    query
        .order((imports::created_at.desc(), imports::id.desc()))
        .select(ImportRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// A stored problem of a failed row.
#[derive(Debug, Clone, QueryableByName)]
pub struct ErrorRow {
    #[diesel(sql_type = BigInt)]
    pub line: i64,
    #[diesel(sql_type = Text)]
    pub field: String,
    #[diesel(sql_type = Text)]
    pub message: String,
}

/// The first problems (by line) of each of some imports: one query for a whole page.
pub async fn first_errors(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    limit: i64,
) -> QueryResult<Vec<(Uuid, ErrorRow)>> {
    #[derive(QueryableByName)]
    struct Keyed {
        #[diesel(sql_type = SqlUuid)]
        import_id: Uuid,
        #[diesel(embed)]
        row: ErrorRow,
    }
    let rows: Vec<Keyed> = diesel::sql_query(
        "SELECT i.id AS import_id, e.line, e.field, e.message \
         FROM unnest($1::uuid[]) AS i(id) CROSS JOIN LATERAL ( \
           SELECT line, field, message FROM import_errors \
           WHERE import_id = i.id ORDER BY line, field LIMIT $2) e",
    )
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(ids)
    .bind::<BigInt, _>(limit)
    .prepared()
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|k| (k.import_id, k.row)).collect())
}

/// A failed row as the error file shows it: its line, its problems (`field: message`,
/// joined by `; `) and its raw text.
#[derive(Debug, Clone, QueryableByName)]
pub struct FailedLine {
    #[diesel(sql_type = BigInt)]
    pub line: i64,
    #[diesel(sql_type = Text)]
    pub why: String,
    #[diesel(sql_type = Text)]
    pub raw: String,
}

/// Up to `limit` failed rows after `after_line`, by line, each with all its problems: a page
/// of whole lines.
pub async fn failed_lines(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    after_line: i64,
    limit: i64,
) -> QueryResult<Vec<FailedLine>> {
    diesel::sql_query(
        "SELECT r.line, r.raw, coalesce(( \
           SELECT string_agg(e.field || ': ' || e.message, '; ' ORDER BY e.field) \
           FROM import_errors e WHERE e.import_id = r.import_id AND e.line = r.line), '') AS why \
         FROM import_error_rows r WHERE r.import_id = $1 AND r.line > $2 \
         ORDER BY r.line LIMIT $3",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<BigInt, _>(after_line)
    .bind::<BigInt, _>(limit)
    .prepared()
    .load(conn)
    .await
}
