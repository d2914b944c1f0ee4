use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::Utc;
use diesel_async::AsyncConnection;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    DeliveriesQuery, Delivery, NewWebhook, Rotation, Webhook, WebhookPatch, WebhooksQuery,
};
use super::store::{self, Definition, Outcome};
use super::{signature, target};
use crate::audit;
use crate::auth::{Principal, Scope};
use crate::events::EventType;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::{self, Json};
use crate::http::pagination::{self, Page};
use crate::http::query::Query;
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_webhook)
        .service(list_webhooks)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(rotate_secret)
        .service(test_webhook)
        .service(list_deliveries)
        .service(get_delivery)
        .service(replay_delivery);
}

/// Refuses URLs of non-public addresses unless the operator allows them (422 on `url`).
async fn check_target(state: &AppState, url: &str) -> Result<(), ApiError> {
    let parsed = target::parse(url).map_err(|m| field_error("url", m))?;
    target::check(&parsed, state.settings.webhooks.allow_private)
        .await
        .map_err(|m| field_error("url", m))
}

fn field_error(field: &str, message: String) -> ApiError {
    ApiError::validation(vec![FieldError::new(field, message)])
}

/// A response holding a secret: no cache may keep it, nor the idempotency store.
fn secret_response(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn find(
    conn: &mut diesel_async::AsyncPgConnection,
    id: Uuid,
) -> Result<store::Row, ApiError> {
    store::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Create a webhook.
///
/// Events of the chosen types (all by default) that match `filter` are POSTed to `url` from
/// now on, as JSON `Event` objects. The answer holds `secret`, shown this once: every request
/// is signed with it as the Standard Webhooks specification defines (libraries exist for most
/// languages), so the receiver can check that the request comes from Rapport, unaltered and
/// recent:
///
/// - headers `webhook-id` (the event id, the same on retries and replays: drop duplicates by
///   it), `webhook-timestamp` (Unix seconds: refuse requests older than five minutes) and
///   `webhook-signature` (`v1,<base64>`; several, space-separated, during a secret rotation:
///   accept the request if any one matches);
/// - the signature is base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`,
///   keyed with the base64-decoded part of the secret after `whsec_`. Check it on the raw
///   body, before parsing it. With openssl:
///
/// ```sh
/// key=$(printf %s "${SECRET#whsec_}" | base64 -d | od -An -tx1 | tr -d ' \n')
/// printf '%s.%s.%s' "$ID" "$TS" "$BODY" \
///   | openssl dgst -sha256 -mac HMAC -macopt hexkey:$key -binary | base64
/// ```
///
/// Answer with any 2xx within `RAPPORT_WEBHOOK_TIMEOUT` (10 s) to acknowledge. Anything else
/// (or no answer) is retried with exponential backoff and jitter: 30 s, 1 min, 2 min, … up to
/// 1 h apart, for 24 h; then the delivery fails and the webhook is disabled with the reason.
/// `410 Gone` disables it at once. Redirects are not followed. Each webhook receives its
/// events one at a time, in the order they committed: a failing event holds back the ones
/// after it until it succeeds or fails for good.
///
/// The URL must be `https://` or `http://` on a public address: loopback, private and
/// link-local addresses are refused (422) unless the operator set
/// `RAPPORT_WEBHOOK_ALLOW_PRIVATE`. The check is repeated at every delivery. Needs
/// `webhooks:manage` (admins).
#[utoipa::path(
    tag = "Webhooks",
    request_body = NewWebhook,
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 201, description = "The webhook, with its secret (shown only now)", body = Webhook,
            headers(("Location" = String, description = "URL of the new webhook"))),
        (status = 422, description = "A field is invalid, or the URL points to a non-public address",
            body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks")]
async fn create_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    body: Json<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let definition = super::create(body.into_inner())?;
    check_target(&state, &definition.url).await?;
    let secret = signature::new_secret().map_err(ApiError::internal)?;
    let id = Uuid::now_v7();
    let sealed = signature::seal(&state.secrets, id, &secret).map_err(ApiError::internal)?;
    let mut conn = state.pool.get().await?;
    let mut webhook = conn
        .transaction(async |conn| {
            let webhook = Webhook::from(store::insert(conn, id, &definition, &sealed).await?);
            let changes = audit::redacted(audit::created(&webhook), "secret");
            audit::record(
                conn,
                &principal.actor,
                "webhook.created",
                "webhook",
                &webhook.id.to_string(),
                changes,
            )
            .await?;
            Ok::<_, ApiError>(webhook)
        })
        .await?;
    webhook.secret = Some(secret);
    let location = format!("/v1/webhooks/{}", webhook.id);
    Ok(secret_response(response::created(
        &location,
        webhook.version,
        &webhook,
    )))
}

/// List webhooks.
#[utoipa::path(
    tag = "Webhooks",
    params(WebhooksQuery),
    security(("bearer" = ["webhooks:manage"])),
    responses((status = 200, description = "A page of webhooks, oldest first", body = Page<Webhook>))
)]
#[get("/webhooks")]
async fn list_webhooks(
    state: web::Data<AppState>,
    principal: Principal,
    query: Query<WebhooksQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let filter = query.into_inner();
    let page = pagination::request::<Uuid>(filter.limit, filter.cursor.as_deref(), "id")?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, filter.active, page.after, page.fetch()).await?;
    let webhooks: Vec<Webhook> = rows.into_iter().map(Webhook::from).collect();
    Ok(HttpResponse::Ok().json(pagination::page(webhooks, &page, "id", |w| w.id)))
}

