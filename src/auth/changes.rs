//! Changes made elsewhere, in force here at once: every instance follows the notifications
//! the database sends on commit when a user, an API client, a revoked token, a service
//! token or a signing key changes (migration `change_notifications`), whichever path wrote
//! it, and forgets what it cached or reloads its keys.
//!
//! The listener holds one direct connection (`RAPPORT_DIRECT_DATABASE_URL`, else
//! `DATABASE_URL`): LISTEN needs a session, which a transaction-mode pooler does not keep.
//! When its connection is lost, changes elsewhere are in force here once the access cache's
//! entries expire (`RAPPORT_ACCESS_CACHE_TTL`) and keys reload every 30 s, until the
//! listener is back; it then forgets everything (it may have missed changes meanwhile).

use std::time::Duration;

use actix_web::web;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::StreamExt;

use super::Actor;
use crate::state::AppState;

/// Changes to who may call; the payload names the actor (its key) or `jti:<id>`.
pub const ACCESS: &str = "rapport_access";
/// Changes to the signing keys.
pub const KEYS: &str = "rapport_keys";

/// How long the listener waits before connecting again after it lost its connection.
const RETRY: Duration = Duration::from_secs(1);
/// How often the listener checks that its connection is alive between notifications.
const PROBE: Duration = Duration::from_secs(10);

/// Follows the notifications until the service stops, reconnecting when the connection is
/// lost.
pub async fn listen(state: web::Data<AppState>) {
    loop {
        if let Err(err) = follow(&state).await {
            tracing::warn!(error = %err, "lost the change notifications; reconnecting");
        }
        state.access.set_listening(false);
        if state.draining.sleep(RETRY).await {
            return;
        }
    }
}

async fn follow(state: &AppState) -> Result<(), String> {
    let database = &state.settings.database;
    let url = database.direct_url.as_ref().unwrap_or(&database.url);
    let mut conn = crate::db::connect(url, database.connect_timeout).await?;
    for channel in [ACCESS, KEYS] {
        diesel::sql_query(format!("LISTEN {channel}"))
            .execute(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    }
    // Whatever changed while nobody listened is forgotten or reloaded now.
    state.access.set_listening(true);
    reload_keys(state).await;
    loop {
        let next = {
            let mut notifications = std::pin::pin!(conn.notifications_stream());
            tokio::select! {
                next = notifications.next() => Some(next),
                () = tokio::time::sleep(PROBE) => None,
            }
        };
        match next {
            Some(Some(Ok(notification))) => {
                apply(state, &notification.channel, &notification.payload).await;
            }
            Some(Some(Err(err))) => return Err(err.to_string()),
            Some(None) => return Err("the connection closed".to_owned()),
            None => probe(&mut conn).await?,
        }
        if state.draining.started() {
            return Ok(());
        }
    }
}

/// Checks that the connection is alive (a silent network cut would leave the listener
/// waiting for ever).
async fn probe(conn: &mut AsyncPgConnection) -> Result<(), String> {
    diesel::sql_query("SELECT 1")
        .execute(conn)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// What one notification changes here.
async fn apply(state: &AppState, channel: &str, payload: &str) {
    match channel {
        ACCESS => match payload.strip_prefix("jti:") {
            Some(jti) => state.access.forget_token(jti),
            None => match Actor::from_key(payload) {
                Some(actor) => state.access.forget(&actor),
                // Unknown: forgetting everything is always safe.
                None => state.access.forget_all(),
            },
        },
        KEYS => reload_keys(state).await,
        _ => {}
    }
}

/// Reloads the signing keys from the database (when they are kept there): on a
/// notification, and every `jwt::REFRESH` in case one was lost.
pub async fn reload_keys(state: &AppState) {
    if !state.jwt.from_database() {
        return;
    }
    match state.jobs.get().await {
        Ok(mut conn) => {
            if let Err(err) = state.jwt.refresh(&mut conn).await {
                tracing::warn!(error = %err, "could not reload the signing keys");
            }
        }
        Err(err) => tracing::warn!(error = %err, "key reload found no connection"),
    }
}
