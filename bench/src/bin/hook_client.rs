//! The client side of bench/webhooks.sh; prints one JSON line per run.
//!
//! `post`: the receiver's own limit for webhook-like requests. `--connections` keep-alive
//! connections each POST a JSON body of about `--body-bytes` (with the headers a Rapport
//! delivery carries) back to back for `--duration` seconds, through reqwest (the HTTP client
//! the service sends webhooks with). One connection is the bound for one ordered webhook
//! (one request in flight at a time).
//!
//!     hook_client post --url http://127.0.0.1:18091/ref --connections 1 --duration 5
//!
//! `feed`: reads the whole event feed, `GET /v1/events?limit=N` following `next_cursor`
//! until `has_more` is false, and times it.
//!
//!     hook_client feed --base http://127.0.0.1:18082 --token $TOKEN --limit 200

use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Args {
    url: String,
    base: String,
    token: String,
    connections: usize,
    duration: Duration,
    body_bytes: usize,
    limit: usize,
}

fn args() -> (String, Args) {
    let mut it = std::env::args().skip(1);
    let mode = it.next().unwrap_or_default();
    let mut a = Args {
        url: "http://127.0.0.1:18091/ref".into(),
        base: "http://127.0.0.1:18082".into(),
        token: String::new(),
        connections: 1,
        duration: Duration::from_secs(5),
        body_bytes: 1000,
        limit: 200,
    };
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--url" => a.url = value,
            "--base" => a.base = value,
            "--token" => a.token = value,
            "--connections" => a.connections = value.parse().expect("--connections N"),
            "--duration" => a.duration = Duration::from_secs(value.parse().expect("--duration S")),
            "--body-bytes" => a.body_bytes = value.parse().expect("--body-bytes N"),
            "--limit" => a.limit = value.parse().expect("--limit N"),
            other => panic!("unknown flag {other}"),
        }
    }
    (mode, a)
}

#[tokio::main]
async fn main() {
    let (mode, a) = args();
    match mode.as_str() {
        "post" => post(a).await,
        "feed" => feed(a).await,
        other => panic!("unknown mode {other:?}: use post or feed"),
    }
}

/// An event like the service sends, padded to about `bytes` of JSON.
fn body(bytes: usize) -> Vec<u8> {
    let mut event = json!({
        "id": "0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
        "type": "customer.created",
        "occurred_at": "2026-11-23T12:00:00.123456Z",
        "object_type": "customer",
        "object_id": "0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0c",
        "data": {"id": "0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0c", "kind": "individual",
                 "name": "Webhook Bench 1", "email": "wb1@example.com", "notes": ""},
        "previous": null,
        "request_id": "0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0d",
    });
    let size = serde_json::to_vec(&event).map_or(0, |v| v.len());
    event["data"]["notes"] = Value::String("x".repeat(bytes.saturating_sub(size)));
    serde_json::to_vec(&event).unwrap_or_default()
}

async fn post(a: Args) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.connections)
        .build()
        .expect("client");
    let payload = body(a.body_bytes);
    let deadline = Instant::now() + a.duration;
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (client, url, payload) = (client.clone(), a.url.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(200_000);
            let mut errors = 0_u64;
            while Instant::now() < deadline {
                let started = Instant::now();
                let request = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("user-agent", "Rapport-Webhooks/1")
                    .header("webhook-id", "0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0b")
                    .header("webhook-timestamp", "1795435200")
                    .header("webhook-signature", "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=")
                    .header("rapport-event-type", "customer.created")
                    .header("rapport-delivery-id", "0193a5f0-1c2d-7e3f-8a4b-5c6d7e8f9a0e")
                    .header("rapport-attempt", "1")
                    .body(payload.clone());
                let ok = match request.send().await {
                    Ok(res) => res.status().is_success() && res.bytes().await.is_ok(),
                    Err(_) => false,
                };
                if ok {
                    latencies.push(started.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, e) = task.await.expect("worker");
        all.extend(latencies);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64().max(a.duration.as_secs_f64());
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        all[((all.len() as f64 - 1.0) * p).round() as usize] as f64 / 1000.0
    };
    println!(
        "{}",
        json!({
            "connections": a.connections,
            "body_bytes": payload.len(),
            "seconds": (seconds * 100.0).round() / 100.0,
            "requests": all.len(),
            "errors": errors,
            "requests_per_s": (all.len() as f64 / seconds).round(),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
        })
    );
}

async fn feed(a: Args) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let (mut events, mut pages, mut bytes) = (0_usize, 0_usize, 0_usize);
    let mut cursor: Option<String> = None;
    loop {
        // Cursors are base64url: safe in a query string as they are.
        let url = match &cursor {
            Some(c) => format!("{}/v1/events?limit={}&cursor={c}", a.base, a.limit),
            None => format!("{}/v1/events?limit={}", a.base, a.limit),
        };
        let res = client
            .get(&url)
            .bearer_auth(&a.token)
            .send()
            .await
            .expect("GET /v1/events");
        let status = res.status();
        let text = res.bytes().await.expect("body");
        assert!(status.is_success(), "GET {url}: {status}: {}", String::from_utf8_lossy(&text));
        bytes += text.len();
        let page: Value = serde_json::from_slice(&text).expect("JSON page");
        events += page["data"].as_array().map_or(0, Vec::len);
        pages += 1;
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if page["has_more"] != Value::Bool(true) {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "events": events,
            "pages": pages,
            "mb": (bytes as f64 / 1e6 * 10.0).round() / 10.0,
            "seconds": (seconds * 1000.0).round() / 1000.0,
            "events_per_s": (events as f64 / seconds).round(),
        })
    );
}
