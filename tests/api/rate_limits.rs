use std::time::Duration;

use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_json, expect_problem};

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `t` of a `RateLimit` header.
fn reset(value: &str) -> u64 {
    value.rsplit_once(";t=").unwrap().1.parse().unwrap()
}

async fn list(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/v1/customers")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn past_its_limit_a_caller_is_429_and_the_headers_count_down() {
    // 5 per minute refills one request every 12 seconds: the 6 requests below take far less.
    let app = TestApp::spawn_with(&[("RAPPORT_RATE_LIMIT", "5/60s")]).await;
    let (_, token) = app.user(Role::Agent).await;
    for left in (0..5).rev() {
        let res = list(&app, &token).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "ratelimit-policy"), "\"default\";q=5;w=60");
        let current = header(&res, "ratelimit");
        assert!(
            current.starts_with(&format!("\"default\";r={left};t=")),
            "{current}"
        );
        assert!((1..=60).contains(&reset(&current)), "{current}");
    }
    let res = list(&app, &token).await;
    let retry: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((10..=12).contains(&retry), "Retry-After: {retry}");
    assert!(header(&res, "ratelimit").starts_with("\"default\";r=0;t="));
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // Another caller has a budget of its own, and unauthenticated requests count for nobody.
    let (_, other) = app.user(Role::Agent).await;
    let res = list(&app, &other).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(header(&res, "ratelimit").starts_with("\"default\";r=4;"));
    let res = app.get("/v1/customers").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("ratelimit").is_none());
    assert!(res.headers().get("ratelimit-policy").is_none());
}

#[actix_web::test]
async fn a_client_with_its_own_limit_gets_it_and_off_turns_it_off() {
    let app = TestApp::spawn_with(&[("RAPPORT_RATE_LIMIT", "5/60s")]).await;
    let admin = app.token(Role::Admin);
    let mut tokens = Vec::new();
    for (name, limit) in [("Roomy", json!("100/10s")), ("Free", json!("off"))] {
        let res = app
            .post("/v1/api-clients")
            .bearer_auth(&admin)
            .json(&json!({"name": name, "scopes": ["customers:read"], "rate_limit": limit}))
            .send()
            .await
            .unwrap();
        let client = expect_json(res, StatusCode::CREATED).await;
        assert_eq!(client["rate_limit"], limit);
        let res = app
            .post("/v1/auth/token")
            .json(
                &json!({"grant_type": "client_credentials", "client_id": client["id"],
                          "client_secret": client["client_secret"]}),
            )
            .send()
            .await
            .unwrap();
        let body = expect_json(res, StatusCode::OK).await;
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    for left in (92..100).rev() {
        let res = list(&app, &tokens[0]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(header(&res, "ratelimit-policy"), "\"client\";q=100;w=10");
        assert!(header(&res, "ratelimit").starts_with(&format!("\"client\";r={left};")));
    }
    for _ in 0..8 {
        let res = list(&app, &tokens[1]).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert!(res.headers().get("ratelimit").is_none());
    }
    // A client without one takes the default.
    let plain = app.client_token("Plain", &["customers:read"]).await;
    let res = list(&app, &plain).await;
    assert_eq!(header(&res, "ratelimit-policy"), "\"default\";q=5;w=60");

    let res = app
        .post("/v1/api-clients")
        .bearer_auth(&admin)
        .json(&json!({"name": "Odd", "scopes": ["customers:read"], "rate_limit": "5 a day"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
}

#[actix_web::test]
async fn once_the_bucket_refills_the_caller_is_served_again() {
    let app = TestApp::spawn_with(&[("RAPPORT_RATE_LIMIT", "2/2s")]).await;
    let (_, token) = app.user(Role::Agent).await;
    let mut refused = None;
    for _ in 0..20 {
        let res = list(&app, &token).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(res);
            break;
        }
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = refused.expect("a 429 within 20 requests at 2 per 2s");
    let retry: u64 = header(&res, "retry-after").parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    tokio::time::sleep(Duration::from_secs(retry)).await;
    let res = list(&app, &token).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn browsers_may_read_the_rate_limit_headers() {
    let app = TestApp::spawn_with(&[("RAPPORT_CORS_ORIGINS", "https://app.example.com")]).await;
    let (_, token) = app.user(Role::Agent).await;
    let res = app
        .get("/v1/customers")
        .bearer_auth(&token)
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let exposed = header(&res, "access-control-expose-headers").to_ascii_lowercase();
    for name in ["ratelimit", "ratelimit-policy", "retry-after"] {
        assert!(
            exposed.split(',').any(|h| h.trim() == name),
            "{name} not in {exposed}"
        );
    }
    assert_eq!(header(&res, "ratelimit-policy"), "\"default\";q=600;w=60");
}
