//! Single tokens revoked before their expiry (sign-out), by `jti`. A row is needed only
//! while the token could still be presented, so each is dropped once it has expired.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::revoked_tokens;

/// Records `jti` (of `subject`, an actor key) as revoked until `expires_at`, and forgets
/// rows whose tokens have expired meanwhile.
pub async fn revoke(
    conn: &mut AsyncPgConnection,
    jti: &str,
    subject: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(now)))
        .execute(conn)
        .await?;
    diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::subject.eq(subject),
            revoked_tokens::expires_at.eq(expires_at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)
        .await
        .map(drop)
}

/// The revoked, not yet expired token ids of `subject`.
pub async fn of_subject(conn: &mut AsyncPgConnection, subject: &str) -> QueryResult<Vec<String>> {
    revoked_tokens::table
        .filter(revoked_tokens::subject.eq(subject))
        .filter(revoked_tokens::expires_at.ge(now))
        .select(revoked_tokens::jti)
        .load(conn)
        .await
}
