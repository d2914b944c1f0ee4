//! Embedded migrations, applied with diesel's synchronous harness on a blocking thread.

use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::one_line;
use crate::config::DatabaseUrl;

/// The migrations under `migrations/`, compiled into the binary.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Key of the advisory lock that keeps two instances from migrating at once.
const MIGRATION_LOCK: i64 = 0x7261_7070_6f72_7401;

/// Applies pending migrations under an advisory lock; returns how many ran.
///
/// diesel's harness is synchronous: it runs on a blocking thread through
/// `AsyncConnectionWrapper` (it panics on actix's current-thread runtime otherwise).
pub async fn migrate(url: &DatabaseUrl) -> Result<usize, String> {
    let url = url.clone();
    let task = tokio::task::spawn_blocking(move || -> Result<usize, String> {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(url.expose())
            .map_err(|e| format!("cannot connect to migrate: {}", one_line(&e.to_string())))?;
        let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
        diesel::sql_query(lock)
            .execute(&mut conn)
            .map_err(|e| format!("cannot take the migration lock: {e}"))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.len())
            .map_err(|e| format!("migration failed: {}", one_line(&e.to_string())));
        let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
        let _ = diesel::sql_query(unlock).execute(&mut conn);
        applied
    });
    let applied = task
        .await
        .map_err(|e| format!("migration task failed: {e}"))??;
    if applied > 0 {
        tracing::info!(applied, "applied database migrations");
    }
    Ok(applied)
}

/// Versions of the embedded migrations, oldest first.
pub fn embedded_versions() -> Vec<String> {
    use diesel::migration::MigrationSource;
    let mut versions: Vec<String> = MigrationSource::<diesel::pg::Pg>::migrations(&MIGRATIONS)
        .map(|all| all.iter().map(|m| m.name().version().to_string()).collect())
        .unwrap_or_default();
    versions.sort();
    versions
}
