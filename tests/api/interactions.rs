//! The customer log: interactions, the complaint workflow and statistics, follow-ups and the
//! timeline.

use std::time::Duration;

use chrono::{DateTime, Duration as Span, SecondsFormat, Utc};
use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

fn ago(hours: i64) -> String {
    (Utc::now() - Span::hours(hours)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn at(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn customer(app: &TestApp) -> String {
    let c = create_customer(app, json!({"name": "Grace Hopper"})).await;
    c["id"].as_str().unwrap().to_owned()
}

async fn record(app: &TestApp, customer: &str, token: &str, body: Value) -> Value {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/interactions"),
            token,
            &body,
        )
        .await;
    expect_json(res, StatusCode::CREATED).await
}

async fn step(app: &TestApp, id: &Value, body: Value) -> reqwest::Response {
    app.send(
        Method::POST,
        &format!("/v1/interactions/{}/status", id.as_str().unwrap()),
        &app.token(Role::Agent),
        &body,
    )
    .await
}

#[actix_web::test]
async fn an_interaction_is_recorded_read_changed_and_deleted() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (agent_id, agent) = app.user(Role::Agent).await;
    let created = record(
        &app,
        &c,
        &agent,
        json!({"channel": "phone", "direction": "inbound", "kind": "inquiry",
               "subject": " Opening hours ", "notes": "Asked about Sunday opening.",
               "occurred_at": ago(1), "duration_seconds": 120, "outcome": "answered"}),
    )
    .await;
    assert_eq!(created["customer_id"], c.as_str());
    assert_eq!(created["subject"], "Opening hours");
    assert_eq!(
        created["staff_id"],
        agent_id.to_string(),
        "the recording user"
    );
    assert_eq!(created["status"], Value::Null);
    assert_eq!(created["follow_up_state"], Value::Null);
    assert_eq!(created["version"], 1);
    let id = created["id"].as_str().unwrap();
    let got = app
        .get_ok(&format!("/v1/interactions/{id}"), &app.token(Role::Viewer))
        .await;
    assert_eq!(got, created);

    // Merge patch under If-Match; a stale version is 412.
    let res = app
        .patch(&format!("/v1/interactions/{id}"))
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .json(&json!({"outcome": "answered; will visit", "notes": null}))
        .send()
        .await
        .unwrap();
    let updated = expect_json(res, StatusCode::OK).await;
    assert_eq!(updated["outcome"], "answered; will visit");
    assert_eq!(updated["notes"], Value::Null);
    assert_eq!(updated["subject"], "Opening hours");
    assert_eq!(updated["version"], 2);
    let res = app
        .patch(&format!("/v1/interactions/{id}"))
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .json(&json!({"outcome": "lost"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    // The kind cannot change.
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/interactions/{id}"),
            &agent,
            &json!({"kind": "complaint"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["kind"]);

    // Agents cannot delete; managers can, and restore.
    let res = app
        .request(Method::DELETE, &format!("/v1/interactions/{id}"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let manager = app.token(Role::Manager);
    let res = app
        .request(Method::DELETE, &format!("/v1/interactions/{id}"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .get(&format!("/v1/interactions/{id}"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let list = app
        .get_ok(&format!("/v1/customers/{c}/interactions"), &agent)
        .await;
    assert!(list["data"].as_array().unwrap().is_empty());
    let res = app
        .post(&format!("/v1/interactions/{id}/restore"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    let restored = expect_json(res, StatusCode::OK).await;
    assert_eq!(restored["deleted_at"], Value::Null);

    let audit = app
        .get_ok(
            &format!("/v1/audit?entity_type=interaction&entity_id={id}"),
            &app.token(Role::Admin),
        )
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "interaction.restored",
            "interaction.deleted",
            "interaction.updated",
            "interaction.created"
        ]
    );
}

#[actix_web::test]
async fn bad_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let base =
        json!({"channel": "phone", "direction": "inbound", "kind": "note", "occurred_at": ago(1)});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let future = at(Utc::now() + Span::hours(2));
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["channel", "direction", "kind"]),
        (with(json!({"channel": "pigeon"})), vec!["channel"]),
        (with(json!({"channel": 7})), vec!["channel"]),
        (with(json!({"direction": "sideways"})), vec!["direction"]),
        (with(json!({"kind": "gossip"})), vec!["kind"]),
        (with(json!({"kind": null})), vec!["kind"]),
        (with(json!({"subject": "s".repeat(201)})), vec!["subject"]),
        (with(json!({"subject": ""})), vec!["subject"]),
        (with(json!({"notes": "n".repeat(20_001)})), vec!["notes"]),
        (with(json!({"occurred_at": future})), vec!["occurred_at"]),
        (
            with(json!({"occurred_at": "yesterday"})),
            vec!["occurred_at"],
        ),
        (with(json!({"occurred_at": null})), vec!["occurred_at"]),
        (
            with(json!({"duration_seconds": -1})),
            vec!["duration_seconds"],
        ),
        (
            with(json!({"duration_seconds": 86_401})),
            vec!["duration_seconds"],
        ),
        (
            with(json!({"duration_seconds": "long"})),
            vec!["duration_seconds"],
        ),
        (with(json!({"staff_id": "nobody"})), vec!["staff_id"]),
        (
            with(json!({"staff_id": "0193b0a6-0000-7000-8000-000000000001"})),
            vec!["staff_id"],
        ),
        (
            with(json!({"assignee_id": "0193b0a6-0000-7000-8000-000000000001"})),
            vec!["assignee_id"],
        ),
        (with(json!({"severity": "high"})), vec!["severity"]),
        (with(json!({"resolution": "done"})), vec!["resolution"]),
        (with(json!({"kind": "complaint"})), vec!["severity"]),
        (
            with(json!({"kind": "complaint", "severity": "dire"})),
            vec!["severity"],
        ),
        (
            with(
                json!({"kind": "complaint", "severity": "low", "occurred_at": null, "due_at": ago(-5)}),
            ),
            vec!["occurred_at"],
        ),
        (with(json!({"status": "open"})), vec!["status"]),
        (with(json!({"customer_id": c})), vec!["customer_id"]),
    ];
    for (body, expected) in cases {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/customers/{c}/interactions"),
                &agent,
                &body,
            )
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let path = format!("/v1/customers/{c}/interactions");
    // Malformed JSON, not JSON, too big.
    let res = app
        .post(&path)
        .bearer_auth(&agent)
        .header("Content-Type", "application/json")
        .body("{\"channel\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app
        .post(&path)
        .bearer_auth(&agent)
        .header("Content-Type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = app
        .send(
            Method::POST,
            &path,
            &agent,
            &with(json!({"notes": "n".repeat(70 * 1024)})),
        )
        .await;
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // No token, a wrong token, a viewer's rights, an unknown or deleted customer.
    let res = app.post(&path).json(&base).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post(&path)
        .bearer_auth("not.a.token")
        .json(&base)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .send(Method::POST, &path, &app.token(Role::Viewer), &base)
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .send(
            Method::POST,
            "/v1/customers/0193b0a6-0000-7000-8000-000000000009/interactions",
            &agent,
            &base,
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{c}"))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.send(Method::POST, &path, &agent, &base).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // Bad list parameters.
    app.expect_bad_queries(
        "/v1/interactions",
        &agent,
        &[
            ("channel=pigeon", "channel"),
            ("kind=note,gossip", "kind"),
            ("sort=subject", "sort"),
            ("occurred_after=yesterday", "occurred_after"),
            ("limit=0", "limit"),
            ("cursor=nonsense", "cursor"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    assert_eq!(app.count("interactions").await, 0);
    assert_eq!(app.count("complaint_status_changes").await, 0);
}

#[actix_web::test]
async fn the_complaint_workflow_allows_its_steps_and_names_them_otherwise() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let complaint = record(
        &app,
        &c,
        &agent,
        json!({"channel": "email", "direction": "inbound", "kind": "complaint",
               "severity": "high", "subject": "Vase broken", "occurred_at": ago(10)}),
    )
    .await;
    let id = &complaint["id"];
    assert_eq!(complaint["status"], "open");
    assert_eq!(
        complaint["next_statuses"],
        json!(["in_progress", "resolved"])
    );
    assert!(complaint["age_hours"].as_f64().unwrap() >= 10.0);
    assert_eq!(complaint["reopen_count"], 0);

    // Illegal: open -> closed, naming the allowed steps.
    let p = expect_problem(
        step(&app, id, json!({"status": "closed"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("in_progress, resolved"),
        "{p}"
    );
    assert_eq!(fields(&p), ["status"]);
    // Bad steps: unknown status, time before the opening, resolving without a resolution.
    let p = expect_problem(
        step(&app, id, json!({"status": "done"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&p), ["status"]);
    let p = expect_problem(
        step(&app, id, json!({"status": "in_progress", "at": ago(11)})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&p), ["at"]);
    let p = expect_problem(
        step(&app, id, json!({"status": "resolved"})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(fields(&p), ["resolution"]);

    // open -> in_progress -> resolved -> open (reopened) -> resolved -> closed -> open.
    let s = expect_json(
        step(&app, id, json!({"status": "in_progress", "at": ago(9)})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(s["status"], "in_progress");
    assert_eq!(s["next_statuses"], json!(["resolved"]));
    let p = expect_problem(
        step(&app, id, json!({"status": "closed"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(fields(&p), ["status"]);
    let p = expect_problem(
        step(&app, id, json!({"status": "open"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(fields(&p), ["status"]);
    let s = expect_json(
        step(
            &app,
            id,
            json!({"status": "resolved", "resolution": "Sent a new vase", "at": ago(6)}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(s["resolution"], "Sent a new vase");
    assert_eq!(s["resolution_hours"], 4.0);
    assert_eq!(s["age_hours"], Value::Null);
    assert_eq!(s["next_statuses"], json!(["closed", "open"]));
    let s = expect_json(
        step(
            &app,
            id,
            json!({"status": "open", "note": "new vase broken too", "at": ago(5)}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(s["reopen_count"], 1);
    assert_eq!(s["resolved_at"], Value::Null);
    assert_eq!(s["resolution_hours"], Value::Null);
    // The earlier resolution text stands unless replaced.
    let s = expect_json(
        step(&app, id, json!({"status": "resolved", "at": ago(2)})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        s["resolution_hours"], 8.0,
        "from the opening to the last resolution"
    );
    let s = expect_json(
        step(&app, id, json!({"status": "closed"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(s["next_statuses"], json!(["open"]));
    let p = expect_problem(
        step(&app, id, json!({"status": "resolved", "resolution": "x"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(fields(&p), ["status"]);
    let s = expect_json(
        step(&app, id, json!({"status": "open"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(s["reopen_count"], 2);
    assert_eq!(s["closed_at"], Value::Null);

    // A stale If-Match is 412; a non-complaint has no workflow.
    let res = app
        .post(&format!("/v1/interactions/{}/status", id.as_str().unwrap()))
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .json(&json!({"status": "in_progress"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let note = record(
        &app,
        &c,
        &agent,
        json!({"channel": "web", "direction": "inbound", "kind": "note", "occurred_at": ago(1)}),
    )
    .await;
    expect_problem(
        step(&app, &note["id"], json!({"status": "in_progress"})).await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;

    let history = app
        .get_ok(
            &format!("/v1/interactions/{}/status-history", id.as_str().unwrap()),
            &agent,
        )
        .await;
    let steps: Vec<(Value, Value)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["from"].clone(), h["to"].clone()))
        .collect();
    assert_eq!(
        steps,
        [
            (Value::Null, json!("open")),
            (json!("open"), json!("in_progress")),
            (json!("in_progress"), json!("resolved")),
            (json!("resolved"), json!("open")),
            (json!("open"), json!("resolved")),
            (json!("resolved"), json!("closed")),
            (json!("closed"), json!("open")),
        ]
    );
    assert_eq!(history["data"][3]["note"], "new vase broken too");
    // PATCH cannot move the opening of a complaint.
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/interactions/{}", id.as_str().unwrap()),
            &agent,
            &json!({"occurred_at": ago(3)}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["occurred_at"]);
}

#[actix_web::test]
async fn complaint_statistics_are_exact_on_a_known_data_set() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let (ann, _) = app.user(Role::Agent).await;
    let (bob, _) = app.user(Role::Agent).await;
    let base = Utc::now() - Span::days(20);
    // (severity, assignee, hours to resolve)
    let data = [
        ("high", ann, 1),
        ("high", ann, 2),
        ("high", bob, 3),
        ("high", bob, 4),
        ("low", ann, 10),
        ("low", bob, 30),
    ];
    for (i, (severity, assignee, hours)) in data.iter().enumerate() {
        let opened = base + Span::hours(i as i64 * 48);
        let created = record(
            &app,
            &c,
            &agent,
            json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
                   "severity": severity, "assignee_id": assignee, "occurred_at": at(opened)}),
        )
        .await;
        let done = opened + Span::hours(*hours);
        expect_json(
            step(
                &app,
                &created["id"],
                json!({"status": "resolved", "resolution": "fixed", "at": at(done)}),
            )
            .await,
            StatusCode::OK,
        )
        .await;
    }
    // Outside the period, and still open: not in the times.
    let old = record(
        &app,
        &c,
        &agent,
        json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
        "severity": "critical", "occurred_at": at(base - Span::days(60))}),
    )
    .await;
    expect_json(
        step(
            &app,
            &old["id"],
            json!({"status": "resolved", "resolution": "ok", "at": at(base - Span::days(59))}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    record(
        &app,
        &c,
        &agent,
        json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
        "severity": "critical", "occurred_at": ago(30)}),
    )
    .await;
    record(
        &app,
        &c,
        &agent,
        json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
        "severity": "medium", "occurred_at": ago(5)}),
    )
    .await;

    let from = at(base - Span::days(1));
    let stats = app
        .get_ok(&format!("/v1/complaints/stats?from={from}"), &agent)
        .await;
    // Hours 1, 2, 3, 4, 10, 30: median 3.5; p90 at rank 4.5 of 0..5: 10 + 0.5 * 20 = 20.
    assert_eq!(
        stats["overall"],
        json!({"n": 6, "median_hours": 3.5, "p90_hours": 20.0, "mean_hours": 8.33})
    );
    assert_eq!(
        stats["by_severity"],
        json!([
            {"severity": "high", "n": 4, "median_hours": 2.5, "p90_hours": 3.7, "mean_hours": 2.5},
            {"severity": "low", "n": 2, "median_hours": 20.0, "p90_hours": 28.0, "mean_hours": 20.0},
        ])
    );
    let by_assignee = stats["by_assignee"].as_array().unwrap();
    let of = |id: uuid::Uuid| {
        by_assignee
            .iter()
            .find(|r| r["assignee_id"] == id.to_string())
            .cloned()
            .unwrap()
    };
    // Ann: 1, 2, 10; Bob: 3, 4, 30.
    assert_eq!(
        of(ann),
        json!({"assignee_id": ann, "n": 3, "median_hours": 2.0, "p90_hours": 8.4, "mean_hours": 4.33})
    );
    assert_eq!(
        of(bob),
        json!({"assignee_id": bob, "n": 3, "median_hours": 4.0, "p90_hours": 24.8, "mean_hours": 12.33})
    );
    assert_eq!(stats["open"][0]["severity"], "critical");
    assert_eq!(stats["open"][0]["n"], 1);
    assert_eq!(stats["open"][1]["severity"], "medium");
    // An empty period has no times.
    let empty = app
        .get_ok(
            "/v1/complaints/stats?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
            &agent,
        )
        .await;
    assert_eq!(
        empty["overall"],
        json!({"n": 0, "median_hours": null, "p90_hours": null, "mean_hours": null})
    );
    let res = app
        .get("/v1/complaints/stats?from=2020-02-01T00:00:00Z&to=2020-01-01T00:00:00Z")
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(fields(&p), ["from"]);

    // The open list: oldest first, or most severe first; paged.
    let open = app.get_ok("/v1/complaints", &agent).await;
    let severities: Vec<&str> = open["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["critical", "medium"]);
    let first = app
        .get_ok("/v1/complaints?sort=severity&limit=1", &agent)
        .await;
    assert_eq!(first["data"][0]["severity"], "critical");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(
            &format!("/v1/complaints?sort=severity&limit=1&cursor={cursor}"),
            &agent,
        )
        .await;
    assert_eq!(second["data"][0]["severity"], "medium");
    assert_eq!(second["next_cursor"], Value::Null);
    let resolved = app
        .get_ok("/v1/complaints?status=resolved&severity=low", &agent)
        .await;
    assert_eq!(resolved["data"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn follow_ups_move_from_due_to_overdue_to_done() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (me, my_token) = app.user(Role::Agent).await;
    let (other, _) = app.user(Role::Agent).await;
    let soon = Utc::now() + Span::seconds(2);
    let follow_up = record(
        &app,
        &c,
        &my_token,
        json!({"channel": "phone", "direction": "outbound", "kind": "callback",
               "subject": "Call back about the vase", "due_at": at(soon), "assignee_id": me}),
    )
    .await;
    assert_eq!(follow_up["follow_up_state"], "due");
    assert_eq!(follow_up["occurred_at"], Value::Null);
    record(
        &app,
        &c,
        &my_token,
        json!({"channel": "phone", "direction": "outbound", "kind": "callback",
        "due_at": ago(-48), "assignee_id": other}),
    )
    .await;
    let ids = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let id = follow_up["id"].as_str().unwrap().to_owned();
    let due = app
        .get_ok("/v1/follow-ups?assignee=me&state=due", &my_token)
        .await;
    assert_eq!(ids(&due), [id.as_str()]);
    let overdue = app
        .get_ok("/v1/follow-ups?assignee=me&state=overdue", &my_token)
        .await;
    assert!(ids(&overdue).is_empty());
    let everyone = app.get_ok("/v1/follow-ups", &my_token).await;
    assert_eq!(everyone["data"].as_array().unwrap().len(), 2);

    actix_web::rt::time::sleep(Duration::from_millis(2500)).await;
    let overdue = app
        .get_ok("/v1/follow-ups?assignee=me&state=overdue", &my_token)
        .await;
    assert_eq!(ids(&overdue), [id.as_str()]);
    assert_eq!(overdue["data"][0]["follow_up_state"], "overdue");
    assert!(
        ids(&app
            .get_ok("/v1/follow-ups?assignee=me&state=due", &my_token)
            .await)
        .is_empty()
    );

    let res = app
        .send(
            Method::POST,
            &format!("/v1/interactions/{id}/complete"),
            &my_token,
            &json!({"outcome": "customer happy", "duration_seconds": 60}),
        )
        .await;
    let done = expect_json(res, StatusCode::OK).await;
    assert_eq!(done["follow_up_state"], "done");
    assert_eq!(done["outcome"], "customer happy");
    assert!(done["occurred_at"].is_string());
    let list = app
        .get_ok("/v1/follow-ups?assignee=me&state=done", &my_token)
        .await;
    assert_eq!(ids(&list), [id.as_str()]);
    assert!(ids(&app.get_ok("/v1/follow-ups?assignee=me", &my_token).await).is_empty());
    // Completing twice, or completing what is not a follow-up, is 409.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/interactions/{id}/complete"),
            &my_token,
            &json!({}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let note = record(
        &app,
        &c,
        &my_token,
        json!({"channel": "web", "direction": "inbound", "kind": "note", "occurred_at": ago(1)}),
    )
    .await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/interactions/{}/complete", note["id"].as_str().unwrap()),
            &my_token,
            &json!({}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    // `me` needs a user.
    let res = app
        .get("/v1/follow-ups?assignee=me")
        .bearer_auth(app.token(Role::Agent))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(fields(&p), ["assignee"]);
    let res = app
        .get("/v1/follow-ups?state=later")
        .bearer_auth(&my_token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[actix_web::test]
async fn lists_filter_search_and_page() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let other = customer(&app).await;
    let (staff, token) = app.user(Role::Agent).await;
    for (i, (channel, kind, subject)) in [
        ("phone", "inquiry", "Opening hours on Sunday"),
        ("email", "feedback", "Lovely service, thank you"),
        ("email", "inquiry", "Parcel damaged in transit"),
        ("visit", "meeting", "Annual review"),
        ("chat", "service", "Password reset"),
    ]
    .iter()
    .enumerate()
    {
        record(
            &app,
            &c,
            &token,
            json!({"channel": channel, "direction": "inbound", "kind": kind,
            "subject": subject, "occurred_at": ago(10 - i as i64)}),
        )
        .await;
    }
    record(
        &app,
        &other,
        &app.token(Role::Agent),
        json!({"channel": "phone", "direction": "outbound",
        "kind": "promotion", "subject": "Winter sale", "occurred_at": ago(20)}),
    )
    .await;
    let subjects = |page: &Value| -> Vec<String> {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["subject"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app
        .get_ok(&format!("/v1/customers/{c}/interactions"), &token)
        .await;
    assert_eq!(subjects(&all)[0], "Password reset", "newest first");
    assert_eq!(subjects(&all).len(), 5);
    let asc = app
        .get_ok(
            &format!("/v1/customers/{c}/interactions?sort=occurred_at"),
            &token,
        )
        .await;
    assert_eq!(subjects(&asc)[0], "Opening hours on Sunday");
    let emails = app
        .get_ok("/v1/interactions?channel=email,chat", &token)
        .await;
    assert_eq!(
        subjects(&emails),
        [
            "Password reset",
            "Parcel damaged in transit",
            "Lovely service, thank you"
        ]
    );
    let inquiries = app
        .get_ok("/v1/interactions?kind=inquiry&channel=email", &token)
        .await;
    assert_eq!(subjects(&inquiries), ["Parcel damaged in transit"]);
    let outbound = app
        .get_ok("/v1/interactions?direction=outbound", &token)
        .await;
    assert_eq!(subjects(&outbound), ["Winter sale"]);
    let mine = app
        .get_ok(&format!("/v1/interactions?staff_id={staff}"), &token)
        .await;
    assert_eq!(subjects(&mine).len(), 5);
    let found = app
        .get_ok("/v1/interactions?q=DAMAGED+parcel", &token)
        .await;
    assert_eq!(subjects(&found), ["Parcel damaged in transit"]);
    let phrase = app
        .get_ok("/v1/interactions?q=%22thank+you%22", &token)
        .await;
    assert_eq!(subjects(&phrase), ["Lovely service, thank you"]);
    let window = app
        .get_ok(
            &format!(
                "/v1/interactions?occurred_after={}&occurred_before={}",
                // Around the items 9 and 8 hours old, whatever time has passed meanwhile.
                at(Utc::now() - Span::minutes(570)),
                at(Utc::now() - Span::minutes(450))
            ),
            &token,
        )
        .await;
    assert_eq!(
        subjects(&window),
        ["Parcel damaged in transit", "Lovely service, thank you"]
    );
    // Pages of 2 cover everything once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/interactions?limit=2&cursor={c}"),
            None => "/v1/interactions?limit=2".to_owned(),
        };
        let page = app.get_ok(&path, &token).await;
        seen.extend(subjects(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen.last().unwrap(), "Winter sale");
}

#[actix_web::test]
async fn the_timeline_merges_types_in_time_order_across_pages() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    // Lifecycle: created (prospect) now; interactions in the past and one due in future.
    for hours in [30, 20, 10] {
        record(
            &app,
            &c,
            &agent,
            json!({"channel": "phone", "direction": "inbound", "kind": "note",
            "subject": format!("{hours}h ago"), "occurred_at": ago(hours)}),
        )
        .await;
    }
    record(
        &app,
        &c,
        &agent,
        json!({"channel": "phone", "direction": "outbound", "kind": "callback",
        "subject": "due tomorrow", "due_at": ago(-24)}),
    )
    .await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{c}"),
            &agent,
            &json!({"lifecycle_stage": "acquaintance", "lifecycle_reason": "first purchase"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let viewer = app.token(Role::Viewer);
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c2) => format!("/v1/customers/{c}/timeline?limit=2&cursor={c2}"),
            None => format!("/v1/customers/{c}/timeline?limit=2"),
        };
        let page = app.get_ok(&path, &viewer).await;
        pages += 1;
        items.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c2) => cursor = Some(c2.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let described: Vec<String> = items
        .iter()
        .map(|i| match i["type"].as_str().unwrap() {
            "interaction" => i["interaction"]["subject"].as_str().unwrap().to_owned(),
            "lifecycle_change" => {
                format!("stage {}", i["lifecycle_change"]["to"].as_str().unwrap())
            }
            other => panic!("unknown type {other}"),
        })
        .collect();
    assert_eq!(
        described,
        [
            "due tomorrow",
            "stage acquaintance",
            "stage prospect",
            "10h ago",
            "20h ago",
            "30h ago"
        ]
    );
    let times: Vec<DateTime<Utc>> = items
        .iter()
        .map(|i| i["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    // One type only.
    let only = app
        .get_ok(
            &format!("/v1/customers/{c}/timeline?types=lifecycle_change"),
            &viewer,
        )
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 2);
    let res = app
        .get(&format!("/v1/customers/{c}/timeline?types=gossip"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(fields(&p), ["types"]);
    let res = app
        .get("/v1/customers/0193b0a6-0000-7000-8000-000000000009/timeline")
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn creation_is_idempotent_and_erasure_forgets_what_was_said() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let body = json!({"channel": "phone", "direction": "inbound", "kind": "complaint", "severity": "low",
        "notes": "My address is 1 Secret Lane", "occurred_at": ago(2)});
    let send = || {
        app.post(&format!("/v1/customers/{c}/interactions"))
            .bearer_auth(&agent)
            .header("Idempotency-Key", "call-42")
            .json(&body)
            .send()
    };
    let first = expect_json(send().await.unwrap(), StatusCode::CREATED).await;
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(again, StatusCode::CREATED).await, first);
    assert_eq!(app.count("interactions").await, 1);

    let export = app
        .get_ok(
            &format!("/v1/customers/{c}/export"),
            &app.token(Role::Admin),
        )
        .await;
    assert_eq!(
        export["interactions"][0]["notes"],
        "My address is 1 Secret Lane"
    );
    let res = app
        .post(&format!("/v1/customers/{c}/erase"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let after = app
        .get_ok(
            &format!("/v1/interactions/{}", first["id"].as_str().unwrap()),
            &agent,
        )
        .await;
    assert_eq!(after["notes"], Value::Null);
    assert_eq!(after["kind"], "complaint", "the facts stay");
    let audit = app
        .get_ok(
            &format!(
                "/v1/audit?entity_type=interaction&entity_id={}",
                first["id"].as_str().unwrap()
            ),
            &app.token(Role::Admin),
        )
        .await;
    assert!(!audit.to_string().contains("Secret Lane"), "{audit}");
    // No more interactions with an erased customer.
    let res = app
        .send(Method::POST, &format!("/v1/customers/{c}/interactions"), &agent,
              &json!({"channel": "phone", "direction": "inbound", "kind": "note", "occurred_at": ago(1)}))
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
}

#[actix_web::test]
async fn a_deleted_customers_interactions_leave_the_lists_and_come_back_with_it() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let other = customer(&app).await;
    let agent = app.token(Role::Agent);
    let manager = app.token(Role::Manager);
    let complaint = json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
        "severity": "high", "occurred_at": ago(3)});
    record(&app, &c, &agent, complaint.clone()).await;
    record(&app, &other, &agent, complaint).await;
    // Deleted on its own before the customer: stays deleted after the restore.
    let own = record(
        &app,
        &c,
        &agent,
        json!({"channel": "web", "direction": "inbound",
        "kind": "note", "occurred_at": ago(2)}),
    )
    .await;
    let res = app
        .request(
            Method::DELETE,
            &format!("/v1/interactions/{}", own["id"].as_str().unwrap()),
        )
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let count = |page: Value| page["data"].as_array().unwrap().len();
    assert_eq!(count(app.get_ok("/v1/complaints", &agent).await), 2);

    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{c}"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(count(app.get_ok("/v1/complaints", &agent).await), 1);
    assert_eq!(count(app.get_ok("/v1/interactions", &agent).await), 1);
    let stats = app.get_ok("/v1/complaints/stats", &agent).await;
    assert_eq!(stats["open"][0]["n"], 1);

    let res = app
        .post(&format!("/v1/customers/{c}/restore"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    assert_eq!(count(app.get_ok("/v1/complaints", &agent).await), 2);
    let listed = app
        .get_ok(&format!("/v1/customers/{c}/interactions"), &agent)
        .await;
    assert_eq!(count(listed), 1, "the one deleted on its own stays deleted");
}
