//! What a token is checked against on each request (cached briefly by the principal): a
//! user's or client's standing and a recorded service token's. `auth` reads these rows of
//! the users, API clients and service tokens it checks; those areas write them.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::{AccessLevel, Role};
use crate::db::schema::{api_clients, service_tokens, users};

/// What a request's token is checked against (cached briefly) on each request.
#[derive(Debug, Clone, Copy, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserAccess {
    pub active: bool,
    pub role: Role,
    /// Which customers the user reaches (loaded with the role: one cached lookup).
    pub access: AccessLevel,
    /// Bumped by the database whenever the password, role, access or activity changes;
    /// tokens issued under an older version are refused.
    pub credentials_version: i64,
}

pub async fn user_access(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<UserAccess>> {
    users::table
        .find(id)
        .select(UserAccess::as_select())
        .first(conn)
        .await
        .optional()
}

/// A client's standing: whether it is revoked, its scopes, credentials version and own
/// request limit (as stored: parsed by the caller).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ClientAccess {
    pub revoked_at: Option<DateTime<Utc>>,
    pub scopes: Vec<Option<String>>,
    /// Bumped by the database whenever the secret, scopes or revocation change.
    pub credentials_version: i64,
    /// `600/60s`, `off`; `None` takes the default.
    pub rate_limit: Option<String>,
}

pub async fn client_access(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<ClientAccess>> {
    api_clients::table
        .find(id)
        .select(ClientAccess::as_select())
        .first(conn)
        .await
        .optional()
}

/// A recorded service token's subject, role and revocation.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = service_tokens)]
pub struct ServiceTokenAccess {
    pub subject: String,
    pub role: String,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn service_token_access(
    conn: &mut AsyncPgConnection,
    jti: &str,
) -> QueryResult<Option<ServiceTokenAccess>> {
    service_tokens::table
        .find(jti)
        .select(ServiceTokenAccess::as_select())
        .first(conn)
        .await
        .optional()
}
