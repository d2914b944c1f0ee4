//! The one error type at the HTTP edge, answered as `application/problem+json` (RFC 9457).
//!
//! Every failure, whatever raised it (a handler, an extractor, the database, a middleware),
//! becomes an [`ApiError`]. Its stable snake_case [`ErrorCode`] is the table clients switch on;
//! the internal cause of a 5xx goes to the log with the request id, never into the body.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use utoipa::ToSchema;

use super::request_id;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Field problems a problem document lists at most, whatever raised them (10 000 unknown
/// answers, a header of 100 000 columns): past it, `errors_total` counts them all.
pub const MAX_LISTED_ERRORS: usize = 100;

/// Stable error codes: one row per kind of failure, with its status and title.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    BadRequest,
    MalformedJson,
    InvalidQuery,
    InvalidPath,
    InvalidHeader,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    NotAcceptable,
    Conflict,
    Duplicate,
    IdempotencyInProgress,
    PreconditionFailed,
    RequestTimeout,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
    IdempotencyKeyReused,
    RateLimited,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, for the documentation table and its test.
    pub const ALL: [ErrorCode; 22] = [
        Self::BadRequest,
        Self::MalformedJson,
        Self::InvalidQuery,
        Self::InvalidPath,
        Self::InvalidHeader,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::NotAcceptable,
        Self::Conflict,
        Self::Duplicate,
        Self::IdempotencyInProgress,
        Self::PreconditionFailed,
        Self::RequestTimeout,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::IdempotencyKeyReused,
        Self::RateLimited,
        Self::ServiceUnavailable,
        Self::Internal,
    ];

    /// (code, status, title): the single table of what each failure means.
    const fn row(self) -> (&'static str, u16, &'static str) {
        match self {
            Self::BadRequest => ("bad_request", 400, "Bad request"),
            Self::MalformedJson => ("malformed_json", 400, "Malformed JSON body"),
            Self::InvalidQuery => ("invalid_query", 400, "Invalid query parameters"),
            Self::InvalidPath => ("invalid_path", 400, "Invalid path parameter"),
            Self::InvalidHeader => ("invalid_header", 400, "Invalid request header"),
            Self::Unauthenticated => ("unauthenticated", 401, "Authentication required"),
            Self::Forbidden => ("forbidden", 403, "Not allowed"),
            Self::NotFound => ("not_found", 404, "Not found"),
            Self::MethodNotAllowed => ("method_not_allowed", 405, "Method not allowed"),
            Self::NotAcceptable => ("not_acceptable", 406, "Not acceptable"),
            Self::Conflict => ("conflict", 409, "Conflict with the current state"),
            Self::Duplicate => ("duplicate", 409, "Already exists"),
            Self::IdempotencyInProgress => (
                "idempotency_in_progress",
                409,
                "A request with this Idempotency-Key is still being processed",
            ),
            Self::PreconditionFailed => (
                "precondition_failed",
                412,
                "The resource has changed since it was read",
            ),
            Self::RequestTimeout => ("request_timeout", 408, "The request body stopped arriving"),
            Self::PayloadTooLarge => ("payload_too_large", 413, "Request body too large"),
            Self::UnsupportedMediaType => {
                ("unsupported_media_type", 415, "Unsupported content type")
            }
            Self::ValidationFailed => ("validation_failed", 422, "Invalid values"),
            Self::IdempotencyKeyReused => (
                "idempotency_key_reused",
                422,
                "This Idempotency-Key was used with a different request",
            ),
            Self::RateLimited => ("rate_limited", 429, "Too many requests"),
            Self::ServiceUnavailable => (
                "service_unavailable",
                503,
                "Service temporarily unavailable",
            ),
            Self::Internal => ("internal", 500, "Internal error"),
        }
    }

    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    pub fn status(self) -> StatusCode {
        StatusCode::from_u16(self.row().1).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub const fn title(self) -> &'static str {
        self.row().2
    }

    /// The problem `type` URI. A URN: stable and unique, not meant to be fetched.
    pub fn type_uri(self) -> String {
        format!("urn:rapport:problem:{}", self.as_str())
    }

    /// The code a bare status maps to, for responses produced outside our handlers.
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 => Self::BadRequest,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            406 => Self::NotAcceptable,
            409 => Self::Conflict,
            408 => Self::RequestTimeout,
            412 => Self::PreconditionFailed,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            503 => Self::ServiceUnavailable,
            _ => Self::Internal,
        }
    }
}

