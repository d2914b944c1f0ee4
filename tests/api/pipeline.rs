//! The sales pipeline: stages and their management, opportunities with their history, lists,
//! and the forecast on a hand-built data set.

use rapport::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn customer(app: &TestApp) -> String {
    let c = create_customer(app, json!({"name": "Grace Hopper"})).await;
    c["id"].as_str().unwrap().to_owned()
}

/// Creates an opportunity (with the admin's service token unless `token` is given).
async fn create(app: &TestApp, body: Value) -> Value {
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &app.token(Role::Admin),
            &body,
        )
        .await;
    expect_json(res, StatusCode::CREATED).await
}

fn id(o: &Value) -> &str {
    o["id"].as_str().unwrap()
}

fn etag(o: &Value) -> String {
    format!("\"{}\"", o["version"])
}

/// PATCHes an opportunity at the version `o` was read at.
async fn change(app: &TestApp, token: &str, o: &Value, body: Value) -> Response {
    app.patch(&format!("/v1/opportunities/{}", id(o)))
        .bearer_auth(token)
        .header("If-Match", etag(o))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn stages(app: &TestApp) -> Vec<(String, i64, i64)> {
    let list = app
        .get_ok("/v1/pipeline/stages", &app.token(Role::Viewer))
        .await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["position"].as_i64().unwrap(),
                s["probability"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn expected(list: &[(&str, i64)]) -> Vec<(String, i64, i64)> {
    list.iter()
        .zip(1..)
        .map(|((k, p), i)| ((*k).to_owned(), i, *p))
        .collect()
}

const DEFAULTS: [(&str, i64); 6] = [
    ("lead", 5),
    ("contacted", 10),
    ("qualified", 20),
    ("needs_analysis", 30),
    ("proposal", 50),
    ("negotiation", 80),
];

#[actix_web::test]
async fn the_default_stages_come_in_order_with_their_probabilities() {
    let app = TestApp::spawn().await;
    assert_eq!(stages(&app).await, expected(&DEFAULTS));
    let viewer = app.token(Role::Viewer);
    let res = app
        .get("/v1/pipeline/stages/proposal")
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let stage = expect_json(res, StatusCode::OK).await;
    assert_eq!(stage["name"], "Proposal");
    assert_eq!(stage["probability"], 50);
    let res = app
        .get("/v1/pipeline/stages/nope")
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/v1/pipeline/stages").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn admins_manage_stages_and_positions_stay_consistent() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    // Inserted at position 3: the stages from there on move down one.
    let res = app
        .send(
            Method::POST,
            "/v1/pipeline/stages",
            &admin,
            &json!({"key": "demo", "name": " Demo ", "probability": 15, "position": 3}),
        )
        .await;
    assert_eq!(res.headers()["location"], "/v1/pipeline/stages/demo");
    assert_eq!(res.headers()["etag"], "\"1\"");
    let demo = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(demo["name"], "Demo");
    assert_eq!(demo["position"], 3);
    let mut order = vec![
        ("lead", 5),
        ("contacted", 10),
        ("demo", 15),
        ("qualified", 20),
        ("needs_analysis", 30),
        ("proposal", 50),
        ("negotiation", 80),
    ];
    assert_eq!(stages(&app).await, expected(&order));
    // Last by default.
    let res = app
        .send(
            Method::POST,
            "/v1/pipeline/stages",
            &admin,
            &json!({"key": "contract", "name": "Contract", "probability": 90}),
        )
        .await;
    assert_eq!(expect_json(res, StatusCode::CREATED).await["position"], 8);
    order.push(("contract", 90));
    assert_eq!(stages(&app).await, expected(&order));
    // A key in use is a conflict naming it.
    let res = app
        .send(
            Method::POST,
            "/v1/pipeline/stages",
            &admin,
            &json!({"key": "lead", "name": "Lead again", "probability": 1}),
        )
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["key"]);

    // Moved to the top, renamed and re-weighted in one patch, with If-Match.
    let res = app
        .patch("/v1/pipeline/stages/demo")
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"position": 1, "probability": 12, "name": "Demo call"}))
        .send()
        .await
        .unwrap();
    let moved = expect_json(res, StatusCode::OK).await;
    assert_eq!(moved["position"], 1);
    assert_eq!(moved["name"], "Demo call");
    assert_eq!(moved["version"], 2);
    order.remove(2);
    order.insert(0, ("demo", 12));
    assert_eq!(stages(&app).await, expected(&order));
    // A stale version is refused.
    let res = app
        .patch("/v1/pipeline/stages/demo")
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"probability": 13}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    // Moved to the end.
    let res = app
        .patch("/v1/pipeline/stages/demo")
        .bearer_auth(&admin)
        .json(&json!({"position": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, StatusCode::OK).await["position"], 8);
    order.remove(0);
    order.push(("demo", 12));
    assert_eq!(stages(&app).await, expected(&order));

    // A stage with an open opportunity cannot go; once it is moved on, it can.
    let owner = app.user(Role::Agent).await;
    let c = customer(&app).await;
    let o = create(
        &app,
        json!({"customer_id": c, "title": "Chairs", "amount": 1000, "currency": "EUR",
               "stage": "demo", "owner_id": owner.0, "expected_close_date": "2026-12-01"}),
    )
    .await;
    let res = app.delete("/v1/pipeline/stages/demo", &admin, None).await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("1 open opportunity"));
    let won = expect_json(
        change(&app, &owner.1, &o, json!({"status": "won"})).await,
        StatusCode::OK,
    )
    .await;
    // A won opportunity keeps naming it, and does not hold it back.
    let res = app
        .delete("/v1/pipeline/stages/demo", &admin, Some("\"2\""))
        .await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app
        .delete("/v1/pipeline/stages/demo", &admin, Some("\"3\""))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    order.pop();
    assert_eq!(stages(&app).await, expected(&order));
    let res = app
        .get("/v1/pipeline/stages/demo")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let kept = app
        .get_ok(&format!("/v1/opportunities/{}", id(&o)), &admin)
        .await;
    assert_eq!(kept["stage"], "demo");
    // Reopened, it needs a live stage.
    let res = change(&app, &owner.1, &won, json!({"status": "open"})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["stage"]);
    let res = change(
        &app,
        &owner.1,
        &won,
        json!({"status": "open", "stage": "contract"}),
    )
    .await;
    assert_eq!(expect_json(res, StatusCode::OK).await["stage"], "contract");
    // Nor can an opportunity move into a deleted stage.
    let reopened = app
        .get_ok(&format!("/v1/opportunities/{}", id(&o)), &admin)
        .await;
    let res = change(&app, &owner.1, &reopened, json!({"stage": "demo"})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["stage"]);
    // The key of a deleted stage can be used again: the stage comes back.
    let res = app
        .send(
            Method::POST,
            "/v1/pipeline/stages",
            &admin,
            &json!({"key": "demo", "name": "Demo", "probability": 25, "position": 1}),
        )
        .await;
    assert_eq!(expect_json(res, StatusCode::CREATED).await["position"], 1);
    order.insert(0, ("demo", 25));
    assert_eq!(stages(&app).await, expected(&order));

    // Only admins manage stages.
    for role in [Role::Manager, Role::Agent, Role::Viewer] {
        let token = app.token(role);
        let res = app
            .send(
                Method::POST,
                "/v1/pipeline/stages",
                &token,
                &json!({"key": "x", "name": "X", "probability": 1}),
            )
            .await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = app
            .send(
                Method::PATCH,
                "/v1/pipeline/stages/lead",
                &token,
                &json!({"probability": 1}),
            )
            .await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = app.delete("/v1/pipeline/stages/lead", &token, None).await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    assert_eq!(stages(&app).await, expected(&order));
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'pipeline_stage'")
            .await,
        6,
        "created twice, updated twice, deleted, created again"
    );
}

