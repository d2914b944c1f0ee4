//! Bulk imports a curl script can drive: a CSV or NDJSON file (gzip welcome) as the request
//! body, every row checked by the rules of the single-object endpoints, written in batches,
//! with an honest report.
//!
//! An upload is kept as it arrives (in chunks, with its SHA-256), then applied batch by batch;
//! each batch commits its rows, its failed rows and the job's progress together, so a job the
//! service dropped mid-way (a restart) is resumed by the worker after the last committed line,
//! never half-applied within a batch. `dry_run` and `all_or_nothing` run in one transaction
//! that is rolled back when it must. The same file with the same options is one import.

mod contacts;
mod customers;
pub mod json;
pub mod mappings;
pub mod parse;
pub mod preview;
pub mod resource;
mod routes;
pub mod store;
mod upload;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::{Actor, CustomerAccess, Scope, ownership};
use crate::config::ImportSettings;
use crate::customers::json::OnDuplicate;
use crate::db::DbPool;
use crate::events::{EventType, NewEvent};
use crate::http::error::ApiError;
use crate::http::tabular::{self, Column};
use crate::journal::{self, Change};
use crate::state::Drain;
use json::{Import, MatchAction, RowError, RowMatch};
pub use json::{ImportState, Mode, Resource};
use parse::{Format, MAX_RECORD, Parser, Record};
pub use routes::configure;
use store::ImportRecord;

/// The permission an import of `resource` needs (and editing its mappings).
pub fn write_scope(resource: Resource) -> Scope {
    match resource {
        Resource::Customers => Scope::CustomersWrite,
        Resource::Interactions => Scope::InteractionsWrite,
        Resource::Purchases => Scope::PurchasesWrite,
        Resource::Contacts => Scope::CustomersWrite,
    }
}

/// The permission reading an import of `resource` needs (and reading its mappings).
pub fn read_scope(resource: Resource) -> Scope {
    match resource {
        Resource::Customers => Scope::CustomersRead,
        Resource::Interactions => Scope::InteractionsRead,
        Resource::Purchases => Scope::PurchasesRead,
        Resource::Contacts => Scope::CustomersRead,
    }
}

/// A job's lease: renewed by every batch; a job whose lease ran out is taken over.
pub const LEASE: Duration = Duration::from_secs(120);
/// How often a slow upload shows the worker it is alive, by storing what it has.
pub const TOUCH: Duration = Duration::from_secs(30);
/// Failed rows listed in an import's answer (all are in the error file).
pub const LISTED_ERRORS: i64 = 100;

/// A row's text as the file holds it, shared by the row and each of its failures: a row
/// that fails on several fields holds it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(Arc<str>);

impl Raw {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Raw {
    fn default() -> Self {
        Raw(Arc::from(""))
    }
}

impl From<String> for Raw {
    fn from(text: String) -> Self {
        Raw(text.into())
    }
}

impl std::ops::Deref for Raw {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// One row of a file, read.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub raw: Raw,
    /// The row as the single-object endpoint's JSON.
    pub object: Map<String, Value>,
}

/// A row that failed, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub line: u64,
    pub field: String,
    pub message: String,
    /// Empty for a row too long to keep.
    pub raw: Raw,
}

/// What a batch did: counts, and its failed rows and matched rows until they are stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// Failed rows already stored.
    pub failed: i64,
    pub failures: Vec<Failure>,
    /// Rows skipped or merged into the customer they matched (`on_duplicate`).
    pub matches: Vec<RowMatch>,
}

impl Outcome {
    /// Adds another's counts and failed rows.
    fn merge(&mut self, other: Outcome) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failed += other.failed;
        self.failures.extend(other.failures);
        self.matches.extend(other.matches);
    }

    /// Adds another's counts (its failed rows counted, not kept: memory stays flat).
    fn add(&mut self, other: &Outcome) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
        self.failed += other.failed + rows_of(&other.failures);
    }
}

/// The rows among these failures: a row with several bad fields fails once.
fn rows_of(failures: &[Failure]) -> i64 {
    let lines: std::collections::BTreeSet<u64> = failures.iter().map(|f| f.line).collect();
    i64::try_from(lines.len()).unwrap_or(i64::MAX)
}

/// A row as the typed input of a single-object endpoint, with its errors as failures.
pub fn typed<T: DeserializeOwned>(row: &Row) -> Result<T, Vec<Failure>> {
    let bytes = serde_json::to_vec(&row.object).unwrap_or_default();
    crate::http::json::parse::<T>(&bytes).map_err(|err| failures(row, &err))
}

