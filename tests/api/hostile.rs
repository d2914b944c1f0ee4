//! Hostile clients and hostile input (issue 18): a request the database cannot answer in time
//! is cut by the session's `statement_timeout` and answered `503`; no byte sequence in a path,
//! a query or a body gets a `500`.

use std::time::{Duration, Instant};

use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use rapport::auth::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::import_rows::messages;

/// A connection of the test's own holding `table` locked inside an open transaction, so that
/// every statement of the app touching it waits.
pub async fn lock_table(app: &TestApp, table: &str) -> AsyncPgConnection {
    let mut conn = app.db.connect().await;
    conn.batch_execute(&format!(
        "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    ))
    .await
    .unwrap();
    conn
}

#[derive(diesel::QueryableByName)]
struct Shown {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

async fn show(conn: &mut AsyncPgConnection, setting: &str) -> String {
    diesel::sql_query(format!("SELECT current_setting('{setting}') AS value"))
        .get_result::<Shown>(conn)
        .await
        .unwrap()
        .value
}

#[actix_web::test]
async fn a_request_cut_by_the_statement_timeout_is_503_and_the_server_goes_on() {
    let app = TestApp::spawn_with(&[("RAPPORT_DB_STATEMENT_TIMEOUT", "300ms")]).await;
    let admin = app.token(Role::Admin);
    app.get_ok("/v1/customers", &admin).await;

    let mut locker = lock_table(&app, "customers").await;
    let started = Instant::now();
    let res = app
        .get("/v1/customers")
        .bearer_auth(&admin)
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    // Generous: the statement is cancelled after 300 ms; without a timeout it waits for ever.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        res.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let problem = expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("time limit"),
        "{problem}"
    );
    // A write waits and is cut too, and leaves nothing behind.
    let res = app
        .post("/v1/customers")
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;

    locker.batch_execute("ROLLBACK").await.unwrap();
    let list = app.get_ok("/v1/customers", &admin).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
    assert_eq!(app.count("customers").await, 0);
    let res = app
        .post("/v1/customers")
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
}

#[actix_web::test]
async fn pooled_sessions_run_under_their_timeouts() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_DB_STATEMENT_TIMEOUT", "1500ms"),
        ("RAPPORT_DB_JOB_STATEMENT_TIMEOUT", "2h"),
        ("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "45s"),
    ])
    .await;
    let mut request = app.state.pool.get().await.unwrap();
    assert_eq!(show(&mut request, "statement_timeout").await, "1500ms");
    assert_eq!(
        show(&mut request, "idle_in_transaction_session_timeout").await,
        "45s"
    );
    let mut job = app.state.jobs.get().await.unwrap();
    assert_eq!(show(&mut job, "statement_timeout").await, "2h");
    assert_eq!(
        show(&mut job, "idle_in_transaction_session_timeout").await,
        "45s"
    );
    // The defaults.
    let app = TestApp::spawn().await;
    let mut request = app.state.pool.get().await.unwrap();
    assert_eq!(show(&mut request, "statement_timeout").await, "30s");
    assert_eq!(
        show(&mut request, "idle_in_transaction_session_timeout").await,
        "1min"
    );
    let mut job = app.state.jobs.get().await.unwrap();
    assert_eq!(show(&mut job, "statement_timeout").await, "30min");
}

