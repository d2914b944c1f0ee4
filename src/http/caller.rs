//! Who sends a request, as the HTTP edge's own middlewares need it: the key that rate
//! limits and idempotency keys are counted under, and the caller's own rate limit.
//!
//! `auth` identifies the caller (`auth::identify`, wrapped outside these middlewares) and
//! leaves a [`Caller`] in the request's extensions, so the edge never depends on `auth`. A
//! request without a valid token carries none; its handler answers it.

use actix_web::HttpMessage;
use actix_web::dev::ServiceRequest;

use crate::domain::RateLimit;

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// `user:<id>`, `client:<id>` or `service:<name>`: one per caller.
    pub key: String,
    /// The caller's own limit, when it has one; else the service's default applies.
    pub rate_limit: Option<RateLimit>,
}

impl Caller {
    /// The caller `auth` found for this request, if any.
    pub fn of(req: &ServiceRequest) -> Option<Self> {
        req.extensions().get::<Self>().cloned()
    }
}