#[actix_web::test]
async fn bad_stage_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let base = json!({"key": "demo", "name": "Demo", "probability": 40});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["key"]),
        (json!({"key": "demo", "name": "Demo"}), vec!["probability"]),
        (with(json!({"probability": 101})), vec!["probability"]),
        (with(json!({"probability": -1})), vec!["probability"]),
        (with(json!({"probability": "50"})), vec!["probability"]),
        (with(json!({"probability": 12.5})), vec!["probability"]),
        (with(json!({"key": "Demo Stage"})), vec!["key"]),
        (with(json!({"key": "k".repeat(51)})), vec!["key"]),
        (with(json!({"name": " "})), vec!["name"]),
        (with(json!({"name": "n".repeat(101)})), vec!["name"]),
        (with(json!({"position": 0})), vec!["position"]),
        (with(json!({"position": 8})), vec!["position"]),
        (with(json!({"colour": "red"})), vec!["colour"]),
    ];
    for (body, expected) in cases {
        let res = app
            .send(Method::POST, "/v1/pipeline/stages", &admin, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let patches: Vec<(Value, Vec<&str>)> = vec![
        (json!({"probability": 101}), vec!["probability"]),
        (json!({"probability": null}), vec!["probability"]),
        (json!({"position": 7}), vec!["position"]),
        (json!({"position": 0}), vec!["position"]),
        (json!({"name": ""}), vec!["name"]),
        (json!({"key": "other"}), vec!["key"]),
    ];
    for (body, expected) in patches {
        let res = app
            .send(Method::PATCH, "/v1/pipeline/stages/lead", &admin, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let res = app
        .send(
            Method::PATCH,
            "/v1/pipeline/stages/nope",
            &admin,
            &json!({"probability": 1}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    app.expect_bad_envelopes(Method::POST, "/v1/pipeline/stages", &admin, &base)
        .await;
    let res = app
        .delete("/v1/pipeline/stages/lead", &admin, Some("nonsense"))
        .await;
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_header").await;
    assert_eq!(stages(&app).await, expected(&DEFAULTS));
    assert_eq!(app.count("pipeline_stages").await, 6);
    assert_eq!(app.count("audit_events").await, 0);
}

#[actix_web::test]
async fn an_opportunity_moves_through_the_pipeline_with_its_history() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (agent_id, agent) = app.user(Role::Agent).await;
    let (manager_id, _) = app.user(Role::Manager).await;
    // A staff user's opportunity is theirs by default, in the first stage.
    let send = || {
        app.post("/v1/opportunities")
            .bearer_auth(&agent)
            .header("Idempotency-Key", "crm-form-1")
            .json(
                &json!({"customer_id": c, "title": " 50 office chairs ", "amount": 1_250_000,
                          "currency": "EUR", "expected_close_date": "2026-12-15"}),
            )
            .send()
    };
    let res = send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let o = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(location, format!("/v1/opportunities/{}", id(&o)));
    assert_eq!(o["title"], "50 office chairs");
    assert_eq!(o["stage"], "lead");
    assert_eq!(o["status"], "open");
    assert_eq!(o["owner_id"], agent_id.to_string());
    assert_eq!(o["closed_at"], Value::Null);
    assert_eq!(o["close_reason"], Value::Null);
    let viewer = app.token(Role::Viewer);
    assert_eq!(app.get_ok(&location, &viewer).await, o);
    // A retry with the same Idempotency-Key answers the same, creating nothing.
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(again, StatusCode::CREATED).await, o);
    assert_eq!(app.count("opportunities").await, 1);

    // A stage move, another owner and amount at once.
    let res = change(
        &app,
        &agent,
        &o,
        json!({"stage": "proposal", "owner_id": manager_id, "amount": 1_300_000}),
    )
    .await;
    assert_eq!(res.headers()["etag"], "\"2\"");
    let moved = expect_json(res, StatusCode::OK).await;
    assert_eq!(moved["stage"], "proposal");
    assert_eq!(moved["owner_id"], manager_id.to_string());
    assert_eq!(moved["amount"], 1_300_000);
    // Based on the old version: refused, nothing lost.
    let res = change(&app, &agent, &o, json!({"title": "stale"})).await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    // A change that is not a move: no history entry.
    let renamed = expect_json(
        change(&app, &agent, &moved, json!({"title": "60 office chairs"})).await,
        StatusCode::OK,
    )
    .await;
    // The same values again: nothing changes, not even the version.
    let same = expect_json(
        change(&app, &agent, &renamed, json!({"title": "60 office chairs"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(same["version"], renamed["version"]);
    // Won: closed now, with an optional reason.
    let won = expect_json(
        change(
            &app,
            &agent,
            &renamed,
            json!({"status": "won", "close_reason": "fastest delivery"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(won["status"], "won");
    assert!(won["closed_at"].is_string());
    assert_eq!(won["close_reason"], "fastest delivery");
    // Reopened: closed_at and the reason go.
    let reopened = expect_json(
        change(&app, &agent, &won, json!({"status": "open"})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(reopened["closed_at"], Value::Null);
    assert_eq!(reopened["close_reason"], Value::Null);
    assert_eq!(reopened["stage"], "proposal");
    // Lost needs a reason.
    let res = change(&app, &agent, &reopened, json!({"status": "lost"})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["close_reason"]);
    let lost = expect_json(
        change(
            &app,
            &agent,
            &reopened,
            json!({"status": "lost", "close_reason": "a competitor was cheaper",
                   "closed_at": "2026-11-20T10:00:00Z"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(lost["closed_at"], "2026-11-20T10:00:00Z");
    // Its reason cannot be cleared while lost.
    let res = change(&app, &agent, &lost, json!({"close_reason": null})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["close_reason"]);

    let history = app.get_ok(&format!("{location}/history"), &viewer).await;
    let steps: Vec<(Value, Value, Value, Value, Value)> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["from_stage"].clone(),
                h["to_stage"].clone(),
                h["from_status"].clone(),
                h["to_status"].clone(),
                h["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (
                json!(null),
                json!("lead"),
                json!(null),
                json!("open"),
                json!(null)
            ),
            (
                json!("lead"),
                json!("proposal"),
                json!("open"),
                json!("open"),
                json!(null)
            ),
            (
                json!("proposal"),
                json!("proposal"),
                json!("open"),
                json!("won"),
                json!("fastest delivery")
            ),
            (
                json!("proposal"),
                json!("proposal"),
                json!("won"),
                json!("open"),
                json!(null)
            ),
            (
                json!("proposal"),
                json!("proposal"),
                json!("open"),
                json!("lost"),
                json!("a competitor was cheaper")
            ),
        ]
    );
    assert_eq!(history["data"][0]["actor_type"], "user");
    assert_eq!(history["data"][0]["actor_id"], agent_id.to_string());
    assert_eq!(app.count("opportunity_stage_changes").await, 5);
    // Every write is audited and announced.
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'opportunity'")
            .await,
        6
    );
    assert_eq!(
        app.count("events WHERE type = 'opportunity.updated'").await,
        5
    );
    assert_eq!(
        app.count("events WHERE type = 'opportunity.created'").await,
        1
    );

    // The customer's list shows it; a viewer cannot write; deletion takes it away.
    let list = app
        .get_ok(&format!("/v1/customers/{c}/opportunities"), &viewer)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let res = app.delete(&location, &viewer, None).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.delete(&location, &agent, Some("\"1\"")).await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app.delete(&location, &agent, Some(&etag(&lost))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    for path in [location.clone(), format!("{location}/history")] {
        let res = app.get(&path).bearer_auth(&viewer).send().await.unwrap();
        expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = app.delete(&location, &agent, None).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = change(&app, &agent, &lost, json!({"title": "x"})).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let list = app.get_ok("/v1/opportunities", &viewer).await;
    assert_eq!(list["data"], json!([]));
    assert_eq!(
        app.count("events WHERE type = 'opportunity.deleted'").await,
        1
    );
}

#[actix_web::test]
async fn owner_customer_and_stage_must_exist() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (owner, _) = app.user(Role::Agent).await;
    let admin = app.token(Role::Admin);
    let base = json!({"customer_id": c, "title": "Chairs", "amount": 100, "currency": "EUR",
                      "owner_id": owner, "expected_close_date": "2026-12-01"});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let nobody = Uuid::now_v7().to_string();
    let cases: Vec<(Value, &str)> = vec![
        (with(json!({"owner_id": nobody})), "owner_id"),
        (with(json!({"customer_id": nobody})), "customer_id"),
        (with(json!({"stage": "nowhere"})), "stage"),
    ];
    for (body, field) in cases {
        let res = app
            .send(Method::POST, "/v1/opportunities", &admin, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    // A service token has no user to own the opportunity by default.
    let mut no_owner = base.clone();
    no_owner.as_object_mut().unwrap().remove("owner_id");
    let res = app
        .send(Method::POST, "/v1/opportunities", &admin, &no_owner)
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["owner_id"]);
    // A deactivated owner cannot be given; a deleted customer is not live.
    let o = create(&app, base.clone()).await;
    let res = app
        .post(&format!("/v1/users/{owner}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let res = app
        .send(Method::POST, "/v1/opportunities", &admin, &base)
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["owner_id"]);
    // The opportunity it owns can still change otherwise.
    let res = change(&app, &admin, &o, json!({"stage": "qualified"})).await;
    assert_eq!(expect_json(res, StatusCode::OK).await["stage"], "qualified");
    let res = app
        .delete(
            &format!("/v1/customers/{c}"),
            &app.token(Role::Manager),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (other, _) = app.user(Role::Agent).await;
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &admin,
            &with(json!({"owner_id": other})),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["customer_id"]);
    assert_eq!(app.count("opportunities").await, 1);
    assert_eq!(app.count("opportunity_stage_changes").await, 2);
}

#[actix_web::test]
async fn lists_filter_sort_and_page() {
    let app = TestApp::spawn().await;
    let c1 = customer(&app).await;
    let c2 = customer(&app).await;
    let (a, _) = app.user(Role::Agent).await;
    let (b, _) = app.user(Role::Agent).await;
    let rows = [
        (&c1, a, "EUR", 500, "lead", "2026-12-05"),
        (&c1, a, "EUR", 300, "proposal", "2026-11-30"),
        (&c2, b, "USD", 900, "proposal", "2027-01-10"),
        (&c2, a, "EUR", 100, "negotiation", "2026-12-20"),
        (&c1, b, "EUR", 700, "lead", "2026-10-15"),
    ];
    let mut ids = Vec::new();
    for (i, (c, owner, currency, amount, stage, date)) in rows.iter().enumerate() {
        let o = create(
            &app,
            json!({"customer_id": c, "title": format!("deal {i}"), "amount": amount,
                   "currency": currency, "stage": stage, "owner_id": owner,
                   "expected_close_date": date}),
        )
        .await;
        ids.push(o["id"].as_str().unwrap().to_owned());
    }
    // The last one is won.
    let last = app
        .get_ok(
            &format!("/v1/opportunities/{}", ids[4]),
            &app.token(Role::Admin),
        )
        .await;
    expect_json(
        change(
            &app,
            &app.token(Role::Admin),
            &last,
            json!({"status": "won"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let viewer = app.token(Role::Viewer);
    let titles = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            String::new(),
            vec!["deal 4", "deal 1", "deal 0", "deal 3", "deal 2"],
        ),
        (
            "sort=-expected_close_date".to_owned(),
            vec!["deal 2", "deal 3", "deal 0", "deal 1", "deal 4"],
        ),
        (
            "sort=amount".to_owned(),
            vec!["deal 3", "deal 1", "deal 0", "deal 4", "deal 2"],
        ),
        (
            "sort=-amount".to_owned(),
            vec!["deal 2", "deal 4", "deal 0", "deal 1", "deal 3"],
        ),
        (
            "sort=created_at".to_owned(),
            vec!["deal 0", "deal 1", "deal 2", "deal 3", "deal 4"],
        ),
        (
            "sort=-created_at".to_owned(),
            vec!["deal 4", "deal 3", "deal 2", "deal 1", "deal 0"],
        ),
        (format!("customer_id={c2}"), vec!["deal 3", "deal 2"]),
        (format!("owner_id={b}"), vec!["deal 4", "deal 2"]),
        ("stage=lead".to_owned(), vec!["deal 4", "deal 0"]),
        (
            "stage=proposal,negotiation".to_owned(),
            vec!["deal 1", "deal 3", "deal 2"],
        ),
        (
            "status=open".to_owned(),
            vec!["deal 1", "deal 0", "deal 3", "deal 2"],
        ),
        ("status=won,lost".to_owned(), vec!["deal 4"]),
        ("currency=USD".to_owned(), vec!["deal 2"]),
        (
            "expected_close_after=2026-11-30&expected_close_before=2026-12-20".to_owned(),
            vec!["deal 1", "deal 0"],
        ),
        (
            format!("owner_id={a}&currency=EUR&status=open&sort=-amount"),
            vec!["deal 0", "deal 1", "deal 3"],
        ),
    ];
    for (query, expected) in cases {
        let list = app
            .get_ok(&format!("/v1/opportunities?{query}"), &viewer)
            .await;
        assert_eq!(titles(&list), expected, "{query}");
    }
    let list = app
        .get_ok(
            &format!("/v1/customers/{c1}/opportunities?sort=amount"),
            &viewer,
        )
        .await;
    assert_eq!(titles(&list), ["deal 1", "deal 0", "deal 4"]);
    // Every order pages through everything once, two at a time.
    for sort in [
        "expected_close_date",
        "-amount",
        "created_at",
        "-created_at",
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/opportunities?limit=2&sort={sort}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let page = app.get_ok(&path, &viewer).await;
            seen.extend(titles(&page));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let all = app
            .get_ok(&format!("/v1/opportunities?sort={sort}"), &viewer)
            .await;
        assert_eq!(seen, titles(&all), "{sort}");
    }
    let first = app
        .get_ok("/v1/opportunities?limit=2&sort=amount", &viewer)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    app.expect_bad_queries(
        "/v1/opportunities",
        &viewer,
        &[
            ("status=pending", "status"),
            ("stage=Not A Key", "stage"),
            ("currency=eur", "currency"),
            ("sort=title", "sort"),
            ("owner_id=me", "owner_id"),
            ("customer_id=42", "customer_id"),
            ("expected_close_after=soon", "expected_close_after"),
            (
                "expected_close_after=2026-12-01&expected_close_before=2026-11-01",
                "expected_close_before",
            ),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("cursor=nonsense", "cursor"),
            (&format!("cursor={cursor}&sort=-amount"), "cursor"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    app.expect_bad_queries(
        &format!("/v1/customers/{c1}/opportunities"),
        &viewer,
        &[(&format!("customer_id={c2}"), "customer_id")],
    )
    .await;
    let res = app
        .get(&format!("/v1/customers/{}/opportunities", Uuid::now_v7()))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get("/v1/opportunities").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn bad_opportunities_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (owner, agent) = app.user(Role::Agent).await;
    let base = json!({"customer_id": c, "title": "Chairs", "amount": 100, "currency": "EUR",
                      "owner_id": owner, "expected_close_date": "2026-12-01"});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["customer_id"]),
        (json!({"customer_id": c}), vec!["title"]),
        (with(json!({"amount": -1})), vec!["amount"]),
        (with(json!({"amount": 12.5})), vec!["amount"]),
        (with(json!({"amount": "100"})), vec!["amount"]),
        (
            with(json!({"amount": 10_000_000_000_001_i64})),
            vec!["amount"],
        ),
        (with(json!({"currency": "eur"})), vec!["currency"]),
        (with(json!({"title": " "})), vec!["title"]),
        (with(json!({"title": "t".repeat(201)})), vec!["title"]),
        (with(json!({"title": null})), vec!["title"]),
        (with(json!({"customer_id": "nobody"})), vec!["customer_id"]),
        (with(json!({"owner_id": 7})), vec!["owner_id"]),
        (
            with(json!({"expected_close_date": "2026-13-01"})),
            vec!["expected_close_date"],
        ),
        (
            with(json!({"expected_close_date": "3000-01-01"})),
            vec!["expected_close_date"],
        ),
        (with(json!({"stage": "Bad Key"})), vec!["stage"]),
        (with(json!({"status": "pending"})), vec!["status"]),
        (with(json!({"status": "lost"})), vec!["close_reason"]),
        (
            with(json!({"close_reason": "why not"})),
            vec!["close_reason"],
        ),
        (
            with(json!({"closed_at": "2026-11-01T00:00:00Z"})),
            vec!["closed_at"],
        ),
        (
            with(json!({"status": "won", "closed_at": "2999-01-01T00:00:00Z"})),
            vec!["closed_at"],
        ),
        (
            with(json!({"status": "lost", "close_reason": "r".repeat(501)})),
            vec!["close_reason"],
        ),
        (with(json!({"version": 3})), vec!["version"]),
        (
            with(json!({"title": "", "amount": -5, "currency": "EURO"})),
            vec!["title", "amount", "currency"],
        ),
    ];
    for (body, expected) in cases {
        let res = app
            .send(Method::POST, "/v1/opportunities", &agent, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    app.expect_bad_envelopes(Method::POST, "/v1/opportunities", &agent, &base)
        .await;
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &app.token(Role::Viewer),
            &base,
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Patches: one opportunity, refused changes leave it as it was.
    let o = create(&app, base.clone()).await;
    let patches: Vec<(Value, Vec<&str>)> = vec![
        (json!({"amount": -1}), vec!["amount"]),
        (json!({"amount": null}), vec!["amount"]),
        (json!({"title": ""}), vec!["title"]),
        (json!({"stage": null}), vec!["stage"]),
        (json!({"stage": "nowhere"}), vec!["stage"]),
        (json!({"owner_id": Uuid::now_v7()}), vec!["owner_id"]),
        (json!({"status": "lost"}), vec!["close_reason"]),
        (
            json!({"status": "lost", "close_reason": " "}),
            vec!["close_reason"],
        ),
        (json!({"close_reason": "early"}), vec!["close_reason"]),
        (json!({"status": null}), vec!["status"]),
        (json!({"customer_id": c}), vec!["customer_id"]),
        (
            json!({"expected_close_date": 20261201}),
            vec!["expected_close_date"],
        ),
    ];
    for (body, expected) in patches {
        let res = change(&app, &agent, &o, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let path = format!("/v1/opportunities/{}", id(&o));
    let res = app
        .patch(&path)
        .bearer_auth(&agent)
        .header("Content-Type", "application/merge-patch+json")
        .body("{\"stage\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app
        .send(
            Method::PATCH,
            &path,
            &app.token(Role::Viewer),
            &json!({"title": "x"}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/opportunities/{}", Uuid::now_v7()),
            &agent,
            &json!({"title": "x"}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .get("/v1/opportunities/not-an-id")
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    assert_eq!(app.get_ok(&path, &agent).await, o);
    assert_eq!(app.count("opportunities").await, 1);
    assert_eq!(app.count("opportunity_stage_changes").await, 1);
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'opportunity'")
            .await,
        1
    );
    assert_eq!(app.count("events WHERE type LIKE 'opportunity.%'").await, 1);
}

/// The figures of one group, in the order the forecast names them.
fn figures(v: &Value) -> [i64; 6] {
    [
        "forecast",
        "won_amount",
        "won_count",
        "weighted_open",
        "open_pipeline",
        "open_count",
    ]
    .map(|k| v[k].as_i64().unwrap_or_else(|| panic!("{k} in {v}")))
}

/// Each owner's figures in one currency's forecast, in its order.
fn owners(currency: &Value) -> Vec<(Value, [i64; 6])> {
    currency["by_owner"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["owner_id"].clone(), figures(o)))
        .collect()
}

/// An opportunity of the forecast's data set: owner, currency, amount, stage, expected close
/// date, status, closed at.
type Row<'a> = (
    Uuid,
    &'a str,
    i64,
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
);

#[actix_web::test]
async fn the_forecast_is_exact_on_a_known_data_set() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (a, _) = app.user(Role::Agent).await;
    let (b, _) = app.user(Role::Manager).await;
    // (owner, currency, amount, stage, expected close, status, closed at)
    let rows: [Row; 12] = [
        // Open in Q4: proposal 50 %, negotiation 80 %, lead 5 %.
        (a, "EUR", 100_001, "proposal", "2026-11-15", "open", None),
        (a, "EUR", 33_333, "negotiation", "2026-12-31", "open", None),
        (b, "EUR", 999, "lead", "2026-10-01", "open", None),
        // Won in Q4 (whatever the expected date), from the stage they were in.
        (
            b,
            "EUR",
            50_000,
            "negotiation",
            "2027-03-01",
            "won",
            Some("2026-10-15T12:00:00Z"),
        ),
        (
            a,
            "EUR",
            1_234,
            "proposal",
            "2026-09-01",
            "won",
            Some("2026-10-01T00:00:00Z"),
        ),
        // Outside: won before the quarter, lost, expected after or before it.
        (
            a,
            "EUR",
            7_777,
            "proposal",
            "2026-11-01",
            "won",
            Some("2026-09-30T23:59:59Z"),
        ),
        (
            a,
            "EUR",
            5_000,
            "qualified",
            "2026-11-01",
            "lost",
            Some("2026-11-02T00:00:00Z"),
        ),
        (b, "EUR", 100_000, "proposal", "2027-01-01", "open", None),
        (b, "EUR", 100_000, "proposal", "2026-09-30", "open", None),
        // Deleted below.
        (b, "EUR", 40_000, "negotiation", "2026-11-11", "open", None),
        // USD on its own, with halves: 1001 × 50 % = 500.5 and 1 × 50 % = 0.5.
        (b, "USD", 1_001, "proposal", "2026-11-20", "open", None),
        (a, "USD", 1, "proposal", "2026-11-20", "open", None),
    ];
    let mut created = Vec::new();
    for (owner, currency, amount, stage, date, status, closed_at) in rows {
        let mut body = json!({"customer_id": c, "title": "deal", "amount": amount,
                              "currency": currency, "stage": stage, "owner_id": owner,
                              "expected_close_date": date, "status": status});
        if let Some(t) = closed_at {
            body["closed_at"] = json!(t);
        }
        if status == "lost" {
            body["close_reason"] = json!("budget cut");
        }
        created.push(create(&app, body).await);
    }
    let path = format!("/v1/opportunities/{}", id(&created[9]));
    let res = app.delete(&path, &app.token(Role::Admin), None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let viewer = app.token(Role::Viewer);
    let f = app
        .get_ok("/v1/analytics/forecast?period=2026-Q4", &viewer)
        .await;
    assert_eq!(f["period"], "2026-Q4");
    assert_eq!(f["from"], "2026-10-01");
    assert_eq!(f["to"], "2026-12-31");
    let currencies = f["currencies"].as_array().unwrap();
    assert_eq!(currencies.len(), 2);
    let eur = &currencies[0];
    assert_eq!(eur["currency"], "EUR");
    // Won 50 000 + 1 234; open Σ amount × % = 5 000 050 + 2 666 640 + 4 995 = 7 671 685,
    // / 100 = 76 716.85 → 76 717.
    assert_eq!(figures(eur), [127_951, 51_234, 2, 76_717, 134_333, 3]);
    assert_eq!(
        owners(eur),
        [
            // 7 666 690 / 100 = 76 666.9 → 76 667.
            (json!(a), [77_901, 1_234, 1, 76_667, 133_334, 2]),
            // 4 995 / 100 = 49.95 → 50.
            (json!(b), [50_050, 50_000, 1, 50, 999, 1]),
        ]
    );
    let by_stage: Vec<(Value, Value, [i64; 6])> = eur["by_stage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].clone(), s["probability"].clone(), figures(s)))
        .collect();
    assert_eq!(
        by_stage,
        [
            (json!("lead"), json!(5), [50, 0, 0, 50, 999, 1]),
            // 5 000 050 / 100 = 50 000.5 → 50 001 (half away from zero).
            (
                json!("proposal"),
                json!(50),
                [51_235, 1_234, 1, 50_001, 100_001, 1]
            ),
            // 2 666 640 / 100 = 26 666.4 → 26 666.
            (
                json!("negotiation"),
                json!(80),
                [76_666, 50_000, 1, 26_666, 33_333, 1]
            ),
        ]
    );
    let usd = &currencies[1];
    assert_eq!(usd["currency"], "USD");
    // 50 050 / 100 = 500.5 → 501: each figure is rounded from its own exact sum, so the
    // owners' (501 and 1) add up to one more than the total.
    assert_eq!(figures(usd), [501, 0, 0, 501, 1_002, 2]);
    assert_eq!(
        owners(usd),
        [
            (json!(b), [501, 0, 0, 501, 1_001, 1]),
            (json!(a), [1, 0, 0, 1, 1, 1]),
        ]
    );
    assert_eq!(usd["by_stage"][0]["stage"], "proposal");
    assert_eq!(figures(&usd["by_stage"][0]), [501, 0, 0, 501, 1_002, 2]);
    // One owner's forecast is their line of the whole one; one currency, its entry.
    for (owner, line) in [(a, &eur["by_owner"][0]), (b, &eur["by_owner"][1])] {
        let mine = app
            .get_ok(
                &format!("/v1/analytics/forecast?period=2026-Q4&owner_id={owner}&currency=EUR"),
                &viewer,
            )
            .await;
        let entries = mine["currencies"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(figures(&entries[0]), figures(line));
        assert_eq!(entries[0]["by_owner"].as_array().unwrap().len(), 1);
        assert_eq!(entries[0]["by_owner"][0]["owner_id"], json!(owner));
    }
    let only_usd = app
        .get_ok(
            "/v1/analytics/forecast?period=2026-Q4&currency=USD",
            &viewer,
        )
        .await;
    assert_eq!(only_usd["currencies"], json!([usd]));

    // The same days given as from and to.
    let same = app
        .get_ok(
            "/v1/analytics/forecast?from=2026-10-01&to=2026-12-31",
            &viewer,
        )
        .await;
    assert_eq!(same["period"], Value::Null);
    assert_eq!(same["currencies"], f["currencies"]);
    // November alone: no wins; the proposal of the 15th and the USD pair.
    let nov = app
        .get_ok("/v1/analytics/forecast?period=2026-11", &viewer)
        .await;
    assert_eq!(
        figures(&nov["currencies"][0]),
        [50_001, 0, 0, 50_001, 100_001, 1]
    );
    assert_eq!(figures(&nov["currencies"][1]), [501, 0, 0, 501, 1_002, 2]);
    // The year adds the one won in September and the one expected on 30 September.
    let year = app
        .get_ok("/v1/analytics/forecast?period=2026", &viewer)
        .await;
    // Won 51 234 + 7 777; open adds 100 000 × 50 %: 12 671 685 / 100 → 126 717.
    assert_eq!(
        figures(&year["currencies"][0]),
        [185_728, 59_011, 3, 126_717, 234_333, 4]
    );
    // A stage's new probability weighs at once: lead 5 % → 10 %: 999 × 10 = 9 990.
    let res = app
        .send(
            Method::PATCH,
            "/v1/pipeline/stages/lead",
            &app.token(Role::Admin),
            &json!({"probability": 10}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let f = app
        .get_ok("/v1/analytics/forecast?period=2026-Q4", &viewer)
        .await;
    // 7 676 680 / 100 = 76 766.8 → 76 767.
    assert_eq!(
        figures(&f["currencies"][0]),
        [128_001, 51_234, 2, 76_767, 134_333, 3]
    );
    // An empty period has no currencies; the current quarter by default.
    let empty = app
        .get_ok("/v1/analytics/forecast?period=2031-Q1", &viewer)
        .await;
    assert_eq!(empty["currencies"], json!([]));
    let current = app.get_ok("/v1/analytics/forecast", &viewer).await;
    assert!(current["period"].as_str().unwrap().contains("-Q"));

    app.expect_bad_queries(
        "/v1/analytics/forecast",
        &viewer,
        &[
            ("period=2026-Q5", "period"),
            ("period=26", "period"),
            ("period=2026-13", "period"),
            ("period=Q4-2026", "period"),
            ("period=2026&from=2026-01-01", "period"),
            ("from=2026-01-01", "to"),
            ("to=2026-01-01", "from"),
            ("from=2026-02-01&to=2026-01-01", "to"),
            ("from=yesterday&to=2026-01-01", "from"),
            ("currency=eur", "currency"),
            ("currency=EURO", "currency"),
            ("owner_id=someone", "owner_id"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    let res = app.get("/v1/analytics/forecast").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn a_customers_opportunities_are_in_their_export_and_forgotten_at_erasure() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let (owner, _) = app.user(Role::Agent).await;
    let o = create(
        &app,
        json!({"customer_id": c, "title": "Chairs for Grace's new office", "amount": 90_000,
               "currency": "EUR", "owner_id": owner, "expected_close_date": "2026-12-15"}),
    )
    .await;
    let lost = expect_json(
        change(
            &app,
            &app.token(Role::Admin),
            &o,
            json!({"status": "lost", "close_reason": "Grace chose another shop"}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let admin = app.token(Role::Admin);
    let export = app
        .get_ok(&format!("/v1/customers/{c}/export"), &admin)
        .await;
    assert_eq!(export["opportunities"], json!([lost]));

    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{c}/erase"),
            &admin,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let after = app
        .get_ok(&format!("/v1/opportunities/{}", id(&o)), &admin)
        .await;
    assert_eq!(after["title"], "[erased]");
    assert_eq!(after["close_reason"], "[erased]");
    // The figures stay for the forecast.
    assert_eq!(
        (&after["amount"], &after["status"]),
        (&json!(90_000), &json!("lost"))
    );
    let history = app
        .get_ok(&format!("/v1/opportunities/{}/history", id(&o)), &admin)
        .await;
    assert!(
        history["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["reason"].is_null())
    );
    for table in ["audit_events", "events"] {
        let column = if table == "events" {
            "(data::text || coalesce(previous::text, ''))"
        } else {
            "changes"
        };
        assert_eq!(
            app.count(&format!(
                "{table} WHERE {column}::text LIKE '%Grace chose%' OR {column}::text LIKE '%new office%'"
            ))
            .await,
            0,
            "{table}"
        );
    }
}