/// Get a webhook (never its secret).
#[utoipa::path(
    tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The webhook", body = Webhook,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks/{id}")]
async fn get_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let mut conn = state.pool.get().await?;
    let webhook = Webhook::from(find(&mut conn, *id).await?);
    Ok(response::versioned(webhook.version, &webhook))
}

/// Change a webhook.
///
/// A JSON merge patch. `active: true` turns delivery back on, also after an automatic
/// disabling (the reason is cleared): the events queued meanwhile are then delivered, in
/// order. A new URL is checked as on creation.
#[utoipa::path(
    tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), IfMatchHeader),
    request_body = WebhookPatch,
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The changed webhook", body = Webhook),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` names another version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A field is invalid", body = Problem, content_type = "application/problem+json"),
    )
)]
#[patch("/webhooks/{id}")]
async fn update_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<WebhookPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let id = *id;
    let input = body.into_inner();
    let mut conn = state.pool.get().await?;
    // Every field error at once, then a new URL's addresses (a DNS lookup: not while the row
    // is locked). The patch is applied to the row as locked below, so a concurrent change to
    // other fields is kept.
    let current = find(&mut conn, id).await?;
    let checked = super::change(&Definition::of(&current), input.clone())?;
    if checked.url != current.url {
        check_target(&state, &checked.url).await?;
    }
    let webhook = conn
        .transaction(async |conn| {
            let before = store::lock(conn, id)
                .await?
                .ok_or_else(|| ApiError::not_found("webhook"))?;
            if_match.check(i64::from(before.version))?;
            let next = super::change(&Definition::of(&before), input)?;
            let reenabling = next.active && before.disabled_reason.is_some();
            if Definition::of(&before) == next && !reenabling {
                return Ok(Webhook::from(before));
            }
            let after = Webhook::from(store::update(conn, id, &next).await?);
            let changes = audit::diff(&Webhook::from(before), &after);
            audit::record(
                conn,
                &principal.actor,
                "webhook.updated",
                "webhook",
                &id.to_string(),
                changes,
            )
            .await?;
            Ok::<_, ApiError>(after)
        })
        .await?;
    Ok(response::versioned(webhook.version, &webhook))
}

/// Delete a webhook, with its delivery history.
#[utoipa::path(
    tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), IfMatchHeader),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/webhooks/{id}")]
