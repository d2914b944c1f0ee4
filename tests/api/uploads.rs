//! Hostile uploads (issue 18): trickling clients hold no database connection and cannot
//! starve anyone, each caller has a bounded number of uploads in flight, a quiet upload is
//! cut off with a `408`, sizes and inflation are capped with a `413` naming the limit, and an
//! upload whose client or instance went away is failed by the worker.

use std::io::Write;
use std::time::{Duration, Instant};

use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, expect_json, expect_problem};

/// An upload written by hand over a socket, as slowly as a test likes.
struct RawUpload {
    socket: TcpStream,
}

impl RawUpload {
    /// Sends the request head of a CSV import (chunked when `length` is `None`).
    async fn start(app: &TestApp, token: &str, length: Option<usize>) -> Self {
        let address = app.address.trim_start_matches("http://");
        let mut socket = TcpStream::connect(address).await.unwrap();
        let framing = match length {
            Some(n) => format!("Content-Length: {n}"),
            None => "Transfer-Encoding: chunked".to_owned(),
        };
        let head = format!(
            "POST /v1/imports/customers HTTP/1.1\r\nHost: {address}\r\n\
             Authorization: Bearer {token}\r\nContent-Type: text/csv\r\n{framing}\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        RawUpload { socket }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.unwrap();
        self.socket.flush().await.unwrap();
    }

    /// The answer: status and body (the server closes or sends its length).
    async fn answer(mut self) -> (u16, Value) {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.socket.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
                Ok(Err(_)) => break,
            }
            if let Some(parsed) = parse_answer(&raw) {
                return parsed;
            }
        }
        parse_answer(&raw)
            .unwrap_or_else(|| panic!("no whole answer: {}", String::from_utf8_lossy(&raw)))
    }
}

/// Status and JSON body of a complete HTTP/1.1 answer with a `Content-Length`.
fn parse_answer(raw: &[u8]) -> Option<(u16, Value)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })?
        .parse()
        .ok()?;
    (body.len() >= length).then(|| (status, serde_json::from_str(&body[..length]).unwrap()))
}

fn csv_row(n: usize) -> String {
    format!("trickle-{n},Customer {n}\n")
}

