use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, expect_json};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[test]
fn the_committed_spec_is_current() {
    let generated = rapport::openapi::pretty();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json differs from the API the handlers declare. Regenerate it with\n\
         \n    cargo run -- openapi > openapi/openapi.json\n\n\
         (or UPDATE_OPENAPI=1 cargo test the_committed_spec_is_current) and commit it."
    );
}

#[actix_web::test]
async fn the_served_spec_is_the_committed_one() {
    let app = TestApp::spawn().await;
    let served = expect_json(
        app.get("/openapi.json").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED).unwrap()).unwrap();
    assert_eq!(served, committed);
    assert_eq!(served["openapi"], "3.1.0");
}

#[test]
fn every_operation_says_what_it_needs_and_how_it_fails() {
    let doc = rapport::openapi::spec();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            assert!(op["summary"].is_string(), "{name} has no summary");
            let responses = op["responses"].as_object().unwrap();
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if secured {
                assert!(responses.contains_key("401"), "{name}");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{name} lacks {status}");
                }
            }
            if method == "post" && path.starts_with("/v1/") && path != "/v1/auth/token" {
                let params = op["parameters"].as_array().unwrap();
                assert!(
                    params.iter().any(|p| p["name"] == "Idempotency-Key"),
                    "{name}"
                );
            }
        }
    }
    // Every schema property is described or typed with an example where it matters.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    assert!(schemas.contains_key("Problem"));
}