#[actix_web::test]
async fn a_session_idle_in_a_transaction_is_ended_and_answered_503() {
    let app = TestApp::spawn_with(&[("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "200ms")]).await;
    let mut conn = app.state.pool.get().await.unwrap();
    conn.batch_execute("BEGIN; SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let err = diesel::sql_query("SELECT 1")
        .execute(&mut *conn)
        .await
        .expect_err("the server ended the idle session");
    let api = rapport::http::ApiError::from(err);
    assert_eq!(api.code(), rapport::http::ErrorCode::ServiceUnavailable);
    drop(conn);
    // The pool replaces the ended connection.
    let admin = app.token(Role::Admin);
    for _ in 0..5 {
        let res = app
            .get("/v1/customers")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            return;
        }
        expect_problem(res, StatusCode::SERVICE_UNAVAILABLE, "service_unavailable").await;
    }
    panic!("the pool did not replace the ended connection");
}

/// A small deterministic generator (xorshift64*), so a failure names a case that recurs.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Up to `max` bytes, biased towards those that trouble parsers and PostgreSQL.
    fn string(&mut self, max: usize) -> Vec<u8> {
        const TRICKY: &[u8] = b"\0\"\\{}[]:,%/?#&=+ \xff\xfe\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80u0";
        let len = (self.next() % (max as u64 + 1)) as usize;
        (0..len)
            .map(|_| {
                let n = self.next();
                if n.is_multiple_of(3) {
                    TRICKY[((n >> 8) % TRICKY.len() as u64) as usize]
                } else {
                    (n >> 16) as u8
                }
            })
            .collect()
    }

    /// A JSON-looking body: a customer whose fields hold random bytes, or bytes alone.
    fn body(&mut self) -> Vec<u8> {
        match self.next() % 3 {
            0 => self.string(64),
            1 => {
                let mut body = b"{\"name\":\"".to_vec();
                body.extend(self.string(24));
                body.extend(b"\",\"attributes\":{\"plan\":\"");
                body.extend(self.string(24));
                body.extend(b"\"}}");
                body
            }
            _ => {
                let text: String = self.string(24).into_iter().map(char::from).collect();
                serde_json::to_vec(&serde_json::json!({
                    "name": text,
                    "attributes": {text.clone(): text},
                }))
                .unwrap()
            }
        }
    }
}

fn percent_encoded(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[actix_web::test]
async fn a_nul_in_a_path_or_a_query_is_400_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    for path in [
        "/v1/customers/by-external-id/shop%0042",
        "/v1/customers/by-external-id/%00",
        "/v1/customers/0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a%00",
    ] {
        let res = app.get(path).bearer_auth(&admin).send().await.unwrap();
        expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    }
    let res = app
        .request(
            reqwest::Method::PUT,
            "/v1/customers/by-external-id/shop%0042",
        )
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Ada Lovelace"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;

    let res = app
        .get("/v1/customers?q=Ada%00Lovelace")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(crate::helpers::fields(&problem), ["q"]);
    let res = app
        .get("/v1/customers?tag=vip%00")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(crate::helpers::fields(&problem), ["tag"]);
    assert_eq!(app.count("customers").await, 0);
}

#[actix_web::test]
async fn a_nul_in_a_json_string_is_422_naming_the_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let cases = [
        (r#"{"name": "Ada\u0000Lovelace"}"#, "name"),
        (
            r#"{"name": "Ada", "attributes": {"plan": "gold\u0000"}}"#,
            "attributes.plan",
        ),
        (
            r#"{"name": "Ada", "attributes": {"pl\u0000an": "gold"}}"#,
            "attributes",
        ),
        (r#"{"name": "Ada", "tags": ["vip", "\u0000"]}"#, "tags[1]"),
    ];
    for (body, field) in cases {
        let res = app
            .post("/v1/customers")
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let problem =
            expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(crate::helpers::fields(&problem), [field], "{body}");
    }
    // The upsert and a merge patch go through the same extractor.
    let res = app
        .request(reqwest::Method::PUT, "/v1/customers/by-external-id/shop-1")
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body(r#"{"name": "Ada", "attributes": {"plan": "\u0000"}}"#)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.count("customers").await, 0);

    let created = app
        .send(
            reqwest::Method::POST,
            "/v1/customers",
            &admin,
            &serde_json::json!({"name": "Ada Lovelace"}),
        )
        .await;
    let created = expect_json(created, StatusCode::CREATED).await;
    let id = created["id"].as_str().unwrap();
    let res = app
        .patch(&format!("/v1/customers/{id}"))
        .bearer_auth(&admin)
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"attributes": {"plan": "x\u0000"}}"#)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(crate::helpers::fields(&problem), ["attributes.plan"]);
    let shown = app.get_ok(&format!("/v1/customers/{id}"), &admin).await;
    assert_eq!(shown["attributes"], serde_json::json!({}));
    assert_eq!(shown["version"], created["version"]);
}

#[actix_web::test]
async fn bytes_that_are_not_utf8_in_a_json_body_are_400_malformed_json() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    for body in [
        b"{\"name\": \"Ada \xff Lovelace\"}".to_vec(),
        b"{\"name\": \"Ada\", \"attributes\": {\"plan\": \"\xc3\"}}".to_vec(),
        b"{\"na\xfeme\": \"Ada\"}".to_vec(),
    ] {
        let res = app
            .post("/v1/customers")
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
    assert_eq!(app.count("customers").await, 0);
}

#[actix_web::test]
async fn random_bytes_in_bodies_paths_and_queries_never_get_a_5xx() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let mut bytes = Bytes(0x5eed_0018_dead_beef);
    for case in 0..300 {
        let body = bytes.body();
        let res = app
            .post("/v1/customers")
            .bearer_auth(&admin)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(
            !status.is_server_error(),
            "case {case}: POST {body:?} answered {status}: {text}"
        );

        let segment = percent_encoded(&bytes.string(32));
        for path in [
            format!("/v1/customers/{segment}"),
            format!("/v1/customers/by-external-id/{segment}"),
            format!("/v1/customers?q={segment}"),
        ] {
            let res = app.get(&path).bearer_auth(&admin).send().await.unwrap();
            let status = res.status();
            let text = res.text().await.unwrap();
            assert!(
                !status.is_server_error(),
                "case {case}: GET {path} answered {status}: {text}"
            );
        }
    }
}

#[actix_web::test]
async fn a_nul_or_bytes_that_are_not_utf8_in_an_import_row_fail_that_row_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let mut csv = b"external_id,name,occupation\n".to_vec();
    csv.extend_from_slice(b"n-1,Ada\0Lovelace,\n");
    csv.extend_from_slice(b"n-2,Grace Hopper,Admir\xffal\n");
    csv.extend_from_slice(b"n-3,Alan Turing,\n");
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(&admin)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["received"], 3, "{report}");
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let failures = messages(&report);
    assert_eq!(failures[0].0, 2, "{failures:?}");
    assert_eq!(failures[0].1, "name", "{failures:?}");
    assert!(failures[0].2.contains("NUL"), "{failures:?}");
    assert_eq!(failures[1].0, 3, "{failures:?}");
    assert_eq!(failures[1].1, "occupation", "{failures:?}");
    assert!(failures[1].2.contains("UTF-8"), "{failures:?}");

    let mut ndjson = b"{\"external_id\": \"j-1\", \"name\": \"Nul\", \"attributes\": {\"plan\": \"a\\u0000b\"}}\n".to_vec();
    ndjson.extend_from_slice(b"{\"external_id\": \"j-2\", \"name\": \"Bad \xff bytes\"}\n");
    ndjson.extend_from_slice(b"{\"external_id\": \"j-3\", \"name\": \"Good\"}\n");
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(&admin)
        .header("Content-Type", "application/x-ndjson")
        .body(ndjson)
        .send()
        .await
        .unwrap();
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(
        (&report["received"], &report["created"], &report["failed"]),
        (&3.into(), &1.into(), &2.into()),
        "{report}"
    );
    let failures = messages(&report);
    assert_eq!(failures[0].0, 1, "{failures:?}");
    assert_eq!(failures[0].1, "attributes.plan", "{failures:?}");
    assert_eq!(failures[1].0, 2, "{failures:?}");
    assert!(failures[1].2.contains("UTF-8"), "{failures:?}");
    assert_eq!(app.count("customers").await, 2);
}

