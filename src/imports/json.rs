//! Imports as the API shows and accepts them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::mappings::json::{AppliedMapping, MappingSpec, PresetKey};
use super::parse::Format;
use crate::customers::json::{DuplicateReason, OnDuplicate};

pub use super::resource::Resource;

crate::text_enum! {
    /// How rows meet what exists: `insert` (every row is new), `upsert` (a row matching a
    /// record by its natural key updates it, others are created) or `update_only` (rows
    /// matching nothing fail). Customers match by `external_id`, else `email`; purchases by
    /// `external_ref` (an unchanged purchase counts as `unchanged`; purchases are never
    /// updated). Interactions have no natural key: `insert` only; contacts too (a link that
    /// exists fails its row: change it with `PATCH`).
    pub enum Mode {
        Insert = "insert",
        Upsert = "upsert",
        UpdateOnly = "update_only",
    }
}

crate::text_enum! {
    /// Where an import stands: `receiving` (the upload is arriving), `queued`, `running`,
    /// `succeeded` or `failed` (see `error`).
    pub enum ImportState {
        Receiving = "receiving",
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

crate::text_enum! {
    /// What became of a customer row that matched a live customer by the duplicate rules
    /// (`on_duplicate`): `skipped` (nothing written) or `merged` into it.
    pub enum MatchAction {
        Skipped = "skipped",
        Merged = "merged",
    }
}

/// A customer row that matched a live customer, or an earlier new row of the same batch, by
/// the duplicate rules and was skipped or merged into it (with `on_duplicate=fail` the row
/// fails instead, naming the customer or the line).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RowMatch {
    /// The line of the file the row starts on.
    #[schema(example = 7)]
    pub line: i64,
    /// The customer it matched (the best match: highest score, then oldest), or the one the
    /// earlier row it matched creates (or was itself matched to).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")]
    pub customer_id: Uuid,
    /// The pair's score, as `GET /v1/customers/duplicates` gives it.
    #[schema(example = 90)]
    pub score: i64,
    /// Why they match.
    pub reasons: Vec<DuplicateReason>,
    pub action: MatchAction,
    /// The earlier row of the same batch the row matched (its line), when it matched a new
    /// row rather than a stored customer; the score and reasons are then those of the two
    /// rows. Absent otherwise: a row of a later batch finds the customer an earlier batch
    /// wrote as a stored one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = 3)]
    pub matched_line: Option<i64>,
}

/// How to import.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// `insert` (default), `upsert` or `update_only`. Customers take all three, purchases
    /// `insert` and `upsert`, interactions `insert` only; another is refused with `400`.
    #[param(inline)]
    pub mode: Option<Mode>,
    /// Check every row, report, and write nothing.
    #[param(example = false)]
    pub dry_run: Option<bool>,
    /// Write nothing if any row fails (by default valid rows are written and failed rows
    /// reported).
    #[param(example = false)]
    pub all_or_nothing: Option<bool>,
    /// Answer `202` at once with the import job, and run it in the background (for large
    /// files; follow it with `GET /v1/imports/{id}`).
    #[serde(rename = "async")]
    #[param(rename = "async", example = false)]
    pub background: Option<bool>,
    /// A mapping for a file whose columns are another system's: JSON, URL-encoded (see
    /// `MappingSpec`). At most one of `mapping`, `mapping_id` and `preset`.
    #[param(example = "{\"fields\":{\"name\":{\"from\":[\"First Name\",\"Last Name\"]}}}")]
    pub mapping: Option<String>,
    /// The id of a saved mapping (its current version is used, and named in the answer).
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")]
    pub mapping_id: Option<Uuid>,
    /// A preset for another CRM's export.
    #[param(inline)]
    pub preset: Option<PresetKey>,
    /// Customers only: check each row that would create a customer against the live
    /// customers by the duplicate rules (as `GET /v1/customers/duplicates`), and against the
    /// earlier new rows of the same import by the same rules, and on a match `fail` the row
    /// (its error names the customer, or the earlier line and the customer it creates),
    /// `skip` it, or `merge` it into the customer (filling its empty fields, adding tags and
    /// attributes; a row matching an earlier new row is folded into the customer that row
    /// creates). Skipped and merged rows are listed in `matched`. Rows matched by their
    /// natural key in `upsert` mode are updates, not duplicates.
    #[param(inline)]
    pub on_duplicate: Option<OnDuplicate>,
}