/// An error of a row's write as failures of that row.
pub fn failures(row: &Row, err: &ApiError) -> Vec<Failure> {
    let fail = |field: &str, message: &str| Failure {
        line: row.line,
        field: field.to_owned(),
        message: message.to_owned(),
        raw: row.raw.clone(),
    };
    if err.errors().is_empty() {
        vec![fail("row", &err.problem().detail.unwrap_or_default())]
    } else {
        err.errors()
            .iter()
            .map(|e| fail(&e.field, &e.message))
            .collect()
    }
}

/// An import as the API shows it (its answer, its `GET`, its `import.completed` event).
pub async fn view(conn: &mut AsyncPgConnection, record: ImportRecord) -> Result<Import, ApiError> {
    views(conn, vec![record])
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("an import view went missing"))
}

/// Imports as the API shows them, each with its first failed rows: two queries in all.
pub async fn views(
    conn: &mut AsyncPgConnection,
    records: Vec<ImportRecord>,
) -> Result<Vec<Import>, ApiError> {
    let ids: Vec<Uuid> = records.iter().map(|r| r.id).collect();
    let mut errors: HashMap<Uuid, Vec<RowError>> = HashMap::new();
    let mut matched: HashMap<Uuid, (Vec<RowMatch>, i64)> = HashMap::new();
    for m in store::first_matches(conn, &ids, LISTED_ERRORS).await? {
        let entry = matched.entry(m.import_id).or_default();
        entry.1 = m.total;
        entry.0.push(RowMatch {
            line: m.line,
            customer_id: m.customer_id,
            score: i64::from(m.score),
            reasons: m.reasons.iter().filter_map(|r| r.parse().ok()).collect(),
            action: m.action.parse().unwrap_or(MatchAction::Skipped),
            matched_line: m.matched_line,
        });
    }
    for (id, e) in store::first_errors(conn, &ids, LISTED_ERRORS).await? {
        errors.entry(id).or_default().push(RowError {
            line: e.line,
            field: e.field,
            message: e.message,
        });
    }
    Ok(records
        .into_iter()
        .map(|record| {
            let (matched, matched_total) = matched.remove(&record.id).unwrap_or_default();
            Import {
                on_duplicate: record.on_duplicate,
                matched,
                matched_total,
                errors_url: (record.failed > 0)
                    .then(|| format!("/v1/imports/{}/errors.{}", record.id, record.format)),
                errors: errors.remove(&record.id).unwrap_or_default(),
                errors_total: record.errors_total,
                id: record.id,
                resource: record.resource,
                mode: record.mode,
                format: record.format,
                dry_run: record.dry_run,
                all_or_nothing: record.all_or_nothing,
                background: record.background,
                state: record.state,
                bytes: record.bytes,
                received: record.received,
                created: record.created,
                updated: record.updated,
                unchanged: record.unchanged,
                failed: record.failed,
                committed: record.committed,
                mapping: record.mapping.and_then(|m| serde_json::from_value(m).ok()),
                unmapped_columns: record.unmapped_columns.unwrap_or_default(),
                error: record.error,
                created_at: record.created_at,
                updated_at: record.updated_at,
                finished_at: record.finished_at,
            }
        })
        .collect())
}

/// A customer row's columns: the exported ones, and what a move of its stage says.
static CUSTOMER_COLUMNS: std::sync::LazyLock<Vec<Column>> = std::sync::LazyLock::new(|| {
    use crate::customers::json::{COLUMNS, IMPORT_ONLY_COLUMNS};
    COLUMNS.iter().chain(IMPORT_ONLY_COLUMNS).copied().collect()
});

fn columns(resource: Resource) -> &'static [Column] {
    match resource {
        Resource::Customers => &CUSTOMER_COLUMNS,
        Resource::Interactions => crate::interactions::json::COLUMNS,
        Resource::Purchases => crate::purchases::json::COLUMNS,
        Resource::Contacts => crate::contacts::json::COLUMNS,
    }
}

/// Whether `mode` makes sense for `resource`.
pub fn supports(resource: Resource, mode: Mode) -> bool {
    match resource {
        Resource::Customers => true,
        Resource::Interactions => mode == Mode::Insert,
        Resource::Purchases => mode != Mode::UpdateOnly,
        Resource::Contacts => mode == Mode::Insert,
    }
}

/// What a row holding bytes that are not UTF-8 is told (PostgreSQL keeps text as UTF-8).
const NOT_UTF8: &str = "holds bytes that are not UTF-8: save the file as UTF-8";
/// What a row holding the NUL character is told (PostgreSQL's text cannot hold it).
const HOLDS_NUL: &str = "must not contain the NUL character";

/// Turns the file's records into rows: the header read first (CSV), columns starting with
/// `_` ignored (the error file's own), every other unknown column refused by name.
struct Reader {
    format: Format,
    columns: &'static [Column],
    /// The mapping the rows go through, if any.
    mapping: Option<mappings::Mapping>,
    /// CSV with a mapping: the mapping fitted to the header.
    plan: Option<mappings::rules::CsvPlan>,
    /// NDJSON with a mapping: the keys no rule read.
    unmapped: std::collections::BTreeSet<String>,
    /// CSV: the header, once read; what each of its columns fills.
    header: Option<Vec<Option<Column>>>,
    header_raw: Option<String>,
    /// CSV: the header's column names, to name a field in a failure.
    names: Vec<String>,
}

