use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, delete, get, patch, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    DeliveriesQuery, Delivery, NewWebhook, Rotation, Webhook, WebhookPatch, WebhooksQuery,
};
use super::{rules, store};
use crate::auth::{Principal, Scope};
use crate::http::error::{ApiError, Problem};
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

/// A response holding a secret: no cache may keep it, nor the idempotency store.
fn secret_response(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
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
    let definition = rules::validate_new(body.into_inner())?;
    let webhook = super::create(
        &state.pool,
        &state.secrets,
        state.settings.webhooks.allow_private,
        &principal.actor,
        definition,
    )
    .await?;
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
    let webhook = Webhook::from(super::find(&mut conn, *id).await?);
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
    let mut conn = state.pool.get().await?;
    let webhook = super::update(
        &mut conn,
        state.settings.webhooks.allow_private,
        &principal.actor,
        *id,
        &if_match,
        body.into_inner(),
    )
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
    let mut conn = state.pool.get().await?;
    super::delete(&mut conn, &principal.actor, *id, &if_match).await?;
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
    let overlap = rules::overlap(rotation.overlap_hours)?;
    let mut conn = state.pool.get().await?;
    let webhook = super::rotate_secret(
        &mut conn,
        &state.secrets,
        &principal.actor,
        id,
        &if_match,
        overlap,
    )
    .await?;
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
    let delivery = super::ping(&state.pool, &state.secrets, &state.webhooks, *id).await?;
    Ok(HttpResponse::Ok().json(delivery))
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
    super::find(&mut conn, *id).await?;
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
    Ok(HttpResponse::Ok().json(super::one_delivery(&mut conn, id, delivery).await?))
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
    let replay = super::replay(&mut conn, &principal.actor, id, delivery).await?;
    Ok(HttpResponse::Accepted().json(replay))
}
