//! Read replicas against a real streaming replica of the test server (made or restarted by
//! tests/support/replica.sh): reads go to it while it keeps up, a write's consistency token
//! keeps a client's next read on the primary until the replica has replayed that write, a
//! lagging or failed replica is skipped, and `/readyz` and `/metrics` say so.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDatabase, expect_json, expect_problem, settings};

const TOKEN_HEADER: &str = "rapport-consistency-token";

/// The port of the local streaming replica, made once per test run.
fn replica_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        replica_script(&[])
            .trim()
            .parse()
            .expect("the script prints the replica's port")
    })
}

/// Runs tests/support/replica.sh: with no argument it makes or starts the replica and
/// prints its port; `stop` stops it.
fn replica_script(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/replica.sh");
    let out = std::process::Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .expect("runs tests/support/replica.sh");
    assert!(
        out.status.success(),
        "tests/support/replica.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs one statement on the replica's `postgres` database as the superuser.
fn on_replica(port: u16, sql: &str) {
    let out = std::process::Command::new("psql")
        .args([
            "-X",
            "-qAt",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-p", &port.to_string(), "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn replica_states(app: &TestApp) -> Vec<(String, String)> {
    let body: Value = app
        .get("/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["replicas"]
        .as_array()
        .expect("readyz lists the replicas")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `rapport_reads_total` by who served them: (primary, replica-1).
async fn reads_served(app: &TestApp) -> (u64, u64) {
    let count = async |who: &str| {
        app.metric(&format!("rapport_reads_total{{served_by=\"{who}\"}}"))
            .await
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no reads counted for {who}"))
    };
    (count("primary").await, count("replica-1").await)
}

async fn create(app: &TestApp, name: &str) -> (String, String) {
    let res = app
        .post("/v1/customers")
        .bearer_auth(app.token(Role::Agent))
        .json(&json!({"kind": "individual", "name": name}))
        .send()
        .await
        .unwrap();
    let token = res
        .headers()
        .get(TOKEN_HEADER)
        .expect("a write carries a consistency token")
        .to_str()
        .unwrap()
        .to_owned();
    let body = expect_json(res, StatusCode::CREATED).await;
    (body["id"].as_str().unwrap().to_owned(), token)
}

/// The customer list's ids, read with `token` when given.
async fn listed(app: &TestApp, token: Option<&str>) -> Vec<String> {
    let mut req = app
        .get("/v1/customers?limit=100")
        .bearer_auth(app.token(Role::Agent));
    if let Some(token) = token {
        req = req.header(TOKEN_HEADER, token);
    }
    let body = expect_json(req.send().await.unwrap(), StatusCode::OK).await;
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn reads_follow_a_replica_that_keeps_up_and_never_miss_the_readers_own_writes() {
    let port = replica_port();
    let db = TestDatabase::new().await;
    let replica_url = format!("postgres://postgres@{}:{port}/{}", db.url.host(), db.name);
    // The second replica does not exist: skipped, reported down, retried.
    let urls = format!("{replica_url},postgres://postgres@127.0.0.1:1/{}", db.name);
    let settings = settings(
        &db.url,
        &[
            ("RAPPORT_READ_DATABASE_URLS", urls.as_str()),
            ("RAPPORT_REPLICA_MAX_LAG", "2s"),
            // The failover part reads as fast as it can.
            ("RAPPORT_RATE_LIMIT", "off"),
        ],
    );
    let app = TestApp::spawn_on(db, settings).await;

    // The replica has replayed the test database's creation and keeps up.
    eventually("the replica to serve", async || {
        let states = replica_states(&app).await;
        (states
            == [
                ("replica-1".to_owned(), "serving".to_owned()),
                ("replica-2".to_owned(), "down".to_owned()),
            ])
        .then_some(())
    })
    .await;

    // A write answers with a token; a read carrying it finds the write, wherever it is served.
    let (first, token) = create(&app, "Ada Lovelace").await;
    assert!(listed(&app, Some(&token)).await.contains(&first));
    // Reads without a token go to the replica while it keeps up.
    let (_, replica_before) = reads_served(&app).await;
    eventually("a read served by the replica", async || {
        listed(&app, None).await;
        (reads_served(&app).await.1 > replica_before).then_some(())
    })
    .await;

    // The replica stops replaying: the reader's next write is not there.
    on_replica(port, "SELECT pg_wal_replay_pause()");
    let (second, token) = create(&app, "Grace Hopper").await;
    let (primary_before, _) = reads_served(&app).await;
    for _ in 0..5 {
        assert!(
            listed(&app, Some(&token)).await.contains(&second),
            "a read with the write's token must see the write"
        );
    }
    assert!(
        reads_served(&app).await.0 >= primary_before + 5,
        "reads past the replica's position are the primary's"
    );
    // The same holds for the other lists and for exports: an interaction recorded now is in
    // the list and the export read with its token.
    let res = app
        .post(&format!("/v1/customers/{second}/interactions"))
        .bearer_auth(app.token(Role::Agent))
        .json(
            &json!({"channel": "phone", "direction": "inbound", "kind": "inquiry",
                      "subject": "Opening hours", "occurred_at": "2026-12-01T10:00:00Z"}),
        )
        .send()
        .await
        .unwrap();
    let recorded = res.headers().get(TOKEN_HEADER).cloned();
    let interaction = expect_json(res, StatusCode::CREATED).await["id"].clone();
    let recorded = recorded.expect("a write carries a consistency token");
    for path in [
        format!("/v1/customers/{second}/interactions"),
        "/v1/interactions".to_owned(),
        "/v1/exports/interactions".to_owned(),
    ] {
        let res = app
            .get(&path)
            .bearer_auth(app.token(Role::Agent))
            .header("Accept", "application/x-ndjson")
            .header(TOKEN_HEADER, recorded.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body = res.text().await.unwrap();
        assert!(
            body.contains(interaction.as_str().unwrap()),
            "{path} read with the token misses the interaction: {body}"
        );
    }
    // Past the lag limit the replica is skipped for every read, and readyz says so.
    eventually("the replica to be reported lagging", async || {
        (replica_states(&app).await[0].1 == "lagging").then_some(())
    })
    .await;
    assert!(listed(&app, None).await.contains(&second));
    // The service stays ready: the primary serves.
    let res = app.get("/readyz").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // Replaying again, it catches up and serves the token's reads itself.
    on_replica(port, "SELECT pg_wal_replay_resume()");
    eventually("the replica to serve again", async || {
        (replica_states(&app).await[0].1 == "serving").then_some(())
    })
    .await;
    let (_, replica_before) = reads_served(&app).await;
    eventually("the token's read served by the replica", async || {
        let ids = listed(&app, Some(&token)).await;
        assert!(ids.contains(&second));
        (reads_served(&app).await.1 > replica_before).then_some(())
    })
    .await;

    // Every read the document names as one a replica may serve is served by it.
    for path in [
        format!("/v1/customers/{second}/timeline"),
        format!("/v1/customers/{second}/interactions"),
        format!("/v1/customers/{second}/purchases"),
        format!("/v1/customers/{second}/opportunities"),
        "/v1/interactions".to_owned(),
        "/v1/complaints".to_owned(),
        "/v1/complaints/stats".to_owned(),
        "/v1/follow-ups".to_owned(),
        "/v1/purchases".to_owned(),
        "/v1/opportunities".to_owned(),
        "/v1/events".to_owned(),
        "/v1/exports/customers".to_owned(),
        "/v1/exports/interactions".to_owned(),
        "/v1/exports/purchases".to_owned(),
        "/v1/exports/survey-responses".to_owned(),
        "/v1/exports/contacts".to_owned(),
        "/v1/exports/pareto".to_owned(),
        "/v1/analytics/pareto".to_owned(),
        "/v1/analytics/segments".to_owned(),
        "/v1/analytics/churn-risk".to_owned(),
        "/v1/analytics/win-back?from=2026-01-01&to=2026-04-30".to_owned(),
        "/v1/analytics/forecast".to_owned(),
    ] {
        let (_, replica_before) = reads_served(&app).await;
        eventually(&format!("{path} served by the replica"), async || {
            let res = app
                .get(&path)
                .bearer_auth(app.token(Role::Admin))
                .header("Accept", "application/x-ndjson")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            res.bytes().await.unwrap();
            (reads_served(&app).await.1 > replica_before).then_some(())
        })
        .await;
    }

    // The metrics give each replica's lag and state.
    let text = app
        .get("/metrics")
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("rapport_replica_lag_seconds{replica=\"replica-1\"}"));
    assert!(!text.contains("rapport_replica_lag_seconds{replica=\"replica-2\"}"));
    assert!(text.contains("rapport_replica_serving{replica=\"replica-2\"} 0"));
    // No replica address is shown to anyone (as `host:port`: the port's digits alone may be
    // part of a counter's value).
    assert!(!text.contains(&format!(":{port}")) && !text.contains("127.0.0.1:1/"));

    // The replica stops, as in a crash, under steady reads: no read fails, the primary
    // serves them, and readyz reports the replica down; started again, it serves again.
    let stop = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        tokio::task::spawn_blocking(|| replica_script(&["stop"]))
            .await
            .unwrap();
    };
    let readers = (0..6).map(|i| {
        let (app, second) = (&app, &second);
        async move {
            let path = if i % 2 == 0 {
                "/v1/customers?limit=20"
            } else {
                "/v1/exports/customers"
            };
            let until = Instant::now() + Duration::from_secs(3);
            let mut served = 0;
            while Instant::now() < until {
                let res = app
                    .get(path)
                    .bearer_auth(app.token(Role::Admin))
                    .header("Accept", "application/x-ndjson")
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let body = res.text().await.unwrap();
                assert_eq!(
                    status,
                    StatusCode::OK,
                    "{path} failed while the replica stopped: {body}"
                );
                assert!(body.contains(second), "{path} misses a customer: {body}");
                served += 1;
            }
            served
        }
    });
    let (served, ()) = tokio::join!(futures_util::future::join_all(readers), stop);
    assert!(served.iter().all(|n| *n > 0));
    eventually("the stopped replica to be reported down", async || {
        (replica_states(&app).await[0].1 == "down").then_some(())
    })
    .await;
    tokio::task::spawn_blocking(|| replica_script(&[]))
        .await
        .unwrap();
    eventually("the restarted replica to serve", async || {
        (replica_states(&app).await[0].1 == "serving").then_some(())
    })
    .await;

    // A token this service did not give is refused, not ignored.
    for bad in ["yesterday", "1/2/3", "0/ZZ"] {
        let res = app
            .get("/v1/customers")
            .bearer_auth(app.token(Role::Agent))
            .header(TOKEN_HEADER, bad)
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::BAD_REQUEST, "invalid_header").await;
    }
}

#[actix_web::test]
async fn without_replicas_writes_carry_no_token() {
    let app = TestApp::spawn().await;
    let res = app
        .post("/v1/customers")
        .bearer_auth(app.token(Role::Agent))
        .json(&json!({"kind": "individual", "name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().get(TOKEN_HEADER).is_none());
    let body: Value = app
        .get("/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body.get("replicas").is_none());
}
