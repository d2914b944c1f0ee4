//! A preview of an import: the first rows of a file read, mapped and checked by the very
//! code an import runs, in a transaction that is always rolled back. Only those rows are
//! read of the upload, and nothing is written.

use std::collections::BTreeMap;

use diesel_async::AsyncConnection;

use super::json::{FieldProblem, Mode, Preview, PreviewRow, Resource};
use super::mappings::Mapping;
use super::mappings::json::AppliedMapping;
use super::parse::{Format, Parser};
use super::{Failure, Outcome, Reader, Row};
use crate::auth::Actor;
use crate::db::DbPool;
use crate::http::body::Body;
use crate::http::error::ApiError;

/// What to preview.
pub struct Request {
    pub resource: Resource,
    pub mode: Mode,
    pub format: Format,
    /// Rows to read.
    pub limit: usize,
    pub mapping: Option<(AppliedMapping, Mapping)>,
}

/// Why the preview's transaction ends: always rolled back, with what the rows did.
enum End {
    Checked(Outcome),
    Failed(ApiError),
}

impl From<diesel::result::Error> for End {
    fn from(err: diesel::result::Error) -> Self {
        End::Failed(err.into())
    }
}

/// Reads the first `limit` rows of `body` and checks them as `actor` importing them would.
pub async fn preview(
    pool: &DbPool,
    actor: &Actor,
    request: Request,
    body: &mut Body,
) -> Result<Preview, ApiError> {
    let Request {
        resource,
        mode,
        format,
        limit,
        mapping,
    } = request;
    let (applied, mapping) = match mapping {
        Some((applied, mapping)) => (Some(applied), Some(mapping)),
        None => (None, None),
    };
    let mut parser = Parser::new(format);
    let mut reader = Reader::new(format, resource, mapping);
    let mut rows: Vec<Row> = Vec::new();
    let mut failed: Vec<Failure> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut records = Vec::new();
    let mut ended = false;
    while lines.len() < limit && !ended {
        match body.next().await {
            Some(piece) => parser.feed(&piece?, &mut records),
            None => {
                parser.feed(&[], &mut records);
                ended = true;
            }
        }
        for record in records.drain(..) {
            if lines.len() >= limit {
                break;
            }
            let line = record.line;
            let row = reader.row(record).map_err(|why| {
                ApiError::validation(vec![crate::http::error::FieldError::new("body", why)])
            })?;
            match row {
                None => {}
                Some(Ok(row)) => {
                    lines.push(line);
                    rows.push(row);
                }
                Some(Err(failures)) => {
                    lines.push(line);
                    failed.extend(failures);
                }
            }
        }
    }
    if format == Format::Csv && reader.header.is_none() {
        return Err(ApiError::validation(vec![
            crate::http::error::FieldError::new(
                "body",
                "the file is empty: a CSV file starts with a header row",
            ),
        ]));
    }
    let objects: BTreeMap<u64, serde_json::Map<String, serde_json::Value>> =
        rows.iter().map(|r| (r.line, r.object.clone())).collect();
    // The rows go through the import's own writes, in a transaction rolled back whatever
    // happens: their problems are exactly those the import would report.
    let mut conn = pool.get().await?;
    let checked = conn
        .transaction(async |conn| {
            let outcome = super::apply(conn, actor, resource, mode, None, rows)
                .await
                .map_err(End::Failed)?;
            Err::<(), End>(End::Checked(outcome))
        })
        .await;
    let outcome = match checked {
        Err(End::Checked(outcome)) => outcome,
        Err(End::Failed(err)) => return Err(err),
        Ok(()) => Outcome::default(),
    };
    failed.extend(outcome.failures);
    let mut problems: BTreeMap<u64, Vec<FieldProblem>> = BTreeMap::new();
    for failure in failed {
        problems
            .entry(failure.line)
            .or_default()
            .push(FieldProblem {
                field: failure.field,
                message: failure.message,
            });
    }
    let rows: Vec<PreviewRow> = lines
        .iter()
        .map(|line| PreviewRow {
            line: *line as i64,
            object: objects.get(line).cloned(),
            errors: problems.remove(line).unwrap_or_default(),
        })
        .collect();
    let invalid = rows.iter().filter(|r| !r.errors.is_empty()).count() as i64;
    Ok(Preview {
        resource,
        format,
        mapping: applied,
        columns: if format == Format::Csv {
            reader.names.clone()
        } else {
            Vec::new()
        },
        unmapped_columns: reader.unmapped_columns().unwrap_or_default(),
        valid: rows.len() as i64 - invalid,
        invalid,
        rows,
    })
}