/// An upload sent as a form (`multipart/form-data`, as `curl -F` sends it): the mapping
/// part first, if any, then the file, read as it arrives. No other part is taken.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // The document's description of a form; the form is read as a stream.
pub struct ImportForm {
    /// A mapping (`MappingSpec`, JSON) instead of `mapping`, `mapping_id` or `preset` in the
    /// query. It must come before the file.
    pub mapping: Option<MappingSpec>,
    /// The file: CSV or NDJSON, told by the part's type (`text/csv`, `application/x-ndjson`;
    /// `application/gzip` when compressed) or, when it has none or
    /// `application/octet-stream`, by its name (`.csv`, `.ndjson`, `.jsonl`, then `.gz` when
    /// compressed).
    #[schema(
        value_type = String,
        content_media_type = "application/octet-stream",
        example = "external_id,name,email\ncrm-1,Ada Lovelace,ada@example.com\n"
    )]
    pub file: Vec<u8>,
}

/// How to preview an import.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// Rows to preview, 1 to 100 (10 by default): only they are read of the file.
    #[param(minimum = 1, maximum = 100, example = 10)]
    pub limit: Option<u32>,
    /// `insert` (default), `upsert` or `update_only`, as the import would run.
    #[param(inline)]
    pub mode: Option<Mode>,
    /// A mapping, JSON, URL-encoded. At most one of `mapping`, `mapping_id` and `preset`.
    #[param(example = "{\"fields\":{\"name\":{\"from\":[\"First Name\",\"Last Name\"]}}}")]
    pub mapping: Option<String>,
    /// The id of a saved mapping.
    #[param(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")]
    pub mapping_id: Option<Uuid>,
    /// A preset for another CRM's export.
    #[param(inline)]
    pub preset: Option<PresetKey>,
}

/// A problem of a previewed row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldProblem {
    /// The field at fault (as the resource names it), or `row`.
    #[schema(example = "lifecycle_stage")]
    pub field: String,
    /// What is wrong.
    #[schema(example = "unknown value `Other`")]
    pub message: String,
}

/// One row of a preview: what the import would write, and why it would fail.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PreviewRow {
    /// The line of the file the row starts on.
    #[schema(example = 2)]
    pub line: i64,
    #[schema(value_type = Option<Object>, schema_with = preview_object_schema)]
    pub object: Option<serde_json::Map<String, serde_json::Value>>,
    /// Its problems; empty when the import would write it.
    pub errors: Vec<FieldProblem>,
}

fn preview_object_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::free_object(
        "The object the row becomes, as the single-object endpoint takes it (`null` when the \
         row cannot be read).",
        serde_json::json!({"name": "Ada Lovelace", "lifecycle_stage": "prospect"}),
        true,
    )
}

/// The first rows of a file, mapped and checked, with nothing written.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preview {
    /// What the file would be imported into.
    pub resource: Resource,
    /// How the file is written.
    pub format: Format,
    /// The mapping used, if any.
    pub mapping: Option<AppliedMapping>,
    /// CSV: the file's header.
    #[schema(example = json!(["First Name", "Last Name", "Email"]))]
    pub columns: Vec<String>,
    /// The file's columns (NDJSON: keys of the rows read) that no rule reads and that are
    /// not ignored: left out of the import.
    #[schema(example = json!(["Fax"]))]
    pub unmapped_columns: Vec<String>,
    /// The rows previewed, in file order.
    pub rows: Vec<PreviewRow>,
    /// Rows among them that would be written.
    #[schema(example = 9)]
    pub valid: i64,
    /// Rows among them that would fail.
    #[schema(example = 1)]
    pub invalid: i64,
}

/// A failed row.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RowError {
    /// The line of the file the row starts on (the header is line 1).
    #[schema(example = 42)]
    pub line: i64,
    /// The field (column) at fault, or `row`.
    #[schema(example = "email")]
    pub field: String,
    /// What is wrong.
    #[schema(example = "is not a valid email address")]
    pub message: String,
}

