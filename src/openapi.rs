//! The OpenAPI 3.1 document, generated from the handlers (utoipa + utoipa-actix-web), then
//! completed in one place with what every endpoint shares: the bearer scheme, the
//! `Idempotency-Key` header on POST, and the error responses its shape implies (a body can be
//! malformed, too large or invalid; a path id can be unknown; a secured route can refuse).
//! Served at `/openapi.json`, shown at `/docs/`, committed at `openapi/openapi.json`.

use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::http::error::{FieldError, Problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rapport",
        description = "A headless CRM: customers and everything a business learns about them, \
as a JSON REST API.\n\n\
**Authentication**: get a token at `POST /v1/auth/token` (or `rapport token --role admin` on \
the server) and send it as `Authorization: Bearer <token>`. Each endpoint's security lists the \
permission (scope) it needs.\n\n\
**Conventions**: JSON in and out, RFC 3339 UTC times, UUIDv7 ids. Lists are cursor-paginated \
(`limit`, `cursor` → `next_cursor`); unknown query parameters are refused. Every error is \
`application/problem+json` with a stable `code`. `POST` takes an `Idempotency-Key`; `PATCH` \
takes `If-Match` with the `ETag` of the version it was based on.\n\n\
**Rate limits**: each authenticated caller may send a quota of requests per window (per \
instance; `RAPPORT_RATE_LIMIT`, or an API client's own `rate_limit`). Every response to an \
authenticated caller carries `RateLimit-Policy` (`\"default\";q=600;w=60`: `q` requests per `w` \
seconds) and `RateLimit` (`\"default\";r=599;t=1`: `r` left, full again in `t` seconds), as in \
draft-ietf-httpapi-ratelimit-headers-10. Past the quota any endpoint answers \
`429 rate_limited` with `Retry-After` in seconds.",
        license(name = "MIT", identifier = "MIT")
    ),
    components(schemas(Problem, FieldError)),
    tags(
        (name = "Authentication", description = "Tokens and the caller's identity"),
        (name = "Customers", description = "The customer record: identifying, demographic, \
marketing and overlay data, the relationship (lifecycle stage, level, MAN qualification), \
data-subject export and erasure"),
        (name = "Duplicates", description = "Customers that look like one: likely duplicate \
pairs with a score and reasons, pairs marked as not duplicates, merging into a survivor (every \
row that hangs off a customer moves; the merged records become tombstones) and undoing a merge"),
        (name = "Contacts", description = "People at organizations: an individual customer \
linked to an organization customer with a title, buying roles (purchaser, user, technical and \
financial gatekeeper, decision maker), the primary flag, and when the link began and ended"),
        (name = "Interactions", description = "The customer log: every contact, by channel, \
direction and kind, with notes and outcome"),
        (name = "Complaints", description = "Complaints: the status workflow, the open list by \
age and severity, and the time to resolve"),
        (name = "Follow-ups", description = "Scheduled contacts: each staff member's due and \
overdue work list"),
        (name = "Purchases", description = "What customers bought, in minor units of the \
currency, recorded once per receipt, refunded in full or in part"),
        (name = "Loyalty", description = "The loyalty programme: how points are earned and \
expire, what qualifies for a tier, the tiers"),
        (name = "Surveys", description = "Satisfaction surveys: NPS, CSAT, CES, rating, choice \
            and text questions, and each service attribute's expectation against perceived \
            performance with its Kano category; responses, follow-ups for the dissatisfied, \
            and the results"),
        (name = "Imports", description = "Bulk imports of customers, interactions and \
            purchases from CSV or NDJSON files, with an honest report and an error file to fix \
            and re-send"),
        (name = "Timeline", description = "Everything that happened with a customer, in time order"),
        (name = "Exports", description = "Everything a list selects as one CSV or NDJSON \
            download, streamed: customers, interactions, purchases, survey responses"),
        (name = "Events", description = "Every change integrations hear about, written with the \
            change itself, as a cursor feed in commit order that never skips an event"),
        (name = "Webhooks", description = "Events pushed to your URL: signed (Standard \
            Webhooks), in order per webhook, retried with backoff for 24 hours, replayable, \
            with every attempt on record"),
        (name = "Analytics", description = "Customer value: Pareto, value tiers, the value \
            matrix, RFM, segments and churn risk, computed set-wise from purchases, \
            interactions and surveys"),
        (name = "Pipeline", description = "The sales pipeline: stages with win probabilities, \
            opportunities with their stage history, and the forecast"),
        (name = "Users", description = "Staff users: sign-in accounts and account managers"),
        (name = "API clients", description = "Integration clients and their scopes"),
        (name = "Service tokens", description = "Tokens minted by `rapport token`: listed and \
            revoked one by one"),
        (name = "Audit", description = "Who changed what, when"),
        (name = "Operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

/// A free-form JSON object field with its description and example (utoipa drops examples of
/// `serde_json::Value` fields; `#[schema(schema_with = ...)]` functions use this instead).
pub fn free_object(
    description: &str,
    example: Value,
    nullable: bool,
) -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::Type(Type::Object)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .description(Some(description))
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .examples([example])
        .build()
}

/// The complete document, as served and committed.
pub fn spec() -> Value {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes)
        .split_for_parts();
    let mut doc = serde_json::to_value(&api).unwrap_or_default();
    complete(&mut doc);
    doc
}

