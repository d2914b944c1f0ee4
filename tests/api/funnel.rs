//! The funnel beyond the forecast (issue 22): the customer's credit grade and the credit rule
//! of the pipeline, sales targets with gap and coverage, deal advances and stalled deals,
//! and the sales outside the funnel, on hand-built data with the arithmetic beside it.

use rapport::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

fn etag(v: &Value) -> String {
    format!("\"{}\"", v["version"])
}

async fn patch(app: &TestApp, path: &str, token: &str, v: &Value, body: Value) -> Response {
    app.patch(path)
        .bearer_auth(token)
        .header("If-Match", etag(v))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn opportunity(app: &TestApp, mut body: Value) -> Value {
    if body.get("owner_id").is_none() {
        body["owner_id"] = json!(app.user(Role::Agent).await.0);
    }
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

async fn put(app: &TestApp, path: &str, token: &str, body: Value) -> Response {
    app.send(Method::PUT, path, token, &body).await
}

// ---- credit -----------------------------------------------------------------------------

#[actix_web::test]
async fn a_credit_grade_is_set_merged_filtered_and_cleared() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = create_customer(
        &app,
        json!({"name": "Acme", "kind": "organization",
        "credit": {"grade": "b", "limit": 500000, "currency": "EUR",
                   "reviewed_at": "2026-12-01T09:00:00Z"}}),
    )
    .await;
    assert_eq!(
        c["credit"],
        json!({"grade": "b", "limit": 500000, "currency": "EUR",
               "reviewed_at": "2026-12-01T09:00:00Z"})
    );
    let other = create_customer(&app, json!({"name": "Ungraded"})).await;
    let path = format!("/v1/customers/{}", id(&c));
    // Only the grade changes: the limit stays, the review time becomes now.
    let res = patch(&app, &path, &agent, &c, json!({"credit": {"grade": "a"}})).await;
    let c2 = expect_json(res, StatusCode::OK).await;
    assert_eq!(c2["credit"]["grade"], "a");
    assert_eq!(c2["credit"]["limit"], 500000);
    assert_ne!(c2["credit"]["reviewed_at"], "2026-12-01T09:00:00Z");
    // The limit goes (with its currency).
    let res = patch(&app, &path, &agent, &c2, json!({"credit": {"limit": null}})).await;
    let c3 = expect_json(res, StatusCode::OK).await;
    assert_eq!(c3["credit"]["limit"], Value::Null);
    assert_eq!(c3["credit"]["currency"], Value::Null);
    assert_eq!(c3["credit"]["grade"], "a");

    // The list filter: graded `a` only, `a,b`, and nothing for `d`.
    let list = |q: &'static str| {
        let app = &app;
        let agent = agent.clone();
        async move {
            let page = app.get_ok(&format!("/v1/customers?{q}"), &agent).await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list("credit_grade=a").await, [id(&c)]);
    assert_eq!(list("credit_grade=a,b&sort=name").await, [id(&c)]);
    assert!(list("credit_grade=d").await.is_empty());
    app.expect_bad_queries(
        "/v1/customers",
        &agent,
        &[
            ("credit_grade=e", "credit_grade"),
            ("credit_grade=A", "credit_grade"),
        ],
    )
    .await;

    // Audited and announced with the customer.
    let audits = app
        .count(&format!(
            "audit_events WHERE entity_id = '{}' AND changes ? 'credit'",
            id(&c)
        ))
        .await;
    assert_eq!(audits, 3, "created with it, then changed twice");
    let events = app
        .count(&format!(
            "events WHERE type = 'customer.updated' AND data -> 'credit' ->> 'grade' = 'a' \
             AND object_id = '{}'",
            id(&c)
        ))
        .await;
    assert_eq!(events, 2);

    // Cleared whole.
    let res = patch(&app, &path, &agent, &c3, json!({"credit": null})).await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["credit"],
        Value::Null
    );
    assert!(list("credit_grade=a").await.is_empty());
    assert_eq!(other["credit"], Value::Null);
}

#[actix_web::test]
async fn bad_credit_input_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = create_customer(&app, json!({"name": "Acme"})).await;
    let path = format!("/v1/customers/{}", id(&c));
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"credit": {"limit": 100, "currency": "EUR"}}),
            vec!["credit.grade"],
        ),
        (json!({"credit": {"grade": "e"}}), vec!["credit"]),
        (json!({"credit": {"grade": 1}}), vec!["credit"]),
        (
            json!({"credit": {"grade": "a", "limit": -1, "currency": "EUR"}}),
            vec!["credit.limit"],
        ),
        (
            json!({"credit": {"grade": "a", "limit": 10_000_000_000_001_i64, "currency": "EUR"}}),
            vec!["credit.limit"],
        ),
        (
            json!({"credit": {"grade": "a", "limit": 100}}),
            vec!["credit.currency"],
        ),
        (
            json!({"credit": {"grade": "a", "currency": "EUR"}}),
            vec!["credit.currency"],
        ),
        (
            json!({"credit": {"grade": "a", "limit": 100, "currency": "eur"}}),
            vec!["credit.currency"],
        ),
        (
            json!({"credit": {"grade": "a", "reviewed_at": "2999-01-01T00:00:00Z"}}),
            vec!["credit.reviewed_at"],
        ),
        (
            json!({"credit": {"grade": "a", "score": 3}}),
            vec!["credit"],
        ),
        (json!({"credit": "a"}), vec!["credit"]),
    ];
    for (body, expected) in cases {
        let res = patch(&app, &path, &agent, &c, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let got = fields(&p);
        assert!(
            got.iter().zip(&expected).all(|(g, e)| g.starts_with(e)) && !got.is_empty(),
            "{body}: {got:?}"
        );
    }
    assert_eq!(app.get_ok(&path, &agent).await, c);
    assert_eq!(
        app.count(&format!("audit_events WHERE entity_id = '{}'", id(&c)))
            .await,
        1
    );
}

