use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::auth::{AccessLevel, Role};
use crate::db::Prepare;
use crate::db::functions::lower;
use crate::db::schema::users;
use crate::domain::Email;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub access: AccessLevel,
    pub active: bool,
    #[diesel(select_expression = users::password_hash.is_not_null())]
    #[diesel(select_expression_type = diesel::dsl::IsNotNull<users::password_hash>)]
    pub has_password: bool,
    pub deactivated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Insertable)]
#[diesel(table_name = users, treat_none_as_default_value = false)]
pub struct NewUserRow {
    pub id: Uuid,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub access: AccessLevel,
    pub password_hash: Option<String>,
}

/// Columns a write may change; `None` leaves a column alone.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserUpdate {
    pub email: Option<Email>,
    pub name: Option<String>,
    pub role: Option<Role>,
    pub access: Option<AccessLevel>,
    pub password_hash: Option<String>,
    pub active: Option<bool>,
    pub deactivated_at: Option<Option<DateTime<Utc>>>,
}

pub async fn insert(conn: &mut AsyncPgConnection, row: &NewUserRow) -> QueryResult<UserRecord> {
    diesel::insert_into(users::table)
        .values(row)
        .returning(UserRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<UserRecord>> {
    users::table
        .find(id)
        .select(UserRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads a user and locks the row until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<UserRecord>> {
    users::table
        .find(id)
        .select(UserRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Serialises changes that could remove the last admin (advisory lock held to commit).
pub async fn lock_admin_set(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(7340124901)")
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}

/// How many active admins there are besides `id`.
pub async fn other_active_admins(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<i64> {
    users::table
        .filter(users::role.eq(Role::Admin))
        .filter(users::active.eq(true))
        .filter(users::id.ne(id))
        .count()
        .get_result(conn)
        .await
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    changes: &UserUpdate,
) -> QueryResult<UserRecord> {
    diesel::update(users::table.find(id))
        .set((
            changes,
            users::version.eq(users::version + 1),
            users::updated_at.eq(now),
        ))
        .returning(UserRecord::as_returning())
        .get_result(conn)
        .await
}

/// Which users a list keeps: of a role, active or not, and whose name or email contains `q`.
#[derive(Debug, Default)]
pub struct UserFilter<'a> {
    pub role: Option<Role>,
    pub active: Option<bool>,
    pub q: Option<&'a str>,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &UserFilter<'_>,
    after: Option<Uuid>,
    fetch: i64,
) -> QueryResult<Vec<UserRecord>> {
    let mut query = users::table
        .select(UserRecord::as_select())
        .order(users::id.asc())
        .limit(fetch)
        .into_boxed();
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role));
    }
    if let Some(active) = filter.active {
        query = query.filter(users::active.eq(active));
    }
    if let Some(q) = filter.q.map(str::trim).filter(|q| !q.is_empty()) {
        let pattern = crate::db::contains_pattern(q);
        query = query.filter(
            users::name
                .ilike(pattern.clone())
                .or(users::email.ilike(pattern)),
        );
    }
    if let Some(after) = after {
        query = query.filter(users::id.gt(after));
    }
    query.load(conn).await
}

/// What signing in needs to know about the account behind an email.
pub struct Credentials {
    pub id: Uuid,
    pub role: Role,
    pub active: bool,
    pub password_hash: Option<String>,
    /// Carried in the tokens issued now; see [`Access::credentials_version`].
    pub credentials_version: i64,
}

pub async fn credentials(
    conn: &mut AsyncPgConnection,
    email: &str,
) -> QueryResult<Option<Credentials>> {
    let row: Option<(Uuid, Role, bool, Option<String>, i64)> = users::table
        .filter(lower(users::email).eq(email.trim().to_lowercase()))
        .select((
            users::id,
            users::role,
            users::active,
            users::password_hash,
            users::credentials_version,
        ))
        .first(conn)
        .await
        .optional()?;
    Ok(row.map(
        |(id, role, active, password_hash, credentials_version)| Credentials {
            id,
            role,
            active,
            password_hash,
            credentials_version,
        },
    ))
}

/// Which of `ids` are active users.
pub async fn active_among(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<std::collections::HashSet<Uuid>> {
    let active: Vec<Uuid> = users::table
        .filter(users::id.eq_any(ids))
        .filter(users::active.eq(true))
        .select(users::id)
        .load(conn)
        .await?;
    Ok(active.into_iter().collect())
}
