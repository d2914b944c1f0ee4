//! `Idempotency-Key` on `POST`, with Stripe's semantics, for every endpoint under `/v1`.
//!
//! - The first request with a key runs; if it succeeds (2xx) its response is kept 24 hours.
//! - The same key and the same request again: the kept response is replayed, marked
//!   `Idempotent-Replayed: true`, and nothing runs twice.
//! - The same key with another body (or endpoint): `422 idempotency_key_reused`.
//! - The same key while the first is still running: `409 idempotency_in_progress`.
//! - A request that fails (4xx, 5xx) wrote nothing, so its key is released: the caller may
//!   fix the request and retry with the same key.
//! - A response marked `Cache-Control: no-store` (one carrying a token or a secret) is never
//!   kept; its key is released too.
//!
//! Keys are scoped by caller, so two integrations cannot collide or read each other's answers.
//! If the process dies mid-request, the key is taken over by a retry after two minutes.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Bytea, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

use super::error::{ApiError, ErrorCode};
use super::json::{body_limit, read_body};
use crate::auth;
use crate::db::Prepare;
use crate::db::schema::idempotency_keys;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Response headers worth replaying.
const KEPT_HEADERS: [HeaderName; 3] = [header::CONTENT_TYPE, header::LOCATION, header::ETAG];

pub(crate) fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            ErrorCode::InvalidHeader,
            "Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is ideal)",
        ));
    }
    Ok(key.to_owned())
}

/// What the first request with a key left behind.
enum Begin {
    /// Nobody holds the key: this request runs.
    Run,
    /// A completed response to replay.
    Replay(Stored),
    Mismatch,
    InProgress,
}

struct Stored {
    status: i16,
    headers: serde_json::Value,
    body: Vec<u8>,
}

/// The record of a key someone else holds.
#[derive(Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct Held {
    request_hash: Vec<u8>,
    state: String,
    response_status: Option<i16>,
    response_headers: Option<serde_json::Value>,
    response_body: Option<Vec<u8>>,
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = Bool)]
    #[allow(dead_code)]
    claimed: bool,
}

/// Claims the key, or reports what holds it. An expired key (24 h) or an abandoned one
/// (in progress for two minutes, same request) is taken over.
async fn begin(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    hash: &[u8],
) -> QueryResult<Begin> {
    for _ in 0..3 {
        let claimed: Vec<Claimed> = diesel::sql_query(
            "INSERT INTO idempotency_keys (owner, key, request_hash, state) \
             VALUES ($1, $2, $3, 'in_progress') \
             ON CONFLICT (owner, key) DO UPDATE SET \
                 request_hash = EXCLUDED.request_hash, state = 'in_progress', \
                 response_status = NULL, response_headers = NULL, response_body = NULL, \
                 created_at = now(), locked_at = now() \
             WHERE idempotency_keys.created_at < now() - interval '24 hours' \
                OR (idempotency_keys.state = 'in_progress' \
                    AND idempotency_keys.locked_at < now() - interval '2 minutes' \
                    AND idempotency_keys.request_hash = EXCLUDED.request_hash) \
             RETURNING true AS claimed",
        )
        .bind::<Text, _>(owner)
        .bind::<Text, _>(key)
        .bind::<Bytea, _>(hash)
        .prepared()
        .load(conn)
        .await?;
        if !claimed.is_empty() {
            return Ok(Begin::Run);
        }
        let held = idempotency_keys::table
            .find((owner, key))
            .select(Held::as_select())
            .first(conn)
            .await
            .optional()?;
        // Released between the two statements: try to claim it again.
        let Some(held) = held else {
            continue;
        };
        if held.request_hash != hash {
            return Ok(Begin::Mismatch);
        }
        return Ok(match (held.state.as_str(), held.response_status) {
            ("completed", Some(status)) => Begin::Replay(Stored {
                status,
                headers: held.response_headers.unwrap_or_default(),
                body: held.response_body.unwrap_or_default(),
            }),
            _ => Begin::InProgress,
        });
    }
    Ok(Begin::InProgress)
}

async fn complete(
    conn: &mut AsyncPgConnection,
    owner: &str,
    key: &str,
    stored: &Stored,
) -> QueryResult<()> {
    diesel::update(idempotency_keys::table.find((owner, key)))
        .set((
            idempotency_keys::state.eq("completed"),
            idempotency_keys::response_status.eq(stored.status),
            idempotency_keys::response_headers.eq(&stored.headers),
            idempotency_keys::response_body.eq(&stored.body),
        ))
        .execute(conn)
        .await
        .map(drop)
}

