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
        cv: None,
    };
    let header = Header {
        kid: Some(rapport::auth::jwt::configured_kid(secret)),
        ..Default::default()
    };
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[actix_web::test]
async fn requests_without_a_valid_token_are_401() {
    let app = TestApp::spawn().await;
    // The forged tokens are service tokens: only a recorded one is accepted.
    app.sql(
        "INSERT INTO service_tokens (jti, subject, role, kid, issued_by, expires_at) \
         VALUES ('x', 'forger', 'admin', 'k', 'test', now() + interval '1 hour')",
    )
    .await;

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
async fn a_demoted_admins_tokens_stop_working_at_once() {
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
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
}

/// Creates a user with `password` through the API: their email and id.
async fn user_with(app: &TestApp, role: &str, password: &str) -> (String, String) {
    let email = format!("{role}-{}@example.com", uuid::Uuid::now_v7().simple());
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .json(&json!({"email": email, "name": "U", "role": role, "password": password}))
        .send()
        .await
        .unwrap();
    let user = expect_json(res, StatusCode::CREATED).await;
    (email, user["id"].as_str().unwrap().to_owned())
}

async fn password_attempt(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut req = app
        .post("/v1/auth/token")
        .json(&json!({"grant_type": "password", "email": email, "password": password}));
    if let Some(chain) = forwarded_for {
        req = req.header("X-Forwarded-For", chain);
    }
    req.send().await.unwrap()
}

fn retry_after(res: &reqwest::Response) -> u64 {
    res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[actix_web::test]
async fn a_burst_of_guesses_gets_five_checks_and_locks_out_nobody_else() {
    let app = TestApp::spawn().await;
    let (target, _) = user_with(&app, "viewer", "the right password").await;
    let (colleague, _) = user_with(&app, "agent", "the colleague's password").await;

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let req = app
            .post("/v1/auth/token")
            .json(&json!({"grant_type": "password", "email": target,
                          "password": "a wrong password"}));
        burst.spawn(async move { req.send().await.unwrap() });
    }
    let (mut checked, mut refused, mut wait) = (0, 0, 0);
    while let Some(res) = burst.join_next().await {
        let res = res.unwrap();
        match res.status() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                wait = wait.max(retry_after(&res));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!((1..=5).contains(&checked), "{checked} guesses were checked");
    assert_eq!(checked + refused, 30);

    // Locked out now, even with the right password...
    let res = password_attempt(&app, &target, "the right password", None).await;
    wait = wait.max(retry_after(&res));
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // ...but another user behind the same address is not.
    let res = password_attempt(&app, &colleague, "the colleague's password", None).await;
    expect_json(res, StatusCode::OK).await;

    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(100)).await;
    let res = password_attempt(&app, &target, "the right password", None).await;
    expect_json(res, StatusCode::OK).await;
}

/// Fails once at each of ten unknown accounts "from" `forwarded_for`: enough different
/// accounts to slow that address down.
async fn spray(app: &TestApp, forwarded_for: Option<&str>) {
    for i in 0..10 {
        let res = password_attempt(
            app,
            &format!("sprayed{i}@example.com"),
            "Winter2026!",
            forwarded_for,
        )
        .await;
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[actix_web::test]
async fn a_spraying_address_is_slowed_but_not_its_known_users() {
    let app = TestApp::spawn().await;
    let (regular, _) = user_with(&app, "agent", "the regular's password").await;
    app.sign_in(&regular, "the regular's password").await;
    spray(&app, None).await;
    let res = password_attempt(&app, "next@example.com", "Winter2026!", None).await;
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // Someone who signed in from here before is not held up by the address.
    let res = password_attempt(&app, &regular, "the regular's password", None).await;
    expect_json(res, StatusCode::OK).await;
}

#[actix_web::test]
async fn x_forwarded_for_is_ignored_without_trusted_proxies() {
    let app = TestApp::spawn().await;
    // Each guess claims another address; all are counted against the real peer.
    for i in 0..10 {
        let res = password_attempt(
            &app,
            &format!("sprayed{i}@example.com"),
            "Winter2026!",
            Some(&format!("203.0.113.{i}")),
        )
        .await;
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    let res = password_attempt(
        &app,
        "next@example.com",
        "Winter2026!",
        Some("198.51.100.77"),
    )
    .await;
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[actix_web::test]
async fn behind_trusted_proxies_the_right_most_untrusted_address_is_the_client() {
    let app = TestApp::spawn_with(&[("RAPPORT_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")]).await;
    spray(&app, Some("203.0.113.1, 10.1.2.3")).await;
    let slowed = |chain: &'static str| {
        let app = &app;
        async move {
            let res = password_attempt(app, "next@example.com", "Winter2026!", Some(chain)).await;
            res.status()
        }
    };
    // The sprayer, however it dresses up the left of the header, and through any of our proxies.
    assert_eq!(slowed("203.0.113.1").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        slowed("198.51.100.9, 203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        slowed("203.0.113.1, 10.9.9.9").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client behind the same proxies is its own address.
    assert_eq!(slowed("198.51.100.9").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        slowed("203.0.113.1, 198.51.100.10").await,
        StatusCode::UNAUTHORIZED
    );
}

#[actix_web::test]
async fn an_admins_password_reset_ends_the_users_tokens() {
    let app = TestApp::spawn().await;
    let (email, id) = user_with(&app, "agent", "the first password").await;
    let token = app.sign_in(&email, "the first password").await;
    app.get_ok("/v1/me", &token).await;

    let res = app
        .patch(&format!("/v1/users/{id}"))
        .bearer_auth(app.token(Role::Admin))
        .json(&json!({"password": "the second password"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;

    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    let fresh = app.sign_in(&email, "the second password").await;
    app.get_ok("/v1/me", &fresh).await;
}

#[actix_web::test]
async fn a_reactivated_user_still_needs_a_new_token() {
    let app = TestApp::spawn().await;
    let (email, id) = user_with(&app, "agent", "a long enough password").await;
    let token = app.sign_in(&email, "a long enough password").await;
    for action in ["deactivate", "reactivate"] {
        let res = app
            .post(&format!("/v1/users/{id}/{action}"))
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap();
        expect_json(res, StatusCode::OK).await;
    }
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let fresh = app.sign_in(&email, "a long enough password").await;
    app.get_ok("/v1/me", &fresh).await;
}

#[actix_web::test]
async fn a_clients_tokens_end_when_its_scopes_change_anywhere() {
    let app = TestApp::spawn().await;
    let token = app.client_token("Shop", &["customers:read"]).await;
    app.get_ok("/v1/me", &token).await;
    // Changed behind this instance's back (another instance, plain SQL): the cached access
    // may be trusted for at most a second.
    app.sql("UPDATE api_clients SET scopes = '{customers:read,customers:write}'")
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
}

#[actix_web::test]
async fn logout_revokes_only_the_token_it_carries() {
    let app = TestApp::spawn().await;
    let (email, _) = user_with(&app, "agent", "a long enough password").await;
    let token = app.sign_in(&email, "a long enough password").await;
    let other = app.sign_in(&email, "a long enough password").await;

    let res = app
        .post("/v1/auth/logout")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    let problem = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(problem["detail"].as_str().unwrap().contains("revoked"));
    let res = app
        .post("/v1/auth/logout")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    app.get_ok("/v1/me", &other).await;
    let fresh = app.sign_in(&email, "a long enough password").await;
    app.get_ok("/v1/me", &fresh).await;
    assert_eq!(app.count("revoked_tokens").await, 1);

    // A service token can sign out too.
    let service = app.token(Role::Viewer);
    let res = app
        .post("/v1/auth/logout")
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .get("/v1/me")
        .bearer_auth(&service)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}