/// One invalid field: its dotted path in the request and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Dotted path of the offending field (`address.country`, `tags[2]`).
    #[schema(example = "email")]
    pub field: String,
    /// What is wrong, in words a person can act on.
    #[schema(example = "must be a valid email address")]
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document, the body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:rapport:problem:validation_failed",
    "title": "Invalid values",
    "status": 422,
    "detail": "1 field is invalid",
    "code": "validation_failed",
    "request_id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a",
    "errors": [{"field": "email", "message": "must be a valid email address"}]
}))]
pub struct Problem {
    /// URI identifying the kind of problem (`urn:rapport:problem:<code>`).
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the kind of problem; the same for every occurrence of a code.
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Stable snake_case code to switch on (see the table in docs/api-conventions.md).
    pub code: String,
    /// The request id, also in the `X-Request-Id` header; quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level errors for validation failures: the first 100 of them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 100)]
    pub errors: Vec<FieldError>,
    /// How many field errors there are in all, when there are more than `errors` lists
    /// (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 101, example = 12345)]
    pub errors_total: Option<u64>,
}

/// The error every handler, extractor and store call returns at the HTTP edge.
#[derive(Clone)]
pub struct ApiError {
    code: ErrorCode,
    detail: Option<String>,
    errors: Vec<FieldError>,
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: Some(detail.into()),
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn bare(code: ErrorCode) -> Self {
        Self {
            code,
            detail: None,
            errors: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, detail).with_header(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rapport\""),
        )
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, detail)
    }

    /// A unique natural key is taken; names the field so a form can point at it.
    pub fn duplicate(field: &str) -> Self {
        Self::new(ErrorCode::Duplicate, format!("`{field}` is already in use"))
            .with_errors(vec![FieldError::new(field, "is already in use")])
    }

    /// 422 with one or more field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 field is invalid".to_owned(),
            n => format!("{n} fields are invalid"),
        };
        Self::new(ErrorCode::ValidationFailed, detail).with_errors(errors)
    }

    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn unavailable() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            "the database is unavailable; retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// A statement ran past the database's `statement_timeout` and was cancelled: the
    /// database is too busy (or a lock is held) to answer in time; a retry may succeed.
    pub fn timed_out() -> Self {
        Self::new(
            ErrorCode::ServiceUnavailable,
            "the database did not answer within its time limit, so the request was cancelled; \
             retry shortly",
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
    }

    /// A 500 whose cause is logged (with the request id) and never shown.
    pub fn internal(cause: impl fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::bare(ErrorCode::Internal)
    }

    /// The problem document: every answer's body, and the one place that bounds its list
    /// of field errors to [`MAX_LISTED_ERRORS`], counting the rest.
    pub fn problem(&self) -> Problem {
        let total = self.errors.len();
        let cut = total > MAX_LISTED_ERRORS;
        let detail = if cut {
            let listed = format!("the first {MAX_LISTED_ERRORS} of {total} are listed");
            Some(match &self.detail {
                Some(detail) => format!("{detail}; {listed}"),
                None => listed,
            })
        } else {
            self.detail.clone()
        };
        Problem {
            type_uri: self.code.type_uri(),
            title: self.code.title().to_owned(),
            status: self.code.status().as_u16(),
            detail,
            code: self.code.as_str().to_owned(),
            request_id: request_id::current(),
            errors: self.errors[..total.min(MAX_LISTED_ERRORS)].to_vec(),
            errors_total: cut.then_some(total as u64),
        }
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("code", &self.code)
            .field("detail", &self.detail)
            .field("errors", &self.errors)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => write!(f, "{}: {detail}", self.code.as_str())?,
            None => f.write_str(self.code.as_str())?,
        }
        // The fields, so that a message read outside HTTP (the command line) says what to fix.
        for (n, e) in self.errors.iter().enumerate() {
            let open = if n == 0 { " (" } else { "; " };
            write!(f, "{open}{}: {}", e.field, e.message)?;
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            f.write_str(")")
        }
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        problem_response(self.status_code(), &self.problem(), &self.headers)
    }
}

