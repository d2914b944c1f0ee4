//! Webhooks: subscriptions to events (`crate::events`), delivered by a background worker,
//! signed (Standard Webhooks), one at a time and in event order per webhook, retried with
//! exponential backoff and jitter for `RAPPORT_WEBHOOK_RETRY_FOR`, disabled after that with
//! the reason kept, and replayable. Admins manage them at `/v1/webhooks`.

mod delivery;
mod json;
mod routes;
mod rules;
mod signature;
mod store;
mod target;

use chrono::Utc;
use diesel::QueryResult;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use crate::audit;
use crate::auth::Actor;
use crate::db::DbPool;
use crate::events::EventType;
use crate::http::error::ApiError;
use crate::http::etag::IfMatch;
use crate::journal::{self, Change};
use crate::secrets::SecretBox;

pub use delivery::{Sender, schedule};
pub use routes::configure;

use json::{Delivery, Webhook, WebhookPatch};
use store::{Definition, Outcome};

/// Refuses URLs of non-public addresses unless the operator allows them (422 on `url`).
async fn check_target(url: &str, allow_private: bool) -> Result<(), ApiError> {
    let parsed = target::parse(url).map_err(|m| ApiError::invalid_field("url", m))?;
    target::check(&parsed, allow_private)
        .await
        .map_err(|m| ApiError::invalid_field("url", m))
}