/// The document as committed: pretty JSON with a final newline.
pub fn pretty() -> String {
    let mut text = serde_json::to_string_pretty(&spec()).unwrap_or_default();
    text.push('\n');
    text
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            "application/problem+json": {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}

/// Declares a handler's own error response as `application/problem+json` (its schema kept).
fn problem_content(response: &mut Value) {
    let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    let schema = content
        .values()
        .find_map(|media| media.get("schema").cloned())
        .unwrap_or_else(|| json!({ "$ref": "#/components/schemas/Problem" }));
    content.clear();
    content.insert(
        "application/problem+json".to_owned(),
        json!({ "schema": schema }),
    );
}

/// Shared responses, referenced by status from every operation that can answer them.
const SHARED: [(&str, &str, &str); 12] = [
    (
        "400",
        "BadRequest",
        "Malformed request: JSON syntax, query parameters, path or headers (`code` says which)",
    ),
    (
        "401",
        "Unauthenticated",
        "No token, or an invalid, expired or revoked one",
    ),
    (
        "403",
        "Forbidden",
        "The token lacks the permission this endpoint needs",
    ),
    (
        "404",
        "NotFound",
        "No such object (or not visible to the caller)",
    ),
    (
        "409",
        "IdempotencyInProgress",
        "A request with this `Idempotency-Key` is still running",
    ),
    (
        "412",
        "PreconditionFailed",
        "`If-Match` names a version that is no longer current",
    ),
    (
        "413",
        "PayloadTooLarge",
        "The body exceeds the configured limit",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The body is not sent as JSON",
    ),
    (
        "422",
        "ValidationFailed",
        "Well-formed but invalid: `errors` names each field (also a reused `Idempotency-Key`)",
    ),
    (
        "429",
        "RateLimited",
        "Too many requests; wait `Retry-After` seconds",
    ),
    (
        "500",
        "Internal",
        "Unexpected failure; quote the `request_id`",
    ),
    (
        "503",
        "ServiceUnavailable",
        "The database is unavailable; retry after `Retry-After` seconds",
    ),
];

fn shared_ref(status: &str) -> Value {
    let name = SHARED
        .iter()
        .find(|(s, _, _)| *s == status)
        .map_or("Internal", |(_, name, _)| *name);
    json!({ "$ref": format!("#/components/responses/{name}") })
}

fn complete(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "A token from `POST /v1/auth/token` or `rapport token`. \
                            The scopes listed on an operation are the permissions it needs."
        }
    });
    let responses: Map<String, Value> = SHARED
        .iter()
        .map(|(_, name, description)| ((*name).to_owned(), problem(description)))
        .collect();
    doc["components"]["responses"] = Value::Object(responses);

    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for schema in schemas.values_mut() {
            free_text_patterns(schema);
        }
        // serde's `deny_unknown_fields` on a tagged enum refuses other fields in each
        // variant, but utoipa states it on structs only.
        for name in TAGGED_CLOSED {
            if let Some(variants) = schemas
                .get_mut(*name)
                .and_then(|s| s.get_mut("oneOf"))
                .and_then(Value::as_array_mut)
            {
                for variant in variants {
                    variant["additionalProperties"] = Value::Bool(false);
                }
            }
        }
    }

    let lists = list_patterns(doc);
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            complete_operation(path, method, operation);
            let params = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut);
            for param in params.into_iter().flatten() {
                let name = param["name"].as_str().unwrap_or_default();
                let is_list = param["description"]
                    .as_str()
                    .is_some_and(|d| d.contains("comma"))
                    && param["schema"]["type"] == "string"
                    && param["schema"].get("pattern").is_none();
                let pattern = lists
                    .iter()
                    .find(|(prefix, list, _)| *list == name && path.starts_with(prefix))
                    .map(|(_, _, pattern)| pattern.clone());
                if let (true, Some(pattern)) = (is_list, pattern) {
                    param["schema"]["pattern"] = Value::String(pattern);
                }
            }
        }
    }
}

