//! Customer value analytics: settings, the set-wise computation (tiers, value matrix, RFM,
//! churn risk), segments, Pareto and its export, with exact expected figures on small
//! hand-built data sets.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};
use rapport::auth::Role;

pub(crate) async fn customer(app: &TestApp, name: &str, stage: &str) -> String {
    let c = crate::customers::create(app, json!({"name": name, "lifecycle_stage": stage})).await;
    c["id"].as_str().unwrap().to_owned()
}

/// A purchase `days` ago; its id.
pub(crate) async fn purchase(
    app: &TestApp,
    customer: &str,
    amount: i64,
    days: f64,
    extra: Value,
) -> String {
    let at = Utc::now() - Duration::milliseconds((days * 86_400_000.0) as i64);
    let mut body = json!({"amount": amount, "currency": "EUR", "occurred_at": at});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/purchases"),
            &app.token(Role::Agent),
            &body,
        )
        .await;
    expect_json(res, StatusCode::CREATED).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// An interaction `days` ago (a complaint when `complaint`).
async fn contact(app: &TestApp, customer: &str, days: i64, complaint: bool) {
    let mut body = json!({
        "channel": "phone", "direction": "inbound", "kind": "inquiry",
        "occurred_at": Utc::now() - Duration::days(days),
    });
    if complaint {
        body["kind"] = json!("complaint");
        body["severity"] = json!("high");
    }
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/interactions"),
            &app.token(Role::Agent),
            &body,
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
}

