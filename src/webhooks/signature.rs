//! Signing, as the Standard Webhooks specification (standardwebhooks.com) defines it, so
//! receivers can use its libraries or a few lines of their own:
//!
//! - the secret is `whsec_` followed by base64 of 32 random bytes; the key is those bytes;
//! - the signed content is `{webhook-id}.{webhook-timestamp}.{raw body}`;
//! - `webhook-signature` is `v1,` followed by base64 of HMAC-SHA256(key, content), and during
//!   a rotation's overlap one such entry per secret, separated by a space.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::secrets::stored::webhook_context;
use crate::secrets::{OpenError, SecretBox};

const PREFIX: &str = "whsec_";

/// A webhook's secret as the database keeps it: sealed under the server key, for this
/// webhook only.
pub fn seal(secrets: &SecretBox, webhook: Uuid, secret: &str) -> Result<String, String> {
    secrets.seal(secret, &webhook_context(webhook))
}

/// The secret a stored (sealed) value holds.
pub fn open(secrets: &SecretBox, webhook: Uuid, stored: &str) -> Result<String, OpenError> {
    secrets.open(stored, &webhook_context(webhook))
}

/// A new random secret.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness for a secret: {e}"))?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(bytes)))
}

/// `v1,<base64 HMAC>` of one message under one secret.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .unwrap_or_else(|_| secret.as_bytes().to_vec());
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
        return String::new();
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one entry per secret in use.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_fresh_and_prefixed() {
        let a = new_secret().unwrap_or_default();
        let b = new_secret().unwrap_or_default();
        assert!(a.starts_with("whsec_") && a.len() > 40);
        assert_ne!(a, b);
        let both = header(&[&a, &b], "id", 1, b"{}");
        assert_eq!(both.split(' ').count(), 2);
    }
}
