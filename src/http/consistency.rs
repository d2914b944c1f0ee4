//! Read-your-writes with read replicas: `Rapport-Consistency-Token`.
//!
//! While replicas are configured (`RAPPORT_READ_DATABASE_URLS`), every successful write
//! answers with the primary's WAL position after it committed, in this header. A read that
//! sends the header back is served by a replica only once that replica has replayed past it
//! (otherwise by the primary), so a client never reads its own write as missing. The value is
//! opaque to clients; without replicas the header is neither sent nor needed.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;

use crate::db::replicas::Lsn;
use crate::http::ErrorCode;
use crate::http::error::ApiError;

pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static("rapport-consistency-token");

/// The reads a replica may serve (their handlers read through `AppState::read`), by OpenAPI
/// path: the document lists the token as a header they take.
pub const REPLICA_READS: &[&str] = &[
    "/v1/customers",
    "/v1/customers/{id}/timeline",
    "/v1/customers/{id}/interactions",
    "/v1/customers/{id}/purchases",
    "/v1/customers/{id}/opportunities",
    "/v1/interactions",
    "/v1/complaints",
    "/v1/complaints/stats",
    "/v1/follow-ups",
    "/v1/purchases",
    "/v1/opportunities",
    "/v1/events",
    "/v1/exports/customers",
    "/v1/exports/interactions",
    "/v1/exports/purchases",
    "/v1/exports/survey-responses",
    "/v1/exports/contacts",
    "/v1/exports/pareto",
    "/v1/analytics/pareto",
    "/v1/analytics/segments",
    "/v1/analytics/churn-risk",
    "/v1/analytics/win-back",
    "/v1/analytics/forecast",
];

/// The token a read carries, if any; `400` when it is not one this service gave out.
pub fn token(req: &HttpRequest) -> Result<Option<Lsn>, ApiError> {
    let Some(value) = req.headers().get(&CONSISTENCY_TOKEN) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(Lsn::parse)
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidHeader,
                "Rapport-Consistency-Token must be a token a write response gave, such as 0/16B3748",
            )
        })
}
