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
//! A running request holds its key under a lease (`RAPPORT_IDEMPOTENCY_LEASE`) that it renews
//! every third of the lease for as long as its handler runs, however slow: a retry is a `409`
//! and never a second execution. Only when the lease lapses, because the instance running the
//! request died, may a retry of the same request take the key over.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse, ResponseError, web};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Bytea, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::caller::Caller;
use super::error::{ApiError, ErrorCode};
use super::json::{body_limit, read_body};
use crate::db::Prepare;
use crate::db::schema::idempotency_keys;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

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

/// The run holding a key: who it is and how long it holds it without renewing.
#[derive(Debug, Clone)]
struct Lease {
    owner: String,
    key: String,
    holder: Uuid,
    length: std::time::Duration,
}

impl Lease {
    fn millis(&self) -> i64 {
        i64::try_from(self.length.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Claims the key under `lease`, or reports what holds it. An expired key (24 h) or an
/// abandoned one (its lease lapsed: the instance running it died; same request) is taken over.
async fn begin(conn: &mut AsyncPgConnection, lease: &Lease, hash: &[u8]) -> QueryResult<Begin> {
    let (owner, key) = (lease.owner.as_str(), lease.key.as_str());
    for _ in 0..3 {
        let claimed: Vec<Claimed> = diesel::sql_query(
            "INSERT INTO idempotency_keys \
                 (owner, key, request_hash, state, lease_until, lease_holder) \
             VALUES ($1, $2, $3, 'in_progress', \
                 now() + $4 * interval '1 millisecond', $5) \
             ON CONFLICT (owner, key) DO UPDATE SET \
                 request_hash = EXCLUDED.request_hash, state = 'in_progress', \
                 response_status = NULL, response_headers = NULL, response_body = NULL, \
                 created_at = now(), locked_at = now(), \
                 lease_until = EXCLUDED.lease_until, lease_holder = EXCLUDED.lease_holder \
             WHERE idempotency_keys.created_at < now() - interval '24 hours' \
                OR (idempotency_keys.state = 'in_progress' \
                    AND idempotency_keys.lease_until < now() \
                    AND idempotency_keys.request_hash = EXCLUDED.request_hash) \
             RETURNING true AS claimed",
        )
        .bind::<Text, _>(owner)
        .bind::<Text, _>(key)
        .bind::<Bytea, _>(hash)
        .bind::<BigInt, _>(lease.millis())
        .bind::<SqlUuid, _>(lease.holder)
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

/// Extends the lease of a key this run still holds; false when it holds it no more (the
/// request ended, or it was paused past its lease and another run took the key over).
async fn renew(conn: &mut AsyncPgConnection, lease: &Lease) -> QueryResult<bool> {
    diesel::sql_query(
        "UPDATE idempotency_keys SET lease_until = now() + $4 * interval '1 millisecond' \
         WHERE owner = $1 AND key = $2 AND lease_holder = $3 AND state = 'in_progress'",
    )
    .bind::<Text, _>(&lease.owner)
    .bind::<Text, _>(&lease.key)
    .bind::<SqlUuid, _>(lease.holder)
    .bind::<BigInt, _>(lease.millis())
    .prepared()
    .execute(conn)
    .await
    .map(|renewed| renewed > 0)
}

/// Renews `lease` every third of its length until `stop` is signalled (or dropped), so that
/// a request running longer than its lease keeps its key.
async fn keep_renewing(
    pool: crate::db::DbPool,
    lease: Lease,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let every = lease.length / 3;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut stop => return,
        }
        let renewed = match pool.get().await {
            Ok(mut conn) => renew(&mut conn, &lease).await.map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match renewed {
            Ok(true) => {}
            Ok(false) => return,
            // The next round tries again; the lease is three rounds long.
            Err(err) => tracing::warn!(error = %err, "could not renew an idempotency key's lease"),
        }
    }
}

async fn complete(conn: &mut AsyncPgConnection, lease: &Lease, stored: &Stored) -> QueryResult<()> {
    diesel::update(
        idempotency_keys::table
            .find((&lease.owner, &lease.key))
            .filter(idempotency_keys::lease_holder.eq(lease.holder)),
    )
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

async fn release(conn: &mut AsyncPgConnection, lease: &Lease) -> QueryResult<()> {
    diesel::delete(
        idempotency_keys::table
            .find((&lease.owner, &lease.key))
            .filter(idempotency_keys::state.eq("in_progress"))
            .filter(idempotency_keys::lease_holder.eq(lease.holder)),
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
    super::response::replayed(builder.body(stored.body))
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
    let Some(caller) = Caller::of(&req) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(error(req, ApiError::internal("application state missing")));
    };
    let owner = caller.key;

    let (http_req, payload) = req.into_parts();
    let limit = body_limit(&http_req);
    let body = match read_body(&http_req, payload, limit).await {
        Ok(body) => body,
        Err(err) => return Ok(ServiceResponse::new(http_req, err.error_response())),
    };
    let req = ServiceRequest::from_parts(http_req, actix_web::dev::Payload::from(body.clone()));
    let hash = fingerprint(req.method().as_str(), req.path(), req.query_string(), &body);

    let lease = Lease {
        owner,
        key,
        holder: Uuid::now_v7(),
        length: state.settings.idempotency_lease,
    };
    let begun = match state.pool.get().await {
        Ok(mut conn) => begin(&mut conn, &lease, &hash)
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

    // Renewed until the response is kept or the key released: the sender lives to the end of
    // this function, and dropping it (on any return, or when a disconnected client's request
    // is dropped) stops the renewals.
    let (_renewing, stop) = tokio::sync::oneshot::channel::<()>();
    actix_web::rt::spawn(keep_renewing(state.pool.clone(), lease.clone(), stop));
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
            && let Err(err) = release(&mut conn, &lease).await
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
            if let Err(err) = complete(&mut conn, &lease, &stored).await {
                tracing::warn!(error = %err, "could not store an idempotent response");
            }
        }
        Err(err) => tracing::warn!(error = %err, "could not store an idempotent response"),
    }
    let response = response.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(http_req, response))
}
