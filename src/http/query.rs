//! Query strings: the one extractor every list and filter uses instead of `web::Query`.
//!
//! Query structs `deny_unknown_fields`, so a misspelt filter is a `400` naming it instead of a
//! silently unfiltered list; a bad value is a `400` naming its parameter.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode, FieldError};
use super::json::{field_of, humanise};

/// Query parameters deserialised into `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

/// Parses a query string into `T`, naming the offending parameter on failure.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = field_of(&path, &message);
        let message = match humanise(&message) {
            m if m.starts_with("is not a known field") => {
                m.replacen("is not a known field", "is not a known parameter", 1)
            }
            m if m.contains("invalid digit") || m.contains("number too large") => {
                "must be a whole number in range".to_owned()
            }
            m => m,
        };
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("query parameter `{field}` {message}"),
        )
        .with_errors(vec![FieldError::new(field, message)])
    })
}

/// Splits off the parameters named `<prefix><key>` (such as `attributes.plan=gold`), which a
/// struct cannot list, from the rest, which it parses as usual.
pub fn parse_with_prefixed<T: DeserializeOwned>(
    query: &str,
    prefix: &str,
) -> Result<(T, Vec<(String, String)>), ApiError> {
    let mut prefixed = Vec::new();
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.strip_prefix(prefix) {
            Some(key) => prefixed.push((key.to_owned(), value.into_owned())),
            None => {
                rest.append_pair(&name, &value);
            }
        }
    }
    Ok((parse(&rest.finish())?, prefixed))
}

/// A parameter holding several values separated by commas (`kind=note,complaint`), each
/// parsed as `T`; empty when the parameter is absent.
pub fn comma_list<T: std::str::FromStr<Err = String>>(
    field: &str,
    raw: Option<&str>,
) -> Result<Vec<T>, ApiError> {
    match raw {
        None => Ok(Vec::new()),
        Some(list) => list
            .split(',')
            .map(|s| s.trim().parse::<T>())
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(field, e)),
    }
}

/// A free-text parameter (`q`), trimmed, at most `max` characters.
pub fn search_text<'a>(
    field: &str,
    raw: Option<&'a str>,
    max: usize,
) -> Result<Option<&'a str>, ApiError> {
    match raw.map(str::trim) {
        None => Ok(None),
        Some(q) if q.chars().count() > max => {
            Err(invalid(field, format!("must be at most {max} characters")))
        }
        Some(q) => Ok(Some(q)),
    }
}

/// A `400 invalid_query` naming one parameter, for checks made after parsing.
pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    let message = message.into();
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("query parameter `{field}` {message}"),
    )
    .with_errors(vec![FieldError::new(field, message)])
}

/// A `currency` filter, checked as an ISO 4217 code.
pub fn currency(value: Option<&str>) -> Result<Option<String>, ApiError> {
    value
        .map(|c| crate::domain::currency_code(c).map_err(|e| invalid("currency", e)))
        .transpose()
}

/// A range filter given as `{prefix}_min` and `{prefix}_max` (each inclusive, optional),
/// checked against the scale `min..=max` and for order.
pub fn bounds(
    prefix: &str,
    low: Option<i16>,
    high: Option<i16>,
    (min, max): (i16, i16),
) -> Result<(Option<i16>, Option<i16>), ApiError> {
    for (end, value) in [("min", low), ("max", high)] {
        if value.is_some_and(|v| !(min..=max).contains(&v)) {
            return Err(invalid(
                &format!("{prefix}_{end}"),
                format!("must be from {min} to {max}"),
            ));
        }
    }
    if let (Some(l), Some(h)) = (low, high)
        && l > h
    {
        return Err(invalid(
            &format!("{prefix}_max"),
            format!("must not be below `{prefix}_min`"),
        ));
    }
    Ok((low, high))
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse(req.query_string()).map(Query))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        active: Option<bool>,
    }

    #[test]
    fn unknown_and_bad_parameters_are_named() {
        let e = parse::<Q>("limit=5&colour=red")
            .err()
            .map(|e| e.errors()[0].clone());
        assert_eq!(e.map(|e| e.field), Some("colour".to_owned()));
        let e = parse::<Q>("limit=abc").err().map(|e| e.errors()[0].clone());
        assert_eq!(e.map(|e| e.field), Some("limit".to_owned()));
        let e = parse::<Q>("active=maybe")
            .err()
            .map(|e| e.errors()[0].clone());
        assert_eq!(e.map(|e| e.field), Some("active".to_owned()));
        assert!(parse::<Q>("limit=5&active=true").is_ok());
        assert!(parse::<Q>("").is_ok());
    }
}
