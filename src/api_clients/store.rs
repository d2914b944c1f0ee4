use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::db::schema::api_clients;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ClientRecord {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<Option<String>>,
    pub created_by: String,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub rate_limit: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = api_clients, treat_none_as_default_value = false)]
pub struct NewClientRow {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub secret_hash: Vec<u8>,
    pub scopes: Vec<String>,
    pub created_by: String,
    pub rate_limit: Option<String>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &NewClientRow) -> QueryResult<ClientRecord> {
    diesel::insert_into(api_clients::table)
        .values(row)
        .returning(ClientRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ClientRecord>> {
    api_clients::table
        .find(id)
        .select(ClientRecord::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ClientRecord>> {
    api_clients::table
        .find(id)
        .select(ClientRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

pub async fn revoke(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<ClientRecord> {
    diesel::update(api_clients::table.find(id))
        .set((
            api_clients::revoked_at.eq(now),
            api_clients::version.eq(api_clients::version + 1),
            api_clients::updated_at.eq(now),
        ))
        .returning(ClientRecord::as_returning())
        .get_result(conn)
        .await
}

/// A client's new name, description, scopes and limit.
#[derive(AsChangeset)]
#[diesel(table_name = api_clients, treat_none_as_null = true)]
pub struct ClientUpdate {
    pub name: String,
    pub description: Option<String>,
    pub scopes: Vec<String>,
    pub rate_limit: Option<String>,
}

/// Writes a client's changes (the database bumps its credentials version when the scopes
/// change).
pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    change: &ClientUpdate,
) -> QueryResult<ClientRecord> {
    diesel::update(api_clients::table.find(id))
        .set((
            change,
            api_clients::version.eq(api_clients::version + 1),
            api_clients::updated_at.eq(now),
        ))
        .returning(ClientRecord::as_returning())
        .get_result(conn)
        .await
}

/// A page of clients by id; `revoked` keeps only revoked (`true`) or usable (`false`) ones.
pub async fn list(
    conn: &mut AsyncPgConnection,
    revoked: Option<bool>,
    after: Option<Uuid>,
    fetch: i64,
) -> QueryResult<Vec<ClientRecord>> {
    let mut query = api_clients::table
        .select(ClientRecord::as_select())
        .order(api_clients::id.asc())
        .limit(fetch)
        .into_boxed();
    match revoked {
        Some(true) => query = query.filter(api_clients::revoked_at.is_not_null()),
        Some(false) => query = query.filter(api_clients::revoked_at.is_null()),
        None => {}
    }
    if let Some(after) = after {
        query = query.filter(api_clients::id.gt(after));
    }
    query.load(conn).await
}

/// What a token exchange needs to know about a client.
#[derive(Queryable, Selectable)]
#[diesel(table_name = api_clients)]
pub struct ClientSecret {
    pub secret_hash: Vec<u8>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub scopes: Vec<Option<String>>,
    /// Bumped by the database whenever the secret, scopes or revocation change; tokens
    /// issued under an older version are refused.
    pub credentials_version: i64,
    /// Its own request limit (`600/60s`, `off`); `None` takes the default.
    pub rate_limit: Option<String>,
}

pub async fn secret(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<ClientSecret>> {
    api_clients::table
        .find(id)
        .select(ClientSecret::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn touch(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::update(api_clients::table.find(id))
        .set(api_clients::last_used_at.eq(now))
        .execute(conn)
        .await
        .map(drop)
}