fn complete_operation(path: &str, method: &str, op: &mut Value) {
    let params: Vec<(String, String)> = op["parameters"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let place = p["in"].as_str().unwrap_or_default().to_owned();
                    (place, p["name"].as_str().unwrap_or_default().to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let has = |place: &str| params.iter().any(|(p, _)| p == place);
    let secured = op["security"].as_array().is_some_and(|s| {
        s.iter()
            .any(|req| req.as_object().is_some_and(|o| !o.is_empty()))
    });
    let needs_scope = op["security"].as_array().is_some_and(|s| {
        s.iter().any(|req| {
            req.as_object().is_some_and(|o| {
                o.values()
                    .any(|v| v.as_array().is_some_and(|a| !a.is_empty()))
            })
        })
    });
    let has_body = op.get("requestBody").is_some();
    let idempotent_post = method == "post" && path.starts_with("/v1/") && path != "/v1/auth/token";

    // Examples for the parameters every endpoint shares by convention.
    if let Some(list) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for param in list.iter_mut() {
            if param.get("example").is_some() {
                continue;
            }
            if param["in"] == "path" && param["schema"]["format"] == "uuid" {
                param["example"] = json!("0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a");
            } else if param["name"] == "cursor" {
                param["example"] = json!("eyJvIjoiaWQiLCJrIjoiMDE5M2IwYTYifQ");
            }
        }
    }

    if idempotent_post {
        let param = json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes a retry safe: the same key and body replay the first \
                            successful response (`Idempotent-Replayed: true`) instead of \
                            running twice; another body with the key is a `422`. Kept 24 hours.",
            "schema": { "type": "string", "maxLength": 255 },
            "example": "5f0c1c9e-8a4b-4c1e-9d7a-3b2f6e1a9c40"
        });
        match op.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(list) => list.push(param),
            None => op["parameters"] = json!([param]),
        }
    }

    let replica_read = method == "get" && crate::http::consistency::REPLICA_READS.contains(&path);
    if replica_read {
        let param = json!({
            "name": "Rapport-Consistency-Token",
            "in": "header",
            "required": false,
            "description": "A write's `Rapport-Consistency-Token`, sent back so that a read \
                            replica serves this read only once it holds that write (else the \
                            primary does). Only with read replicas configured.",
            "schema": { "type": "string", "pattern": "^[0-9A-F]{1,8}/[0-9A-F]{1,8}$" },
            "example": "0/16B3748"
        });
        match op.get_mut("parameters").and_then(Value::as_array_mut) {
            Some(list) => list.push(param),
            None => op["parameters"] = json!([param]),
        }
    }
    let write = matches!(method, "post" | "put" | "patch" | "delete") && path.starts_with("/v1/");

    let mut wanted: Vec<&str> = vec!["500"];
    if path.starts_with("/v1/") || path == "/readyz" {
        wanted.push("503");
    }
    if has_body || has("query") || has("path") || has("header") || idempotent_post {
        wanted.push("400");
    }
    if secured {
        wanted.push("401");
    }
    if needs_scope {
        wanted.push("403");
    }
    if has("path") {
        wanted.push("404");
    }
    if idempotent_post {
        wanted.extend(["409", "422"]);
    }
    if params.iter().any(|(p, n)| p == "header" && n == "If-Match") {
        wanted.push("412");
    }
    if has_body {
        wanted.extend(["413", "415", "422"]);
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    // Every error is answered as `application/problem+json`, whatever content type a handler's
    // own error response was declared with (utoipa's default is `application/json`).
    for (status, response) in responses.iter_mut() {
        if status.starts_with('4') || status.starts_with('5') {
            problem_content(response);
        }
    }
    if write {
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') && response.get("$ref").is_none() {
                response["headers"]["Rapport-Consistency-Token"] = json!({
                    "description": "With read replicas configured: the primary's position \
                                    after this write, to send back on reads that must see it.",
                    "schema": { "type": "string", "example": "0/16B3748" }
                });
            }
        }
    }
    for status in wanted {
        if !responses.contains_key(status) {
            responses.insert(status.to_owned(), shared_ref(status));
        }
    }
    responses.sort_keys();
}

