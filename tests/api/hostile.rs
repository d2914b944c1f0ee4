//! Hostile clients and hostile input (issue 18): a request the database cannot answer in time
//! is cut by the session's `statement_timeout` and answered `503`; no byte sequence in a path,
//! a query or a body gets a `500`.

use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rapport::auth::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, expect_json, expect_problem};

/// A connection of the test's own holding `table` locked inside an open transaction, so that
/// every statement of the app touching it waits.
pub async fn lock_table(app: &TestApp, table: &str) -> AsyncPgConnection {
    let mut conn = app.db.connect().await;
    conn.batch_execute(&format!(
        "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    ))
    .await
    .unwrap();
    conn
}

#[derive(diesel::QueryableByName)]
struct Shown {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

async fn show(conn: &mut AsyncPgConnection, setting: &str) -> String {
    diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
        .get_result::<Shown>(conn)
        .await
        .unwrap()
        .value
}

#[actix_web::test]
async fn a_request_cut_by_the_statement_timeout_is_503_and_the_server_goes_on() {
    let app = TestApp::spawn_with(&[("RAPPORT_DB_STATEMENT_TIMEOUT", "300ms")]).await;
    let admin = app.token(Role::Admin);
    app.get_ok("/v1/customers", &admin).await;

    let mut locker = lock_table(&app, "customers").await;
    let started = Instant::now();
    let res = app
        .get("/v1/customers")
        .bearer_auth(&admin)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    // Generous: the statement is cancelled after 300 ms; without a timeout it waits for ever.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let problem = expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("time limit"),
        "{problem}"
    );
    // A write waits and is cut too, and leaves nothing behind.
    let res = app
        .post("/v1/customers")
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;

    locker.batch_execute("ROLLBACK").await.unwrap();
    let list = app.get_ok("/v1/customers", &admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.count("customers").await, 0);
    let res = app
        .post("/v1/customers")
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
}

#[actix_web::test]
async fn pooled_sessions_run_under_their_timeouts() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_DB_STATEMENT_TIMEOUT", "1500ms"),
        ("RAPPORT_DB_JOB_STATEMENT_TIMEOUT", "2h"),
        ("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "45s"),
    ])
    .await;
    let mut request = app.state.pool.get().await.unwrap();
    assert_eq!(show(&mut request, "statement_timeout").await, "1500ms");
    assert_eq!(
        show(&mut request, "idle_in_transaction_session_timeout").await,
        "45s"
    );
    let mut job = app.state.jobs.get().await.unwrap();
    assert_eq!(show(&mut job, "statement_timeout").await, "2h");
    assert_eq!(
        show(&mut job, "idle_in_transaction_session_timeout").await,
        "45s"
    );
    // The defaults.
    let app = TestApp::spawn().await;
    let mut request = app.state.pool.get().await.unwrap();
    assert_eq!(show(&mut request, "statement_timeout").await, "30s");
    assert_eq!(
        show(&mut request, "idle_in_transaction_session_timeout").await,
        "1min"
    );
    let mut job = app.state.jobs.get().await.unwrap();
    assert_eq!(show(&mut job, "statement_timeout").await, "30min");
}

#[actix_web::test]
async fn a_session_idle_in_a_transaction_is_ended_and_answered_503() {
    let app = TestApp::spawn_with(&[("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "200ms")]).await;
    let mut conn = app.state.pool.get().await.unwrap();
    conn.batch_execute("BEGIN; SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = diesel::sql_query("SELECT 1")
        .execute(&mut *conn)
        .await
        .expect_err("the server ended the idle session");
    let api = rapport::http::ApiError::from(err);
    assert_eq!(api.code(), rapport::http::ErrorCode::ServiceUnavailable);
    drop(conn);
    // The pool replaces the ended connection.
    let admin = app.token(Role::Admin);
    for _ in 0..5 {
        let res = app
            .get("/v1/customers")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            return;
        }
        expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    }
    panic!("the pool did not replace the ended connection");
}