/// The webhook `id`, or `404`.
async fn find(conn: &mut AsyncPgConnection, id: Uuid) -> Result<store::Row, ApiError> {
    store::get(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// The webhook `id` locked for a change (inside the change's transaction), once `If-Match`
/// holds.
async fn lock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<store::Row, ApiError> {
    let row = store::lock(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    if_match.check(i64::from(row.version))?;
    Ok(row)
}

/// One delivery of the webhook, with its attempts, or `404`.
async fn one_delivery(
    conn: &mut AsyncPgConnection,
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

/// Creates a webhook from a checked definition once its URL's addresses pass, with a new
/// secret (sealed under the server key), audited as `webhook.created` (the secret redacted).
/// The answer holds the secret, the only time it is shown. No connection is held during the
/// address lookup.
async fn create(
    pool: &DbPool,
    keys: &SecretBox,
    allow_private: bool,
    actor: &Actor,
    definition: Definition,
) -> Result<Webhook, ApiError> {
    check_target(&definition.url, allow_private).await?;
    let secret = signature::new_secret().map_err(ApiError::internal)?;
    let id = Uuid::now_v7();
    let sealed = signature::seal(keys, id, &secret).map_err(ApiError::internal)?;
    let mut conn = pool.get().await?;
    let mut webhook = conn
        .transaction(async |conn| {
            let webhook = Webhook::from(store::insert(conn, id, &definition, &sealed).await?);
            let changes = audit::redacted(audit::created(&webhook), "secret");
            journal::record(
                conn,
                actor,
                Change::audited("webhook.created", "webhook", webhook.id, changes),
            )
            .await?;
            Ok::<_, ApiError>(webhook)
        })
        .await?;
    webhook.secret = Some(secret);
    Ok(webhook)
}

/// Applies a merge patch, audited as `webhook.updated`; nothing when it changes nothing.
/// Every field error comes at once, then a new URL's addresses are checked (a DNS lookup:
/// not while the row is locked). The patch is applied again to the row as locked, so a
/// concurrent change to other fields is kept.
async fn update(
    conn: &mut AsyncPgConnection,
    allow_private: bool,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    input: WebhookPatch,
) -> Result<Webhook, ApiError> {
    let current = find(conn, id).await?;
    let checked = rules::apply(&Definition::of(&current), input.clone())?;
    if checked.url != current.url {
        check_target(&checked.url, allow_private).await?;
    }
    conn.transaction(async |conn| {
        let before = lock(conn, id, if_match).await?;
        let next = rules::apply(&Definition::of(&before), input)?;
        if rules::changes_nothing(&before, &next) {
            return Ok(Webhook::from(before));
        }
        let after = Webhook::from(store::update(conn, id, &next).await?);
        let changes = audit::diff(&Webhook::from(before), &after);
        journal::record(
            conn,
            actor,
            Change::audited("webhook.updated", "webhook", id, changes),
        )
        .await?;
        Ok(after)
    })
    .await
}

/// Deletes a webhook with its delivery history, audited as `webhook.deleted`.
async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        lock(conn, id, if_match).await?;
        store::delete(conn, id).await?;
        journal::record(
            conn,
            actor,
            Change::audited("webhook.deleted", "webhook", id, json!({})),
        )
        .await?;
        Ok(())
    })
    .await
}

/// Gives a webhook a new secret (sealed under the server key), audited as
/// `webhook.secret_rotated` (the secret redacted); the old one keeps signing for `overlap`.
/// The answer holds the new secret, the only time it is shown.
async fn rotate_secret(
    conn: &mut AsyncPgConnection,
    keys: &SecretBox,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    overlap: Option<chrono::Duration>,
) -> Result<Webhook, ApiError> {
    let overlap_until = overlap.map(|overlap| Utc::now() + overlap);
    let secret = signature::new_secret().map_err(ApiError::internal)?;
    let sealed = signature::seal(keys, id, &secret).map_err(ApiError::internal)?;
    let mut webhook = conn
        .transaction(async |conn| {
            let before = lock(conn, id, if_match).await?;
            let after = Webhook::from(store::rotate(conn, id, &sealed, overlap_until).await?);
            let changes = audit::redacted(audit::diff(&Webhook::from(before), &after), "secret");
            journal::record(
                conn,
                actor,
                Change::audited("webhook.secret_rotated", "webhook", id, changes),
            )
            .await?;
            Ok::<_, ApiError>(after)
        })
        .await?;
    webhook.secret = Some(secret);
    Ok(webhook)
}

/// Sends a `webhook.ping` to the webhook now (also when it is inactive), signed like every
/// delivery and never retried, and records it as a delivery with its one attempt. The ping
/// is stored as an event of its own (the feed never serves it); no connection is held while
/// it is sent.
async fn ping(
    pool: &DbPool,
    keys: &SecretBox,
    sender: &Sender,
    id: Uuid,
) -> Result<Delivery, ApiError> {
    let mut conn = pool.get().await?;
    let webhook = find(&mut conn, id).await?;
    let event_id = Uuid::now_v7();
    crate::events::store::insert(
        &mut conn,
        vec![crate::events::store::NewRow {
            id: event_id,
            type_: EventType::WebhookPing.name(),
            object_type: EventType::WebhookPing.object(),
            object_id: id.to_string(),
            data: json!({"id": id, "url": webhook.url, "message": "ping"}),
            previous: None,
            request_id: crate::http::request_id::current(),
        }],
    )
    .await?;
    let event = crate::events::store::get(&mut conn, event_id)
        .await?
        .ok_or_else(|| ApiError::not_found("event"))?;
    drop(conn);
    let delivery_id = crate::db::partitions::beside(event_id);
    let secrets = webhook.signing_secrets(keys).map_err(ApiError::internal)?;
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let sent = sender
        .send(&webhook.url, &secrets, &event, delivery_id, 1)
        .await;
    let succeeded = sent.succeeded();
    let outcome = Outcome {
        attempted_at: sent.attempted_at,
        status_code: sent.status_code,
        latency_ms: sent.latency_ms,
        error: sent.error,
        status: if succeeded {
            json::DeliveryStatus::Succeeded
        } else {
            json::DeliveryStatus::Failed
        },
        next_attempt_at: None,
    };
    let mut conn = pool.get().await?;
    conn.transaction(async |conn| {
        store::insert_sent(conn, delivery_id, id, event_id, &outcome).await?;
        one_delivery(conn, id, delivery_id).await
    })
    .await
}

/// Queues a delivery's event again at the end of the webhook's queue, audited as
/// `webhook.delivery_replayed`; the new, pending delivery.
async fn replay(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    delivery: Uuid,
) -> Result<Delivery, ApiError> {
    conn.transaction(async |conn| {
        let replay = store::replay(conn, id, delivery)
            .await?
            .ok_or_else(|| ApiError::not_found("delivery"))?;
        journal::record(
            conn,
            actor,
            Change::audited(
                "webhook.delivery_replayed",
                "webhook",
                id,
                json!({"delivery": {"to": delivery}}),
            ),
        )
        .await?;
        one_delivery(conn, id, replay).await
    })
    .await
}

/// Turns a webhook off for a reason, with an audit entry; nothing when it was already off.
async fn disable(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    reason: &str,
    actor: &Actor,
) -> QueryResult<()> {
    if store::disable(conn, id, reason).await? {
        journal::record(
            conn,
            actor,
            Change::audited(
                "webhook.disabled",
                "webhook",
                id,
                json!({"active": {"from": true, "to": false}, "disabled_reason": {"to": reason}}),
            ),
        )
        .await?;
    }
    Ok(())
}
