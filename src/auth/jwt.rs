//! Signed bearer tokens (HS256 JWT): minting and checking signature, expiry, issuer, audience.
//!
//! When no secret is configured, one is generated on first start and kept in the database
//! (`app_secrets`), so `rapport token` and `rapport serve` agree without setup. A configured
//! `RAPPORT_JWT_SECRET` always wins.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::scopes::{Role, Scope};
use crate::config::JwtSettings;
use crate::db::schema::app_secrets;

const SECRET_NAME: &str = "jwt_signing_key";

/// What kind of caller a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A staff user (`sub` is the user id); role and activity are checked on each request.
    User,
    /// An integration client (`sub` is the client id); scopes and revocation are checked.
    Client,
    /// A token minted by `rapport token` for scripts: trusted for the role it carries.
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
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            Self::Expired => "the token has expired; request a new one",
            Self::Invalid => "the token is not valid for this service",
        }
    }
}

/// A freshly minted token.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Keys and rules for minting and checking tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    pub default_ttl: Duration,
}

impl JwtKeys {
    pub fn new(secret: &[u8], settings: &JwtSettings) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            default_ttl: settings.token_ttl,
        }
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
        let ttl = chrono::Duration::from_std(ttl).map_err(|e| e.to_string())?;
        let expires_at = now + ttl;
        let claims = Claims {
            sub: subject.to_owned(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: expires_at.timestamp(),
            jti: Uuid::now_v7().to_string(),
            kind,
            role,
            scopes,
            cv,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| e.to_string())?;
        Ok(Minted { token, expires_at })
    }

    /// Checks signature, expiry, issuer and audience.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|err| match err.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// The signing key: the configured one, or the one kept in the database (created on first
/// use; concurrent first starts agree on a single key).
pub async fn signing_secret(
    settings: &JwtSettings,
    conn: &mut AsyncPgConnection,
) -> Result<Vec<u8>, String> {
    if let Some(secret) = &settings.secret {
        return Ok(secret.expose().as_bytes().to_vec());
    }
    let mut fresh = [0u8; 64];
    getrandom::fill(&mut fresh).map_err(|e| format!("no randomness for a signing key: {e}"))?;
    diesel::insert_into(app_secrets::table)
        .values((
            app_secrets::name.eq(SECRET_NAME),
            app_secrets::value.eq(STANDARD.encode(fresh)),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map_err(|e| format!("cannot store the signing key: {e}"))?;
    let stored: String = app_secrets::table
        .find(SECRET_NAME)
        .select(app_secrets::value)
        .first(conn)
        .await
        .map_err(|e| format!("cannot read the signing key: {e}"))?;
    STANDARD
        .decode(stored)
        .map_err(|_| "the stored signing key is corrupt".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(issuer: &str, audience: &str) -> JwtKeys {
        JwtKeys::new(
            b"0123456789abcdef0123456789abcdef",
            &JwtSettings {
                secret: None,
                issuer: issuer.to_owned(),
                audience: audience.to_owned(),
                token_ttl: Duration::from_secs(60),
            },
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
    fn round_trip() {
        let keys = keys("rapport", "rapport-api");
        let claims = keys.verify(&mint(&keys));
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
}
