//! What a merge refreshes beyond the moved rows: the survivor's loyalty tier (re-evaluated
//! from the summed points, undone by an unmerge), the analytics figures computed from moved
//! rows (forgotten until the next computation, which then counts both sides), and the
//! tombstones leaving the segments' counts.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json};

async fn create(app: &TestApp, body: Value) -> String {
    crate::customers::create(app, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn buy(app: &TestApp, customer: &str, amount: i64) {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/purchases"),
            &app.token(Role::Agent),
            &json!({"amount": amount, "currency": "EUR"}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
}

async fn tier(app: &TestApp, customer: &str) -> Value {
    app.get_ok(
        &format!("/v1/customers/{customer}/loyalty"),
        &app.token(Role::Admin),
    )
    .await["tier"]["key"]
        .clone()
}

/// The customers the segments count per value tier, summed over the tiers.
async fn segment_customers(app: &TestApp) -> i64 {
    let seg = app
        .get_ok("/v1/analytics/segments?live=true", &app.token(Role::Viewer))
        .await;
    seg["value_tier"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_i64().unwrap())
        .sum()
}

#[actix_web::test]
async fn a_merge_raises_the_tier_and_refreshes_the_figures() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/program",
            &admin,
            &json!({"currency": "EUR",
                    "earn": {"points": 1, "per_amount": 100, "rounding": "down"},
                    "expiry": {"policy": "never"},
                    "qualification": {"basis": "points_earned", "months": 12},
                    "downgrade": {"policy": "never"}}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/tiers",
            &admin,
            &json!({"tiers": [
                {"key": "standard", "name": "Standard", "threshold": 0,
                 "multiplier_percent": 100, "benefits": []},
                {"key": "silver", "name": "Silver", "threshold": 100,
                 "multiplier_percent": 100, "benefits": []}]}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let survivor = create(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada@example.com"}),
    )
    .await;
    let other = create(
        &app,
        json!({"name": "Ada King", "email": "a.da@example.com"}),
    )
    .await;
    let bystander = create(&app, json!({"name": "Grace Hopper"})).await;
    // 60 and 50 points: each standard, 110 together reach silver (100).
    buy(&app, &survivor, 6000).await;
    buy(&app, &other, 5000).await;
    buy(&app, &bystander, 1000).await;
    assert_eq!(tier(&app, &survivor).await, "standard");
    assert_eq!(tier(&app, &other).await, "standard");

    crate::analytics::recompute(&app).await;
    assert_eq!(segment_customers(&app).await, 3);
    assert_eq!(app.count("customer_analytics").await, 3);

    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{survivor}/merge"),
            &admin,
            &json!({"merge_ids": [other]}),
        )
        .await;
    let report = expect_json(res, StatusCode::OK).await;
    assert_eq!(report["moved"]["loyalty_points"], 50);
    assert_eq!(report["tier_raised_to"], "silver");
    assert_eq!(tier(&app, &survivor).await, "silver");
    let standing = app
        .get_ok(&format!("/v1/customers/{survivor}/loyalty"), &admin)
        .await;
    assert_eq!(standing["balance"], 110);
    // The tier move is in the survivor's history and announced.
    assert_eq!(
        app.count(&format!(
            "loyalty_tier_changes WHERE customer_id = '{survivor}' AND to_tier = 'silver'"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count(&format!(
            "events WHERE type = 'loyalty.tier_changed' AND object_id = '{survivor}' \
             AND previous -> 'tier' ->> 'key' = 'standard'"
        ))
        .await,
        1
    );
    // The figures of both sides were computed from rows that moved: forgotten; the
    // bystander's stay. The tombstone leaves the live segments at once (the kept
    // breakdown, as of the last computation, at the next one).
    assert_eq!(app.count("customer_analytics").await, 1);
    assert_eq!(
        app.count(&format!(
            "customer_analytics WHERE customer_id = '{bystander}'"
        ))
        .await,
        1
    );
    assert_eq!(segment_customers(&app).await, 2);
    // The next computation counts the survivor with both sides' purchases.
    crate::analytics::recompute(&app).await;
    assert_eq!(
        app.count(&format!(
            "customer_analytics WHERE customer_id = '{survivor}' AND value = 11000 \
             AND purchases = 2"
        ))
        .await,
        1
    );
    assert_eq!(app.count("customer_analytics").await, 2);
    assert_eq!(segment_customers(&app).await, 2);

    // Unmerge: the tier move is undone with the points, the figures forgotten again.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{survivor}/unmerge"),
            &admin,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(tier(&app, &survivor).await, "standard");
    assert_eq!(tier(&app, &other).await, "standard");
    assert_eq!(
        app.count(&format!(
            "loyalty_tier_changes WHERE customer_id = '{survivor}' AND to_tier = 'silver'"
        ))
        .await,
        0
    );
    assert_eq!(app.count("customer_analytics").await, 1);
    assert_eq!(segment_customers(&app).await, 3);
    crate::analytics::recompute(&app).await;
    assert_eq!(
        app.count(&format!(
            "customer_analytics WHERE customer_id = '{other}' AND value = 5000 AND purchases = 1"
        ))
        .await,
        1
    );
}