#[actix_web::test]
async fn the_credit_travels_through_exports_and_imports() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    let report = crate::imports::csv(
        &app,
        "",
        "name,external_id,credit.grade,credit.limit,credit.currency,credit.reviewed_at\n\
         Acme,acme-1,c,250000,EUR,2026-11-30T08:00:00Z\n\
         Plain,plain-1,,,,\n\
         Bad,bad-1,z,,,\n",
    )
    .await;
    assert_eq!(crate::imports::counts(&report), [3, 2, 0, 0, 1]);
    assert_eq!(crate::imports::errors(&report)[0].0, 4);
    let page = app.get_ok("/v1/customers?credit_grade=c", &manager).await;
    let acme = &page["data"][0];
    assert_eq!(
        acme["credit"],
        json!({"grade": "c", "limit": 250000, "currency": "EUR",
               "reviewed_at": "2026-11-30T08:00:00Z"})
    );
    let res = app
        .get("/v1/exports/customers?credit_grade=c")
        .bearer_auth(&manager)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    let mut lines = body.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cell = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    assert_eq!(cell("credit.grade"), "c");
    assert_eq!(cell("credit.limit"), "250000");
    assert_eq!(cell("credit.currency"), "EUR");
    assert_eq!(cell("credit.reviewed_at"), "2026-11-30T08:00:00Z");
    assert!(lines.next().is_none());
}

// ---- the credit rule ---------------------------------------------------------------------

#[actix_web::test]
async fn an_m_prospect_needs_a_credit_grade_past_the_rules_stage() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let agent = app.token(Role::Agent);
    let settings = app
        .get_ok("/v1/pipeline/settings", &app.token(Role::Viewer))
        .await;
    assert_eq!(settings["credit_required_after"], Value::Null);
    // No rule: an m prospect's deal moves anywhere.
    let m = create_customer(
        &app,
        json!({"name": "Skint Ltd",
        "qualification": {"money": false, "authority": true, "need": true}}),
    )
    .await;
    let rich = create_customer(
        &app,
        json!({"name": "Rich Ltd",
        "qualification": {"money": true, "authority": true, "need": true}}),
    )
    .await;
    let (owner, _) = app.user(Role::Agent).await;
    let base = |c: &Value, stage: &str| {
        json!({"customer_id": id(c), "title": "deal", "amount": 1000, "currency": "EUR",
               "stage": stage, "expected_close_date": "2026-12-20", "owner_id": owner})
    };
    opportunity(&app, base(&m, "proposal")).await;

    // The rule: past `qualified` (position 3).
    let res = app
        .request(Method::PUT, "/v1/pipeline/settings")
        .bearer_auth(&admin)
        .header("If-Match", etag(&settings))
        .json(&json!({"credit_required_after": "qualified"}))
        .send()
        .await
        .unwrap();
    let settings = expect_json(res, StatusCode::OK).await;
    assert_eq!(settings["credit_required_after"], "qualified");
    assert_eq!(settings["version"], 2);

    // Up to the rule's stage: fine; past it: 422 naming the rule.
    let o = opportunity(&app, base(&m, "qualified")).await;
    let path = format!("/v1/opportunities/{}", id(&o));
    let res = patch(&app, &path, &agent, &o, json!({"stage": "needs_analysis"})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["stage"]);
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("credit_required_after: qualified"),
        "{message}"
    );
    let res = patch(&app, &path, &agent, &o, json!({"status": "won"})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["status"]);
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &agent,
            &base(&m, "negotiation"),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["stage"]);
    // Losing it, or moving back, is never held.
    let res = patch(&app, &path, &agent, &o, json!({"stage": "lead"})).await;
    let o = expect_json(res, StatusCode::OK).await;
    // A customer with money, and one with no qualification at all, are not held.
    opportunity(&app, base(&rich, "negotiation")).await;
    let unqualified = create_customer(&app, json!({"name": "Unknown"})).await;
    opportunity(&app, base(&unqualified, "negotiation")).await;

    // Graded, the m prospect's deal moves on.
    let mpath = format!("/v1/customers/{}", id(&m));
    let res = patch(&app, &mpath, &agent, &m, json!({"credit": {"grade": "c"}})).await;
    expect_json(res, StatusCode::OK).await;
    let res = patch(&app, &path, &agent, &o, json!({"stage": "negotiation"})).await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["stage"],
        "negotiation"
    );

    // The rule's stage cannot be deleted; a bad rule is refused; a stale one is 412.
    let stage = app.get_ok("/v1/pipeline/stages/qualified", &admin).await;
    let res = app
        .delete("/v1/pipeline/stages/qualified", &admin, Some(&etag(&stage)))
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    for (body, field) in [
        (
            json!({"credit_required_after": "nowhere"}),
            "credit_required_after",
        ),
        (
            json!({"credit_required_after": "Bad Key"}),
            "credit_required_after",
        ),
        (json!({"credit_required_after": 3}), "credit_required_after"),
        (json!({"stage": "lead"}), "stage"),
    ] {
        let res = put(&app, "/v1/pipeline/settings", &admin, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    let res = app
        .request(Method::PUT, "/v1/pipeline/settings")
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"credit_required_after": null}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = put(&app, "/v1/pipeline/settings", &agent, json!({})).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    app.expect_bad_envelopes(Method::PUT, "/v1/pipeline/settings", &admin, &json!({}))
        .await;
    assert_eq!(
        app.get_ok("/v1/pipeline/settings", &agent).await,
        settings,
        "nothing refused was written"
    );
    assert_eq!(
        app.count("audit_events WHERE action = 'pipeline.settings_changed'")
            .await,
        1
    );
}

