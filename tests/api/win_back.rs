//! The win-back report on hand-built histories: churn rate, customers won back, win-back
//! rate and median days, per month and per reason code, the paged losses, owned-only access
//! and bad requests.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem};

/// A lifecycle entry: from, to, when (2026 unless said), code.
type Entry<'a> = (Option<&'a str>, &'a str, &'a str, Option<&'a str>);

/// Replaces a customer's lifecycle history with `entries` (oldest first) and sets its stage
/// to the last one's.
async fn set_history(app: &TestApp, id: &str, entries: &[Entry<'_>]) {
    app.sql(&format!(
        "DELETE FROM customer_lifecycle_events WHERE customer_id = '{id}'"
    ))
    .await;
    for (from, to, at, code) in entries {
        let from = from.map_or("NULL".to_owned(), |f| format!("'{f}'"));
        let code = code.map_or("NULL".to_owned(), |c| format!("'{c}'"));
        app.sql(&format!(
            "INSERT INTO customer_lifecycle_events
                 (id, customer_id, from_stage, to_stage, changed_at, actor_type, actor_id,
                  reason_code)
             VALUES (uuid_v7(), '{id}', {from}, '{to}', '{at}', 'system', 'test', {code})"
        ))
        .await;
    }
    let last = entries.last().unwrap().1;
    app.sql(&format!(
        "UPDATE customers SET lifecycle_stage = '{last}' WHERE id = '{id}'"
    ))
    .await;
}

async fn buy(app: &TestApp, id: &str, at: &str) {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{id}/purchases"),
            &app.token(Role::Agent),
            &json!({"amount": 1000, "currency": "EUR", "occurred_at": at}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
}

/// The hand-built customers; returns (the owned-only manager's token, ids by name).
async fn scene(app: &TestApp) -> (String, Vec<(String, String)>) {
    let (owner_id, owner) = app.user_with_access(Role::Manager, "owned").await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D", "E", "F", "G"] {
        let mut body = json!({"name": name});
        if name == "G" {
            body["account_manager_id"] = json!(owner_id);
        }
        let c = create_customer(app, body).await;
        ids.push((name.to_owned(), c["id"].as_str().unwrap().to_owned()));
    }
    let id = |n: &str| ids.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let since = "2025-06-01T12:00:00Z";
    // A: lost for price on Jan 10, buys again Jan 25 (won back after 15 days), returns to
    // stable Feb 1; lost to a competitor Mar 5, back to stable Mar 25 (20 days).
    set_history(
        app,
        &id("A"),
        &[
            (None, "stable", since, None),
            (
                Some("stable"),
                "churned",
                "2026-01-10T12:00:00Z",
                Some("price"),
            ),
            (Some("churned"), "stable", "2026-02-01T12:00:00Z", None),
            (
                Some("stable"),
                "churned",
                "2026-03-05T12:00:00Z",
                Some("competitor"),
            ),
            (Some("churned"), "stable", "2026-03-25T12:00:00Z", None),
        ],
    )
    .await;
    buy(app, &id("A"), "2026-01-25T12:00:00Z").await;
    // B: lost to a competitor Jan 20, never back.
    set_history(
        app,
        &id("B"),
        &[
            (None, "stable", since, None),
            (
                Some("stable"),
                "churned",
                "2026-01-20T12:00:00Z",
                Some("competitor"),
            ),
        ],
    )
    .await;
    // C: stable throughout. D: a prospect (not active).
    set_history(app, &id("C"), &[(None, "stable", since, None)]).await;
    set_history(app, &id("D"), &[(None, "prospect", since, None)]).await;
    // E: lost in December (before the period), buys Jan 5: that win-back belongs to
    // December's loss, outside every period.
    set_history(
        app,
        &id("E"),
        &[
            (None, "stable", since, None),
            (
                Some("stable"),
                "churned",
                "2025-12-01T12:00:00Z",
                Some("price"),
            ),
        ],
    )
    .await;
    buy(app, &id("E"), "2026-01-05T12:00:00Z").await;
    // F: an acquaintance from Jan 15.
    set_history(
        app,
        &id("F"),
        &[(None, "acquaintance", "2026-01-15T12:00:00Z", None)],
    )
    .await;
    // G (the owned-only manager's): lost for service quality Mar 10, buys Mar 15 (5 days),
    // stays in `churned`.
    set_history(
        app,
        &id("G"),
        &[
            (None, "stable", since, None),
            (
                Some("stable"),
                "churned",
                "2026-03-10T12:00:00Z",
                Some("service_quality"),
            ),
        ],
    )
    .await;
    buy(app, &id("G"), "2026-03-15T12:00:00Z").await;
    (owner, ids)
}

fn month(
    (m, from, to): (&str, &str, &str),
    active: i64,
    lost: i64,
    won: i64,
    rates: (Value, Value),
    median: Value,
) -> Value {
    json!({"month": m, "reason_code": null, "from": from, "to": to, "active_at_start": active,
           "lost": lost, "churn_rate": rates.0, "won_back": won, "win_back_rate": rates.1,
           "median_days_to_win_back": median})
}

#[actix_web::test]
async fn the_leaking_bucket_per_month() {
    let app = TestApp::spawn().await;
    let (owner, ids) = scene(&app).await;
    let name_of = |id: &Value| {
        ids.iter()
            .find(|(_, v)| v == id.as_str().unwrap())
            .unwrap()
            .0
            .clone()
    };
    let viewer = app.token(Role::Viewer);
    let report = app
        .get_ok(
            "/v1/analytics/win-back?from=2026-01-01&to=2026-04-30&limit=3",
            &viewer,
        )
        .await;
    assert_eq!(report["group_by"], "month");
    assert_eq!(
        report["periods"],
        json!([
            // Active Jan 1: A, B, C, G (stable; D is a prospect, E churned, F not yet) = 4.
            // Lost: A (Jan 10), B (Jan 20) = 2; 2 ÷ 4 = 0.5. Won back: A (bought Jan 25,
            // 15 days) = 1; 1 ÷ 2 = 0.5; median of [15] = 15.
            month(
                ("2026-01", "2026-01-01", "2026-01-31"),
                4,
                2,
                1,
                (json!(0.5), json!(0.5)),
                json!(15.0)
            ),
            // Active Feb 1: C, F, G (A is churned until Feb 1 12:00, B churned) = 3.
            // An empty month: 0 ÷ 3 = 0; nothing to win back.
            month(
                ("2026-02", "2026-02-01", "2026-02-28"),
                3,
                0,
                0,
                (json!(0.0), Value::Null),
                Value::Null
            ),
            // Active Mar 1: A (back since Feb 1), C, F, G = 4. Lost: A (Mar 5), G (Mar 10) = 2;
            // 2 ÷ 4 = 0.5, a tie with January. Won back: A (Mar 25, 20 days), G (bought
            // Mar 15, 5 days) = 2; 2 ÷ 2 = 1; median of [5, 20] = 12.5.
            month(
                ("2026-03", "2026-03-01", "2026-03-31"),
                4,
                2,
                2,
                (json!(0.5), json!(1.0)),
                json!(12.5)
            ),
            // Active Apr 1: A, C, F (G stays churned though it bought) = 3; empty.
            month(
                ("2026-04", "2026-04-01", "2026-04-30"),
                3,
                0,
                0,
                (json!(0.0), Value::Null),
                Value::Null
            ),
        ])
    );
    // The losses, oldest first, three a page: A (Jan 10), B (Jan 20), A (Mar 5); then G.
    let page: Vec<(String, Value, Value)> = report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                name_of(&l["customer_id"]),
                l["reason_code"].clone(),
                l["days_to_win_back"].clone(),
            )
        })
        .collect();
    assert_eq!(
        page,
        [
            ("A".to_owned(), json!("price"), json!(15.0)),
            ("B".to_owned(), json!("competitor"), Value::Null),
            ("A".to_owned(), json!("competitor"), json!(20.0)),
        ]
    );
    assert_eq!(report["data"][0]["churned_at"], "2026-01-10T12:00:00Z");
    assert_eq!(report["data"][0]["won_back_at"], "2026-01-25T12:00:00Z");
    let cursor = report["next_cursor"].as_str().unwrap();
    let next = app
        .get_ok(
            &format!(
                "/v1/analytics/win-back?from=2026-01-01&to=2026-04-30&limit=3&cursor={cursor}"
            ),
            &viewer,
        )
        .await;
    assert_eq!(
        next["periods"], report["periods"],
        "the same figures on every page"
    );
    assert_eq!(next["data"].as_array().unwrap().len(), 1);
    assert_eq!(name_of(&next["data"][0]["customer_id"]), "G");
    assert_eq!(next["data"][0]["won_back_at"], "2026-03-15T12:00:00Z");
    assert_eq!(next["next_cursor"], Value::Null);

    // A period cut inside months: Jan 15 – Feb 10. Active Jan 15 00:00: A is churned
    // (Jan 10), so B, C, G = 3; lost B = 1, 1 ÷ 3 = 0.3333. Feb 1–10: as above.
    let cut = app
        .get_ok(
            "/v1/analytics/win-back?from=2026-01-15&to=2026-02-10",
            &viewer,
        )
        .await;
    assert_eq!(
        cut["periods"],
        json!([
            month(
                ("2026-01", "2026-01-15", "2026-01-31"),
                3,
                1,
                0,
                (json!(0.3333), json!(0.0)),
                Value::Null
            ),
            month(
                ("2026-02", "2026-02-01", "2026-02-10"),
                3,
                0,
                0,
                (json!(0.0), Value::Null),
                Value::Null
            ),
        ])
    );

    // The owned-only manager sees G only: active at Jan 1 and Mar 1; lost in March,
    // won back after 5 days.
    let mine = app
        .get_ok(
            "/v1/analytics/win-back?from=2026-01-01&to=2026-03-31",
            &owner,
        )
        .await;
    assert_eq!(
        mine["periods"],
        json!([
            month(
                ("2026-01", "2026-01-01", "2026-01-31"),
                1,
                0,
                0,
                (json!(0.0), Value::Null),
                Value::Null
            ),
            month(
                ("2026-02", "2026-02-01", "2026-02-28"),
                1,
                0,
                0,
                (json!(0.0), Value::Null),
                Value::Null
            ),
            month(
                ("2026-03", "2026-03-01", "2026-03-31"),
                1,
                1,
                1,
                (json!(1.0), json!(1.0)),
                json!(5.0)
            ),
        ])
    );
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn the_leaking_bucket_per_reason_code() {
    let app = TestApp::spawn().await;
    scene(&app).await;
    let report = app
        .get_ok(
            "/v1/analytics/win-back?from=2026-01-01&to=2026-04-30&group_by=reason_code",
            &app.token(Role::Viewer),
        )
        .await;
    let code = |c: &str, lost: i64, won: i64, rates: (Value, Value), median: Value| {
        json!({"month": null, "reason_code": c, "from": "2026-01-01", "to": "2026-04-30",
               "active_at_start": 4, "lost": lost, "churn_rate": rates.0, "won_back": won,
               "win_back_rate": rates.1, "median_days_to_win_back": median})
    };
    let none = |c: &str| code(c, 0, 0, (json!(0.0), Value::Null), Value::Null);
    // Active Jan 1: 4. service_quality: G, won back in 5 days: 1 ÷ 4 = 0.25, 1 ÷ 1.
    // price: A (Jan 10), won back in 15 days. competitor: B (never), A (Mar 5, 20 days):
    // 2 ÷ 4 = 0.5, 1 ÷ 2 = 0.5, median of [20] = 20.
    assert_eq!(
        report["periods"],
        json!([
            code(
                "service_quality",
                1,
                1,
                (json!(0.25), json!(1.0)),
                json!(5.0)
            ),
            none("product_defect"),
            none("communication"),
            code("price", 1, 1, (json!(0.25), json!(1.0)), json!(15.0)),
            code("competitor", 2, 1, (json!(0.5), json!(0.5)), json!(20.0)),
            none("moved_away"),
            none("other"),
        ])
    );
    assert_eq!(report["data"].as_array().unwrap().len(), 4);

    // An empty period: nobody lost; every code at 0.
    let empty = app
        .get_ok(
            "/v1/analytics/win-back?from=2026-02-02&to=2026-02-20&group_by=reason_code",
            &app.token(Role::Viewer),
        )
        .await;
    let periods = empty["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 7);
    assert!(
        periods
            .iter()
            .all(|p| p["lost"] == 0 && p["churn_rate"] == 0.0)
    );
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn bad_win_back_requests_are_refused() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    app.expect_bad_queries(
        "/v1/analytics/win-back",
        &viewer,
        &[
            ("to=2026-01-31", "from"),
            ("from=2026-01-01", "to"),
            ("from=2026-02-01&to=2026-01-31", "from"),
            ("from=2026-13-01&to=2026-12-31", "from"),
            ("from=yesterday&to=2026-12-31", "from"),
            ("from=2000-01-01&to=2026-12-31", "from"),
            ("from=2026-01-01&to=2026-12-31&group_by=week", "group_by"),
            ("from=2026-01-01&to=2026-12-31&limit=0", "limit"),
            ("from=2026-01-01&to=2026-12-31&limit=x", "limit"),
            ("from=2026-01-01&to=2026-12-31&cursor=nonsense", "cursor"),
            ("from=2026-01-01&to=2026-12-31&colour=red", "colour"),
        ],
    )
    .await;
    let path = "/v1/analytics/win-back?from=2026-01-01&to=2026-12-31";
    let res = app.get(path).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .get(path)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let client = app.client_token("Shop", &["customers:read"]).await;
    let res = app.get(path).bearer_auth(&client).send().await.unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .send(Method::POST, "/v1/analytics/win-back", &viewer, &json!({}))
        .await;
    expect_problem(res, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    // Reading writes nothing.
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'customer'")
            .await,
        0
    );
}
