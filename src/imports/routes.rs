use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use std::time::Instant;

use sha2::{Digest, Sha256};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    FailedRow, Import, ImportForm, ImportQuery, ImportState, ImportsQuery, Mode, Preview,
    PreviewQuery, Resource,
};
use super::mappings::{self, Choice};
use super::parse::Format;
use super::store::{self, ImportRecord, NewImport};
use super::upload::File;
use super::{read_scope, write_scope};
use crate::auth::{Principal, Role, Scope};
use crate::http::body;
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, ErrorCode, FieldError, Problem};
use crate::http::idempotency::{IDEMPOTENCY_KEY, parse_key};
use crate::http::pagination::{self, Page};
use crate::http::query::{self, invalid};
use crate::http::response::{self, CutShort};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(start_import)
        .service(preview_import)
        .service(list_imports)
        .service(get_import)
        .service(errors_csv)
        .service(errors_ndjson);
}

/// The stored file's chunk size.
const CHUNK: usize = 1 << 20;

fn location(id: Uuid) -> String {
    format!("/v1/imports/{id}")
}

/// The upload's file, opened under the import limits: the body, or a form's `file` part.
async fn open(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<File, ApiError> {
    let limits = &state.settings.imports;
    let limits = body::Limits {
        max_bytes: limits.max_bytes,
        max_ratio: limits.max_ratio,
        idle: limits.idle_timeout,
    };
    let mapping_max = crate::http::json::body_limit(req);
    File::open(req.headers(), payload.into_inner(), limits, mapping_max).await
}

/// The mapping named: in the query (`mapping`, `mapping_id`, `preset`) or a form's part.
fn choice<'a>(
    query: Option<&'a str>,
    part: Option<&'a str>,
    saved: Option<Uuid>,
    preset: Option<mappings::json::PresetKey>,
) -> Result<Choice<'a>, ApiError> {
    if part.is_some() {
        let second = [
            ("mapping", query.is_some()),
            ("mapping_id", saved.is_some()),
            ("preset", preset.is_some()),
        ];
        if let Some((name, _)) = second.iter().find(|(_, named)| *named) {
            return Err(invalid(
                name,
                "names a second mapping: the form has a `mapping` part (name one mapping)",
            ));
        }
    }
    Ok(Choice {
        inline: query.or(part),
        saved,
        preset,
    })
}

/// The mapping an upload names, checked; a form's `mapping` part that is not a JSON
/// mapping is a malformed body, not a bad query.
async fn resolve(
    state: &AppState,
    resource: Resource,
    choice: Choice<'_>,
    from_part: bool,
) -> Result<Option<(mappings::json::AppliedMapping, mappings::Mapping)>, ApiError> {
    let resolved = mappings::resolve(&mut *state.pool.get().await?, resource, choice).await;
    resolved.map_err(|err| {
        if !from_part || err.code() != ErrorCode::InvalidQuery {
            return err;
        }
        let message = err
            .errors()
            .first()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the form's `mapping` part {message}"),
        )
        .with_errors(vec![FieldError::new("mapping", message)])
    })
}