// ---- targets and the forecast -------------------------------------------------------------

#[actix_web::test]
async fn the_forecast_shows_target_gap_coverage_and_sales_outside_the_funnel() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let viewer = app.token(Role::Viewer);
    let (a, _) = app.user(Role::Agent).await;
    let (b, _) = app.user(Role::Agent).await;
    let (idle, _) = app.user(Role::Agent).await;
    let c = create_customer(&app, json!({"name": "Buyer"})).await;
    let managed = create_customer(&app, json!({"name": "Managed", "account_manager_id": a})).await;
    let deal = |owner: Uuid, amount: i64, stage: &str, status: &str| {
        let mut body = json!({"customer_id": id(&c), "title": "deal", "amount": amount,
            "currency": "EUR", "stage": stage, "owner_id": owner,
            "expected_close_date": "2026-11-15", "status": status});
        if status == "won" {
            body["closed_at"] = json!("2026-11-10T10:00:00Z");
        }
        body
    };
    // a: won 30 000; open 40 000 at proposal 50 % → 20 000 weighted.
    let won_a = opportunity(&app, deal(a, 30_000, "proposal", "won")).await;
    opportunity(&app, deal(a, 40_000, "proposal", "open")).await;
    // b: won 90 000; open 10 000 at negotiation 80 % → 8 000 weighted.
    opportunity(&app, deal(b, 90_000, "negotiation", "won")).await;
    opportunity(&app, deal(b, 10_000, "negotiation", "open")).await;
    // Team: won 120 000, weighted 28 000, forecast 148 000.

    // Purchases in Q4: 5 000 linked to a's won deal (inside the funnel); 7 000 unlinked with
    // 1 000 refunded (6 000 net); 2 500 of the managed customer; 800 in USD; 9 999 in Q3.
    let buy = |customer: &Value, body: Value| {
        let app = &app;
        let path = format!("/v1/customers/{}/purchases", id(customer));
        async move {
            let res = app
                .send(Method::POST, &path, &app.token(Role::Agent), &body)
                .await;
            expect_json(res, StatusCode::CREATED).await
        }
    };
    let linked = buy(
        &c,
        json!({"amount": 5_000, "currency": "EUR",
        "occurred_at": "2026-11-11T10:00:00Z", "opportunity_id": id(&won_a)}),
    )
    .await;
    assert_eq!(linked["opportunity_id"], json!(id(&won_a)));
    let refunded = buy(
        &c,
        json!({"amount": 7_000, "currency": "EUR",
        "occurred_at": "2026-11-12T10:00:00Z"}),
    )
    .await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/purchases/{}/refund", id(&refunded)),
            &admin,
            &json!({"amount": 1_000}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    buy(
        &managed,
        json!({"amount": 2_500, "currency": "EUR",
        "occurred_at": "2026-12-01T10:00:00Z"}),
    )
    .await;
    buy(
        &c,
        json!({"amount": 800, "currency": "USD", "occurred_at": "2026-10-02T10:00:00Z"}),
    )
    .await;
    buy(
        &c,
        json!({"amount": 9_999, "currency": "EUR", "occurred_at": "2026-09-30T23:00:00Z"}),
    )
    .await;

    // No targets yet: all null.
    let f = app
        .get_ok("/v1/analytics/forecast?period=2026-Q4", &viewer)
        .await;
    let eur = &f["currencies"][0];
    assert_eq!(eur["currency"], "EUR");
    assert_eq!(eur["forecast"], 148_000);
    for k in ["target", "gap_to_target", "coverage", "target_met"] {
        assert_eq!(eur[k], Value::Null, "{k}");
    }
    // Outside the funnel, EUR: 6 000 + 2 500 = 8 500 (the linked 5 000 and Q3 left out).
    assert_eq!(eur["outside_funnel_sales"], 8_500);
    // USD has no deals, only its sale: an entry of zeros with 800 outside.
    let usd = &f["currencies"][1];
    assert_eq!(
        (&usd["currency"], &usd["forecast"]),
        (&json!("USD"), &json!(0))
    );
    assert_eq!(usd["outside_funnel_sales"], 800);

    // Targets: team 200 000; a 100 000; b 100 000 (met: won 90 000? no: 90 000 < 100 000);
    // b's is set to 80 000 below (met); idle 50 000 (no deals at all).
    let set = |owner: Option<Uuid>, amount: i64| {
        let app = &app;
        let admin = admin.clone();
        async move {
            let mut body = json!({"period": "2026-Q4", "currency": "EUR", "amount": amount});
            if let Some(o) = owner {
                body["owner_id"] = json!(o);
            }
            put(app, "/v1/pipeline/targets", &admin, body).await
        }
    };
    let team = expect_json(set(None, 200_000).await, StatusCode::CREATED).await;
    assert_eq!(team["owner_id"], Value::Null);
    assert_eq!(
        (&team["from"], &team["to"]),
        (&json!("2026-10-01"), &json!("2026-12-31"))
    );
    expect_json(set(Some(a), 100_000).await, StatusCode::CREATED).await;
    expect_json(set(Some(b), 100_000).await, StatusCode::CREATED).await;
    let replaced = expect_json(set(Some(b), 80_000).await, StatusCode::OK).await;
    assert_eq!(
        (&replaced["amount"], &replaced["version"]),
        (&json!(80_000), &json!(2))
    );
    expect_json(set(Some(idle), 50_000).await, StatusCode::CREATED).await;

    let f = app
        .get_ok("/v1/analytics/forecast?period=2026-Q4", &viewer)
        .await;
    let eur = &f["currencies"][0];
    // Team: gap = 200 000 − 120 000 = 80 000; coverage = 28 000 / 80 000 = 0.35.
    assert_eq!(eur["target"], 200_000);
    assert_eq!(eur["gap_to_target"], 80_000);
    assert_eq!(eur["coverage"], 0.35);
    assert_eq!(eur["target_met"], false);
    let owner = |who: Uuid| {
        eur["by_owner"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["owner_id"] == json!(who))
            .unwrap()
            .clone()
    };
    // a: gap = 100 000 − 30 000 = 70 000; coverage = 20 000 / 70 000 = 0.2857… → 0.29.
    let oa = owner(a);
    assert_eq!(
        (&oa["gap_to_target"], &oa["coverage"]),
        (&json!(70_000), &json!(0.29))
    );
    // b: target 80 000 met by 90 000 won: gap −10 000, no coverage.
    let ob = owner(b);
    assert_eq!(
        (&ob["gap_to_target"], &ob["coverage"]),
        (&json!(-10_000), &Value::Null)
    );
    assert_eq!(ob["target_met"], true);
    // idle: nothing in the period: a row of zeros, gap = the whole 50 000, coverage 0.
    let oi = owner(idle);
    assert_eq!(
        (&oi["forecast"], &oi["gap_to_target"]),
        (&json!(0), &json!(50_000))
    );
    assert_eq!(oi["coverage"], 0.0);
    // USD has no target.
    assert_eq!(f["currencies"][1]["target"], Value::Null);

    // One owner's forecast: their target on the totals; outside the funnel, the purchases
    // of the customers they manage (2 500).
    let f = app
        .get_ok(
            &format!("/v1/analytics/forecast?period=2026-Q4&owner_id={a}"),
            &viewer,
        )
        .await;
    let eur = &f["currencies"][0];
    assert_eq!(
        (&eur["target"], &eur["coverage"]),
        (&json!(100_000), &json!(0.29))
    );
    assert_eq!(eur["outside_funnel_sales"], 2_500);

    // An empty period with a target: zeros, the whole target left, coverage 0.
    expect_json(
        put(
            &app,
            "/v1/pipeline/targets",
            &admin,
            json!({"period": "2027-01", "currency": "EUR", "amount": 1_000}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let f = app
        .get_ok("/v1/analytics/forecast?period=2027-01", &viewer)
        .await;
    let eur = &f["currencies"][0];
    assert_eq!(
        (&eur["forecast"], &eur["outside_funnel_sales"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(
        (&eur["gap_to_target"], &eur["coverage"]),
        (&json!(1_000), &json!(0.0))
    );
    // An empty period without one: no currencies at all.
    let f = app
        .get_ok("/v1/analytics/forecast?period=2027-02", &viewer)
        .await;
    assert_eq!(f["currencies"], json!([]));
    // The same days given as from/to find the target too; other days do not.
    let f = app
        .get_ok(
            "/v1/analytics/forecast?from=2027-01-01&to=2027-01-31",
            &viewer,
        )
        .await;
    assert_eq!(f["currencies"][0]["target"], 1_000);
    let f = app
        .get_ok(
            "/v1/analytics/forecast?from=2027-01-01&to=2027-01-30",
            &viewer,
        )
        .await;
    assert_eq!(f["currencies"], json!([]));

    // The list.
    let page = app
        .get_ok("/v1/pipeline/targets?period=2026-Q4&owner_id=team", &viewer)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let page = app.get_ok("/v1/pipeline/targets?limit=2", &viewer).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get_ok(
            &format!("/v1/pipeline/targets?limit=2&cursor={next}"),
            &viewer,
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    app.expect_bad_queries(
        "/v1/pipeline/targets",
        &viewer,
        &[
            ("period=2026-Q5", "period"),
            ("currency=eur", "currency"),
            ("owner_id=someone", "owner_id"),
            ("limit=0", "limit"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'pipeline_target'")
            .await,
        6
    );
}

#[actix_web::test]
async fn bad_targets_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let valid = json!({"period": "2026-Q4", "currency": "EUR", "amount": 100});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"period": "2026-Q5", "currency": "EUR", "amount": 1}),
            vec!["period"],
        ),
        (
            json!({"period": "1800", "currency": "EUR", "amount": 1}),
            vec!["period"],
        ),
        (
            json!({"period": "2026", "currency": "euro", "amount": 1}),
            vec!["currency"],
        ),
        (
            json!({"period": "2026", "currency": "EUR", "amount": -1}),
            vec!["amount"],
        ),
        (
            json!({"period": "2026", "currency": "EUR", "amount": 1.5}),
            vec!["amount"],
        ),
        (
            json!({"period": "2026", "currency": "EUR", "amount": 10_000_000_000_001_i64}),
            vec!["amount"],
        ),
        (
            json!({"period": "2026", "currency": "EUR", "amount": 1, "owner_id": Uuid::now_v7()}),
            vec!["owner_id"],
        ),
        (
            json!({"period": "2026", "currency": "EUR", "amount": 1, "owner_id": "x"}),
            vec!["owner_id"],
        ),
        (json!({"period": "2026", "currency": "EUR"}), vec!["amount"]),
        (
            json!({"period": "2026", "currency": "EUR", "amount": 1, "extra": 1}),
            vec!["extra"],
        ),
        (
            json!({"period": "x", "currency": "x", "amount": -1}),
            vec!["period", "currency", "amount"],
        ),
    ];
    for (body, expected) in cases {
        let res = put(&app, "/v1/pipeline/targets", &admin, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    // A version for a target not set yet, then a stale one.
    let res = app
        .request(Method::PUT, "/v1/pipeline/targets")
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&valid)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let t = expect_json(
        put(&app, "/v1/pipeline/targets", &admin, valid.clone()).await,
        StatusCode::CREATED,
    )
    .await;
    let res = app
        .request(Method::PUT, "/v1/pipeline/targets")
        .bearer_auth(&admin)
        .header("If-Match", "\"7\"")
        .json(&json!({"period": "2026-Q4", "currency": "EUR", "amount": 5}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    // Agents and managers read them; only admins set them.
    let res = put(
        &app,
        "/v1/pipeline/targets",
        &app.token(Role::Manager),
        valid.clone(),
    )
    .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    app.expect_bad_envelopes(Method::PUT, "/v1/pipeline/targets", &admin, &valid)
        .await;
    let page = app
        .get_ok("/v1/pipeline/targets", &app.token(Role::Agent))
        .await;
    assert_eq!(page["data"], json!([t]));
    assert_eq!(app.count("pipeline_targets").await, 1);
}

#[actix_web::test]
async fn a_target_is_removed_by_owner_period_and_currency() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let viewer = app.token(Role::Viewer);
    let (a, _) = app.user(Role::Agent).await;
    let set = |owner: Option<Uuid>, period: &str, currency: &str, amount: i64| {
        let app = &app;
        let admin = admin.clone();
        let mut body = json!({"period": period, "currency": currency, "amount": amount});
        if let Some(o) = owner {
            body["owner_id"] = json!(o);
        }
        async move {
            expect_json(
                put(app, "/v1/pipeline/targets", &admin, body).await,
                StatusCode::CREATED,
            )
            .await
        }
    };
    let team = set(None, "2026-Q4", "EUR", 200_000).await;
    let mine = set(Some(a), "2026-Q4", "EUR", 100_000).await;
    set(None, "2026-Q4", "USD", 5_000).await;
    set(None, "2026-11", "EUR", 1_000).await;
    let deletions = "audit_events WHERE action = 'pipeline_target.deleted'";
    async fn unchanged(app: &TestApp) {
        assert_eq!(app.count("pipeline_targets").await, 4);
        assert_eq!(
            app.count("audit_events WHERE action = 'pipeline_target.deleted'")
                .await,
            0
        );
    }

    // Path segments that name no target: 400, nothing removed.
    for path in [
        "/v1/pipeline/targets/someone/2026-Q4/EUR",
        "/v1/pipeline/targets/TEAM/2026-Q4/EUR",
        "/v1/pipeline/targets/team/2026-Q5/EUR",
        "/v1/pipeline/targets/team/26/EUR",
        "/v1/pipeline/targets/team/2026-Q4/eur",
        "/v1/pipeline/targets/team/2026-Q4/EURO",
    ] {
        let res = app.delete(path, &admin, None).await;
        expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    }
    unchanged(&app).await;
    // No token, a token that is none, and every role without `pipeline:manage`.
    let path = "/v1/pipeline/targets/team/2026-Q4/EUR";
    let res = app.request(Method::DELETE, path).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app.delete(path, "not.a.token", None).await;
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    for role in [Role::Manager, Role::Agent, Role::Viewer] {
        let res = app.delete(path, &app.token(role), None).await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let (_, owned) = app.user_with_access(Role::Manager, "owned").await;
    let res = app.delete(path, &owned, None).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    unchanged(&app).await;
    // What is not set: another period, currency or owner (the team's Q4 is not a's, nor
    // a's the team's), and an unknown user.
    for path in [
        "/v1/pipeline/targets/team/2026-Q3/EUR".to_owned(),
        "/v1/pipeline/targets/team/2026/EUR".to_owned(),
        "/v1/pipeline/targets/team/2026-Q4/GBP".to_owned(),
        format!("/v1/pipeline/targets/{a}/2026-Q4/USD"),
        format!("/v1/pipeline/targets/{a}/2026-11/EUR"),
        format!("/v1/pipeline/targets/{}/2026-Q4/EUR", Uuid::now_v7()),
    ] {
        let res = app.delete(&path, &admin, None).await;
        expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    // A stale version.
    let res = app.delete(path, &admin, Some("\"7\"")).await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    unchanged(&app).await;

    // The team's Q4 EUR target, at the version seen: gone; the others stay.
    let res = app.delete(path, &admin, Some(&etag(&team))).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.count("pipeline_targets").await, 3);
    let f = app
        .get_ok("/v1/analytics/forecast?period=2026-Q4", &viewer)
        .await;
    let eur = &f["currencies"][0];
    assert_eq!(eur["currency"], "EUR");
    for k in ["target", "gap_to_target", "coverage", "target_met"] {
        assert_eq!(eur[k], Value::Null, "{k}");
    }
    // a's own target is still there: nothing won, so the whole 100 000 is left.
    let oa = &eur["by_owner"][0];
    assert_eq!(oa["owner_id"], json!(a));
    assert_eq!(
        (&oa["target"], &oa["gap_to_target"]),
        (&json!(100_000), &json!(100_000))
    );
    assert_eq!(f["currencies"][1]["target"], 5_000);
    // Audited with what it was.
    let audit = app
        .get_ok(
            &format!(
                "/v1/audit?entity_type=pipeline_target&entity_id={}&action=pipeline_target.deleted",
                id(&team)
            ),
            &admin,
        )
        .await;
    let changes = &audit["data"][0]["changes"];
    assert_eq!(changes["amount"], json!({"from": 200_000}));
    assert_eq!(changes["period"], json!({"from": "2026-Q4"}));
    assert_eq!(changes["currency"], json!({"from": "EUR"}));
    assert_eq!(app.count(deletions).await, 1);
    // Removing it again: nothing to remove.
    let res = app.delete(path, &admin, None).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    // An owner's target, without If-Match.
    let res = app
        .delete(
            &format!("/v1/pipeline/targets/{a}/2026-Q4/EUR"),
            &admin,
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let page = app
        .get_ok(&format!("/v1/pipeline/targets?owner_id={a}"), &viewer)
        .await;
    assert_eq!(page["data"], json!([]));
    assert_ne!(mine["id"], team["id"]);
    // The month's target is another one: it stays, and so does USD's.
    let page = app.get_ok("/v1/pipeline/targets", &viewer).await;
    let left: Vec<(&Value, &Value)> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (&t["period"], &t["currency"]))
        .collect();
    assert_eq!(
        left,
        [
            (&json!("2026-Q4"), &json!("USD")),
            (&json!("2026-11"), &json!("EUR"))
        ]
    );
    assert_eq!(app.count(deletions).await, 2);
    // Set again after its removal: a new target, version 1.
    let again = set(None, "2026-Q4", "EUR", 150_000).await;
    assert_eq!(again["version"], 1);
    assert_ne!(again["id"], team["id"]);
}

// ---- advances and stalled deals ------------------------------------------------------------

#[actix_web::test]
async fn advances_date_a_deal_and_stalled_deals_are_listed() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = create_customer(&app, json!({"name": "Buyer"})).await;
    let body = |title: &str| {
        json!({"customer_id": id(&c), "title": title, "amount": 1000, "currency": "EUR",
               "expected_close_date": "2026-12-20"})
    };
    let fresh = opportunity(&app, body("fresh")).await;
    let _quiet = opportunity(&app, body("quiet")).await;
    let moved = opportunity(&app, body("moved")).await;
    let won = opportunity(&app, body("won")).await;
    assert_eq!(fresh["last_advance_at"], Value::Null);
    // Everything happened 40 days ago, as far as the deals know.
    app.sql("UPDATE opportunities SET last_progress_at = now() - interval '40 days'")
        .await;

    // An advance now on `fresh`; a stage move on `moved`; `won` closes.
    let path = format!("/v1/opportunities/{}/advances", id(&fresh));
    let res = app
        .post(&path)
        .bearer_auth(&agent)
        .header("If-Match", etag(&fresh))
        .json(&json!({"kind": "demo", "note": "the purchasing team saw it"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    let demo = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(demo["kind"], "demo");
    // A backdated custom advance: recorded, but not the latest.
    let res = app
        .send(
            Method::POST,
            &path,
            &agent,
            &json!({"kind": "custom:site_visit", "occurred_at": "2026-01-05T10:00:00Z"}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
    let f = app
        .get_ok(&format!("/v1/opportunities/{}", id(&fresh)), &agent)
        .await;
    assert_eq!(f["last_advance_at"], demo["occurred_at"]);
    assert_eq!(f["last_progress_at"], demo["occurred_at"]);
    let list = app.get_ok(&path, &agent).await;
    let kinds: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["custom:site_visit", "demo"], "oldest first");

    let m = app
        .get_ok(&format!("/v1/opportunities/{}", id(&moved)), &agent)
        .await;
    let res = patch(
        &app,
        &format!("/v1/opportunities/{}", id(&moved)),
        &agent,
        &m,
        json!({"stage": "contacted"}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    let w = app
        .get_ok(&format!("/v1/opportunities/{}", id(&won)), &agent)
        .await;
    let res = patch(
        &app,
        &format!("/v1/opportunities/{}", id(&won)),
        &agent,
        &w,
        json!({"status": "won"}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    app.sql(&format!(
        "UPDATE opportunities SET last_progress_at = now() - interval '40 days' WHERE id = '{}'",
        id(&won)
    ))
    .await;

    // Stalled for 30 days: only `quiet` (open, nothing for 40 days); `won` is closed.
    let titles = |q: &'static str| {
        let app = &app;
        let agent = agent.clone();
        async move {
            let page = app.get_ok(&format!("/v1/opportunities?{q}"), &agent).await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["title"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(titles("stalled_days=30").await, ["quiet"]);
    assert_eq!(titles("stalled_days=30&status=open").await, ["quiet"]);
    assert_eq!(titles("stalled_days=41").await, Vec::<String>::new());
    assert_eq!(
        titles("status=open&sort=-last_progress_at").await,
        ["moved", "fresh", "quiet"],
        "the latest progress first: the stage move came after the demo"
    );
    app.expect_bad_queries(
        "/v1/opportunities",
        &agent,
        &[
            ("stalled_days=0", "stalled_days"),
            ("stalled_days=3651", "stalled_days"),
            ("stalled_days=-1", "stalled_days"),
            ("stalled_days=many", "stalled_days"),
            ("stalled_days=30&status=won", "status"),
            ("sort=last_progress_at", "sort"),
        ],
    )
    .await;

    // Closed deals take no advances; bad advances are refused and write nothing.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/opportunities/{}/advances", id(&won)),
            &agent,
            &json!({"kind": "demo"}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"kind": "lunch"}), vec!["kind"]),
        (json!({"kind": "custom:"}), vec!["kind"]),
        (json!({"kind": "custom:Site"}), vec!["kind"]),
        (json!({"kind": 3}), vec!["kind"]),
        (json!({}), vec!["kind"]),
        (
            json!({"kind": "demo", "occurred_at": "2999-01-01T00:00:00Z"}),
            vec!["occurred_at"],
        ),
        (
            json!({"kind": "demo", "occurred_at": "1800-01-01T00:00:00Z"}),
            vec!["occurred_at"],
        ),
        (json!({"kind": "demo", "note": " "}), vec!["note"]),
        (
            json!({"kind": "demo", "note": "n".repeat(1001)}),
            vec!["note"],
        ),
        (json!({"kind": "demo", "by": "me"}), vec!["by"]),
        (json!({"kind": "x", "note": ""}), vec!["kind", "note"]),
    ];
    for (body, expected) in cases {
        let res = app.send(Method::POST, &path, &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let res = app
        .post(&path)
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .json(&json!({"kind": "trial"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app
        .send(
            Method::POST,
            &path,
            &app.token(Role::Viewer),
            &json!({"kind": "trial"}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/opportunities/{}/advances", Uuid::now_v7()),
            &agent,
            &json!({"kind": "trial"}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    app.expect_bad_envelopes(Method::POST, &path, &agent, &json!({"kind": "trial"}))
        .await;
    assert_eq!(app.count("opportunity_advances").await, 2);
    // Each advance audited and announced as an update of the opportunity.
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_id = '{}' AND changes ? 'advance'",
            id(&fresh)
        ))
        .await,
        2
    );
    assert_eq!(
        app.count(&format!(
            "events WHERE type = 'opportunity.updated' AND object_id = '{}'",
            id(&fresh)
        ))
        .await,
        2
    );
}

// ---- purchases and their opportunity ------------------------------------------------------

#[actix_web::test]
async fn a_customers_advances_are_in_their_data_subject_export() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let admin = app.token(Role::Admin);
    let grace = create_customer(&app, json!({"name": "Grace"})).await;
    let other = create_customer(&app, json!({"name": "Other"})).await;
    let body = |c: &Value, title: &str| {
        json!({"customer_id": id(c), "title": title, "amount": 1000, "currency": "EUR",
               "expected_close_date": "2026-12-20"})
    };
    let chairs = opportunity(&app, body(&grace, "chairs")).await;
    let desks = opportunity(&app, body(&grace, "desks")).await;
    let theirs = opportunity(&app, body(&other, "theirs")).await;
    let advance = |o: &Value, body: Value| {
        let app = &app;
        let agent = agent.clone();
        let path = format!("/v1/opportunities/{}/advances", id(o));
        async move {
            expect_json(
                app.send(Method::POST, &path, &agent, &body).await,
                StatusCode::CREATED,
            )
            .await
        }
    };
    let demo = advance(
        &chairs,
        json!({"kind": "demo", "occurred_at": "2026-03-01T10:00:00Z",
               "note": "Grace liked the oak ones"}),
    )
    .await;
    let trial = advance(
        &desks,
        json!({"kind": "trial", "occurred_at": "2026-02-01T10:00:00Z"}),
    )
    .await;
    advance(
        &theirs,
        json!({"kind": "demo", "occurred_at": "2026-01-01T10:00:00Z"}),
    )
    .await;
    // A deleted opportunity's advances are still held on her: they are in the export.
    let res = app
        .delete(&format!("/v1/opportunities/{}", id(&desks)), &agent, None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    // Hers only (not Other's), oldest first: the trial of February, the demo of March.
    let export = app
        .get_ok(&format!("/v1/customers/{}/export", id(&grace)), &admin)
        .await;
    assert_eq!(export["opportunity_advances"], json!([trial, demo]));
    assert_eq!(export["opportunities"].as_array().unwrap().len(), 2);
    let theirs_export = app
        .get_ok(&format!("/v1/customers/{}/export", id(&other)), &admin)
        .await;
    assert_eq!(
        theirs_export["opportunity_advances"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Erased: the advances stay (the funnel's progress), their notes are forgotten.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{}/erase", id(&grace)),
            &admin,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let export = app
        .get_ok(&format!("/v1/customers/{}/export", id(&grace)), &admin)
        .await;
    let kept: Vec<(&Value, &Value)> = export["opportunity_advances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (&a["kind"], &a["note"]))
        .collect();
    assert_eq!(
        kept,
        [
            (&json!("trial"), &Value::Null),
            (&json!("demo"), &Value::Null)
        ]
    );
}

#[actix_web::test]
async fn a_purchase_names_an_opportunity_of_its_own_customer_only() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = create_customer(&app, json!({"name": "Buyer"})).await;
    let other = create_customer(&app, json!({"name": "Someone else"})).await;
    let deal = opportunity(
        &app,
        json!({"customer_id": id(&other), "title": "deal",
        "amount": 1000, "currency": "EUR", "expected_close_date": "2026-12-20"}),
    )
    .await;
    let path = format!("/v1/customers/{}/purchases", id(&c));
    for (body, field) in [
        (
            json!({"amount": 100, "currency": "EUR", "opportunity_id": id(&deal)}),
            "opportunity_id",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "opportunity_id": Uuid::now_v7()}),
            "opportunity_id",
        ),
        (
            json!({"amount": 100, "currency": "EUR", "opportunity_id": "deal-1"}),
            "opportunity_id",
        ),
    ] {
        let res = app.send(Method::POST, &path, &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    assert_eq!(app.count("purchases").await, 0);
    // Its own customer's deal: recorded, in the purchase, its export and its event.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{}/purchases", id(&other)),
            &agent,
            &json!({"amount": 100, "currency": "EUR", "opportunity_id": id(&deal),
                    "external_ref": "till-1"}),
        )
        .await;
    let p = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(p["opportunity_id"], json!(id(&deal)));
    assert_eq!(
        app.count(&format!(
            "events WHERE type = 'purchase.created' AND data ->> 'opportunity_id' = '{}'",
            id(&deal)
        ))
        .await,
        1
    );
    let res = app
        .get("/v1/exports/purchases")
        .bearer_auth(&agent)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.lines().next().unwrap().contains(",opportunity_id,"));
    assert!(body.contains(&id(&deal)));
    // An import row names one the same way, and is refused for another customer's.
    let res = app
        .post("/v1/imports/purchases")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body(format!(
            "customer_id,amount,currency,opportunity_id\n{},200,EUR,{}\n{},300,EUR,{}\n",
            id(&other),
            id(&deal),
            id(&c),
            id(&deal)
        ))
        .send()
        .await
        .unwrap();
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["created"], 1, "{report}");
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["errors"][0]["field"], "opportunity_id");
}