/// A survey answer `days` ago.
async fn answer(app: &TestApp, survey: &str, customer: &str, answers: Value, days: i64) {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/surveys/{survey}/responses"),
            &app.token(Role::Agent),
            &json!({"customer_id": customer, "answers": answers,
                    "submitted_at": Utc::now() - Duration::days(days)}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
}

pub(crate) fn settings_body(overrides: Value) -> Value {
    let mut body = json!({
        "currency": "EUR", "measure": "revenue", "window_days": 365,
        "key_percent": 10, "development_percent": 30, "maintenance_percent": 60,
        "high_value_percent": 30, "churn_threshold": 50, "contact_days": 90,
        "move_to_dissolution": false,
    });
    if let (Some(body), Some(o)) = (body.as_object_mut(), overrides.as_object()) {
        body.extend(o.clone());
    }
    body
}

pub(crate) async fn put_settings(app: &TestApp, body: Value) -> Value {
    let current = app
        .get_ok("/v1/analytics/settings", &app.token(Role::Admin))
        .await;
    let res = app
        .request(Method::PUT, "/v1/analytics/settings")
        .bearer_auth(app.token(Role::Admin))
        .header("If-Match", format!("\"{}\"", current["version"]))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await
}

pub(crate) async fn recompute(app: &TestApp) -> Value {
    let res = app
        .send(
            Method::POST,
            "/v1/analytics/recompute",
            &app.token(Role::Admin),
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await
}

/// The customers the list gives for a query, by name, sorted.
pub(crate) async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let page = app
        .get_ok(
            &format!("/v1/customers?{query}&limit=200"),
            &app.token(Role::Viewer),
        )
        .await;
    let mut names: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// A customer's expected figures: name, value, purchases, tier, future value, class, RFM
/// code, churn score and reasons.
type Expected = (
    &'static str,
    i64,
    i64,
    &'static str,
    i64,
    &'static str,
    Option<&'static str>,
    i64,
    &'static [&'static str],
);

/// The data set of the module docs: ten customers, A to K (no I).
struct Set {
    ids: std::collections::HashMap<&'static str, String>,
}

impl Set {
    fn id(&self, name: &str) -> &str {
        &self.ids[name]
    }

    async fn build(app: &TestApp) -> Set {
        let mut ids = std::collections::HashMap::new();
        for (name, stage) in [
            ("A", "commitment"),
            ("B", "stable"),
            ("C", "stable"),
            ("D", "stable"),
            ("E", "stable"),
            ("F", "stable"),
            ("G", "stable"),
            ("H", "prospect"),
            ("J", "stable"),
            ("K", "stable"),
        ] {
            ids.insert(name, customer(app, name, stage).await);
        }
        let set = Set { ids };
        let id = |n: &str| set.id(n).to_owned();
        for (name, amount, days) in [
            ("A", 10_000, 200.0),
            ("A", 10_000, 100.0),
            ("A", 10_000, 10.0),
            ("B", 10_000, 250.0),
            ("B", 10_000, 20.0),
            ("C", 10_000, 40.0),
            ("C", 10_000, 30.0),
            ("D", 15_000, 290.0),
            ("E", 5_000, 6.0),
            ("E", 5_000, 5.0),
            ("F", 3_000, 400.0),
            ("K", 1_000, 700.0),
            ("K", 1_000, 600.0),
            ("K", 1_000, 500.0),
            ("K", 1_000, 400.0),
            ("K", 1_000, 300.0),
        ] {
            purchase(app, &id(name), amount, days, json!({})).await;
        }
        // Not in the analytics' currency: G never bought in EUR.
        purchase(app, &id("G"), 2_000, 50.0, json!({"currency": "USD"})).await;
        contact(app, &id("A"), 5, false).await;
        contact(app, &id("B"), 100, false).await;
        contact(app, &id("C"), 0, true).await;
        contact(app, &id("C"), 0, true).await;
        contact(app, &id("E"), 1, false).await;
        contact(app, &id("J"), 2, false).await;
        let survey = crate::surveys::active_survey(
            app,
            json!({"questions": [
                {"key": "recommend", "text": "Would you recommend us?", "type": "nps"},
                {"key": "csat", "text": "How satisfied are you?", "type": "csat"},
            ], "allow_multiple_responses": true}),
        )
        .await;
        // A: CSAT 5, then NPS 9. C: NPS 2, then CSAT 5 (the latest: satisfied). J: NPS 3.
        // K: NPS 2.
        answer(app, &survey, &id("A"), json!({"csat": 5}), 20).await;
        answer(app, &survey, &id("A"), json!({"recommend": 9}), 10).await;
        answer(app, &survey, &id("C"), json!({"recommend": 2}), 10).await;
        answer(app, &survey, &id("C"), json!({"csat": 5}), 1).await;
        answer(app, &survey, &id("J"), json!({"recommend": 3}), 3).await;
        answer(app, &survey, &id("K"), json!({"recommend": 2}), 3).await;
        set
    }
}

#[actix_web::test]
async fn value_tiers_matrix_rfm_and_churn_are_computed_exactly() {
    let app = TestApp::spawn().await;
    let set = Set::build(&app).await;
    put_settings(&app, settings_body(json!({}))).await;
    let viewer = app.token(Role::Viewer);

    // Before any computation, the customer carries no analytics.
    let a = app
        .get_ok(&format!("/v1/customers/{}", set.id("A")), &viewer)
        .await;
    assert!(a.get("analytics").is_none(), "{a}");

    let done = recompute(&app).await;
    assert_eq!(done["customers"], 10);
    assert_eq!(done["changed"], 10);
    assert_eq!(done["moved_to_dissolution"], 0);
    // Nothing changed since: nothing is rewritten, and the figures stand.
    let again = recompute(&app).await;
    assert_eq!(
        (&again["customers"], &again["changed"]),
        (&json!(10), &json!(0))
    );
    let done = again;
    let settings = app.get_ok("/v1/analytics/settings", &viewer).await;
    assert_eq!(settings["last_computation"]["customers"], 10);
    assert_eq!(
        settings["last_computation"]["computed_at"],
        done["computed_at"]
    );

    let expected: [Expected; 10] = [
        ("A", 30_000, 3, "key", 50_000, "vip", Some("455"), 0, &[]),
        (
            "B",
            20_000,
            2,
            "development",
            20_000,
            "maintain",
            Some("333"),
            15,
            &["no_recent_contact"],
        ),
        (
            "C",
            20_000,
            2,
            "development",
            60_000,
            "vip",
            Some("333"),
            55,
            &["purchase_overdue", "open_complaints"],
        ),
        (
            "D",
            15_000,
            1,
            "maintenance",
            0,
            "abandon",
            Some("213"),
            15,
            &["no_recent_contact"],
        ),
        (
            "E",
            10_000,
            2,
            "maintenance",
            30_000,
            "improve",
            Some("532"),
            25,
            &["purchase_overdue"],
        ),
        (
            "F",
            0,
            0,
            "opportunity",
            0,
            "abandon",
            Some("111"),
            40,
            &["purchase_overdue", "no_recent_contact"],
        ),
        (
            "G",
            0,
            0,
            "opportunity",
            0,
            "abandon",
            None,
            15,
            &["no_recent_contact"],
        ),
        ("H", 0, 0, "opportunity", 0, "abandon", None, 0, &[]),
        (
            "J",
            0,
            0,
            "opportunity",
            0,
            "abandon",
            None,
            20,
            &["dissatisfied"],
        ),
        (
            "K",
            1_000,
            1,
            "maintenance",
            0,
            "abandon",
            Some("111"),
            85,
            &[
                "purchase_frequency_falling",
                "purchase_overdue",
                "no_recent_contact",
                "dissatisfied",
            ],
        ),
    ];
    for (name, value, purchases, tier, future, class, rfm, score, reasons) in expected {
        let c = app
            .get_ok(&format!("/v1/customers/{}", set.id(name)), &viewer)
            .await;
        let a = &c["analytics"];
        assert_eq!(a["computed_at"], done["computed_at"], "{name}");
        assert_eq!(a["currency"], "EUR");
        assert_eq!(a["measure"], "revenue");
        assert_eq!(a["value"], value, "{name} value");
        assert_eq!(a["purchases"], purchases, "{name} purchases");
        assert_eq!(a["value_tier"], tier, "{name} tier");
        assert_eq!(a["future_value"], future, "{name} future value");
        assert_eq!(a["value_class"], class, "{name} class");
        assert_eq!(a["rfm"]["code"].as_str(), rfm, "{name} rfm");
        assert_eq!(a["churn_risk"]["score"], score, "{name} score");
        assert_eq!(a["churn_risk"]["at_risk"], score >= 50, "{name}");
        assert_eq!(
            a["churn_risk"]["at_risk_since"].is_string(),
            score >= 50,
            "{name} at risk since"
        );
        let got: Vec<&str> = a["churn_risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap())
            .collect();
        assert_eq!(got, reasons, "{name} reasons");
        let points: i64 = a["churn_risk"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["points"].as_i64().unwrap())
            .sum();
        assert_eq!(points.min(100), score, "{name} points");
    }
    let k = app
        .get_ok(&format!("/v1/customers/{}", set.id("K")), &viewer)
        .await;
    let reasons = &k["analytics"]["churn_risk"]["reasons"];
    assert_eq!(
        reasons[0]["detail"],
        "0 purchases in the last 182 days, where the customer's earlier rate predicts 1.8"
    );
    assert_eq!(
        reasons[1]["detail"],
        "no purchase for 300 days; the mean interval is 100.0 days"
    );
    assert_eq!(reasons[2]["detail"], "no contact on record");
    assert_eq!(reasons[3]["detail"], "latest answers: NPS 2");
    let rfm = &k["analytics"]["rfm"];
    assert_eq!(
        (&rfm["recency"], &rfm["frequency"], &rfm["monetary"]),
        (&json!(1), &json!(1), &json!(1))
    );

    // The list filters on the figures.
    assert_eq!(names(&app, "value_tier=development").await, ["B", "C"]);
    assert_eq!(
        names(&app, "value_tier=key,development").await,
        ["A", "B", "C"]
    );
    assert_eq!(names(&app, "value_class=improve").await, ["E"]);
    assert_eq!(names(&app, "value_class=vip&value_tier=key").await, ["A"]);
    assert_eq!(names(&app, "rfm_recency=5").await, ["E"]);
    assert_eq!(names(&app, "rfm_frequency=3").await, ["B", "C", "E"]);
    assert_eq!(names(&app, "rfm_monetary=1,2").await, ["E", "F", "K"]);
    assert_eq!(names(&app, "churn_score_min=50").await, ["C", "K"]);
    // And the list carries them.
    let page = app.get_ok("/v1/customers?value_tier=key", &viewer).await;
    assert_eq!(page["data"][0]["analytics"]["value_class"], "vip");

    // The churn-risk list: at risk from the threshold, highest first, with reasons.
    let risk = app.get_ok("/v1/analytics/churn-risk", &viewer).await;
    let listed: Vec<(&str, i64)> = risk["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap(),
                e["churn_risk"]["score"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [("K", 85), ("C", 55)]);
    assert_eq!(risk["data"][1]["churn_risk"]["reasons"][1]["points"], 30);
    assert_eq!(
        risk["data"][1]["churn_risk"]["reasons"][1]["detail"],
        "2 open complaints"
    );
    let risk = app
        .get_ok("/v1/analytics/churn-risk?min_score=15&limit=2", &viewer)
        .await;
    assert_eq!(risk["data"].as_array().unwrap().len(), 2);
    let next = risk["next_cursor"].as_str().unwrap();
    let rest = app
        .get_ok(
            &format!("/v1/analytics/churn-risk?min_score=15&limit=2&cursor={next}"),
            &viewer,
        )
        .await;
    let scores: Vec<i64> = rest["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["churn_risk"]["score"].as_i64().unwrap())
        .collect();
    assert_eq!(scores, [40, 25]);
    let risk = app
        .get_ok(
            "/v1/analytics/churn-risk?min_score=1&reason=dissatisfied",
            &viewer,
        )
        .await;
    let names_at_risk: Vec<&str> = risk["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names_at_risk, ["K", "J"]);
    let risk = app
        .get_ok(
            "/v1/analytics/churn-risk?min_score=1&value_tier=development&lifecycle_stage=stable",
            &viewer,
        )
        .await;
    assert_eq!(risk["data"].as_array().unwrap().len(), 2);

    // Segments: every live customer once per dimension.
    let seg = app.get_ok("/v1/analytics/segments", &viewer).await;
    assert_eq!(seg["computed_at"], done["computed_at"]);
    let row = |dim: &str, key: &str| -> Value {
        seg[dim]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {dim} {key} in {seg}"))
    };
    let key = row("value_tier", "key");
    assert_eq!(
        (&key["customers"], &key["value"], &key["mean_value"]),
        (&json!(1), &json!(30_000), &json!(30_000))
    );
    assert_eq!(
        (&key["mean_nps"], &key["nps"]),
        (&json!(9.0), &json!(100.0))
    );
    assert_eq!(
        (&key["mean_csat"], &key["csat"]),
        (&json!(5.0), &json!(100.0))
    );
    let dev = row("value_tier", "development");
    assert_eq!(
        (&dev["customers"], &dev["value"], &dev["at_risk"]),
        (&json!(2), &json!(40_000), &json!(1))
    );
    assert_eq!(
        (&dev["nps_respondents"], &dev["mean_nps"], &dev["nps"]),
        (&json!(1), &json!(2.0), &json!(-100.0))
    );
    let maintenance = row("value_tier", "maintenance");
    assert_eq!(
        (
            &maintenance["customers"],
            &maintenance["value"],
            &maintenance["mean_value"]
        ),
        (&json!(3), &json!(26_000), &json!(8_667))
    );
    assert_eq!(maintenance["csat"], Value::Null);
    let opportunity = row("value_tier", "opportunity");
    assert_eq!(
        (
            &opportunity["customers"],
            &opportunity["value"],
            &opportunity["mean_nps"]
        ),
        (&json!(4), &json!(0), &json!(3.0))
    );
    assert_eq!(row("value_class", "abandon")["customers"], 6);
    assert_eq!(row("value_class", "vip")["customers"], 2);
    assert_eq!(row("lifecycle_stage", "stable")["customers"], 8);
    assert_eq!(row("lifecycle_stage", "prospect")["customers"], 1);
    for dim in [
        "value_tier",
        "value_class",
        "lifecycle_stage",
        "relationship_level",
        "loyalty_tier",
    ] {
        let total: i64 = seg[dim]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["customers"].as_i64().unwrap())
            .sum();
        assert_eq!(total, 10, "{dim}");
    }
    // The loyalty tiers are the members' own.
    let mut tiers = std::collections::HashMap::<String, i64>::new();
    for id in set.ids.values() {
        let member = app
            .request(Method::GET, &format!("/v1/customers/{id}/loyalty"))
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap();
        let m = expect_json(member, StatusCode::OK).await;
        let tier = if m["member_since"].is_null() {
            "none".to_owned()
        } else {
            m["tier"]["key"].as_str().unwrap_or("none").to_owned()
        };
        *tiers.entry(tier).or_default() += 1;
    }
    for (tier, n) in tiers {
        assert_eq!(row("loyalty_tier", &tier)["customers"], n, "{tier}");
    }

    // A deleted customer leaves the figures at the next computation.
    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{}", set.id("H")))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(recompute(&app).await["customers"], 9);
    assert_eq!(
        app.count(&format!(
            "customer_analytics WHERE customer_id = '{}'",
            set.id("H")
        ))
        .await,
        0
    );
}

#[actix_web::test]
async fn the_computation_moves_customers_at_risk_into_dissolution_when_enabled() {
    let app = TestApp::spawn().await;
    let set = Set::build(&app).await;
    put_settings(&app, settings_body(json!({"move_to_dissolution": true}))).await;
    let events_before = app
        .count("events WHERE type = 'customer.lifecycle_changed'")
        .await;
    let done = recompute(&app).await;
    assert_eq!(done["moved_to_dissolution"], 2);
    let viewer = app.token(Role::Viewer);
    // The breakdown the computation kept counts them in their new stage, as a live count.
    let kept = app.get_ok("/v1/analytics/segments", &viewer).await;
    let live = app
        .get_ok("/v1/analytics/segments?live=true", &viewer)
        .await;
    assert_eq!(
        (&kept["live"], &live["live"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(kept["lifecycle_stage"], live["lifecycle_stage"]);
    assert!(
        kept["lifecycle_stage"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["key"] == "dissolution" && s["customers"] == 2),
        "{kept}"
    );
    for name in ["C", "K"] {
        let c = app
            .get_ok(&format!("/v1/customers/{}", set.id(name)), &viewer)
            .await;
        assert_eq!(c["lifecycle_stage"], "dissolution", "{name}");
    }
    let k = app
        .get_ok(&format!("/v1/customers/{}/lifecycle", set.id("K")), &viewer)
        .await;
    let last = k["data"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["from"], "stable");
    assert_eq!(last["to"], "dissolution");
    // The job sees signs of leaving, not their cause.
    assert_eq!(last["reason_code"], "other");
    assert_eq!(
        last["reason"],
        "churn risk 85 of 100: purchase_frequency_falling, purchase_overdue, \
         no_recent_contact, dissatisfied"
    );
    assert_eq!(last["actor_type"], "service");
    // Each move is audited and announced.
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{}' AND action = 'customer.updated' \
             AND changes -> 'lifecycle_stage' ->> 'to' = 'dissolution'",
            set.id("C")
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("events WHERE type = 'customer.lifecycle_changed'")
            .await,
        events_before + 2
    );
    // Customers already in dissolution are not moved again; the rest stay.
    assert_eq!(recompute(&app).await["moved_to_dissolution"], 0);
    assert_eq!(
        app.count("customers WHERE lifecycle_stage = 'dissolution'")
            .await,
        2
    );

    // Staff who move a customer back keep the last word while the episode of risk lasts.
    let since = |c: &Value| c["analytics"]["churn_risk"]["at_risk_since"].clone();
    let path = format!("/v1/customers/{}", set.id("C"));
    let c = app.get_ok(&path, &viewer).await;
    let first_since = since(&c);
    assert!(first_since.is_string());
    let res = app
        .patch(&path)
        .bearer_auth(app.token(Role::Agent))
        .header("If-Match", format!("\"{}\"", c["version"]))
        .header("Content-Type", "application/merge-patch+json")
        .body(
            json!({"lifecycle_stage": "stable", "lifecycle_reason": "called, renewing"})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    assert_eq!(recompute(&app).await["moved_to_dissolution"], 0);
    let c = app.get_ok(&path, &viewer).await;
    assert_eq!(c["lifecycle_stage"], "stable");
    assert_eq!(since(&c), first_since, "the same episode");

    // The episode ends when the score falls below the threshold; a new one moves them again.
    put_settings(
        &app,
        settings_body(json!({"move_to_dissolution": true, "churn_threshold": 100})),
    )
    .await;
    assert_eq!(recompute(&app).await["moved_to_dissolution"], 0);
    assert!(since(&app.get_ok(&path, &viewer).await).is_null());
    put_settings(&app, settings_body(json!({"move_to_dissolution": true}))).await;
    assert_eq!(recompute(&app).await["moved_to_dissolution"], 1);
    let c = app.get_ok(&path, &viewer).await;
    assert_eq!(c["lifecycle_stage"], "dissolution");
    assert!(since(&c).as_str() > first_since.as_str(), "a new episode");
}

#[actix_web::test]
async fn settings_are_versioned_validated_and_only_admins_change_them() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let defaults = app.get_ok("/v1/analytics/settings", &admin).await;
    assert_eq!(defaults["currency"], "EUR");
    assert_eq!(defaults["key_percent"], 5);
    assert_eq!(defaults["development_percent"], 20);
    assert_eq!(defaults["maintenance_percent"], 50);
    assert_eq!(defaults["last_computation"], Value::Null);
    assert_eq!(defaults["retention_rate"], "measured");
    assert_eq!(defaults["discount_rate"], 0.1);
    let version = defaults["version"].as_i64().unwrap();
    let put = |token: String, body: Value, if_match: Option<String>| {
        let app = &app;
        async move {
            let mut req = app
                .request(Method::PUT, "/v1/analytics/settings")
                .bearer_auth(token)
                .json(&body);
            if let Some(tag) = if_match {
                req = req.header("If-Match", tag);
            }
            req.send().await.unwrap()
        }
    };
    let audit_before = app.count("audit_events").await;
    for (body, field) in [
        (
            settings_body(json!({"key_percent": 30})),
            "development_percent",
        ),
        (
            settings_body(json!({"maintenance_percent": 30})),
            "maintenance_percent",
        ),
        (settings_body(json!({"window_days": 10})), "window_days"),
        (
            settings_body(json!({"churn_threshold": 0})),
            "churn_threshold",
        ),
        (
            settings_body(json!({"high_value_percent": 101})),
            "high_value_percent",
        ),
        (settings_body(json!({"currency": "eur"})), "currency"),
        // 1 + d − r must stay above 0: r = 1 with d = 0 makes the potential infinite.
        (
            settings_body(json!({"retention_rate": 1, "discount_rate": 0})),
            "retention_rate",
        ),
        (
            settings_body(json!({"retention_rate": 1.5})),
            "retention_rate",
        ),
        (
            settings_body(json!({"retention_rate": -0.1})),
            "retention_rate",
        ),
        (
            settings_body(json!({"discount_rate": -0.1})),
            "discount_rate",
        ),
        (
            settings_body(json!({"discount_rate": 1.5})),
            "discount_rate",
        ),
    ] {
        let p = expect_problem(
            put(admin.clone(), body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(fields(&p), [field]);
    }
    let mut missing = settings_body(json!({}));
    missing.as_object_mut().unwrap().remove("contact_days");
    for body in [
        missing,
        settings_body(json!({"extra": 1})),
        settings_body(json!({"window_days": "365"})),
        settings_body(json!({"measure": "margin"})),
        settings_body(json!({"retention_rate": "sometimes"})),
        settings_body(json!({"discount_rate": "0.1"})),
    ] {
        let res = put(admin.clone(), body, None).await;
        assert!(
            res.status() == StatusCode::BAD_REQUEST
                || res.status() == StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            res.status()
        );
        let p: Value = res.json().await.unwrap();
        assert!(p["title"].is_string());
    }
    app.expect_bad_envelopes(
        Method::PUT,
        "/v1/analytics/settings",
        &admin,
        &settings_body(json!({})),
    )
    .await;
    // Another role's rights.
    for role in [Role::Manager, Role::Agent, Role::Viewer] {
        expect_problem(
            put(app.token(role), settings_body(json!({})), None).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    // A stale version is refused.
    expect_problem(
        put(
            admin.clone(),
            settings_body(json!({})),
            Some(format!("\"{}\"", version + 5)),
        )
        .await,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    // Nothing was written.
    let after = app.get_ok("/v1/analytics/settings", &admin).await;
    assert_eq!(after, defaults);
    assert_eq!(app.count("audit_events").await, audit_before);

    let changed = expect_json(
        put(
            admin.clone(),
            settings_body(json!({"measure": "profit"})),
            Some(format!("\"{version}\"")),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(changed["version"], version + 1);
    assert_eq!(changed["measure"], "profit");
    assert_eq!(
        app.count("audit_events WHERE action = 'analytics.settings_changed'")
            .await,
        1
    );

    // Only admins recompute; a running computation is a 409.
    for role in [Role::Manager, Role::Viewer] {
        let res = app
            .send(
                Method::POST,
                "/v1/analytics/recompute",
                &app.token(role),
                &json!({}),
            )
            .await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let mut held = app.db.connect().await;
    diesel_async::RunQueryDsl::execute(diesel::sql_query("BEGIN"), &mut held)
        .await
        .unwrap();
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query("SELECT pg_advisory_xact_lock(5936149412059444289)"),
        &mut held,
    )
    .await
    .unwrap();
    let res = app
        .send(Method::POST, "/v1/analytics/recompute", &admin, &json!({}))
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    diesel_async::RunQueryDsl::execute(diesel::sql_query("ROLLBACK"), &mut held)
        .await
        .unwrap();
    recompute(&app).await;
}

#[actix_web::test]
async fn pareto_ranks_customers_by_value_with_exact_shares() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for name in ["P1", "P2", "P3", "P4", "P5", "OUT", "USD"] {
        ids.push(customer(&app, name, "stable").await);
    }
    purchase(&app, &ids[0], 50_000, 5.0, json!({"cost": 20_000})).await;
    let p2 = purchase(&app, &ids[1], 30_000, 4.0, json!({"cost": 5_000})).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/purchases/{p2}/refund"),
            &app.token(Role::Agent),
            &json!({"amount": 5_000}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    purchase(&app, &ids[2], 12_500, 3.0, json!({})).await;
    purchase(&app, &ids[3], 7_500, 2.0, json!({"cost": 7_500})).await;
    purchase(&app, &ids[4], 5_000, 1.0, json!({"cost": 1_000})).await;
    purchase(&app, &ids[5], 90_000, 60.0, json!({})).await;
    purchase(&app, &ids[6], 90_000, 2.0, json!({"currency": "USD"})).await;
    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{}", ids[4]))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let viewer = app.token(Role::Viewer);
    let today = Utc::now().date_naive();
    let from = today - chrono::Days::new(30);
    let period = format!("from={from}&to={today}");
    let report = app
        .get_ok(&format!("/v1/analytics/pareto?{period}"), &viewer)
        .await;
    assert_eq!(report["measure"], "revenue");
    assert_eq!(report["currency"], "EUR");
    let s = &report["summary"];
    assert_eq!((&s["customers"], &s["total"]), (&json!(5), &json!(100_000)));
    assert_eq!(s["top_20_percent_share"], 50.0);
    assert_eq!(
        s["customer_bands"],
        json!([
            {"customer_percent": 10, "customers": 1, "value": 50_000, "share": 50.0},
            {"customer_percent": 20, "customers": 1, "value": 50_000, "share": 50.0},
            {"customer_percent": 40, "customers": 2, "value": 75_000, "share": 75.0},
            {"customer_percent": 50, "customers": 3, "value": 87_500, "share": 87.5},
        ])
    );
    assert_eq!(
        s["sales_bands"],
        json!([
            {"sales_percent": 10, "customers": 1, "customer_percent": 20.0},
            {"sales_percent": 20, "customers": 1, "customer_percent": 20.0},
            {"sales_percent": 40, "customers": 1, "customer_percent": 20.0},
            {"sales_percent": 50, "customers": 1, "customer_percent": 20.0},
            {"sales_percent": 80, "customers": 3, "customer_percent": 60.0},
        ])
    );
    let rows: Vec<(i64, Value, i64, f64, f64, f64)> = report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rank"].as_i64().unwrap(),
                r["name"].clone(),
                r["value"].as_i64().unwrap(),
                r["share"].as_f64().unwrap(),
                r["cumulative_share"].as_f64().unwrap(),
                r["customer_percent"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (1, json!("P1"), 50_000, 50.0, 50.0, 20.0),
            (2, json!("P2"), 25_000, 25.0, 75.0, 40.0),
            (3, json!("P3"), 12_500, 12.5, 87.5, 60.0),
            (4, json!("P4"), 7_500, 7.5, 95.0, 80.0),
            // Deleted: counted, without a name.
            (5, Value::Null, 5_000, 5.0, 100.0, 100.0),
        ]
    );
    assert_eq!(report["next_cursor"], Value::Null);

    // The customers who make the first 80 % of sales.
    let top = app
        .get_ok(
            &format!("/v1/analytics/pareto?{period}&top_sales_percent=80"),
            &viewer,
        )
        .await;
    let top: Vec<&str> = top["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(top, ["P1", "P2", "P3"]);

    // Pages.
    let first = app
        .get_ok(&format!("/v1/analytics/pareto?{period}&limit=2"), &viewer)
        .await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(
            &format!("/v1/analytics/pareto?{period}&limit=2&cursor={cursor}"),
            &viewer,
        )
        .await;
    let ranks: Vec<i64> = second["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rank"].as_i64().unwrap())
        .collect();
    assert_eq!(ranks, [3, 4]);
    assert_eq!(second["summary"], first["summary"]);

    // Profit: amount − refunded − cost over purchases with a cost; non-positive left out.
    let profit = app
        .get_ok(
            &format!("/v1/analytics/pareto?{period}&measure=profit"),
            &viewer,
        )
        .await;
    assert_eq!(profit["summary"]["total"], 54_000);
    let rows: Vec<(i64, f64, f64)> = profit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_i64().unwrap(),
                r["share"].as_f64().unwrap(),
                r["cumulative_share"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (30_000, 55.56, 55.56),
            (20_000, 37.04, 92.59),
            (4_000, 7.41, 100.0)
        ]
    );

    // A period with no sales.
    let empty = app
        .get_ok(
            "/v1/analytics/pareto?from=2001-01-01&to=2001-12-31",
            &viewer,
        )
        .await;
    assert_eq!(empty["summary"]["customers"], 0);
    assert_eq!(empty["summary"]["top_20_percent_share"], 0.0);
    assert_eq!(empty["data"], json!([]));

    // The whole ranking as CSV.
    let res = app
        .get(&format!("/v1/exports/pareto?{period}"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let csv = res.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "rank,customer_id,name,value,purchases,share,cumulative_share,customer_percent,\
         lifetime_potential,demand_contribution_percent,credit_grade"
    );
    assert_eq!(lines.len(), 6);
    // Not computed yet: no value aspects; not graded: no credit grade.
    assert_eq!(
        lines[1],
        format!("1,{},P1,50000,1,50.0,50.0,20.0,,,", ids[0])
    );
    assert_eq!(lines[5], format!("5,{},,5000,1,5.0,100.0,100.0,,,", ids[4]));

    // A ranking of several batches streams whole, in order, as NDJSON too.
    app.sql(
        "INSERT INTO customers (id, kind, name)
         SELECT uuid_v7(), 'individual', 'Bulk ' || g FROM generate_series(1, 2345) g",
    )
    .await;
    app.sql(
        "INSERT INTO purchases (id, customer_id, currency, amount, occurred_at)
         SELECT uuid_v7(), id, 'EUR', 10 + (hashtext(id::text) & 1023), now() - interval '1 day'
         FROM customers WHERE name LIKE 'Bulk %'",
    )
    .await;
    let res = app
        .get(&format!("/v1/exports/pareto?{period}"))
        .bearer_auth(&viewer)
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    let rows: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2350);
    let paged = app
        .get_ok(
            &format!(
                "/v1/analytics/pareto?{period}&limit=200&cursor={}",
                pagination_cursor(1199)
            ),
            &viewer,
        )
        .await;
    assert_eq!(rows[1199..1399], paged["data"].as_array().unwrap()[..]);
    assert!(
        rows.iter()
            .enumerate()
            .all(|(i, r)| r["rank"] == i as i64 + 1)
    );
    assert_eq!(rows[2349]["cumulative_share"], 100.0);

    // Bad queries are 400s naming the parameter.
    app.expect_bad_queries(
        "/v1/analytics/pareto",
        &viewer,
        &[
            ("from=2026-12-01&to=2026-11-01", "from"),
            ("from=2026-13-01", "from"),
            ("from=1990-01-01&to=2026-01-01", "from"),
            ("measure=margin", "measure"),
            ("currency=eur", "currency"),
            ("top_sales_percent=0", "top_sales_percent"),
            ("top_sales_percent=x", "top_sales_percent"),
            ("limit=0", "limit"),
            ("cursor=nonsense", "cursor"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    app.expect_bad_queries(
        "/v1/exports/pareto",
        &viewer,
        &[("limit=5", "limit"), ("measure=x", "measure")],
    )
    .await;
    let res = app
        .get("/v1/exports/pareto")
        .bearer_auth(&viewer)
        .header("Accept", "application/pdf")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_ACCEPTABLE, "not_acceptable").await;
    let res = app.get("/v1/analytics/pareto").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn analytics_queries_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    app.expect_bad_queries(
        "/v1/analytics/churn-risk",
        &viewer,
        &[
            ("min_score=0", "min_score"),
            ("min_score=101", "min_score"),
            ("reason=bored", "reason"),
            ("lifecycle_stage=gone", "lifecycle_stage"),
            ("value_tier=gold", "value_tier"),
            ("account_manager_id=x", "account_manager_id"),
            ("limit=500", "limit"),
            ("cursor=x", "cursor"),
            ("sort=name", "sort"),
        ],
    )
    .await;
    app.expect_bad_queries(
        "/v1/customers",
        &viewer,
        &[
            ("value_tier=gold", "value_tier"),
            ("value_class=star", "value_class"),
            ("rfm_recency=6", "rfm_recency"),
            ("rfm_frequency=0", "rfm_frequency"),
            ("rfm_monetary=a", "rfm_monetary"),
            ("churn_score_min=101", "churn_score_min"),
        ],
    )
    .await;
    for path in [
        "/v1/analytics/segments",
        "/v1/analytics/churn-risk",
        "/v1/analytics/settings",
    ] {
        let res = app.get(path).send().await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let res = app.get(path).bearer_auth("wrong").send().await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    // Without a computation, the churn list is empty and segments say so.
    let risk = app.get_ok("/v1/analytics/churn-risk", &viewer).await;
    assert_eq!(risk["data"], json!([]));
    let seg = app.get_ok("/v1/analytics/segments", &viewer).await;
    assert_eq!(seg["computed_at"], Value::Null);
}

#[actix_web::test]
async fn the_background_job_computes_and_only_analytics_readers_see_the_figures() {
    let app = TestApp::spawn_with(&[("RAPPORT_ANALYTICS_INTERVAL", "10s")]).await;
    let id = customer(&app, "Solo", "stable").await;
    purchase(&app, &id, 4_200, 3.0, json!({})).await;
    let viewer = app.token(Role::Viewer);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let settings = app.get_ok("/v1/analytics/settings", &viewer).await;
        if !settings["last_computation"].is_null() {
            assert_eq!(settings["last_computation"]["customers"], 1);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the job never ran");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let c = app.get_ok(&format!("/v1/customers/{id}"), &viewer).await;
    assert_eq!(c["analytics"]["value"], 4_200);
    assert_eq!(c["analytics"]["value_tier"], "key");
    assert_eq!(c["analytics"]["rfm"]["code"], "111");

    // An integration client without `analytics:read` reads the customer without them.
    let token = app.client_token("Shop", &["customers:read"]).await;
    let c = app.get_ok(&format!("/v1/customers/{id}"), &token).await;
    assert!(c.get("analytics").is_none(), "{c}");
    let res = app
        .get("/v1/analytics/segments")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

/// The cursor the Pareto list hands out after `rank`.
fn pagination_cursor(rank: i64) -> String {
    rapport::http::pagination::encode(&rank, "rank")
}

/// The value aspects of each currency of a customer, by currency.
async fn aspects(app: &TestApp, customer: &str) -> std::collections::HashMap<String, Value> {
    let value = app
        .get_ok(
            &format!("/v1/customers/{customer}/value"),
            &app.token(Role::Viewer),
        )
        .await;
    value["currencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["currency"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

#[actix_web::test]
async fn lifetime_potential_and_demand_contribution_are_computed_exactly() {
    let app = TestApp::spawn().await;
    // Days ago, well clear of the 12-month (365/366 days) and 24-month boundaries. In EUR:
    // X bought last year (400 d) and this year (100 d: 6 000; 30 d: 4 000 with a cost of
    // 1 000, of which 1 000 is refunded); Y only last year (500 d); Z only this year (20 d);
    // W last year (380 d) and this year (10 d).
    let x = customer(&app, "X", "stable").await;
    let y = customer(&app, "Y", "stable").await;
    let z = customer(&app, "Z", "stable").await;
    let w = customer(&app, "W", "stable").await;
    purchase(&app, &x, 5_000, 400.0, json!({})).await;
    purchase(&app, &x, 6_000, 100.0, json!({})).await;
    let refunded = purchase(&app, &x, 4_000, 30.0, json!({"cost": 1_000})).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/purchases/{refunded}/refund"),
            &app.token(Role::Agent),
            &json!({"amount": 1_000}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    purchase(&app, &y, 2_000, 500.0, json!({})).await;
    purchase(&app, &z, 1_000, 20.0, json!({})).await;
    purchase(&app, &w, 3_000, 380.0, json!({})).await;
    purchase(&app, &w, 2_000, 10.0, json!({})).await;
    // GBP: U bought last year and again (a measured r of 1). CHF: T only last year (an empty
    // window in CHF).
    let u = customer(&app, "U", "stable").await;
    purchase(&app, &u, 1_000, 400.0, json!({"currency": "GBP"})).await;
    purchase(&app, &u, 1_000, 10.0, json!({"currency": "GBP"})).await;
    let t = customer(&app, "T", "stable").await;
    purchase(&app, &t, 3_000, 500.0, json!({"currency": "CHF"})).await;

    // The defaults: revenue over a 365-day window, r measured, d = 0.1.
    let eur = &aspects(&app, &x).await["EUR"];
    // Measured r in EUR: of last year's buyers X, Y, W, X and W bought again: 2/3.
    // m = 6 000 + (4 000 − 1 000) = 9 000; 9 000 · 2/3 / (1 + 0.1 − 2/3) = 6 000 / 0.4333…
    // = 13 846.15 → 13 846.
    assert_eq!(eur["lifetime_potential"], 13_846);
    assert_eq!(
        eur["lifetime_basis"],
        json!({"measure": "revenue", "yearly_value": 9000, "retention": "measured",
               "retention_rate": 2.0 / 3.0, "measured_retention_rate": 2.0 / 3.0,
               "discount_rate": 0.1})
    );
    // Net sales in the window: X 9 000, Z 1 000, W 2 000 (Y none): X's share 9 000 / 12 000.
    assert_eq!(eur["demand_contribution_percent"], 75.0);
    assert_eq!(
        eur["demand_basis"],
        json!({"window_days": 365, "sales": 9000, "all_sales": 12000})
    );
    // Z: 1 000 / 12 000 = 8.33 %; W 2 000 / 12 000 = 16.67 %; Y: nothing this year, m = 0,
    // no potential and no share.
    assert_eq!(
        aspects(&app, &z).await["EUR"]["demand_contribution_percent"],
        8.33
    );
    assert_eq!(
        aspects(&app, &w).await["EUR"]["demand_contribution_percent"],
        16.67
    );
    let y_eur = &aspects(&app, &y).await["EUR"];
    assert_eq!(
        (
            &y_eur["lifetime_potential"],
            &y_eur["demand_contribution_percent"],
            &y_eur["lifetime_basis"]["yearly_value"]
        ),
        (&json!(0), &json!(0.0), &json!(0))
    );
    // GBP: U is the one buyer of last year and bought again: measured r = 1, capped at
    // 1 + 0.1 − 0.01 = 1.09 (no cap: r = 1): 1 000 · 1 / (1.1 − 1) = 10 000.
    let gbp = &aspects(&app, &u).await["GBP"];
    assert_eq!(gbp["lifetime_potential"], 10_000);
    assert_eq!(gbp["lifetime_basis"]["retention_rate"], 1.0);
    assert_eq!(gbp["demand_contribution_percent"], 100.0);
    // CHF: an empty window: no share; r measured 0 of 1 → potential 0.
    let chf = &aspects(&app, &t).await["CHF"];
    assert_eq!(chf["demand_contribution_percent"], Value::Null);
    assert_eq!(chf["demand_basis"]["all_sales"], 0);
    assert_eq!(chf["lifetime_basis"]["retention_rate"], 0.0);
    assert_eq!(chf["lifetime_potential"], 0);

    // With d = 0, U's measured r of 1 is capped at 1 + 0 − 0.01 = 0.99:
    // 1 000 · 0.99 / 0.01 = 99 000.
    put_settings(&app, settings_body(json!({"discount_rate": 0.0}))).await;
    let gbp = &aspects(&app, &u).await["GBP"];
    assert_eq!(gbp["lifetime_potential"], 99_000);
    assert_eq!(gbp["lifetime_basis"]["retention_rate"], 0.99);
    assert_eq!(gbp["lifetime_basis"]["measured_retention_rate"], 1.0);

    // A fixed r = 0.8, d = 0.1: X 9 000 · 0.8 / 0.3 = 24 000; the answer says `fixed`.
    let settings = put_settings(
        &app,
        settings_body(json!({"retention_rate": 0.8, "discount_rate": 0.1})),
    )
    .await;
    assert_eq!(
        (&settings["retention_rate"], &settings["discount_rate"]),
        (&json!(0.8), &json!(0.1))
    );
    let eur = &aspects(&app, &x).await["EUR"];
    assert_eq!(eur["lifetime_potential"], 24_000);
    assert_eq!(
        eur["lifetime_basis"],
        json!({"measure": "revenue", "yearly_value": 9000, "retention": "fixed",
               "retention_rate": 0.8, "measured_retention_rate": null, "discount_rate": 0.1})
    );
    // Profit, r = 0.5, d = 0: X's only purchase with a cost in 12 months: 4 000 − 1 000
    // refunded − 1 000 cost = 2 000; 2 000 · 0.5 / 0.5 = 2 000. Z has no cost: no m, no
    // potential. A shorter window (60 days: X's 30-day purchase, Z's, W's) changes the share:
    // X 3 000 / (3 000 + 1 000 + 2 000) = 50 %.
    put_settings(
        &app,
        settings_body(json!({"measure": "profit", "retention_rate": 0.5,
                             "discount_rate": 0.0, "window_days": 60})),
    )
    .await;
    let eur = &aspects(&app, &x).await["EUR"];
    assert_eq!(eur["lifetime_potential"], 2_000);
    assert_eq!(eur["lifetime_basis"]["yearly_value"], 2_000);
    assert_eq!(eur["demand_contribution_percent"], 50.0);
    assert_eq!(
        eur["demand_basis"],
        json!({"window_days": 60, "sales": 3000, "all_sales": 6000})
    );
    let z_eur = &aspects(&app, &z).await["EUR"];
    assert_eq!(
        (
            &z_eur["lifetime_potential"],
            &z_eur["lifetime_basis"]["yearly_value"]
        ),
        (&Value::Null, &Value::Null)
    );

    // Who may read it: purchases:read; nobody without a token; 404 for no such customer.
    let client = app.client_token("till", &["purchases:write"]).await;
    let res = app
        .get(&format!("/v1/customers/{x}/value"))
        .bearer_auth(client)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .get(&format!("/v1/customers/{x}/value"))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .get("/v1/customers/not-an-id/value")
        .bearer_auth(app.token(Role::Viewer))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
}
