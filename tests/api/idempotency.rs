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
        "INSERT INTO idempotency_keys (owner, key, request_hash, state, lease_until) \
         VALUES ('service:test-admin', 'busy', $1, 'in_progress', now() + interval '1 hour')",
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

#[derive(diesel::QueryableByName)]
struct Lease {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    live: bool,
}

/// Whether the key is held in progress under a lease that has not lapsed (None: no such key).
async fn lease_live(app: &TestApp, key: &str) -> Option<bool> {
    let mut conn = app.db.connect().await;
    diesel::sql_query(
        "SELECT lease_until > now() AS live FROM idempotency_keys \
         WHERE key = $1 AND state = 'in_progress'",
    )
    .bind::<diesel::sql_types::Text, _>(key)
    .get_result::<Lease>(&mut conn)
    .await
    .ok()
    .map(|l| l.live)
}

#[actix_web::test]
async fn a_request_running_past_its_lease_keeps_its_key() {
    let app = TestApp::spawn_with(&[("RAPPORT_IDEMPOTENCY_LEASE", "300ms")]).await;
    let admin = app.token(Role::Admin);
    let body = serde_json::to_vec(&json!({"name": "Slow Customer"})).unwrap();
    let post = || {
        app.post("/v1/customers")
            .bearer_auth(&admin)
            .header("Idempotency-Key", "slow-1")
            .header("Content-Type", "application/json")
            .body(body.clone())
            .timeout(std::time::Duration::from_secs(20))
            .send()
    };
    // The first request waits on the lock the test holds, far longer than its lease.
    let mut locker = crate::hostile::lock_table(&app, "customers").await;
    let first = tokio::spawn(post());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lease_live(&app, "slow-1").await.is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the key was never claimed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        // Three leases long each: without renewals the key would be up for the taking.
        tokio::time::sleep(std::time::Duration::from_millis(900)).await;
        assert_eq!(lease_live(&app, "slow-1").await, Some(true));
        let retry = post().await.unwrap();
        assert_eq!(retry.headers()["retry-after"], "1");
        expect_problem(retry, StatusCode::CONFLICT, "idempotency_in_progress").await;
    }
    diesel_async::SimpleAsyncConnection::batch_execute(&mut locker, "ROLLBACK")
        .await
        .unwrap();
    let first = expect_json(first.await.unwrap().unwrap(), StatusCode::CREATED).await;
    let replayed = post().await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    let replayed = expect_json(replayed, StatusCode::CREATED).await;
    assert_eq!(replayed["id"], first["id"]);
    assert_eq!(app.count("customers").await, 1);
    // Once the request ended, nothing renews its key.
    assert_eq!(lease_live(&app, "slow-1").await, None);
}

#[actix_web::test]
async fn a_key_whose_lease_lapsed_is_taken_over() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let body = serde_json::to_vec(&json!({"name": "Orphan Customer"})).unwrap();
    let hash = fingerprint("POST", "/v1/customers", "", &body);
    // As an instance that died mid-request leaves it: in progress, its lease run out.
    let mut conn = app.db.connect().await;
    for (key, lease) in [
        ("orphan", "- interval '1 second'"),
        ("alive", "+ interval '1 hour'"),
    ] {
        diesel::sql_query(format!(
            "INSERT INTO idempotency_keys \
                 (owner, key, request_hash, state, lease_until, lease_holder) \
             VALUES ('service:test-admin', '{key}', $1, 'in_progress', now() {lease}, \
                 gen_random_uuid())"
        ))
        .bind::<diesel::sql_types::Bytea, _>(&hash)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let post = |key: &'static str| {
        app.post("/v1/customers")
            .bearer_auth(&admin)
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
    };
    let res = post("alive").await.unwrap();
    expect_problem(res, StatusCode::CONFLICT, "idempotency_in_progress").await;
    assert_eq!(app.count("customers").await, 0);

    let taken = expect_json(post("orphan").await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(app.count("customers").await, 1);
    let replayed = post("orphan").await.unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(
        expect_json(replayed, StatusCode::CREATED).await["id"],
        taken["id"]
    );
    assert_eq!(app.count("customers").await, 1);
}
