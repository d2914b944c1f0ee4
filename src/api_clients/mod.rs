//! Integration clients: third-party systems that exchange a client id and secret for a
//! token carrying the scopes an admin gave them. The secret is shown once and stored hashed.

pub mod json;
mod routes;
pub mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::AsyncPgConnection;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use json::ApiClient;
pub use routes::configure;

use crate::audit;
use crate::auth::Actor;
use crate::http::error::ApiError;
use crate::http::etag::IfMatch;

/// The client locked for a change (inside the change's transaction), once `If-Match` holds.
async fn lock(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<ApiClient, ApiError> {
    let client = store::lock(conn, id)
        .await?
        .map(ApiClient::from)
        .ok_or_else(|| ApiError::not_found("API client"))?;
    if_match.check(client.version)?;
    Ok(client)
}

/// Records a change of a client in the audit log, as `action`.
async fn audited(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    action: &str,
    before: &ApiClient,
    after: &ApiClient,
) -> diesel::QueryResult<()> {
    let changes = audit::diff(before, after);
    audit::record(
        conn,
        actor,
        action,
        "api_client",
        &before.id.to_string(),
        changes,
    )
    .await
}

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
