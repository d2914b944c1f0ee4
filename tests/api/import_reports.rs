//! What hostile clients cannot make large or misleading: a failed row's text stored once, the
//! error file streamed page by page without holding a connection, problem documents bounded
//! to 100 field errors, file re-sends replayed only for their caller within the window, and
//! `Idempotent-Replayed: true` on every answer that repeats an earlier result.

use std::time::Duration;

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, expect_json, expect_problem};

async fn import_as(app: &TestApp, token: &str, query: &str, body: String) -> reqwest::Response {
    app.post(&format!("/v1/imports/customers{query}"))
        .bearer_auth(token)
        .header("Content-Type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn error_file(app: &TestApp, report: &Value) -> reqwest::Response {
    let res = app
        .get(report["errors_url"].as_str().unwrap())
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

#[actix_web::test]
async fn a_row_failing_on_three_fields_keeps_its_text_once_and_its_error_file_round_trips() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    let file = "external_id,name,qualification.money,qualification.authority,qualification.need\r\n\
                ok-1,Ada,true,true,true\r\n\
                bad-2,\"Bob, Jr\",maybe,perhaps,sometimes\r\n\
                bad-3,Carl,yes,often,no\r\n";
    let res = import_as(&app, &manager, "", file.to_owned()).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["failed"], 2, "{report}");
    assert_eq!(report["errors_total"], 4, "{report}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 4);

    // Line 3's text once, however many of its fields are bad; each problem once.
    let raw = "bad-2,\"Bob, Jr\",maybe,perhaps,sometimes";
    assert_eq!(app.count("import_error_rows").await, 2);
    assert_eq!(
        app.count(&format!(
            "import_error_rows WHERE line = 3 AND raw = '{}'",
            raw.replace('\'', "''")
        ))
        .await,
        1
    );
    assert_eq!(app.count("import_errors WHERE line = 3").await, 3);
    assert_eq!(
        app.count(
            "information_schema.columns WHERE table_name = 'import_errors' \
             AND column_name = 'raw'"
        )
        .await,
        0,
        "problems no longer carry the row's text"
    );

    let text = error_file(&app, &report).await.text().await.unwrap();
    let expected = "_line,_error,external_id,name,qualification.money,qualification.authority,qualification.need\r\n\
        3,qualification.authority: must be true or false; qualification.money: must be true or false; qualification.need: must be true or false,bad-2,\"Bob, Jr\",maybe,perhaps,sometimes\r\n\
        4,qualification.authority: must be true or false,bad-3,Carl,yes,often,no\r\n";
    assert_eq!(text, expected);
    // Fixed and sent again as it is: both go in.
    let fixed = text
        .replace("maybe,perhaps,sometimes", "true,true,false")
        .replace("often", "true");
    let again = expect_json(
        import_as(&app, &manager, "", fixed).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(again["created"], 2, "{again}");
    assert_eq!(again["failed"], 0);
    assert_eq!(again["errors_total"], 0);
}

/// A GET on a raw socket with a tiny receive buffer that reads the status line and then
/// nothing: the server's send buffer fills and the answer stalls, as with a slow client.
async fn stalled_download(app: &TestApp, path: &str, token: &str) -> tokio::net::TcpStream {
    let addr = app.address.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut head))
        .await
        .expect("the answer starts")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    stream
}

