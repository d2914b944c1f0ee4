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

/// Three `rapport serve` of one database under 10 requests a minute, sharing the limits or
/// not, each ready; with a service token for `subject`'s requests.
async fn three_instances(
    db: &crate::helpers::TestDatabase,
    shared: &str,
) -> (Vec<tokio::process::Child>, Vec<String>) {
    let env = [
        ("RAPPORT_RATE_LIMIT", "10/60s"),
        ("RAPPORT_RATE_LIMIT_SHARED", shared),
    ];
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for _ in 0..3 {
        let (child, base) = crate::cli::serve(db.url.expose(), &env).await;
        children.push(child);
        bases.push(base);
    }
    (children, bases)
}

async fn mint(db: &crate::helpers::TestDatabase, subject: &str) -> String {
    let out = crate::cli::rapport(db.url.expose())
        .args(["token", "--role", "agent", "--subject", subject])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", crate::cli::stderr(&out));
    crate::cli::stdout(&out)
}

async fn list_on(client: &reqwest::Client, base: &str, token: &str) -> reqwest::Response {
    client
        .get(format!("{base}/v1/customers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Sends one request to each instance in turn, a round every 300 ms (longer than the time
/// between two flushes), until every instance refuses in the same round. Returns how many
/// were admitted, and the last refusal.
async fn spread_until_refused(bases: &[String], token: &str) -> (usize, reqwest::Response) {
    let client = reqwest::Client::new();
    let mut admitted = 0;
    for _ in 0..40 {
        let mut refusals = Vec::new();
        for base in bases {
            let res = list_on(&client, base, token).await;
            match res.status() {
                StatusCode::OK => admitted += 1,
                StatusCode::TOO_MANY_REQUESTS => refusals.push(res),
                other => panic!("{base}: {other}"),
            }
        }
        if refusals.len() == bases.len() {
            return (admitted, refusals.pop().unwrap());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!("still served after 40 rounds: {admitted} admitted");
}

#[actix_web::test]
async fn shared_limits_count_a_caller_once_across_three_instances() {
    let db = crate::helpers::TestDatabase::new().await;
    let (_children, bases) = three_instances(&db, "true").await;
    let client = reqwest::Client::new();
    for base in &bases {
        let res = client.get(format!("{base}/readyz")).send().await.unwrap();
        let health = expect_json(res, StatusCode::OK).await;
        assert_eq!(health["rate_limits"], "shared", "{health}");
    }

    // Spread over the three: refused once the one limit of 10 is spent, give or take what
    // the instances admit before they agree (docs/scaling.md: here at most one request per
    // other instance and round; two allowed for a slow flush).
    let token = mint(&db, "spreader").await;
    let (admitted, refused) = spread_until_refused(&bases, &token).await;
    assert!((10..=14).contains(&admitted), "{admitted} admitted");
    let retry: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!(retry >= 1, "Retry-After: {retry}");
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        "\"default\";q=10;w=60"
    );
    let current = header(&refused, "ratelimit");
    assert!(current.starts_with("\"default\";r=0;t="), "{current}");
    assert!(reset(&current) >= 1, "{current}");
    expect_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;

    // A caller who spends it all on the first instance is refused by the other two within
    // a second, after a request or two there (the bound: a quarter of the quota each).
    let token = mint(&db, "one-door").await;
    let mut served = 0;
    while list_on(&client, &bases[0], &token).await.status() == StatusCode::OK {
        served += 1;
        assert!(served <= 12, "the first instance serves on");
    }
    assert!(served >= 10, "{served} served");
    for base in &bases[1..] {
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut admitted = 0;
        loop {
            let res = list_on(&client, base, &token).await;
            if res.status() == StatusCode::TOO_MANY_REQUESTS {
                assert!(res.headers().get("retry-after").is_some());
                break;
            }
            assert_eq!(res.status(), StatusCode::OK);
            admitted += 1;
            assert!(
                std::time::Instant::now() < deadline,
                "{base} still serves a second after the limit was spent elsewhere"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            admitted <= 3,
            "{base} admitted {admitted} past the shared limit"
        );
    }
}

#[actix_web::test]
async fn without_sharing_each_instance_allows_its_own_quota() {
    let db = crate::helpers::TestDatabase::new().await;
    let (_children, bases) = three_instances(&db, "false").await;
    let res = reqwest::get(format!("{}/readyz", bases[0])).await.unwrap();
    let health = expect_json(res, StatusCode::OK).await;
    assert!(health.get("rate_limits").is_none(), "{health}");
    let token = mint(&db, "spreader").await;
    let (admitted, refused) = spread_until_refused(&bases, &token).await;
    assert!(admitted >= 30, "{admitted} admitted");
    expect_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
}

#[actix_web::test]
async fn a_bad_shared_setting_stops_startup_naming_it() {
    let out = crate::cli::rapport("postgres://postgres@127.0.0.1:5432/unused")
        .env("RAPPORT_RATE_LIMIT_SHARED", "sometimes")
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = crate::cli::stderr(&out);
    assert_eq!(
        err,
        "rapport: invalid RAPPORT_RATE_LIMIT_SHARED: expected true or false, got \"sometimes\""
    );
}

/// Polls `/readyz` until its `rate_limits` is `want`, for up to two seconds.
async fn rate_limits_become(app: &TestApp, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let res = app.get("/readyz").send().await.unwrap();
        let health = expect_json(res, StatusCode::OK).await;
        if health["rate_limits"] == want {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn when_the_shared_buckets_cannot_be_reached_each_instance_counts_on_its_own() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_RATE_LIMIT", "5/60s"),
        ("RAPPORT_RATE_LIMIT_SHARED", "true"),
        ("RAPPORT_METRICS_BIND", "127.0.0.1:0"),
    ])
    .await;
    let metric = async || {
        let url = format!("{}/metrics", app.metrics_address.as_ref().unwrap());
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("rapport_rate_limits_shared "))
            .map(str::to_owned)
    };
    let (_, token) = app.user(Role::Agent).await;
    assert_eq!(list(&app, &token).await.status(), StatusCode::OK);
    rate_limits_become(&app, "shared").await;
    assert_eq!(metric().await.as_deref(), Some("1"));

    // The flush fails (the table is gone): requests are still served, counted here alone,
    // and refused past this instance's limit, never all refused.
    app.sql("ALTER TABLE rate_limit_buckets RENAME TO rate_limit_buckets_away")
        .await;
    assert_eq!(list(&app, &token).await.status(), StatusCode::OK);
    rate_limits_become(&app, "local").await;
    assert_eq!(metric().await.as_deref(), Some("0"));
    let mut served = 2;
    loop {
        let res = list(&app, &token).await;
        if res.status() == StatusCode::TOO_MANY_REQUESTS {
            break;
        }
        assert_eq!(res.status(), StatusCode::OK);
        served += 1;
        assert!(served <= 5, "served past the limit");
    }
    assert_eq!(served, 5);

    // Back: the instance shares again without being asked.
    app.sql("ALTER TABLE rate_limit_buckets_away RENAME TO rate_limit_buckets")
        .await;
    rate_limits_become(&app, "shared").await;
    assert_eq!(metric().await.as_deref(), Some("1"));
}

#[actix_web::test]
async fn on_sigterm_the_last_counts_are_shared_and_the_service_stops() {
    let db = crate::helpers::TestDatabase::new().await;
    let (mut child, base) = crate::cli::serve(
        db.url.expose(),
        &[
            ("RAPPORT_RATE_LIMIT", "100/60s"),
            ("RAPPORT_RATE_LIMIT_SHARED", "true"),
            ("RAPPORT_SHUTDOWN_DRAIN", "0s"),
        ],
    )
    .await;
    let token = mint(&db, "last-words").await;
    let client = reqwest::Client::new();
    for _ in 0..3 {
        assert_eq!(
            list_on(&client, &base, &token).await.status(),
            StatusCode::OK
        );
    }
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the service stops")
        .unwrap();
    assert!(status.success(), "{status:?}");
    #[derive(diesel::QueryableByName)]
    struct Left {
        #[diesel(sql_type = diesel::sql_types::Double)]
        tokens: f64,
    }
    let mut conn = db.connect().await;
    let left: Vec<Left> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT tokens FROM rate_limit_buckets"),
        &mut conn,
    )
    .await
    .unwrap();
    // All three counted (a refill of a few hundredths meanwhile).
    assert_eq!(left.len(), 1);
    assert!((97.0..98.0).contains(&left[0].tokens), "{}", left[0].tokens);
}