impl Reader {
    fn new(format: Format, resource: Resource, mapping: Option<mappings::Mapping>) -> Self {
        Reader {
            format,
            columns: columns(resource),
            mapping,
            plan: None,
            unmapped: std::collections::BTreeSet::new(),
            header: None,
            header_raw: None,
            names: Vec::new(),
        }
    }

    /// The file's columns (NDJSON: keys) the mapping left unused; `None` without a mapping.
    fn unmapped_columns(&self) -> Option<Vec<String>> {
        self.mapping.as_ref()?;
        Some(match &self.plan {
            Some(plan) => plan.unmapped().to_vec(),
            None => self.unmapped.iter().cloned().collect(),
        })
    }

    /// A record as a row, or its failures; `Err` for a file that cannot go on.
    fn row(&mut self, record: Record) -> Result<Option<Result<Row, Vec<Failure>>>, String> {
        let Record {
            line,
            raw,
            fields,
            too_long,
            not_utf8,
        } = record;
        let fail = |field: &str, message: String, raw: &Raw| Failure {
            line,
            field: field.to_owned(),
            message,
            raw: raw.clone(),
        };
        if too_long {
            if self.format == Format::Csv && self.header.is_none() {
                return Err(format!(
                    "the header row is longer than {MAX_RECORD} bytes (the most a row may hold)"
                ));
            }
            let message = format!("is longer than {MAX_RECORD} bytes (the most a row may hold)");
            return Ok(Some(Err(vec![fail("row", message, &Raw::default())])));
        }
        match self.format {
            Format::Ndjson => {
                let parsed = serde_json::from_str::<Value>(&raw);
                let raw = Raw::from(raw);
                if not_utf8.is_some() {
                    return Ok(Some(Err(vec![fail("row", NOT_UTF8.to_owned(), &raw)])));
                }
                let object = match parsed {
                    Ok(Value::Object(object)) if self.mapping.is_some() => {
                        let mapped = self
                            .mapping
                            .as_ref()
                            .map(|m| m.ndjson_row(&object, &mut self.unmapped));
                        match mapped {
                            Some(Ok(object)) => object,
                            Some(Err(problems)) => {
                                return Ok(Some(Err(problems
                                    .into_iter()
                                    .map(|(field, message)| fail(&field, message, &raw))
                                    .collect())));
                            }
                            None => object,
                        }
                    }
                    Ok(Value::Object(mut object)) => {
                        object.retain(|k, _| !k.starts_with('_'));
                        object
                    }
                    Ok(_) => {
                        let message = "must be a JSON object".to_owned();
                        return Ok(Some(Err(vec![fail("row", message, &raw)])));
                    }
                    Err(err) => {
                        let message = format!("is not valid JSON: {err}");
                        return Ok(Some(Err(vec![fail("row", message, &raw)])));
                    }
                };
                Ok(Some(Ok(Row { line, raw, object })))
            }
            Format::Csv => {
                let Some(header) = &self.header else {
                    tabular::check_width(fields.len())?;
                    let names: Vec<String> = fields
                        .iter()
                        .map(|f| f.trim().replace('\0', "\u{FFFD}"))
                        .collect();
                    if let Some(mapping) = &self.mapping {
                        let plan = mapping.plan_csv(&names).map_err(|e| e.join("; "))?;
                        self.plan = Some(plan);
                        self.header = Some(Vec::new());
                        self.names = names;
                        self.header_raw = Some(raw);
                        return Ok(None);
                    }
                    let known: Vec<String> = names
                        .iter()
                        .filter(|n| !n.starts_with('_'))
                        .cloned()
                        .collect();
                    tabular::map_header(self.columns, &known).map_err(|e| e.join("; "))?;
                    let mapped = names
                        .iter()
                        .map(|n| {
                            self.columns
                                .iter()
                                .find(|c| c.path == n && c.writable)
                                .copied()
                        })
                        .collect();
                    self.header = Some(mapped);
                    self.names = names;
                    self.header_raw = Some(raw);
                    return Ok(None);
                };
                let raw = Raw::from(raw);
                if fields.len() != self.names.len() {
                    let message = format!(
                        "has {} fields where the header has {}",
                        fields.len(),
                        self.names.len()
                    );
                    return Ok(Some(Err(vec![fail("row", message, &raw)])));
                }
                // Text PostgreSQL cannot hold fails here, naming its column.
                let unstorable = not_utf8.map(|at| (at, NOT_UTF8)).or_else(|| {
                    fields
                        .iter()
                        .position(|f| f.contains('\0'))
                        .map(|at| (at, HOLDS_NUL))
                });
                if let Some((at, message)) = unstorable {
                    let name = self.names.get(at).map_or("row", String::as_str);
                    return Ok(Some(Err(vec![fail(name, message.to_owned(), &raw)])));
                }
                let object = match &self.plan {
                    Some(plan) => plan.row(&fields),
                    None => tabular::row_object(header, &fields),
                };
                match object {
                    Ok(object) => Ok(Some(Ok(Row { line, raw, object }))),
                    Err(errors) => Ok(Some(Err(errors
                        .into_iter()
                        .map(|(field, message)| fail(&field, message, &raw))
                        .collect()))),
                }
            }
        }
    }
}