async fn delete_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let id = *id;
    let mut conn = state.pool.get().await?;
    conn.transaction(async |conn| {
        let before = store::lock(conn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook"))?;
        if_match.check(i64::from(before.version))?;
        store::delete(conn, id).await?;
        audit::record(
            conn,
            &principal.actor,
            "webhook.deleted",
            "webhook",
            &id.to_string(),
            serde_json::json!({}),
        )
        .await?;
        Ok::<_, ApiError>(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook's secret.
///
/// A new secret signs from now on; the answer shows it, this once. For `overlap_hours` (24
/// by default, 0 to drop the old one at once) the old secret signs too: each request then
/// carries two signatures, and receivers accept it when either matches, so they can switch
/// secrets without losing a request. The body may be empty.
#[utoipa::path(
    tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), IfMatchHeader),
    request_body(content = Option<Rotation>, description = "Optional"),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The webhook with its new secret", body = Webhook),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`overlap_hours` out of range", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let body = json::raw_body(&req, payload.into_inner()).await?;
    let id = *id;
    let rotation: Rotation = if body.iter().all(u8::is_ascii_whitespace) {
        Rotation::default()
    } else {
        json::parse(&body)?
    };
    let hours = rotation.overlap_hours.unwrap_or(24);
    if !(0..=168).contains(&hours) {
        return Err(field_error(
            "overlap_hours",
            "must be from 0 to 168".to_owned(),
        ));
    }
    let overlap_until = (hours > 0).then(|| Utc::now() + chrono::Duration::hours(hours));
    let secret = signature::new_secret().map_err(ApiError::internal)?;
    let sealed = signature::seal(&state.secrets, id, &secret).map_err(ApiError::internal)?;
    let mut conn = state.pool.get().await?;
    let mut webhook = conn
        .transaction(async |conn| {
            let before = store::lock(conn, id)
                .await?
                .ok_or_else(|| ApiError::not_found("webhook"))?;
            if_match.check(i64::from(before.version))?;
            let after = Webhook::from(store::rotate(conn, id, &sealed, overlap_until).await?);
            let changes = audit::redacted(audit::diff(&Webhook::from(before), &after), "secret");
            audit::record(
                conn,
                &principal.actor,
                "webhook.secret_rotated",
                "webhook",
                &id.to_string(),
                changes,
            )
            .await?;
            Ok::<_, ApiError>(after)
        })
        .await?;
    webhook.secret = Some(secret);
    Ok(secret_response(response::versioned(
        webhook.version,
        &webhook,
    )))
}

/// Send a test ping.
///
/// Sends a `webhook.ping` event to the webhook now (also when it is inactive), signed like
/// every delivery, and answers with the delivery and its one attempt: the status your
/// endpoint answered, the latency, or what went wrong. A ping is not retried and not in the
/// feed.
#[utoipa::path(
    tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Webhook id")),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The ping's delivery, succeeded or failed", body = Delivery),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/test")]
