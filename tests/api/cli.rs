//! The `rapport` binary itself: token, user create, startup failures, configuration errors.

use std::process::Output;
use std::time::{Duration, Instant};

use rapport::auth::Role;
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::{TEST_SECRET, TEST_SECRET_KEY, TestApp, expect_json, expect_problem};

/// The binary with a clean environment: only what the test passes.
pub fn rapport(db_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rapport"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", db_url)
        .env("RAPPORT_SECRET_KEY", TEST_SECRET_KEY)
        .env("RAPPORT_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true);
    cmd
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

#[actix_web::test]
async fn token_and_serve_agree_with_no_setup() {
    let app = TestApp::spawn_with(&[("RAPPORT_JWT_SECRET", "")]).await;
    let out = rapport(app.db.url.expose())
        .args([
            "token",
            "--role",
            "manager",
            "--subject",
            "deploy-script",
            "--ttl",
            "10m",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    assert_eq!(token.lines().count(), 1, "only the token on stdout");
    let me = expect_json(
        app.get("/v1/me").bearer_auth(&token).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["kind"], "service");
    assert_eq!(me["id"], "deploy-script");
    assert_eq!(me["role"], "manager");

    // A token signed with another secret is refused.
    let out = rapport(app.db.url.expose())
        .env(
            "RAPPORT_JWT_SECRET",
            "some-other-secret-some-other-secret-123",
        )
        .args(["token", "--role", "admin"])
        .output()
        .await
        .unwrap();
    let res = app
        .get("/v1/me")
        .bearer_auth(stdout(&out))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn a_configured_secret_wins_over_the_stored_one() {
    // This app is configured with TEST_SECRET; give its database a stored secret too.
    let app = TestApp::spawn().await;
    let out = rapport(app.db.url.expose())
        .args(["token", "--role", "admin"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let res = app
        .get("/v1/me")
        .bearer_auth(stdout(&out))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let out = rapport(app.db.url.expose())
        .env("RAPPORT_JWT_SECRET", TEST_SECRET)
        .args(["token", "--role", "admin"])
        .output()
        .await
        .unwrap();
    let res = app
        .get("/v1/me")
        .bearer_auth(stdout(&out))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
}

#[actix_web::test]
async fn user_create_reads_the_password_from_stdin_or_the_environment() {
    let app = TestApp::spawn().await;
    let mut child = rapport(app.db.url.expose())
        .args([
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--role",
            "admin",
            "--name",
            "Ops",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"piped password 123\n").await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(uuid::Uuid::parse_str(&stdout(&out)).is_ok());
    let token = app.sign_in("ops@example.com", "piped password 123").await;
    let me = expect_json(
        app.get("/v1/me").bearer_auth(&token).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["name"], "Ops");

    let out = rapport(app.db.url.expose())
        .env("RAPPORT_USER_PASSWORD", "password from env")
        .args([
            "user",
            "create",
            "--email",
            "env@example.com",
            "--role",
            "viewer",
        ])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    app.sign_in("env@example.com", "password from env").await;

    // The audit log names the CLI as the actor.
    let log = expect_json(
        app.get("/v1/audit?actor_id=cli")
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(log["data"].as_array().unwrap().len(), 2);

    // Invalid input is one clear line and writes nothing.
    let out = rapport(app.db.url.expose())
        .env("RAPPORT_USER_PASSWORD", "short")
        .args(["user", "create", "--email", "nope", "--role", "viewer"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("email") && stderr(&out).contains("password"));
    assert_eq!(app.count("users").await, 2);
}

#[actix_web::test]
async fn startup_gives_up_on_an_unreachable_database_with_one_line() {
    let started = Instant::now();
    let out = rapport("postgres://postgres@127.0.0.1:9/rapport")
        .env("RAPPORT_DB_STARTUP_TIMEOUT", "1s")
        .env("RAPPORT_LOG", "error")
        .arg("serve")
        .output()
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rapport: database unreachable at postgres://postgres@127.0.0.1:9/rapport"),
        "{err}"
    );
}

#[actix_web::test]
async fn invalid_settings_stop_startup_naming_the_variable() {
    let out = rapport("postgres://postgres:hunter2@127.0.0.1:5432/x")
        .env("RAPPORT_DB_POOL_SIZE", "lots")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1);
    assert!(
        err.starts_with("rapport: invalid RAPPORT_DB_POOL_SIZE: "),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
}

#[actix_web::test]
async fn openapi_prints_the_committed_spec() {
    let out = rapport("postgres://unused/x")
        .arg("openapi")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}

/// A rolling deploy loses nothing: on SIGTERM `/readyz` turns `503` at once while the
/// listener keeps serving for the drain, so a load balancer that probes it takes the
/// instance out before it closes; requests in flight then finish and the process exits 0.
#[actix_web::test]
async fn sigterm_drains_so_that_no_request_under_load_fails() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    let db = crate::helpers::TestDatabase::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = rapport(db.url.expose())
        .env("RAPPORT_BIND", format!("127.0.0.1:{port}"))
        .env("RAPPORT_JWT_SECRET", TEST_SECRET)
        .env("RAPPORT_SHUTDOWN_DRAIN", "2s")
        .env("RAPPORT_SHUTDOWN_TIMEOUT", "5s")
        .arg("serve")
        .spawn()
        .unwrap();
    // No Application runs in this process to install rustls' crypto provider (a test run alone
    // would panic building the client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ready = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = rapport(db.url.expose())
        .env("RAPPORT_JWT_SECRET", TEST_SECRET)
        .args(["token", "--role", "manager"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);

    // The load balancer: routes to the instance while its probe answers 200.
    let routed = Arc::new(AtomicBool::new(true));
    let signalled = Arc::new(AtomicBool::new(false));
    let (served, after_signal) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let probe = {
        let (client, base, routed) = (client.clone(), base.clone(), routed.clone());
        tokio::spawn(async move {
            while client
                .get(format!("{base}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            routed.store(false, Ordering::SeqCst);
            Instant::now()
        })
    };
    let mut load = Vec::new();
    for n in 0..8 {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        let (routed, signalled) = (routed.clone(), signalled.clone());
        let (served, after_signal) = (served.clone(), after_signal.clone());
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while routed.load(Ordering::SeqCst) {
                i += 1;
                let res = if i % 2 == 0 {
                    client
                        .post(format!("{base}/v1/customers"))
                        .bearer_auth(&token)
                        .json(&serde_json::json!({"name": format!("Drain {n}-{i}")}))
                        .send()
                        .await
                } else {
                    client
                        .get(format!("{base}/v1/customers?limit=20"))
                        .bearer_auth(&token)
                        .send()
                        .await
                };
                match res {
                    Ok(r) if r.status().is_success() => {
                        served.fetch_add(1, Ordering::SeqCst);
                        if signalled.load(Ordering::SeqCst) {
                            after_signal.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    Ok(r) => panic!("a request failed during the drain: {}", r.status()),
                    Err(err) => panic!("a request failed during the drain: {err}"),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    signalled.store(true, Ordering::SeqCst);
    let sent = Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let taken_out = probe.await.unwrap();
    // A failed request panics its task.
    for task in load {
        task.await.unwrap();
    }
    assert!(
        taken_out.duration_since(sent) < Duration::from_secs(1),
        "/readyz turned 503 at once"
    );
    assert!(served.load(Ordering::SeqCst) > 0);
    assert!(
        after_signal.load(Ordering::SeqCst) > 0,
        "requests were served after SIGTERM, before the load balancer took the instance out"
    );
    // Still serving (for whoever has not noticed yet) until the drain ends.
    let res = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server stops after the drain, within the shutdown timeout")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    assert!(
        sent.elapsed() >= Duration::from_secs(2),
        "the listener stayed open for the drain"
    );
    assert!(
        client.get(format!("{base}/healthz")).send().await.is_err(),
        "the listener is closed once the process is gone"
    );
}

/// Starts `rapport serve` on a free port of `db` with `env`, and waits until it is ready.
pub async fn serve(db_url: &str, env: &[(&str, &str)]) -> (tokio::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = rapport(db_url);
    command.env("RAPPORT_BIND", format!("127.0.0.1:{port}"));
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.arg("serve").spawn().unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client
        .get(format!("{base}/readyz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server stopped before it was ready: {status:?}");
        }
        assert!(Instant::now() < deadline, "the server did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, base)
}

/// A stopping instance hands its background import back after the batch under way: its
/// committed batches stay, the attempt is not counted, the lease ends at once, and the next
/// instance resumes it without waiting for the lease and without writing a row twice.
#[actix_web::test]
async fn sigterm_hands_a_running_import_back_to_the_next_instance() {
    use diesel::QueryableByName;
    use diesel::sql_types::{BigInt, Bool, Integer, Text};
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Held {
        #[diesel(sql_type = Text)]
        state: String,
        #[diesel(sql_type = Integer)]
        attempts: i32,
        #[diesel(sql_type = Bool)]
        free: bool,
        #[diesel(sql_type = BigInt)]
        created: i64,
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    const ROWS: usize = 30_000;
    let db = crate::helpers::TestDatabase::new().await;
    let env = [
        ("RAPPORT_IMPORT_INTERVAL", "1s"),
        ("RAPPORT_IMPORT_BATCH", "100"),
        ("RAPPORT_SHUTDOWN_DRAIN", "1s"),
        ("RAPPORT_SHUTDOWN_TIMEOUT", "20s"),
        ("RAPPORT_JWT_SECRET", TEST_SECRET),
    ];
    let (mut first, base) = serve(db.url.expose(), &env).await;
    let out = rapport(db.url.expose())
        .env("RAPPORT_JWT_SECRET", TEST_SECRET)
        .args(["token", "--role", "admin"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out);
    let mut csv = String::from("name,email\n");
    for i in 0..ROWS {
        csv.push_str(&format!("Handed Back {i},handed.{i}@example.com\n"));
    }
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/v1/imports/customers?async=true"))
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let import = expect_json(res, StatusCode::ACCEPTED).await;
    let id = import["id"].as_str().unwrap().to_owned();
    let read = |base: String| {
        let (client, token, id) = (client.clone(), token.clone(), id.clone());
        async move {
            let res = client
                .get(format!("{base}/v1/imports/{id}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            expect_json(res, StatusCode::OK).await
        }
    };
    // Stop the instance once the import has committed some batches, long before its end.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = read(base.clone()).await;
        if now["created"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the import never started: {now}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = first.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), first.wait())
        .await
        .expect("the instance stops")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");

    let mut conn = db.connect().await;
    let held = || {
        diesel::sql_query(
            "SELECT state, attempts, coalesce(lease_until <= now(), true) AS free, created FROM imports WHERE id = $1::uuid",
        )
        .bind::<Text, _>(id.clone())
    };
    let handed: Held = held().get_result(&mut conn).await.unwrap();
    assert_eq!(handed.state, "running");
    assert_eq!(handed.attempts, 0, "a run handed back is not an attempt");
    assert!(handed.free, "the lease ended when the job was handed back");
    assert!(handed.created > 0 && handed.created < ROWS as i64);
    let customers: i64 = diesel::sql_query("SELECT count(*) AS n FROM customers")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n;
    assert_eq!(customers, handed.created, "the committed batches stay");

    // The next instance resumes it at once (a lease of two minutes would hold it back).
    let (mut second, base) = serve(db.url.expose(), &env).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let ended = loop {
        let now = read(base.clone()).await;
        if now["state"] != "running" && now["state"] != "queued" {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "the import was not resumed: {now}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(ended["state"], "succeeded", "{ended}");
    assert_eq!(ended["created"], ROWS, "{ended}");
    assert_eq!(ended["failed"], 0, "{ended}");
    let done: Held = held().get_result(&mut conn).await.unwrap();
    assert_eq!(done.attempts, 1, "one run counted: the one that finished");
    let customers: i64 = diesel::sql_query("SELECT count(*) AS n FROM customers")
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n;
    assert_eq!(customers, ROWS as i64, "no row written twice");
    second.kill().await.unwrap();
}

/// Three instances agree within a second on a change made through one of them, though
/// each caches who may call for a minute here: the database notifies every instance on
/// commit. A signed-out token, a deactivated user and a retired signing key are refused
/// everywhere (without notifications the key ring reloads every 30 s).
#[actix_web::test]
async fn three_instances_agree_at_once_on_signed_out_tokens_users_and_retired_keys() {
    let db = crate::helpers::TestDatabase::new().await;
    let mut instances = Vec::new();
    // A minute's cache: only the notifications can make a change count within a second.
    for _ in 0..3 {
        instances.push(serve(db.url.expose(), &[("RAPPORT_ACCESS_CACHE_TTL", "60s")]).await);
    }
    let bases: Vec<String> = instances.iter().map(|(_, base)| base.clone()).collect();
    let client = reqwest::Client::new();
    // Each instance follows the notifications before the test relies on them.
    for base in &bases {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let res = client.get(format!("{base}/readyz")).send().await.unwrap();
            let health = expect_json(res, StatusCode::OK).await;
            if health["change_notifications"] == "following" {
                break;
            }
            assert!(Instant::now() < deadline, "{health}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mint = |role: &'static str| {
        let url = db.url.expose().to_owned();
        async move {
            let out = rapport(&url)
                .args(["token", "--role", role])
                .output()
                .await
                .unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out)
        }
    };
    let admin = mint("admin").await;
    let me = |base: String, token: String| {
        let client = client.clone();
        async move {
            client
                .get(format!("{base}/v1/me"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Every instance answers within a second of the change, or the test fails.
    let refused_everywhere = |token: String| {
        let bases = bases.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(1);
            for base in &bases {
                while me(base.clone(), token.clone()).await != StatusCode::UNAUTHORIZED {
                    assert!(
                        Instant::now() < deadline,
                        "{base} still takes the token a second after the change"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };

    // A token signed out on the first instance.
    let agent = mint("agent").await;
    for base in &bases {
        assert_eq!(me(base.clone(), agent.clone()).await, StatusCode::OK);
    }
    let res = client
        .post(format!("{}/v1/auth/logout", bases[0]))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    refused_everywhere(agent).await;

    // A user deactivated through the second instance.
    let email = "moved.on@example.com";
    let password = "a long enough password";
    let res = client
        .post(format!("{}/v1/users", bases[1]))
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"email": email, "name": "Moved On", "role": "agent",
                                  "password": password}),
        )
        .send()
        .await
        .unwrap();
    let user = expect_json(res, StatusCode::CREATED).await;
    let res = client
        .post(format!("{}/v1/auth/token", bases[2]))
        .json(&serde_json::json!({"grant_type": "password", "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    let user_token = expect_json(res, StatusCode::OK).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for base in &bases {
        assert_eq!(me(base.clone(), user_token.clone()).await, StatusCode::OK);
    }
    let res = client
        .post(format!(
            "{}/v1/users/{}/deactivate",
            bases[1],
            user["id"].as_str().unwrap()
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    refused_everywhere(user_token).await;

    // A signing key retired by the command line: no instance takes its tokens any more.
    let old = mint("agent").await;
    for base in &bases {
        assert_eq!(me(base.clone(), old.clone()).await, StatusCode::OK);
    }
    let list = rapport(db.url.expose())
        .args(["keys", "list"])
        .output()
        .await
        .unwrap();
    let old_kid = stdout(&list)
        .lines()
        .find(|l| l.ends_with("\tsigning"))
        .and_then(|l| l.split('\t').next())
        .unwrap()
        .to_owned();
    let out = rapport(db.url.expose())
        .args(["keys", "retire", &old_kid])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    refused_everywhere(old).await;
    // The new key signs, and every instance takes its tokens.
    let fresh = mint("agent").await;
    for base in &bases {
        assert_eq!(me(base.clone(), fresh.clone()).await, StatusCode::OK);
    }
    for (mut child, _) in instances {
        child.kill().await.unwrap();
    }
}