/// Writes one batch of rows of `resource`, in `conn`'s transaction.
async fn apply(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    resource: Resource,
    mode: Mode,
    on_duplicate: Option<OnDuplicate>,
    rows: Vec<Row>,
) -> Result<Outcome, ApiError> {
    // Owned-only access holds for imports too, as the sender's access stands now.
    let access = crate::users::customer_access(conn, actor).await?;
    match resource {
        Resource::Customers => set_wise(conn, actor, access, (mode, on_duplicate), rows).await,
        Resource::Interactions | Resource::Purchases => {
            one_by_one(conn, actor, access, resource, mode, rows).await
        }
        Resource::Contacts => contacts::import(conn, actor, access, rows).await,
    }
}

/// Whether a write failed because the database refused a value of the rows written (a
/// SQLSTATE class 22 or 23 error, which the central mapping answers with a `4xx`): the
/// rows' fault, to report as theirs, not the job's.
fn refused(err: &ApiError) -> bool {
    err.code().status().is_client_error()
}

/// Customers are written set-wise, a batch in a savepoint. When the database refuses the
/// batch (a value of some row it cannot store), the batch is written again row by row, each
/// row in a savepoint of its own: the rows it refuses fail alone, the others are written.
async fn set_wise(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    (mode, on_duplicate): (Mode, Option<OnDuplicate>),
    rows: Vec<Row>,
) -> Result<Outcome, ApiError> {
    let bulk = async |conn: &mut AsyncPgConnection, rows: &[Row]| {
        customers::import(conn, actor, access, (mode, on_duplicate), rows).await
    };
    let refusal = match conn.transaction(async |conn| bulk(conn, &rows).await).await {
        Err(err) if refused(&err) => err,
        done => return done,
    };
    tracing::info!(error = ?refusal, rows = rows.len(),
        "the database refused a batch of an import; its rows are written one by one");
    let mut outcome = Outcome::default();
    for row in &rows {
        let one = conn
            .transaction(async |conn| bulk(conn, std::slice::from_ref(row)).await)
            .await;
        match one {
            Ok(done) => outcome.merge(done),
            Err(err) if refused(&err) => outcome.failures.extend(failures(row, &err)),
            Err(err) => return Err(err),
        }
    }
    Ok(outcome)
}

/// Interactions and purchases are written row by row through their single-object code, so
/// that an imported purchase earns its loyalty points (tier moves included) exactly as if it
/// had been posted alone; each row in its own savepoint (the transaction their `create`
/// opens), so a row the database refuses fails alone and the batch goes on.
async fn one_by_one(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    resource: Resource,
    mode: Mode,
    rows: Vec<Row>,
) -> Result<Outcome, ApiError> {
    let mut outcome = Outcome::default();
    let customer_of = |row: &Row| match row.object.get("customer_id") {
        Some(Value::String(id)) => Uuid::parse_str(id.trim()).ok(),
        _ => None,
    };
    // With owned-only access, the customers of the batch the sender manages: one query.
    let reachable: Option<std::collections::HashSet<Uuid>> = match access.owner() {
        None => None,
        Some(owner) => {
            let ids: Vec<Uuid> = rows.iter().filter_map(customer_of).collect();
            Some(ownership::owned_among(conn, owner, &ids).await?)
        }
    };
    for mut row in rows {
        let customer = customer_of(&row);
        row.object.remove("customer_id");
        let Some(customer) = customer else {
            outcome.failures.push(Failure {
                line: row.line,
                field: "customer_id".to_owned(),
                message: "is required: the id of a live customer".to_owned(),
                raw: row.raw.clone(),
            });
            continue;
        };
        // A customer the sender does not reach fails the row as a missing one would.
        if reachable.as_ref().is_some_and(|r| !r.contains(&customer)) {
            outcome.failures.push(Failure {
                line: row.line,
                field: "customer_id".to_owned(),
                message: "must be the id of a live customer".to_owned(),
                raw: row.raw.clone(),
            });
            continue;
        }
        let result = match resource {
            Resource::Interactions => match typed(&row) {
                Ok(input) => crate::interactions::create(conn, actor, access, customer, input)
                    .await
                    .map(|_| true),
                Err(failures) => {
                    outcome.failures.extend(failures);
                    continue;
                }
            },
            _ => match typed(&row) {
                Ok(input) => crate::purchases::create(conn, actor, customer, input)
                    .await
                    .map(|(_, created)| created),
                Err(failures) => {
                    outcome.failures.extend(failures);
                    continue;
                }
            },
        };
        match result {
            Ok(true) => outcome.created += 1,
            Ok(false) if mode == Mode::Upsert => outcome.unchanged += 1,
            Ok(false) => outcome.failures.push(Failure {
                line: row.line,
                field: "external_ref".to_owned(),
                message: "is recorded already (use mode=upsert to accept re-sent purchases)"
                    .to_owned(),
                raw: row.raw.clone(),
            }),
            Err(err) if err.code() == crate::http::error::ErrorCode::NotFound => {
                outcome.failures.push(Failure {
                    line: row.line,
                    field: "customer_id".to_owned(),
                    message: "must be the id of a live customer".to_owned(),
                    raw: row.raw.clone(),
                });
            }
            Err(err) if err.code().status().is_client_error() => {
                outcome.failures.extend(failures(&row, &err));
            }
            Err(err) => return Err(err),
        }
    }
    Ok(outcome)
}

