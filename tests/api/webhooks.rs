//! Webhooks against a real HTTP receiver on loopback: signatures (and secret rotation),
//! retries after 500 and timeouts with a growing backoff, disabling and re-enabling, order,
//! replay, the outbox under rolled-back transactions, a restart mid-delivery, test pings,
//! the SSRF refusal, and bad requests writing nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    id: String,
    timestamp: i64,
    signatures: Vec<String>,
    body: Vec<u8>,
    at: Instant,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the receiver answers the next request: a status, after an optional delay.
#[derive(Clone, Copy)]
pub struct Reply(pub u16, pub Duration);

#[derive(Default)]
struct Log {
    received: Vec<Received>,
    script: VecDeque<Reply>,
}

/// A real HTTP server on loopback that records what it gets and answers as scripted
/// (200 once the script is used up).
pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Log>>,
    handle: ServerHandle,
}

impl Receiver {
    pub async fn start() -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        let server = actix_web::HttpServer::new(move || {
            let log = shared.clone();
            actix_web::App::new().default_service(web::to(
                move |req: HttpRequest, body: web::Bytes| {
                    let log = log.clone();
                    async move {
                        let header = |name: &str| {
                            req.headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let reply = {
                            let mut log = log.lock().unwrap();
                            log.received.push(Received {
                                id: header("webhook-id"),
                                timestamp: header("webhook-timestamp").parse().unwrap_or(0),
                                signatures: header("webhook-signature")
                                    .split(' ')
                                    .map(str::to_owned)
                                    .collect(),
                                body: body.to_vec(),
                                at: Instant::now(),
                            });
                            log.script.pop_front().unwrap_or(Reply(200, Duration::ZERO))
                        };
                        tokio::time::sleep(reply.1).await;
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(reply.0).unwrap())
                            .finish()
                    }
                },
            ))
        })
        .workers(2)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hooks/rapport"),
            log,
            handle,
        }
    }

    fn script(&self, replies: &[Reply]) {
        self.log
            .lock()
            .unwrap()
            .script
            .extend(replies.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    /// Waits until at least `n` requests came.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {n} requests, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Fast retries, loopback allowed: the settings webhook tests run with.
pub const FAST: [(&str, &str); 5] = [
    ("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true"),
    ("RAPPORT_WEBHOOK_INTERVAL", "20ms"),
    ("RAPPORT_WEBHOOK_TIMEOUT", "1s"),
    ("RAPPORT_WEBHOOK_RETRY_BASE", "200ms"),
    ("RAPPORT_WEBHOOK_RETRY_FOR", "1m"),
];

pub async fn create_webhook(app: &TestApp, body: Value) -> Value {
    let res = app
        .send(Method::POST, "/v1/webhooks", &app.token(Role::Admin), &body)
        .await;
    expect_json(res, StatusCode::CREATED).await
}

async fn customer(app: &TestApp, name: &str) -> String {
    let c = crate::customers::create(app, json!({ "name": name })).await;
    c["id"].as_str().unwrap().to_owned()
}

async fn deliveries(app: &TestApp, webhook: &str) -> Vec<Value> {
    let page = app
        .get_ok(
            &format!("/v1/webhooks/{webhook}/deliveries?limit=200"),
            &app.token(Role::Admin),
        )
        .await;
    page["data"].as_array().unwrap().clone()
}

/// Waits until the webhook's delivery of `event` is no longer pending.
async fn settled(app: &TestApp, webhook: &str, event: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = deliveries(app, webhook)
            .await
            .into_iter()
            .find(|d| d["event_id"] == event && d["status"] != "pending");
        if let Some(d) = found {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "delivery of {event} never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The signature a receiver computes, as the Standard Webhooks specification says.
fn sign(secret: &str, r: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", r.id, r.timestamp).as_bytes());
    mac.update(&r.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

pub fn verifies(secret: &str, r: &Received) -> bool {
    let expected = sign(secret, r);
    r.signatures.contains(&expected)
}

#[actix_web::test]
async fn deliveries_are_signed_and_rotation_signs_with_both_secrets_for_the_overlap() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let admin = app.token(Role::Admin);
    let hook = create_webhook(
        &app,
        json!({"url": receiver.url, "description": "CRM sync", "event_types": ["customer.created"]}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    assert_eq!(hook["active"], true);
    // The secret is shown once.
    let read = app.get_ok(&format!("/v1/webhooks/{id}"), &admin).await;
    assert!(read.get("secret").is_none(), "{read}");

    let ada = customer(&app, "Ada Lovelace").await;
    let got = receiver.wait_for(1).await;
    let first = &got[0];
    let event = first.json();
    assert_eq!(event["type"], "customer.created");
    assert_eq!(event["object_id"], ada.as_str());
    assert_eq!(event["data"]["name"], "Ada Lovelace");
    assert_eq!(
        first.id,
        event["id"].as_str().unwrap(),
        "webhook-id is the event id"
    );
    assert!((chrono::Utc::now().timestamp() - first.timestamp).abs() < 30);
    assert_eq!(first.signatures.len(), 1);
    assert!(verifies(&secret, first), "the signature verifies");
    // Any change to the body or the timestamp breaks it.
    let mut tampered = first.clone();
    tampered.body = br#"{"type":"customer.deleted"}"#.to_vec();
    assert!(!verifies(&secret, &tampered));
    let mut replayed_later = first.clone();
    replayed_later.timestamp += 1;
    assert!(!verifies(&secret, &replayed_later));
    assert!(!verifies("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", first));
    // The delivery is listed with its attempt.
    let d = settled(&app, &id, &first.id).await;
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempt_count"], 1);
    assert_eq!(d["attempts"][0]["status_code"], 200);
    assert!(d["attempts"][0]["latency_ms"].is_number());

    // Rotation with an overlap: both secrets sign.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &admin,
            &json!({"overlap_hours": 2}),
        )
        .await;
    assert_eq!(res.headers()["cache-control"], "no-store");
    let rotated = expect_json(res, StatusCode::OK).await;
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert!(rotated["previous_secret_expires_at"].is_string());
    customer(&app, "Grace Hopper").await;
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].signatures.len(), 2);
    assert!(verifies(&secret, &got[1]) && verifies(&new_secret, &got[1]));

    // Rotation without overlap (an empty body is fine): only the newest signs.
    let res = app
        .post(&format!("/v1/webhooks/{id}/rotate-secret"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let newest = expect_json(res, StatusCode::OK).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &admin,
            &json!({"overlap_hours": 0}),
        )
        .await;
    let last = expect_json(res, StatusCode::OK).await;
    let last_secret = last["secret"].as_str().unwrap();
    assert!(last["previous_secret_expires_at"].is_null());
    customer(&app, "Katherine Johnson").await;
    let got = receiver.wait_for(3).await;
    assert_eq!(got[2].signatures.len(), 1);
    assert!(verifies(last_secret, &got[2]));
    assert!(!verifies(newest["secret"].as_str().unwrap(), &got[2]));
    // The audit log has the rotations, never a secret.
    let audit = app
        .get_ok(
            &format!("/v1/audit?entity_type=webhook&entity_id={id}"),
            &admin,
        )
        .await;
    let text = audit.to_string();
    assert!(text.contains("webhook.secret_rotated"));
    assert!(!text.contains(&secret) && !text.contains(last_secret));
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn failures_are_retried_with_growing_delays_then_the_webhook_is_disabled() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    // 500, 500, a timeout (the answer comes after the 1 s limit), 503, then 200.
    receiver.script(&[
        Reply(500, Duration::ZERO),
        Reply(500, Duration::ZERO),
        Reply(200, Duration::from_millis(1500)),
        Reply(503, Duration::ZERO),
    ]);
    let hook = create_webhook(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    customer(&app, "Ada Lovelace").await;
    let got = receiver.wait_for(5).await;
    assert!(got.iter().all(|r| r.id == got[0].id), "one event, retried");
    let d = settled(&app, &id, &got[0].id).await;
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempt_count"], 5);
    let codes: Vec<Value> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].clone())
        .collect();
    assert_eq!(
        codes,
        [json!(500), json!(500), Value::Null, json!(503), json!(200)]
    );
    assert_eq!(d["attempts"][2]["error"], "timed out");
    assert!(d["attempts"][2]["latency_ms"].as_i64().unwrap() >= 900);
    assert_eq!(d["attempts"][0]["error"], "HTTP 500");
    // Backoff: 200 ms, 400 ms, 800 ms, 1600 ms (each ±20 %) from the end of one attempt to
    // the next; the third attempt itself took the 1 s timeout.
    let gap = |i: usize| got[i + 1].at - got[i].at;
    let ms = Duration::from_millis;
    assert!(gap(0) >= ms(160) && gap(0) < ms(700), "{:?}", gap(0));
    assert!(gap(1) >= ms(320) && gap(1) < ms(900), "{:?}", gap(1));
    let after_timeout = gap(2).saturating_sub(ms(1000));
    assert!(after_timeout >= ms(640), "{:?}", gap(2));
    assert!(gap(3) >= ms(1280) && gap(3) < ms(2500), "{:?}", gap(3));
    // Operators see the attempts in the metrics.
    let metrics = app
        .get("/metrics")
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"webhook_attempts_total{outcome="retrying"} 4"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"webhook_attempts_total{outcome="succeeded"} 1"#));

    // With a short retry window, a receiver that keeps failing disables the webhook.
    let app = TestApp::spawn_with(&[
        ("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("RAPPORT_WEBHOOK_INTERVAL", "20ms"),
        ("RAPPORT_WEBHOOK_RETRY_BASE", "100ms"),
        ("RAPPORT_WEBHOOK_RETRY_FOR", "1s"),
    ])
    .await;
    let failing = Receiver::start().await;
    failing.script(&[Reply(500, Duration::ZERO); 100]);
    let hook = create_webhook(&app, json!({"url": failing.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    customer(&app, "Grace Hopper").await;
    let first = failing.wait_for(1).await[0].id.clone();
    let d = settled(&app, &id, &first).await;
    assert_eq!(d["status"], "failed");
    assert!(d["attempt_count"].as_i64().unwrap() >= 3);
    // Service tokens are recorded per database: this app's own.
    let admin = app.token(Role::Admin);
    let hook = app.get_ok(&format!("/v1/webhooks/{id}"), &admin).await;
    assert_eq!(hook["active"], false);
    let reason = hook["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 500"), "{reason}");
    assert!(hook["disabled_at"].is_string());
    // While it is off, events queue up and nothing is sent.
    customer(&app, "Katherine Johnson").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_while_off = failing.received().len();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(failing.received().len(), sent_while_off);
    // Turned on again (the receiver is fixed): the reason goes, the queued event arrives.
    failing.log.lock().unwrap().script.clear();
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin,
            &json!({"active": true}),
        )
        .await;
    let hook = expect_json(res, StatusCode::OK).await;
    assert!(hook["disabled_reason"].is_null());
    let got = failing.wait_for(sent_while_off + 1).await;
    assert_eq!(
        got.last().unwrap().json()["data"]["name"],
        "Katherine Johnson"
    );

    // A 410 Gone disables at once.
    failing.script(&[Reply(410, Duration::ZERO)]);
    customer(&app, "Mary Jackson").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let hook = app.get_ok(&format!("/v1/webhooks/{id}"), &admin).await;
        if hook["active"] == false {
            assert_eq!(hook["disabled_reason"], "the receiver answered 410 Gone");
            break;
        }
        assert!(Instant::now() < deadline, "410 did not disable the webhook");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.handle.stop(false).await;
    failing.handle.stop(false).await;
}

#[actix_web::test]
async fn events_arrive_in_commit_order_and_a_failing_one_holds_back_the_rest() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let admin = app.token(Role::Admin);
    // The first event fails twice; the ones after it must wait for it.
    receiver.script(&[Reply(500, Duration::ZERO), Reply(500, Duration::ZERO)]);
    create_webhook(
        &app,
        json!({"url": receiver.url, "event_types": ["customer.created"]}),
    )
    .await;
    let mut names = Vec::new();
    for i in 0..8 {
        names.push(format!("Customer {i}"));
    }
    // Created concurrently: the order that counts is the order they committed in.
    let futures: Vec<_> = names.iter().map(|n| customer(&app, n)).collect();
    futures_util::future::join_all(futures).await;
    let got = receiver.wait_for(10).await;
    let feed = app
        .get_ok("/v1/events?type=customer.created&limit=50", &admin)
        .await;
    let feed_order: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(feed_order.len(), 8);
    let mut delivered: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(&delivered[..3], [feed_order[0]; 3], "retries come first");
    delivered.dedup();
    assert_eq!(delivered, feed_order, "one at a time, in commit order");
    receiver.handle.stop(false).await;
}

/// A delivery's id carries its event's instant (the first 48 bits of a UUIDv7, its first 13
/// characters), so it is kept in the partition of its event's month and goes with it.
fn in_events_millisecond(delivery: &Value) {
    let id = delivery["id"].as_str().unwrap();
    let event = delivery["event_id"].as_str().unwrap();
    assert_eq!(id[..13], event[..13], "{delivery}");
    assert_eq!(&id[14..15], "7", "a UUIDv7: {id}");
}

#[actix_web::test]
async fn filters_pick_events_and_replays_resend_the_same_event() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let admin = app.token(Role::Admin);
    let hook = create_webhook(
        &app,
        json!({"url": receiver.url, "event_types": ["customer.created"],
               "filter": {"name": "Ada Lovelace"}}),
    )
    .await;
    let id = hook["id"].as_str().unwrap().to_owned();
    customer(&app, "Grace Hopper").await;
    customer(&app, "Ada Lovelace").await;
    let got = receiver.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "only the matching event");
    assert_eq!(got[0].json()["data"]["name"], "Ada Lovelace");
    let original = settled(&app, &id, &got[0].id).await;

    let res = app
        .send(
            Method::POST,
            &format!(
                "/v1/webhooks/{id}/deliveries/{}/replay",
                original["id"].as_str().unwrap()
            ),
            &admin,
            &json!({}),
        )
        .await;
    let replay = expect_json(res, StatusCode::ACCEPTED).await;
    assert_eq!(replay["status"], "pending");
    assert_eq!(replay["replay_of"], original["id"]);
    assert_eq!(replay["event_id"], original["event_id"]);
    // Both deliveries are in the partition of their event's month.
    in_events_millisecond(&original);
    in_events_millisecond(&replay);
    assert_ne!(replay["id"], original["id"]);
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].id, got[0].id, "the same event id");
    assert_eq!(got[1].body, got[0].body, "the same event");
    let listed = deliveries(&app, &id).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["replay_of"], original["id"], "newest first");
    let one = app
        .get_ok(
            &format!(
                "/v1/webhooks/{id}/deliveries/{}",
                replay["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    assert_eq!(one["id"], replay["id"]);
    let succeeded = app
        .get_ok(
            &format!("/v1/webhooks/{id}/deliveries?status=succeeded&limit=1"),
            &admin,
        )
        .await;
    assert_eq!(succeeded["data"].as_array().unwrap().len(), 1);
    assert!(succeeded["next_cursor"].is_string());
    // Unknown deliveries and another webhook's deliveries are 404.
    let other = create_webhook(&app, json!({"url": receiver.url, "active": false})).await;
    let res = app
        .send(
            Method::POST,
            &format!(
                "/v1/webhooks/{}/deliveries/{}/replay",
                other["id"].as_str().unwrap(),
                original["id"].as_str().unwrap()
            ),
            &admin,
            &json!({}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn rolled_back_changes_are_never_sent() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    // An all-or-nothing import whose last row fails: the first rows were written, with
    // their events, in a transaction that rolls back.
    let res = app
        .post("/v1/imports/customers?all_or_nothing=true")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body("name,email\nAda Lovelace,ada@example.com\nGrace Hopper,grace@example.com\n,bad\n")
        .send()
        .await
        .unwrap();
    let import = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(import["committed"], false, "{import}");
    // A transaction that wrote an event and rolled back, straight in the database.
    let mut conn = app.db.connect().await;
    let rolled_back: Result<(), diesel::result::Error> =
        diesel_async::AsyncConnection::transaction(&mut conn, async |conn| {
            diesel_async::RunQueryDsl::execute(
                diesel::sql_query(
                    "INSERT INTO events (id, type, object_type, object_id, data) \
                     VALUES (uuid_v7(), 'customer.created', 'customer', 'x', '{}')",
                ),
                conn,
            )
            .await?;
            Err(diesel::result::Error::RollbackTransaction)
        })
        .await;
    assert!(rolled_back.is_err());
    // A committed change after them is delivered, and it is the only customer event.
    let kept = customer(&app, "Katherine Johnson").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = receiver.received();
        if got.iter().any(|r| r.json()["object_id"] == kept.as_str()) {
            break;
        }
        assert!(Instant::now() < deadline, "the committed change never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let customer_events: Vec<Value> = receiver
        .received()
        .iter()
        .map(Received::json)
        .filter(|e| e["type"].as_str().unwrap().starts_with("customer."))
        .collect();
    assert_eq!(customer_events.len(), 1, "{customer_events:?}");
    assert!(
        deliveries(&app, &id)
            .await
            .iter()
            .all(|d| d["event_type"] != "customer.created" || d["status"] == "succeeded")
    );
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn a_delivery_cut_off_by_a_restart_is_sent_again_with_the_same_event_id() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("RAPPORT_WEBHOOK_INTERVAL", "20ms"),
        ("RAPPORT_WEBHOOK_TIMEOUT", "2s"),
    ])
    .await;
    let receiver = Receiver::start().await;
    // The first request hangs: the instance sending it stops meanwhile.
    receiver.script(&[Reply(200, Duration::from_millis(1800))]);
    let hook = create_webhook(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    customer(&app, "Ada Lovelace").await;
    let first = receiver.wait_for(1).await[0].clone();
    app.handle.stop(false).await;
    // Another instance (short timeout, so its lease on the delivery is short too) takes over
    // once the stopped one's lease runs out.
    let settings = crate::helpers::settings(
        &app.db.url,
        &[
            ("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("RAPPORT_WEBHOOK_INTERVAL", "20ms"),
            ("RAPPORT_WEBHOOK_TIMEOUT", "1s"),
        ],
    );
    let other = rapport::startup::Application::build(settings)
        .await
        .unwrap();
    let port = other.port();
    let handle = other.handle();
    actix_web::rt::spawn(other.run_until_stopped());
    let got = receiver.wait_for(2).await;
    assert_eq!(got[1].id, first.id, "the same event id");
    assert_eq!(got[1].json()["data"], first.json()["data"]);
    let res = app
        .client
        .get(format!(
            "http://127.0.0.1:{port}/v1/webhooks/{id}/deliveries"
        ))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    let page = expect_json(res, StatusCode::OK).await;
    let d = &page["data"][0];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut status = d["status"].clone();
    while status != "succeeded" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let res = app
            .client
            .get(format!(
                "http://127.0.0.1:{port}/v1/webhooks/{id}/deliveries"
            ))
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap();
        status = expect_json(res, StatusCode::OK).await["data"][0]["status"].clone();
    }
    assert_eq!(status, "succeeded");
    handle.stop(false).await;
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn internal_addresses_are_refused_unless_the_operator_allows_them() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://10.0.0.7/hook",
        "http://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
    ] {
        let res = app
            .send(Method::POST, "/v1/webhooks", &admin, &json!({ "url": url }))
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["url"], "{url}: {p}");
    }
    assert_eq!(app.count("webhooks").await, 0);

    // A webhook saved where loopback was allowed is refused at delivery by an instance that
    // does not allow it.
    let allowed = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(&allowed, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    allowed.handle.stop(false).await;
    let strict = crate::helpers::settings(
        &allowed.db.url,
        &[
            ("RAPPORT_WEBHOOK_INTERVAL", "20ms"),
            ("RAPPORT_WEBHOOK_RETRY_BASE", "10s"),
        ],
    );
    let other = rapport::startup::Application::build(strict).await.unwrap();
    let port = other.port();
    let handle = other.handle();
    actix_web::rt::spawn(other.run_until_stopped());
    let res = allowed
        .client
        .post(format!("http://127.0.0.1:{port}/v1/customers"))
        .bearer_auth(allowed.token(Role::Agent))
        .json(&json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let deadline = Instant::now() + Duration::from_secs(30);
    let attempt = loop {
        let res = allowed
            .client
            .get(format!(
                "http://127.0.0.1:{port}/v1/webhooks/{id}/deliveries"
            ))
            .bearer_auth(allowed.token(Role::Admin))
            .send()
            .await
            .unwrap();
        let page = expect_json(res, StatusCode::OK).await;
        if let Some(a) = page["data"][0]["attempts"].get(0) {
            break a.clone();
        }
        assert!(Instant::now() < deadline, "no attempt recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(attempt["status_code"].is_null());
    assert!(
        attempt["error"].as_str().unwrap().contains("loopback"),
        "{attempt}"
    );
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
    handle.stop(false).await;
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn test_pings_report_what_the_receiver_answered() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let admin = app.token(Role::Admin);
    let hook = create_webhook(&app, json!({"url": receiver.url, "active": false})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let res = app
        .send(
            Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            &admin,
            &json!({}),
        )
        .await;
    let ping = expect_json(res, StatusCode::OK).await;
    assert_eq!(ping["status"], "succeeded");
    assert_eq!(ping["event_type"], "webhook.ping");
    in_events_millisecond(&ping);
    assert_eq!(ping["attempts"][0]["status_code"], 200);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert!(verifies(&secret, &got[0]));
    assert_eq!(got[0].json()["type"], "webhook.ping");
    // A receiver that answers 500: the ping fails, is reported, and is not retried.
    receiver.script(&[Reply(500, Duration::ZERO)]);
    let res = app
        .send(
            Method::POST,
            &format!("/v1/webhooks/{id}/test"),
            &admin,
            &json!({}),
        )
        .await;
    let ping = expect_json(res, StatusCode::OK).await;
    assert_eq!(ping["status"], "failed");
    assert_eq!(ping["last_status_code"], 500);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 2);
    // Pings are not in the feed.
    let feed = app.get_ok("/v1/events", &admin).await;
    assert!(!feed.to_string().contains("webhook.ping"));
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn bad_webhook_requests_are_refused_and_write_nothing() {
    let app = TestApp::spawn_with(&FAST).await;
    let admin = app.token(Role::Admin);
    let post = |body: &'static str| {
        app.post("/v1/webhooks")
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    expect_problem(
        post("{").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    for (body, field) in [
        (r#"{}"#, "url"),
        (r#"{"url": 7}"#, "url"),
        (
            r#"{"url": "https://example.com", "colour": "red"}"#,
            "colour",
        ),
        (r#"{"url": "ftp://example.com/x"}"#, "url"),
        (r#"{"url": "https://u:p@example.com/x"}"#, "url"),
        (
            r#"{"url": "https://example.com", "event_types": ["customer.exploded"]}"#,
            "event_types[0]",
        ),
        (
            r#"{"url": "https://example.com", "event_types": ["webhook.ping"]}"#,
            "event_types[0]",
        ),
        (
            r#"{"url": "https://example.com", "event_types": "customer.created"}"#,
            "event_types",
        ),
        (
            r#"{"url": "https://example.com", "filter": [1, 2]}"#,
            "filter",
        ),
        (
            r#"{"url": "https://example.com", "active": "yes"}"#,
            "active",
        ),
    ] {
        let res = post(body).await.unwrap();
        let status = res.status();
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{body}: {status}"
        );
        let p: Value = res.json().await.unwrap();
        assert!(fields(&p).contains(&field.to_owned()), "{body}: {p}");
    }
    let huge = json!({"url": "https://example.com", "filter": {"x": "y".repeat(70_000)}});
    let res = app.send(Method::POST, "/v1/webhooks", &admin, &huge).await;
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let big = json!({"url": "https://example.com", "filter": {"x": "y".repeat(5000)}});
    let res = app.send(Method::POST, "/v1/webhooks", &admin, &big).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["filter"]);
    // Tokens: none, garbage, a manager's (webhooks are admin business).
    let body = json!({"url": "https://example.com"});
    let res = app.post("/v1/webhooks").json(&body).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .send(Method::POST, "/v1/webhooks", "not-a-token", &body)
        .await;
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .send(
            Method::POST,
            "/v1/webhooks",
            &app.token(Role::Manager),
            &body,
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .get("/v1/webhooks")
        .bearer_auth(app.token(Role::Agent))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("webhooks").await, 0, "nothing written");

    // On an existing webhook: bad patches, version conflicts, rotation out of range.
    let receiver = Receiver::start().await;
    let hook = create_webhook(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    for (body, field) in [
        (json!({"url": null}), "url"),
        (json!({"url": "http://"}), "url"),
        (json!({"active": null}), "active"),
        (json!({"event_types": ["nope"]}), "event_types[0]"),
        (json!({"secret": "mine"}), "secret"),
    ] {
        let res = app
            .send(Method::PATCH, &format!("/v1/webhooks/{id}"), &admin, &body)
            .await;
        let p: Value = res.json().await.unwrap();
        assert!(fields(&p).contains(&field.to_owned()), "{body}: {p}");
    }
    let res = app
        .patch(&format!("/v1/webhooks/{id}"))
        .bearer_auth(&admin)
        .header("If-Match", "\"7\"")
        .json(&json!({"description": "x"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    for body in [
        json!({"overlap_hours": 169}),
        json!({"overlap_hours": -1}),
        json!({"overlap": 1}),
    ] {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/webhooks/{id}/rotate-secret"),
                &admin,
                &body,
            )
            .await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let after = app.get_ok(&format!("/v1/webhooks/{id}"), &admin).await;
    assert_eq!(after["version"], 1, "nothing changed");
    assert_eq!(after["description"], Value::Null);
    // Unknown ids and malformed ids.
    let res = app
        .get("/v1/webhooks/0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .get("/v1/webhooks/nope/deliveries")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    app.expect_bad_queries(
        &format!("/v1/webhooks/{id}/deliveries"),
        &admin,
        &[
            ("status=lost", "status"),
            ("limit=0", "limit"),
            ("cursor=zz", "cursor"),
            ("colour=red", "colour"),
        ],
    )
    .await;

    // A good patch and the delete.
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            &admin,
            &json!({"description": "Billing", "event_types": ["purchase.created", "purchase.created"], "filter": {"currency": "EUR"}}),
        )
        .await;
    let changed = expect_json(res, StatusCode::OK).await;
    assert_eq!(changed["event_types"], json!(["purchase.created"]));
    assert_eq!(changed["filter"], json!({"currency": "EUR"}));
    assert_eq!(changed["version"], 2);
    let res = app
        .request(Method::DELETE, &format!("/v1/webhooks/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.count("webhooks").await, 0);
    receiver.handle.stop(false).await;
}

#[actix_web::test]
async fn a_slow_receiver_holds_back_only_its_own_webhook() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("RAPPORT_WEBHOOK_INTERVAL", "20ms"),
        ("RAPPORT_WEBHOOK_TIMEOUT", "20s"),
    ])
    .await;
    let slow = Receiver::start().await;
    let fast = Receiver::start().await;
    // The slow receiver sits on its first request long enough that the fast one's deliveries
    // cannot be waiting behind it, even when other tests' transactions delay the feed.
    let slow_reply = Duration::from_secs(8);
    slow.script(&[Reply(200, slow_reply)]);
    create_webhook(&app, json!({"url": slow.url})).await;
    create_webhook(&app, json!({"url": fast.url})).await;
    customer(&app, "Ada Lovelace").await;
    slow.wait_for(1).await;
    let started = Instant::now();
    // While the slow receiver sits on its request, the other webhook goes on delivering.
    for name in ["Grace Hopper", "Katherine Johnson"] {
        customer(&app, name).await;
    }
    fast.wait_for(3).await;
    assert!(
        started.elapsed() < slow_reply,
        "the fast webhook waited for the slow one: {:?}",
        started.elapsed()
    );
    assert_eq!(
        slow.received().len(),
        1,
        "the slow one is still on its first event"
    );
    slow.wait_for(3).await;
    slow.handle.stop(false).await;
    fast.handle.stop(false).await;
}

#[actix_web::test]
async fn two_instances_share_the_work_without_sending_an_event_twice() {
    let app = TestApp::spawn_with(&FAST).await;
    let other = rapport::startup::Application::build(crate::helpers::settings(&app.db.url, &FAST))
        .await
        .unwrap();
    let handle = other.handle();
    actix_web::rt::spawn(other.run_until_stopped());
    let receivers = [
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    ];
    for r in &receivers {
        create_webhook(
            &app,
            json!({"url": r.url, "event_types": ["customer.created"]}),
        )
        .await;
    }
    // A few hundred events at once, through an import: both workers fan out and claim.
    let mut file = String::from("name\n");
    for i in 0..300 {
        file.push_str(&format!("Customer {i}\n"));
    }
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    let feed_order: Vec<String> = app
        .feed("type=customer.created", "type = 'customer.created'")
        .await
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(feed_order.len(), 300);
    for r in &receivers {
        let got = r.wait_for(300).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let got_now = r.received();
        assert_eq!(got_now.len(), 300, "each event once, no duplicate");
        let order: Vec<String> = got.iter().map(|x| x.id.clone()).collect();
        assert_eq!(order, feed_order, "in commit order");
    }
    handle.stop(false).await;
    for r in receivers {
        r.handle.stop(false).await;
    }
}
