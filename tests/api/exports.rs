//! Exports: CSV and NDJSON of every resource on small hand-made data sets (exact content),
//! the list's filters, more rows than one batch, masking, negotiation and refusals.

use rapport::auth::Role;
use rapport::http::tabular::Column;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem};

/// A `200` export's body, after checking the headers every export carries.
async fn download(
    app: &TestApp,
    path: &str,
    token: &str,
    accept: Option<&str>,
) -> (String, String) {
    let mut request = app.get(path).bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let res = request.send().await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    // Streamed: no length known in advance.
    assert!(
        headers.get("content-length").is_none(),
        "{path} was not streamed"
    );
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(headers["vary"], "Accept");
    let content_type = headers["content-type"].to_str().unwrap().to_owned();
    let disposition = headers["content-disposition"].to_str().unwrap().to_owned();
    let extension = if content_type.starts_with("text/csv") {
        "csv"
    } else {
        "ndjson"
    };
    let resource = path
        .trim_start_matches("/v1/exports/")
        .split('?')
        .next()
        .unwrap();
    let name = disposition
        .strip_prefix(&format!("attachment; filename=\"{resource}-"))
        .and_then(|rest| rest.strip_suffix(&format!(".{extension}\"")))
        .unwrap_or_else(|| panic!("{path}: Content-Disposition {disposition}"));
    assert!(
        chrono::NaiveDateTime::parse_from_str(name, "%Y%m%dT%H%M%SZ").is_ok(),
        "{disposition}"
    );
    (content_type, body)
}

pub(crate) async fn csv(app: &TestApp, path: &str, token: &str) -> String {
    let (content_type, body) = download(app, path, token, Some("text/csv")).await;
    assert_eq!(content_type, "text/csv; charset=utf-8");
    body
}

pub(crate) async fn ndjson(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let (content_type, body) = download(app, path, token, Some("application/x-ndjson")).await;
    assert_eq!(content_type, "application/x-ndjson");
    assert!(body.is_empty() || body.ends_with('\n'));
    body.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// What the list endpoint answers for the same query, all on one page.
async fn listed(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let page = app
        .get_ok(&format!("{path}{separator}limit=200"), token)
        .await;
    assert_eq!(page["next_cursor"], Value::Null);
    page["data"].as_array().unwrap().clone()
}

fn header(columns: &[Column]) -> String {
    format!("{}\r\n", rapport::http::tabular::header(columns).join(","))
}

/// One CSV line: `cells` (as written, quotes and all) in their columns, every other cell
/// empty.
fn line(columns: &[Column], cells: &[(&str, &str)]) -> String {
    for (name, _) in cells {
        assert!(columns.iter().any(|c| c.path == *name), "no column {name}");
    }
    let row: Vec<&str> = columns
        .iter()
        .map(|c| {
            cells
                .iter()
                .find(|(name, _)| *name == c.path)
                .map_or("", |(_, cell)| *cell)
        })
        .collect();
    format!("{}\r\n", row.join(","))
}

fn text<'a>(item: &'a Value, field: &str) -> &'a str {
    item[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {item}"))
}

async fn create(app: &TestApp, path: &str, token: &str, body: Value) -> Value {
    expect_json(
        app.send(Method::POST, path, token, &body).await,
        StatusCode::CREATED,
    )
    .await
}

