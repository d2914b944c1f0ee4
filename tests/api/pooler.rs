//! Behind a transaction-mode pooler (`RAPPORT_DB_POOLER=transaction`, issue 24): request
//! sessions set nothing, startup refuses sessions that do not start with the request limits
//! (naming each and the `connect_query` that sets them), and jobs, migrations and startup go
//! past the pooler. Run here against the server directly, so that what reaches PostgreSQL can
//! be seen; the whole suite also runs through a real PgBouncer when
//! `RAPPORT_TEST_POOLER_URL` names one (`tests/support/pgbouncer.ini`, `.ci/run`).

use diesel_async::RunQueryDsl;
use rapport::auth::Role;
use rapport::startup::Application;

use crate::helpers::{TestApp, TestDatabase};

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    source: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    application: String,
}

/// Where the session's statement timeout came from, and who the session says it is.
async fn statement_timeout(conn: &mut diesel_async::AsyncPgConnection) -> Setting {
    diesel::sql_query(
        "SELECT setting AS value, source, current_setting('application_name') AS application \
         FROM pg_settings WHERE name = 'statement_timeout'",
    )
    .get_result(conn)
    .await
    .unwrap()
}

#[actix_web::test]
async fn behind_a_transaction_pooler_requests_set_nothing_and_startup_checks_the_sessions() {
    let db = TestDatabase::new().await;
    // The "pooler" is the server itself, so that its sessions can be inspected; the direct
    // URL names itself, so that the sessions made past the pooler can be told apart.
    let direct = format!("{}?application_name=rapport-direct", db.url.expose());
    let overrides = [
        ("DATABASE_URL", db.url.expose()),
        ("RAPPORT_DIRECT_DATABASE_URL", direct.as_str()),
        ("RAPPORT_DB_POOLER", "transaction"),
        ("RAPPORT_DB_STATEMENT_TIMEOUT", "7s"),
    ];
    let settings = crate::helpers::settings(&db.url, &overrides);

    // Sessions that start with the server's defaults are refused, each wrong setting named,
    // with the line that sets them all.
    let err = match Application::build(settings.clone()).await {
        Ok(_) => panic!("startup accepted sessions without the request limits"),
        Err(err) => err,
    };
    assert!(err.contains("RAPPORT_DB_POOLER=transaction"), "{err}");
    for wrong in [
        "statement_timeout is 0 (needed: 7000)",
        "idle_in_transaction_session_timeout is 0 (needed: 60000)",
        "jit is on (needed: off)",
        "pg_trgm.word_similarity_threshold is 0.6 (needed: 0.4)",
    ] {
        assert!(err.contains(wrong), "{wrong}: {err}");
    }
    let line = "connect_query = 'SET pg_trgm.word_similarity_threshold = 0.4; SET jit = off; \
                SET statement_timeout = 7000; SET idle_in_transaction_session_timeout = 60000'";
    assert!(err.contains(line), "{err}");
    assert!(!err.contains('\n'));

    // The server starts the database's sessions as the message says: the app starts.
    let mut admin = rapport::db::connect(
        &crate::helpers::server_url().maintenance(),
        std::time::Duration::from_secs(10),
    )
    .await
    .unwrap();
    for (name, value) in [
        ("pg_trgm.word_similarity_threshold", "0.4"),
        ("jit", "off"),
        ("statement_timeout", "7000"),
        ("idle_in_transaction_session_timeout", "60000"),
    ] {
        diesel::sql_query(format!(
            "ALTER DATABASE {} SET {name} = '{value}'",
            rapport::db::quote_ident(&db.name)
        ))
        .execute(&mut admin)
        .await
        .unwrap();
    }
    let app = TestApp::spawn_on(db, settings).await;
    app.get_ok("/v1/customers", &app.token(Role::Admin)).await;

    // A request session holds the limit from the server's defaults, not from a SET of its
    // own (which a pooler would have left on a session another client gets next).
    let mut request = app.state.pool.get().await.unwrap();
    let shown = statement_timeout(&mut request).await;
    assert_eq!(
        (shown.value.as_str(), shown.source.as_str()),
        ("7000", "database")
    );
    assert_ne!(shown.application, "rapport-direct");
    // The jobs' sessions are their own, past the pooler, with their own limit set.
    let mut job = app.state.jobs.get().await.unwrap();
    let shown = statement_timeout(&mut job).await;
    assert_eq!(
        (
            shown.value.as_str(),
            shown.source.as_str(),
            shown.application.as_str()
        ),
        ("1800000", "session", "rapport-direct")
    );
}

#[actix_web::test]
async fn startup_waits_for_a_pooler_that_comes_up_after_the_service() {
    let db = TestDatabase::new().await;
    let server = crate::helpers::server_url();
    let proxy = std::sync::Arc::new(
        crate::helpers::proxy::DbProxy::start(format!("{}:{}", server.host(), server.port())).await,
    );
    proxy.cut();
    let pooled = format!("postgres://postgres@127.0.0.1:{}/{}", proxy.port, db.name);
    let settings = crate::helpers::settings(
        &db.url,
        &[
            ("DATABASE_URL", pooled.as_str()),
            ("RAPPORT_DIRECT_DATABASE_URL", db.url.expose()),
            ("RAPPORT_DB_POOLER", "transaction"),
            ("RAPPORT_DB_STARTUP_TIMEOUT", "20s"),
        ],
    );
    crate::helpers::start_pooled_sessions_as_requests_need(&db, &settings).await;
    let comes_up = proxy.clone();
    let started = std::time::Instant::now();
    actix_web::rt::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        comes_up.restore();
    });
    let app = TestApp::spawn_on(db, settings).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(1500));
    app.get_ok("/v1/customers", &app.token(Role::Admin)).await;
}
