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

/// Resolves a local `$ref` (`#/components/...`) against the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(doc, doc.pointer(r.trim_start_matches('#')).unwrap()),
        None => schema,
    }
}

/// A structural check of `value` against `schema`: types (with `null`), `oneOf`/`anyOf`/
/// `allOf`, required properties, and no property the schema does not document (unless it
/// allows additional ones). Returns what does not conform, by JSON path.
fn conform(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut errors = Vec::new();
    for key in ["oneOf", "anyOf"] {
        if let Some(members) = schema[key].as_array()
            && !members
                .iter()
                .any(|m| conform(doc, m, value, at).is_empty())
        {
            errors.push(format!("{at}: {value} matches no member of {key}"));
        }
    }
    // The properties documented here and in every `allOf` member, which also all apply.
    let mut documented: Vec<&String> = Vec::new();
    let mut open = schema["additionalProperties"] == Value::Bool(true)
        || schema["additionalProperties"].is_object();
    for member in schema["allOf"].as_array().into_iter().flatten() {
        errors.extend(conform(doc, member, value, at));
        let member = resolve(doc, member);
        documented.extend(
            member["properties"]
                .as_object()
                .into_iter()
                .flat_map(|p| p.keys()),
        );
        open |= member["additionalProperties"] == Value::Bool(true);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let actual = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    if !types.is_empty()
        && !types
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"))
    {
        errors.push(format!("{at}: {actual} where {types:?} is documented"));
        return errors;
    }
    if let Some(enumerated) = schema["enum"].as_array()
        && !enumerated.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {enumerated:?}"));
    }
    if let (Value::Object(object), Some(properties)) = (value, schema["properties"].as_object()) {
        documented.extend(properties.keys());
        for required in schema["required"].as_array().into_iter().flatten() {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{at}: required `{name}` is missing"));
            }
        }
        for (name, property) in properties {
            if let Some(v) = object.get(name) {
                errors.extend(conform(doc, property, v, &format!("{at}.{name}")));
            }
        }
    }
    if let Value::Object(object) = value
        && !documented.is_empty()
        && !open
    {
        for name in object.keys().filter(|k| !documented.contains(k)) {
            errors.push(format!("{at}: `{name}` is not documented"));
        }
    }
    if let (Value::Array(items), Some(item)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            errors.extend(conform(doc, item, v, &format!("{at}[{i}]")));
        }
    }
    errors
}

