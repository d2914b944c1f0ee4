use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use rapport::auth::Role;
use rapport::auth::jwt::{Claims, SubjectKind};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TEST_SECRET, TestApp, expect_json, expect_problem};

fn forge(secret: &str, issuer: &str, audience: &str, exp_offset: i64) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: "forger".to_owned(),
        iss: issuer.to_owned(),
        aud: audience.to_owned(),
        iat: now,
        nbf: now - 120,
        exp: now + exp_offset,
        jti: "x".to_owned(),
        kind: SubjectKind::Service,
        role: Some(Role::Admin),
        scopes: vec![],
    };
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn requests_without_a_valid_token_are_401() {
    let app = TestApp::spawn().await;

    let res = app.get("/v1/me").send().await.unwrap();
    assert_eq!(
        res.headers()["www-authenticate"].to_str().unwrap(),
        "Bearer realm=\"rapport\""
    );
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let cases = [
        (
            "bad signature",
            forge(
                "another-secret-another-secret-0123",
                "rapport",
                "rapport-api",
                600,
            ),
        ),
        (
            "wrong audience",
            forge(TEST_SECRET, "rapport", "someone-else", 600),
        ),
        (
            "wrong issuer",
            forge(TEST_SECRET, "impostor", "rapport-api", 600),
        ),
        ("garbage", "not-a-token".to_owned()),
    ];
    for (case, token) in cases {
        let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
        let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        assert_eq!(
            problem["detail"], "the token is not valid for this service",
            "{case}"
        );
    }

    let expired = forge(TEST_SECRET, "rapport", "rapport-api", -120);
    let res = app
        .get("/v1/me")
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(problem["detail"].as_str().unwrap().contains("expired"));

    let res = app
        .get("/v1/me")
        .header("Authorization", format!("Basic {}", app.token(Role::Admin)))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // A correctly forged-looking token is accepted only with the right secret, issuer, audience.
    let good = forge(TEST_SECRET, "rapport", "rapport-api", 600);
    let res = app.get("/v1/me").bearer_auth(&good).send().await.unwrap();
    expect_json(res, StatusCode::OK).await;
}

#[actix_web::test]
async fn another_roles_rights_are_403_and_write_nothing() {
    let app = TestApp::spawn().await;
    let before = app.count("users").await;
    for role in [Role::Viewer, Role::Agent, Role::Manager] {
        let res = app
            .post("/v1/users")
            .bearer_auth(app.token(role))
            .json(&json!({"email": "x@example.com", "name": "X", "role": "admin"}))
            .send()
            .await
            .unwrap();
        let problem = expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(problem["detail"].as_str().unwrap().contains("users:write"));
    }
    let res = app
        .get("/v1/audit")
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("users").await, before);
}

#[actix_web::test]
async fn sign_in_issues_a_token_that_says_who_the_user_is() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user(Role::Agent).await;
    let me = expect_json(
        app.get("/v1/me").bearer_auth(&token).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["kind"], "user");
    assert_eq!(me["id"], id.to_string());
    assert_eq!(me["role"], "agent");
    assert!(me["email"].as_str().unwrap().ends_with("@example.com"));
    let scopes: Vec<&str> = me["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(scopes.contains(&"customers:write"));
    assert!(!scopes.contains(&"pii:read"));
    assert!(!scopes.contains(&"users:write"));
}

#[actix_web::test]
async fn failed_sign_ins_do_not_say_whether_the_account_exists() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .json(
            &json!({"email": "known@example.com", "name": "K", "role": "viewer",
                      "password": "the right password"}),
        )
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    let attempt = |email: &str, password: &str| {
        app.post("/v1/auth/token")
            .json(&json!({"grant_type": "password", "email": email, "password": password}))
            .send()
    };
    let unknown = attempt("nobody@example.com", "a long enough password")
        .await
        .unwrap();
    let unknown = expect_problem(unknown, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let wrong = attempt("known@example.com", "wrong password here")
        .await
        .unwrap();
    let wrong = expect_problem(wrong, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(unknown["detail"], wrong["detail"]);
    assert_eq!(unknown["title"], wrong["title"]);

    let res = app
        .post("/v1/auth/token")
        .json(&json!({"grant_type": "magic", "email": "a@b.co"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
}

#[actix_web::test]
async fn repeated_failures_are_slowed_down() {
    let app = TestApp::spawn().await;
    let email = "target@example.com";
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .json(&json!({"email": email, "name": "T", "role": "viewer", "password": "the right password"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    let attempt = |password: &'static str| {
        app.post("/v1/auth/token")
            .json(&json!({"grant_type": "password", "email": email, "password": password}))
            .send()
    };
    for _ in 0..5 {
        let res = attempt("a wrong password").await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // Now even the right password must wait.
    let res = attempt("the right password").await.unwrap();
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after));
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = attempt("the right password").await.unwrap();
    expect_json(res, StatusCode::OK).await;
}

#[actix_web::test]
async fn a_deactivated_users_tokens_stop_working_at_once() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user(Role::Manager).await;
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    expect_json(res, StatusCode::OK).await;

    let res = app
        .post(&format!("/v1/users/{id}/deactivate"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    let user = expect_json(res, StatusCode::OK).await;
    assert_eq!(user["active"], false);

    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no longer active")
    );
}

#[actix_web::test]
async fn a_demoted_admin_loses_admin_rights_at_once() {
    let app = TestApp::spawn().await;
    app.user(Role::Admin).await;
    let (id, token) = app.user(Role::Admin).await;
    let res = app
        .get("/v1/audit")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = app
        .patch(&format!("/v1/users/{id}"))
        .bearer_auth(app.token(Role::Admin))
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = app
        .get("/v1/audit")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}
