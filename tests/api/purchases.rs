//! Purchases: recording once per receipt, refunds under concurrency, lists, the timeline.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn customer(app: &TestApp) -> String {
    let c = create_customer(app, json!({"name": "Grace Hopper"})).await;
    c["id"].as_str().unwrap().to_owned()
}

fn receipt(external_ref: &str, amount: i64) -> Value {
    json!({"external_ref": external_ref, "amount": amount, "currency": "EUR", "cost": 2100,
           "occurred_at": "2026-11-20T10:00:00Z", "channel": "in_store",
           "items": [{"sku": "VASE-01", "name": " Blue vase ", "quantity": 2, "unit_price": 2450}]})
}

#[actix_web::test]
async fn a_purchase_is_recorded_once_per_receipt() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let path = format!("/v1/customers/{c}/purchases");
    let res = app
        .send(Method::POST, &path, &agent, &receipt("till-1", 4900))
        .await;
    assert_eq!(res.headers()["etag"], "\"1\"");
    let created = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(created["amount"], 4900);
    assert_eq!(created["net_amount"], 4900);
    assert_eq!(created["refunded"], 0);
    assert_eq!(created["items"][0]["name"], "Blue vase");
    assert_eq!(created["customer_id"], c.as_str());
    // The till sends it again: the same purchase, not a second one.
    let again = app
        .send(Method::POST, &path, &agent, &receipt("till-1", 4900))
        .await;
    assert_eq!(expect_json(again, StatusCode::OK).await, created);
    assert_eq!(app.count("purchases").await, 1);
    // Another purchase under the same receipt id is a conflict naming the field.
    let res = app
        .send(Method::POST, &path, &agent, &receipt("till-1", 5000))
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["external_ref"]);
    // Without a receipt id, an Idempotency-Key makes the retry safe.
    let send = || {
        app.post(&path)
            .bearer_auth(&agent)
            .header("Idempotency-Key", "web-order-9")
            .json(&json!({"amount": 1999, "currency": "EUR"}))
            .send()
    };
    let first = expect_json(send().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(
        expect_json(send().await.unwrap(), StatusCode::CREATED).await,
        first
    );
    assert_eq!(app.count("purchases").await, 2);

    let viewer = app.token(Role::Viewer);
    let got = app
        .get_ok(
            &format!("/v1/purchases/{}", created["id"].as_str().unwrap()),
            &viewer,
        )
        .await;
    // The answer to recording it also says what it earned; the purchase itself does not.
    let mut recorded = created.clone();
    assert_eq!(
        recorded.as_object_mut().unwrap().remove("loyalty"),
        Some(serde_json::json!({"points": 49, "balance": 49, "tier": null}))
    );
    assert_eq!(got, recorded);
    let list = app
        .get_ok(&format!("/v1/customers/{c}/purchases"), &viewer)
        .await;
    assert_eq!(list["data"][0]["amount"], 1999, "newest first");
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let page = app
        .get_ok(
            "/v1/purchases?sort=occurred_at&limit=1&channel=in_store",
            &viewer,
        )
        .await;
    assert_eq!(page["data"][0]["external_ref"], "till-1");
    assert_eq!(page["next_cursor"], Value::Null);
    let timeline = app
        .get_ok(
            &format!("/v1/customers/{c}/timeline?types=purchase"),
            &viewer,
        )
        .await;
    let types: Vec<&str> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["purchase", "purchase"]);
    assert_eq!(timeline["data"][1]["purchase"]["external_ref"], "till-1");
    let export = app
        .get_ok(
            &format!("/v1/customers/{c}/export"),
            &app.token(Role::Admin),
        )
        .await;
    assert_eq!(export["purchases"].as_array().unwrap().len(), 2);
    // Their points too (49 and 19 at one point per euro, oldest first); no tiers, no history.
    let points: Vec<&Value> = export["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["points"])
        .collect();
    assert_eq!(points, [&json!(49), &json!(19)]);
    assert_eq!(export["tier_history"], json!([]));
}

