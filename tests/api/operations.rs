use rapport::auth::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, expect_json, expect_problem};

#[actix_web::test]
async fn health_readiness_and_metrics() {
    let app = TestApp::spawn().await;
    let health = expect_json(app.get("/healthz").send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(health["status"], "ok");
    let ready = expect_json(app.get("/readyz").send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(ready["status"], "ready");

    let user = "/v1/users/0193b0a6-0000-7000-8000-000000000001";
    app.get(user)
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    app.get("/no/such/route").send().await.unwrap();
    let res = app
        .get("/metrics")
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/v1/users/{id}",status="404"} 1"#)
    );
    assert!(text.contains(r#"http_requests_total{method="GET",route="/readyz",status="200"} 1"#));
    assert!(text.contains(r#"route="unmatched",status="404"#));
    assert!(text.contains("http_request_duration_seconds_bucket"));
    assert!(text.contains("db_pool_max_connections 4"));
    assert!(text.contains("db_pool_connections "));
    assert!(!text.contains("0193b0a6"), "ids must not become labels");
}

#[actix_web::test]
async fn the_docs_are_served() {
    let app = TestApp::spawn().await;
    let res = app.get("/docs").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/docs/");
    let res = app.get("/docs/").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("swagger-ui"));
    let res = app
        .get("/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("/openapi.json"));
}

#[actix_web::test]
async fn cors_allows_only_configured_origins() {
    let app = TestApp::spawn_with(&[("RAPPORT_CORS_ORIGINS", "https://app.example.com")]).await;
    let res = app
        .request(reqwest::Method::OPTIONS, "/v1/users")
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let res = app
        .get("/healthz")
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("etag") && exposed.contains("x-request-id"));

    let res = app
        .get("/healthz")
        .header("Origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());

    // Without configured origins, browsers get no CORS grant at all.
    let plain = TestApp::spawn().await;
    let res = plain
        .get("/healthz")
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers().get("access-control-allow-origin").is_none());
}

#[actix_web::test]
async fn metrics_need_the_metrics_read_scope() {
    let app = TestApp::spawn().await;
    let res = app.get("/metrics").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let viewer = app.token(Role::Viewer);
    let res = app
        .get("/metrics")
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let other = app.client_token("not-a-scraper", &["customers:read"]).await;
    let res = app
        .get("/metrics")
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    let scraper = app.client_token("prometheus", &["metrics:read"]).await;
    let res = app
        .get("/metrics")
        .bearer_auth(&scraper)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(res.text().await.unwrap().contains("http_requests_total"));
}

#[actix_web::test]
async fn metrics_on_their_own_address_need_no_token_and_leave_the_main_port() {
    let app = TestApp::spawn_with(&[("RAPPORT_METRICS_BIND", "127.0.0.1:0")]).await;
    let metrics = app.metrics_address.clone().expect("a metrics listener");
    app.get("/healthz").send().await.unwrap();
    let res = app
        .client
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#));

    // Nothing else is served there.
    let res = app
        .client
        .get(format!("{metrics}/healthz"))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .client
        .post(format!("{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // And the main port has no /metrics at all, token or not, whatever the method.
    let admin = app.token(Role::Admin);
    let res = app
        .get("/metrics")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/metrics").send().await.unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .post("/metrics")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}
