//! `ETag` / `If-Match`: optimistic concurrency, so that no update is lost.
//!
//! Every object carries a `version` that each write increments; its `ETag` is `"<version>"`.
//! A `PATCH` or `DELETE` sent with `If-Match` applies only if the object is still at that
//! version, checked under the row lock inside the write's transaction; otherwise `412`.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest};
use utoipa::IntoParams;

use super::error::{ApiError, ErrorCode};

/// The `ETag` header value for a version.
pub fn etag(version: i64) -> HeaderValue {
    // Digits and quotes are always a valid header value.
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

/// A parsed `If-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: the write applies to whatever version is current.
    Absent,
    /// `If-Match: *`: the object must exist (it does, if the handler got this far).
    Any,
    /// `If-Match: "3"` (or a list): the object must be at one of these versions.
    Versions(Vec<i64>),
}

/// The `If-Match` request header, for the OpenAPI description of conditional writes.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// The `ETag` of the version this change was based on; a stale one is answered `412`.
    #[param(rename = "If-Match", example = "\"3\"")]
    pub if_match: Option<String>,
}

impl IfMatch {
    fn parse(value: &HeaderValue) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::new(
                ErrorCode::InvalidHeader,
                "If-Match must be `*` or an ETag this API gave out, such as \"3\"",
            )
        };
        let text = value.to_str().map_err(|_| bad())?.trim();
        if text == "*" {
            return Ok(Self::Any);
        }
        let versions = text
            .split(',')
            .map(|tag| {
                let tag = tag.trim();
                let tag = tag.strip_prefix("W/").unwrap_or(tag);
                tag.strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse::<i64>().ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::Versions(versions))
    }

    /// Checks the current version; call it on the row read `FOR UPDATE` in the transaction.
    pub fn check(&self, current: i64) -> Result<(), ApiError> {
        match self {
            Self::Versions(versions) if !versions.contains(&current) => Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                format!("the object is at version {current}; read it again and reapply the change"),
            )
            .with_header(header::ETAG, etag(current))),
            _ => Ok(()),
        }
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(match req.headers().get(header::IF_MATCH) {
            None => Ok(Self::Absent),
            Some(value) => Self::parse(value),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<IfMatch, ApiError> {
        IfMatch::parse(&HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("")))
    }

    #[test]
    fn parses_and_checks() {
        assert_eq!(parse("*").ok(), Some(IfMatch::Any));
        assert_eq!(parse("\"3\"").ok(), Some(IfMatch::Versions(vec![3])));
        assert_eq!(
            parse("W/\"3\", \"4\"").ok(),
            Some(IfMatch::Versions(vec![3, 4]))
        );
        assert!(parse("3").is_err());
        assert!(parse("\"x\"").is_err());
        assert!(IfMatch::Versions(vec![3]).check(3).is_ok());
        assert_eq!(
            IfMatch::Versions(vec![3]).check(4).err().map(|e| e.code()),
            Some(ErrorCode::PreconditionFailed)
        );
        assert!(IfMatch::Absent.check(9).is_ok());
    }
}
