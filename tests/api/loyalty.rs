//! The loyalty programme's configuration: the programme and its tiers.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

fn program() -> Value {
    json!({"currency": "EUR",
           "earn": {"points": 1, "per_amount": 100, "rounding": "nearest"},
           "expiry": {"policy": "after_days", "days": 365},
           "qualification": {"basis": "amount_spent", "months": 12},
           "downgrade": {"policy": "grace_period", "grace_days": 30}})
}

fn tiers() -> Value {
    json!({"tiers": [
        {"key": "standard", "name": "Standard", "threshold": 0, "multiplier_percent": 100, "benefits": []},
        {"key": "silver", "name": "Silver", "threshold": 50000, "multiplier_percent": 125, "benefits": ["free delivery"]},
        {"key": "gold", "name": " Gold ", "threshold": 200000, "multiplier_percent": 150,
         "benefits": ["free delivery", "birthday voucher"]},
    ]})
}

#[actix_web::test]
async fn admins_configure_the_programme_and_its_tiers_under_if_match() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let viewer = app.token(Role::Viewer);
    let initial = app.get_ok("/v1/loyalty/program", &viewer).await;
    assert_eq!(initial["currency"], "EUR");
    assert_eq!(initial["expiry"], json!({"policy": "never", "days": null}));
    assert_eq!(initial["version"], 1);

    let res = app
        .request(Method::PUT, "/v1/loyalty/program")
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&program())
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    let changed = expect_json(res, StatusCode::OK).await;
    assert_eq!(changed["earn"]["rounding"], "nearest");
    assert_eq!(changed["downgrade"]["grace_days"], 30);
    // The same configuration again changes nothing; a stale version is 412.
    let same = app
        .send(Method::PUT, "/v1/loyalty/program", &admin, &program())
        .await;
    assert_eq!(expect_json(same, StatusCode::OK).await["version"], 2);
    let res = app
        .request(Method::PUT, "/v1/loyalty/program")
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&program())
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;

    let res = app
        .send(Method::PUT, "/v1/loyalty/tiers", &admin, &tiers())
        .await;
    assert_eq!(
        res.headers()["etag"],
        "\"3\"",
        "tiers share the configuration's version"
    );
    let set = expect_json(res, StatusCode::OK).await;
    assert_eq!(set["tiers"][2]["name"], "Gold");
    let got = app.get_ok("/v1/loyalty/tiers", &viewer).await;
    assert_eq!(got, set);
    let keys: Vec<&str> = got["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["standard", "silver", "gold"]);

    let audit = app
        .get_ok("/v1/audit?entity_type=loyalty_program", &admin)
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["loyalty.tiers_changed", "loyalty.program_changed"]
    );
    assert_eq!(
        audit["data"][1]["changes"]["earn"]["to"]["rounding"],
        "nearest"
    );

    // Only admins change it.
    for role in [Role::Manager, Role::Agent, Role::Viewer] {
        let res = app
            .send(Method::PUT, "/v1/loyalty/tiers", &app.token(role), &tiers())
            .await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = app.get("/v1/loyalty/program").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn bad_configurations_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let with = |path: &[&str], value: Value| {
        let mut body = program();
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (with(&["currency"], json!("euro")), vec!["currency"]),
        (with(&["earn", "points"], json!(0)), vec!["earn.points"]),
        (
            with(&["earn", "per_amount"], json!(-100)),
            vec!["earn.per_amount"],
        ),
        (
            with(&["earn", "rounding"], json!("banker")),
            vec!["earn.rounding"],
        ),
        (with(&["expiry", "days"], json!(null)), vec!["expiry.days"]),
        (
            with(&["expiry", "policy"], json!("never")),
            vec!["expiry.days"],
        ),
        (
            with(&["qualification", "months"], json!(0)),
            vec!["qualification.months"],
        ),
        (
            with(&["qualification", "basis"], json!("visits")),
            vec!["qualification.basis"],
        ),
        (
            with(&["downgrade", "grace_days"], json!(400)),
            vec!["downgrade.grace_days"],
        ),
        (
            with(&["downgrade", "policy"], json!("never")),
            vec!["downgrade.grace_days"],
        ),
        (with(&["earn", "bonus"], json!(1)), vec!["earn.bonus"]),
        (json!({"currency": "EUR"}), vec!["earn"]),
    ];
    for (body, expected) in cases {
        let res = app
            .send(Method::PUT, "/v1/loyalty/program", &admin, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let tier = |key: &str, threshold: i64| json!({"key": key, "name": key, "threshold": threshold, "multiplier_percent": 100, "benefits": []});
    let tier_cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"tiers": [tier("silver", 10)]}),
            vec!["tiers[0].threshold"],
        ),
        (
            json!({"tiers": [tier("a", 0), tier("b", 0)]}),
            vec!["tiers[1].threshold"],
        ),
        (
            json!({"tiers": [tier("a", 0), tier("a", 5)]}),
            vec!["tiers[1].key"],
        ),
        (json!({"tiers": [tier("Gold", 0)]}), vec!["tiers[0].key"]),
        (
            json!({"tiers": [{"key": "a", "name": "", "threshold": 0, "multiplier_percent": 100, "benefits": []}]}),
            vec!["tiers[0].name"],
        ),
        (
            json!({"tiers": [{"key": "a", "name": "A", "threshold": 0, "multiplier_percent": 1001, "benefits": []}]}),
            vec!["tiers[0].multiplier_percent"],
        ),
        (
            json!({"tiers": [{"key": "a", "name": "A", "threshold": 0, "multiplier_percent": 100, "benefits": [""]}]}),
            vec!["tiers[0].benefits[0]"],
        ),
        (
            json!({"tiers": (0..21).map(|i| tier(&format!("t{i}"), i * 10)).collect::<Vec<_>>()}),
            vec!["tiers"],
        ),
        (json!({"tiers": [tier("a", 0)], "extra": 1}), vec!["extra"]),
    ];
    for (body, expected) in tier_cases {
        let res = app
            .send(Method::PUT, "/v1/loyalty/tiers", &admin, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let res = app
        .request(Method::PUT, "/v1/loyalty/program")
        .bearer_auth(&admin)
        .header("Content-Type", "application/json")
        .body("{\"currency\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    assert_eq!(
        app.get_ok("/v1/loyalty/program", &admin).await["version"],
        1
    );
    assert_eq!(app.count("loyalty_tiers").await, 0);
    assert_eq!(app.count("audit_events").await, 0);
}
