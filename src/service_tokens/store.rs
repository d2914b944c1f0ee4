//! SQL for recorded service tokens.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::schema::service_tokens;

/// Where a service token stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Accepted until it expires.
    Active,
    /// Revoked: refused from then on.
    Revoked,
    /// Past its expiry.
    Expired,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = service_tokens)]
pub struct Row {
    pub jti: String,
    pub subject: String,
    pub role: String,
    pub kid: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = service_tokens)]
pub struct NewRow {
    pub jti: String,
    pub subject: String,
    pub role: String,
    pub kid: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(conn: &mut AsyncPgConnection, rows: &[NewRow]) -> QueryResult<()> {
    diesel::insert_into(service_tokens::table)
        .values(rows)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn get(conn: &mut AsyncPgConnection, jti: &str) -> QueryResult<Option<Row>> {
    service_tokens::table
        .find(jti)
        .select(Row::as_select())
        .first(conn)
        .await
        .optional()
}

/// Marks a token revoked by `by` (an actor key); `None` when there is no such token. A
/// token revoked before keeps its first revocation.
pub async fn revoke(conn: &mut AsyncPgConnection, jti: &str, by: &str) -> QueryResult<Option<Row>> {
    diesel::update(
        service_tokens::table
            .find(jti)
            .filter(service_tokens::revoked_at.is_null()),
    )
    .set((
        service_tokens::revoked_at.eq(diesel::dsl::now),
        service_tokens::revoked_by.eq(by),
    ))
    .execute(conn)
    .await?;
    get(conn, jti).await
}

/// A page of tokens in the order they were issued (`jti` is a time-ordered UUID).
pub async fn list(
    conn: &mut AsyncPgConnection,
    status: Option<TokenStatus>,
    after: Option<String>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    let mut query = service_tokens::table
        .select(Row::as_select())
        .order(service_tokens::jti.asc())
        .limit(fetch)
        .into_boxed();
    match status {
        Some(TokenStatus::Active) => {
            query = query
                .filter(service_tokens::revoked_at.is_null())
                .filter(service_tokens::expires_at.gt(diesel::dsl::now));
        }
        Some(TokenStatus::Revoked) => {
            query = query.filter(service_tokens::revoked_at.is_not_null());
        }
        Some(TokenStatus::Expired) => {
            query = query
                .filter(service_tokens::revoked_at.is_null())
                .filter(service_tokens::expires_at.le(diesel::dsl::now));
        }
        None => {}
    }
    if let Some(after) = after {
        query = query.filter(service_tokens::jti.gt(after));
    }
    query.load(conn).await
}
