//! Service tokens: the tokens `rapport token` mints for scripts and first steps. Each is
//! recorded (who it is for, its role, the key that signed it, when it expires, who minted
//! and who revoked it), so that admins can list them and revoke any one at once, through the
//! API or the CLI. A service token that is not recorded, or is revoked, is refused.

pub mod json;
mod routes;
pub mod rules;
pub mod store;

use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection};

use crate::audit;
use crate::auth::jwt::{JwtKeys, Minted, SubjectKind};
use crate::auth::{Actor, Role};
use crate::http::error::ApiError;
use crate::journal::{self, Change};
use json::ServiceToken;

pub use routes::configure;

/// Subjects are names such as `deploy-script`: at most this long.
pub const MAX_SUBJECT: usize = 200;

/// The row recording a freshly minted token.
pub fn record(minted: &Minted, subject: &str, role: Role, issued_by: &Actor) -> store::NewRow {
    store::NewRow {
        jti: minted.jti.clone(),
        subject: subject.to_owned(),
        role: role.as_str().to_owned(),
        kid: minted.kid.clone(),
        issued_at: minted.issued_at,
        issued_by: issued_by.key(),
        expires_at: minted.expires_at,
    }
}

/// Mints a service token and records it (audited as `service_token.issued`), in one
/// transaction: a token is never handed out unrecorded.
pub async fn issue(
    conn: &mut AsyncPgConnection,
    keys: &JwtKeys,
    actor: &Actor,
    subject: &str,
    role: Role,
    ttl: Duration,
) -> Result<(Minted, ServiceToken), ApiError> {
    let minted = keys
        .mint(SubjectKind::Service, subject, Some(role), vec![], ttl)
        .map_err(ApiError::internal)?;
    let row = record(&minted, subject, role, actor);
    let token = conn
        .transaction(async |conn| {
            store::insert(conn, std::slice::from_ref(&row)).await?;
            let token = store::get(conn, &row.jti)
                .await?
                .map(ServiceToken::from)
                .ok_or_else(|| ApiError::internal("the recorded token vanished"))?;
            journal::record(
                conn,
                actor,
                Change::audited(
                    "service_token.issued",
                    "service_token",
                    &token.jti,
                    audit::created(&token),
                ),
            )
            .await?;
            Ok::<_, ApiError>(token)
        })
        .await?;
    Ok((minted, token))
}

/// Revokes a token (audited as `service_token.revoked`, with the reason when given:
/// trimmed, at most `MAX_REASON` characters, else `422`); `None` when there is no such
/// token. Revoking a revoked token changes nothing. The caller forgets it from the cache.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    jti: &str,
    reason: Option<&str>,
) -> Result<Option<ServiceToken>, ApiError> {
    let reason = rules::reason(reason)?;
    conn.transaction(async |conn| {
        let Some(before) = store::get(conn, jti).await?.map(ServiceToken::from) else {
            return Ok(None);
        };
        if before.revoked_at.is_some() {
            return Ok(Some(before));
        }
        let after = store::revoke(conn, jti, &actor.key())
            .await?
            .map(ServiceToken::from)
            .ok_or_else(|| ApiError::internal("the revoked token vanished"))?;
        let mut changes = audit::diff(&before, &after);
        if let (Some(reason), Some(map)) = (reason, changes.as_object_mut()) {
            map.insert("reason".to_owned(), serde_json::json!({ "to": reason }));
        }
        journal::record(
            conn,
            actor,
            Change::audited("service_token.revoked", "service_token", jti, changes),
        )
        .await?;
        Ok(Some(after))
    })
    .await
}