/// Why a job stopped before its end.
enum Stop {
    /// The file cannot be read on (unknown columns, a header too long): the job fails.
    Broken(String),
    Error(ApiError),
    /// The service is stopping: the job goes back to the queue as it stands.
    HandBack,
}

impl From<ApiError> for Stop {
    fn from(err: ApiError) -> Self {
        Stop::Error(err)
    }
}

impl From<diesel::result::Error> for Stop {
    fn from(err: diesel::result::Error) -> Self {
        Stop::Error(err.into())
    }
}

/// Where a job's writes go: batch by batch (each its own transaction, with the job's
/// progress), or all in the caller's one transaction, failed rows then stored at once on a
/// second connection so that they outlive a rollback.
enum Writes<'a> {
    Batches,
    Single { side: &'a mut AsyncPgConnection },
}

/// Reads the stored file from `lines_done` on and writes it batch by batch, adding each
/// batch's counts to `total`.
async fn process(
    conn: &mut AsyncPgConnection,
    job: &ImportRecord,
    limits: &ImportSettings,
    drain: Option<&Drain>,
    writes: &mut Writes<'_>,
    total: &mut Outcome,
    received: &mut i64,
) -> Result<(), Stop> {
    let mut parser = Parser::new(job.format);
    let mapping = match &job.mapping {
        Some(stored) => Some(mappings::stored(stored, job.resource).map_err(Stop::Broken)?),
        None => None,
    };
    let mut reader = Reader::new(job.format, job.resource, mapping);
    let mut pending = Pending::default();
    let mut seq = 0;
    let mut last_line = job.lines_done as u64;
    loop {
        let chunk = store::chunk(conn, job.id, seq).await?;
        seq += 1;
        let mut records = Vec::new();
        let end = chunk.is_none();
        parser.feed(chunk.as_deref().unwrap_or_default(), &mut records);
        for record in records {
            let line = record.line;
            let bytes = record.raw.len();
            let row = reader.row(record).map_err(Stop::Broken)?;
            if line <= job.lines_done as u64 {
                continue;
            }
            let Some(row) = row else { continue };
            *received += 1;
            last_line = line;
            pending.push(row, bytes);
            if pending.full(limits) {
                let (rows, failed) = pending.take();
                let batch = Batch {
                    rows,
                    failed,
                    last_line,
                    received: *received,
                };
                write_batch(conn, job, batch, writes, total).await?;
                if drain.is_some_and(Drain::started) {
                    return Err(Stop::HandBack);
                }
            }
        }
        if end {
            break;
        }
    }
    if job.format == Format::Csv && reader.header.is_none() {
        return Err(Stop::Broken(
            "the file is empty: a CSV file starts with a header row".into(),
        ));
    }
    let (rows, failed) = pending.take();
    let batch = Batch {
        rows,
        failed,
        last_line,
        received: *received,
    };
    write_batch(conn, job, batch, writes, total).await?;
    let unmapped = reader.unmapped_columns();
    if reader.header_raw.is_some() || unmapped.is_some() {
        // Kept outside a transaction that may roll back: the error file needs it.
        let keep = match writes {
            Writes::Single { side } => &mut **side,
            Writes::Batches => conn,
        };
        store::set_header(
            keep,
            job.id,
            reader.header_raw.as_deref(),
            unmapped.as_deref(),
        )
        .await?;
    }
    Ok(())
}