#[actix_web::test]
async fn customers_export_as_csv_and_ndjson_with_the_list_filters() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let manager = app.token(Role::Manager);
    let ada = create(
        &app,
        "/v1/customers",
        &agent,
        json!({"name": "Ada Lovelace", "email": "ada@example.com",
               "address": {"line1": "12 Main St, Apt 3", "city": "London", "country": "GB"},
               "tags": ["vip", "newsletter"], "attributes": {"plan": "gold", "seats": 3},
               "national_id": "AB1234567", "lifecycle_stage": "stable"}),
    )
    .await;
    let grace = create(
        &app,
        "/v1/customers",
        &agent,
        json!({"kind": "organization", "name": "Grace \"Amazing\" Hopper",
               "organization_name": "Navy, Research Lab", "consent": {"email": {"granted": true}}}),
    )
    .await;
    let columns = rapport::customers::json::COLUMNS;
    let ada_line = |national_id: &str| {
        line(
            columns,
            &[
                ("id", text(&ada, "id")),
                ("kind", "individual"),
                ("name", "Ada Lovelace"),
                ("email", "ada@example.com"),
                ("address.line1", "\"12 Main St, Apt 3\""),
                ("address.city", "London"),
                ("address.country", "GB"),
                ("national_id", national_id),
                ("consent.email.granted", "false"),
                ("consent.sms.granted", "false"),
                ("tags", "vip;newsletter"),
                (
                    "attributes",
                    "\"{\"\"plan\"\":\"\"gold\"\",\"\"seats\"\":3}\"",
                ),
                ("lifecycle_stage", "stable"),
                ("relationship_level", "basic"),
                ("created_at", text(&ada, "created_at")),
                ("updated_at", text(&ada, "updated_at")),
                ("version", "1"),
                ("influential", "false"),
            ],
        )
    };
    let grace_line = line(
        columns,
        &[
            ("id", text(&grace, "id")),
            ("kind", "organization"),
            ("name", "\"Grace \"\"Amazing\"\" Hopper\""),
            ("organization_name", "\"Navy, Research Lab\""),
            ("consent.email.granted", "true"),
            ("consent.email.at", text(&grace["consent"]["email"], "at")),
            ("consent.sms.granted", "false"),
            ("attributes", "{}"),
            ("lifecycle_stage", "prospect"),
            ("relationship_level", "basic"),
            ("created_at", text(&grace, "created_at")),
            ("updated_at", text(&grace, "updated_at")),
            ("version", "1"),
            ("influential", "false"),
        ],
    );

    // Newest first, as the list; the ID number masked without `pii:read`.
    let body = csv(&app, "/v1/exports/customers", &agent).await;
    assert_eq!(
        body,
        [header(columns), grace_line.clone(), ada_line("****4567")].concat()
    );
    let body = csv(&app, "/v1/exports/customers", &manager).await;
    assert_eq!(
        body,
        [header(columns), grace_line, ada_line("AB1234567")].concat()
    );
    // The list's filters and sort.
    let body = csv(&app, "/v1/exports/customers?lifecycle_stage=stable", &agent).await;
    assert_eq!(body, [header(columns), ada_line("****4567")].concat());
    let body = csv(
        &app,
        "/v1/exports/customers?attributes.seats=3&sort=name",
        &manager,
    )
    .await;
    assert_eq!(body, [header(columns), ada_line("AB1234567")].concat());
    let body = csv(&app, "/v1/exports/customers?tags=nobody", &agent).await;
    assert_eq!(body, header(columns), "no rows: the header alone");

    // NDJSON: exactly the list's items, for each caller and filter.
    for (query, token) in [
        ("", &agent),
        ("", &manager),
        ("?lifecycle_stage=stable", &agent),
        ("?q=hopper", &agent),
        ("?sort=name", &manager),
    ] {
        let lines = ndjson(&app, &format!("/v1/exports/customers{query}"), token).await;
        let list = listed(&app, &format!("/v1/customers{query}"), token).await;
        assert_eq!(lines, list, "{query}");
    }
    let lines = ndjson(&app, "/v1/exports/customers", &agent).await;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["national_id"], "****4567");
    let (_, body) = download(
        &app,
        "/v1/exports/customers?tags=nobody",
        &agent,
        Some("application/x-ndjson"),
    )
    .await;
    assert_eq!(body, "");
}

