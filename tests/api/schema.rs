//! Facts about the schema, checked against a real database.

use diesel::{Connection, RunQueryDsl};
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;

use crate::helpers::TestDatabase;

#[derive(diesel::QueryableByName)]
struct Unindexed {
    #[diesel(sql_type = diesel::sql_types::Text)]
    constraint: String,
}

#[actix_web::test]
async fn every_foreign_key_has_an_index() {
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    // A foreign key is covered when some whole-table (not partial) index starts with its
    // columns, in order.
    let missing: Vec<Unindexed> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT c.conrelid::regclass || '.' || c.conname AS constraint \
             FROM pg_constraint c \
             WHERE c.contype = 'f' AND NOT EXISTS ( \
                 SELECT 1 FROM pg_index i \
                 WHERE i.indrelid = c.conrelid AND i.indpred IS NULL \
                   AND (string_to_array(i.indkey::text, ' ')::int2[]) \
                       [1:array_length(c.conkey, 1)] = c.conkey)",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    let missing: Vec<String> = missing.into_iter().map(|m| m.constraint).collect();
    assert!(
        missing.is_empty(),
        "foreign keys without an index: {missing:?}"
    );
}

#[actix_web::test]
async fn every_migration_reverts_and_reapplies() {
    let db = TestDatabase::new().await;
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            AsyncConnectionWrapper::<AsyncPgConnection>::establish(url.expose()).unwrap();
        let applied = conn.applied_migrations().unwrap().len();
        assert_eq!(applied, rapport::db::embedded_versions().len());
        conn.revert_all_migrations(rapport::db::MIGRATIONS).unwrap();
        #[derive(diesel::QueryableByName)]
        struct Tables {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let left: Tables = diesel::sql_query(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public' \
             AND tablename <> '__diesel_schema_migrations'",
        )
        .get_result(&mut conn)
        .unwrap();
        assert_eq!(left.n, 0, "down migrations leave tables behind");
        let reapplied = conn
            .run_pending_migrations(rapport::db::MIGRATIONS)
            .unwrap();
        assert_eq!(reapplied.len(), applied);
    })
    .await
    .unwrap();
}

#[derive(diesel::QueryableByName)]
struct GinIndex {
    #[diesel(sql_type = diesel::sql_types::Text)]
    index: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pending_list: bool,
}

#[actix_web::test]
async fn the_gin_indexes_of_customers_keep_no_pending_list() {
    let db = TestDatabase::new().await;
    let mut conn = db.connect().await;
    // A pending list is read in full by every search until it is merged: lists and searches
    // would slow down with each customer created.
    let gin: Vec<GinIndex> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT c.relname::text AS index, \
                    NOT coalesce('fastupdate=off' = ANY (c.reloptions), false) AS pending_list \
             FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam \
             WHERE a.amname = 'gin' AND i.indrelid = 'customers'::regclass ORDER BY 1",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    let pending: Vec<&str> = gin
        .iter()
        .filter(|g| g.pending_list)
        .map(|g| g.index.as_str())
        .collect();
    assert!(
        pending.is_empty(),
        "GIN indexes with a pending list: {pending:?}"
    );
    assert!(gin.len() >= 5, "the customers' GIN indexes were found");
}
