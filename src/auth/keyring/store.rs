//! The signing keys' rows, and the key kept in clear before key ids (`app_secrets`).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::{app_secrets, signing_keys};

/// A key as `rapport keys list` shows it: never its material.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct KeyInfo {
    pub kid: String,
    pub legacy: bool,
    pub created_at: DateTime<Utc>,
    pub signs_until: Option<DateTime<Utc>>,
    pub verifies_until: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A key's row, its material sealed.
#[derive(Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct Stored {
    pub kid: String,
    pub secret: String,
    pub legacy: bool,
    pub signs_until: Option<DateTime<Utc>>,
    pub verifies_until: Option<DateTime<Utc>>,
}

/// Takes the transaction-scoped advisory lock `key`.
pub async fn lock(conn: &mut AsyncPgConnection, key: i64) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<BigInt, _>(key)
        .execute(conn)
        .await
        .map(drop)
}

/// A new key that signs from now on.
pub async fn insert(conn: &mut AsyncPgConnection, kid: &str, sealed: &str) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values((signing_keys::kid.eq(kid), signing_keys::secret.eq(sealed)))
        .execute(conn)
        .await
        .map(drop)
}

/// The key from before key ids: it signs no more and verifies for `lifetime` seconds.
pub async fn insert_legacy(
    conn: &mut AsyncPgConnection,
    kid: &str,
    sealed: &str,
    lifetime: f64,
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO signing_keys (kid, secret, legacy, signs_until, verifies_until) \
         VALUES ($1, $2, true, now(), now() + make_interval(secs => $3)) \
         ON CONFLICT (kid) DO NOTHING",
    )
    .bind::<Text, _>(kid)
    .bind::<Text, _>(sealed)
    .bind::<Double, _>(lifetime)
    .execute(conn)
    .await
    .map(drop)
}

pub async fn app_secret(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<Option<String>> {
    app_secrets::table
        .find(name)
        .select(app_secrets::value)
        .first(conn)
        .await
        .optional()
}

pub async fn delete_app_secret(conn: &mut AsyncPgConnection, name: &str) -> QueryResult<()> {
    diesel::delete(app_secrets::table.find(name))
        .execute(conn)
        .await
        .map(drop)
}

/// How many keys sign now.
pub async fn signing(conn: &mut AsyncPgConnection) -> QueryResult<i64> {
    signing_keys::table
        .filter(signing_keys::signs_until.is_null())
        .filter(signing_keys::retired_at.is_null())
        .count()
        .get_result(conn)
        .await
}

/// The keys that sign or still verify, newest first.
pub async fn live(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Stored>> {
    signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .filter(
            signing_keys::verifies_until
                .is_null()
                .or(signing_keys::verifies_until.gt(diesel::dsl::now)),
        )
        .order(signing_keys::created_at.desc())
        .select(Stored::as_select())
        .load(conn)
        .await
}

/// Every key, newest first.
pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<KeyInfo>> {
    signing_keys::table
        .order(signing_keys::created_at.desc())
        .select(KeyInfo::as_select())
        .load(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, kid: &str) -> QueryResult<Option<KeyInfo>> {
    signing_keys::table
        .find(kid)
        .select(KeyInfo::as_select())
        .first(conn)
        .await
        .optional()
}

/// The keys that sign stop signing and verify until every token they may have signed has
/// expired: `lifetime` seconds, or the latest expiry of an unrevoked service token they
/// signed plus `margin` seconds, whichever is later.
pub async fn sign_no_more(
    conn: &mut AsyncPgConnection,
    lifetime: f64,
    margin: f64,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE signing_keys k SET signs_until = now(), \
           verifies_until = GREATEST(now() + make_interval(secs => $1), \
             (SELECT max(t.expires_at) FROM service_tokens t \
              WHERE t.kid = k.kid AND t.revoked_at IS NULL) + make_interval(secs => $2)) \
         WHERE signs_until IS NULL AND retired_at IS NULL",
    )
    .bind::<Double, _>(lifetime)
    .bind::<Double, _>(margin)
    .execute(conn)
    .await
    .map(drop)
}

/// Retires a key at once: it neither signs nor verifies from now on.
pub async fn retire(conn: &mut AsyncPgConnection, kid: &str) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE signing_keys SET retired_at = now(), \
           signs_until = LEAST(COALESCE(signs_until, now()), now()), \
           verifies_until = LEAST(COALESCE(verifies_until, now()), now()) \
         WHERE kid = $1",
    )
    .bind::<Text, _>(kid)
    .execute(conn)
    .await
    .map(drop)
}