/// Query parameters that take a comma-separated list: (path prefix, parameter, what each
/// item is: an enum of the components, or a pattern of its own). The first match wins.
const LISTS: &[(&str, &str, &str)] = &[
    ("/v1/opportunities", "status", "OpportunityStatus"),
    ("/v1/opportunities", "stage", "^[a-z][a-z0-9_]*$"),
    (
        "/v1/customers/{id}/opportunities",
        "status",
        "OpportunityStatus",
    ),
    (
        "/v1/customers/{id}/opportunities",
        "stage",
        "^[a-z][a-z0-9_]*$",
    ),
    ("/v1/customers/{id}/points", "kind", "EntryKind"),
    ("", "lifecycle_stage", "LifecycleStage"),
    ("", "nps_category", "NpsCategory"),
    ("", "value_tier", "ValueTier"),
    ("", "value_class", "ValueClass"),
    ("", "rfm_recency", "^[1-5]$"),
    ("", "rfm_frequency", "^[1-5]$"),
    ("", "rfm_monetary", "^[1-5]$"),
    ("", "channel", "Channel"),
    ("", "kind", "InteractionKind"),
    ("", "status", "ComplaintStatus"),
    ("", "severity", "Severity"),
    ("", "types", "ItemType"),
    ("", "reason", "ChurnReason"),
    ("", "loyalty_tier", "^([a-z][a-z0-9_]*|none)$"),
];

/// The pattern of each list parameter: its items, separated by commas.
fn list_patterns(doc: &Value) -> Vec<(&'static str, &'static str, String)> {
    LISTS
        .iter()
        .map(|(prefix, name, items)| {
            let item = match items.strip_prefix('^') {
                Some(own) => own.trim_end_matches('$').to_owned(),
                None => {
                    let values: Vec<&str> = doc["components"]["schemas"][*items]["enum"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    format!("({})", values.join("|"))
                }
            };
            (*prefix, *name, format!("^{item}(,{item})*$"))
        })
        .collect()
}

/// Tagged enums that deny unknown fields (see `complete`).
const TAGGED_CLOSED: &[&str] = &["TokenRequest"];

/// What the server takes as free text (`crate::domain::text`): at least one character that is
/// not a space, and no control characters but tab and line feed. Blank text is never kept:
/// it is refused, or taken as no value, so a client sends `null` or leaves the field out.
const FREE_TEXT: &str = "^[^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*\
                         [^\\s\\u0000-\\u001F\\u007F-\\u009F]\
                         [^\\u0000-\\u0008\\u000B-\\u001F\\u007F-\\u009F]*$";

/// States the free-text rule on every bounded string of input schemas that has no rule of
/// its own (a pattern, a format or an enum): one place for what every text field enforces.
fn free_text_patterns(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let is_string = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let own_rule = ["pattern", "format", "enum", "const"]
                .iter()
                .any(|k| map.contains_key(*k));
            if is_string && map.contains_key("maxLength") && !own_rule {
                map.insert("pattern".to_owned(), Value::String(FREE_TEXT.to_owned()));
            }
            for value in map.values_mut() {
                free_text_patterns(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(free_text_patterns),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_operation_documents_errors_and_needs() {
        let doc = super::spec();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().cloned().unwrap_or_default();
        assert!(!paths.is_empty());
        for (path, item) in paths {
            for (method, op) in item.as_object().cloned().unwrap_or_default() {
                let responses = op["responses"].as_object().cloned().unwrap_or_default();
                assert!(responses.contains_key("500"), "{method} {path}");
                for (status, response) in &responses {
                    if let Some(content) = response["content"].as_object()
                        && (status.starts_with('4') || status.starts_with('5'))
                    {
                        let types: Vec<&String> = content.keys().collect();
                        assert_eq!(
                            types,
                            ["application/problem+json"],
                            "{method} {path} {status}"
                        );
                    }
                }
                assert!(
                    responses.keys().any(|k| k.starts_with('2')),
                    "{method} {path} has no success response"
                );
                if path.starts_with("/v1/") && path != "/v1/auth/token" {
                    assert!(
                        op.get("security").is_some(),
                        "{method} {path} has no security"
                    );
                }
            }
        }
    }
}