#[actix_web::test]
async fn trickling_uploads_hold_no_connection_and_everyone_else_is_served() {
    // Three connections in the pool and six uploads trickling: when each upload held a
    // connection, lists and `/readyz` were 503 until the uploads ended.
    let app = TestApp::spawn_with(&[
        ("RAPPORT_DB_POOL_SIZE", "3"),
        ("RAPPORT_IMPORT_UPLOADS_PER_CALLER", "2"),
        ("RAPPORT_UPLOAD_IDLE_TIMEOUT", "5s"),
    ])
    .await;
    let mut callers = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..3 {
        let (id, token) = app.user(Role::Manager).await;
        callers.push(token);
        keys.push(format!("user:{id}"));
    }
    let header = "external_id,name\n";
    let mut uploads = Vec::new();
    let mut bodies = Vec::new();
    for (i, token) in callers.iter().flat_map(|t| [t, t]).enumerate() {
        let body = format!("{header}{}", csv_row(i));
        let mut upload = RawUpload::start(&app, token, Some(body.len())).await;
        upload.send(&body.as_bytes()[..5]).await;
        uploads.push(upload);
        bodies.push(body);
    }
    // Every upload has reached its handler.
    let deadline = Instant::now() + Duration::from_secs(10);
    while keys.iter().any(|k| app.state.uploads.held_by(k) < 2) {
        assert!(Instant::now() < deadline, "the uploads never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A third upload of the first caller waits its turn.
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(&callers[0])
        .header("Content-Type", "text/csv")
        .body(format!("{header}{}", csv_row(99)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["retry-after"], "5");
    let problem = expect_problem(res, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("2 uploads"),
        "{problem}"
    );

    // While all six trickle, byte by byte, everyone else is served at once.
    let admin = app.token(Role::Admin);
    let mut sent = 5;
    for _ in 0..4 {
        for (upload, body) in uploads.iter_mut().zip(&bodies) {
            upload.send(&body.as_bytes()[sent..=sent]).await;
        }
        sent += 1;
        let started = Instant::now();
        let list = app
            .get("/v1/customers")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        expect_json(list, StatusCode::OK).await;
        let ready = app.get("/readyz").send().await.unwrap();
        assert_eq!(ready.status(), StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "served in {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // Each upload then ends and is imported; the caller's places are given back.
    for (mut upload, body) in uploads.into_iter().zip(&bodies) {
        upload.send(&body.as_bytes()[sent..]).await;
        let (status, report) = upload.answer().await;
        assert_eq!(status, 201, "{report}");
        assert_eq!(report["created"], 1, "{report}");
    }
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(&callers[0])
        .header("Content-Type", "text/csv")
        .body(format!("{header}{}", csv_row(99)))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    assert_eq!(app.count("customers").await, 7);
}

async fn imports(app: &TestApp) -> Vec<Value> {
    let page = app
        .get_ok("/v1/imports?limit=100", &app.token(Role::Admin))
        .await;
    page["data"].as_array().unwrap().clone()
}

#[actix_web::test]
async fn an_upload_that_goes_quiet_is_cut_off_with_a_408_and_keeps_nothing() {
    let app = TestApp::spawn_with(&[("RAPPORT_UPLOAD_IDLE_TIMEOUT", "300ms")]).await;
    let token = app.token(Role::Manager);
    let mut upload = RawUpload::start(&app, &token, None).await;
    let chunk = "external_id,name\nq-1,Quiet One\n";
    upload
        .send(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
        .await;
    let started = Instant::now();
    let (status, problem) = upload.answer().await;
    assert_eq!(status, 408, "{problem}");
    assert_eq!(problem["code"], "request_timeout");
    assert!(
        problem["detail"].as_str().unwrap().contains("300ms"),
        "{problem}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // Nothing of it is kept, and the import says why it failed.
    assert_eq!(app.count("customers").await, 0);
    assert_eq!(app.count("import_chunks").await, 0);
    let listed = imports(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "failed");
    assert!(
        listed[0]["error"]
            .as_str()
            .unwrap()
            .contains("stopped arriving"),
        "{}",
        listed[0]
    );
    // An upload that keeps sending, however slowly, is never cut off.
    let mut upload = RawUpload::start(&app, &token, None).await;
    for part in ["external_id,name\n", "s-1,Slow One\n", "s-2,Slow Two\n"] {
        upload
            .send(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    upload.send(b"0\r\n\r\n").await;
    let (status, report) = upload.answer().await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["created"], 2);
}

#[actix_web::test]
async fn an_upload_whose_client_went_away_is_failed_and_freed() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1s")]).await;
    let token = app.token(Role::Manager);
    // A client that hangs up mid-body.
    let mut upload = RawUpload::start(&app, &token, Some(10_000)).await;
    upload.send(b"external_id,name\ngone-1,Gone\n").await;
    drop(upload);
    // The instance that received an upload died (simulated: an upload left `receiving`,
    // untouched for an hour, with a chunk stored) beside one that is alive.
    app.sql(
        "INSERT INTO imports (id, resource, mode, format, dry_run, all_or_nothing, background, \
         state, actor_type, actor_id, updated_at) VALUES \
         ('00000000-0000-7000-8000-000000000001', 'customers', 'insert', 'csv', false, false, \
          false, 'receiving', 'service', 'test', now() - interval '1 hour'), \
         ('00000000-0000-7000-8000-000000000002', 'customers', 'insert', 'csv', false, false, \
          false, 'receiving', 'service', 'test', now())",
    )
    .await;
    app.sql(
        "INSERT INTO import_chunks (import_id, seq, data) VALUES \
         ('00000000-0000-7000-8000-000000000001', 0, convert_to('external_id,name', 'UTF8')), \
         ('00000000-0000-7000-8000-000000000002', 0, convert_to('external_id,name', 'UTF8'))",
    )
    .await;
    const DEAD: &str = "00000000-0000-7000-8000-000000000001";
    const ALIVE: &str = "00000000-0000-7000-8000-000000000002";
    let deadline = Instant::now() + Duration::from_secs(15);
    let listed = loop {
        let listed = imports(&app).await;
        let settled = listed
            .iter()
            .filter(|i| i["id"] != ALIVE)
            .all(|i| i["state"] == "failed");
        if settled || Instant::now() > deadline {
            break listed;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let find = |id: &str| listed.iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(find(DEAD)["state"], "failed", "{listed:?}");
    assert!(
        find(DEAD)["error"]
            .as_str()
            .unwrap()
            .contains("stopped before its end"),
        "{listed:?}"
    );
    assert_eq!(find(ALIVE)["state"], "receiving");
    let hung_up: Vec<&Value> = listed
        .iter()
        .filter(|i| i["id"] != DEAD && i["id"] != ALIVE)
        .collect();
    assert_eq!(hung_up.len(), 1, "{listed:?}");
    assert_eq!(hung_up[0]["state"], "failed", "{}", hung_up[0]);
    // Only the live upload's chunk is kept.
    assert_eq!(app.count("import_chunks").await, 1);
    assert_eq!(app.count("customers").await, 0);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[actix_web::test]
async fn sizes_and_inflation_are_capped_with_a_413_naming_the_limit() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_MAX_BYTES", "64KiB")]).await;
    let token = app.token(Role::Manager);
    let mut big = String::from("external_id,name\n");
    for n in 0..4000 {
        big.push_str(&csv_row(n));
    }
    assert!(big.len() > 64 * 1024);
    // Declared too large: refused before anything is kept.
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("65536 bytes"),
        "{problem}"
    );
    assert!(imports(&app).await.is_empty());
    // Sent without a length (chunked), or small and gzipped: cut off once it grows past it.
    for gzipped in [false, true] {
        let body = if gzipped {
            gzip(big.as_bytes())
        } else {
            big.clone().into_bytes()
        };
        assert!(!gzipped || body.len() < 64 * 1024);
        #[expect(
            clippy::needless_collect,
            reason = "the request body must own its chunks"
        )]
        let stream = futures_util::stream::iter(
            body.chunks(4096)
                .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                .collect::<Vec<_>>(),
        );
        let mut req = app
            .post("/v1/imports/customers")
            .bearer_auth(&token)
            .header("Content-Type", "text/csv")
            .body(reqwest::Body::wrap_stream(stream));
        if gzipped {
            req = req.header("Content-Encoding", "gzip");
        }
        let res = req.send().await.unwrap();
        let problem = expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        assert!(
            problem["detail"].as_str().unwrap().contains("65536 bytes"),
            "{problem}"
        );
    }
    assert_eq!(app.count("import_chunks").await, 0);
    assert_eq!(app.count("customers").await, 0);
    let listed = imports(&app).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|i| i["state"] == "failed"));

    // A gzip bomb: 10 MiB of zeros in 10 KB, under the default 2 GiB limit, is refused for
    // its ratio long before it is inflated, let alone stored.
    let app = TestApp::spawn().await;
    let bomb = gzip(&vec![b'0'; 10 << 20]);
    assert!(bomb.len() < 20_000);
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "gzip")
        .body(bomb)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("100 times"),
        "{problem}"
    );
    assert_eq!(app.count("import_chunks").await, 0);
    // A gzip file that inflates reasonably is welcome.
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "gzip")
        .body(gzip(b"external_id,name\nz-1,Zipped One\n"))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, StatusCode::CREATED).await["created"], 1);
    // JSON bodies are never inflated: a compressed one is a 415 that says why.
    let res = app
        .post("/v1/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(br#"{"name": "Ada"}"#))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert!(
        problem["detail"].as_str().unwrap().contains("uncompressed"),
        "{problem}"
    );
    assert_eq!(app.count("customers").await, 1);
}

#[actix_web::test]
async fn a_handler_reading_its_own_body_keeps_the_json_limits() {
    // `rotate-secret` takes an optional body; it is read under the rules of every JSON body.
    let app = TestApp::spawn_with(&[("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true")]).await;
    let admin = app.token(Role::Admin);
    let res = app
        .post("/v1/webhooks")
        .bearer_auth(&admin)
        .json(
            &serde_json::json!({"url": "http://127.0.0.1:9/hook", "event_types": ["customer.created"]}),
        )
        .send()
        .await
        .unwrap();
    let webhook = expect_json(res, StatusCode::CREATED).await;
    let path = format!("/v1/webhooks/{}", webhook["id"].as_str().unwrap());
    let before = app.get_ok(&path, &admin).await;
    let res = app
        .post(&format!("{path}/rotate-secret"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .body(gzip(br#"{"overlap_hours": 2}"#))
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = app
        .post(&format!("{path}/rotate-secret"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"overlap_hours\": 2, \"pad\": \"{}\"}}",
            "x".repeat(2 << 20)
        ))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Neither rotated the secret.
    assert_eq!(app.get_ok(&path, &admin).await, before);
}
