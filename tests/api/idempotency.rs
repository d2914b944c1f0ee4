use diesel_async::RunQueryDsl;
use rapport::auth::Role;
use rapport::http::idempotency::fingerprint;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_json, expect_problem};

#[actix_web::test]
async fn a_retried_post_replays_the_first_response_and_writes_once() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let body = json!({"email": "once@example.com", "name": "Once", "role": "agent"});
    let send = |key: &'static str| {
        app.post("/v1/users")
            .bearer_auth(&admin)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };

    let first = send("key-1").await.unwrap();
    let location = first.headers()["location"].to_str().unwrap().to_owned();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, StatusCode::CREATED).await;

    let again = send("key-1").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["location"].to_str().unwrap(), location);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let again = expect_json(again, StatusCode::CREATED).await;
    assert_eq!(first, again);
    assert_eq!(app.count("users").await, 1);
    assert_eq!(app.count("audit_events").await, 1);

    // The same key with another body is refused, and writes nothing.
    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "key-1")
        .json(&json!({"email": "twice@example.com", "name": "Twice", "role": "agent"}))
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    // So is the same key on another endpoint.
    let res = app
        .post("/v1/api-clients")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "key-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.count("users").await, 1);
}

#[actix_web::test]
async fn keys_belong_to_their_caller() {
    let app = TestApp::spawn().await;
    let body = |email: &str| json!({"email": email, "name": "N", "role": "viewer"});
    let (_, other_admin) = app.user(Role::Admin).await;
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .header("Idempotency-Key", "shared")
        .json(&body("a@example.com"))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    let res = app
        .post("/v1/users")
        .bearer_auth(&other_admin)
        .header("Idempotency-Key", "shared")
        .json(&body("b@example.com"))
        .send()
        .await
        .unwrap();
    let created = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(created["email"], "b@example.com");
}

#[actix_web::test]
async fn a_failed_request_releases_its_key() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "fix-and-retry")
        .json(&json!({"email": "bad", "name": "N", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "fix-and-retry")
        .json(&json!({"email": "good@example.com", "name": "N", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
}

#[actix_web::test]
async fn a_key_still_in_progress_is_409_and_bad_keys_are_400() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let body =
        serde_json::to_vec(&json!({"email": "slow@example.com", "name": "S", "role": "viewer"}))
            .unwrap();
    // A request with this key and body is running (as another worker would record it).
    let hash = fingerprint("POST", "/v1/users", "", &body);
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "INSERT INTO idempotency_keys (owner, key, request_hash, state) \
         VALUES ('service:test-admin', 'busy', $1, 'in_progress')",
    )
    .bind::<diesel::sql_types::Bytea, _>(&hash)
    .execute(&mut conn)
    .await
    .unwrap();
    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "busy")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["retry-after"], "1");
    expect_problem(res, StatusCode::CONFLICT, "idempotency_in_progress").await;
    assert_eq!(app.count("users").await, 0);

    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .header("Idempotency-Key", "k".repeat(256))
        .json(&json!({"email": "a@example.com", "name": "A", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_header").await;
    assert_eq!(app.count("users").await, 0);
}

#[actix_web::test]
async fn secrets_are_never_kept_for_replay() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/v1/api-clients")
        .bearer_auth(app.token(Role::Admin))
        .header("Idempotency-Key", "client-1")
        .json(&json!({"name": "Shop", "scopes": ["customers:read"]}))
        .send()
        .await
        .unwrap();
    let client = expect_json(res, StatusCode::CREATED).await;
    let secret = client["client_secret"].as_str().unwrap();
    assert_eq!(app.count("idempotency_keys").await, 0);
    let mut conn = app.db.connect().await;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(
        "SELECT count(*) AS n FROM audit_events WHERE changes::text LIKE '%' || $1 || '%'",
    )
    .bind::<diesel::sql_types::Text, _>(secret)
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(n.n, 0, "the secret is in the audit log");
}
