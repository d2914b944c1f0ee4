//! The lifecycle as the course teaches it: the stage guide, and a prospect's first purchase
//! moving it to `acquaintance` unless its stage was set by hand.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

#[actix_web::test]
async fn the_stage_guide_names_every_stage_as_the_course_does() {
    let app = TestApp::spawn().await;
    // Any signed-in caller: every role, and a client holding an unrelated scope.
    let client = app.client_token("till", &["purchases:write"]).await;
    let mut answers = Vec::new();
    for token in [
        app.token(Role::Viewer),
        app.token(Role::Agent),
        app.token(Role::Manager),
        app.token(Role::Admin),
        client,
    ] {
        answers.push(app.get_ok("/v1/lifecycle/stages", &token).await);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    let stages = answers[0]["data"].as_array().unwrap();
    let keys: Vec<(&str, u64, &Value)> = stages
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap(),
                s["position"].as_u64().unwrap(),
                &s["course_name"],
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("prospect", 1, &Value::Null),
            ("acquaintance", 2, &json!("初识期")),
            ("exploration", 3, &json!("矜持期")),
            ("stable", 4, &json!("平稳期")),
            ("commitment", 5, &json!("稳固期")),
            ("dissolution", 6, &json!("思异期")),
            ("churned", 7, &Value::Null),
        ]
    );
    // The course's focus, as DOMAIN.md gives it, for its first three stages; none for the
    // other two it names, nor for the stages it does not name.
    assert_eq!(
        stages[1]["course_focus"],
        json!([
            "a rich choice of brands",
            "product and service quality",
            "a shared view of the value of goods, service and price",
            "free non-material extras"
        ])
    );
    assert_eq!(
        stages[2]["course_focus"],
        json!([
            "a rich choice of brands",
            "quality",
            "free non-material extras"
        ])
    );
    assert_eq!(
        stages[3]["course_focus"],
        json!([
            "a rich choice of brands",
            "indirect interaction and chances of contact"
        ])
    );
    for i in [0, 4, 5, 6] {
        assert_eq!(
            stages[i]["course_focus"],
            Value::Null,
            "{}",
            stages[i]["key"]
        );
    }
    // Rapport's own focus and a description for every stage.
    assert_eq!(
        stages[0]["focus"],
        json!(["qualify the prospect: money, authority, need (MAN)"])
    );
    assert_eq!(
        stages[5]["focus"],
        json!(["find the cause", "win the customer back before they leave"])
    );
    for stage in stages {
        assert!(!stage["description"].as_str().unwrap().is_empty());
        assert!(!stage["focus"].as_array().unwrap().is_empty());
    }
}

#[actix_web::test]
async fn the_stage_guide_refuses_strangers_and_parameters() {
    let app = TestApp::spawn().await;
    let res = app.get("/v1/lifecycle/stages").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .get("/v1/lifecycle/stages")
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    app.expect_bad_queries(
        "/v1/lifecycle/stages",
        &app.token(Role::Viewer),
        &[("stage=prospect", "stage"), ("limit=1", "limit")],
    )
    .await;
    // It is read-only.
    let res = app
        .send(
            Method::POST,
            "/v1/lifecycle/stages",
            &app.token(Role::Admin),
            &json!({}),
        )
        .await;
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
}

