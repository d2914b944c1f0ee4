//! JSON request bodies: the one extractor every handler uses instead of `web::Json`.
//!
//! It answers each way a body can be wrong with the right status: no JSON content type `415`,
//! over the limit `413`, not JSON at all `400`, JSON of the wrong shape (wrong type, missing or
//! unknown field) `422` naming the field by its dotted path.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ErrorCode, FieldError};

/// The largest request body accepted, in bytes; set from `RAPPORT_BODY_LIMIT`.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        BodyLimit(1024 * 1024)
    }
}

/// A JSON body deserialised into `T` (which should `deny_unknown_fields`).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(mime)) => {
            mime.subtype() == mime::JSON || mime.suffix().is_some_and(|s| s == mime::JSON)
        }
        _ => false,
    }
}

pub(crate) fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<BodyLimit>().copied().unwrap_or_default().0
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body exceeds the limit of {limit} bytes"),
    )
}

/// Reads a whole body, refusing as soon as it grows past `limit`.
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let encoded = req
        .headers()
        .get(actix_web::http::header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send JSON bodies uncompressed: only import files may be sent with \
             `Content-Encoding: gzip`",
        ));
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|err| {
            ApiError::new(
                ErrorCode::MalformedJson,
                format!("could not read the request body: {err}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The whole body of a request, under the same rules as every JSON body (the size limit,
/// no compression), for a handler that may take an empty one.
pub async fn raw_body(req: &HttpRequest, payload: Payload) -> Result<Bytes, ApiError> {
    read_body(req, payload, body_limit(req)).await
}

/// Parses a body, classifying serde's errors into `400` (syntax) and `422` (shape).
///
/// Two things JSON allows and PostgreSQL does not are refused here, for every body at once:
/// bytes that are not UTF-8 (`400`: RFC 8259 requires UTF-8; serde_json would let them pass
/// unchecked where it skips a value) and the NUL character, `\u0000`, in any string or key
/// (`422` naming it: `text` and `jsonb` cannot hold it).
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if let Err(err) = std::str::from_utf8(body) {
        return Err(ApiError::new(
            ErrorCode::MalformedJson,
            format!(
                "the body is not valid JSON: it is not UTF-8 (byte {} is not part of a character)",
                err.valid_up_to() + 1
            ),
        ));
    }
    refuse_nul(body)?;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let err = err.into_inner();
        // serde_json reports a number or array where a word (an enum) belongs as a syntax
        // error ("expected value"); well-formed JSON makes it a wrong value of that field.
        if err.classify() == serde_json::error::Category::Syntax && well_formed(body) {
            let field = field_of(&path, "");
            return ApiError::validation(vec![FieldError::new(
                field,
                "wrong type: expected one of the listed words (a string)",
            )]);
        }
        shape_error(&path, err)
    })?;
    de.end().map_err(|err| shape_error(".", err))?;
    Ok(value)
}

/// `422` naming the first string (or key) holding a NUL character, if any. A body can only
/// hold one as the escape `\u0000` (a raw control byte is a syntax error), so bodies without
/// that text are not looked into.
fn refuse_nul(body: &[u8]) -> Result<(), ApiError> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !body.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return Ok(());
    }
    // Malformed bodies are reported by the typed parse that follows.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    match nul_at(&value, String::new()) {
        Some(field) => Err(ApiError::validation(vec![FieldError::new(
            field,
            "must not contain the NUL character (\\u0000)",
        )])),
        None => Ok(()),
    }
}

/// The dotted path (`attributes.plan`, `tags[2]`) of the first string or key with a NUL.
fn nul_at(value: &serde_json::Value, path: String) -> Option<String> {
    let named = |path: &str| {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.to_owned()
        }
    };
    match value {
        serde_json::Value::String(s) if s.contains('\0') => Some(named(&path)),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_at(item, format!("{path}[{i}]"))),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let at = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            if key.contains('\0') {
                // The key cannot be shown as it is; name its parent.
                Some(named(&path))
            } else {
                nul_at(item, at)
            }
        }),
        _ => None,
    }
}

fn shape_error(path: &str, err: serde_json::Error) -> ApiError {
    let message = without_location(&err.to_string());
    match err.classify() {
        serde_json::error::Category::Data => {
            let field = field_of(path, &message);
            ApiError::validation(vec![FieldError::new(field, humanise(&message))])
        }
        _ if body_is_empty(&err) => ApiError::new(
            ErrorCode::MalformedJson,
            "the request body is empty; send a JSON object",
        ),
        _ => ApiError::new(
            ErrorCode::MalformedJson,
            format!(
                "the body is not valid JSON (line {}, column {}): {message}",
                err.line(),
                err.column()
            ),
        ),
    }
}