/// Import a file of customers, interactions or purchases.
///
/// The request body is the file: `text/csv` (a header row naming the JSON fields, nested
/// fields with dots such as `address.city`, lists such as `tags` joined by `;`, JSON text for
/// `attributes` and `items`, an empty cell for null; the columns of an export) or
/// `application/x-ndjson` (one JSON object per line, as the single-object endpoint takes
/// it). Interaction and purchase rows name their `customer_id`. `Content-Encoding: gzip` is
/// welcome. For example:
///
/// `curl --data-binary @customers.csv -H 'Content-Type: text/csv' -H "Authorization: Bearer
/// $TOKEN" 'https://…/v1/imports/customers?mode=upsert'`
///
/// The file may also come as a form (`multipart/form-data`): a `file` part (its type, or
/// its name's `.csv`, `.ndjson` or `.jsonl`, `.gz` after it when compressed, tells its
/// format), after an optional `mapping` part (the mapping's JSON) — `curl -F
/// 'mapping=<mapping.json' -F 'file=@export.csv' …`. The file part is read as it arrives,
/// under the same limits; a form without it, with two, with another part or with the mapping
/// after the file is refused (`422`), and the upload with it.
///
/// Limits (each a setting): a file of at most 2 GiB as sent and once inflated, inflating at
/// most 100 times its compressed size (`413`); a row of at most 1 MiB (a longer one fails
/// alone); an upload that sends nothing for 30 s is cut off (`408`); each caller may have 4
/// uploads in flight (`429`).
///
/// Every row is checked by the rules of the single-object endpoint. The answer counts the
/// rows received, created, updated, unchanged and failed, lists the first failed rows with
/// line, field and message, and links the error file: the failed rows in the file's own
/// format, to fix and send again. Rows are written in batches (set-wise for customers; one
/// by one for interactions and purchases, so that each purchase earns its loyalty points as
/// if posted alone), each batch with the job's progress: a job the service drops mid-way is
/// resumed after its last batch, never half-applied. The same file with the same options,
/// sent again by the same caller within `RAPPORT_IMPORT_DEDUP_WINDOW` (24 hours by default)
/// of the first, answers with that import (`Idempotent-Replayed: true`), as does the same
/// `Idempotency-Key`; from another caller, or later, the file is imported afresh. Unknown
/// columns fail the import before any row is written, naming them. Columns starting with
/// `_` are ignored.
#[utoipa::path(
    tag = "Imports",
    params(("resource" = Resource, Path, description = "What the file holds"), ImportQuery),
    request_body(content(
        (String = "text/csv", example = "external_id,name,email,tags\ncrm-1,Ada Lovelace,ada@example.com,vip;newsletter\n"),
        (String = "application/x-ndjson", example = "{\"external_id\": \"crm-1\", \"name\": \"Ada Lovelace\"}\n"),
        (ImportForm = "multipart/form-data"),
    ), description = "The file, as the body or as the `file` part of a form (with an optional \
        `mapping` part before it)"),
    security(("bearer" = ["customers:write", "interactions:write", "purchases:write"])),
    responses(
        (status = 201, description = "The import, done (`committed` says whether its writes \
            were kept)", body = Import,
            headers(("Location" = String, description = "URL of the import"))),
        (status = 200, description = "This file (from this caller, within the dedup window), \
            or this `Idempotency-Key`, was imported already: that import", body = Import,
            headers(("Location" = String, description = "URL of the import"),
                    ("Idempotent-Replayed" = bool, description = "`true`: an earlier \
                        import's answer, nothing was imported again"))),
        (status = 202, description = "With `async=true`: the import, queued", body = Import,
            headers(("Location" = String, description = "URL to follow it at"))),
        (status = 400, description = "A bad query (two mappings named, a mapping that is \
            not JSON), a form that cannot be read, or a `mapping` part that is not JSON",
            body = Problem, content_type = PROBLEM),
        (status = 408, description = "The upload sent nothing for \
            `RAPPORT_UPLOAD_IDLE_TIMEOUT` (30 s): it is cut off and nothing is kept",
            body = Problem, content_type = PROBLEM),
        (status = 413, description = "The file is over `RAPPORT_IMPORT_MAX_BYTES` (2 GiB) as \
            sent or once inflated, or inflates more than `RAPPORT_IMPORT_MAX_RATIO` (100) times",
            body = Problem, content_type = PROBLEM),
        (status = 415, description = "Neither CSV nor NDJSON (nor a form whose `file` part \
            is one)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "The file cannot be read (unknown columns, no header, a \
            broken record), or a form without its `file` part, with two, with a part an \
            import does not take, or with the `mapping` part after the file",
            body = Problem, content_type = PROBLEM),
        (status = 429, description = "The caller has `RAPPORT_IMPORT_UPLOADS_PER_CALLER` (4) \
            uploads in flight already", body = Problem, content_type = PROBLEM,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
#[post("/imports/{resource}")]
async fn start_import(
    state: web::Data<AppState>,
    principal: Principal,
    resource: web::Path<Resource>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let resource = resource.into_inner();
    principal.require(write_scope(resource))?;
    let options: ImportQuery = query::parse(req.query_string())?;
    let mode = options.mode.unwrap_or(Mode::Insert);
    if !super::supports(resource, mode) {
        return Err(invalid(
            "mode",
            format!("`{mode}` does not apply to {resource}"),
        ));
    }
    if options.on_duplicate.is_some() && resource != Resource::Customers {
        return Err(invalid(
            "on_duplicate",
            format!("applies to customers, not to {resource}"),
        ));
    }
    let key = req
        .headers()
        .get(&IDEMPOTENCY_KEY)
        .map(parse_key)
        .transpose()?;
    // A place among the caller's uploads, held until this request ends however it ends.
    let _slot = state.uploads.enter(&principal.actor.key())?;
    // A form is read up to its file part: the mapping may be a part before it.
    let mut file = open(&state, &req, payload).await?;
    let choice = choice(
        options.mapping.as_deref(),
        file.mapping.as_deref(),
        options.mapping_id,
        options.preset,
    )?;
    let mapping = resolve(&state, resource, choice, file.mapping.is_some())
        .await?
        .map(|(applied, _)| serde_json::to_value(applied))
        .transpose()
        .map_err(ApiError::internal)?;
    let new = NewImport {
        resource,
        mode,
        format: file.format,
        dry_run: options.dry_run.unwrap_or(false),
        all_or_nothing: options.all_or_nothing.unwrap_or(false),
        background: options.background.unwrap_or(false),
        idempotency_key: key.as_deref(),
        mapping,
        on_duplicate: options.on_duplicate,
    };
    let created = store::create(&mut *state.pool.get().await?, &principal.actor, &new).await?;
    let Some(job) = created else {
        let mut conn = state.pool.get().await?;
        let first = store::by_key(
            &mut conn,
            &principal.actor,
            key.as_deref().unwrap_or_default(),
        )
        .await?
        .ok_or_else(|| ApiError::internal("idempotent import vanished"))?;
        return replay(&mut conn, first).await;
    };
    // The file goes to the database as it arrives, in chunks: memory stays flat. No
    // connection is held while the client sends: one is taken for each chunk, and the job is
    // touched at least every `TOUCH` so that the worker knows the upload is alive.
    let mut hash = Sha256::new();
    let mut buffer = Vec::with_capacity(CHUNK);
    let mut seq = 0;
    let mut touched = Instant::now();
    let refused = async |err: ApiError| -> ApiError {
        let why = format!(
            "the upload was refused: {}",
            err.problem().detail.unwrap_or_default()
        );
        match state.pool.get().await {
            Ok(mut conn) => match store::abandon(&mut conn, job.id, &why).await {
                Ok(_) => err,
                Err(kept) => kept.into(),
            },
            Err(kept) => kept.into(),
        }
    };
    loop {
        let piece = match file.body.next().await {
            None => break,
            Some(Ok(piece)) => piece,
            Some(Err(err)) => return Err(refused(err).await),
        };
        hash.update(&piece);
        buffer.extend_from_slice(&piece);
        if buffer.len() >= CHUNK || touched.elapsed() >= super::TOUCH {
            store::add_chunk(&mut *state.pool.get().await?, job.id, seq, &buffer).await?;
            seq += 1;
            buffer.clear();
            touched = Instant::now();
        }
    }
    // A form ends with its file: a part after it is refused, and the upload with it.
    let inflated = match file.finish().await {
        Ok(inflated) => inflated,
        Err(err) => return Err(refused(err).await),
    };
    let mut conn = state.pool.get().await?;
    if !buffer.is_empty() {
        store::add_chunk(&mut conn, job.id, seq, &buffer).await?;
    }
    let bytes = i64::try_from(inflated).unwrap_or(i64::MAX);
    let hash = hash.finalize().to_vec();
    let job = store::received(&mut conn, job.id, &hash, bytes).await?;
    if !job.dry_run
        && let Some(first) =
            store::same_file(&mut conn, &job, &hash, state.settings.imports.dedup_window).await?
    {
        store::delete(&mut conn, job.id).await?;
        return replay(&mut conn, first).await;
    }
    if job.background {
        let import = super::view(&mut conn, job).await?;
        return Ok(HttpResponse::Accepted()
            .insert_header((header::LOCATION, location(import.id)))
            .json(import));
    }
    drop(conn);
    let ended = super::run(&state.pool, job.id, &state.settings.imports, None)
        .await?
        .ok_or_else(|| ApiError::conflict("another runner took this import"))?;
    let mut conn = state.pool.get().await?;
    if ended.state == ImportState::Failed {
        let why = ended.error.clone().unwrap_or_default();
        return Err(ApiError::validation(vec![FieldError::new("body", why)]));
    }
    let import = super::view(&mut conn, ended).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location(import.id)))
        .json(import))
}

