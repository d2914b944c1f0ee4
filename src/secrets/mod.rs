//! Secrets at rest: values the service must read back in clear (webhook signing secrets, JWT
//! signing keys) are kept in the database sealed under a server key that the database does
//! not hold (`RAPPORT_SECRET_KEY`, or the key file). A copy of the database alone then signs
//! nothing.
//!
//! A sealed value reads `v1.<key id>.<nonce>.<ciphertext>` (base64url): XChaCha20-Poly1305
//! with a random 192-bit nonce, and as associated data the place the value belongs to (say
//! `webhooks:<id>`), so a ciphertext moved to another row does not open. The key id (a hash
//! of the key) names the key that sealed it: `RAPPORT_SECRET_KEY_PREVIOUS` keys still open
//! values while `RAPPORT_SECRET_KEY` seals new ones, until `rapport secrets reseal` moved
//! every value to the current key.

mod store;
pub mod stored;

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::config::{SecretKeySettings, decode_secret_key};

/// What every sealed value starts with; anything else is a value stored before sealing.
pub const PREFIX: &str = "v1.";

/// One server key: its id and its cipher.
struct ServerKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl ServerKey {
    fn new(bytes: &[u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"rapport server key id\0")
            .chain_update(bytes)
            .finalize();
        let id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Self {
            id,
            cipher: XChaCha20Poly1305::new(&Key::from(*bytes)),
        }
    }
}

/// Why a sealed value did not open. The messages name what to set, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed under a key neither current nor previous.
    UnknownKey(String),
    /// The key is known but the value does not open under it here (tampered, moved between
    /// rows, or sealed by another key with a colliding id).
    Invalid,
    /// Not of the sealed form at all.
    Malformed,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownKey(id) => write!(
                f,
                "a stored secret is sealed under server key {id}, which is neither \
                 RAPPORT_SECRET_KEY nor listed in RAPPORT_SECRET_KEY_PREVIOUS"
            ),
            Self::Invalid => f.write_str(
                "a stored secret does not open under its server key (RAPPORT_SECRET_KEY or \
                 RAPPORT_SECRET_KEY_PREVIOUS): wrong key, or the value was altered",
            ),
            Self::Malformed => f.write_str("a stored secret is not of the sealed form"),
        }
    }
}

impl std::error::Error for OpenError {}

/// A failure inside a transaction of secrets work: one line, database errors included.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(err: diesel::result::Error) -> Self {
        Self(format!("cannot read or write stored secrets: {err}"))
    }
}

/// The server keys: the current one seals, all of them open.
pub struct SecretBox {
    current: ServerKey,
    previous: Vec<ServerKey>,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBox(key {})", self.current.id)
    }
}

impl SecretBox {
    pub fn new(current: &[u8; 32], previous: &[[u8; 32]]) -> Self {
        Self {
            current: ServerKey::new(current),
            previous: previous.iter().map(ServerKey::new).collect(),
        }
    }

    /// The configured keys; without `RAPPORT_SECRET_KEY`, the key file's key (generated,
    /// readable by its owner only, when there is none yet). The error names the variable.
    pub fn from_settings(settings: &SecretKeySettings) -> Result<Self, String> {
        let current = match &settings.key {
            Some(key) => decode_secret_key(key.expose()).ok_or_else(|| {
                "invalid RAPPORT_SECRET_KEY: expected 32 bytes in base64".to_owned()
            })?,
            None => key_file(&settings.file)?,
        };
        let previous = settings
            .previous
            .iter()
            .map(|key| {
                decode_secret_key(key.expose()).ok_or_else(|| {
                    "invalid RAPPORT_SECRET_KEY_PREVIOUS: expected 32 bytes in base64 each"
                        .to_owned()
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(&current, &previous))
    }

    /// The id of the key that seals.
    pub fn key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `plaintext` for the place `context` (such as `webhooks:<id>`).
    pub fn seal(&self, plaintext: &str, context: &str) -> Result<String, String> {
        let mut nonce = [0_u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness for a nonce: {e}"))?;
        let sealed = self
            .current
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| "cannot seal a secret".to_owned())?;
        Ok(format!(
            "{PREFIX}{}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, OpenError> {
        let rest = sealed.strip_prefix(PREFIX).ok_or(OpenError::Malformed)?;
        let mut parts = rest.split('.');
        let (Some(id), Some(nonce), Some(body), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OpenError::Malformed);
        };
        let key = std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == id)
            .ok_or_else(|| OpenError::UnknownKey(id.to_owned()))?;
        let nonce: [u8; 24] = URL_SAFE_NO_PAD
            .decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or(OpenError::Malformed)?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed)?;
        let plain = key
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Invalid)?;
        String::from_utf8(plain).map_err(|_| OpenError::Invalid)
    }

    /// Whether `value` is sealed (rather than stored before sealing existed).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(PREFIX)
    }