#[actix_web::test]
async fn bad_purchases_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let path = format!("/v1/customers/{c}/purchases");
    let base = json!({"amount": 100, "currency": "EUR"});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({}), vec!["amount"]),
        (json!({"amount": 100}), vec!["currency"]),
        (with(json!({"amount": -1})), vec!["amount"]),
        (with(json!({"amount": 12.5})), vec!["amount"]),
        (with(json!({"amount": "100"})), vec!["amount"]),
        (
            with(json!({"amount": 10_000_000_000_001_i64})),
            vec!["amount"],
        ),
        (with(json!({"currency": "eur"})), vec!["currency"]),
        (with(json!({"currency": "EURO"})), vec!["currency"]),
        (with(json!({"cost": -5})), vec!["cost"]),
        (
            with(json!({"occurred_at": "2999-01-01T00:00:00Z"})),
            vec!["occurred_at"],
        ),
        (with(json!({"channel": "pigeon"})), vec!["channel"]),
        (
            with(json!({"external_ref": "r".repeat(101)})),
            vec!["external_ref"],
        ),
        (
            with(json!({"items": [{"name": "", "quantity": 1, "unit_price": 1}]})),
            vec!["items[0].name"],
        ),
        (
            with(json!({"items": [{"name": "x", "quantity": 0, "unit_price": 1}]})),
            vec!["items[0].quantity"],
        ),
        (
            with(json!({"items": [{"name": "x", "quantity": 1, "unit_price": -1}]})),
            vec!["items[0].unit_price"],
        ),
        (
            with(json!({"items": [{"name": "x", "quantity": 1}]})),
            vec!["items[0].unit_price"],
        ),
        (
            with(
                json!({"items": [{"name": "x", "quantity": 1, "unit_price": 1, "colour": "red"}]}),
            ),
            vec!["items[0].colour"],
        ),
        (with(json!({"refunded": 0})), vec!["refunded"]),
    ];
    for (body, expected) in cases {
        let res = app.send(Method::POST, &path, &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let res = app
        .post(&path)
        .bearer_auth(&agent)
        .header("Content-Type", "application/json")
        .body("{\"amount\": 1")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app.post(&path).json(&base).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .send(Method::POST, &path, &app.token(Role::Viewer), &base)
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .send(
            Method::POST,
            "/v1/customers/0193b0a6-0000-7000-8000-000000000009/purchases",
            &agent,
            &base,
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    app.expect_bad_queries(
        "/v1/purchases",
        &agent,
        &[
            ("currency=eur", "currency"),
            ("sort=amount", "sort"),
            ("limit=500", "limit"),
        ],
    )
    .await;
    assert_eq!(app.count("purchases").await, 0);
    assert_eq!(
        app.count("audit_events").await,
        1,
        "only the customer's creation"
    );
}

#[actix_web::test]
async fn refunds_never_exceed_the_purchase_even_when_concurrent() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{c}/purchases"),
            &agent,
            &receipt("till-2", 100),
        )
        .await;
    let purchase = expect_json(res, StatusCode::CREATED).await;
    let refund = format!("/v1/purchases/{}/refund", purchase["id"].as_str().unwrap());

    let res = app
        .send(Method::POST, &refund, &agent, &json!({"amount": 0}))
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["amount"]);
    let res = app
        .send(Method::POST, &refund, &app.token(Role::Viewer), &json!({}))
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Ten refunds of 30 at once: three fit into 100, the others are refused.
    let body = json!({"amount": 30, "reason": "broken"});
    let attempts = (0..10).map(|_| app.send(Method::POST, &refund, &agent, &body));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 3);
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7
    );
    let res = app
        .send(Method::POST, &refund, &agent, &json!({"amount": 11}))
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("10"), "{p}");
    assert_eq!(fields(&p), ["amount"]);
    // The rest, in full.
    let res = app.send(Method::POST, &refund, &agent, &json!({})).await;
    let after = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        (after["refunded"].as_i64(), after["net_amount"].as_i64()),
        (Some(100), Some(0))
    );
    let res = app.send(Method::POST, &refund, &agent, &json!({})).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(app.count("purchase_refunds").await, 4);
}

