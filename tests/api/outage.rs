//! The database going away: quick 503s, never a hang or a panic, and recovery by itself.

use std::time::{Duration, Instant};

use rapport::auth::Role;
use reqwest::StatusCode;

use crate::helpers::proxy::DbProxy;
use crate::helpers::{TestApp, TestDatabase, expect_json, expect_problem, server_url, settings};

#[actix_web::test]
async fn an_unreachable_database_is_503_and_the_service_recovers() {
    let db = TestDatabase::new().await;
    // Between the requests and what serves them: the server, or the pooler when the suite
    // runs through one (jobs and startup then go past it, straight to the server).
    let serving = crate::helpers::pooler_url().unwrap_or_else(server_url);
    let proxy = DbProxy::start(format!("{}:{}", serving.host(), serving.port())).await;
    let through_proxy = format!("postgres://postgres@127.0.0.1:{}/{}", proxy.port, db.name);
    let settings = settings(
        &db.url,
        &[
            ("DATABASE_URL", through_proxy.as_str()),
            ("RAPPORT_DB_CONNECT_TIMEOUT", "500ms"),
            ("RAPPORT_DB_POOL_WAIT_TIMEOUT", "500ms"),
        ],
    );
    let app = TestApp::spawn_on(db, settings).await;
    let admin = app.token(Role::Admin);
    expect_json(
        app.get("/v1/users")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;

    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let res = app
            .get("/v1/users")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "took {:?}",
            started.elapsed()
        );
        assert!(res.headers().contains_key("retry-after"));
        expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    }
    let res = app.get("/readyz").send().await.unwrap();
    expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    expect_json(app.get("/healthz").send().await.unwrap(), StatusCode::OK).await;

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = app
            .get("/v1/users")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "did not recover: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    expect_json(app.get("/readyz").send().await.unwrap(), StatusCode::OK).await;
}

#[actix_web::test]
async fn an_exhausted_pool_is_503_quickly() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_DB_POOL_SIZE", "1"),
        ("RAPPORT_DB_POOL_WAIT_TIMEOUT", "200ms"),
    ])
    .await;
    let held = app.state.pool.get().await.unwrap();
    let started = Instant::now();
    let res = app
        .get("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    drop(held);
    let res = app
        .get("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
}
