//! Success responses: the status, `Location` and `ETag` conventions in one place.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;

use super::etag::etag;

/// Marks an answer that repeats an earlier result (see [`replayed`]).
pub const REPLAYED: header::HeaderName = header::HeaderName::from_static("idempotent-replayed");

/// `201 Created` with `Location` and `ETag`.
pub fn created<T: Serialize>(location: &str, version: i64, body: &T) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// `200 OK` for one versioned object, with its `ETag`.
pub fn versioned<T: Serialize>(version: i64, body: &T) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// `301 Moved Permanently` to `location`, with a body saying where the object went (for
/// clients that do not follow redirects).
pub fn moved<T: Serialize>(location: &str, body: &T) -> HttpResponse {
    HttpResponse::MovedPermanently()
        .insert_header((header::LOCATION, location))
        .json(body)
}

/// An answer that repeats an earlier result instead of doing the work again (a purchase
/// re-sent with its `external_ref`, a file re-sent): marked `Idempotent-Replayed: true`, as a
/// replay under an `Idempotency-Key` is, so a client can tell a retry from a first write
/// whatever made the request idempotent.
pub fn replayed(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(REPLAYED, header::HeaderValue::from_static("true"));
    response
}

/// `200 OK` with the object an earlier request recorded, its `ETag`, and
/// `Idempotent-Replayed: true`.
pub fn replayed_versioned<T: Serialize>(version: i64, body: &T) -> HttpResponse {
    replayed(versioned(version, body))
}

/// Why a streamed answer (an export, an error file) stopped before its end: the body is cut
/// short, so the client sees a broken download rather than a complete-looking one, and the
/// cause is logged where it happened. Says which download failed, never why.
#[derive(Debug)]
pub struct CutShort(pub &'static str);

impl std::fmt::Display for CutShort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed before its end", self.0)
    }
}

impl std::error::Error for CutShort {}