/// Whether the body is one well-formed JSON value (checked only once parsing failed).
fn well_formed(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

fn body_is_empty(err: &serde_json::Error) -> bool {
    err.is_eof() && err.line() == 1 && err.column() == 0
}

/// serde_json appends " at line L column C"; the location is reported separately.
fn without_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// The dotted path of the offending field. serde reports unknown and missing fields against
/// their parent, so the field name is taken from the message.
pub(crate) fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .find_map(|prefix| message.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    match (named, parent) {
        // serde_path_to_error already ends the path with an unknown field's name.
        (Some(name), parent) if parent == name || parent.ends_with(&format!(".{name}")) => {
            parent.to_owned()
        }
        (Some(name), "") => name.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "") => "body".to_owned(),
        (None, parent) => parent.to_owned(),
    }
}

/// serde's messages name Rust types ("expected struct CreateUser"); say JSON instead.
pub(crate) fn humanise(message: &str) -> String {
    if message.starts_with("unknown field") {
        return match message.split_once(", expected ") {
            Some((_, expected)) => {
                let allowed = expected
                    .trim_start_matches("one of ")
                    .replace(" or ", ", ")
                    .replace('`', "");
                format!("is not a known field; expected one of: {allowed}")
            }
            None => "is not a known field".to_owned(),
        };
    }
    if message.starts_with("missing field") {
        return "is required".to_owned();
    }
    if message.starts_with("duplicate field") {
        return "is given more than once".to_owned();
    }
    let mut text = message.to_owned();
    if let Some(at) = text.find("expected struct ") {
        text.replace_range(at.., "expected a JSON object");
    }
    text.replace("invalid type: ", "wrong type: ")
        .replace("expected a sequence", "expected an array")
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let payload = payload.take();
        Box::pin(async move {
            if !is_json(&req) {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as JSON with `Content-Type: application/json`",
                ));
            }
            let limit = body_limit(&req);
            let body = read_body(&req, payload, limit).await?;
            parse(&body).map(Json)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        city: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        name: String,
        age: Option<u8>,
        address: Option<Inner>,
    }

    fn err(body: &str) -> ApiError {
        match parse::<Outer>(body.as_bytes()) {
            Ok(v) => panic!("parsed {v:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn syntax_errors_are_400() {
        assert_eq!(err("{\"name\": ").code(), ErrorCode::MalformedJson);
        assert_eq!(err("").code(), ErrorCode::MalformedJson);
        assert_eq!(err("{\"name\":\"a\"} x").code(), ErrorCode::MalformedJson);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_400() {
        let e = match parse::<Outer>(b"{\"name\":\"a\xff\"}") {
            Ok(v) => panic!("parsed {v:?}"),
            Err(e) => e,
        };
        assert_eq!(e.code(), ErrorCode::MalformedJson);
    }

    #[test]
    fn nul_characters_are_422_naming_the_field() {
        let e = err(r#"{"name":"a\u0000b"}"#);
        assert_eq!(e.code(), ErrorCode::ValidationFailed);
        assert_eq!(e.errors()[0].field, "name");
        let e = err(r#"{"name":"a","address":{"city":"\u0000"}}"#);
        assert_eq!(e.errors()[0].field, "address.city");
        let e = err(r#"{"name":"a","address":{"ci\u0000ty":"x"}}"#);
        assert_eq!(e.errors()[0].field, "address");
        // An escaped backslash followed by "u0000" is no NUL.
        assert!(parse::<Outer>(br#"{"name":"a\\u0000"}"#).is_ok());
    }

    #[test]
    fn shape_errors_name_the_field() {
        let e = err(r#"{"name":"a","age":"x"}"#);
        assert_eq!(e.code(), ErrorCode::ValidationFailed);
        assert_eq!(e.errors()[0].field, "age");

        let e = err(r#"{"name":"a","address":{"city":1}}"#);
        assert_eq!(e.errors()[0].field, "address.city");

        let e = err(r#"{"name":"a","nick":"b"}"#);
        assert_eq!(e.errors()[0].field, "nick");
        assert!(e.errors()[0].message.contains("not a known field"));

        let e = err(r#"{"address":{"city":"x"}}"#);
        assert_eq!(e.errors()[0].field, "name");
        assert_eq!(e.errors()[0].message, "is required");

        let e = err(r#"{"name":"a","address":{"city":"x","zip":1}}"#);
        assert_eq!(e.errors()[0].field, "address.zip");

        let e = err("1");
        assert_eq!(e.errors()[0].field, "body");
        assert!(!e.errors()[0].message.contains("struct"));

        let e = err(r#"{"name":"a","age":300}"#);
        assert_eq!(e.errors()[0].field, "age");
    }
}