async fn test_webhook(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let id = *id;
    let mut conn = state.pool.get().await?;
    let webhook = find(&mut conn, id).await?;
    let event_id = Uuid::now_v7();
    crate::events::store::insert(
        &mut conn,
        vec![crate::events::store::NewRow {
            id: event_id,
            type_: EventType::WebhookPing.name(),
            object_type: EventType::WebhookPing.object(),
            object_id: id.to_string(),
            data: serde_json::json!({"id": id, "url": webhook.url, "message": "ping"}),
            previous: None,
            request_id: crate::http::request_id::current(),
        }],
    )
    .await?;
    let event = crate::events::store::get(&mut conn, event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    drop(conn);
    let delivery_id = Uuid::now_v7();
    let secrets = webhook
        .signing_secrets(&state.secrets)
        .map_err(ApiError::internal)?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let sent = state
        .webhooks
        .send(&webhook.url, &secrets, &event, delivery_id, 1)
        .await;
    let succeeded = sent.succeeded();
    let outcome = Outcome {
        attempted_at: sent.attempted_at,
        status_code: sent.status_code,
        latency_ms: sent.latency_ms,
        error: sent.error,
        status: if succeeded {
            super::json::DeliveryStatus::Succeeded
        } else {
            super::json::DeliveryStatus::Failed
        },
        next_attempt_at: None,
    };
    let mut conn = state.pool.get().await?;
    let delivery = conn
        .transaction(async |conn| {
            store::insert_sent(conn, delivery_id, id, event_id, &outcome).await?;
            one_delivery(conn, id, delivery_id).await
        })
        .await?;
    Ok(HttpResponse::Ok().json(delivery))
}

async fn one_delivery(
    conn: &mut diesel_async::AsyncPgConnection,
    webhook: Uuid,
    delivery: Uuid,
) -> Result<Delivery, ApiError> {
    store::deliveries(conn, webhook, None, None, Some(delivery), None, 1)
        .await?
        .into_iter()
        .next()
        .map(|(d, _)| d)
        .ok_or_else(|| ApiError::not_found("delivery"))
}

const DELIVERY_ORDER: &str = "-seq";

/// List a webhook's deliveries.
///
/// Newest first, each with its state, the next retry when pending, and every attempt (time,
/// status code, latency, error).
#[utoipa::path(
    tag = "Webhooks",
    params(("id" = Uuid, Path, description = "Webhook id"), DeliveriesQuery),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "A page of deliveries", body = Page<Delivery>),
        (status = 404, description = "No such webhook", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks/{id}/deliveries")]
async fn list_deliveries(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    query: Query<DeliveriesQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let filter = query.into_inner();
    let page = pagination::request::<i64>(filter.limit, filter.cursor.as_deref(), DELIVERY_ORDER)?;
    let mut conn = state.pool.get().await?;
    find(&mut conn, *id).await?;
    let rows = store::deliveries(
        &mut conn,
        *id,
        filter.status,
        filter.event_id,
        None,
        page.after,
        page.fetch(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(pagination::page_keyed(rows, &page, DELIVERY_ORDER)))
}

/// Get one delivery with its attempts.
#[utoipa::path(
    tag = "Webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery_id" = Uuid, Path, description = "Delivery id"),
    ),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 200, description = "The delivery", body = Delivery),
        (status = 404, description = "No such webhook or delivery", body = Problem, content_type = "application/problem+json"),
    )
)]
#[get("/webhooks/{id}/deliveries/{delivery_id}")]
async fn get_delivery(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let (id, delivery) = path.into_inner();
    let mut conn = state.pool.get().await?;
    Ok(HttpResponse::Ok().json(one_delivery(&mut conn, id, delivery).await?))
}

/// Replay a delivery.
///
/// Queues the delivery's event again, at the end of the webhook's queue, whatever became of
/// the first delivery. The replay carries the same event (and `webhook-id`) with fresh
/// signatures. A disabled webhook's replays wait until it is active again.
#[utoipa::path(
    tag = "Webhooks",
    params(
        ("id" = Uuid, Path, description = "Webhook id"),
        ("delivery_id" = Uuid, Path, description = "Delivery to replay"),
    ),
    security(("bearer" = ["webhooks:manage"])),
    responses(
        (status = 202, description = "The new, pending delivery", body = Delivery),
        (status = 404, description = "No such webhook or delivery", body = Problem, content_type = "application/problem+json"),
    )
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/replay")]
async fn replay_delivery(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::WebhooksManage)?;
    let (id, delivery) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let replay = conn
        .transaction(async |conn| {
            let replay = store::replay(conn, id, delivery)
                .await?
                .ok_or_else(|| ApiError::not_found("delivery"))?;
            audit::record(
                conn,
                &principal.actor,
                "webhook.delivery_replayed",
                "webhook",
                &id.to_string(),
                serde_json::json!({"delivery": {"to": delivery}}),
            )
            .await?;
            one_delivery(conn, id, replay).await
        })
        .await?;
    Ok(HttpResponse::Accepted().json(replay))
}