/// An import: the job, its counts and its failed rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Import {
    /// Import id (UUIDv7).
    #[schema(example = "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")]
    pub id: Uuid,
    /// What it writes.
    pub resource: Resource,
    /// How rows meet what exists.
    pub mode: Mode,
    /// How the file is written.
    pub format: Format,
    /// Whether it only checks.
    #[schema(example = false)]
    pub dry_run: bool,
    /// Whether one failed row keeps every row from being written.
    #[schema(example = false)]
    pub all_or_nothing: bool,
    /// Whether it runs in the background.
    #[serde(rename = "async")]
    #[schema(example = false)]
    pub background: bool,
    /// Where it stands.
    pub state: ImportState,
    /// Bytes received (after decompression).
    #[schema(example = 1048576)]
    pub bytes: i64,
    /// Rows read so far (the header not counted).
    #[schema(example = 10000)]
    pub received: i64,
    /// Rows that created a record.
    #[schema(example = 9000)]
    pub created: i64,
    /// Rows that changed a record.
    #[schema(example = 900)]
    pub updated: i64,
    /// Rows that matched a record and changed nothing.
    #[schema(example = 98)]
    pub unchanged: i64,
    /// Rows that failed (listed in `errors`, and downloadable to fix and re-send).
    #[schema(example = 2)]
    pub failed: i64,
    /// Whether its writes are kept: false for a dry run, and for an all-or-nothing import
    /// with failed rows (`created`, `updated` then say what would have been written).
    #[schema(example = true)]
    pub committed: bool,
    /// The mapping it ran with: its source (a preset, a saved mapping's id and version) and
    /// a copy of its rules.
    pub mapping: Option<AppliedMapping>,
    /// Columns of the file (NDJSON: keys) the mapping left unused: named, not imported.
    #[schema(example = json!(["Fax"]))]
    pub unmapped_columns: Vec<String>,
    /// Why it failed as a whole (a file it cannot read, unknown columns).
    #[schema(example = json!(null))]
    pub error: Option<String>,
    /// What a customer row matching a live customer or an earlier new row did
    /// (`on_duplicate`), if asked.
    pub on_duplicate: Option<OnDuplicate>,
    /// The first 100 rows, by line, that were skipped or merged into the customer they
    /// matched (`on_duplicate`), a stored one or one an earlier row of the import creates;
    /// skipped rows count as `unchanged`, merged ones as `updated` (or `unchanged` when they
    /// added nothing).
    pub matched: Vec<RowMatch>,
    /// How many rows were skipped or merged in all.
    #[schema(example = 1)]
    pub matched_total: i64,
    /// The first 100 problems of the failed rows, by line (a row with two bad fields has
    /// two; the error file has them all).
    pub errors: Vec<RowError>,
    /// How many problems the failed rows have in all, of which `errors` lists the first 100
    /// (`failed` counts the rows).
    #[schema(example = 3)]
    pub errors_total: i64,
    /// Where the failed rows can be downloaded, in the file's own format with `_line` and
    /// `_error` first (columns starting with `_` are ignored on import): fix them and send
    /// that file again.
    #[schema(example = "/v1/imports/0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0/errors.csv")]
    pub errors_url: Option<String>,
    /// When it was started.
    #[schema(example = "2026-11-23T10:00:00Z")]
    pub created_at: DateTime<Utc>,
    /// When it last moved.
    #[schema(example = "2026-11-23T10:00:09Z")]
    pub updated_at: DateTime<Utc>,
    /// When it ended.
    #[schema(example = "2026-11-23T10:00:09Z")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Filters of the import list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImportsQuery {
    /// Only imports in this state.
    #[param(inline)]
    pub state: Option<ImportState>,
    /// Page size, 1 to 200.
    #[param(minimum = 1, maximum = 200, example = 50)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A failed row of an NDJSON import, as its error file gives it: the object as it was sent
/// (the ID number masked without `pii:read`), with `_line`, `_error` and, for a line that
/// is not a JSON object, `_raw` added. Keys starting with `_` are ignored on import.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailedRow {
    /// The line of the file, from 1.
    #[serde(rename = "_line")]
    #[schema(example = 2, minimum = 1)]
    pub line: i64,
    /// What is wrong with it.
    #[serde(rename = "_error")]
    #[schema(example = "email: is not an email address")]
    pub error: String,
    /// The line as sent, when it is not a JSON object (left out without `pii:read`).
    #[serde(rename = "_raw", skip_serializing_if = "Option::is_none")]
    #[schema(example = "{\"name\": \"Ada\"")]
    pub raw: Option<String>,
    /// The row's own fields, as sent.
    #[serde(flatten)]
    #[schema(example = json!({"name": "Ada Lovelace", "email": "ada@example"}))]
    pub fields: serde_json::Map<String, serde_json::Value>,
}
