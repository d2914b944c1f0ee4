//! The sign-in throttle across instances (`RAPPORT_RATE_LIMIT_SHARED`): three `rapport
//! serve` of one database, sharing the throttle's books or not. The per-instance rules
//! themselves are tested in `auth.rs`.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_json, expect_problem};

/// An in-process instance to create users through (its admin token), and three `rapport
/// serve` of its database, sharing the throttle or not, each trusting `127.0.0.1` as a
/// proxy so that `X-Forwarded-For` names the client address.
async fn three_instances(shared: &str) -> (TestApp, Vec<tokio::process::Child>, Vec<String>) {
    let env = [
        ("RAPPORT_RATE_LIMIT_SHARED", shared),
        ("RAPPORT_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let app = TestApp::spawn_with(&env).await;
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..3 {
        let (child, base) = crate::cli::serve(app.db.url.expose(), &env).await;
        children.push(child);
        bases.push(base);
    }
    (app, children, bases)
}

/// Creates a user with `password`: their email.
async fn user_with(app: &TestApp, password: &str) -> String {
    let email = format!("throttled-{}@example.com", uuid::Uuid::now_v7().simple());
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(rapport::auth::Role::Admin))
        .json(&json!({"email": email, "name": "U", "role": "viewer", "password": password}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    email
}

async fn attempt(base: &str, email: &str, password: &str, from: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/v1/auth/token"))
        .header("X-Forwarded-For", from)
        .json(&json!({"grant_type": "password", "email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

async fn refused(res: reqwest::Response) {
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After: {retry}");
    expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

/// Fails `n` times at `email` from `from`, one instance after the other, each a `401`.
async fn fail_round_robin(bases: &[String], email: &str, from: &str, n: usize) {
    for i in 0..n {
        let res = attempt(&bases[i % bases.len()], email, "a wrong password", from).await;
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn count(app: &TestApp, query: &str) -> i64 {
    let mut conn = app.db.connect().await;
    let counted: Count = diesel_async::RunQueryDsl::get_result(diesel::sql_query(query), &mut conn)
        .await
        .unwrap();
    counted.n
}

#[actix_web::test]
async fn shared_the_sign_in_throttle_is_one_across_three_instances() {
    let (app, _children, bases) = three_instances("true").await;

    // Failures spread over the three reach the wait at the same count as on one instance,
    // and then every instance refuses, the right password too.
    let target = user_with(&app, "the right password").await;
    fail_round_robin(&bases, &target, "203.0.113.1", 5).await;
    for base in &bases {
        refused(attempt(base, &target, "the right password", "203.0.113.1").await).await;
    }

    // A success through one instance clears the account on all of them: five more
    // failures are free again, and the sixth waits.
    let cleared = user_with(&app, "the right password").await;
    fail_round_robin(&bases, &cleared, "203.0.113.2", 4).await;
    let res = attempt(&bases[1], &cleared, "the right password", "203.0.113.2").await;
    expect_json(res, StatusCode::OK).await;
    fail_round_robin(&bases, &cleared, "203.0.113.2", 5).await;
    refused(attempt(&bases[2], &cleared, "a wrong password", "203.0.113.2").await).await;

    // An address spraying ten accounts over the three is slowed on all of them, except for
    // an account that signed in from it before, through another instance.
    let regular = user_with(&app, "the regular's password").await;
    let res = attempt(&bases[0], &regular, "the regular's password", "203.0.113.3").await;
    expect_json(res, StatusCode::OK).await;
    for i in 0..10 {
        let sprayed = format!("sprayed{i}@example.com");
        let res = attempt(&bases[i % 3], &sprayed, "Winter2026!", "203.0.113.3").await;
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    refused(attempt(&bases[1], "next@example.com", "Winter2026!", "203.0.113.3").await).await;
    let res = attempt(&bases[2], &regular, "the regular's password", "203.0.113.3").await;
    expect_json(res, StatusCode::OK).await;
    let res = attempt(&bases[1], "next@example.com", "Winter2026!", "198.51.100.1").await;
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    // The shared books hold hashes only: no email, no address.
    for (table, column) in [
        ("login_throttle_accounts", "account"),
        ("login_throttle_address_failures", "account"),
        ("login_throttle_address_failures", "address"),
        ("login_throttle_known", "account"),
        ("login_throttle_known", "address"),
    ] {
        let plain = count(
            &app,
            &format!("SELECT count(*) AS n FROM {table} WHERE {column} !~ '^[0-9a-f]{{64}}$'"),
        )
        .await;
        assert_eq!(
            plain, 0,
            "{table}.{column} holds something else than hashes"
        );
    }
    assert!(count(&app, "SELECT count(*) AS n FROM login_throttle_accounts").await >= 2);
    assert!(count(&app, "SELECT count(*) AS n FROM login_throttle_known").await >= 2);
}

#[actix_web::test]
async fn unshared_each_instance_throttles_sign_ins_on_its_own() {
    let (app, _children, bases) = three_instances("false").await;
    let target = user_with(&app, "the right password").await;
    // Five free failures on each of the three, then the waits.
    fail_round_robin(&bases, &target, "203.0.113.1", 15).await;
    refused(attempt(&bases[0], &target, "the right password", "203.0.113.1").await).await;
    // The throttle wrote nothing to the database.
    let rows = count(
        &app,
        "SELECT (SELECT count(*) FROM login_throttle_accounts)
              + (SELECT count(*) FROM login_throttle_address_failures)
              + (SELECT count(*) FROM login_throttle_known) AS n",
    )
    .await;
    assert_eq!(rows, 0);
}

#[actix_web::test]
async fn without_its_shared_books_the_throttle_counts_on_one_instance_and_signs_in() {
    let app = TestApp::spawn_with(&[("RAPPORT_RATE_LIMIT_SHARED", "true")]).await;
    let target = user_with(&app, "the right password").await;
    let other = user_with(&app, "the other password").await;
    let base = app.address.clone();
    app.sql("ALTER TABLE login_throttle_accounts RENAME TO login_throttle_accounts_away")
        .await;
    // No 500 and no refusal of everyone: this instance counts on its own.
    fail_round_robin(std::slice::from_ref(&base), &target, "203.0.113.1", 5).await;
    refused(attempt(&base, &target, "the right password", "203.0.113.1").await).await;
    let res = attempt(&base, &other, "the other password", "203.0.113.1").await;
    expect_json(res, StatusCode::OK).await;

    // Back: outcomes are shared again without being asked.
    app.sql("ALTER TABLE login_throttle_accounts_away RENAME TO login_throttle_accounts")
        .await;
    fail_round_robin(std::slice::from_ref(&base), &other, "203.0.113.1", 1).await;
    assert_eq!(
        count(&app, "SELECT count(*) AS n FROM login_throttle_accounts").await,
        1
    );
}

#[actix_web::test]
async fn shared_a_burst_through_one_instance_still_gets_five_checks() {
    let app = TestApp::spawn_with(&[("RAPPORT_RATE_LIMIT_SHARED", "true")]).await;
    let target = user_with(&app, "the right password").await;
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let (base, target) = (app.address.clone(), target.clone());
        burst.spawn(async move {
            attempt(&base, &target, "a wrong password", "203.0.113.1")
                .await
                .status()
        });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(res) = burst.join_next().await {
        match res.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!((1..=5).contains(&checked), "{checked} guesses were checked");
    assert_eq!(checked + refused, 30);
    // Each check that failed is in the shared books.
    let failures = count(
        &app,
        "SELECT coalesce(sum(failures), 0)::bigint AS n FROM login_throttle_accounts",
    )
    .await;
    assert_eq!(failures, checked);
}