async fn replay(
    conn: &mut diesel_async::AsyncPgConnection,
    first: ImportRecord,
) -> Result<HttpResponse, ApiError> {
    let import = super::view(conn, first).await?;
    Ok(response::replayed(
        HttpResponse::Ok()
            .insert_header((header::LOCATION, location(import.id)))
            .json(import),
    ))
}

/// Preview an import: the first rows of a file, mapped and checked, nothing written.
///
/// Send the file as an import takes it (CSV or NDJSON, gzip welcome; `-T` streams it; or as
/// a form's `file` part, after a `mapping` part), with the mapping to try (`mapping`,
/// `mapping_id` or `preset`, or the form's part). The first `limit` rows (10 by
/// default, at most 100) are read, and only they: the rest of the upload is not waited
/// for. Each comes back with the object the import would write (as the single-object
/// endpoint takes it) and its problems, found by the import's own checks in a transaction
/// that is rolled back, so nothing is written, audited or announced. The file's columns
/// that no rule reads are named in `unmapped_columns`; a rule naming a column the header
/// lacks is a `422` naming it.
#[utoipa::path(
    tag = "Imports",
    operation_id = "preview_import",
    params(("resource" = Resource, Path, description = "What the file holds"), PreviewQuery),
    request_body(content(
        (String = "text/csv", example = "First Name,Last Name,Email,Lifecycle Stage\nAda,Lovelace,ada@example.com,Lead\n"),
        (String = "application/x-ndjson", example = "{\"name\": {\"firstName\": \"Ada\"}}\n"),
        (ImportForm = "multipart/form-data"),
    ), description = "The file, as the body or as the `file` part of a form (with an optional \
        `mapping` part before it); only its first rows are read"),
    security(("bearer" = ["customers:write", "interactions:write", "purchases:write"])),
    responses(
        (status = 200, description = "The first rows, mapped and checked", body = Preview),
        (status = 400, description = "A bad query (two mappings named, a mapping that is \
            not JSON), a form that cannot be read, or a `mapping` part that is not JSON",
            body = Problem, content_type = PROBLEM),
        (status = 403, description = "The caller may not import into this resource",
            body = Problem, content_type = PROBLEM),
        (status = 413, description = "The rows read inflate past the limits", body = Problem,
            content_type = PROBLEM),
        (status = 415, description = "Neither CSV nor NDJSON (nor a form whose `file` part \
            is one)", body = Problem, content_type = PROBLEM),
        (status = 422, description = "A bad mapping (unknown fields, columns the header \
            lacks), a file that cannot be read, or a form without its `file` part",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/imports/{resource}/preview")]
async fn preview_import(
    state: web::Data<AppState>,
    principal: Principal,
    resource: web::Path<Resource>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let resource = resource.into_inner();
    principal.require(write_scope(resource))?;
    let options: PreviewQuery = query::parse(req.query_string())?;
    let mode = options.mode.unwrap_or(Mode::Insert);
    if !super::supports(resource, mode) {
        return Err(invalid(
            "mode",
            format!("`{mode}` does not apply to {resource}"),
        ));
    }
    let limit = match options.limit {
        None => 10,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(invalid("limit", "must be from 1 to 100")),
    };
    let _slot = state.uploads.enter(&principal.actor.key())?;
    let mut file = open(&state, &req, payload).await?;
    let choice = choice(
        options.mapping.as_deref(),
        file.mapping.as_deref(),
        options.mapping_id,
        options.preset,
    )?;
    let mapping = resolve(&state, resource, choice, file.mapping.is_some()).await?;
    let request = super::preview::Request {
        resource,
        mode,
        format: file.format,
        limit,
        mapping,
    };
    // Only the first rows are read: the rest of the upload, a form's later parts with it,
    // is not waited for.
    let preview =
        super::preview::preview(&state.pool, &principal.actor, request, &mut file.body).await?;
    Ok(HttpResponse::Ok().json(preview))
}

/// List imports, newest first.
///
/// With owned-only access (`access: owned`), only the imports the caller sent; another's is
/// `404`.
#[utoipa::path(
    tag = "Imports",
    params(ImportsQuery),
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "A page of imports", body = Page<Import>))
)]
#[get("/imports")]
async fn list_imports(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let query: ImportsQuery = query::parse(req.query_string())?;
    let page = pagination::request::<(DateTime<Utc>, Uuid)>(
        query.limit,
        query.cursor.as_deref(),
        "-created_at",
    )?;
    let mut conn = state.pool.get().await?;
    // A user limited to the customers they manage sees the imports they sent, no others:
    // another's import holds rows of customers that are not theirs.
    let sender = principal.access.owner().map(|_| &principal.actor);
    let records = store::list(&mut conn, query.state, sender, page.after, page.fetch()).await?;
    let rows = super::views(&mut conn, records).await?;
    Ok(
        HttpResponse::Ok().json(pagination::page(rows, &page, "-created_at", |i| {
            (i.created_at, i.id)
        })),
    )
}

