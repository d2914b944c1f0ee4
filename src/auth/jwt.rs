//! Signed bearer tokens (HS256 JWT): minting and checking signature, expiry, issuer, audience,
//! each token naming the key that signed it (`kid` in its header).
//!
//! Keys come from one of two places:
//! - a configured `RAPPORT_JWT_SECRET` (its `kid` derived from a hash of it) signs, and the
//!   `RAPPORT_JWT_PREVIOUS_SECRETS` still verify: rotation is a configuration change;
//! - otherwise the key ring in the database (`signing_keys`, each key sealed under the server
//!   key, see [`super::keyring`]): the newest key that still signs signs, older ones verify
//!   until their tokens have expired. `rapport keys rotate` adds a key; each instance reloads
//!   the ring every [`REFRESH`], and at once (at most once a [`MIN_RELOAD`]) when a token
//!   names a key it does not know yet.
//!
//! A token without `kid` is refused, except by the key generated before key ids existed
//! (`legacy`), until it stops verifying: running deployments keep their sessions.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel_async::AsyncPgConnection;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::keyring;
pub use super::keyring::REFRESH;
use super::keyring::SigningKey;
use super::scopes::{Role, Scope};
use crate::config::JwtSettings;
use crate::db::DbPool;
use crate::secrets::SecretBox;

/// At most one reload of the ring per this interval for tokens naming an unknown key, so
/// that made-up key ids cannot hammer the database.
pub const MIN_RELOAD: Duration = Duration::from_secs(1);

/// What kind of caller a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A staff user (`sub` is the user id); role and activity are checked on each request.
    User,
    /// An integration client (`sub` is the client id); scopes and revocation are checked.
    Client,
    /// A token minted by `rapport token` for scripts: recorded by its `jti`, revocable.
    Service,
}

/// The claims Rapport puts in and requires of a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub kind: SubjectKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Scope>,
    /// The user's or client's credentials version at issue: a password, role, scope or
    /// activity change bumps the stored one, and older tokens are refused from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cv: Option<i64>,
}

/// Why a token was refused; the message is safe to show the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
    /// Names a key this instance does not know (perhaps not yet: reload and try again).
    UnknownKey,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Expired => "the token has expired; request a new one",
            Self::Invalid | Self::UnknownKey => "the token is not valid for this service",
        }
    }
}

/// A freshly minted token.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub issued_at: DateTime<Utc>,
    pub jti: String,
    /// The key that signed it.
    pub kid: String,
}

/// The `kid` of a configured secret: a hash of it, so instances sharing the secret agree
/// and the id tells nothing about the key.
pub fn configured_kid(secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"rapport jwt kid\0")
        .chain_update(secret.as_bytes())
        .finalize();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("c{hex}")
}

/// Where the keys come from.
enum Source {
    /// `RAPPORT_JWT_SECRET` (+ previous ones): nothing to reload.
    Configured,
    /// The database's key ring, opened with the server key.
    Database(Arc<SecretBox>),
}

/// Keys and rules for minting and checking tokens.
pub struct JwtKeys {
    /// Newest first.
    ring: RwLock<Arc<Vec<SigningKey>>>,
    source: Source,
    /// When the last reload of the ring started.
    reloaded: tokio::sync::Mutex<Option<Instant>>,
    validation: Validation,
    issuer: String,
    audience: String,
    pub default_ttl: Duration,
}

