//! Why customers are lost: the reason code of a move into `dissolution` or `churned`, the
//! customer list filtered by it, and the cause of a complaint, counted in the statistics.

use chrono::{SecondsFormat, Utc};
use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn patch(app: &TestApp, id: &str, token: &str, body: Value) -> reqwest::Response {
    app.send(Method::PATCH, &format!("/v1/customers/{id}"), token, &body)
        .await
}

async fn history(app: &TestApp, id: &str) -> Vec<Value> {
    app.get_ok(
        &format!("/v1/customers/{id}/lifecycle"),
        &app.token(Role::Viewer),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn moved(app: &TestApp, id: &str, stage: &str, code: Option<&str>) {
    let body = match code {
        Some(code) => json!({"lifecycle_stage": stage, "reason_code": code}),
        None => json!({"lifecycle_stage": stage}),
    };
    expect_json(
        patch(app, id, &app.token(Role::Agent), body).await,
        StatusCode::OK,
    )
    .await;
}

fn id_of(c: &Value) -> String {
    c["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn a_move_into_a_loss_stage_needs_a_reason_code() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = create_customer(&app, json!({"name": "Lena", "lifecycle_stage": "stable"})).await;
    let id = id_of(&c);

    // Each refused with a 422 naming `reason_code`, and nothing written.
    let refused = [
        json!({"lifecycle_stage": "churned"}),
        json!({"lifecycle_stage": "dissolution", "lifecycle_reason": "went quiet"}),
        json!({"lifecycle_stage": "churned", "reason_code": "pricey"}),
        json!({"lifecycle_stage": "churned", "reason_code": 3}),
        json!({"lifecycle_stage": "churned", "reason_code": ["price"]}),
        json!({"reason_code": "price"}),
        json!({"lifecycle_stage": "stable", "reason_code": "price"}),
        json!({"lifecycle_stage": "commitment", "reason_code": "price"}),
    ];
    for body in refused {
        let res = patch(&app, &id, &agent, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["reason_code"], "{body}");
    }
    // An unknown field beside it is refused too.
    let res = patch(
        &app,
        &id,
        &agent,
        json!({"lifecycle_stage": "churned", "reason_code": "price", "reason_codes": "x"}),
    )
    .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Without a token, or with a role that may not write customers.
    let body = json!({"lifecycle_stage": "churned", "reason_code": "price"});
    let res = app
        .patch(&format!("/v1/customers/{id}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = patch(&app, &id, "not-a-token", body.clone()).await;
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = patch(&app, &id, &app.token(Role::Viewer), body.clone()).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(history(&app, &id).await.len(), 1);
    let same = app
        .get_ok(&format!("/v1/customers/{id}"), &app.token(Role::Viewer))
        .await;
    assert_eq!(same["version"], 1);
    assert_eq!(same["lifecycle_stage"], "stable");

    // With a code: moved, the code kept in the history beside the free text.
    let res = patch(
        &app,
        &id,
        &agent,
        json!({"lifecycle_stage": "dissolution", "lifecycle_reason": "a cheaper offer",
               "reason_code": "price"}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    let entries = history(&app, &id).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["reason_code"], Value::Null);
    assert_eq!(entries[1]["to"], "dissolution");
    assert_eq!(entries[1]["reason"], "a cheaper offer");
    assert_eq!(entries[1]["reason_code"], "price");
    // Leaving the loss stages needs none.
    moved(&app, &id, "stable", None).await;
    assert_eq!(history(&app, &id).await[2]["reason_code"], Value::Null);

    // In the timeline and in the event.
    let timeline = app
        .get_ok(
            &format!("/v1/customers/{id}/timeline?types=lifecycle_change"),
            &app.token(Role::Viewer),
        )
        .await;
    // Three entries (created, the loss, the return); only the loss has a code.
    let mut codes: Vec<String> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lifecycle_change"]["reason_code"].to_string())
        .collect();
    codes.sort();
    assert_eq!(codes, ["\"price\"", "null", "null"], "{timeline}");
    let events = app
        .feed(
            "type=customer.lifecycle_changed",
            "type = 'customer.lifecycle_changed'",
        )
        .await;
    let changes: Vec<&Value> = events
        .iter()
        .filter(|e| e["data"]["id"] == id.as_str())
        .map(|e| &e["data"]["lifecycle_change"])
        .collect();
    assert_eq!(
        changes,
        [
            &json!({"reason": "a cheaper offer", "reason_code": "price"}),
            &json!({"reason": null, "reason_code": null}),
        ]
    );

    // A creation in a loss stage is a move into it.
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "Gone", "lifecycle_stage": "churned"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["reason_code"]);
    assert_eq!(app.count("customers WHERE name = 'Gone'").await, 0);
    let gone = create_customer(
        &app,
        json!({"name": "Gone", "lifecycle_stage": "churned", "reason_code": "moved_away"}),
    )
    .await;
    assert_eq!(
        history(&app, &id_of(&gone)).await[0]["reason_code"],
        "moved_away"
    );
}

#[actix_web::test]
async fn customers_are_listed_by_the_reason_of_their_latest_loss() {
    let app = TestApp::spawn().await;
    let (owner_id, owner) = app.user_with_access(Role::Manager, "owned").await;
    let stable = |name: &str| json!({"name": name, "lifecycle_stage": "stable"});
    // A: lost for price.
    let a = id_of(&create_customer(&app, stable("A")).await);
    moved(&app, &a, "churned", Some("price")).await;
    // B: dissolution for a competitor, then churned for price: its latest loss is price.
    let b = id_of(&create_customer(&app, stable("B")).await);
    moved(&app, &b, "dissolution", Some("competitor")).await;
    moved(&app, &b, "churned", Some("price")).await;
    // C: lost to a competitor and won back: still found by that loss, whatever its stage.
    let c = id_of(&create_customer(&app, stable("C")).await);
    moved(&app, &c, "churned", Some("competitor")).await;
    moved(&app, &c, "stable", None).await;
    // D: never lost. E: created lost, managed by the owned-only user.
    create_customer(&app, stable("D")).await;
    create_customer(
        &app,
        json!({"name": "E", "lifecycle_stage": "dissolution", "reason_code": "price",
               "account_manager_id": owner_id}),
    )
    .await;
    // F: a loss recorded before codes existed, after a coded one: its latest loss has none.
    let f = id_of(&create_customer(&app, stable("F")).await);
    moved(&app, &f, "churned", Some("price")).await;
    moved(&app, &f, "stable", None).await;
    app.sql(&format!(
        "UPDATE customers SET lifecycle_stage = 'churned' WHERE id = '{f}'"
    ))
    .await;
    app.sql(&format!(
        "INSERT INTO customer_lifecycle_events
             (id, customer_id, from_stage, to_stage, changed_at, actor_type, actor_id)
         VALUES (uuid_v7(), '{f}', 'stable', 'churned', now() + interval '1 second',
                 'system', 'migration')"
    ))
    .await;

    let viewer = app.token(Role::Viewer);
    let names = |page: &Value| -> Vec<String> {
        let mut names: Vec<String> = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    let list = |query: &'static str, token: String| {
        let app = &app;
        async move { app.get_ok(&format!("/v1/customers?{query}"), &token).await }
    };
    assert_eq!(
        names(&list("churn_reason=price", viewer.clone()).await),
        ["A", "B", "E"]
    );
    assert_eq!(
        names(&list("churn_reason=competitor", viewer.clone()).await),
        ["C"]
    );
    assert_eq!(
        names(&list("churn_reason=competitor,price", viewer.clone()).await),
        ["A", "B", "C", "E"]
    );
    assert!(names(&list("churn_reason=moved_away", viewer.clone()).await).is_empty());
    // With a stage, and by name (the code's own index leads).
    assert_eq!(
        names(&list("churn_reason=price&lifecycle_stage=churned", viewer.clone()).await),
        ["A", "B"]
    );
    assert_eq!(
        names(&list("churn_reason=price&sort=name", viewer.clone()).await),
        ["A", "B", "E"]
    );
    // An owned-only user sees their own customers only.
    assert_eq!(
        names(&list("churn_reason=price", owner.clone()).await),
        ["E"]
    );
    app.expect_bad_queries(
        "/v1/customers",
        &viewer,
        &[
            ("churn_reason=pricey", "churn_reason"),
            ("churn_reason=", "churn_reason"),
            ("churn_reason=price,", "churn_reason"),
            ("churn_reasons=price", "churn_reasons"),
        ],
    )
    .await;
    let res = app
        .get("/v1/customers?churn_reason=price")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn complaints_carry_a_cause_filtered_and_counted() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = id_of(&create_customer(&app, json!({"name": "Grace"})).await);
    let ago = |days: i64| {
        (Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
    };
    let complaint = |cause: Option<&str>, days: i64| {
        let mut body = json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
                              "severity": "high", "occurred_at": ago(days)});
        if let Some(cause) = cause {
            body["cause"] = json!(cause);
        }
        body
    };
    let path = format!("/v1/customers/{c}/interactions");
    let record = |body: Value| {
        let app = &app;
        let agent = &agent;
        let path = &path;
        async move {
            expect_json(
                app.send(Method::POST, path, agent, &body).await,
                StatusCode::CREATED,
            )
            .await
        }
    };
    // In the period (the last 30 days): product_defect 2, service_quality 1, price 1, none 1.
    let defect = record(complaint(Some("product_defect"), 2)).await;
    assert_eq!(defect["cause"], "product_defect");
    record(complaint(Some("product_defect"), 3)).await;
    record(complaint(Some("price"), 4)).await;
    record(complaint(Some("service_quality"), 5)).await;
    let uncaused = record(complaint(None, 6)).await;
    assert_eq!(uncaused["cause"], Value::Null);
    // Before the period: not counted.
    record(complaint(Some("price"), 60)).await;

    // Refused: a cause on another kind, an unknown cause, a wrong type.
    for body in [
        json!({"channel": "phone", "direction": "inbound", "kind": "note",
               "occurred_at": ago(1), "cause": "price"}),
        complaint(Some("pricey"), 1),
        {
            let mut b = complaint(None, 1);
            b["cause"] = json!(7);
            b
        },
    ] {
        let res = app.send(Method::POST, &path, &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["cause"], "{body}");
    }
    let res = app
        .send(
            Method::POST,
            &path,
            &app.token(Role::Viewer),
            &complaint(Some("price"), 1),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("interactions").await, 6);

    // Set later, by a patch.
    let id = uncaused["id"].as_str().unwrap();
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/interactions/{id}"),
            &agent,
            &json!({"cause": "communication"}),
        )
        .await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["cause"],
        "communication"
    );

    let list = app
        .get_ok("/v1/complaints?cause=product_defect,price", &agent)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 4);
    let list = app.get_ok("/v1/complaints?cause=competitor", &agent).await;
    assert!(list["data"].as_array().unwrap().is_empty());
    app.expect_bad_queries(
        "/v1/complaints",
        &agent,
        &[
            ("cause=pricey", "cause"),
            ("cause=", "cause"),
            ("causes=price", "causes"),
        ],
    )
    .await;

    // Opened in the last 30 days: product_defect 2; then communication, service_quality
    // and price once each, in the list's order (service_quality, communication, price).
    let stats = app
        .get_ok(&format!("/v1/complaints/stats?from={}", ago(30)), &agent)
        .await;
    assert_eq!(
        stats["by_cause"],
        json!([
            {"cause": "product_defect", "n": 2},
            {"cause": "service_quality", "n": 1},
            {"cause": "communication", "n": 1},
            {"cause": "price", "n": 1},
        ])
    );
    // An empty period counts nothing.
    let stats = app
        .get_ok(
            &format!("/v1/complaints/stats?from={}&to={}", ago(200), ago(100)),
            &agent,
        )
        .await;
    assert_eq!(stats["by_cause"], json!([]));
}

#[actix_web::test]
async fn imported_losses_need_a_reason_code_too() {
    let app = TestApp::spawn().await;
    // Line 2 is lost without a code (refused, named), line 3 with one, line 4 is no loss and
    // takes none.
    let report = crate::imports::csv(
        &app,
        "",
        "external_id,name,lifecycle_stage,reason_code\n\
         x-1,Nocode,churned,\n\
         x-2,Coded,churned,competitor\n\
         x-3,Stays,stable,\n",
    )
    .await;
    assert_eq!(crate::imports::counts(&report), [3, 2, 0, 0, 1]);
    assert_eq!(
        app.count("customers WHERE external_id = 'x-1'").await,
        0,
        "{report}"
    );
    assert_eq!(
        app.count(
            "customer_lifecycle_events e JOIN customers c ON c.id = e.customer_id \
             WHERE c.external_id = 'x-2' AND e.reason_code = 'competitor'"
        )
        .await,
        1
    );
    // An update moving a customer into `dissolution` keeps the code on its entry.
    let report = crate::imports::csv(
        &app,
        "?mode=update_only",
        "external_id,lifecycle_stage,reason_code\nx-3,dissolution,service_quality\n",
    )
    .await;
    assert_eq!(crate::imports::counts(&report), [1, 0, 1, 0, 0]);
    assert_eq!(
        app.count(
            "customer_lifecycle_events e JOIN customers c ON c.id = e.customer_id \
             WHERE c.external_id = 'x-3' AND e.to_stage = 'dissolution' \
             AND e.reason_code = 'service_quality'"
        )
        .await,
        1
    );
}