#[actix_web::test]
async fn value_figures_follow_purchases_and_refunds() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let agent = app.token(Role::Agent);
    let path = format!("/v1/customers/{c}/purchases");
    let empty = app
        .get_ok(&format!("/v1/customers/{c}/value"), &agent)
        .await;
    assert_eq!(empty["currencies"], json!([]));
    let first = expect_json(
        app.send(Method::POST, &path, &agent, &receipt("till-3", 4900))
            .await,
        StatusCode::CREATED,
    )
    .await;
    for body in [
        json!({"amount": 1999, "currency": "EUR", "occurred_at": "2026-11-22T10:00:00Z"}),
        json!({"amount": 1000, "currency": "USD", "cost": 400, "occurred_at": "2026-11-21T10:00:00Z"}),
    ] {
        expect_json(
            app.send(Method::POST, &path, &agent, &body).await,
            StatusCode::CREATED,
        )
        .await;
    }
    let refund = format!("/v1/purchases/{}/refund", first["id"].as_str().unwrap());
    expect_json(
        app.send(Method::POST, &refund, &agent, &json!({"amount": 900}))
            .await,
        StatusCode::OK,
    )
    .await;
    let mut value = app
        .get_ok(
            &format!("/v1/customers/{c}/value"),
            &app.token(Role::Viewer),
        )
        .await;
    // The lifetime potential and demand contribution depend on the time of the test (the
    // purchases' dates are fixed): tests/api/analytics.rs proves them on relative dates.
    for currency in value["currencies"].as_array_mut().unwrap() {
        let currency = currency.as_object_mut().unwrap();
        for key in [
            "lifetime_potential",
            "lifetime_basis",
            "demand_contribution_percent",
            "demand_basis",
        ] {
            assert!(currency.remove(key).is_some(), "{key}");
        }
    }
    assert_eq!(
        value["currencies"],
        json!([
            {"currency": "EUR", "purchases": 2, "cumulative_sales": 5999, "refunded": 900,
             "average_order_value": 3000, "profit_contribution": 1900, "purchases_with_cost": 1,
             "first_purchase_at": "2026-11-20T10:00:00Z", "last_purchase_at": "2026-11-22T10:00:00Z"},
            {"currency": "USD", "purchases": 1, "cumulative_sales": 1000, "refunded": 0,
             "average_order_value": 1000, "profit_contribution": 600, "purchases_with_cost": 1,
             "first_purchase_at": "2026-11-21T10:00:00Z", "last_purchase_at": "2026-11-21T10:00:00Z"},
        ])
    );
    let res = app
        .get("/v1/customers/0193b0a6-0000-7000-8000-000000000009/value")
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn an_interaction_can_follow_a_purchase_of_the_same_customer() {
    let app = TestApp::spawn().await;
    let c = customer(&app).await;
    let other = customer(&app).await;
    let agent = app.token(Role::Agent);
    let purchase = expect_json(
        app.send(
            Method::POST,
            &format!("/v1/customers/{c}/purchases"),
            &agent,
            &receipt("till-5", 4900),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let complaint = json!({"channel": "in_store", "direction": "inbound", "kind": "complaint",
        "severity": "medium", "occurred_at": "2026-11-21T10:00:00Z", "purchase_id": purchase["id"]});
    let created = expect_json(
        app.send(
            Method::POST,
            &format!("/v1/customers/{c}/interactions"),
            &agent,
            &complaint,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(created["purchase_id"], purchase["id"]);
    // Another customer's purchase, or none at all, is refused.
    for purchase_id in [
        purchase["id"].clone(),
        json!("0193b0a6-0000-7000-8000-000000000009"),
    ] {
        let mut body = complaint.clone();
        body["purchase_id"] = purchase_id;
        let res = app
            .send(
                Method::POST,
                &format!("/v1/customers/{other}/interactions"),
                &agent,
                &body,
            )
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["purchase_id"]);
    }
    let about = app
        .get_ok(
            &format!(
                "/v1/interactions?purchase_id={}",
                purchase["id"].as_str().unwrap()
            ),
            &agent,
        )
        .await;
    assert_eq!(about["data"].as_array().unwrap().len(), 1);
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/interactions/{}", created["id"].as_str().unwrap()),
            &agent,
            &json!({"purchase_id": null}),
        )
        .await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["purchase_id"],
        Value::Null
    );
    assert_eq!(app.count("interactions").await, 1);
}

/// The customer's lock and the purchase's insert are sent together: when the lock finds no
/// live customer, its answer is the one given, and the inserted row goes with the rollback.
#[actix_web::test]
async fn a_deleted_or_erased_customer_buys_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let deleted = customer(&app).await;
    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{deleted}"))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let erased = customer(&app).await;
    let res = app
        .post(&format!("/v1/customers/{erased}/erase"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let before = (app.count("events").await, app.count("audit_events").await);

    let (app, agent) = (&app, &agent);
    let buy = |id: &str, receipt_id: &str| {
        let path = format!("/v1/customers/{id}/purchases");
        let body = receipt(receipt_id, 4900);
        async move { app.send(Method::POST, &path, agent, &body).await }
    };
    expect_problem(
        buy(&deleted, "till-d").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let p = expect_problem(
        buy(&erased, "till-e").await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(p["detail"], "this customer's personal data was erased");

    assert_eq!(app.count("purchases").await, 0);
    assert_eq!(app.count("loyalty_ledger").await, 0);
    assert_eq!(app.count("loyalty_accounts").await, 0);
    assert_eq!(
        (app.count("events").await, app.count("audit_events").await),
        before
    );
    // The receipt ids were not taken by the rolled-back rows.
    let live = customer(app).await;
    for receipt_id in ["till-d", "till-e"] {
        expect_json(buy(&live, receipt_id).await, StatusCode::CREATED).await;
    }
}
