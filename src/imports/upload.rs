//! An import's file as a request sends it: the body itself (`Content-Type: text/csv` or
//! `application/x-ndjson`, gzip welcome), or a `multipart/form-data` form, as `curl -F`
//! sends it, with a `file` part and, before it, an optional `mapping` part (JSON).
//!
//! Either way the file is read as it arrives, under the same limits (its size as sent and
//! once inflated, how far it may inflate, how long the client may go quiet): a form's file
//! part is streamed like a body, never held whole. The parts before it are small and read
//! whole, each with a limit of its own.

use std::pin::Pin;
use std::time::Duration;

use actix_multipart::{Field, Multipart};
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};

use super::parse::Format;
use crate::http::body::{self, Body, Limits};
use crate::http::error::{ApiError, ErrorCode, FieldError};

/// The form's part that holds the file.
pub const FILE: &str = "file";
/// The form's part that holds the mapping.
pub const MAPPING: &str = "mapping";

/// The file of an upload, opened: its format and its body, read as it arrives.
pub struct File {
    pub format: Format,
    pub body: Body,
    /// A form's `mapping` part, as sent.
    pub mapping: Option<String>,
    /// A form: the parts after the file, to check that there are none.
    rest: Option<Multipart>,
    idle: Duration,
}

/// Whether the request sends a form.
pub fn is_form(headers: &HeaderMap) -> bool {
    essence(headers.get(header::CONTENT_TYPE)) == "multipart/form-data"
}

/// A content type's essence (`text/csv` of `text/csv; charset=utf-8`), lower case.
fn essence(value: Option<&HeaderValue>) -> String {
    value
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn format_of(content_type: &str) -> Option<Format> {
    match content_type {
        "text/csv" => Some(Format::Csv),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Some(Format::Ndjson),
        _ => None,
    }
}

fn unsupported() -> ApiError {
    ApiError::new(
        ErrorCode::UnsupportedMediaType,
        "send the file as `Content-Type: text/csv` or `application/x-ndjson` (with \
         `Content-Encoding: gzip` when compressed), or as the `file` part of a \
         `multipart/form-data` form (`curl -F 'file=@customers.csv'`)",
    )
}

fn unreadable(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        ErrorCode::BadRequest,
        format!("the form could not be read: {err}"),
    )
}

/// A form's part at fault: the problem in the detail too, as the part is not a field.
fn invalid(part: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(ErrorCode::ValidationFailed, message.clone())
        .with_errors(vec![FieldError::new(part, message)])
}

/// What a form's part that is not taken is told.
fn not_a_part(name: Option<&str>) -> ApiError {
    let taken = format!("an import takes a `{MAPPING}` part and a `{FILE}` part, in that order");
    match name {
        Some(name) if !name.is_empty() => invalid(name, format!("is not a part: {taken}")),
        _ => unreadable(format!("a part has no name: {taken}")),
    }
}

/// The format of a form's file part, and whether it is gzip: its `Content-Type`, else (for
/// none, `application/octet-stream` or `text/plain`, which curl sends when it cannot tell)
/// its file name's extension: `.csv`, `.ndjson` or `.jsonl`, each with `.gz` after it when
/// compressed.
fn part_format(field: &Field) -> Result<(Format, bool), ApiError> {
    let content_type = essence(field.headers().get(header::CONTENT_TYPE));
    let encoded = essence(field.headers().get(header::CONTENT_ENCODING));
    let filename = field
        .content_disposition()
        .and_then(|d| d.get_filename())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (stem, gzip_name) = match filename.strip_suffix(".gz") {
        Some(stem) => (stem, true),
        None => (filename.as_str(), false),
    };
    let by_name = if stem.ends_with(".csv") {
        Some(Format::Csv)
    } else if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") {
        Some(Format::Ndjson)
    } else {
        None
    };
    let gzip_type = matches!(
        content_type.as_str(),
        "application/gzip" | "application/x-gzip"
    );
    let gzip = gzip_type || gzip_name || encoded == "gzip";
    if !encoded.is_empty() && encoded != "gzip" && encoded != "identity" {
        return Err(unsupported());
    }
    let format = match content_type.as_str() {
        "" | "application/octet-stream" | "text/plain" => by_name,
        _ if gzip_type => by_name,
        other => format_of(other),
    };
    let format = format.ok_or_else(|| {
        ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "the `{FILE}` part is neither CSV nor NDJSON: give it the type \
                 (`-F 'file=@export.txt;type=text/csv'`) or a name ending in `.csv`, \
                 `.ndjson` or `.jsonl` (`.gz` after it when compressed)"
            ),
        )
    })?;
    Ok((format, gzip))
}

