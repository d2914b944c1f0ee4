//! Integration clients: third-party systems that exchange a client id and secret for a
//! token carrying the scopes an admin gave them. The secret is shown once and stored hashed.

pub mod json;
mod routes;
pub mod rules;
pub mod store;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use json::{ApiClient, ApiClientPatch, CreatedApiClient};
pub use routes::configure;
use rules::ValidNewApiClient;

use crate::audit;
use crate::auth::Actor;
use crate::http::error::ApiError;
use crate::http::etag::IfMatch;
use crate::journal::{self, Change};

/// Creates a client with a new secret, audited as `api_client.created` (the secret
/// redacted). The answer is the only place the secret is ever shown.
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    input: ValidNewApiClient,
) -> Result<CreatedApiClient, ApiError> {
    let secret = new_secret().map_err(ApiError::internal)?;
    let row = store::NewClientRow {
        id: Uuid::now_v7(),
        name: input.name,
        description: input.description,
        secret_hash: hash_secret(&secret),
        scopes: input.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        created_by: actor.key(),
        rate_limit: input.rate_limit.map(|limit| limit.to_string()),
    };
    let client = conn
        .transaction(async |conn| {
            let client = ApiClient::from(store::insert(conn, &row).await?);
            let changes = audit::redacted(audit::created(&client), "client_secret");
            journal::record(
                conn,
                actor,
                Change::audited("api_client.created", "api_client", client.id, changes),
            )
            .await?;
            Ok::<_, ApiError>(client)
        })
        .await?;
    Ok(CreatedApiClient {
        client,
        client_secret: secret,
    })
}

/// Applies a merge patch to a client, audited as `api_client.updated`; nothing when it
/// changes nothing. The caller forgets the client's cached access after (a change of scopes
/// ends its tokens).
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
    patch: ApiClientPatch,
) -> Result<ApiClient, ApiError> {
    conn.transaction(async |conn| {
        let before = lock(conn, id, if_match).await?;
        let changed = rules::apply(patch, &before)?;
        if changed.is_unchanged(&before) {
            return Ok(before);
        }
        let after = ApiClient::from(store::update(conn, id, &changed.into_update()).await?);
        audited(conn, actor, "api_client.updated", &before, &after).await?;
        Ok(after)
    })
    .await
}

/// Revokes a client, audited as `api_client.revoked`; a revoked client stays as it is. The
/// caller forgets the client's cached access after.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<ApiClient, ApiError> {
    conn.transaction(async |conn| {
        let before = lock(conn, id, if_match).await?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let after = ApiClient::from(store::revoke(conn, id).await?);
        audited(conn, actor, "api_client.revoked", &before, &after).await?;
        Ok(after)
    })
    .await
}

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

/// Records a change of a client in the journal, as `action`.
async fn audited(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    action: &'static str,
    before: &ApiClient,
    after: &ApiClient,
) -> diesel::QueryResult<()> {
    let changes = audit::diff(before, after);
    journal::record(
        conn,
        actor,
        Change::audited(action, "api_client", before.id, changes),
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
