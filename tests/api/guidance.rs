//! Relationship and loyalty guidance (issue 22): the recommended relationship level from the
//! course's matrix of customer count against margin, volume × loyalty, the value aspects in
//! the analytics rows, segments and Pareto, the callbacks after a sale, and the buyer and
//! organization types; every figure on hand-built data with the arithmetic beside it.

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::analytics::{customer, names, purchase, put_settings, recompute, settings_body};
use crate::helpers::{TestApp, expect_json, expect_problem, fields};
use rapport::auth::Role;

async fn patch(app: &TestApp, id: &str, body: Value) -> Value {
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            &app.token(Role::Manager),
            &body,
        )
        .await;
    expect_json(res, StatusCode::OK).await
}

async fn figures(app: &TestApp, id: &str) -> Value {
    app.get_ok(&format!("/v1/customers/{id}"), &app.token(Role::Viewer))
        .await["analytics"]
        .clone()
}

/// One dimension of the segments: key → (customers, value, lifetime potential, demand %).
async fn segments(app: &TestApp, dimension: &str) -> Vec<(String, i64, i64, Value, Value)> {
    let all = app
        .get_ok("/v1/analytics/segments", &app.token(Role::Viewer))
        .await;
    all[dimension]
        .as_array()
        .unwrap_or_else(|| panic!("no dimension {dimension}: {all}"))
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["customers"].as_i64().unwrap(),
                s["value"].as_i64().unwrap(),
                s["lifetime_potential"].clone(),
                s["demand_contribution_percent"].clone(),
            )
        })
        .collect()
}

fn seg(
    key: &str,
    n: i64,
    value: i64,
    potential: Value,
    demand: Value,
) -> (String, i64, i64, Value, Value) {
    (key.to_owned(), n, value, potential, demand)
}