async fn find(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
) -> Result<
    (
        diesel_async::pooled_connection::deadpool::Object<diesel_async::AsyncPgConnection>,
        ImportRecord,
    ),
    ApiError,
> {
    let mut conn = state.pool.get().await?;
    let record = store::get(&mut conn, id)
        .await?
        .filter(|r| principal.access.owner().is_none() || r.actor() == principal.actor)
        .ok_or_else(|| ApiError::not_found("import"))?;
    principal.require(read_scope(record.resource))?;
    Ok((conn, record))
}

/// Get an import: where it stands, its counts and its first failed rows.
#[utoipa::path(
    tag = "Imports",
    params(("id" = Uuid, Path, description = "Import id")),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses((status = 200, description = "The import", body = Import))
)]
#[get("/imports/{id}")]
async fn get_import(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, record) = find(&state, &principal, *id).await?;
    Ok(HttpResponse::Ok().json(super::view(&mut conn, record).await?))
}

/// Failed rows read per query of an error file: whole lines, each with all its problems.
const ERROR_PAGE: i64 = 1000;

async fn error_file(
    state: &AppState,
    principal: &Principal,
    id: Uuid,
    format: Format,
) -> Result<HttpResponse, ApiError> {
    let (mut conn, record) = find(state, principal, id).await?;
    // The failed rows are the file as sent: only who sent it, an admin, or a caller who
    // could have sent it reads them.
    let entitled = principal.actor == record.actor()
        || principal.role == Some(Role::Admin)
        || principal.can(write_scope(record.resource));
    if !entitled {
        return Err(ApiError::forbidden(format!(
            "the failed rows of an import are for whoever sent it, admins, and callers with \
             the `{}` permission",
            write_scope(record.resource)
        )));
    }
    if record.format != format {
        return Err(ApiError::not_found("error file in this format"));
    }
    // The first page is read before the answer starts, so that a database out of reach is
    // still a `503`; the connection goes back to the pool before the body is sent.
    let first = store::failed_lines(&mut conn, id, 0, ERROR_PAGE).await?;
    drop(conn);
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::Ndjson => "application/x-ndjson",
    };
    let file = ErrorFile {
        pool: state.pool.clone(),
        id,
        format,
        masking: Masking::for_caller(principal, &record),
        header: (format == Format::Csv).then(|| {
            let mut header = "_line,_error".to_owned();
            if let Some(columns) = &record.header {
                header.push(',');
                header.push_str(columns);
            }
            header.push_str("\r\n");
            header
        }),
        pending: Some(first),
        after: 0,
        done: false,
        request_id: crate::http::request_id::current(),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"import-{id}-errors.{format}\""),
        ))
        .streaming(futures_util::stream::unfold(file, ErrorFile::next)))
}