/// Serialises a problem document with its media type.
pub fn problem_response(
    status: StatusCode,
    problem: &Problem,
    headers: &[(header::HeaderName, HeaderValue)],
) -> HttpResponse {
    let mut builder = HttpResponse::build(status);
    builder.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
    for (name, value) in headers {
        builder.insert_header((name.clone(), value.clone()));
    }
    match serde_json::to_vec(problem) {
        Ok(body) => builder.body(body),
        Err(_) => builder.finish(),
    }
}

/// Constraint names of unique indexes, and the request field each protects: the one table
/// that turns a unique violation into a `409` naming the field.
const UNIQUE_CONSTRAINTS: &[(&str, &str)] = &[
    ("users_email_key", "email"),
    ("api_clients_name_key", "name"),
    ("customers_email_key", "email"),
    ("customers_external_id_key", "external_id"),
    ("purchases_external_ref_key", "external_ref"),
    ("contacts_organization_person_key", "person_id"),
    ("contacts_one_primary_key", "primary"),
    ("import_mappings_name_key", "name"),
];

/// Foreign keys that are the check of a request's field (no statement of their own: the
/// write itself checks), with the field they name and what it must be.
const REFERENCE_CONSTRAINTS: &[(&str, &str, &str)] = &[(
    "purchases_opportunity_fkey",
    "opportunity_id",
    "must be the id of an opportunity of this purchase's customer",
)];

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => Self::new(ErrorCode::NotFound, "not found"),
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, ref info) => {
                let field = info.constraint_name().and_then(|name| {
                    UNIQUE_CONSTRAINTS
                        .iter()
                        .find(|(constraint, _)| *constraint == name)
                        .map(|(_, field)| *field)
                });
                match field {
                    Some(field) => Self::duplicate(field),
                    None => {
                        tracing::warn!(error = %err, "a unique index no rule checks refused a value");
                        Self::conflict("a value of the request is already in use")
                    }
                }
            }
            // Integrity rules (SQLSTATE class 23) the request's checks let through: the
            // request's fault, answered as such; logged, as a check is missing somewhere.
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, ref info)
                if let Some((_, field, message)) = REFERENCE_CONSTRAINTS
                    .iter()
                    .find(|(constraint, _, _)| Some(*constraint) == info.constraint_name()) =>
            {
                Self::invalid_field(field, *message)
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
                tracing::warn!(error = %err, "a reference the request's checks let through");
                Self::conflict(
                    "an object the request refers to is gone, or one it removes is still in use",
                )
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::CheckViolation | DatabaseErrorKind::NotNullViolation,
                _,
            ) => {
                tracing::warn!(error = %err, "a value the request's checks let through");
                Self::new(
                    ErrorCode::ValidationFailed,
                    "a value of the request breaks a rule of the stored data",
                )
            }
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => {
                Self::conflict("a concurrent change conflicted with this one; retry")
            }
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
            | DieselError::BrokenTransactionManager => {
                tracing::warn!(error = %err, "database connection lost");
                Self::unavailable()
            }
            DieselError::DatabaseError(_, ref info) if is_cancelled(info.message()) => {
                tracing::warn!(error = %err, "a statement ran out of time");
                Self::timed_out()
            }
            DieselError::DatabaseError(_, ref info) if is_unavailable(info.message()) => {
                tracing::warn!(error = %err, "database unavailable");
                Self::unavailable()
            }
            DieselError::DatabaseError(_, ref info) if is_refused_value(info.message()) => {
                tracing::info!(error = %err, "the database refused a value of the request");
                Self::new(
                    ErrorCode::ValidationFailed,
                    "a value of the request cannot be stored (a NUL character, a byte sequence \
                     that is not UTF-8, or a number or date out of range)",
                )
            }
            other => Self::internal(other),
        }
    }
}