#[actix_web::test]
async fn relationship_level_loyalty_and_value_aspects_are_computed_exactly() {
    let app = TestApp::spawn().await;

    // Empty: nobody bought. Measured r has no last year's buyers, so no potential; nobody
    // bought in the window, so no demand contribution; no margin, so no recommendation.
    let ada = customer(&app, "Ada", "acquaintance").await;
    recompute(&app).await;
    let a = figures(&app, &ada).await;
    assert_eq!(a["lifetime_potential"], Value::Null);
    assert_eq!(a["demand_contribution_percent"], Value::Null);
    assert_eq!(a["margin_percent"], Value::Null);
    assert_eq!(a["recommended_relationship_level"], Value::Null);
    assert_eq!(a["relationship_below_recommended"], false);
    assert_eq!(a["loyalty_index"], 0.0);
    assert_eq!(a["loyalty_quadrant"], "small_disloyal");

    put_settings(
        &app,
        settings_body(json!({
            // Tiers over N = 10: key when above × 100 < 10 × 10, development < 300,
            // maintenance < 600.
            "key_percent": 10, "development_percent": 30, "maintenance_percent": 60,
            "retention_rate": 0.8, "discount_rate": 0.1,
            // Count: few when above × 100 < 10 × 10, medium < 30 × 10, else many.
            "few_customers_percent": 10, "medium_customers_percent": 30,
            "low_margin_percent": 10, "high_margin_percent": 30,
            // 4 periods of 30 days: 0–30, 30–60, 60–90, 90–120 days ago; loyal from 2 of 4.
            "loyalty_periods": 4, "loyalty_period_days": 30, "loyal_percent": 50,
        })),
    )
    .await;
    let bea = customer(&app, "Bea", "acquaintance").await;
    let cal = customer(&app, "Cal", "acquaintance").await;
    let dan = customer(&app, "Dan", "acquaintance").await;
    let eve = customer(&app, "Eve", "acquaintance").await;
    let gus = customer(&app, "Gus", "acquaintance").await;
    for name in ["Fay", "Hal", "Ivy"] {
        customer(&app, name, "prospect").await;
    }
    let org = crate::customers::create(
        &app,
        json!({"name": "Org", "kind": "organization", "organization_type": "government"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    patch(&app, &ada, json!({"buyer_type": "economic"})).await;
    patch(&app, &bea, json!({"buyer_type": "ethical"})).await;
    // Ada: 10 000, cost 7 000 → margin 3 000 ÷ 10 000 = 30 % (exactly high); bought 1, 31
    // and 61 days ago → periods 0, 1, 2 → 3 of 4.
    purchase(&app, &ada, 4000, 1.0, json!({"cost": 2800})).await;
    purchase(&app, &ada, 3000, 31.0, json!({"cost": 2100})).await;
    purchase(&app, &ada, 3000, 61.0, json!({"cost": 2100})).await;
    // Bea: 8 000, margin 1 600 ÷ 8 000 = 20 % (medium); period 0 only → 1 of 4.
    purchase(&app, &bea, 8000, 5.0, json!({"cost": 6400})).await;
    // Cal: 8 000 (a tie with Bea), no cost → no margin; periods 0 and 1 → 2 of 4, exactly
    // the loyal share.
    purchase(&app, &cal, 4000, 2.0, json!({})).await;
    purchase(&app, &cal, 4000, 35.0, json!({})).await;
    // Dan: 5 000, margin 250 ÷ 5 000 = 5 % (low); 200 days ago → no period.
    purchase(&app, &dan, 5000, 200.0, json!({"cost": 4750})).await;
    // Eve: 5 000 (a tie with Dan), margin 500 ÷ 5 000 = 10 % (exactly not low: medium);
    // 10 and 100 days ago → periods 0 and 3 → 2 of 4.
    purchase(&app, &eve, 2500, 10.0, json!({"cost": 2250})).await;
    purchase(&app, &eve, 2500, 100.0, json!({"cost": 2250})).await;
    // Gus: 1 000, 125 days ago: past the 120 days of the loyalty periods, all four empty.
    purchase(&app, &gus, 1000, 125.0, json!({})).await;
    patch(&app, &bea, json!({"relationship_level": "accountable"})).await;
    patch(&app, &dan, json!({"relationship_level": "reactive"})).await;
    recompute(&app).await;

    // above: Ada 0, Bea and Cal 1, Dan and Eve 3, Gus 5. Count: Ada few (0 < 100), Bea and
    // Cal medium (100 < 300), Dan, Eve, Gus many (300 ≥ 300). The level's rank is 1 + count
    // (many 0, medium 1, few 2) + margin (low 0, medium 1, high 2).
    // Lifetime potential m · 0.8 / (1 + 0.1 − 0.8) = m · 8 / 3; demand = sales ÷ 37 000
    // (10 000 + 8 000 + 8 000 + 5 000 + 5 000 + 1 000).
    #[allow(clippy::type_complexity)]
    let expected: [(&str, &str, Value, Value, bool, f64, &str, i64, f64); 6] = [
        // few × high: 1 + 2 + 2 = 5 partnership; basic is below. 10 000 · 8/3 = 26 666.67.
        (
            &ada,
            "Ada",
            json!(30.0),
            json!("partnership"),
            true,
            0.75,
            "large_loyal",
            26667,
            27.03,
        ),
        // medium × medium: 3 accountable, as managed. 8 000 · 8/3 = 21 333.33; 21.62 %.
        (
            &bea,
            "Bea",
            json!(20.0),
            json!("accountable"),
            false,
            0.25,
            "large_disloyal",
            21333,
            21.62,
        ),
        // No margin: no recommendation. 2 of 4 = 0.5: loyal (a tie with the threshold).
        (
            &cal,
            "Cal",
            Value::Null,
            Value::Null,
            false,
            0.5,
            "large_loyal",
            21333,
            21.62,
        ),
        // many × low: 1 basic; reactive is above it. 5 000 · 8/3 = 13 333.33; 13.51 %.
        (
            &dan,
            "Dan",
            json!(5.0),
            json!("basic"),
            false,
            0.0,
            "small_disloyal",
            13333,
            13.51,
        ),
        // many × medium: 2 reactive; basic is below.
        (
            &eve,
            "Eve",
            json!(10.0),
            json!("reactive"),
            true,
            0.5,
            "small_loyal",
            13333,
            13.51,
        ),
        // 1 000 · 8/3 = 2 666.67; 1 000 ÷ 37 000 = 2.70 %.
        (
            &gus,
            "Gus",
            Value::Null,
            Value::Null,
            false,
            0.0,
            "small_disloyal",
            2667,
            2.7,
        ),
    ];
    for (id, name, margin, level, below, index, quadrant, potential, demand) in expected {
        let a = figures(&app, id).await;
        assert_eq!(a["margin_percent"], margin, "{name}");
        assert_eq!(a["recommended_relationship_level"], level, "{name}");
        assert_eq!(a["relationship_below_recommended"], below, "{name}");
        assert_eq!(a["loyalty_index"], index, "{name}");
        assert_eq!(a["loyalty_quadrant"], quadrant, "{name}");
        assert_eq!(a["lifetime_potential"], potential, "{name}");
        assert_eq!(a["demand_contribution_percent"], demand, "{name}");
        // The value endpoint gives the same figures: one definition.
        let value = app
            .get_ok(
                &format!("/v1/customers/{id}/value"),
                &app.token(Role::Viewer),
            )
            .await;
        assert_eq!(
            value["currencies"][0]["lifetime_potential"], potential,
            "{name}"
        );
        assert_eq!(
            value["currencies"][0]["demand_contribution_percent"], demand,
            "{name}"
        );
    }
    // Who never bought: m = 0, so a potential of 0, and 0 % of the demand.
    let org_figures = figures(&app, &org).await;
    assert_eq!(org_figures["lifetime_potential"], 0);
    assert_eq!(org_figures["demand_contribution_percent"], 0.0);
    assert_eq!(org_figures["loyalty_quadrant"], "small_disloyal");

    // The list filters.
    assert_eq!(
        names(&app, "relationship_below_recommended=true").await,
        ["Ada", "Eve"]
    );
    assert_eq!(
        names(&app, "loyalty_quadrant=large_loyal").await,
        ["Ada", "Cal"]
    );
    assert_eq!(
        names(&app, "loyalty_quadrant=large_disloyal,small_loyal").await,
        ["Bea", "Eve"]
    );
    assert_eq!(
        names(
            &app,
            "relationship_below_recommended=true&loyalty_quadrant=small_loyal"
        )
        .await,
        ["Eve"]
    );
    // Raised to what her value calls for, Ada leaves the list at once; Bea lowered below
    // hers joins it at the next computation.
    patch(&app, &ada, json!({"relationship_level": "partnership"})).await;
    patch(&app, &bea, json!({"relationship_level": "reactive"})).await;
    assert_eq!(
        names(&app, "relationship_below_recommended=true").await,
        ["Eve"]
    );
    recompute(&app).await;
    assert_eq!(
        names(&app, "relationship_below_recommended=true").await,
        ["Bea", "Eve"]
    );

    // Segments: a group's potential is m · 8/3 of its summed m, its demand its sales ÷
    // 37 000. large_loyal: Ada and Cal, 18 000 · 8/3 = 48 000; 18 000 ÷ 37 000 = 48.65 %.
    assert_eq!(
        segments(&app, "loyalty_quadrant").await,
        [
            seg("large_disloyal", 1, 8000, json!(21333), json!(21.62)),
            seg("large_loyal", 2, 18000, json!(48000), json!(48.65)),
            // Dan 5 000 + Gus 1 000 + four without purchases: 6 000 · 8/3 = 16 000; 16.22 %.
            seg("small_disloyal", 6, 6000, json!(16000), json!(16.22)),
            seg("small_loyal", 1, 5000, json!(13333), json!(13.51)),
        ]
    );
    assert_eq!(
        segments(&app, "recommended_relationship_level").await,
        [
            seg("accountable", 1, 8000, json!(21333), json!(21.62)),
            seg("basic", 1, 5000, json!(13333), json!(13.51)),
            // Cal 8 000 + Gus 1 000 + four: 9 000 · 8/3 = 24 000; 24.32 %.
            seg("none", 6, 9000, json!(24000), json!(24.32)),
            seg("partnership", 1, 10000, json!(26667), json!(27.03)),
            seg("reactive", 1, 5000, json!(13333), json!(13.51)),
        ]
    );
    assert_eq!(
        segments(&app, "buyer_type").await,
        [
            seg("economic", 1, 10000, json!(26667), json!(27.03)),
            seg("ethical", 1, 8000, json!(21333), json!(21.62)),
            // 19 000 · 8/3 = 50 666.67; 19 000 ÷ 37 000 = 51.35 %.
            seg("none", 8, 19000, json!(50667), json!(51.35)),
        ]
    );
    assert_eq!(
        segments(&app, "organization_type").await,
        [
            seg("government", 1, 0, json!(0), json!(0.0)),
            seg("none", 9, 37000, json!(98667), json!(100.0)),
        ]
    );
    // The value tiers carry the aspects too: key is Ada alone.
    let tiers = segments(&app, "value_tier").await;
    assert_eq!(
        tiers[0],
        seg("development", 2, 16000, json!(42667), json!(43.24))
    );
    assert_eq!(tiers[1], seg("key", 1, 10000, json!(26667), json!(27.03)));

    // Pareto rows and their export carry each customer's stored aspects.
    let today = Utc::now().date_naive();
    let from = today - chrono::Days::new(364);
    let report = app
        .get_ok(
            &format!("/v1/analytics/pareto?from={from}&to={today}"),
            &app.token(Role::Viewer),
        )
        .await;
    let first = &report["data"][0];
    assert_eq!(first["customer_id"], ada.as_str());
    assert_eq!(first["lifetime_potential"], 26667);
    assert_eq!(first["demand_contribution_percent"], 27.03);
    let last = &report["data"][5];
    assert_eq!(last["customer_id"], gus.as_str());
    assert_eq!(last["lifetime_potential"], 2667);
    assert_eq!(last["demand_contribution_percent"], 2.7);
    let csv = crate::exports::csv(
        &app,
        &format!("/v1/exports/pareto?from={from}&to={today}"),
        &app.token(Role::Viewer),
    )
    .await;
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .ends_with(",lifetime_potential,demand_contribution_percent,credit_grade")
    );
    let ada_line = lines.next().unwrap();
    assert!(
        ada_line.starts_with(&format!("1,{ada},Ada,10000,")),
        "{ada_line}"
    );
    // Ada is not graded: the last column is empty.
    assert!(ada_line.ends_with(",26667,27.03,"), "{ada_line}");
}

#[actix_web::test]
async fn a_measured_retention_reaches_the_rows_as_the_value_endpoint_measures_it() {
    let app = TestApp::spawn().await;
    // Measured r (the default), d = 0.1.
    let xavier = customer(&app, "Xavier", "acquaintance").await;
    let yara = customer(&app, "Yara", "acquaintance").await;
    // Both bought 400 days ago (last year's buyers); Xavier again 10 days ago.
    purchase(&app, &xavier, 1000, 400.0, json!({})).await;
    purchase(&app, &xavier, 3000, 10.0, json!({})).await;
    purchase(&app, &yara, 1000, 400.0, json!({})).await;
    recompute(&app).await;
    // r = 1 retained ÷ 2 = 0.5; Xavier m = 3 000 → 3 000 · 0.5 / 0.6 = 2 500; Yara m = 0.
    // Demand over the 365-day window: 3 000 of 3 000.
    let x = figures(&app, &xavier).await;
    assert_eq!(x["lifetime_potential"], 2500);
    assert_eq!(x["demand_contribution_percent"], 100.0);
    let y = figures(&app, &yara).await;
    assert_eq!(y["lifetime_potential"], 0);
    assert_eq!(y["demand_contribution_percent"], 0.0);
    // Yara comes back: r = 2 ÷ 2 = 1, under the cap 1 + 0.1 − 0.01 = 1.09, so 1:
    // Xavier 3 000 · 1 / 0.1 = 30 000, Yara 500 · 10 = 5 000; demand 3 000 and 500 of 3 500.
    purchase(&app, &yara, 500, 20.0, json!({})).await;
    recompute(&app).await;
    let x = figures(&app, &xavier).await;
    assert_eq!(x["lifetime_potential"], 30000);
    assert_eq!(x["demand_contribution_percent"], 85.71);
    let y = figures(&app, &yara).await;
    assert_eq!(y["lifetime_potential"], 5000);
    assert_eq!(y["demand_contribution_percent"], 14.29);
    let value = app
        .get_ok(
            &format!("/v1/customers/{yara}/value"),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(value["currencies"][0]["lifetime_potential"], 5000);
    assert_eq!(
        value["currencies"][0]["lifetime_basis"]["retention_rate"],
        1.0
    );
}

#[actix_web::test]
async fn the_guidance_filters_and_settings_refuse_bad_input() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    app.expect_bad_queries(
        "/v1/customers",
        &viewer,
        &[
            (
                "relationship_below_recommended=false",
                "relationship_below_recommended",
            ),
            (
                "relationship_below_recommended=yes",
                "relationship_below_recommended",
            ),
            ("loyalty_quadrant=huge", "loyalty_quadrant"),
            ("loyalty_quadrant=large_loyal,", "loyalty_quadrant"),
            ("buyer_type=rich", "buyer_type"),
            ("organization_type=gov", "organization_type"),
            // No index walks names or changes by type: such a list is refused.
            ("buyer_type=economic&sort=name", "sort"),
            ("organization_type=reseller&sort=-updated_at", "sort"),
        ],
    )
    .await;
    let bad_settings = [
        (
            json!({"callback_days": {"accountable": 0}}),
            "callback_days.accountable",
        ),
        (
            json!({"callback_days": {"partnership": 366}}),
            "callback_days.partnership",
        ),
        (
            json!({"few_customers_percent": 30, "medium_customers_percent": 20}),
            "medium_customers_percent",
        ),
        (json!({"few_customers_percent": 0}), "few_customers_percent"),
        (
            json!({"low_margin_percent": 30, "high_margin_percent": 30}),
            "high_margin_percent",
        ),
        (json!({"low_margin_percent": -1}), "low_margin_percent"),
        (json!({"loyalty_periods": 61}), "loyalty_periods"),
        (json!({"loyalty_period_days": 0}), "loyalty_period_days"),
        (json!({"loyal_percent": 101}), "loyal_percent"),
    ];
    for (overrides, field) in bad_settings {
        let res = app
            .request(Method::PUT, "/v1/analytics/settings")
            .bearer_auth(app.token(Role::Admin))
            .header("If-Match", "\"1\"")
            .json(&settings_body(overrides.clone()))
            .send()
            .await
            .unwrap();
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{overrides}");
    }
    for body in [
        json!({"callback_days": {"weekly": 3}}),
        json!({"callback_days": {"accountable": "soon"}}),
        json!({"loyalty_periods": "twelve"}),
    ] {
        let res = app
            .request(Method::PUT, "/v1/analytics/settings")
            .bearer_auth(app.token(Role::Admin))
            .header("If-Match", "\"1\"")
            .json(&settings_body(body))
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    }
    // Nothing was written; the defaults stand.
    let settings = app.get_ok("/v1/analytics/settings", &viewer).await;
    assert_eq!(settings["version"], 1);
    assert_eq!(
        settings["callback_days"],
        json!({"accountable": 7, "proactive": 7, "partnership": 7})
    );
    assert_eq!(settings["loyalty_periods"], 12);
    assert_eq!(settings["few_customers_percent"], 5);
    // A manager may read but not change them.
    let res = app
        .request(Method::PUT, "/v1/analytics/settings")
        .bearer_auth(app.token(Role::Manager))
        .header("If-Match", "\"1\"")
        .json(&settings_body(json!({})))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn interactions_of(app: &TestApp, customer: &str) -> Vec<Value> {
    app.get_ok(
        &format!("/v1/customers/{customer}/interactions?limit=200"),
        &app.token(Role::Viewer),
    )
    .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[actix_web::test]
async fn a_sale_to_an_accountable_customer_opens_a_callback_once() {
    let app = TestApp::spawn().await;
    let (manager, _) = app.user(Role::Agent).await;
    put_settings(
        &app,
        settings_body(json!({
            "callback_days": {"accountable": 3, "proactive": 5, "partnership": null},
        })),
    )
    .await;
    let carl = crate::customers::create(
        &app,
        json!({"name": "Carl", "relationship_level": "accountable",
               "account_manager_id": manager}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sold_at = Utc::now() - Duration::hours(30);
    let body = json!({"amount": 4990, "currency": "EUR", "external_ref": "till-7",
                      "occurred_at": sold_at});
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{carl}/purchases"),
            &app.token(Role::Agent),
            &body,
        )
        .await;
    let bought = expect_json(res, StatusCode::CREATED).await;
    let callbacks = interactions_of(&app, &carl).await;
    assert_eq!(callbacks.len(), 1);
    let callback = &callbacks[0];
    assert_eq!(callback["kind"], "callback");
    assert_eq!(callback["channel"], "phone");
    assert_eq!(callback["direction"], "outbound");
    assert_eq!(callback["occurred_at"], Value::Null);
    assert_eq!(callback["assignee_id"], manager.to_string());
    assert_eq!(callback["purchase_id"], bought["id"]);
    // Due 3 days after the sale (the accountable level's days).
    assert_eq!(
        time(&callback["due_at"]),
        time(&bought["occurred_at"]) + Duration::days(3)
    );
    assert_eq!(callback["follow_up_state"], "due");
    // The same purchase sent again opens none.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{carl}/purchases"),
            &app.token(Role::Agent),
            &body,
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(interactions_of(&app, &carl).await.len(), 1);
    // Announced with the purchase.
    let events = app
        .feed("type=interaction.created", "type = 'interaction.created'")
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"]["kind"], "callback");
    assert_eq!(events[0]["data"]["purchase_id"], bought["id"]);
    // A proactive customer without a manager: due in 5 days, nobody assigned.
    let pia = crate::customers::create(
        &app,
        json!({"name": "Pia", "relationship_level": "proactive"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let p = purchase(&app, &pia, 1000, 2.0, json!({})).await;
    let callbacks = interactions_of(&app, &pia).await;
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0]["assignee_id"], Value::Null);
    assert_eq!(callbacks[0]["purchase_id"], p.as_str());
    let purchase_at = app
        .get_ok(&format!("/v1/purchases/{p}"), &app.token(Role::Viewer))
        .await["occurred_at"]
        .clone();
    assert_eq!(
        time(&callbacks[0]["due_at"]),
        time(&purchase_at) + Duration::days(5)
    );
    // Partnership has no days set, and below accountable there are none.
    for level in ["partnership", "reactive", "basic"] {
        let c = crate::customers::create(&app, json!({"name": level, "relationship_level": level}))
            .await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        purchase(&app, &c, 1000, 1.0, json!({})).await;
        assert!(interactions_of(&app, &c).await.is_empty(), "{level}");
    }
    assert_eq!(app.count("interactions WHERE kind = 'callback'").await, 2);
}

#[actix_web::test]
async fn buyer_and_organization_types_belong_to_their_kind() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let ada =
        crate::customers::create(&app, json!({"name": "Ada", "buyer_type": "economic"})).await;
    assert_eq!(ada["buyer_type"], "economic");
    assert_eq!(ada["organization_type"], Value::Null);
    let acme = crate::customers::create(
        &app,
        json!({"name": "Acme", "kind": "organization", "organization_type": "reseller"}),
    )
    .await;
    assert_eq!(acme["organization_type"], "reseller");
    crate::customers::create(&app, json!({"name": "Bob", "buyer_type": "convenience"})).await;
    crate::customers::create(&app, json!({"name": "Plain"})).await;
    // The wrong kind, a word not on the list, a wrong type: 422 naming the field, nothing
    // written.
    let before = app.count("customers").await;
    for (body, field) in [
        (
            json!({"name": "X", "kind": "organization", "buyer_type": "economic"}),
            "buyer_type",
        ),
        (
            json!({"name": "X", "organization_type": "government"}),
            "organization_type",
        ),
        (json!({"name": "X", "buyer_type": "rich"}), "buyer_type"),
        (json!({"name": "X", "buyer_type": 3}), "buyer_type"),
        (
            json!({"name": "X", "kind": "organization", "organization_type": "club"}),
            "organization_type",
        ),
    ] {
        let res = app.send(Method::POST, "/v1/customers", &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    assert_eq!(app.count("customers").await, before);
    // Making Ada an organization needs her buyer type cleared.
    let id = ada["id"].as_str().unwrap();
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            &agent,
            &json!({"kind": "organization"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["buyer_type"]);
    let changed = patch(
        &app,
        id,
        json!({"kind": "organization", "buyer_type": null, "organization_type": "business"}),
    )
    .await;
    assert_eq!(changed["buyer_type"], Value::Null);
    assert_eq!(changed["organization_type"], "business");
    // Filters.
    assert_eq!(names(&app, "buyer_type=convenience").await, ["Bob"]);
    assert_eq!(
        names(&app, "organization_type=reseller,business").await,
        ["Acme", "Ada"]
    );
    assert_eq!(
        names(&app, "organization_type=business&sort=created_at").await,
        ["Ada"]
    );
    // In the events.
    let events = app
        .feed("type=customer.updated", "type = 'customer.updated'")
        .await;
    let last = events.last().unwrap();
    assert_eq!(last["data"]["organization_type"], "business");
    // Exported, and imported.
    let csv = crate::exports::csv(&app, "/v1/exports/customers", &app.token(Role::Manager)).await;
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let at = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let bob = csv.lines().find(|l| l.contains(",Bob,")).unwrap();
    let cells: Vec<&str> = bob.split(',').collect();
    assert_eq!(cells[at("buyer_type")], "convenience");
    assert_eq!(cells[at("organization_type")], "");
    let report = crate::imports::csv(
        &app,
        "",
        "name,kind,buyer_type,organization_type\n\
         Imp One,individual,ethical,\n\
         Imp Two,organization,,non_profit\n\
         Imp Bad,organization,economic,\n",
    )
    .await;
    assert_eq!(crate::imports::counts(&report), [3, 2, 0, 0, 1]);
    assert_eq!(
        crate::imports::errors(&report),
        [(4, "buyer_type".to_owned())]
    );
    assert_eq!(names(&app, "buyer_type=ethical").await, ["Imp One"]);
    assert_eq!(
        names(&app, "organization_type=non_profit").await,
        ["Imp Two"]
    );
}