/// An error file being streamed: one page of failed lines per chunk, each page read with a
/// connection taken for its query alone, so a slow reader holds none and memory holds one
/// page whatever the file's size.
struct ErrorFile {
    pool: crate::db::DbPool,
    id: Uuid,
    format: Format,
    masking: Masking,
    /// The CSV header row, still to be written.
    header: Option<String>,
    /// The first page, read before the answer started.
    pending: Option<Vec<store::FailedLine>>,
    /// The last line written.
    after: i64,
    /// The last page was short: nothing follows.
    done: bool,
    /// The request's id (the stream outlives the request's task, which holds it).
    request_id: Option<String>,
}

impl ErrorFile {
    /// The next chunk: one page of failed lines written out; `None` at the end.
    async fn next(mut self) -> Option<(Result<web::Bytes, CutShort>, Self)> {
        if self.done {
            return None;
        }
        let page = match self.pending.take() {
            Some(page) => page,
            None => match self.fetch().await {
                Ok(page) => page,
                Err(cause) => {
                    tracing::warn!(
                        import = %self.id,
                        request_id = self.request_id.as_deref().unwrap_or("-"),
                        error = %cause,
                        "error file cut short"
                    );
                    self.done = true;
                    return Some((Err(CutShort("the error file")), self));
                }
            },
        };
        if (page.len() as i64) < ERROR_PAGE {
            self.done = true;
        }
        let mut out = self.header.take().unwrap_or_default();
        for failed in &page {
            self.write(&mut out, failed);
        }
        if let Some(last) = page.last() {
            self.after = last.line;
        }
        if out.is_empty() {
            return None;
        }
        Some((Ok(web::Bytes::from(out)), self))
    }

