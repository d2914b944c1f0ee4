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
            for param in op["parameters"].as_array().cloned().unwrap_or_default() {
                let schema = &param["schema"];
                let exemplified = param.get("example").is_some()
                    || schema.get("example").is_some()
                    || schema.get("enum").is_some()
                    || schema.get("$ref").is_some()
                    || schema["oneOf"]
                        .as_array()
                        .is_some_and(|o| o.iter().any(|s| s.get("$ref").is_some()))
                    || schema["type"].to_string().contains("boolean");
                assert!(
                    param["description"].is_string(),
                    "{name}: {} has no description",
                    param["name"]
                );
                assert!(exemplified, "{name}: {} has no example", param["name"]);
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
}

/// The property's effective schema: through `oneOf` (its non-null member) and `$ref`, with
/// the property's own description and examples kept on top.
fn target(schemas: &serde_json::Map<String, Value>, property: &Value) -> Value {
    let mut out = property.clone();
    if let Some(members) = property["oneOf"].as_array()
        && let Some(member) = members.iter().find(|m| m["type"] != "null")
    {
        let mut inner = target(schemas, member);
        for key in ["description", "example", "examples"] {
            if let Some(v) = property.get(key) {
                inner[key] = v.clone();
            }
        }
        return inner;
    }
    if let Some(reference) = property["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        out = schemas[name].clone();
        for key in ["description", "example", "examples"] {
            if let Some(v) = property.get(key) {
                out[key] = v.clone();
            }
        }
        out["x-ref"] = Value::Bool(true);
    }
    out
}

#[test]
fn every_field_is_described_with_an_example() {
    let doc = rapport::openapi::spec();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut missing = Vec::new();
    for (name, schema) in schemas {
        let whole_example = schema.get("example").is_some() || schema.get("examples").is_some();
        let mut variants = vec![schema.clone()];
        variants.extend(schema["oneOf"].as_array().cloned().unwrap_or_default());
        for variant in variants {
            let Some(properties) = variant["properties"].as_object() else {
                continue;
            };
            for (field, property) in properties {
                let t = target(schemas, property);
                let types: Vec<String> = match &t["type"] {
                    Value::String(s) => vec![s.clone()],
                    Value::Array(a) => a
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect(),
                    _ => vec![],
                };
                let is_tag = t["enum"].as_array().is_some_and(|e| e.len() == 1);
                let described = t.get("description").is_some() || is_tag;
                let items = &t["items"];
                let exemplified = whole_example
                    || t.get("example").is_some()
                    || t.get("examples").is_some()
                    || t.get("enum").is_some()
                    || t.get("x-ref").is_some()
                    || types.iter().any(|t| t == "boolean")
                    || (types.iter().any(|t| t == "array")
                        && (items.get("$ref").is_some()
                            || items.get("enum").is_some()
                            || items.get("properties").is_some()));
                if !described || !exemplified {
                    missing.push(format!(
                        "{name}.{field}:{}{}",
                        if described { "" } else { " no description" },
                        if exemplified { "" } else { " no example" }
                    ));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields the API documentation leaves unexplained:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_reference_resolves_and_enums_are_the_wire_values() {
    let doc = rapport::openapi::spec();
    fn walk(value: &Value, doc: &Value, broken: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                    let pointer = reference.trim_start_matches('#');
                    if doc.pointer(pointer).is_none() {
                        broken.push(reference.to_owned());
                    }
                }
                map.values().for_each(|v| walk(v, doc, broken));
            }
            Value::Array(list) => list.iter().for_each(|v| walk(v, doc, broken)),
            _ => {}
        }
    }
    let mut broken = Vec::new();
    walk(&doc, &doc, &mut broken);
    assert!(broken.is_empty(), "unresolved references: {broken:?}");

    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Role"]["enum"],
        serde_json::json!(["admin", "manager", "agent", "viewer"])
    );
    assert_eq!(
        schemas["ProspectGrade"]["enum"],
        serde_json::json!(["ideal", "reachable", "not_a_prospect"])
    );
}