/// Rows read and not written yet: a batch, written once it holds `limits.batch` rows or
/// `limits.batch_bytes` bytes of their text (whichever comes first), so that the memory a
/// job holds stays flat whatever its rows hold.
#[derive(Default)]
struct Pending {
    rows: Vec<Row>,
    failed: Vec<Failure>,
    /// Rows held, good or failed.
    count: usize,
    /// The bytes of their text, each row's once however many of its fields failed.
    bytes: usize,
}

impl Pending {
    fn push(&mut self, row: Result<Row, Vec<Failure>>, bytes: usize) {
        match row {
            Ok(row) => self.rows.push(row),
            Err(failures) => self.failed.extend(failures),
        }
        self.count += 1;
        self.bytes += bytes;
    }

    fn full(&self, limits: &ImportSettings) -> bool {
        self.count >= limits.batch || self.bytes >= limits.batch_bytes
    }

    fn take(&mut self) -> (Vec<Row>, Vec<Failure>) {
        let Pending { rows, failed, .. } = std::mem::take(self);
        (rows, failed)
    }
}

/// A batch to write: its rows, the rows that failed before writing, and where it ends.
struct Batch {
    rows: Vec<Row>,
    failed: Vec<Failure>,
    last_line: u64,
    received: i64,
}

/// Writes a batch, stores its failed rows, and adds its counts to `total`; batch by batch,
/// the job's progress commits with them.
async fn write_batch(
    conn: &mut AsyncPgConnection,
    job: &ImportRecord,
    batch: Batch,
    writes: &mut Writes<'_>,
    total: &mut Outcome,
) -> Result<(), Stop> {
    let actor = job.actor();
    let Batch {
        rows,
        failed,
        last_line,
        received,
    } = batch;
    let outcome = match writes {
        Writes::Single { side } => {
            let mut outcome =
                apply(conn, &actor, job.resource, job.mode, job.on_duplicate, rows).await?;
            outcome.failures.extend(failed);
            store::record_failures(side, job.id, &outcome.failures).await?;
            store::record_matches(side, job.id, &outcome.matches).await?;
            outcome
        }
        Writes::Batches => {
            let sum = total.clone();
            conn.transaction(async |conn| {
                let mut outcome =
                    apply(conn, &actor, job.resource, job.mode, job.on_duplicate, rows).await?;
                outcome.failures.extend(failed);
                store::record_failures(conn, job.id, &outcome.failures).await?;
                store::record_matches(conn, job.id, &outcome.matches).await?;
                let mut sum = sum;
                sum.add(&outcome);
                store::progress(conn, job.id, last_line as i64, received, &sum).await?;
                Ok::<_, ApiError>(outcome)
            })
            .await?
        }
    };
    total.add(&outcome);
    Ok(())
}

/// Runs a queued job, or takes over one whose runner stopped (its lease ran out); nothing
/// when another runner holds it. The job as it ended. A job that stops for a reason not
/// tied to one row (the database failing it, a runner dying on it) is run again by the
/// worker, `limits.max_attempts` times in all, then given up.
/// Runs an import until it ends. A background run (`drain` given) stops after the batch it
/// is writing when the service starts stopping, and hands the job back (`None`): its
/// committed batches stay, the attempt does not count, and any instance resumes it at once.
pub async fn run(
    pool: &DbPool,
    id: Uuid,
    limits: &ImportSettings,
    drain: Option<&Drain>,
) -> Result<Option<ImportRecord>, ApiError> {
    let mut conn = pool.get().await?;
    let Some(job) = store::claim(&mut conn, id).await? else {
        return Ok(None);
    };
    if job.attempts > limits.max_attempts {
        // Its last runner stopped on it without ending it, or could not even say why.
        let why = job.last_error.clone().unwrap_or_else(|| {
            "its last run ended without a word (the service may have stopped mid-way)".into()
        });
        tracing::warn!(import = %job.id, attempts = job.attempts, "an import is given up");
        return give_up(&mut conn, &job, job.attempts - 1, &why)
            .await
            .map(Some);
    }
    let single = job.dry_run || job.all_or_nothing;
    let mut total = Outcome {
        created: job.created,
        updated: job.updated,
        unchanged: job.unchanged,
        failed: job.failed,
        failures: Vec::new(),
        matches: Vec::new(),
    };
    let mut received = job.received;
    let result = if single {
        // Nothing is kept unless every row is good (and it is no dry run): one transaction,
        // rolled back by returning an error once the counts are known.
        let mut side = pool.get().await?;
        let mut writes = Writes::Single { side: &mut side };
        let outcome = conn
            .transaction(async |conn| {
                let done = process(
                    conn,
                    &job,
                    limits,
                    drain,
                    &mut writes,
                    &mut total,
                    &mut received,
                )
                .await;
                match done {
                    Ok(()) if !job.dry_run && total.failed == 0 => Ok(()),
                    Ok(()) => Err(Rollback::Counted),
                    Err(stop) => Err(Rollback::Stopped(stop)),
                }
            })
            .await;
        match outcome {
            Ok(()) => Ok(true),
            Err(Rollback::Counted) => Ok(false),
            Err(Rollback::Stopped(stop)) => Err(stop),
        }
    } else {
        process(
            &mut conn,
            &job,
            limits,
            drain,
            &mut Writes::Batches,
            &mut total,
            &mut received,
        )
        .await
        .map(|()| true)
    };
    let (committed, error) = match result {
        Ok(committed) => (committed, None),
        Err(Stop::HandBack) => {
            store::hand_back(&mut conn, job.id).await?;
            tracing::info!(import = %job.id, "stopping: an import is handed back");
            return Ok(None);
        }
        Err(Stop::Broken(why)) => (false, Some(why)),
        Err(Stop::Error(err)) => {
            let why = client_safe(&err);
            if job.attempts < limits.max_attempts {
                tracing::warn!(import = %job.id, attempt = job.attempts, error = ?err,
                    "an import stopped; it will be resumed");
                if let Err(kept) = store::stopped(&mut conn, job.id, &why).await {
                    tracing::warn!(import = %job.id, error = %kept, "why an import stopped is lost");
                }
                return Err(err);
            }
            tracing::warn!(import = %job.id, attempt = job.attempts, error = ?err,
                "an import stopped on its last attempt; it is given up");
            // The counts its committed batches left, not those of a batch rolled back.
            let stored = store::get(&mut conn, job.id)
                .await?
                .ok_or_else(|| ApiError::not_found("import"))?;
            return give_up(&mut conn, &stored, job.attempts, &why)
                .await
                .map(Some);
        }
    };
    let ended = conclude(
        &mut conn,
        &job,
        &total,
        received,
        committed,
        error.as_deref(),
    )
    .await?;
    Ok(Some(ended))
}

