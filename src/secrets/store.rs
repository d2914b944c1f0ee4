//! The sealed secrets' columns, read and written by the passes of `stored.rs`.

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::{signing_keys, webhooks};

/// Every webhook's id, secret and previous secret, locked, in id order.
pub async fn lock_webhook_secrets(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(Uuid, String, Option<String>)>> {
    webhooks::table
        .select((webhooks::id, webhooks::secret, webhooks::previous_secret))
        .order(webhooks::id)
        .for_update()
        .load(conn)
        .await
}

/// Writes the webhook's secrets given; `None` leaves one as it is.
pub async fn set_webhook_secrets(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    secret: Option<String>,
    previous: Option<String>,
) -> QueryResult<()> {
    if let Some(secret) = secret {
        diesel::update(webhooks::table.find(id))
            .set(webhooks::secret.eq(secret))
            .execute(conn)
            .await?;
    }
    if let Some(previous) = previous {
        diesel::update(webhooks::table.find(id))
            .set(webhooks::previous_secret.eq(previous))
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Every signing key's id and sealed material, locked, in id order.
pub async fn lock_signing_key_secrets(
    conn: &mut AsyncPgConnection,
) -> QueryResult<Vec<(String, String)>> {
    signing_keys::table
        .select((signing_keys::kid, signing_keys::secret))
        .order(signing_keys::kid)
        .for_update()
        .load(conn)
        .await
}

pub async fn set_signing_key_secret(
    conn: &mut AsyncPgConnection,
    kid: &str,
    sealed: &str,
) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(kid))
        .set(signing_keys::secret.eq(sealed))
        .execute(conn)
        .await
        .map(drop)
}
