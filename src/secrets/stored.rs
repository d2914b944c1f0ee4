//! The secrets the database keeps sealed, and the passes over them: at startup (seal what is
//! still in clear, check that everything opens under the configured keys) and
//! `rapport secrets reseal` (move everything to the current key).
//!
//! Webhook secrets (`webhooks.secret`, `webhooks.previous_secret`) are sealed for their
//! webhook (`webhooks:<id>`): a rotation moves the current secret to `previous_secret` as it
//! is. Signing keys (`signing_keys.secret`) are sealed for their `kid`.

use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use super::{Failure, SecretBox, store};

/// Where a webhook's secrets belong.
pub fn webhook_context(id: Uuid) -> String {
    format!("webhooks:{id}")
}

/// Where a signing key belongs.
pub fn signing_key_context(kid: &str) -> String {
    format!("signing_keys:{kid}")
}

/// What a pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Values sealed (from clear) or resealed (under the current key).
    pub sealed: usize,
    /// Values left as they were.
    pub unchanged: usize,
}

fn db(err: diesel::result::Error) -> String {
    format!("cannot read or write the stored secrets: {err}")
}

/// One value brought to its wanted form: sealed when in clear, resealed under the current
/// key when `reseal` and sealed under another; `None` when it stays. Errors name the keys.
fn bring(
    secrets: &SecretBox,
    value: &str,
    context: &str,
    reseal: bool,
) -> Result<Option<String>, String> {
    if !SecretBox::is_sealed(value) {
        return secrets.seal(value, context).map(Some);
    }
    let plain = secrets.open(value, context).map_err(|e| e.to_string())?;
    if reseal && SecretBox::sealed_by(value) != Some(secrets.key_id()) {
        return secrets.seal(&plain, context).map(Some);
    }
    Ok(None)
}

/// Seals what is in clear and checks that every stored secret opens (`reseal`: moves every
/// one to the current key), in one transaction: all or nothing.
pub async fn pass(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    reseal: bool,
) -> Result<Counts, String> {
    conn.transaction(async |conn| -> Result<_, Failure> {
        let mut counts = Counts::default();
        let hooks = store::lock_webhook_secrets(conn).await.map_err(db)?;
        for (id, secret, previous) in hooks {
            let context = webhook_context(id);
            let secret = bring(secrets, &secret, &context, reseal)?;
            let previous = match previous {
                Some(p) => bring(secrets, &p, &context, reseal)?,
                None => None,
            };
            if secret.is_none() && previous.is_none() {
                counts.unchanged += 1;
                continue;
            }
            counts.sealed += 1;
            store::set_webhook_secrets(conn, id, secret, previous)
                .await
                .map_err(db)?;
        }
        let keys = store::lock_signing_key_secrets(conn).await.map_err(db)?;
        for (kid, secret) in keys {
            match bring(secrets, &secret, &signing_key_context(&kid), reseal)? {
                Some(sealed) => {
                    counts.sealed += 1;
                    store::set_signing_key_secret(conn, &kid, &sealed)
                        .await
                        .map_err(db)?;
                }
                None => counts.unchanged += 1,
            }
        }
        Ok(counts)
    })
    .await
    .map_err(|f| f.0)
}