/// What a client may read of why a run stopped: the problem's detail, never its cause.
fn client_safe(err: &ApiError) -> String {
    let problem = err.problem();
    problem.detail.unwrap_or_else(|| {
        format!(
            "{} (the cause is in the service's log)",
            problem.title.to_lowercase()
        )
    })
}

/// Ends a job that stopped `runs` times for a reason not tied to one row: failed, with the
/// counts its committed batches left.
async fn give_up(
    conn: &mut AsyncPgConnection,
    job: &ImportRecord,
    runs: i32,
    why: &str,
) -> Result<ImportRecord, ApiError> {
    let total = Outcome {
        created: job.created,
        updated: job.updated,
        unchanged: job.unchanged,
        failed: job.failed,
        failures: Vec::new(),
        matches: Vec::new(),
    };
    let plural = if runs == 1 { "" } else { "s" };
    let error = format!("gave up after {runs} attempt{plural}: {why}");
    conclude(conn, job, &total, job.received, false, Some(&error)).await
}

/// Ends a job: its state and counts, its audit and its event, committed together.
async fn conclude(
    conn: &mut AsyncPgConnection,
    job: &ImportRecord,
    total: &Outcome,
    received: i64,
    committed: bool,
    error: Option<&str>,
) -> Result<ImportRecord, ApiError> {
    // A job run batch by batch kept its batches' writes even when it stopped short:
    // integrations hear of its end then too; one run in a single transaction that rolled
    // back kept nothing to tell.
    let single = job.dry_run || job.all_or_nothing;
    let announce = committed || !single;
    let ended = conn
        .transaction(async |conn| {
            let ended = store::finish(conn, job, total, received, committed, error).await?;
            // A run that kept writes is written down: audited (by whom, with its
            // figures) and announced.
            if announce {
                let shown = view(conn, ended.clone()).await?;
                let event = NewEvent::new(EventType::ImportCompleted, job.id, &shown);
                let figures = serde_json::json!({"resource": job.resource, "mode": job.mode,
                    "received": ended.received, "created": ended.created,
                    "updated": ended.updated, "unchanged": ended.unchanged,
                    "failed": ended.failed});
                journal::record(conn, &job.actor(), Change::announced(event, figures)).await?;
            }
            Ok::<_, ApiError>(ended)
        })
        .await?;
    // What a large import wrote is described to the planner before the next list is planned.
    let written = if committed && !job.dry_run {
        total.created + total.updated
    } else {
        0
    };
    if written > 0 {
        crate::db::analyze_outgrown(conn, written_tables(job.resource), written).await?;
    }
    Ok(ended)
}

