//! The signing keys kept in the database (`signing_keys`), each sealed under the server key:
//! generating the first, moving in the key from before key ids, rotating, retiring, listing.
//! Changes run under one advisory lock, so concurrent starts and CLI runs agree. The SQL
//! is in `store.rs`.

mod store;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use jsonwebtoken::{DecodingKey, EncodingKey};
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub use store::KeyInfo;

use crate::secrets::stored::signing_key_context;
use crate::secrets::{Failure, SecretBox};

/// How often each instance reloads the key ring, so that all sign with a new key soon after
/// a rotation (and stop accepting a retired one).
pub const REFRESH: Duration = Duration::from_secs(30);

/// One key of the ring, ready to sign and verify.
pub struct SigningKey {
    pub kid: String,
    pub(super) encoding: EncodingKey,
    pub(super) decoding: DecodingKey,
    /// Takes tokens without `kid` (the key from before key ids).
    pub legacy: bool,
    /// Until when it signs; `None`: for as long as it is the newest.
    pub signs_until: Option<DateTime<Utc>>,
    /// Until when its tokens are accepted; `None`: for as long as it signs.
    pub verifies_until: Option<DateTime<Utc>>,
}

impl SigningKey {
    pub fn new(
        kid: String,
        secret: &[u8],
        legacy: bool,
        signs_until: Option<DateTime<Utc>>,
        verifies_until: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            kid,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            legacy,
            signs_until,
            verifies_until,
        }
    }

    pub(super) fn signs(&self, now: DateTime<Utc>) -> bool {
        self.signs_until.is_none_or(|until| until > now) && self.verifies(now)
    }

    pub(super) fn verifies(&self, now: DateTime<Utc>) -> bool {
        self.verifies_until.is_none_or(|until| until > now)
    }
}

/// Where the key generated before key ids was kept, in clear.
const LEGACY_SECRET_NAME: &str = "jwt_signing_key";

/// Serialises changes to the ring across instances and the CLI.
const RING_LOCK: i64 = 72_719;

/// Extra time a rotated-out key verifies beyond the longest lifetime of its tokens: the
/// verification leeway and clock skew.
const MARGIN: Duration = Duration::from_secs(60);

impl KeyInfo {
    /// `signing`, `verifying until …`, `expired` or `retired`.
    pub fn state(&self, now: DateTime<Utc>) -> String {
        if self.retired_at.is_some() {
            return "retired".to_owned();
        }
        match (self.signs_until, self.verifies_until) {
            (None, _) => "signing".to_owned(),
            (Some(_), Some(until)) if until > now => {
                format!("verifying until {}", until.to_rfc3339())
            }
            (Some(_), None) => "verifying".to_owned(),
            _ => "expired".to_owned(),
        }
    }
}

fn db(err: diesel::result::Error) -> String {
    format!("cannot read or write the signing keys: {err}")
}

/// A new key (64 random bytes), sealed, that signs from now on.
async fn insert_new(conn: &mut AsyncPgConnection, secrets: &SecretBox) -> Result<String, String> {
    let mut key = [0_u8; 64];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness for a signing key: {e}"))?;
    let kid = format!("k{}", Uuid::now_v7().simple());
    let sealed = secrets.seal(&STANDARD.encode(key), &signing_key_context(&kid))?;
    store::insert(conn, &kid, &sealed).await.map_err(db)?;
    Ok(kid)
}

/// Makes the ring ready: the key kept in clear before key ids (`app_secrets`) moves in,
/// sealed, taking its tokens (they carry no `kid`) for one more token lifetime, and a key
/// is generated when none signs. Idempotent.
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    token_ttl: Duration,
) -> Result<(), String> {
    conn.transaction(async |conn| -> Result<_, Failure> {
        store::lock(conn, RING_LOCK).await.map_err(db)?;
        let legacy = store::app_secret(conn, LEGACY_SECRET_NAME)
            .await
            .map_err(db)?;
        if let Some(value) = legacy {
            let bytes = STANDARD
                .decode(value.trim())
                .map_err(|_| "the stored signing key is corrupt".to_owned())?;
            let digest = Sha256::digest(&bytes);
            let kid = format!(
                "legacy-{}",
                digest
                    .iter()
                    .take(6)
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            );
            let sealed = secrets.seal(&STANDARD.encode(&bytes), &signing_key_context(&kid))?;
            let lifetime = (token_ttl + REFRESH + MARGIN).as_secs_f64();
            store::insert_legacy(conn, &kid, &sealed, lifetime)
                .await
                .map_err(db)?;
            store::delete_app_secret(conn, LEGACY_SECRET_NAME)
                .await
                .map_err(db)?;
            tracing::info!(kid, "moved the signing key into the sealed key ring");
        }
        if store::signing(conn).await.map_err(db)? == 0 {
            let kid = insert_new(conn, secrets).await?;
            tracing::info!(kid, "generated a signing key");
        }
        Ok(())
    })
    .await
    .map_err(|f| f.0)
}

/// The keys that sign or still verify, newest first, opened.
pub async fn load(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
) -> Result<Vec<SigningKey>, String> {
    let rows = store::live(conn).await.map_err(db)?;
    rows.into_iter()
        .map(|row| {
            let opened = secrets
                .open(&row.secret, &signing_key_context(&row.kid))
                .map_err(|e| format!("signing key {}: {e}", row.kid))?;
            let bytes = STANDARD
                .decode(opened)
                .map_err(|_| format!("signing key {} is corrupt", row.kid))?;
            Ok(SigningKey::new(
                row.kid,
                &bytes,
                row.legacy,
                row.signs_until,
                row.verifies_until,
            ))
        })
        .collect()
}

/// Every key, newest first.
pub async fn list(conn: &mut AsyncPgConnection) -> Result<Vec<KeyInfo>, String> {
    store::all(conn).await.map_err(db)
}

/// A new key signs; the keys that signed until now verify until every token they may have
/// signed has expired: the token lifetime (plus the time other instances may still sign
/// with them before they reload), or the latest expiry of an unrevoked service token they
/// signed, whichever is later. Returns the new key's id.
pub async fn rotate(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    token_ttl: Duration,
) -> Result<String, String> {
    conn.transaction(async |conn| -> Result<_, Failure> {
        store::lock(conn, RING_LOCK).await.map_err(db)?;
        let lifetime = (token_ttl + REFRESH + MARGIN).as_secs_f64();
        store::sign_no_more(conn, lifetime, MARGIN.as_secs_f64())
            .await
            .map_err(db)?;
        Ok(insert_new(conn, secrets).await?)
    })
    .await
    .map_err(|f| f.0)
}

/// Retires a key at once: its tokens are refused from now on (on every instance within
/// [`REFRESH`]). A key that was signing is replaced by a new one first. False when no such
/// key exists or it was already retired.
pub async fn retire(
    conn: &mut AsyncPgConnection,
    secrets: &SecretBox,
    kid: &str,
) -> Result<bool, String> {
    conn.transaction(async |conn| -> Result<_, Failure> {
        store::lock(conn, RING_LOCK).await.map_err(db)?;
        let key = store::get(conn, kid).await.map_err(db)?;
        let Some(key) = key.filter(|k| k.retired_at.is_none()) else {
            return Ok(false);
        };
        if key.signs_until.is_none() {
            insert_new(conn, secrets).await?;
        }
        store::retire(conn, kid).await.map_err(db)?;
        Ok(true)
    })
    .await
    .map_err(|f| f.0)
}