/// The form's next part; `None` after the last.
async fn next_part(form: &mut Multipart, idle: Duration) -> Result<Option<Field>, ApiError> {
    match tokio::time::timeout(idle, form.next()).await {
        Err(_) => Err(quiet(idle)),
        Ok(None) => Ok(None),
        Ok(Some(Ok(field))) => Ok(Some(field)),
        Ok(Some(Err(err))) => Err(unreadable(err)),
    }
}

fn quiet(idle: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "the body stopped arriving: nothing came for {}; send it again",
            crate::config::show_duration(idle)
        ),
    )
}

/// A small part read whole, refused past `max` bytes.
async fn read_small(
    mut field: Field,
    name: &str,
    max: usize,
    idle: Duration,
) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    loop {
        match tokio::time::timeout(idle, field.next()).await {
            Err(_) => return Err(quiet(idle)),
            Ok(None) => break,
            Ok(Some(Err(err))) => return Err(unreadable(err)),
            Ok(Some(Ok(piece))) => {
                if bytes.len() + piece.len() > max {
                    return Err(body::too_large(&format!("the `{name}` part"), max as u64));
                }
                bytes.extend_from_slice(&piece);
            }
        }
    }
    String::from_utf8(bytes).map_err(|_| {
        let message = "must be JSON text: it is not UTF-8";
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the form's `{name}` part {message}"),
        )
        .with_errors(vec![FieldError::new(name, message)])
    })
}

type PartStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

impl File {
    /// Opens the file of a request: the body itself, or a form read up to its `file` part
    /// (a `mapping` part before it is read whole, at most `mapping_max` bytes).
    pub async fn open(
        headers: &HeaderMap,
        payload: Payload,
        limits: Limits,
        mapping_max: usize,
    ) -> Result<File, ApiError> {
        if !is_form(headers) {
            let format =
                format_of(&essence(headers.get(header::CONTENT_TYPE))).ok_or_else(unsupported)?;
            return Ok(File {
                format,
                body: Body::new(payload, headers, limits)?,
                mapping: None,
                rest: None,
                idle: limits.idle,
            });
        }
        let encoded = essence(headers.get(header::CONTENT_ENCODING));
        if !encoded.is_empty() && encoded != "identity" {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "a form is not compressed as a whole: compress its `{FILE}` part \
                     (`-F 'file=@customers.csv.gz'`)"
                ),
            ));
        }
        // The form's size as declared; the file part is held to the limits as it arrives,
        // the parts before it to theirs.
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limits.max_bytes) {
            return Err(body::too_large("the body", limits.max_bytes));
        }
        let mut form = Multipart::new(headers, payload);
        let mut mapping = None;
        loop {
            let Some(field) = next_part(&mut form, limits.idle).await? else {
                return Err(invalid(
                    FILE,
                    format!(
                        "the form has no `{FILE}` part: send the file as \
                         `-F 'file=@customers.csv'`"
                    ),
                ));
            };
            match field.name() {
                Some(MAPPING) if mapping.is_some() => {
                    return Err(invalid(MAPPING, "the form has two `mapping` parts"));
                }
                Some(MAPPING) => {
                    mapping = Some(read_small(field, MAPPING, mapping_max, limits.idle).await?);
                }
                Some(FILE) => {
                    let (format, gzip) = part_format(&field)?;
                    let mut part_headers = HeaderMap::new();
                    if gzip {
                        part_headers
                            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                    }
                    let stream: PartStream = Box::pin(field.map(|piece| {
                        piece
                            .map_err(|err| PayloadError::Io(std::io::Error::other(err.to_string())))
                    }));
                    return Ok(File {
                        format,
                        body: Body::new(Payload::from(stream), &part_headers, limits)?,
                        mapping,
                        rest: Some(form),
                        idle: limits.idle,
                    });
                }
                other => return Err(not_a_part(other)),
            }
        }
    }

    /// Ends the upload once the file has been read: a form must end with its file part.
    /// The file's size, inflated.
    pub async fn finish(self) -> Result<u64, ApiError> {
        let File {
            body, rest, idle, ..
        } = self;
        let inflated = body.inflated();
        // The file part goes before the form is read further.
        drop(body);
        let Some(mut form) = rest else {
            return Ok(inflated);
        };
        match next_part(&mut form, idle).await? {
            None => Ok(inflated),
            Some(field) => Err(match field.name() {
                Some(FILE) => invalid(
                    FILE,
                    "the form has two `file` parts: send one file per import",
                ),
                Some(MAPPING) => invalid(
                    MAPPING,
                    format!("must come before the `{FILE}` part: the file is read as it arrives"),
                ),
                other => not_a_part(other),
            }),
        }
    }
}