/// The tables an import of `resource` writes, its main table first.
fn written_tables(resource: Resource) -> &'static [&'static str] {
    match resource {
        Resource::Customers => &[
            "customers",
            "customer_lifecycle_events",
            "customer_search_words",
            "search_vocabulary",
        ],
        Resource::Interactions => &["interactions"],
        Resource::Contacts => &["contacts"],
        Resource::Purchases => &[
            "purchases",
            "loyalty_ledger",
            "loyalty_lots",
            "loyalty_accounts",
        ],
    }
}

/// How a one-transaction job ends without keeping its writes.
enum Rollback {
    Counted,
    Stopped(Stop),
}

impl From<diesel::result::Error> for Rollback {
    fn from(err: diesel::result::Error) -> Self {
        Rollback::Stopped(Stop::Error(err.into()))
    }
}

/// How long an upload may store nothing before the worker takes it for stopped: it stores
/// what it has at least every `TOUCH` while bytes arrive, and is cut off after the
/// idle timeout when none do; twice the longer of the two leaves a wide margin.
fn stopped_after(limits: &ImportSettings) -> Duration {
    limits.idle_timeout.max(TOUCH) * 2
}

/// The worker: runs queued imports and resumes those whose runner stopped, on every
/// instance at once (a job is claimed by one).
/// The worker: runs queued imports until the service stops, then ends (a run under way
/// first hands its job back).
pub async fn schedule(state: actix_web::web::Data<crate::state::AppState>) {
    loop {
        if state.draining.sleep(state.settings.imports.interval).await {
            return;
        }
        let pending = match state.jobs.get().await {
            Ok(mut conn) => {
                let quiet = stopped_after(&state.settings.imports);
                match store::abandon_stopped_uploads(&mut conn, quiet).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(uploads = n, "failed uploads that stopped arriving"),
                    Err(err) => tracing::warn!(error = ?err, "could not look for stopped uploads"),
                }
                store::pending(&mut conn, TOUCH).await
            }
            Err(err) => {
                tracing::warn!(error = %err, "the import worker found no connection");
                continue;
            }
        };
        match pending {
            Ok(ids) => {
                for id in ids {
                    if state.draining.started() {
                        return;
                    }
                    let ran = run(
                        &state.jobs,
                        id,
                        &state.settings.imports,
                        Some(&state.draining),
                    );
                    if let Err(err) = ran.await {
                        tracing::warn!(import = %id, error = ?err, "an import failed to run");
                    }
                }
            }
            Err(err) => tracing::warn!(error = ?err, "the import worker could not look for work"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(batch: usize, batch_bytes: usize) -> ImportSettings {
        ImportSettings {
            interval: Duration::from_secs(1),
            batch,
            batch_bytes,
            max_bytes: 1 << 30,
            max_ratio: 100,
            idle_timeout: Duration::from_secs(30),
            uploads_per_caller: 4,
            dedup_window: Duration::from_secs(0),
            max_attempts: 5,
        }
    }

    fn row(line: u64, bytes: usize) -> Row {
        Row {
            line,
            raw: Raw::from("x".repeat(bytes)),
            object: Map::new(),
        }
    }

    fn failed(line: u64, bytes: usize, fields: usize) -> Vec<Failure> {
        let raw = Raw::from("x".repeat(bytes));
        (0..fields)
            .map(|i| Failure {
                line,
                field: format!("f{i}"),
                message: "is wrong".to_owned(),
                raw: raw.clone(),
            })
            .collect()
    }

    #[test]
    fn a_batch_is_full_at_its_byte_budget_or_its_row_count() {
        let by_bytes = limits(5000, 64 * 1024);
        let mut pending = Pending::default();
        pending.push(Ok(row(2, 100)), 100);
        pending.push(Ok(row(3, 100)), 100);
        assert!(!pending.full(&by_bytes));
        pending.push(Ok(row(4, 64 * 1024 - 201)), 64 * 1024 - 201);
        assert!(!pending.full(&by_bytes), "one byte short");
        pending.push(Ok(row(5, 1)), 1);
        assert!(pending.full(&by_bytes));
        let (rows, failed_rows) = pending.take();
        assert_eq!((rows.len(), failed_rows.len()), (4, 0));
        assert_eq!(
            (pending.count, pending.bytes),
            (0, 0),
            "taken, it starts over"
        );

        // A row failing on three fields holds its text once, and counts once.
        let failures = failed(6, 40_000, 3);
        assert!(Arc::ptr_eq(&failures[0].raw.0, &failures[2].raw.0));
        pending.push(Err(failures), 40_000);
        assert!(!pending.full(&by_bytes));
        pending.push(Err(failed(7, 40_000, 1)), 40_000);
        assert!(pending.full(&by_bytes));
        assert_eq!(pending.count, 2);

        let by_rows = limits(3, 1 << 30);
        let mut pending = Pending::default();
        for line in 2..5 {
            assert!(!pending.full(&by_rows));
            pending.push(Ok(row(line, 10)), 10);
        }
        assert!(pending.full(&by_rows));
    }
}