    /// The id of the key that sealed `value`.
    pub fn sealed_by(value: &str) -> Option<&str> {
        value.strip_prefix(PREFIX)?.split('.').next()
    }
}

/// Reads the key file, or creates it with a fresh key (owner-only) when it is missing.
fn key_file(path: &Path) -> Result<[u8; 32], String> {
    let shown = path.display();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            return decode_secret_key(&text).ok_or_else(|| {
                format!("invalid RAPPORT_SECRET_KEY_FILE: {shown} does not hold 32 bytes in base64")
            });
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => {
            return Err(format!(
                "cannot read RAPPORT_SECRET_KEY_FILE {shown}: {err} (or set RAPPORT_SECRET_KEY)"
            ));
        }
    }
    let mut key = [0_u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("no randomness for a server key: {e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(format!("{}\n", STANDARD.encode(key)).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| format!("cannot write RAPPORT_SECRET_KEY_FILE {shown}: {e}"))?;
            tracing::warn!(
                file = %shown,
                "RAPPORT_SECRET_KEY is not set: generated a server key into the key file. \
                 Back it up: without it the webhook secrets and signing keys in the database \
                 cannot be read. Set RAPPORT_SECRET_KEY in production."
            );
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => key_file(path),
        Err(err) => Err(format!(
            "cannot create RAPPORT_SECRET_KEY_FILE {shown}: {err} (or set RAPPORT_SECRET_KEY)"
        )),
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(file = %path.display(), "the server key file is readable by others; chmod 600 it");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [7; 32];
    const B: [u8; 32] = [9; 32];

    #[test]
    fn seals_and_opens_for_its_place_only() {
        let keys = SecretBox::new(&A, &[]);
        let sealed = keys.seal("whsec_abc", "webhooks:1").unwrap_or_default();
        assert!(SecretBox::is_sealed(&sealed));
        assert!(!sealed.contains("whsec_abc"));
        assert_eq!(SecretBox::sealed_by(&sealed), Some(keys.key_id()));
        assert_eq!(keys.open(&sealed, "webhooks:1").as_deref(), Ok("whsec_abc"));
        assert_eq!(keys.open(&sealed, "webhooks:2"), Err(OpenError::Invalid));
        // Fresh nonce each time.
        assert_ne!(
            sealed,
            keys.seal("whsec_abc", "webhooks:1").unwrap_or_default()
        );
        assert_eq!(
            keys.open("whsec_abc", "webhooks:1"),
            Err(OpenError::Malformed)
        );
        assert_eq!(keys.open("v1.x.y", "webhooks:1"), Err(OpenError::Malformed));
    }

    #[test]
    fn previous_keys_open_and_never_seal() {
        let old = SecretBox::new(&A, &[]);
        let sealed = old.seal("s", "c").unwrap_or_default();
        let rotated = SecretBox::new(&B, &[A]);
        assert_eq!(rotated.open(&sealed, "c").as_deref(), Ok("s"));
        let resealed = rotated.seal("s", "c").unwrap_or_default();
        assert_eq!(SecretBox::sealed_by(&resealed), Some(rotated.key_id()));
        assert_ne!(rotated.key_id(), old.key_id());
        let other = SecretBox::new(&B, &[]);
        let err = other.open(&sealed, "c");
        assert_eq!(err, Err(OpenError::UnknownKey(old.key_id().to_owned())));
        assert!(
            err.err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("RAPPORT_SECRET_KEY")
        );
    }

    #[test]
    fn tampering_is_detected() {
        let keys = SecretBox::new(&A, &[]);
        let sealed = keys.seal("secret", "c").unwrap_or_default();
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap_or_default();
        assert!(keys.open(&tampered, "c").is_err());
    }

    #[test]
    fn the_key_file_is_generated_once_and_private() {
        let dir = std::env::temp_dir().join(format!("rapport-key-{}", uuid::Uuid::now_v7()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("rapport-secret.key");
        let first = key_file(&path);
        let second = key_file(&path);
        assert!(first.is_ok());
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode.ok(), Some(0o600));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
