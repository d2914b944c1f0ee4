//! Success responses: the status, `Location` and `ETag` conventions in one place.

use actix_web::HttpResponse;
use actix_web::http::header;
use serde::Serialize;

use super::etag::etag;

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
