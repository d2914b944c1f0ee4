//! Signing in and out: `POST /v1/auth/token` (a password or client credentials for a
//! token), `POST /v1/auth/logout` and `GET /v1/me`. It reads the users and API clients it
//! signs in, so it sits beside them, above `auth`, which checks the tokens it issues.

mod json;
mod routes;

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::api_clients;
use crate::auth::jwt::{JwtKeys, Minted, SubjectKind};
use crate::auth::throttle::LoginThrottle;
use crate::auth::{Actor, Principal, Scopes, password, revoked};
use crate::db::DbPool;
use crate::http::error::{ApiError, ErrorCode};
use crate::users;
use json::TokenRequest;

pub use routes::configure;

fn bad_credentials() -> ApiError {
    ApiError::unauthenticated("these credentials do not match an active account")
}

fn throttled(wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many failed attempts; try again in {seconds} s"),
    )
    .with_header(
        header::RETRY_AFTER,
        HeaderValue::from_str(&seconds.to_string()).unwrap_or(HeaderValue::from_static("60")),
    )
}

/// Checks a staff user's password or a client's secret, under the sign-in throttle, and
/// mints a token of the default lifetime. A failure never says whether the account exists.
pub async fn sign_in(
    pool: &DbPool,
    throttle: &LoginThrottle,
    jwt: &JwtKeys,
    request: TokenRequest,
    address: &str,
) -> Result<Minted, ApiError> {
    let ttl = jwt.default_ttl;
    match request {
        TokenRequest::Password { email, password } => {
            let attempt = throttle
                .begin(pool, &email, address)
                .await
                .map_err(throttled)?;
            let mut conn = pool.get().await?;
            let account = users::store::credentials(&mut conn, &email)
                .await?
                .filter(|c| c.active);
            drop(conn);
            let hash = account.as_ref().and_then(|c| c.password_hash.clone());
            let matches = password::verify(password, hash).await;
            let Some(account) = account.filter(|_| matches) else {
                attempt.failed().await;
                return Err(bad_credentials());
            };
            attempt.succeeded().await;
            jwt.mint_versioned(
                SubjectKind::User,
                &account.id.to_string(),
                Some(account.role),
                vec![],
                ttl,
                Some(account.credentials_version),
            )
            .map_err(ApiError::internal)
        }
        TokenRequest::ClientCredentials {
            client_id,
            client_secret,
        } => {
            let attempt = throttle
                .begin(pool, &client_id, address)
                .await
                .map_err(throttled)?;
            let id = Uuid::parse_str(client_id.trim()).ok();
            let mut conn = pool.get().await?;
            let client = match id {
                Some(id) => api_clients::store::secret(&mut conn, id).await?,
                None => None,
            };
            let client = client.filter(|c| {
                c.revoked_at.is_none()
                    && api_clients::secret_matches(&client_secret, &c.secret_hash)
            });
            let (Some(id), Some(client)) = (id, client) else {
                // The connection back first: a shared throttle records through the pool.
                drop(conn);
                attempt.failed().await;
                return Err(bad_credentials());
            };
            api_clients::store::touch(&mut conn, id).await?;
            drop(conn);
            attempt.succeeded().await;
            let scopes = Scopes::from_stored(client.scopes).iter().collect();
            jwt.mint_versioned(
                SubjectKind::Client,
                &id.to_string(),
                None,
                scopes,
                ttl,
                Some(client.credentials_version),
            )
            .map_err(ApiError::internal)
        }
    }
}

/// Revokes the token `principal` came with, and a service token's record with it: one
/// transaction, so a sign-out is written whole or not at all. The caller forgets the
/// cached access afterwards.
pub async fn sign_out(conn: &mut AsyncPgConnection, principal: &Principal) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        revoked::revoke(
            conn,
            &principal.token_id,
            &principal.actor.key(),
            principal.token_expires_at,
        )
        .await?;
        if let Actor::Service(_) = principal.actor {
            crate::service_tokens::revoke(
                conn,
                &principal.actor,
                &principal.token_id,
                Some("signed out"),
            )
            .await?;
        }
        Ok(())
    })
    .await
}

/// The caller's name and (for a user) email; `401` when the account is gone.
pub async fn name_of(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
) -> Result<(String, Option<String>), ApiError> {
    Ok(match actor {
        Actor::User(id) => {
            let user = users::store::get(conn, *id)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the token's account no longer exists"))?;
            (user.name, Some(user.email.into_inner()))
        }
        Actor::Client(id) => {
            let client = api_clients::store::get(conn, *id)
                .await?
                .ok_or_else(|| ApiError::unauthenticated("the token's client no longer exists"))?;
            (client.name, None)
        }
        Actor::Service(subject) => (subject.clone(), None),
    })
}