impl JwtKeys {
    fn with_ring(keys: Vec<SigningKey>, source: Source, settings: &JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            ring: RwLock::new(Arc::new(keys)),
            source,
            reloaded: tokio::sync::Mutex::new(None),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            default_ttl: settings.token_ttl,
        }
    }

    /// Keys from a secret given directly (the configured one, and those before it).
    pub fn configured(secret: &str, previous: &[&str], settings: &JwtSettings) -> Self {
        let mut keys = vec![SigningKey::new(
            configured_kid(secret),
            secret.as_bytes(),
            false,
            None,
            None,
        )];
        keys.extend(previous.iter().map(|old| {
            SigningKey::new(
                configured_kid(old),
                old.as_bytes(),
                false,
                Some(DateTime::<Utc>::MIN_UTC),
                None,
            )
        }));
        Self::with_ring(keys, Source::Configured, settings)
    }

    /// The configured keys, or the database's ring (made ready first: a first key generated,
    /// the key from before key ids moved in).
    pub async fn load(
        settings: &JwtSettings,
        secrets: Arc<SecretBox>,
        conn: &mut AsyncPgConnection,
    ) -> Result<Self, String> {
        if let Some(secret) = &settings.secret {
            let previous: Vec<&str> = settings
                .previous_secrets
                .iter()
                .map(crate::config::Secret::expose)
                .collect();
            return Ok(Self::configured(secret.expose(), &previous, settings));
        }
        keyring::ensure(conn, &secrets, settings.token_ttl).await?;
        let keys = keyring::load(conn, &secrets).await?;
        Ok(Self::with_ring(keys, Source::Database(secrets), settings))
    }

    /// Whether the keys come from the database (and rotate there).
    pub fn from_database(&self) -> bool {
        matches!(self.source, Source::Database(_))
    }

    fn keys(&self) -> Arc<Vec<SigningKey>> {
        match self.ring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key that signs now.
    pub fn signing_kid(&self) -> Option<String> {
        let now = Utc::now();
        self.keys()
            .iter()
            .find(|k| k.signs(now))
            .map(|k| k.kid.clone())
    }

    /// Reloads the ring from the database (a no-op for configured keys). Generates a key
    /// when none signs any more (all retired by hand, say).
    pub async fn refresh(&self, conn: &mut AsyncPgConnection) -> Result<(), String> {
        let Source::Database(secrets) = &self.source else {
            return Ok(());
        };
        let mut keys = keyring::load(conn, secrets).await?;
        let now = Utc::now();
        if !keys.iter().any(|k| k.signs(now)) {
            keyring::ensure(conn, secrets, self.default_ttl).await?;
            keys = keyring::load(conn, secrets).await?;
        }
        match self.ring.write() {
            Ok(mut ring) => *ring = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        Ok(())
    }

    /// Mints a token for a subject that has no credentials version (a service token).
    pub fn mint(
        &self,
        kind: SubjectKind,
        subject: &str,
        role: Option<Role>,
        scopes: Vec<Scope>,
        ttl: Duration,
    ) -> Result<Minted, String> {
        self.mint_versioned(kind, subject, role, scopes, ttl, None)
    }

    /// Mints a token that stays valid only while the subject's credentials version is `cv`.
    pub fn mint_versioned(
        &self,
        kind: SubjectKind,
        subject: &str,
        role: Option<Role>,
        scopes: Vec<Scope>,
        ttl: Duration,
        cv: Option<i64>,
    ) -> Result<Minted, String> {
        let now = Utc::now();
        let keys = self.keys();
        let key = keys
            .iter()
            .find(|k| k.signs(now))
            .ok_or_else(|| "no signing key is active".to_owned())?;
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| e.to_string())?;
        let expires_at = now + ttl;
        let jti = Uuid::now_v7().to_string();
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: jti.clone(),
            kind,
            role,
            scopes,
            cv,
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| e.to_string())?;
        Ok(Minted {
            token,
            expires_at,
            issued_at: now,
            jti,
            kid: key.kid.clone(),
        })
    }

    /// Checks the key named by `kid`, signature, expiry, issuer and audience against the
    /// keys loaded now.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let now = Utc::now();
        let keys = self.keys();
        let key = match &header.kid {
            Some(kid) => keys
                .iter()
                .find(|k| &k.kid == kid)
                .ok_or(TokenError::UnknownKey)?,
            None => keys.iter().find(|k| k.legacy).ok_or(TokenError::Invalid)?,
        };
        if !key.verifies(now) {
            return Err(TokenError::Invalid);
        }
        jsonwebtoken::decode::<Claims>(token, &key.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }

    /// [`Self::verify`], reloading the ring once when the token names a key not loaded yet
    /// (rotated by the CLI or on another instance). Reloads happen at most once a
    /// [`MIN_RELOAD`]: requests that miss meanwhile wait for the next one and share it.
    pub async fn verify_fresh(&self, token: &str, pool: &DbPool) -> Result<Claims, TokenError> {
        match self.verify(token) {
            Err(TokenError::UnknownKey) if self.from_database() => {}
            other => return other,
        }
        let missed_at = Instant::now();
        {
            let mut last = self.reloaded.lock().await;
            let reloaded_since = last.is_some_and(|at| at >= missed_at);
            if !reloaded_since {
                if let Some(at) = *last {
                    let wait = MIN_RELOAD.saturating_sub(at.elapsed());
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                }
                let started = Instant::now();
                *last = Some(started);
                match pool.get().await {
                    Ok(mut conn) => {
                        if let Err(err) = self.refresh(&mut conn).await {
                            tracing::warn!(error = %err, "could not reload the signing keys");
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "could not reload the signing keys"),
                }
            }
        }
        match self.verify(token) {
            Err(TokenError::UnknownKey) => Err(TokenError::Invalid),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::EncodingKey;

    use super::*;

    fn settings(issuer: &str, audience: &str) -> JwtSettings {
        JwtSettings {
            secret: None,
            previous_secrets: vec![],
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            token_ttl: Duration::from_secs(60),
        }
    }

    fn keys(issuer: &str, audience: &str) -> JwtKeys {
        JwtKeys::configured(
            "0123456789abcdef0123456789abcdef",
            &[],
            &settings(issuer, audience),
        )
    }

    fn mint(keys: &JwtKeys) -> String {
        keys.mint(
            SubjectKind::Service,
            "test",
            Some(Role::Admin),
            vec![],
            Duration::from_secs(60),
        )
        .map(|m| m.token)
        .unwrap_or_default()
    }

    #[test]
    fn round_trip_with_kid() {
        let keys = keys("rapport", "rapport-api");
        let token = mint(&keys);
        let header = jsonwebtoken::decode_header(&token).ok();
        assert_eq!(
            header.and_then(|h| h.kid),
            Some(configured_kid("0123456789abcdef0123456789abcdef"))
        );
        let claims = keys.verify(&token);
        assert_eq!(claims.ok().and_then(|c| c.role), Some(Role::Admin));
    }

    #[test]
    fn wrong_issuer_audience_or_key_is_invalid() {
        let keys = keys("rapport", "rapport-api");
        let other_aud = mint(&self::keys("rapport", "elsewhere"));
        let other_iss = mint(&self::keys("someone", "rapport-api"));
        assert_eq!(keys.verify(&other_aud).err(), Some(TokenError::Invalid));
        assert_eq!(keys.verify(&other_iss).err(), Some(TokenError::Invalid));
        let mut tampered = mint(&keys);
        tampered.push('x');
        assert_eq!(keys.verify(&tampered).err(), Some(TokenError::Invalid));
        assert_eq!(keys.verify("not.a.token").err(), Some(TokenError::Invalid));
    }

    #[test]
    fn previous_secrets_verify_but_never_sign() {
        let s = settings("rapport", "rapport-api");
        let old = JwtKeys::configured("old-secret-old-secret-old-secret-0", &[], &s);
        let token = mint(&old);
        let rotated = JwtKeys::configured(
            "new-secret-new-secret-new-secret-0",
            &["old-secret-old-secret-old-secret-0"],
            &s,
        );
        assert!(rotated.verify(&token).is_ok());
        assert_eq!(
            rotated.signing_kid(),
            Some(configured_kid("new-secret-new-secret-new-secret-0"))
        );
        let fresh = JwtKeys::configured("new-secret-new-secret-new-secret-0", &[], &s);
        assert_eq!(fresh.verify(&token).err(), Some(TokenError::UnknownKey));
    }

    #[test]
    fn tokens_without_kid_or_with_unknown_kid_are_refused() {
        let keys = keys("rapport", "rapport-api");
        let now = Utc::now().timestamp();
        let claims = Claims {
            sub: "x".to_owned(),
            iss: "rapport".to_owned(),
            aud: "rapport-api".to_owned(),
            iat: now,
            nbf: now,
            exp: now + 60,
            jti: "j".to_owned(),
            kind: SubjectKind::Service,
            role: Some(Role::Admin),
            scopes: vec![],
            cv: None,
        };
        let secret = EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
        let bare = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &secret)
            .unwrap_or_default();
        assert_eq!(keys.verify(&bare).err(), Some(TokenError::Invalid));
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("nope".to_owned());
        let unknown = jsonwebtoken::encode(&header, &claims, &secret).unwrap_or_default();
        assert_eq!(keys.verify(&unknown).err(), Some(TokenError::UnknownKey));

        // The legacy key takes tokens without kid while it verifies, and no longer after.
        let legacy = |until: DateTime<Utc>| {
            JwtKeys::with_ring(
                vec![SigningKey::new(
                    "legacy".to_owned(),
                    b"0123456789abcdef0123456789abcdef",
                    true,
                    Some(DateTime::<Utc>::MIN_UTC),
                    Some(until),
                )],
                Source::Configured,
                &settings("rapport", "rapport-api"),
            )
        };
        let later = Utc::now() + chrono::Duration::minutes(5);
        assert!(legacy(later).verify(&bare).is_ok());
        let past = Utc::now() - chrono::Duration::minutes(5);
        assert_eq!(legacy(past).verify(&bare).err(), Some(TokenError::Invalid));
    }
}
