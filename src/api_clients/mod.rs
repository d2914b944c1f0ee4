//! Integration clients: third-party systems that exchange a client id and secret for a
//! token carrying the scopes an admin gave them. The secret is shown once and stored hashed.

pub mod json;
mod routes;
pub mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use routes::configure;

/// Prefix of client secrets, so a leaked one is recognisable (by secret scanners too).
const SECRET_PREFIX: &str = "rps_";

/// A new random secret: 256 bits, base64url.
pub fn new_secret() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
    Ok(format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

/// The stored form of a secret. A fast hash suffices: the secret has 256 bits of entropy.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Compares a presented secret with the stored hash in constant time.
pub fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    hash_secret(secret).ct_eq(stored).into()
}