    async fn fetch(&self) -> Result<Vec<store::FailedLine>, String> {
        let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
        store::failed_lines(&mut conn, self.id, self.after, ERROR_PAGE)
            .await
            .map_err(|e| e.to_string())
    }

    /// One failed row as sent, with its line and what is wrong with it.
    fn write(&self, out: &mut String, failed: &store::FailedLine) {
        let (line, why, raw) = (failed.line, &failed.why, &failed.raw);
        match self.format {
            Format::Csv => {
                out.push_str(&line.to_string());
                out.push(',');
                crate::http::tabular::write_field(out, why);
                out.push(',');
                out.push_str(&self.masking.csv(raw));
                out.push_str("\r\n");
            }
            Format::Ndjson => {
                let parsed = serde_json::from_str::<serde_json::Value>(raw);
                let mut object = parsed
                    .as_ref()
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                self.masking.object(&mut object);
                for added in ["_line", "_error", "_raw"] {
                    object.remove(added);
                }
                let row = FailedRow {
                    line,
                    error: why.clone(),
                    raw: (parsed.is_err() && !self.masking.hides_unreadable()).then(|| raw.clone()),
                    fields: object,
                };
                out.push_str(&serde_json::to_string(&row).unwrap_or_default());
                out.push('\n');
            }
        }
    }
}