#[actix_web::test]
async fn random_bytes_in_import_files_never_get_a_5xx_or_leave_a_job_running() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let mut bytes = Bytes(0x1a2b_3c4d_0018_0002);
    for case in 0..60 {
        let (content_type, body) = if case % 2 == 0 {
            let mut csv = b"external_id,name,email,attributes,tags\n".to_vec();
            for row in 0..5 {
                csv.extend(format!("r-{case}-{row},").as_bytes());
                csv.extend(bytes.string(16));
                csv.push(b',');
                csv.extend(bytes.string(12));
                csv.push(b'\n');
            }
            ("text/csv", csv)
        } else {
            let mut ndjson = Vec::new();
            for _ in 0..5 {
                ndjson.extend(bytes.body());
                ndjson.push(b'\n');
            }
            ("application/x-ndjson", ndjson)
        };
        let res = app
            .post("/v1/imports/customers?mode=upsert")
            .bearer_auth(&admin)
            .header("Content-Type", content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert!(
            !status.is_server_error(),
            "case {case}: {content_type} {:?} answered {status}: {text}",
            String::from_utf8_lossy(&body)
        );
    }
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = app.db.connect().await;
    let stuck: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM imports WHERE state NOT IN ('succeeded', 'failed')",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(stuck.n, 0);
}