async fn release(conn: &mut AsyncPgConnection, owner: &str, key: &str) -> QueryResult<()> {
    diesel::delete(
        idempotency_keys::table
            .find((owner, key))
            .filter(idempotency_keys::state.eq("in_progress")),
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Drops kept responses that mention `text` (an erased customer's id), so that no replay can
/// bring their personal data back.
pub async fn forget_responses_mentioning(
    conn: &mut AsyncPgConnection,
    text: &str,
) -> QueryResult<()> {
    diesel::sql_query(
        "DELETE FROM idempotency_keys WHERE position(convert_to($1, 'UTF8') IN response_body) > 0",
    )
    .bind::<Text, _>(text)
    .prepared()
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes keys older than 24 hours; run periodically.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::sql_query("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
        .prepared()
        .execute(conn)
        .await
}

/// What makes two requests "the same" for a key: method, path, query and body.
pub fn fingerprint(method: &str, path: &str, query: &str, body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"?");
    hasher.update(query.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hasher.finalize().to_vec()
}

fn replay(stored: Stored) -> HttpResponse {
    let status = u16::try_from(stored.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut builder = HttpResponse::build(status);
    if let serde_json::Value::Array(pairs) = stored.headers {
        for pair in pairs {
            if let (Some(name), Some(value)) = (pair[0].as_str(), pair[1].as_str()) {
                builder.insert_header((name, value));
            }
        }
    }
    builder.insert_header((REPLAYED, "true"));
    builder.body(stored.body)
}

fn error(req: ServiceRequest, err: ApiError) -> ServiceResponse<BoxBody> {
    req.into_response(err.error_response())
}

/// Applies the key's semantics around the handler.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let Some(value) = req.headers().get(&IDEMPOTENCY_KEY).cloned() else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    // Imports stream their bodies and keep their keys on the import itself.
    if req.method() != Method::POST || req.path().starts_with("/v1/imports/") {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let key = match parse_key(&value) {
        Ok(key) => key,
        Err(err) => return Ok(error(req, err)),
    };
    // Unauthenticated requests run as they are and fail in their handler.
    let Ok(principal) = auth::authenticate(req.request()).await else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(error(req, ApiError::internal("application state missing")));
    };
    let owner = principal.actor.key();

    let (http_req, payload) = req.into_parts();
    let limit = body_limit(&http_req);
    let body = match read_body(&http_req, payload, limit).await {
        Ok(body) => body,
        Err(err) => return Ok(ServiceResponse::new(http_req, err.error_response())),
    };
    let req = ServiceRequest::from_parts(http_req, actix_web::dev::Payload::from(body.clone()));
    let hash = fingerprint(req.method().as_str(), req.path(), req.query_string(), &body);

    let begun = match state.pool.get().await {
        Ok(mut conn) => begin(&mut conn, &owner, &key, &hash)
            .await
            .map_err(ApiError::from),
        Err(err) => Err(ApiError::from(err)),
    };
    match begun {
        Ok(Begin::Run) => {}
        Ok(Begin::Replay(stored)) => return Ok(req.into_response(replay(stored))),
        Ok(Begin::Mismatch) => {
            return Ok(error(
                req,
                ApiError::new(
                    ErrorCode::IdempotencyKeyReused,
                    "this Idempotency-Key was first used with another request; use a new key for a new request",
                ),
            ));
        }
        Ok(Begin::InProgress) => {
            return Ok(error(req, ApiError::new(
                ErrorCode::IdempotencyInProgress,
                "the first request with this Idempotency-Key has not finished; retry in a moment",
            ).with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))));
        }
        Err(err) => return Ok(error(req, err)),
    }

    let res = next.call(req).await;
    let keep = match &res {
        Ok(res) => {
            let no_store = res
                .headers()
                .get(header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.contains("no-store"));
            res.status().is_success() && !no_store
        }
        Err(_) => false,
    };
    if !keep {
        if let Ok(mut conn) = state.pool.get().await
            && let Err(err) = release(&mut conn, &owner, &key).await
        {
            tracing::warn!(error = %err, "could not release an idempotency key");
        }
        return res.map(ServiceResponse::map_into_boxed_body);
    }
    let res = res?;
    let (http_req, response) = res.into_parts();
    let status = response.status();
    let headers: Vec<serde_json::Value> = KEPT_HEADERS
        .iter()
        .filter_map(|name| {
            let value = response.headers().get(name)?.to_str().ok()?;
            Some(serde_json::json!([name.as_str(), value]))
        })
        .collect();
    let (response, body) = response.into_parts();
    let bytes = match body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let err = ApiError::internal("could not buffer a response for its idempotency key");
            return Ok(ServiceResponse::new(http_req, err.error_response()));
        }
    };
    let stored = Stored {
        status: i16::try_from(status.as_u16()).unwrap_or(200),
        headers: serde_json::Value::Array(headers),
        body: bytes.to_vec(),
    };
    match state.pool.get().await {
        Ok(mut conn) => {
            if let Err(err) = complete(&mut conn, &owner, &key, &stored).await {
                tracing::warn!(error = %err, "could not store an idempotent response");
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not store an idempotent response"),
    }
    let response = response.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(http_req, response))
}