/// How the failed rows of a customer import are shown to a caller without `pii:read`: the
/// ID number masked as everywhere else, and a row that cannot be read (so not masked)
/// withheld.
struct Masking {
    /// CSV: the column of the ID number in the file's header.
    column: Option<usize>,
    hide: bool,
}

impl Masking {
    const FIELD: &'static str = "national_id";

    fn for_caller(principal: &Principal, record: &ImportRecord) -> Self {
        let hide = record.resource == Resource::Customers && !principal.can(Scope::PiiRead);
        let column = record
            .header
            .as_deref()
            .and_then(csv_fields)
            .and_then(|names| names.iter().position(|n| n.trim() == Self::FIELD));
        Masking { column, hide }
    }

    fn hides_unreadable(&self) -> bool {
        self.hide
    }

    /// A CSV record as it may be shown.
    fn csv(&self, raw: &str) -> String {
        let Some(column) = self.column.filter(|_| self.hide) else {
            return raw.to_owned();
        };
        let Some(mut fields) = csv_fields(raw).filter(|f| f.len() > column) else {
            return String::new();
        };
        if !fields[column].is_empty() {
            fields[column] = crate::customers::rules::mask(&fields[column]);
        }
        let mut out = String::new();
        crate::http::tabular::write_fields(&mut out, &fields);
        out
    }

    /// An NDJSON object as it may be shown.
    fn object(&self, object: &mut serde_json::Map<String, serde_json::Value>) {
        if !self.hide {
            return;
        }
        if let Some(serde_json::Value::String(id)) = object.get_mut(Self::FIELD)
            && !id.is_empty()
        {
            *id = crate::customers::rules::mask(id);
        }
    }
}

/// The fields of one CSV record, read as an import reads them.
fn csv_fields(raw: &str) -> Option<Vec<String>> {
    let mut parser = super::parse::Parser::new(Format::Csv);
    let mut records = Vec::new();
    parser.feed(raw.as_bytes(), &mut records);
    parser.feed(b"\n", &mut records);
    parser.feed(b"", &mut records);
    let mut records = records.into_iter();
    let first = records.next()?;
    records.next().is_none().then_some(first.fields)
}

/// Download a CSV import's failed rows.
///
/// The file's header with `_line` and `_error` first, then each failed row as it was sent,
/// with its line and what is wrong. Fix the rows and send this file again: columns starting
/// with `_` are ignored on import. Only whoever sent the import, admins and callers with the
/// resource's write permission may read it; without `pii:read` the ID number is masked (and a
/// row that cannot be read is left empty).
#[utoipa::path(
    tag = "Imports",
    params(("id" = Uuid, Path, description = "Import id")),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses((status = 200, description = "The failed rows", content_type = "text/csv",
        body = String))
)]
#[get("/imports/{id}/errors.csv")]
async fn errors_csv(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    error_file(&state, &principal, *id, Format::Csv).await
}

/// Download an NDJSON import's failed rows.
///
/// Each failed line as it was sent, with `_line` and `_error` added (and `_raw` for a line
/// that is not JSON). Fix and send again: keys starting with `_` are ignored on import. Only
/// whoever sent the import, admins and callers with the resource's write permission may read
/// it; without `pii:read` the ID number is masked (and `_raw` left out).
#[utoipa::path(
    tag = "Imports",
    params(("id" = Uuid, Path, description = "Import id")),
    security(("bearer" = ["customers:read", "interactions:read", "purchases:read"])),
    responses((status = 200, description = "The failed rows, one per line",
        content_type = "application/x-ndjson", body = FailedRow))
)]
#[get("/imports/{id}/errors.ndjson")]
async fn errors_ndjson(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    error_file(&state, &principal, *id, Format::Ndjson).await
}
