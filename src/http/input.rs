//! The NUL character in a URL: refused for every route at once, before any handler runs.
//!
//! PostgreSQL's `text` cannot hold it, so an id or a filter carrying one (`%00`) would reach
//! the database only to fail there. A NUL is never part of a valid id, key or search, so the
//! request is a `400` naming where it is.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError};

use super::error::{ApiError, ErrorCode, FieldError};

/// Why a path or query is refused, if it is.
pub fn check(path: &str, query: &str) -> Result<(), ApiError> {
    // A raw NUL cannot be in a request line; percent-encoded is the only way in.
    if has_encoded_nul(path) {
        return Err(ApiError::new(
            ErrorCode::InvalidPath,
            "the path holds a NUL character (%00), which no id or key may contain",
        ));
    }
    if has_encoded_nul(query) {
        let name = form_urlencoded::parse(query.as_bytes())
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
            .map(|(name, _)| name.replace('\0', "\u{fffd}"))
            .unwrap_or_else(|| "query".to_owned());
        let message = "must not contain the NUL character (%00)";
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!("query parameter `{name}` {message}"),
        )
        .with_errors(vec![FieldError::new(name, message)]));
    }
    Ok(())
}

fn has_encoded_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"%00")
}

/// Answers a path or query holding a NUL with its problem; lets every other request through.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    if let Err(err) = check(req.path(), req.query_string()) {
        let response = err.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_in_path_or_query_is_refused_naming_the_parameter() {
        assert!(check("/v1/customers/by-external-id/a", "").is_ok());
        assert!(check("/v1/customers", "q=a%2500").is_ok());
        let err = check("/v1/customers/by-external-id/a%00b", "").err();
        assert_eq!(err.map(|e| e.code()), Some(ErrorCode::InvalidPath));
        let err = check("/v1/customers", "limit=5&q=a%00b").err();
        assert_eq!(
            err.as_ref().map(ApiError::code),
            Some(ErrorCode::InvalidQuery)
        );
        assert_eq!(
            err.map(|e| e.errors()[0].field.clone()),
            Some("q".to_owned())
        );
    }
}