#[actix_web::test]
async fn interactions_export_with_notes_quoted_as_written() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let customer = create(
        &app,
        "/v1/customers",
        &agent,
        json!({"name": "Grace Hopper"}),
    )
    .await;
    let c = text(&customer, "id");
    let path = format!("/v1/customers/{c}/interactions");
    let note = create(
        &app,
        &path,
        &agent,
        json!({"channel": "email", "direction": "outbound", "kind": "note",
               "subject": "Welcome, and thanks",
               "notes": "Line one, with a comma\nLine two says \"hi\"\n\tThe end",
               "occurred_at": "2026-11-20T09:00:00Z", "duration_seconds": 120}),
    )
    .await;
    let complaint = create(
        &app,
        &path,
        &agent,
        json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
               "severity": "high", "subject": "Parcel damaged",
               "occurred_at": "2026-11-20T10:00:00Z"}),
    )
    .await;
    let cid = text(&complaint, "id");
    let res = app
        .send(
            Method::POST,
            &format!("/v1/interactions/{cid}/status"),
            &agent,
            &json!({"status": "resolved", "resolution": "Sent a new one"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    // Resolved two and a half hours after it was opened (the figures then do not move).
    app.sql(&format!(
        "UPDATE interactions SET resolved_at = '2026-11-20T12:30:00Z' WHERE id = '{cid}'"
    ))
    .await;
    let complaint = app.get_ok(&format!("/v1/interactions/{cid}"), &agent).await;
    assert_eq!(complaint["resolution_hours"], 2.5);

    let columns = rapport::interactions::json::COLUMNS;
    let note_line = line(
        columns,
        &[
            ("id", text(&note, "id")),
            ("customer_id", c),
            ("channel", "email"),
            ("direction", "outbound"),
            ("kind", "note"),
            ("subject", "\"Welcome, and thanks\""),
            (
                "notes",
                "\"Line one, with a comma\nLine two says \"\"hi\"\"\n\tThe end\"",
            ),
            ("occurred_at", "2026-11-20T09:00:00Z"),
            ("duration_seconds", "120"),
            ("created_at", text(&note, "created_at")),
            ("updated_at", text(&note, "updated_at")),
            ("version", "1"),
        ],
    );
    let next: Vec<&str> = complaint["next_statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(next.len() > 1);
    let next = next.join(";");
    let complaint_line = line(
        columns,
        &[
            ("id", cid),
            ("customer_id", c),
            ("channel", "phone"),
            ("direction", "inbound"),
            ("kind", "complaint"),
            ("subject", "Parcel damaged"),
            ("occurred_at", "2026-11-20T10:00:00Z"),
            ("severity", "high"),
            ("status", "resolved"),
            ("next_statuses", &next),
            ("resolution", "Sent a new one"),
            ("resolved_at", "2026-11-20T12:30:00Z"),
            ("reopen_count", "0"),
            ("resolution_hours", "2.5"),
            ("created_at", text(&complaint, "created_at")),
            ("updated_at", text(&complaint, "updated_at")),
            ("version", &complaint["version"].to_string()),
        ],
    );

    let body = csv(&app, "/v1/exports/interactions", &agent).await;
    assert_eq!(
        body,
        [header(columns), complaint_line.clone(), note_line.clone()].concat()
    );
    let body = csv(&app, "/v1/exports/interactions?kind=complaint", &agent).await;
    assert_eq!(body, [header(columns), complaint_line].concat());
    let body = csv(
        &app,
        "/v1/exports/interactions?sort=occurred_at&channel=email,sms",
        &agent,
    )
    .await;
    assert_eq!(body, [header(columns), note_line].concat());

    for query in ["", "?kind=complaint", "?sort=occurred_at", "?q=comma"] {
        let lines = ndjson(&app, &format!("/v1/exports/interactions{query}"), &agent).await;
        let list = listed(&app, &format!("/v1/interactions{query}"), &agent).await;
        assert_eq!(lines, list, "{query}");
        assert!(!lines.is_empty(), "{query}");
    }
}

#[actix_web::test]
async fn purchases_export_with_items_as_json() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let customer = create(
        &app,
        "/v1/customers",
        &agent,
        json!({"name": "Grace Hopper"}),
    )
    .await;
    let c = text(&customer, "id");
    let path = format!("/v1/customers/{c}/purchases");
    let vase = create(
        &app,
        &path,
        &agent,
        json!({"external_ref": "till-1", "amount": 4900, "currency": "EUR", "cost": 2100,
               "occurred_at": "2026-11-20T10:00:00Z", "channel": "in_store",
               "items": [{"sku": "VASE-01", "name": "Blue vase", "quantity": 2,
                          "unit_price": 2450}]}),
    )
    .await;
    let order = create(
        &app,
        &path,
        &agent,
        json!({"external_ref": "web, order \"7\"", "amount": 1999, "currency": "USD",
               "occurred_at": "2026-11-21T10:00:00Z", "channel": "web"}),
    )
    .await;
    let columns = rapport::purchases::json::COLUMNS;
    let vase_line = line(
        columns,
        &[
            ("id", text(&vase, "id")),
            ("customer_id", c),
            ("external_ref", "till-1"),
            ("amount", "4900"),
            ("currency", "EUR"),
            ("cost", "2100"),
            ("refunded", "0"),
            ("net_amount", "4900"),
            ("occurred_at", "2026-11-20T10:00:00Z"),
            ("channel", "in_store"),
            (
                "items",
                "\"[{\"\"sku\"\":\"\"VASE-01\"\",\"\"name\"\":\"\"Blue vase\"\",\
                 \"\"quantity\"\":2,\"\"unit_price\"\":2450}]\"",
            ),
            ("created_at", text(&vase, "created_at")),
            ("updated_at", text(&vase, "updated_at")),
            ("version", "1"),
        ],
    );
    let order_line = line(
        columns,
        &[
            ("id", text(&order, "id")),
            ("customer_id", c),
            ("external_ref", "\"web, order \"\"7\"\"\""),
            ("amount", "1999"),
            ("currency", "USD"),
            ("refunded", "0"),
            ("net_amount", "1999"),
            ("occurred_at", "2026-11-21T10:00:00Z"),
            ("channel", "web"),
            ("items", "[]"),
            ("created_at", text(&order, "created_at")),
            ("updated_at", text(&order, "updated_at")),
            ("version", "1"),
        ],
    );
    // The purchases' own header, written out: what a purchase import reads.
    assert_eq!(
        header(columns),
        "id,customer_id,external_ref,amount,currency,cost,refunded,net_amount,occurred_at,\
         channel,items,opportunity_id,created_at,updated_at,version\r\n"
    );
    let body = csv(&app, "/v1/exports/purchases", &agent).await;
    assert_eq!(
        body,
        [header(columns), order_line.clone(), vase_line.clone()].concat()
    );
    let body = csv(&app, "/v1/exports/purchases?currency=USD", &agent).await;
    assert_eq!(body, [header(columns), order_line].concat());
    let body = csv(&app, &format!("/v1/exports/purchases?customer_id={c}&sort=occurred_at&occurred_before=2026-11-21T00:00:00Z"), &agent).await;
    assert_eq!(body, [header(columns), vase_line].concat());

    for query in ["", "?currency=USD", "?sort=occurred_at"] {
        let lines = ndjson(&app, &format!("/v1/exports/purchases{query}"), &agent).await;
        let list = listed(&app, &format!("/v1/purchases{query}"), &agent).await;
        assert_eq!(lines, list, "{query}");
    }
}

#[actix_web::test]
async fn survey_responses_export_with_answers_as_json() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let manager = app.token(Role::Manager);
    let survey = create(
        &app,
        "/v1/surveys",
        &manager,
        json!({"name": "After-sales", "questions": [
            {"key": "recommend", "text": "Would you recommend us?", "type": "nps", "required": true},
            {"key": "comment", "text": "Anything else?", "type": "text"}]}),
    )
    .await;
    let s = text(&survey, "id");
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/surveys/{s}"),
            &manager,
            &json!({"status": "active"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let mut responses = Vec::new();
    for (name, nps, comment, at) in [
        ("Ada", 9, "Great, \"really\"", "2026-11-20T10:00:00Z"),
        ("Grace", 4, "slow\ndelivery", "2026-11-21T10:00:00Z"),
    ] {
        let customer = create(&app, "/v1/customers", &agent, json!({ "name": name })).await;
        let response = create(
            &app,
            &format!("/v1/surveys/{s}/responses"),
            &agent,
            json!({"customer_id": customer["id"], "submitted_at": at,
                   "answers": {"recommend": nps, "comment": comment}}),
        )
        .await;
        responses.push(response);
    }
    let columns = rapport::surveys::json::RESPONSE_COLUMNS;
    let row = |r: &Value, cells: &[(&str, &str)]| {
        let mut all = vec![
            ("id", text(r, "id")),
            ("survey_id", s),
            ("customer_id", text(r, "customer_id")),
            ("submitted_at", text(r, "submitted_at")),
            ("segment.lifecycle_stage", "prospect"),
            // No expectation_performance answer: no verdicts.
            ("verdicts", "[]"),
            ("created_at", text(r, "created_at")),
            ("updated_at", text(r, "updated_at")),
            ("version", "1"),
        ];
        all.extend_from_slice(cells);
        line(columns, &all)
    };
    let promoter = row(
        &responses[0],
        &[
            (
                "answers",
                "\"{\"\"comment\"\":\"\"Great, \\\"\"really\\\"\"\"\",\"\"recommend\"\":9}\"",
            ),
            ("nps", "9"),
            ("nps_category", "promoter"),
        ],
    );
    let detractor = row(
        &responses[1],
        &[
            (
                "answers",
                "\"{\"\"comment\"\":\"\"slow\\ndelivery\"\",\"\"recommend\"\":4}\"",
            ),
            ("nps", "4"),
            ("nps_category", "detractor"),
        ],
    );
    assert_eq!(text(&responses[1], "submitted_at"), "2026-11-21T10:00:00Z");
    let viewer = app.token(Role::Viewer);
    let body = csv(&app, "/v1/exports/survey-responses", &viewer).await;
    assert_eq!(
        body,
        [header(columns), detractor.clone(), promoter.clone()].concat()
    );
    let body = csv(&app, "/v1/exports/survey-responses?nps_max=6", &viewer).await;
    assert_eq!(body, [header(columns), detractor].concat());
    let body = csv(
        &app,
        &format!("/v1/exports/survey-responses?survey_id={s}&sort=submitted_at&nps_min=7"),
        &viewer,
    )
    .await;
    assert_eq!(body, [header(columns), promoter].concat());

    for query in ["", "?nps_max=6", "?sort=submitted_at"] {
        let lines = ndjson(
            &app,
            &format!("/v1/exports/survey-responses{query}"),
            &viewer,
        )
        .await;
        let list = listed(&app, &format!("/v1/survey-responses{query}"), &viewer).await;
        assert_eq!(lines, list, "{query}");
    }
    // An unknown survey is a 404, as on the list.
    let res = app
        .get(&format!(
            "/v1/exports/survey-responses?survey_id={}",
            uuid::Uuid::now_v7()
        ))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn more_rows_than_a_batch_stream_in_order() {
    let app = TestApp::spawn().await;
    // Two and a half batches of customers, one a minute from New Year.
    app.sql(
        "INSERT INTO customers (id, kind, name, created_at, updated_at) \
         SELECT gen_random_uuid(), 'individual', 'Bulk ' || lpad(n::text, 4, '0'), \
                t, t \
         FROM generate_series(1, 2500) AS n, \
              LATERAL (SELECT timestamptz '2026-01-01T00:00:00Z' + n * interval '1 minute') AS x(t)",
    )
    .await;
    let agent = app.token(Role::Agent);
    let name = |n: usize| format!("Bulk {n:04}");
    let body = csv(&app, "/v1/exports/customers", &agent).await;
    let rows: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(
        rows.len(),
        1 + 2500 + 1,
        "header, rows, and after the last CRLF nothing"
    );
    assert_eq!(rows.last(), Some(&""));
    let names: Vec<String> = rows[1..=2500]
        .iter()
        .map(|r| r.split(',').nth(2).unwrap().to_owned())
        .collect();
    let newest_first: Vec<String> = (1..=2500).rev().map(name).collect();
    assert_eq!(names, newest_first);

    let lines = ndjson(&app, "/v1/exports/customers?sort=name", &agent).await;
    let names: Vec<String> = lines.iter().map(|l| text(l, "name").to_owned()).collect();
    let by_name: Vec<String> = (1..=2500).map(name).collect();
    assert_eq!(names, by_name);
    let ids: std::collections::HashSet<&str> = lines.iter().map(|l| text(l, "id")).collect();
    assert_eq!(ids.len(), 2500, "no row twice");

    // A filter across batches: the first 2000 minutes.
    let lines = ndjson(
        &app,
        "/v1/exports/customers?sort=created_at&created_before=2026-01-02T09:21:00Z",
        &agent,
    )
    .await;
    assert_eq!(lines.len(), 2000);
    assert_eq!(text(&lines[1999], "name"), "Bulk 2000");
}

#[actix_web::test]
async fn a_failure_mid_stream_cuts_the_download_short() {
    let app = TestApp::spawn().await;
    // Two batches and a bit, each batch some 20 MB: more than the sockets between server and
    // client hold, so the server cannot read the second batch before the client reads on.
    app.sql(
        "INSERT INTO customers (id, kind, name, attributes) \
         SELECT gen_random_uuid(), 'individual', 'Bulk ' || n, \
                jsonb_build_object('blob', repeat('x', 20000)) \
         FROM generate_series(1, 2100) AS n",
    )
    .await;
    let mut res = app
        .get("/v1/exports/customers?sort=name")
        .bearer_auth(app.token(Role::Agent))
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut body = res.chunk().await.unwrap().unwrap().to_vec();
    // The next batch's query fails.
    app.sql("ALTER TABLE customers RENAME TO customers_gone")
        .await;
    let failed = loop {
        match res.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(failed, "the body must not end as if complete");
    // What arrived is the first batch, whole.
    let body = String::from_utf8(body).unwrap();
    assert_eq!(body.lines().count(), 1000);
    assert!(body.ends_with('\n'));
    assert!(
        body.lines()
            .all(|l| serde_json::from_str::<Value>(l).is_ok())
    );
}

#[actix_web::test]
async fn exports_refuse_what_the_list_refuses_and_paging() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    for path in [
        "/v1/exports/customers",
        "/v1/exports/interactions",
        "/v1/exports/purchases",
        "/v1/exports/survey-responses",
    ] {
        app.expect_bad_queries(
            path,
            &viewer,
            &[
                ("colour=red", "colour"),
                ("limit=10", "limit"),
                ("cursor=abc", "cursor"),
                ("limit=ten", "limit"),
            ],
        )
        .await;
        // Without a token: 401; in a format no export is written in: 406.
        let res = app.get(path).send().await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let res = app
            .get(path)
            .bearer_auth(&viewer)
            .header("Accept", "application/xml")
            .send()
            .await
            .unwrap();
        let p = expect_problem(res, StatusCode::NOT_ACCEPTABLE, "not_acceptable").await;
        assert!(p["detail"].as_str().unwrap().contains("text/csv"));
        // No Accept, or any: CSV.
        for accept in [None, Some("*/*")] {
            let (content_type, _) = download(&app, path, &viewer, accept).await;
            assert_eq!(content_type, "text/csv; charset=utf-8");
        }
    }
    // The list's own checks, by the list's own code.
    app.expect_bad_queries(
        "/v1/exports/customers",
        &viewer,
        &[
            ("lifecycle_stage=nope", "lifecycle_stage"),
            ("sort=relevance", "sort"),
            ("attributes.b@d=1", "attributes.b@d"),
        ],
    )
    .await;
    app.expect_bad_queries(
        "/v1/exports/interactions",
        &viewer,
        &[("kind=nope", "kind"), ("status=open,nope", "status")],
    )
    .await;
    app.expect_bad_queries(
        "/v1/exports/purchases",
        &viewer,
        &[("currency=euro", "currency")],
    )
    .await;
    app.expect_bad_queries(
        "/v1/exports/survey-responses",
        &viewer,
        &[
            ("nps_max=11", "nps_max"),
            ("csat_min=4&csat_max=2", "csat_max"),
        ],
    )
    .await;
    // Deleted customers only for who may see them.
    let res = app
        .get("/v1/exports/customers?deleted=include")
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[actix_web::test]
async fn each_export_needs_its_resource_scope() {
    let app = TestApp::spawn().await;
    let token = app.client_token("Till", &["purchases:read"]).await;
    for path in [
        "/v1/exports/customers",
        "/v1/exports/interactions",
        "/v1/exports/survey-responses",
    ] {
        let res = app.get(path).bearer_auth(&token).send().await.unwrap();
        let p = expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        assert!(p["detail"].as_str().unwrap().contains(":read"), "{p}");
    }
    let (_, body) = download(&app, "/v1/exports/purchases", &token, None).await;
    assert_eq!(body, header(rapport::purchases::json::COLUMNS));
}