/// A statement PostgreSQL cancelled (SQLSTATE 57014 `query_canceled`): the session's
/// `statement_timeout` ran out, or an operator cancelled it. diesel classifies neither, and
/// its error keeps only the message, so the message is matched.
fn is_cancelled(message: &str) -> bool {
    message.starts_with("canceling statement due to")
}

/// Data exceptions (SQLSTATE class 22) a value of the request can cause, should one get past
/// the extractors: NUL (22021, 22P05), invalid text for a type (22P02), out of range (22003,
/// 22008), too long (22001). Division by zero and the like stay internal: no input causes them.
fn is_refused_value(message: &str) -> bool {
    const SIGNS: [&str; 9] = [
        "invalid byte sequence for encoding",
        "unsupported Unicode escape sequence",
        "has no equivalent in encoding",
        "invalid input syntax for type",
        "invalid input value for enum",
        "out of range",
        "numeric field overflow",
        "value too long for type",
        "cannot be converted to text",
    ];
    SIGNS.iter().any(|sign| message.contains(sign))
}

/// Errors tokio-postgres reports when the server went away mid-query (not classified by diesel).
fn is_unavailable(message: &str) -> bool {
    const SIGNS: [&str; 6] = [
        "connection closed",
        "error communicating with the server",
        "terminating connection",
        "the database system is",
        "Connection reset",
        "server closed the connection",
    ];
    SIGNS.iter().any(|sign| message.contains(sign))
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        tracing::warn!(error = %err, "no database connection available");
        Self::unavailable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(
                seen.insert(code.as_str()),
                "duplicate code {}",
                code.as_str()
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn cancelled_and_refused_statements_are_not_500() {
        assert!(is_cancelled("canceling statement due to statement timeout"));
        assert!(!is_cancelled("relation \"x\" does not exist"));
        for message in [
            "invalid byte sequence for encoding \"UTF8\": 0x00",
            "unsupported Unicode escape sequence",
            "invalid input syntax for type uuid: \"x\"",
            "value \"99999999999\" is out of range for type integer",
            "value too long for type character varying(3)",
        ] {
            assert!(is_refused_value(message), "{message}");
        }
        assert!(!is_refused_value("division by zero"));
    }

    #[test]
    fn a_problem_lists_the_first_errors_and_counts_them_all() {
        let many = |n: usize| {
            ApiError::validation(
                (0..n)
                    .map(|i| FieldError::new(format!("f{i}"), "is unknown"))
                    .collect(),
            )
            .problem()
        };
        let cut = many(MAX_LISTED_ERRORS + 1);
        assert_eq!(cut.errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(cut.errors[MAX_LISTED_ERRORS - 1].field, "f99");
        assert_eq!(cut.errors_total, Some(101));
        assert_eq!(
            cut.detail.as_deref(),
            Some("101 fields are invalid; the first 100 of 101 are listed")
        );
        let whole = many(MAX_LISTED_ERRORS);
        assert_eq!(whole.errors.len(), MAX_LISTED_ERRORS);
        assert_eq!(whole.errors_total, None);
        let body = serde_json::to_value(&whole).unwrap_or_default();
        assert!(body.get("errors_total").is_none(), "{body}");
    }

    #[test]
    fn duplicate_names_the_field() {
        let err = ApiError::duplicate("email");
        assert_eq!(err.code().status(), StatusCode::CONFLICT);
        assert_eq!(err.errors()[0].field, "email");
    }
}