#[actix_web::test]
async fn a_large_error_file_streams_page_by_page_holding_no_connection_while_clients_stall() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    // 2500 failed rows of 6 kB, two problems each: 15 MB of error file, a page (1000 rows)
    // larger than a socket's send buffer.
    let rows = 2500;
    let name = "n".repeat(6000);
    let mut file = "external_id,name,consent.email.granted,consent.sms.granted\r\n".to_owned();
    let mut expected =
        "_line,_error,external_id,name,consent.email.granted,consent.sms.granted\r\n".to_owned();
    for i in 0..rows {
        let row = format!("big-{i},{name},maybe,perhaps");
        file.push_str(&row);
        file.push_str("\r\n");
        expected.push_str(&format!(
            "{},consent.email.granted: must be true or false; \
             consent.sms.granted: must be true or false,{row}\r\n",
            i + 2
        ));
    }
    let report = expect_json(
        import_as(&app, &manager, "", file).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(report["failed"], rows);
    assert_eq!(report["errors"].as_array().unwrap().len(), 100);
    assert_eq!(report["errors_total"], 2 * rows);
    let id = report["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/imports/{id}/errors.csv");

    // Five stalled downloads, more than the pool's four connections: none holds one while
    // its client does not read, so the API still answers.
    let mut stalled = Vec::new();
    for _ in 0..5 {
        stalled.push(stalled_download(&app, &path, &manager).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = std::time::Instant::now();
    let res = app
        .get(&format!("/v1/imports/{id}"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the pool is held by stalled downloads"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(stalled);

    // Streamed (chunked, no length known up front), and exact.
    let res = error_file(&app, &report).await;
    assert!(res.content_length().is_none(), "{:?}", res.headers());
    assert_eq!(res.headers()["transfer-encoding"], "chunked");
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        res.headers()["content-disposition"],
        format!("attachment; filename=\"import-{id}-errors.csv\"").as_str()
    );
    let text = res.text().await.unwrap();
    assert_eq!(text.len(), expected.len());
    assert!(text == expected, "the streamed error file differs");

    // A database failure after the answer started cuts the body short (no final chunk)
    // instead of hanging, and the service goes on.
    let mut cut = stalled_download(&app, &path, &manager).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.sql("DROP TABLE import_error_rows CASCADE").await;
    let mut body = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match cut.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the cut download hangs");
    assert!(body.len() < expected.len(), "the whole file was served");
    assert!(
        !body.ends_with(b"\r\n0\r\n\r\n"),
        "the body ended as if complete"
    );
    let res = app
        .get(&format!("/v1/imports/{id}"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[actix_web::test]
async fn a_problem_lists_100_field_errors_and_counts_them_all() {
    let app = TestApp::spawn().await;
    let survey = crate::surveys::active_survey(&app, json!({})).await;
    let customer = crate::customers::create(&app, json!({"name": "Ada"})).await;
    let mut answers = serde_json::Map::new();
    answers.insert("recommend".into(), json!(9));
    for i in 0..500 {
        answers.insert(format!("x{i}"), json!(1));
    }
    let res = app
        .send(
            Method::POST,
            &format!("/v1/surveys/{survey}/responses"),
            &app.token(Role::Agent),
            &json!({"customer_id": customer["id"], "answers": answers}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let errors = p["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 100, "{p}");
    assert_eq!(errors[0]["field"], "answers.x0");
    assert_eq!(errors[99]["field"], "answers.x99");
    assert_eq!(p["errors_total"], 500);
    assert_eq!(
        p["detail"],
        "500 fields are invalid; the first 100 of 500 are listed"
    );
    assert!(p.to_string().len() < 16 * 1024);

    // Within the bound, nothing is counted apart.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/surveys/{survey}/responses"),
            &app.token(Role::Agent),
            &json!({"customer_id": customer["id"], "answers": {"recommend": 9, "x": 1}}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(p["errors"].as_array().unwrap().len(), 1);
    assert!(p.get("errors_total").is_none(), "{p}");
}

#[actix_web::test]
async fn a_header_of_a_thousand_columns_is_refused_in_a_bounded_problem() {
    let app = TestApp::spawn().await;
    let header: Vec<String> = (0..1000).map(|i| format!("column_{i}")).collect();
    let row = vec!["x"; 1000].join(",");
    let file = format!("{}\n{row}\n", header.join(","));
    let res = import_as(&app, &app.token(Role::Manager), "", file).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(p["errors"].as_array().unwrap().len() <= 100, "{p}");
    assert!(p.to_string().len() < 16 * 1024, "{p}");
    assert!(p.to_string().contains("1000 columns"), "{p}");
    // Unknown columns within the width: the first 20 named, the rest counted.
    let header: Vec<String> = (0..200).map(|i| format!("column_{i}")).collect();
    let file = format!("name,{}\nAda{}\n", header.join(","), ",x".repeat(200));
    let res = import_as(&app, &app.token(Role::Manager), "", file).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(p["errors"].as_array().unwrap().len() <= 100, "{p}");
    assert!(p.to_string().contains("and 180 more"), "{p}");
    assert_eq!(app.count("customers").await, 0);
}

fn people() -> String {
    "external_id,name\nr-1,Ada\nr-2,Grace\n".to_owned()
}

#[actix_web::test]
async fn the_same_file_is_replayed_only_for_its_caller_within_the_window() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    let client = app
        .client_token("nightly-sync", &["customers:write", "customers:read"])
        .await;
    let first = import_as(&app, &manager, "?mode=upsert", people()).await;
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, StatusCode::CREATED).await;

    // The same caller, within the window: the first import again.
    let res = import_as(&app, &manager, "?mode=upsert", people()).await;
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let replay = expect_json(res, StatusCode::OK).await;
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(
        location,
        format!("/v1/imports/{}", first["id"].as_str().unwrap())
    );

    // Another caller's identical file is its own import, replayed to it alone.
    let res = import_as(&app, &client, "?mode=upsert", people()).await;
    assert!(res.headers().get("idempotent-replayed").is_none());
    let theirs = expect_json(res, StatusCode::CREATED).await;
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(theirs["unchanged"], 2, "{theirs}");
    let res = import_as(&app, &client, "?mode=upsert", people()).await;
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(res, StatusCode::OK).await["id"], theirs["id"]);

    // The same caller once the window (24 hours) has passed: imported afresh.
    app.sql(&format!(
        "UPDATE imports SET created_at = now() - interval '25 hours' WHERE id = '{}'",
        first["id"].as_str().unwrap()
    ))
    .await;
    let res = import_as(&app, &manager, "?mode=upsert", people()).await;
    assert!(res.headers().get("idempotent-replayed").is_none());
    let later = expect_json(res, StatusCode::CREATED).await;
    assert_ne!(later["id"], first["id"]);
    assert_ne!(later["id"], theirs["id"]);
    assert_eq!(app.count("customers").await, 2);
}

#[actix_web::test]
async fn a_window_of_zero_never_replays_a_file_and_a_short_one_lapses() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_DEDUP_WINDOW", "0s")]).await;
    let manager = app.token(Role::Manager);
    let one = expect_json(
        import_as(&app, &manager, "?mode=upsert", people()).await,
        StatusCode::CREATED,
    )
    .await;
    let res = import_as(&app, &manager, "?mode=upsert", people()).await;
    assert!(res.headers().get("idempotent-replayed").is_none());
    let two = expect_json(res, StatusCode::CREATED).await;
    assert_ne!(one["id"], two["id"]);

    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_DEDUP_WINDOW", "1s")]).await;
    let manager = app.token(Role::Manager);
    let one = expect_json(
        import_as(&app, &manager, "?mode=upsert", people()).await,
        StatusCode::CREATED,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let res = import_as(&app, &manager, "?mode=upsert", people()).await;
    assert!(res.headers().get("idempotent-replayed").is_none());
    assert_ne!(expect_json(res, StatusCode::CREATED).await["id"], one["id"]);
}

#[actix_web::test]
async fn every_answer_that_repeats_an_earlier_result_says_so() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let customer = crate::customers::create(&app, json!({"name": "Grace Hopper"})).await;
    let path = format!(
        "/v1/customers/{}/purchases",
        customer["id"].as_str().unwrap()
    );
    let receipt = json!({"external_ref": "till-7", "amount": 4900, "currency": "EUR"});
    // A purchase re-sent with its receipt id: the recorded one, marked as such.
    let res = app.send(Method::POST, &path, &agent, &receipt).await;
    assert!(res.headers().get("idempotent-replayed").is_none());
    let created = expect_json(res, StatusCode::CREATED).await;
    let res = app.send(Method::POST, &path, &agent, &receipt).await;
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.headers()["etag"], "\"1\"");
    assert_eq!(expect_json(res, StatusCode::OK).await, created);
    assert_eq!(app.count("purchases").await, 1);
    // A file re-sent: the first import, marked as such (with or without a key).
    let manager = app.token(Role::Manager);
    let send = |key: Option<&'static str>| {
        let mut req = app
            .post("/v1/imports/customers")
            .bearer_auth(&manager)
            .header("Content-Type", "text/csv")
            .body("external_id,name\nn-1,Ada\n");
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req.send()
    };
    let first = send(Some("file-a")).await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, StatusCode::CREATED).await;
    for key in [Some("file-a"), None] {
        let res = send(key).await.unwrap();
        assert_eq!(res.headers()["idempotent-replayed"], "true", "{key:?}");
        assert_eq!(expect_json(res, StatusCode::OK).await["id"], first["id"]);
    }
    // And an `Idempotency-Key` replay, as before.
    let send = || {
        app.post(&path)
            .bearer_auth(&agent)
            .header("Idempotency-Key", "web-1")
            .json(&json!({"amount": 1999, "currency": "EUR"}))
            .send()
    };
    let res = send().await.unwrap();
    assert!(res.headers().get("idempotent-replayed").is_none());
    let res = send().await.unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
}
