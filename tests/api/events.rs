//! The event feed: every change integrations hear about, written in the change's own
//! transaction (a write that fails leaves none), with the object as its endpoint shows it and
//! the values before; erasure emptying past events; paging, filters and bad requests.

use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

/// Every event the feed serves (pings aside), once it serves all the table holds.
async fn feed(app: &TestApp) -> Vec<Value> {
    app.feed("", "type <> 'webhook.ping'").await
}

/// The events of one type, in feed order.
async fn of_type(app: &TestApp, kind: &str) -> Vec<Value> {
    feed(app)
        .await
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

/// The events about one object, in feed order, as `(type, event)`.
async fn about(app: &TestApp, object_id: &str) -> Vec<(String, Value)> {
    feed(app)
        .await
        .into_iter()
        .filter(|e| e["object_id"] == object_id)
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e))
        .collect()
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

async fn stored(app: &TestApp) -> i64 {
    app.count("events").await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn create_customer(app: &TestApp, body: Value) -> Value {
    crate::customers::create(app, body).await
}

/// A JSON body sent with a token; the answer's status and body.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    role: Role,
    body: Value,
) -> (StatusCode, Value) {
    let res = app.send(method, path, &app.token(role), &body).await;
    let status = res.status();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The same, expecting `status`.
async fn ok(
    app: &TestApp,
    method: Method,
    path: &str,
    role: Role,
    body: Value,
    status: StatusCode,
) -> Value {
    let (got, body) = call(app, method, path, role, body).await;
    assert_eq!(got, status, "{path}: {body}");
    body
}

/// Tiers `standard` (0) and `silver` (100) on the default programme (1 point per 100 EUR
/// cents, points that never lapse, downgrades at the next evaluation).
async fn loyalty_tiers(app: &TestApp) {
    ok(
        app,
        Method::PUT,
        "/v1/loyalty/tiers",
        Role::Admin,
        json!({"tiers": [
            {"key": "standard", "name": "Standard", "threshold": 0, "multiplier_percent": 100, "benefits": []},
            {"key": "silver", "name": "Silver", "threshold": 100, "multiplier_percent": 100, "benefits": []},
        ]}),
        StatusCode::OK,
    )
    .await;
}

async fn import(app: &TestApp, query: &str, file: &str) -> Value {
    let res = app
        .post(&format!("/v1/imports/customers{query}"))
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body(file.to_owned())
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await
}

#[actix_web::test]
async fn customer_writes_emit_their_events_with_the_object_and_the_values_before() {
    let app = TestApp::spawn().await;
    let created = create_customer(
        &app,
        json!({"name": "Ada", "email": "ada@example.com", "national_id": "T22000129",
               "external_id": "shop-1"}),
    )
    .await;
    let c = id(&created);
    // Created: the customer as a caller without `pii:read` reads it (ID number masked).
    let shown = app
        .get_ok(&format!("/v1/customers/{c}"), &app.token(Role::Agent))
        .await;
    let events = about(&app, &c).await;
    assert_eq!(types(&events), ["customer.created"]);
    let (_, event) = &events[0];
    assert_eq!(event["object_type"], "customer");
    assert_eq!(event["data"], shown);
    assert_eq!(event["data"]["national_id"], "****0129");
    assert_eq!(event["previous"], Value::Null);
    assert!(event["request_id"].is_string());

    // An update that moves the stage: updated (with the old values) and lifecycle_changed.
    let path = format!("/v1/customers/{c}");
    let updated = ok(
        &app,
        Method::PATCH,
        &path,
        Role::Agent,
        json!({"name": "Ada Lovelace", "lifecycle_stage": "acquaintance"}),
        StatusCode::OK,
    )
    .await;
    let events = about(&app, &c).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "customer.updated",
            "customer.lifecycle_changed"
        ]
    );
    let (_, update) = &events[1];
    assert_eq!(update["data"], updated);
    assert_eq!(
        update["previous"],
        json!({"name": "Ada", "lifecycle_stage": "prospect"})
    );
    let (_, stage) = &events[2];
    assert_eq!(stage["data"]["lifecycle_stage"], "acquaintance");
    assert_eq!(stage["previous"], json!({"lifecycle_stage": "prospect"}));

    // An update changing nothing, a validation error, a stale If-Match: no event.
    let before = stored(&app).await;
    ok(
        &app,
        Method::PATCH,
        &path,
        Role::Agent,
        json!({"name": "Ada Lovelace"}),
        StatusCode::OK,
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        &path,
        Role::Agent,
        json!({"name": "Ada L.", "email": "not an email"}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let res = app
        .patch(&path)
        .bearer_auth(app.token(Role::Agent))
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Ada L."}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(stored(&app).await, before);

    // An upsert by external id that changes the customer; one that creates one.
    ok(
        &app,
        Method::PUT,
        "/v1/customers/by-external-id/shop-1",
        Role::Agent,
        json!({"occupation": "Engineer"}),
        StatusCode::OK,
    )
    .await;
    let fresh = ok(
        &app,
        Method::PUT,
        "/v1/customers/by-external-id/shop-2",
        Role::Agent,
        json!({"name": "Bob"}),
        StatusCode::CREATED,
    )
    .await;
    let upserted = about(&app, &c).await;
    assert_eq!(upserted[3].0, "customer.updated");
    assert_eq!(upserted[3].1["previous"], json!({"occupation": null}));
    assert_eq!(types(&about(&app, &id(&fresh)).await), ["customer.created"]);

    // Deleted, then restored: the object after each, and `deleted_at` before.
    let res = app
        .request(Method::DELETE, &path)
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    ok(
        &app,
        Method::POST,
        &format!("/v1/customers/{c}/restore"),
        Role::Manager,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let restored = app.get_ok(&path, &app.token(Role::Agent)).await;
    let events = about(&app, &c).await;
    assert_eq!(
        types(&events)[4..],
        ["customer.deleted", "customer.restored"]
    );
    let (_, deleted) = &events[4];
    assert!(deleted["data"]["deleted_at"].is_string());
    assert_eq!(deleted["previous"]["deleted_at"], Value::Null);
    let (_, back) = &events[5];
    assert_eq!(back["data"], restored);
    assert_eq!(
        back["previous"]["deleted_at"],
        deleted["data"]["deleted_at"]
    );
}

#[actix_web::test]
async fn erasure_is_announced_and_empties_the_customers_earlier_events() {
    let app = TestApp::spawn().await;
    let ada = id(&create_customer(&app, json!({"name": "Ada", "email": "ada@example.com"})).await);
    let bob = id(&create_customer(&app, json!({"name": "Bob"})).await);
    let interaction = ok(
        &app,
        Method::POST,
        &format!("/v1/customers/{ada}/interactions"),
        Role::Agent,
        json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
               "severity": "low", "subject": "Ada's vase broke",
               "occurred_at": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)}),
        StatusCode::CREATED,
    )
    .await;
    ok(
        &app,
        Method::POST,
        &format!("/v1/customers/{ada}/points"),
        Role::Manager,
        json!({"kind": "adjust", "points": 5, "reason": "welcome"}),
        StatusCode::CREATED,
    )
    .await;
    let survey = crate::surveys::active_survey(&app, json!({})).await;
    let response = ok(
        &app,
        Method::POST,
        &format!("/v1/surveys/{survey}/responses"),
        Role::Agent,
        json!({"customer_id": ada, "answers": {"recommend": 9, "comment": "Ada here"}}),
        StatusCode::CREATED,
    )
    .await;
    let purchase = ok(
        &app,
        Method::POST,
        &format!("/v1/customers/{ada}/purchases"),
        Role::Agent,
        json!({"amount": 1000, "currency": "USD"}),
        StatusCode::CREATED,
    )
    .await;
    assert!(
        feed(&app)
            .await
            .iter()
            .any(|e| e["data"].to_string().contains("Ada"))
    );

    let res = app
        .post(&format!("/v1/customers/{ada}/erase"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let all = feed(&app).await;
    let erased: Vec<&Value> = all
        .iter()
        .filter(|e| e["type"] == "customer.erased")
        .collect();
    assert_eq!(erased.len(), 1);
    assert_eq!(erased[0]["object_id"], ada.as_str());
    assert_eq!(erased[0]["data"], json!({"id": ada}));
    // Every earlier event about Ada, her interaction, her loyalty account and her survey
    // response keeps its type and time, not its data.
    let personal = [
        ("customer", ada.clone()),
        ("interaction", id(&interaction)),
        ("loyalty_member", ada.clone()),
        ("survey_response", id(&response)),
    ];
    for (object, object_id) in &personal {
        let hers: Vec<&Value> = all
            .iter()
            .filter(|e| e["object_type"] == *object && e["object_id"] == object_id.as_str())
            .collect();
        assert!(!hers.is_empty(), "no {object} event");
        for e in hers {
            assert_eq!(e["data"], json!({"id": object_id}), "{e}");
            assert_eq!(e["previous"], Value::Null, "{e}");
        }
    }
    assert!(
        !all.iter().any(|e| e["data"].to_string().contains("Ada")),
        "Ada's name is still in an event"
    );
    // The purchase (anonymous figures) and Bob's events stay as they were.
    let kept = all
        .iter()
        .find(|e| e["type"] == "purchase.created")
        .unwrap();
    assert_eq!(kept["data"]["amount"], purchase["amount"]);
    let bobs = all.iter().find(|e| e["object_id"] == bob.as_str()).unwrap();
    assert_eq!(bobs["data"]["name"], "Bob");
    // Erasing again changes nothing.
    let before = stored(&app).await;
    let res = app
        .post(&format!("/v1/customers/{ada}/erase"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(stored(&app).await, before);
}

#[actix_web::test]
async fn interactions_and_complaint_steps_emit_their_events() {
    let app = TestApp::spawn().await;
    let c = id(&create_customer(&app, json!({"name": "Grace"})).await);
    let opened =
        (Utc::now() - chrono::Duration::hours(3)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let complaint = ok(
        &app,
        Method::POST,
        &format!("/v1/customers/{c}/interactions"),
        Role::Agent,
        json!({"channel": "email", "direction": "inbound", "kind": "complaint",
               "severity": "high", "subject": "Vase broken", "occurred_at": opened}),
        StatusCode::CREATED,
    )
    .await;
    let i = id(&complaint);
    let events = about(&app, &i).await;
    assert_eq!(types(&events), ["interaction.created"]);
    let (_, created) = &events[0];
    assert_eq!(created["object_type"], "interaction");
    for field in [
        "id",
        "customer_id",
        "kind",
        "subject",
        "status",
        "severity",
        "version",
    ] {
        assert_eq!(created["data"][field], complaint[field], "{field}");
    }

    // A step of the workflow: updated (old status) and status_changed.
    let stepped = ok(
        &app,
        Method::POST,
        &format!("/v1/interactions/{i}/status"),
        Role::Agent,
        json!({"status": "in_progress"}),
        StatusCode::OK,
    )
    .await;
    let events = about(&app, &i).await;
    assert_eq!(
        types(&events),
        [
            "interaction.created",
            "interaction.updated",
            "complaint.status_changed"
        ]
    );
    let (_, update) = &events[1];
    assert_eq!(update["previous"]["status"], "open");
    assert_eq!(update["previous"]["in_progress_at"], Value::Null);
    assert_eq!(update["data"]["status"], "in_progress");
    let (_, step) = &events[2];
    assert_eq!(step["data"]["status"], "in_progress");
    assert_eq!(step["data"]["version"], stepped["version"]);
    assert_eq!(step["previous"], json!({"status": "open"}));

    // A step the workflow forbids, an invalid patch: nothing.
    let before = stored(&app).await;
    ok(
        &app,
        Method::POST,
        &format!("/v1/interactions/{i}/status"),
        Role::Agent,
        json!({"status": "closed"}),
        StatusCode::CONFLICT,
    )
    .await;
    ok(
        &app,
        Method::PATCH,
        &format!("/v1/interactions/{i}"),
        Role::Agent,
        json!({"subject": "x".repeat(1000)}),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(stored(&app).await, before);

    // A patch: updated with the old subject.
    let patched = ok(
        &app,
        Method::PATCH,
        &format!("/v1/interactions/{i}"),
        Role::Agent,
        json!({"subject": "Vase broken in transit"}),
        StatusCode::OK,
    )
    .await;
    let events = about(&app, &i).await;
    assert_eq!(events.len(), 4);
    let (kind, update) = &events[3];
    assert_eq!(kind, "interaction.updated");
    assert_eq!(update["previous"], json!({"subject": "Vase broken"}));
    assert_eq!(update["data"]["subject"], patched["subject"]);
    assert_eq!(update["data"]["version"], patched["version"]);
}

#[actix_web::test]
async fn purchases_refunds_points_and_tiers_emit_their_events() {
    let app = TestApp::spawn().await;
    loyalty_tiers(&app).await;
    let c = id(&create_customer(&app, json!({"name": "Ada"})).await);
    // 12 000 minor units: 120 points, enough for silver.
    let bought = ok(
        &app,
        Method::POST,
        &format!("/v1/customers/{c}/purchases"),
        Role::Agent,
        json!({"amount": 12000, "currency": "EUR"}),
        StatusCode::CREATED,
    )
    .await;
    let p = id(&bought);
    let shown = app
        .get_ok(&format!("/v1/purchases/{p}"), &app.token(Role::Viewer))
        .await;
    let events = about(&app, &p).await;
    assert_eq!(types(&events), ["purchase.created"]);
    assert_eq!(events[0].1["data"], shown);
    let member = about(&app, &c).await;
    // The first purchase also makes the prospect an acquaintance, announced after the points.
    assert_eq!(
        types(&member),
        [
            "customer.created",
            "loyalty.points_changed",
            "loyalty.tier_changed",
            "customer.updated",
            "customer.lifecycle_changed"
        ]
    );
    let (_, points) = &member[1];
    assert_eq!(points["object_type"], "loyalty_member");
    assert_eq!(points["data"]["balance"], 120);
    assert_eq!(points["data"]["customer_id"], c.as_str());
    assert_eq!(points["previous"], json!({"balance": 0}));
    let (_, tier) = &member[2];
    assert_eq!(tier["data"]["tier"]["key"], "silver");
    assert_eq!(tier["previous"], json!({"tier": null}));
    // The member as its endpoint shows it (but for the moving window and lapse horizon).
    let standing = app
        .get_ok(
            &format!("/v1/customers/{c}/loyalty"),
            &app.token(Role::Viewer),
        )
        .await;
    for field in [
        "customer_id",
        "member_since",
        "balance",
        "tier",
        "next_tier",
        "history",
        "expiring",
    ] {
        assert_eq!(tier["data"][field], standing[field], "{field}");
    }
    assert_eq!(
        tier["data"]["qualifying"]["sum"],
        standing["qualifying"]["sum"]
    );

    // A half refund: the purchase after it, and half the points back.
    let refunded = ok(
        &app,
        Method::POST,
        &format!("/v1/purchases/{p}/refund"),
        Role::Manager,
        json!({"amount": 6000}),
        StatusCode::OK,
    )
    .await;
    let events = about(&app, &p).await;
    assert_eq!(types(&events), ["purchase.created", "purchase.refunded"]);
    let (_, refund) = &events[1];
    assert_eq!(refund["data"]["refunded"], 6000);
    assert_eq!(refund["data"]["net_amount"], 6000);
    assert_eq!(refund["data"]["version"], refunded["version"]);
    assert_eq!(refund["data"]["loyalty"], Value::Null);
    assert_eq!(
        refund["previous"],
        json!({"refunded": 0, "net_amount": 12000})
    );
    let member = about(&app, &c).await;
    assert_eq!(member.len(), 6);
    assert_eq!(member[5].0, "loyalty.points_changed");
    assert_eq!(member[5].1["data"]["balance"], 60);
    assert_eq!(member[5].1["previous"], json!({"balance": 120}));

    // A redemption and an adjustment; a redemption of too many points is refused, silently.
    let points = format!("/v1/customers/{c}/points");
    ok(
        &app,
        Method::POST,
        &points,
        Role::Agent,
        json!({"kind": "redeem", "points": 10}),
        StatusCode::CREATED,
    )
    .await;
    let before = stored(&app).await;
    ok(
        &app,
        Method::POST,
        &points,
        Role::Agent,
        json!({"kind": "redeem", "points": 51}),
        StatusCode::CONFLICT,
    )
    .await;
    assert_eq!(stored(&app).await, before);
    ok(
        &app,
        Method::POST,
        &points,
        Role::Manager,
        json!({"kind": "adjust", "points": 5, "reason": "goodwill"}),
        StatusCode::CREATED,
    )
    .await;
    let member = about(&app, &c).await;
    let balances: Vec<(Value, Value)> = member[6..]
        .iter()
        .map(|(t, e)| {
            assert_eq!(t, "loyalty.points_changed");
            (
                e["previous"]["balance"].clone(),
                e["data"]["balance"].clone(),
            )
        })
        .collect();
    assert_eq!(balances, [(json!(60), json!(50)), (json!(50), json!(55))]);

    // Refunding the rest takes back what is left; the evaluation pass then moves Ada down
    // (her qualifying points: 120 − 60 − 55 = 5 < 100).
    ok(
        &app,
        Method::POST,
        &format!("/v1/purchases/{p}/refund"),
        Role::Manager,
        json!({}),
        StatusCode::OK,
    )
    .await;
    ok(
        &app,
        Method::POST,
        "/v1/loyalty/evaluate",
        Role::Admin,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let member = about(&app, &c).await;
    assert_eq!(
        types(&member)[8..],
        ["loyalty.points_changed", "loyalty.tier_changed"]
    );
    assert_eq!(member[8].1["previous"], json!({"balance": 55}));
    assert_eq!(member[8].1["data"]["balance"], 0);
    let (_, down) = &member[9];
    assert_eq!(down["data"]["tier"]["key"], "standard");
    assert_eq!(down["data"]["history"].as_array().unwrap().len(), 2);
    assert_eq!(down["previous"]["tier"]["key"], "silver");
    assert_eq!(down["previous"]["tier"]["tier"]["name"], "Silver");
    assert_eq!(
        down["previous"]["tier"]["since"],
        down["data"]["history"][0]["changed_at"]
    );
}

#[actix_web::test]
async fn bulk_awards_and_expiry_emit_one_event_per_member_and_failures_none() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        ids.push(id(&create_customer(
            &app,
            json!({"name": name, "tags": ["vip"]}),
        )
        .await));
    }
    let other = id(&create_customer(&app, json!({"name": "O"})).await);
    let bulk = |key: &str, body: Value| {
        app.post("/v1/loyalty/points/bulk")
            .bearer_auth(app.token(Role::Manager))
            .header("Idempotency-Key", key.to_owned())
            .json(&body)
            .send()
    };
    let res = bulk(
        "spring",
        json!({"points": 10, "reason": "spring", "filter": "tags=vip"}),
    )
    .await
    .unwrap();
    expect_json(res, StatusCode::OK).await;
    let events = of_type(&app, "loyalty.points_changed").await;
    let mut got: Vec<(String, Value, Value)> = events
        .iter()
        .map(|e| {
            (
                e["object_id"].as_str().unwrap().to_owned(),
                e["previous"].clone(),
                e["data"]["balance"].clone(),
            )
        })
        .collect();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    let mut want: Vec<(String, Value, Value)> = ids
        .iter()
        .map(|c| (c.clone(), json!({"balance": 0}), json!(10)))
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);

    // Taking more than a member holds: refused whole, nothing announced.
    let before = stored(&app).await;
    let res = bulk(
        "take",
        json!({"points": -5, "reason": "fix", "customer_ids": [ids[0], other]}),
    )
    .await
    .unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(stored(&app).await, before);

    // The points lapse; the evaluation pass writes them off: one event per member.
    app.sql("UPDATE loyalty_lots SET expires_at = now() - interval '1 hour'")
        .await;
    ok(
        &app,
        Method::POST,
        "/v1/loyalty/evaluate",
        Role::Admin,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let events = of_type(&app, "loyalty.points_changed").await;
    assert_eq!(events.len(), 6);
    let mut expired: Vec<(String, Value, Value)> = events[3..]
        .iter()
        .map(|e| {
            (
                e["object_id"].as_str().unwrap().to_owned(),
                e["previous"].clone(),
                e["data"]["balance"].clone(),
            )
        })
        .collect();
    expired.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, Value, Value)> = want
        .into_iter()
        .map(|(c, _, _)| (c, json!({"balance": 10}), json!(0)))
        .collect();
    assert_eq!(expired, want);
    // A second pass finds nothing to announce.
    let before = stored(&app).await;
    ok(
        &app,
        Method::POST,
        "/v1/loyalty/evaluate",
        Role::Admin,
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_eq!(stored(&app).await, before);
}

#[actix_web::test]
async fn survey_responses_and_imports_emit_their_events_and_rolled_back_imports_none() {
    let app = TestApp::spawn().await;
    let c = id(&create_customer(&app, json!({"name": "Ada"})).await);
    let survey = crate::surveys::active_survey(&app, json!({})).await;
    let response = ok(
        &app,
        Method::POST,
        &format!("/v1/surveys/{survey}/responses"),
        Role::Agent,
        json!({"customer_id": c, "answers": {"recommend": 10}}),
        StatusCode::CREATED,
    )
    .await;
    let r = id(&response);
    let shown = app
        .get_ok(
            &format!("/v1/survey-responses/{r}"),
            &app.token(Role::Viewer),
        )
        .await;
    let events = about(&app, &r).await;
    assert_eq!(types(&events), ["survey.response_created"]);
    assert_eq!(events[0].1["object_type"], "survey_response");
    assert_eq!(events[0].1["data"], shown);

    // An import: a created event per written row, then the import as its endpoint shows it.
    let report = import(
        &app,
        "",
        "external_id,name,lifecycle_stage\ncrm-1,Hal,prospect\ncrm-2,Ivy,prospect\ncrm-3,,prospect\n",
    )
    .await;
    assert_eq!(report["created"], 2);
    let created = of_type(&app, "customer.created").await;
    let names: Vec<&Value> = created.iter().map(|e| &e["data"]["name"]).collect();
    assert_eq!(names, ["Ada", "Hal", "Ivy"]);
    let hal = &created[1]["data"];
    let shown = app
        .get_ok(
            &format!("/v1/customers/{}", id(hal)),
            &app.token(Role::Agent),
        )
        .await;
    assert_eq!(*hal, shown);
    let completed = of_type(&app, "import.completed").await;
    assert_eq!(completed.len(), 1);
    let import_id = id(&report);
    assert_eq!(completed[0]["object_id"], import_id.as_str());
    let shown = app
        .get_ok(
            &format!("/v1/imports/{import_id}"),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(completed[0]["data"], shown);
    assert_eq!(completed[0]["data"]["failed"], 1);

    // An upsert moving one stage: updated (old values) and lifecycle_changed; the unchanged
    // row announces nothing.
    import(
        &app,
        "?mode=upsert",
        "external_id,name,lifecycle_stage\ncrm-1,Hal Jordan,stable\ncrm-2,Ivy,prospect\n",
    )
    .await;
    let events = about(&app, &id(hal)).await;
    assert_eq!(
        types(&events),
        [
            "customer.created",
            "customer.updated",
            "customer.lifecycle_changed"
        ]
    );
    assert_eq!(
        events[1].1["previous"],
        json!({"name": "Hal", "lifecycle_stage": "prospect"})
    );
    assert_eq!(events[1].1["data"]["name"], "Hal Jordan");
    assert_eq!(events[1].1["data"]["version"], 2);
    assert_eq!(
        events[2].1["previous"],
        json!({"lifecycle_stage": "prospect"})
    );
    assert_eq!(of_type(&app, "customer.updated").await.len(), 1);
    assert_eq!(of_type(&app, "import.completed").await.len(), 2);

    // All or nothing with a bad row, and a dry run: written, then rolled back: no event.
    let before = stored(&app).await;
    let refused = import(
        &app,
        "?all_or_nothing=true",
        "external_id,name\ncrm-10,Jo\ncrm-11,\n",
    )
    .await;
    assert_eq!(
        (refused["committed"].clone(), refused["created"].clone()),
        (json!(false), json!(1))
    );
    let dry = import(&app, "?dry_run=true", "external_id,name\ncrm-12,Kim\n").await;
    assert_eq!(dry["created"], 1);
    assert_eq!(stored(&app).await, before);
    // The same file whole goes in with its events.
    import(
        &app,
        "?all_or_nothing=true",
        "external_id,name\ncrm-10,Jo\ncrm-11,Lu\n",
    )
    .await;
    assert_eq!(of_type(&app, "customer.created").await.len(), 5);
    assert_eq!(of_type(&app, "import.completed").await.len(), 3);
}

#[actix_web::test]
async fn the_feed_pages_in_commit_order_from_a_cursor_or_an_event_and_filters_by_type() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Admin);
    let mut customers = Vec::new();
    for n in 0..5 {
        customers.push(id(
            &create_customer(&app, json!({"name": format!("C{n}")})).await
        ));
    }
    ok(
        &app,
        Method::PATCH,
        &format!("/v1/customers/{}", customers[0]),
        Role::Agent,
        json!({"name": "C0 renamed"}),
        StatusCode::OK,
    )
    .await;
    let all = feed(&app).await;
    let order: Vec<(&str, &str)> = all
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap(),
                e["object_id"].as_str().unwrap(),
            )
        })
        .collect();
    let mut expected: Vec<(&str, &str)> = customers
        .iter()
        .map(|c| ("customer.created", c.as_str()))
        .collect();
    expected.push(("customer.updated", customers[0].as_str()));
    assert_eq!(order, expected);

    // Pages of two: has_more until the last; its cursor then serves nothing, until more.
    let mut query = "limit=2".to_owned();
    let mut pages = Vec::new();
    loop {
        let page = app.get_ok(&format!("/v1/events?{query}"), &token).await;
        let ids: Vec<String> = page["data"].as_array().unwrap().iter().map(id).collect();
        let more = page["has_more"].as_bool().unwrap();
        pages.push((ids, more));
        query = format!("limit=2&cursor={}", page["next_cursor"].as_str().unwrap());
        if !more {
            break;
        }
    }
    let all_ids: Vec<String> = all.iter().map(id).collect();
    assert_eq!(
        pages,
        [
            (all_ids[0..2].to_vec(), true),
            (all_ids[2..4].to_vec(), true),
            (all_ids[4..6].to_vec(), false),
        ]
    );
    let empty = app.get_ok(&format!("/v1/events?{query}"), &token).await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["has_more"], false);
    assert!(empty["next_cursor"].is_string());
    let late = id(&create_customer(&app, json!({"name": "Late"})).await);
    feed(&app).await;
    let next = app.get_ok(&format!("/v1/events?{query}"), &token).await;
    let ids: Vec<&str> = next["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [late.as_str()]);

    // From an event: those after it.
    let after = app
        .get_ok(&format!("/v1/events?after={}&limit=3", all_ids[2]), &token)
        .await;
    let ids: Vec<String> = after["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(ids, all_ids[3..6]);
    assert_eq!(after["has_more"], true);

    // By type: one, or several.
    let updates = app.get_ok("/v1/events?type=customer.updated", &token).await;
    let ids: Vec<String> = updates["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(ids, [all_ids[5].clone()]);
    let both = app
        .get_ok(
            "/v1/events?type=customer.updated,customer.created&limit=200",
            &token,
        )
        .await;
    assert_eq!(both["data"].as_array().unwrap().len(), 7);
    let none = app.get_ok("/v1/events?type=purchase.created", &token).await;
    assert_eq!(none["data"], json!([]));
    // Paging a filtered feed keeps the filter.
    let first = app
        .get_ok("/v1/events?type=customer.created&limit=5", &token)
        .await;
    assert_eq!(first["has_more"], true);
    let rest = app
        .get_ok(
            &format!(
                "/v1/events?type=customer.created&limit=5&cursor={}",
                first["next_cursor"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    let ids: Vec<&str> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["object_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [late.as_str()]);
}

#[actix_web::test]
async fn bad_feed_requests_are_refused() {
    let app = TestApp::spawn().await;
    let c = id(&create_customer(&app, json!({"name": "Ada"})).await);
    let token = app.token(Role::Admin);
    let first = id(&feed(&app).await[0]);
    let cursor = app.get_ok("/v1/events", &token).await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    app.expect_bad_queries(
        "/v1/events",
        &token,
        &[
            ("type=customer.created,customer.exploded", "type"),
            ("type=webhook.ping", "type"),
            ("cursor=garbage", "cursor"),
            (&format!("after={first}&cursor={cursor}"), "after"),
            ("after=not-a-uuid", "after"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
        ],
    )
    .await;
    // The unknown type is named, with the list of known ones.
    let res = app
        .get("/v1/events?type=customer.exploded")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(fields(&p), ["type"]);
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("customer.created")
    );
    // Another list's cursor.
    let other = app.get_ok("/v1/customers?limit=1", &token).await;
    if let Some(foreign) = other["next_cursor"].as_str() {
        let res = app
            .get(&format!("/v1/events?cursor={foreign}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    // An unknown parameter.
    let res = app
        .get("/v1/events?since=yesterday")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    // An event that does not exist (or was pruned).
    let res = app
        .get(&format!("/v1/events?after={c}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // No token; staff without `events:read`.
    let res = app.get("/v1/events").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    for role in [Role::Agent, Role::Manager, Role::Viewer] {
        let res = app
            .get("/v1/events")
            .bearer_auth(app.token(role))
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
}

#[actix_web::test]
async fn a_batch_of_eleven_thousand_rows_is_announced_in_file_order() {
    // One import batch writes them all: one statement for their 11 000 events (more than a
    // row-per-tuple INSERT has bind parameters for).
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_BATCH", "11000")]).await;
    let mut file = String::from("name\n");
    for n in 0..11_000 {
        file.push_str(&format!("R{n:05}\n"));
    }
    let report = import(&app, "", &file).await;
    assert_eq!(report["created"], 11_000);
    assert_eq!(
        app.count("events WHERE type = 'customer.created'").await,
        11_000
    );
    feed(&app).await;
    let page = app
        .get_ok("/v1/events?limit=3", &app.token(Role::Admin))
        .await;
    let names: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["data"]["name"])
        .collect();
    assert_eq!(names, ["R00000", "R00001", "R00002"]);
}

/// One page of the feed from `cursor` (from the start when `None`): its event ids and the
/// next cursor.
async fn page_from(app: &TestApp, cursor: Option<&str>) -> (Vec<String>, String) {
    let path = match cursor {
        Some(c) => format!("/v1/events?limit=200&cursor={c}"),
        None => "/v1/events?limit=200".to_owned(),
    };
    let page = app.get_ok(&path, &app.token(Role::Admin)).await;
    let ids = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, page["next_cursor"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn an_event_committed_late_is_served_after_the_reader_moved_on_never_skipped() {
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    let first = crate::customers::create(&app, json!({"name": "Ada Lovelace"})).await;
    // A change in flight: its event is written, its transaction still open.
    let mut held = app.db.connect().await;
    diesel::sql_query("BEGIN").execute(&mut held).await.unwrap();
    diesel::sql_query(
        "INSERT INTO events (id, type, object_type, object_id, data) \
         VALUES ('0193b0a6-0000-7000-8000-00000000abcd', 'customer.updated', 'customer', \
                 'held', '{\"id\": \"held\"}')",
    )
    .execute(&mut held)
    .await
    .unwrap();
    // A change that starts after it and commits first.
    let second = crate::customers::create(&app, json!({"name": "Grace Hopper"})).await;
    let second_event = app
        .count(&format!(
            "events WHERE object_id = '{}'",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(second_event, 1, "the second change committed its event");
    // The reader sees the first change only: the second waits behind the one in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (seen, cursor) = loop {
        let (ids, cursor) = page_from(&app, None).await;
        if !ids.is_empty() {
            break (ids, cursor);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the first event never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        seen.len(),
        1,
        "only the event before the open transaction: {seen:?}"
    );
    let (nothing, same) = page_from(&app, Some(&cursor)).await;
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(same, cursor, "an empty page keeps the reader where it was");
    // The held change commits: the reader, from where it stood, gets it, then the second.
    diesel::sql_query("COMMIT")
        .execute(&mut held)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let rest = loop {
        let (ids, _) = page_from(&app, Some(&cursor)).await;
        if ids.len() >= 2 {
            break ids;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the held events never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rest[0], "0193b0a6-0000-7000-8000-00000000abcd");
    let second_id: Vec<Value> = feed(&app)
        .await
        .into_iter()
        .filter(|e| e["object_id"] == second["id"])
        .collect();
    assert_eq!(rest[1], second_id[0]["id"].as_str().unwrap());
    assert_eq!(rest.len(), 2);
    assert_ne!(first["id"], second["id"]);
}

#[actix_web::test]
async fn a_transaction_left_open_in_another_database_holds_nothing_back() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    let app = TestApp::spawn().await;
    // Another database of the same server (the one tests create theirs from) writes and
    // stays open: its transaction id is older than the change below.
    let mut elsewhere = rapport::db::connect(
        &crate::helpers::server_url().maintenance(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    elsewhere
        .batch_execute("BEGIN; SELECT pg_current_xact_id()")
        .await
        .unwrap();
    let ada = crate::customers::create(&app, json!({"name": "Ada Lovelace"})).await;
    // The feed serves the change while that transaction is still open.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (ids, _) = page_from(&app, None).await;
        let served = feed(&app)
            .await
            .into_iter()
            .any(|e| e["object_id"] == ada["id"] && ids.iter().any(|id| e["id"] == *id));
        if served {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a transaction in another database held the feed back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A transaction open in this database does hold the horizon (the feed's side of it:
    // `an_event_committed_late_is_served_after_the_reader_moved_on_never_skipped`).
    #[derive(diesel::QueryableByName)]
    struct Held {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        held: bool,
    }
    #[derive(diesel::QueryableByName)]
    struct Xid {
        #[diesel(sql_type = diesel::sql_types::Text)]
        x: String,
    }
    let mut own = app.db.connect().await;
    own.batch_execute("BEGIN").await.unwrap();
    let xid = diesel::sql_query("SELECT pg_current_xact_id()::text AS x")
        .get_result::<Xid>(&mut own)
        .await
        .unwrap()
        .x;
    let mut here = app.db.connect().await;
    let held: Held = diesel::sql_query(format!(
        "SELECT rapport_settled_horizon() <= '{xid}'::xid8 AS held"
    ))
    .get_result(&mut here)
    .await
    .unwrap();
    assert!(
        held.held,
        "a transaction of this database holds the horizon"
    );
    own.batch_execute("ROLLBACK").await.unwrap();
    elsewhere.batch_execute("ROLLBACK").await.unwrap();
}

#[actix_web::test]
async fn making_partitions_ahead_never_queues_behind_a_writer_nor_stops_the_table() {
    use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
    #[derive(diesel::QueryableByName)]
    struct Made {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        made: i32,
    }
    let app = TestApp::spawn().await;
    // A change in flight holds its lock on `events` (as any write with an event does).
    let mut held = app.db.connect().await;
    held.batch_execute(
        "BEGIN; INSERT INTO events (id, type, object_type, object_id, data) \
         VALUES (uuid_v7(), 'customer.updated', 'customer', 'held', '{}')",
    )
    .await
    .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
    }
    let mut conn = app.db.connect().await;
    let caller_lock_timeout: Setting =
        diesel::sql_query("SELECT current_setting('lock_timeout') AS value")
            .get_result(&mut conn)
            .await
            .unwrap();
    let make = |at: &'static str| {
        diesel::sql_query(format!(
            "SELECT rapport_make_partitions('events', 3, {at}) AS made"
        ))
    };
    // Every month due exists or is covered (the current one by `events_before`): nothing is
    // locked, at once.
    let made = tokio::time::timeout(
        Duration::from_secs(5),
        make("now()").get_result::<Made>(&mut conn),
    )
    .await
    .expect("making the months that exist waited for the writer")
    .unwrap();
    assert_eq!(made.made, 0);
    // Months that are due for real wait a moment for the lock, then are left for later; the
    // table's readers were never stuck behind it.
    let started = std::time::Instant::now();
    let later = "now() + interval '4 months'";
    let made = tokio::time::timeout(
        Duration::from_secs(5),
        make(later).get_result::<Made>(&mut conn),
    )
    .await
    .expect("making a new month queued behind the writer")
    .unwrap();
    assert_eq!(made.made, 0);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The caller's own lock timeout is as it was.
    let setting: Setting = diesel::sql_query("SELECT current_setting('lock_timeout') AS value")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(setting.value, caller_lock_timeout.value);
    app.get_ok("/v1/events?limit=1", &app.token(Role::Admin))
        .await;
    // Once the writer ends, the next call makes them.
    held.batch_execute("COMMIT").await.unwrap();
    let made: Made = make(later).get_result(&mut conn).await.unwrap();
    assert_eq!(made.made, 4);
}

#[actix_web::test]
async fn retention_keeps_a_busy_month_for_the_next_run_instead_of_stopping_every_write() {
    use chrono::{Datelike, Months};
    use diesel_async::SimpleAsyncConnection;
    let app = TestApp::spawn().await;
    let month = |n: u32| {
        let first = Utc::now().date_naive().with_day(1).unwrap() + Months::new(n);
        format!("events_{}", first.format("%Y_%m"))
    };
    // A month of events ahead (its partition was made ahead), then a clock two months past
    // it with a retention of a day: that month is due to go as a whole partition.
    app.sql(
        "INSERT INTO events (id, type, object_type, object_id, data) \
         VALUES (uuid_v7_floor(utc_month(now(), 1)), 'customer.updated', 'customer', 'm1', '{}')",
    )
    .await;
    let now = (Utc::now().date_naive().with_day(1).unwrap() + Months::new(3))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    // A long write holds its lock on `events` meanwhile (every write of the service does).
    let mut held = app.db.connect().await;
    held.batch_execute(
        "BEGIN; INSERT INTO events (id, type, object_type, object_id, data) \
         VALUES (uuid_v7(), 'customer.updated', 'customer', 'held', '{}')",
    )
    .await
    .unwrap();
    // Retention does not wait for it (nor make every write wait behind it): the month stays.
    let mut conn = app.db.connect().await;
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(10),
        rapport::events::prune(&mut conn, Duration::from_secs(86_400), now),
    )
    .await
    .expect("retention queued behind the writer")
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(monthly_partitions(&app, "events").await.contains(&month(1)));
    // The writer ends: the next run drops the month.
    held.batch_execute("COMMIT").await.unwrap();
    rapport::events::prune(&mut conn, Duration::from_secs(86_400), now)
        .await
        .unwrap();
    assert!(!monthly_partitions(&app, "events").await.contains(&month(1)));
}

/// The monthly partitions of `table`, oldest first.
async fn monthly_partitions(app: &TestApp, table: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.connect().await;
    let rows: Vec<Name> = diesel::sql_query(format!(
        "SELECT name FROM rapport_monthly_partitions('{table}')"
    ))
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.name).collect()
}

#[actix_web::test]
async fn events_are_kept_by_the_month_and_retention_drops_whole_months() {
    use chrono::{Datelike, Months};
    use diesel_async::RunQueryDsl;
    let app = TestApp::spawn().await;
    // The coming months' partitions are there: the current one is the rows from before the
    // partitioning (`events_before`) in a new database, then one per month.
    let month = |n: u32| {
        let first = Utc::now().date_naive().with_day(1).unwrap() + Months::new(n);
        format!("events_{}", first.format("%Y_%m"))
    };
    let months = monthly_partitions(&app, "events").await;
    assert_eq!(months, [month(1), month(2), month(3)], "{months:?}");
    // The audit trail, the webhook deliveries and the points ledger are kept by the month
    // the same way.
    let months_of =
        |table: &str| [month(1), month(2), month(3)].map(|m| m.replacen("events", table, 1));
    for table in [
        "audit_events",
        "webhook_deliveries",
        "webhook_attempts",
        "loyalty_ledger",
    ] {
        assert_eq!(
            monthly_partitions(&app, table).await,
            months_of(table),
            "{table}"
        );
    }
    let customer = crate::customers::create(&app, json!({"name": "Ada Lovelace"})).await;
    let before = app.count("events").await;
    assert!(before >= 1);

    // Events of the next two months (as a clock a month ahead would write them), with a
    // finished delivery of one in the first month (and its attempt, and a finished replay
    // of it), and a pending delivery of one in the second. Deliveries take their ids as the
    // fan-out and replays make them: in their event's millisecond.
    app.sql(
        "INSERT INTO webhooks (id, url, secret) \
         VALUES ('00000000-0000-7000-8000-000000000001', 'https://example.com/hook', 'x')",
    )
    .await;
    for (offset, count) in [(1, 3), (2, 2)] {
        app.sql(&format!(
            "INSERT INTO events (id, type, object_type, object_id, data) \
             SELECT encode(overlay(uuid_send(uuid_v7_floor(utc_month(now(), {offset}) + interval '1 day')) \
                                   PLACING int8send(n) FROM 9 FOR 8), 'hex')::uuid, \
                    'customer.updated', 'customer', 'm{offset}-' || n, '{{}}' \
             FROM generate_series(1, {count}) n"
        ))
        .await;
    }
    app.sql(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, status) \
         SELECT webhook_delivery_id('00000000-0000-7000-8000-000000000001', id), \
                '00000000-0000-7000-8000-000000000001', id, \
                CASE WHEN object_id = 'm1-1' THEN 'succeeded' ELSE 'pending' END \
         FROM events WHERE object_id IN ('m1-1', 'm2-1')",
    )
    .await;
    app.sql(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, replay_of, status) \
         SELECT uuid_v7_beside(d.event_id), d.webhook_id, d.event_id, d.id, 'succeeded' \
         FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
         WHERE e.object_id = 'm1-1'",
    )
    .await;
    app.sql(
        "INSERT INTO webhook_attempts (id, delivery_id, attempted_at, latency_ms) \
         SELECT uuid_v7_beside(d.id), d.id, now(), 5 FROM webhook_deliveries d \
         JOIN events e ON e.id = d.event_id WHERE e.object_id = 'm1-1'",
    )
    .await;
    assert_eq!(app.count("events").await, before + 3 + 2);
    // Each event is in its month's partition, and so is each delivery.
    assert_eq!(app.count(&month(1)).await, 3);
    assert_eq!(app.count(&month(2)).await, 2);
    let deliveries = |n: u32| month(n).replacen("events", "webhook_deliveries", 1);
    assert_eq!(app.count(&deliveries(1)).await, 2);
    assert_eq!(app.count(&deliveries(2)).await, 1);
    assert_eq!(app.count("webhook_attempts").await, 2);
    let attempts = |n: u32| month(n).replacen("events", "webhook_attempts", 1);
    assert_eq!(app.count(&attempts(1)).await, 2);
    // The fan-out makes one delivery per webhook and event: the same pair again is nothing.
    app.sql(
        "INSERT INTO webhook_deliveries (id, webhook_id, event_id) \
         SELECT webhook_delivery_id('00000000-0000-7000-8000-000000000001', id), \
                '00000000-0000-7000-8000-000000000001', id \
         FROM events WHERE object_id IN ('m1-1', 'm2-1') ON CONFLICT DO NOTHING",
    )
    .await;
    assert_eq!(app.count("webhook_deliveries").await, 3);

    // Two days into the third month from now, with a retention of a day: the first month
    // goes as a whole partition, with its months of deliveries (the finished delivery and
    // its replay) and of their attempts as whole partitions too. The second month stays, and its
    // month of deliveries (a delivery still waits for one of its events), and its other event
    // goes row by row, as does the customer's event from before the partitioning.
    let now = (Utc::now().date_naive().with_day(1).unwrap() + Months::new(3))
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        + chrono::Duration::days(2);
    let mut conn = app.db.connect().await;
    let pruned = rapport::events::prune(&mut conn, Duration::from_secs(86_400), now)
        .await
        .unwrap();
    assert_eq!(pruned as i64, 3 + 1 + before);
    let months = monthly_partitions(&app, "events").await;
    assert_eq!(months, [month(2), month(3)], "{months:?}");
    assert_eq!(
        monthly_partitions(&app, "webhook_deliveries").await,
        [deliveries(2), deliveries(3)]
    );
    assert_eq!(app.count(&deliveries(2)).await, 1);
    assert_eq!(
        monthly_partitions(&app, "webhook_attempts").await,
        [attempts(2), attempts(3)]
    );
    assert_eq!(app.count("events").await, 1);
    assert_eq!(app.count("webhook_deliveries").await, 1);
    assert_eq!(app.count("webhook_attempts").await, 0);
    let waiting: i64 = {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(
            "SELECT count(*) AS n FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
             WHERE e.object_id = 'm2-1' AND d.status = 'pending'",
        )
        .get_result::<N>(&mut conn)
        .await
        .unwrap()
        .n
    };
    assert_eq!(waiting, 1, "the awaited event and its delivery stay");

    // The service makes the months ahead again (here the ones dropped above, of events, of
    // deliveries and of attempts, which are still ahead of the real clock), and events keep
    // being written.
    assert_eq!(
        rapport::db::partitions::make_ahead(&mut conn, Utc::now())
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        monthly_partitions(&app, "events").await,
        [month(1), month(2), month(3)]
    );
    assert_eq!(
        monthly_partitions(&app, "webhook_deliveries").await,
        months_of("webhook_deliveries")
    );
    let token = app.token(Role::Agent);
    let res = app
        .patch(&format!(
            "/v1/customers/{}",
            customer["id"].as_str().unwrap()
        ))
        .bearer_auth(&token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Ada King"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.count("events").await, 2);
    // The customer's audit trail reads across the partitioned table, newest first.
    let trail = app
        .get_ok(
            &format!(
                "/v1/audit?entity_type=customer&entity_id={}",
                customer["id"].as_str().unwrap()
            ),
            &app.token(Role::Admin),
        )
        .await;
    let actions: Vec<&str> = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["customer.updated", "customer.created"]);
}
