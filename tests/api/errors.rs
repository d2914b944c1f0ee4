//! Bad input of every kind gets a clear problem+json answer and writes nothing.

use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

#[actix_web::test]
async fn malformed_and_misshapen_bodies_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let before = app.count("users").await;
    let send = |body: &'static str, content_type: &'static str| {
        app.post("/v1/users")
            .bearer_auth(&admin)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let json = "application/json";

    let res = send("{\"email\": ", json).await.unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert!(p["detail"].as_str().unwrap().contains("line 1"));

    let res = send("", json).await.unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;

    let res = send(
        r#"{"email":"a@b.co","name":"A","role":"viewer"} trailing"#,
        json,
    )
    .await
    .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;

    // Unknown field: named, with the fields that are allowed.
    let res = send(
        r#"{"email":"a@b.co","name":"A","role":"viewer","admin":true}"#,
        json,
    )
    .await
    .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["admin"]);
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("email")
    );

    // Wrong type.
    let res = send(r#"{"email":"a@b.co","name":42,"role":"viewer"}"#, json)
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["name"]);
    assert!(
        !p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("struct")
    );

    // Missing field.
    let res = send(r#"{"email":"a@b.co","role":"viewer"}"#, json)
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["name"]);
    assert_eq!(p["errors"][0]["message"], "is required");

    // Out-of-range and invalid values: every field reported at once.
    let res = send(
        r#"{"email":"not-an-email","name":"  ","role":"viewer","password":"short"}"#,
        json,
    )
    .await
    .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["email", "name", "password"]);

    // Not JSON at all.
    let res = send("email=a@b.co", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .body("{}")
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    assert_eq!(app.count("users").await, before);
    assert_eq!(app.count("audit_events").await, 0);
}

#[actix_web::test]
async fn oversized_bodies_are_413() {
    // The test app's limit is 64 KiB.
    let app = TestApp::spawn().await;
    let name = "x".repeat(70 * 1024);
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .json(&json!({"email": "a@b.co", "name": name, "role": "viewer"}))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert!(p["detail"].as_str().unwrap().contains("65536"));

    // Also when streamed without a Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let res = app
        .post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .header("Content-Type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    assert_eq!(app.count("users").await, 0);
}

#[actix_web::test]
async fn unknown_routes_wrong_methods_and_bad_parameters() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);

    let res = app.get("/v1/nothing-here").send().await.unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    let res = app
        .request(reqwest::Method::DELETE, "/v1/users")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, POST");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let res = app
        .request(
            reqwest::Method::PUT,
            "/v1/users/0193b0a6-0000-7000-8000-000000000001",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, PATCH");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    let res = app
        .get("/v1/users/not-a-uuid")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;

    let res = app
        .get("/v1/users/0193b0a6-0000-7000-8000-000000000001")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    app.expect_bad_queries(
        "/v1/users",
        &admin,
        &[
            ("colour=red", "colour"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("limit=ten", "limit"),
            ("active=maybe", "active"),
            ("role=boss", "role"),
            ("cursor=bogus", "cursor"),
            ("limit=1&limit=2", "limit"),
        ],
    )
    .await;

    let res = app
        .patch("/v1/users/0193b0a6-0000-7000-8000-000000000001")
        .bearer_auth(&admin)
        .header("If-Match", "version three")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_header").await;
}

#[actix_web::test]
async fn the_request_id_is_accepted_or_generated_and_echoed() {
    let app = TestApp::spawn().await;
    let res = app
        .get("/v1/me")
        .header("X-Request-Id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
    let p = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(p["request_id"], "trace-abc-123");

    // An unusable one is replaced rather than echoed.
    let res = app
        .get("/healthz")
        .header("X-Request-Id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id with spaces");
    assert!(uuid::Uuid::parse_str(&id).is_ok());
}

/// A concrete path for a documented template: each parameter takes its documented example,
/// else the first value of its enum, else a UUID.
fn concrete(spec: &Value, path: &str, item: &Value) -> String {
    let params: Vec<&Value> = item
        .as_object()
        .unwrap()
        .values()
        .filter_map(|op| op["parameters"].as_array())
        .flatten()
        .filter(|p| p["in"] == "path")
        .collect();
    let mut out = path.to_owned();
    for p in params {
        let name = p["name"].as_str().unwrap();
        let schema = match p["schema"]["$ref"].as_str() {
            Some(r) => spec.pointer(r.trim_start_matches('#')).unwrap(),
            None => &p["schema"],
        };
        let value = p["example"]
            .as_str()
            .or_else(|| schema["enum"][0].as_str())
            .unwrap_or("0193b0a6-0000-7000-8000-000000000001");
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[actix_web::test]
async fn every_undocumented_method_on_every_path_is_405_with_the_documented_allow() {
    let app = TestApp::spawn().await;
    let spec = expect_json(
        app.get("/openapi.json").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let methods = [
        "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
    ];
    let mut checked = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let mut documented: Vec<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|m| m.to_uppercase())
            .collect();
        documented.sort();
        let allow = documented.join(", ");
        let url = concrete(&spec, path, item);
        for method in methods {
            if documented.iter().any(|m| m == method) {
                continue;
            }
            let res = app
                .request(
                    reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                    &url,
                )
                .send()
                .await
                .unwrap();
            assert_eq!(
                res.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {url}"
            );
            assert_eq!(res.headers()["allow"], allow.as_str(), "{method} {url}");
            if method != "HEAD" {
                expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
            }
            checked += 1;
        }
    }
    assert!(checked > 400, "only {checked} checked");
}

#[actix_web::test]
async fn the_method_is_judged_before_the_path_is_parsed() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let id = "0193b0a6-0000-7000-8000-000000000001";

    // POST /v1/imports/{resource} no longer claims a UUID it cannot parse.
    let res = app
        .post(&format!("/v1/imports/{id}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app
        .get("/v1/imports/customers")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app
        .get("/v1/customers/batch")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;

    // A malformed segment is a 400 for a documented method only.
    let res = app
        .get("/v1/imports/junk")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    let res = app
        .request(reqwest::Method::DELETE, "/v1/users/not-a-uuid")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, PATCH");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let res = app
        .request(reqwest::Method::OPTIONS, "/v1/users/not-a-uuid")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, PATCH");
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

#[actix_web::test]
async fn with_cors_preflights_still_work_and_other_options_are_405() {
    let app = TestApp::spawn_with(&[("RAPPORT_CORS_ORIGINS", "https://app.example.com")]).await;
    let id = "0193b0a6-0000-7000-8000-000000000001";
    let res = app
        .request(reqwest::Method::OPTIONS, &format!("/v1/imports/{id}"))
        .header("Origin", "https://app.example.com")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );

    let res = app
        .request(reqwest::Method::OPTIONS, &format!("/v1/imports/{id}"))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET");
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}