async fn buy(app: &TestApp, customer: &str, external_ref: &str) -> Value {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/purchases"),
            &app.token(Role::Agent),
            &json!({"external_ref": external_ref, "amount": 1000, "currency": "EUR"}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await
}

async fn history(app: &TestApp, customer: &str) -> Vec<Value> {
    app.get_ok(
        &format!("/v1/customers/{customer}/lifecycle"),
        &app.token(Role::Viewer),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn stage(app: &TestApp, customer: &str) -> Value {
    app.get_ok(
        &format!("/v1/customers/{customer}"),
        &app.token(Role::Viewer),
    )
    .await["lifecycle_stage"]
        .clone()
}

#[actix_web::test]
async fn a_prospects_first_purchase_makes_it_an_acquaintance() {
    let app = TestApp::spawn().await;
    let c = create_customer(&app, json!({"name": "Grace Hopper"})).await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(c["lifecycle_stage"], "prospect");
    let purchase = buy(&app, id, "till-1").await;
    let customer = app
        .get_ok(&format!("/v1/customers/{id}"), &app.token(Role::Viewer))
        .await;
    assert_eq!(customer["lifecycle_stage"], "acquaintance");
    assert_eq!(
        customer["version"], 2,
        "the move is an update of the customer"
    );
    let entries = history(&app, id).await;
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["from"], "prospect");
    assert_eq!(entries[1]["to"], "acquaintance");
    assert_eq!(
        entries[1]["reason"],
        format!("first purchase {}", purchase["id"].as_str().unwrap())
    );
    // By whoever recorded the purchase.
    assert_eq!(entries[1]["actor_type"], "service");
    assert_eq!(entries[1]["actor_id"], "test-agent");
    // Audited as a customer update, and announced after the purchase (and its points).
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{id}' AND action = 'customer.updated' \
             AND changes -> 'lifecycle_stage' = '{{\"from\": \"prospect\", \"to\": \"acquaintance\"}}'"
        ))
        .await,
        1
    );
    let feed: Vec<Value> = app
        .feed("", "type <> 'webhook.ping'")
        .await
        .into_iter()
        .filter(|e| e["data"]["id"] == id || e["data"]["id"] == purchase["id"])
        .collect();
    let types: Vec<&str> = feed.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "customer.created",
            "purchase.created",
            "customer.updated",
            "customer.lifecycle_changed"
        ]
    );
    let changed = feed.last().unwrap();
    assert_eq!(changed["data"]["lifecycle_stage"], "acquaintance");
    assert_eq!(changed["previous"], json!({"lifecycle_stage": "prospect"}));

    // Staff move it back by hand; its second purchase moves nothing.
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            &app.token(Role::Agent),
            &json!({"lifecycle_stage": "prospect", "lifecycle_reason": "a trial, not a sale"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    buy(&app, id, "till-2").await;
    assert_eq!(history(&app, id).await.len(), 3);
    assert_eq!(stage(&app, id).await, "prospect");
}

#[actix_web::test]
async fn a_stage_set_by_hand_is_kept() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    // Created in another stage: a purchase does not touch it.
    let stable =
        create_customer(&app, json!({"name": "Stable", "lifecycle_stage": "stable"})).await;
    let stable = stable["id"].as_str().unwrap();
    buy(&app, stable, "s-1").await;
    assert_eq!(stage(&app, stable).await, "stable");
    assert_eq!(history(&app, stable).await.len(), 1);

    // Moved back to `prospect` by hand before any purchase: the choice stands.
    let back = create_customer(&app, json!({"name": "Back"})).await;
    let back = back["id"].as_str().unwrap();
    for to in ["exploration", "prospect"] {
        let res = app
            .send(
                Method::PATCH,
                &format!("/v1/customers/{back}"),
                &agent,
                &json!({"lifecycle_stage": to, "lifecycle_reason": "by hand"}),
            )
            .await;
        expect_json(res, StatusCode::OK).await;
    }
    buy(&app, back, "b-1").await;
    assert_eq!(stage(&app, back).await, "prospect");
    assert_eq!(history(&app, back).await.len(), 3);

    // Created as a prospect explicitly, it became one at creation: its first purchase moves it.
    let explicit = create_customer(
        &app,
        json!({"name": "Explicit", "lifecycle_stage": "prospect"}),
    )
    .await;
    let explicit = explicit["id"].as_str().unwrap();
    buy(&app, explicit, "e-1").await;
    assert_eq!(stage(&app, explicit).await, "acquaintance");

    // A receipt sent again records nothing and moves nothing; a refused purchase neither.
    let fresh = create_customer(&app, json!({"name": "Fresh"})).await;
    let fresh = fresh["id"].as_str().unwrap();
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{fresh}/purchases"),
            &agent,
            &json!({"external_ref": "s-1", "amount": 1000, "currency": "EUR"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["external_ref"]);
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{fresh}/purchases"),
            &agent,
            &json!({"amount": -5, "currency": "EUR"}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(stage(&app, fresh).await, "prospect");
    assert_eq!(history(&app, fresh).await.len(), 1);
}

#[actix_web::test]
async fn concurrent_first_purchases_move_a_prospect_once() {
    let app = TestApp::spawn().await;
    let c = create_customer(&app, json!({"name": "Rush"})).await;
    let id = c["id"].as_str().unwrap();
    let sends = (0..4).map(|i| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                &format!("/v1/customers/{id}/purchases"),
                &app.token(Role::Agent),
                &json!({"external_ref": format!("rush-{i}"), "amount": 1000, "currency": "EUR"}),
            )
            .await
        }
    });
    for res in futures_util::future::join_all(sends).await {
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    assert_eq!(stage(&app, id).await, "acquaintance");
    let entries = history(&app, id).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        app.count(&format!(
            "events WHERE object_id = '{id}' AND type = 'customer.lifecycle_changed'"
        ))
        .await,
        1
    );
}