/// Checks a real response against the operation's documented response for its status: the
/// status and the content type are documented, and the body conforms to the schema.
async fn expect_documented(doc: &Value, method: &str, path: &str, res: reqwest::Response) -> Value {
    let status = res.status().as_u16().to_string();
    let content_type = res.headers()["content-type"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let body: Value = res.json().await.unwrap();
    let name = format!("{method} {path} → {status} {content_type}");
    let responses = &doc["paths"][path][method]["responses"];
    assert!(responses.is_object(), "{name}: no such operation");
    assert!(
        responses.get(&status).is_some(),
        "{name}: status undocumented"
    );
    let response = resolve(doc, &responses[&status]);
    let media = &response["content"][&content_type];
    assert!(
        media.is_object(),
        "{name}: documented only as {:?}",
        response["content"]
            .as_object()
            .map(|c| c.keys().collect::<Vec<_>>())
    );
    let errors = conform(doc, &media["schema"], &body, "$");
    assert!(errors.is_empty(), "{name}: {body}\n{}", errors.join("\n"));
    body
}

#[actix_web::test]
async fn real_responses_conform_to_the_served_spec() {
    use rapport::auth::Role;
    use reqwest::Method;
    use serde_json::json;

    let app = TestApp::spawn().await;
    let doc = expect_json(
        app.get("/openapi.json").send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    let admin = app.token(Role::Admin);
    let viewer = app.token(Role::Viewer);

    // Analytics settings after a computation: `last_computation`, `updated_at`, `version`.
    let res = app
        .send(Method::POST, "/v1/analytics/recompute", &admin, &json!({}))
        .await;
    expect_json(res, StatusCode::OK).await;
    let get = |token: &str, path: &str| app.get(path).bearer_auth(token.to_owned()).send();
    let settings = expect_documented(
        &doc,
        "get",
        "/v1/analytics/settings",
        get(&admin, "/v1/analytics/settings").await.unwrap(),
    )
    .await;
    assert!(settings["last_computation"].is_object(), "{settings}");
    let mut input = settings.clone();
    for field in ["last_computation", "updated_at", "version"] {
        input.as_object_mut().unwrap().remove(field);
    }
    input["contact_days"] = json!(60);
    let res = app
        .send(Method::PUT, "/v1/analytics/settings", &admin, &input)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_documented(&doc, "put", "/v1/analytics/settings", res).await;

    // A deleted opportunity's audit entry (recorded `null` changes), and a legacy row with
    // `null` changes as older versions wrote them.
    let customer = crate::customers::create(&app, json!({"name": "Grace Hopper"})).await;
    let (owner, _) = app.user(Role::Agent).await;
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &admin,
            &json!({"customer_id": customer["id"], "title": "Chairs", "amount": 1000,
                    "currency": "EUR", "owner_id": owner, "expected_close_date": "2026-12-01"}),
        )
        .await;
    let opportunity = expect_documented(&doc, "post", "/v1/opportunities", res).await;
    let res = app
        .delete(
            &format!("/v1/opportunities/{}", opportunity["id"].as_str().unwrap()),
            &admin,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    app.sql(
        "INSERT INTO audit_events (id, actor_type, actor_id, action, entity_type, entity_id, changes) \
         VALUES (uuid_v7(), 'system', 'legacy', 'pipeline_stage.deleted', 'pipeline_stage', 'old', 'null')",
    )
    .await;
    let audit = expect_documented(
        &doc,
        "get",
        "/v1/audit",
        get(&admin, "/v1/audit").await.unwrap(),
    )
    .await;
    let deletions: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().ends_with(".deleted"))
        .collect();
    assert_eq!(deletions.len(), 2, "{audit}");
    assert!(
        deletions.iter().all(|e| e["changes"] == json!({})),
        "{audit}"
    );

    // The loyalty programme, whose input refuses unknown fields: the answer (with its
    // `updated_at` and `version`) conforms, and its tier qualification (`basis`, `months`) is
    // not the customers' MAN one. The answer less those two fields is a valid `PUT`.
    let program = expect_documented(
        &doc,
        "get",
        "/v1/loyalty/program",
        get(&viewer, "/v1/loyalty/program").await.unwrap(),
    )
    .await;
    assert!(program["qualification"]["months"].is_i64(), "{program}");
    let mut config = program.clone();
    for field in ["updated_at", "version"] {
        config.as_object_mut().unwrap().remove(field);
    }
    let res = app
        .send(Method::PUT, "/v1/loyalty/program", &admin, &config)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    expect_documented(&doc, "put", "/v1/loyalty/program", res).await;

    // Errors: each answered as documented, `application/problem+json`.
    let res = get(&admin, "/v1/events?type=no.such").await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    expect_documented(&doc, "get", "/v1/events", res).await;
    let res = app.get("/v1/audit").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    expect_documented(&doc, "get", "/v1/audit", res).await;
    let res = get(&viewer, "/v1/audit").await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    expect_documented(&doc, "get", "/v1/audit", res).await;
    let res = get(
        &viewer,
        "/v1/opportunities/0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a",
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    expect_documented(&doc, "get", "/v1/opportunities/{id}", res).await;
    input["contact_days"] = json!(0);
    let res = app
        .send(Method::PUT, "/v1/analytics/settings", &admin, &input)
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    expect_documented(&doc, "put", "/v1/analytics/settings", res).await;
}
