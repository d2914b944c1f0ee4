//! Groups of organizations (`parent_id`, subsidiaries, the group roll-up in the analytics)
//! and referrals (`referred_by_id`, the referral figures and the key-customer classes), with
//! exact expected values on small hand-built data and every rule with bad input.

use chrono::{Duration, Utc};
use rapport::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn organization(app: &TestApp, name: &str, extra: Value) -> String {
    let mut body = json!({"name": name, "kind": "organization"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    id(&create_customer(app, body).await)
}

async fn person(app: &TestApp, name: &str, extra: Value) -> String {
    let mut body = json!({"name": name});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    id(&create_customer(app, body).await)
}

async fn patch(app: &TestApp, token: &str, customer: &str, body: Value) -> Response {
    app.patch(&format!("/v1/customers/{customer}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn refused(app: &TestApp, customer: &str, body: Value, field: &str) -> Value {
    let res = patch(app, &app.token(Role::Agent), customer, body).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), [field], "{p}");
    p
}

fn message(problem: &Value) -> String {
    problem["errors"][0]["message"].as_str().unwrap().to_owned()
}

fn subsidiaries(org: &str) -> String {
    format!("/v1/customers/{org}/subsidiaries")
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn updates(app: &TestApp) -> i64 {
    app.count("events WHERE type = 'customer.updated'").await
}

/// A purchase in EUR `days` ago.
async fn purchase(app: &TestApp, customer: &str, amount: i64, days: i64) {
    let at = Utc::now() - Duration::days(days);
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/purchases"),
            &app.token(Role::Agent),
            &json!({"amount": amount, "currency": "EUR", "occurred_at": at}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
}

async fn put_settings(app: &TestApp, influential_referrals: i64) {
    let admin = app.token(Role::Admin);
    let current = app.get_ok("/v1/analytics/settings", &admin).await;
    let res = app
        .request(Method::PUT, "/v1/analytics/settings")
        .bearer_auth(&admin)
        .header("If-Match", format!("\"{}\"", current["version"]))
        .json(&json!({
            "currency": "EUR", "measure": "revenue", "window_days": 365,
            "key_percent": 10, "development_percent": 30, "maintenance_percent": 60,
            "high_value_percent": 30, "churn_threshold": 50, "contact_days": 90,
            "move_to_dissolution": false, "influential_referrals": influential_referrals,
        }))
        .send()
        .await
        .unwrap();
    let settings = expect_json(res, StatusCode::OK).await;
    assert_eq!(settings["influential_referrals"], influential_referrals);
}

async fn recompute(app: &TestApp) {
    let res = app
        .send(
            Method::POST,
            "/v1/analytics/recompute",
            &app.token(Role::Admin),
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
}

#[actix_web::test]
async fn organizations_form_groups_shown_as_a_tree() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    let a = organization(&app, "Acme Holding", json!({})).await;
    let b = organization(&app, "Acme Europe", json!({"parent_id": a})).await;
    let c = organization(&app, "Acme Germany", json!({"parent_id": b})).await;
    let d = organization(&app, "Acme Asia", json!({})).await;
    let before = updates(&app).await;
    let res = patch(&app, &app.token(Role::Agent), &d, json!({"parent_id": a})).await;
    let moved = expect_json(res, StatusCode::OK).await;
    assert_eq!(moved["parent_id"], a.as_str());
    assert_eq!(moved["referred_by_id"], Value::Null);
    assert_eq!(moved["influential"], false);
    // The change is announced and audited as any customer update.
    assert_eq!(updates(&app).await, before + 1);
    let audited = app
        .count(&format!(
            "audit_events WHERE entity_id = '{d}' AND changes::text LIKE '%parent_id%'"
        ))
        .await;
    assert_eq!(audited, 1);

    // Depth first: Europe, its Germany, then Asia (created after Europe).
    let tree = app.get_ok(&subsidiaries(&a), &viewer).await;
    assert_eq!(ids(&tree), [b.as_str(), c.as_str(), d.as_str()]);
    assert_eq!(tree["root_id"], a.as_str());
    assert_eq!(tree["parent_id"], Value::Null);
    assert_eq!(tree["truncated"], false);
    let depths: Vec<i64> = tree["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["depth"].as_i64().unwrap())
        .collect();
    assert_eq!(depths, [1, 2, 1]);
    assert_eq!(tree["data"][1]["parent_id"], b.as_str());
    assert_eq!(tree["data"][1]["name"], "Acme Germany");
    let shallow = app
        .get_ok(&format!("{}?depth=1", subsidiaries(&a)), &viewer)
        .await;
    assert_eq!(ids(&shallow), [b.as_str(), d.as_str()]);
    let leaf = app.get_ok(&subsidiaries(&c), &viewer).await;
    assert_eq!(leaf["data"], json!([]));
    assert_eq!(leaf["root_id"], a.as_str());
    assert_eq!(leaf["parent_id"], b.as_str());

    // A deleted subsidiary leaves the tree with what is below it.
    let res = app
        .delete(
            &format!("/v1/customers/{b}"),
            &app.token(Role::Manager),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let tree = app.get_ok(&subsidiaries(&a), &viewer).await;
    assert_eq!(ids(&tree), [d.as_str()]);

    // `null` takes an organization out of its group.
    let res = patch(
        &app,
        &app.token(Role::Agent),
        &d,
        json!({"parent_id": null}),
    )
    .await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["parent_id"],
        Value::Null
    );
    assert_eq!(
        app.get_ok(&subsidiaries(&a), &viewer).await["data"],
        json!([])
    );
}

#[actix_web::test]
async fn cycles_wrong_kinds_and_bad_input_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let a = organization(&app, "Acme Holding", json!({})).await;
    let b = organization(&app, "Acme Europe", json!({"parent_id": a})).await;
    let c = organization(&app, "Acme Germany", json!({"parent_id": b})).await;
    let ada = person(&app, "Ada Lovelace", json!({})).await;
    let before = updates(&app).await;
    let created = app.count("customers").await;

    // Acme Holding below Acme Germany: Holding → Germany → Europe → Holding.
    let p = refused(&app, &a, json!({"parent_id": c}), "parent_id").await;
    assert_eq!(
        message(&p),
        format!("would make a cycle: {a} → {c} → {b} → {a}")
    );
    let p = refused(&app, &a, json!({"parent_id": a}), "parent_id").await;
    assert_eq!(message(&p), format!("would make a cycle: {a} → {a}"));
    // Only organizations belong to a group, and only an organization is a parent.
    refused(&app, &ada, json!({"parent_id": a}), "parent_id").await;
    let p = refused(&app, &c, json!({"parent_id": ada}), "parent_id").await;
    assert!(message(&p).contains("must be an organization"), "{p}");
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &app.token(Role::Agent),
            &json!({"name": "Solo", "parent_id": a}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["parent_id"]);
    // An organization with subsidiaries stays one; one with a parent needs it gone first.
    refused(&app, &a, json!({"kind": "individual"}), "kind").await;
    refused(&app, &c, json!({"kind": "individual"}), "parent_id").await;
    // Unknown, malformed and mistyped values.
    let nobody = uuid::Uuid::now_v7();
    let p = refused(&app, &c, json!({"parent_id": nobody}), "parent_id").await;
    assert!(message(&p).contains("names no customer"), "{p}");
    refused(
        &app,
        &c,
        json!({"referred_by_id": nobody}),
        "referred_by_id",
    )
    .await;
    refused(&app, &c, json!({"referred_by_id": c}), "referred_by_id").await;
    for (body, field) in [
        (json!({"parent_id": "not-a-uuid"}), "parent_id"),
        (json!({"parent_id": 42}), "parent_id"),
        (json!({"referred_by_id": true}), "referred_by_id"),
        (json!({"influential": "yes"}), "influential"),
        (json!({"influential": null}), "influential"),
    ] {
        let res = patch(&app, &app.token(Role::Agent), &c, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    // A viewer may not change a customer; without a token nobody may.
    let res = patch(
        &app,
        &app.token(Role::Viewer),
        &c,
        json!({"parent_id": null}),
    )
    .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .patch(&format!("/v1/customers/{c}"))
        .json(&json!({"parent_id": null}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A deleted organization is no parent.
    let gone = organization(&app, "Gone Ltd", json!({})).await;
    app.delete(
        &format!("/v1/customers/{gone}"),
        &app.token(Role::Manager),
        None,
    )
    .await;
    refused(&app, &c, json!({"parent_id": gone}), "parent_id").await;
    let after_gone = updates(&app).await;
    assert_eq!(after_gone, before);
    assert_eq!(app.count("customers").await, created + 1);
    let still = app
        .get_ok(&format!("/v1/customers/{a}"), &app.token(Role::Viewer))
        .await;
    assert_eq!(still["parent_id"], Value::Null);
    assert_eq!(still["version"], 1);

    // The subsidiaries' query.
    let viewer = app.token(Role::Viewer);
    app.expect_bad_queries(
        &subsidiaries(&a),
        &viewer,
        &[
            ("depth=0", "depth"),
            ("depth=11", "depth"),
            ("depth=two", "depth"),
            ("sort=name", "sort"),
        ],
    )
    .await;
    let res = app
        .get(&subsidiaries(&ada))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .get(&subsidiaries(&nobody.to_string()))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.get(&subsidiaries(&a)).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

#[actix_web::test]
async fn a_group_is_at_most_ten_levels_deep() {
    let app = TestApp::spawn().await;
    let mut chain = vec![organization(&app, "Level 1", json!({})).await];
    for level in 2..=10 {
        let parent = chain.last().unwrap().clone();
        chain.push(
            organization(
                &app,
                &format!("Level {level}"),
                json!({"parent_id": parent}),
            )
            .await,
        );
    }
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &app.token(Role::Agent),
            &json!({"name": "Level 11", "kind": "organization", "parent_id": chain[9]}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(
        message(&p),
        "a group has at most 10 levels; this one would have 11"
    );
    // Moving a two-level tree below level 9 would make 11 levels too.
    let top = organization(&app, "Other", json!({})).await;
    organization(&app, "Other's child", json!({"parent_id": top})).await;
    refused(&app, &top, json!({"parent_id": chain[8]}), "parent_id").await;
    let tree = app
        .get_ok(&subsidiaries(&chain[0]), &app.token(Role::Viewer))
        .await;
    assert_eq!(tree["data"].as_array().unwrap().len(), 9);
    assert_eq!(tree["data"][8]["depth"], 9);
}

#[actix_web::test]
async fn owned_only_users_see_and_link_only_what_they_manage() {
    let app = TestApp::spawn().await;
    let (me, mine) = app.user_with_access(Role::Agent, "owned").await;
    let (other, _) = app.user(Role::Agent).await;
    let a = organization(&app, "Mine Holding", json!({"account_manager_id": me})).await;
    let b = organization(
        &app,
        "Mine Europe",
        json!({"account_manager_id": me, "parent_id": a}),
    )
    .await;
    let hidden = organization(
        &app,
        "Theirs",
        json!({"account_manager_id": other, "parent_id": a}),
    )
    .await;
    // Below one they do not manage: hidden with it.
    organization(
        &app,
        "Mine below theirs",
        json!({"account_manager_id": me, "parent_id": hidden}),
    )
    .await;
    let tree = app.get_ok(&subsidiaries(&a), &mine).await;
    assert_eq!(ids(&tree), [b.as_str()]);
    let res = app
        .get(&subsidiaries(&hidden))
        .bearer_auth(&mine)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // Another's customer is no parent and no referrer for them.
    let res = patch(&app, &mine, &b, json!({"parent_id": hidden})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["parent_id"]);
    let res = patch(&app, &mine, &b, json!({"referred_by_id": hidden})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["referred_by_id"]);
    // The group's value is of the organizations they manage.
    purchase(&app, &a, 1_000, 3).await;
    purchase(&app, &b, 2_000, 3).await;
    purchase(&app, &hidden, 4_000, 3).await;
    let value = app
        .get_ok(&format!("/v1/customers/{b}/value?group=true"), &mine)
        .await;
    assert_eq!(value["group"], json!({"root_id": a, "customers": 3}));
    // 1000 (Holding) + 2000 (Europe); the 4000 of the one they do not manage stays out.
    assert_eq!(value["currencies"][0]["cumulative_sales"], 3_000);
    let all = app
        .get_ok(
            &format!("/v1/customers/{b}/value?group=true"),
            &app.token(Role::Manager),
        )
        .await;
    assert_eq!(all["group"], json!({"root_id": a, "customers": 4}));
    assert_eq!(all["currencies"][0]["cumulative_sales"], 7_000);
}

#[actix_web::test]
async fn a_group_rolls_up_to_its_root_in_pareto_segments_and_value() {
    let app = TestApp::spawn().await;
    put_settings(&app, 3).await;
    let a = organization(&app, "Acme Holding", json!({"lifecycle_stage": "stable"})).await;
    let b = organization(
        &app,
        "Acme Europe",
        json!({"parent_id": a, "lifecycle_stage": "stable"}),
    )
    .await;
    let x = organization(&app, "Globex", json!({"lifecycle_stage": "stable"})).await;
    purchase(&app, &a, 10_000, 10).await;
    purchase(&app, &b, 30_000, 10).await;
    purchase(&app, &x, 35_000, 10).await;
    let analyst = app.token(Role::Manager);

    // One by one: Globex 35000, Europe 30000, Holding 10000 of 75000.
    let pareto = app.get_ok("/v1/analytics/pareto", &analyst).await;
    let ranked: Vec<(String, i64)> = pareto["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["customer_id"].as_str().unwrap().to_owned(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        [
            (x.clone(), 35_000),
            (b.clone(), 30_000),
            (a.clone(), 10_000)
        ]
    );
    // As groups: Acme 40000 (10000 + 30000) before Globex 35000; the total stays 75000.
    let grouped = app
        .get_ok("/v1/analytics/pareto?group=true", &analyst)
        .await;
    let ranked: Vec<(String, i64)> = grouped["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["customer_id"].as_str().unwrap().to_owned(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranked, [(a.clone(), 40_000), (x.clone(), 35_000)]);
    assert_eq!(grouped["data"][0]["name"], "Acme Holding");
    assert_eq!(grouped["data"][0]["purchases"], 2);
    assert_eq!(grouped["summary"]["customers"], 2);
    assert_eq!(grouped["summary"]["total"], 75_000);
    app.expect_bad_queries(
        "/v1/analytics/pareto",
        &analyst,
        &[("group=maybe", "group")],
    )
    .await;

    // The value of a subsidiary, rolled up to its group: Holding and Europe.
    let own = app
        .get_ok(&format!("/v1/customers/{b}/value"), &analyst)
        .await;
    assert_eq!(own["currencies"][0]["cumulative_sales"], 30_000);
    assert!(own.get("group").is_none());
    let group = app
        .get_ok(&format!("/v1/customers/{b}/value?group=true"), &analyst)
        .await;
    assert_eq!(group["group"], json!({"root_id": a, "customers": 2}));
    assert_eq!(group["currencies"][0]["cumulative_sales"], 40_000);
    assert_eq!(group["currencies"][0]["purchases"], 2);
    app.expect_bad_queries(
        &format!("/v1/customers/{b}/value"),
        &analyst,
        &[("group=1x", "group"), ("depth=2", "depth")],
    )
    .await;

    // Segments. Tiers over 3 customers (key 10 %, development 30 %, maintenance 60 %):
    // Globex has nobody above (0 × 100 < 10 × 3: key), Europe one (100 < 180: maintenance),
    // Holding two (200 ≥ 180: opportunity).
    recompute(&app).await;
    let tiers = |segments: &Value| -> Vec<(String, i64, i64)> {
        segments["value_tier"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().unwrap().to_owned(),
                    s["customers"].as_i64().unwrap(),
                    s["value"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let segments = app.get_ok("/v1/analytics/segments", &analyst).await;
    assert_eq!(
        tiers(&segments),
        [
            ("key".to_owned(), 1, 35_000),
            ("maintenance".to_owned(), 1, 30_000),
            ("opportunity".to_owned(), 1, 10_000),
        ]
    );
    // As groups, Acme counts once, as its root (tier `opportunity`) with 40000.
    let grouped = app
        .get_ok("/v1/analytics/segments?group=true", &analyst)
        .await;
    assert_eq!(
        tiers(&grouped),
        [
            ("key".to_owned(), 1, 35_000),
            ("opportunity".to_owned(), 1, 40_000),
        ]
    );
    assert_eq!(grouped["lifecycle_stage"][0]["customers"], 2);
    app.expect_bad_queries(
        "/v1/analytics/segments",
        &analyst,
        &[("group=nope", "group"), ("measure=profit", "measure")],
    )
    .await;
}

#[actix_web::test]
async fn referrals_are_counted_valued_and_classed_exactly() {
    let app = TestApp::spawn().await;
    put_settings(&app, 2).await;
    let rita = person(&app, "Rita Referrer", json!({})).await;
    let quinn = person(&app, "Quinn", json!({})).await;
    let sam = person(&app, "Sam", json!({"influential": true})).await;
    let r1 = person(&app, "Referred One", json!({"referred_by_id": rita})).await;
    let r2 = person(&app, "Referred Two", json!({})).await;
    let before = updates(&app).await;
    let res = patch(
        &app,
        &app.token(Role::Agent),
        &r2,
        json!({"referred_by_id": rita}),
    )
    .await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["referred_by_id"],
        rita.as_str()
    );
    assert_eq!(updates(&app).await, before + 1);
    let r3 = person(&app, "Referred Three", json!({"referred_by_id": quinn})).await;
    let r4 = person(&app, "Referred Four", json!({"referred_by_id": rita})).await;
    purchase(&app, &rita, 50_000, 20).await;
    purchase(&app, &r1, 10_000, 10).await;
    purchase(&app, &r2, 3_000, 5).await;
    purchase(&app, &r2, 5_000, 400).await; // outside the 365-day window
    purchase(&app, &r3, 7_000, 30).await;
    purchase(&app, &r4, 9_000, 30).await;
    // A deleted referral no longer counts.
    let res = app
        .delete(
            &format!("/v1/customers/{r4}"),
            &app.token(Role::Manager),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Six live customers; values Rita 50000, One 10000, Three 7000, Two 3000, Quinn and Sam
    // 0. Key tier: fewer than 10 % × 6 = 0.6 customers above, so only Rita (nobody above).
    recompute(&app).await;
    let reader = app.token(Role::Manager);
    let referrals = |v: &Value| v["referrals"].clone();
    let value = |who: &str| {
        let path = format!("/v1/customers/{who}/value");
        let token = reader.clone();
        let app = &app;
        async move { app.get_ok(&path, &token).await }
    };
    // Rita: One and Two (Four is deleted) = 2 ≥ 2, so influential, and of tier key: dual.
    // Their value in the window: 10000 + 3000 (Two's 5000 is 400 days old) = 13000.
    assert_eq!(
        referrals(&value(&rita).await),
        json!({"referrals": 2, "referred_value": 13_000, "currency": "EUR",
               "measure": "revenue", "window_days": 365, "high_value": true,
               "influential": true, "key_class": "dual"})
    );
    // Quinn: Three alone (1 < 2), 7000, not of tier key: no class.
    let quinn_value = value(&quinn).await;
    assert_eq!(quinn_value["referrals"]["referrals"], 1);
    assert_eq!(quinn_value["referrals"]["referred_value"], 7_000);
    assert_eq!(quinn_value["referrals"]["key_class"], Value::Null);
    // Sam: influential by hand, with no referral.
    let sam_value = value(&sam).await;
    assert_eq!(sam_value["referrals"]["referrals"], 0);
    assert_eq!(sam_value["referrals"]["key_class"], "influential");

    let names = |query: &str| {
        let path = format!("/v1/customers?{query}&sort=name");
        let token = reader.clone();
        let app = &app;
        async move {
            app.get_ok(&path, &token).await["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("key_class=dual").await, ["Rita Referrer"]);
    assert_eq!(names("key_class=influential").await, ["Sam"]);
    assert_eq!(names("key_class=high_value").await, Vec::<String>::new());
    assert_eq!(
        names("key_class=influential,dual").await,
        ["Rita Referrer", "Sam"]
    );
    let classes = |segments: &Value| -> Vec<(String, i64)> {
        segments["key_class"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().unwrap().to_owned(),
                    s["customers"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let segments = app.get_ok("/v1/analytics/segments", &reader).await;
    assert_eq!(
        classes(&segments),
        [
            ("dual".to_owned(), 1),
            ("influential".to_owned(), 1),
            ("none".to_owned(), 4),
        ]
    );

    // From three referrals, Rita (2) is only of high value; Quinn made influential by hand.
    put_settings(&app, 3).await;
    let res = patch(
        &app,
        &app.token(Role::Agent),
        &quinn,
        json!({"influential": true}),
    )
    .await;
    assert_eq!(expect_json(res, StatusCode::OK).await["influential"], true);
    assert_eq!(names("key_class=high_value").await, ["Rita Referrer"]);
    assert_eq!(names("key_class=influential").await, ["Quinn", "Sam"]);
    assert_eq!(names("key_class=dual").await, Vec::<String>::new());
    assert_eq!(value(&rita).await["referrals"]["key_class"], "high_value");

    app.expect_bad_queries(
        "/v1/customers",
        &reader,
        &[
            ("key_class=vip", "key_class"),
            ("key_class=dual,", "key_class"),
        ],
    )
    .await;
    // The setting's range.
    let admin = app.token(Role::Admin);
    let current = app.get_ok("/v1/analytics/settings", &admin).await;
    for bad in [json!(0), json!(10_001), json!("3")] {
        let res = app
            .request(Method::PUT, "/v1/analytics/settings")
            .bearer_auth(&admin)
            .header("If-Match", format!("\"{}\"", current["version"]))
            .json(&json!({
                "currency": "EUR", "measure": "revenue", "window_days": 365,
                "key_percent": 10, "development_percent": 30, "maintenance_percent": 60,
                "high_value_percent": 30, "churn_threshold": 50, "contact_days": 90,
                "move_to_dissolution": false, "influential_referrals": bad,
            }))
            .send()
            .await
            .unwrap();
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["influential_referrals"], "{bad}");
    }
}

#[actix_web::test]
async fn the_new_fields_export_and_import() {
    let app = TestApp::spawn().await;
    let holding = organization(&app, "Holding", json!({"external_id": "h-1"})).await;
    organization(
        &app,
        "Daughter",
        json!({"external_id": "d-1", "parent_id": holding}),
    )
    .await;
    let rita = person(
        &app,
        "Rita",
        json!({"external_id": "r-1", "influential": true}),
    )
    .await;
    let res = app
        .get("/v1/exports/customers")
        .bearer_auth(app.token(Role::Admin))
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let lines: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let daughter = lines.iter().find(|c| c["name"] == "Daughter").unwrap();
    assert_eq!(daughter["parent_id"], holding.as_str());
    assert_eq!(
        lines.iter().find(|c| c["name"] == "Rita").unwrap()["influential"],
        true
    );
    let res = app
        .get("/v1/exports/customers")
        .bearer_auth(app.token(Role::Admin))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    let csv = res.text().await.unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.ends_with(",parent_id,referred_by_id,influential"),
        "{header}"
    );

    // A new customer names its referrer; a referrer nobody is fails its row; a parent may be
    // cleared, and one that would close a cycle fails its row.
    let nobody = uuid::Uuid::now_v7();
    let body = format!(
        "external_id,name,kind,referred_by_id,influential,parent_id\n\
         n-1,Newcomer,individual,{rita},false,\n\
         n-2,Lost,individual,{nobody},false,\n\
         d-1,Daughter,organization,,false,\n\
         h-1,Holding,organization,,false,{holding}\n"
    );
    let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
    assert_eq!(crate::imports::counts(&report), [4, 1, 1, 0, 2], "{report}");
    assert_eq!(
        crate::imports::errors(&report),
        [
            (3, "referred_by_id".to_owned()),
            (5, "parent_id".to_owned()),
        ]
    );
    let page = app
        .get_ok("/v1/customers?q=Newcomer", &app.token(Role::Admin))
        .await;
    assert_eq!(page["data"][0]["referred_by_id"], rita.as_str());
    let rita_value = app
        .get_ok(
            &format!("/v1/customers/{rita}/value"),
            &app.token(Role::Admin),
        )
        .await;
    assert_eq!(rita_value["referrals"]["referrals"], 1);
}

async fn interaction(app: &TestApp, customer: &str, hours: i64) -> String {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/interactions"),
            &app.token(Role::Agent),
            &json!({"channel": "phone", "direction": "inbound", "kind": "inquiry",
                    "occurred_at": Utc::now() - Duration::hours(hours)}),
        )
        .await;
    id(&expect_json(res, StatusCode::CREATED).await)
}

fn item_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn an_organizations_timeline_can_include_its_contacts_interactions() {
    let app = TestApp::spawn().await;
    let (me, mine) = app.user_with_access(Role::Agent, "owned").await;
    let (other, _) = app.user(Role::Agent).await;
    let org = organization(&app, "Acme", json!({"account_manager_id": me})).await;
    let ada = person(&app, "Ada", json!({"account_manager_id": me})).await;
    let alan = person(&app, "Alan", json!({"account_manager_id": other})).await;
    let stranger = person(&app, "Stranger", json!({})).await;
    for who in [&ada, &alan] {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/customers/{org}/contacts"),
                &app.token(Role::Agent),
                &json!({"person_id": who}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await;
    }
    let with_org = interaction(&app, &org, 30).await;
    let with_ada = interaction(&app, &ada, 20).await;
    let with_alan = interaction(&app, &alan, 10).await;
    interaction(&app, &stranger, 5).await;
    let reader = app.token(Role::Manager);
    let timeline = format!("/v1/customers/{org}/timeline?types=interaction");

    let own = app.get_ok(&timeline, &reader).await;
    assert_eq!(item_ids(&own), [with_org.as_str()]);
    // Newest first, each under its person.
    let all = app
        .get_ok(&format!("{timeline}&include=contacts"), &reader)
        .await;
    assert_eq!(
        item_ids(&all),
        [with_alan.as_str(), with_ada.as_str(), with_org.as_str()]
    );
    assert_eq!(all["data"][0]["interaction"]["customer_id"], alan.as_str());
    // Page by page through the people's items too.
    let first = app
        .get_ok(&format!("{timeline}&include=contacts&limit=2"), &reader)
        .await;
    assert_eq!(item_ids(&first), [with_alan.as_str(), with_ada.as_str()]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .get_ok(
            &format!("{timeline}&include=contacts&limit=2&cursor={cursor}"),
            &reader,
        )
        .await;
    assert_eq!(item_ids(&rest), [with_org.as_str()]);
    assert_eq!(rest["next_cursor"], Value::Null);
    // A person who leaves stays a past contact, and their interactions stay on it.
    let res = app
        .patch(&format!("/v1/customers/{org}/contacts/{alan}"))
        .bearer_auth(app.token(Role::Agent))
        .header("If-Match", "\"1\"")
        .json(&json!({"ended_at": Utc::now()}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let all = app
        .get_ok(&format!("{timeline}&include=contacts"), &reader)
        .await;
    assert_eq!(item_ids(&all).len(), 3);
    // Owned-only: the people they manage.
    let owned = app
        .get_ok(&format!("{timeline}&include=contacts"), &mine)
        .await;
    assert_eq!(item_ids(&owned), [with_ada.as_str(), with_org.as_str()]);
    app.expect_bad_queries(
        &timeline,
        &reader,
        &[("include=people", "include"), ("include=", "include")],
    )
    .await;
}

/// The message of each failed row of an import report, by line.
fn row_messages(report: &Value) -> Vec<(i64, String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn parent_of(app: &TestApp, customer: &str) -> Value {
    app.get_ok(
        &format!("/v1/customers/{customer}"),
        &app.token(Role::Viewer),
    )
    .await["parent_id"]
        .clone()
}

#[actix_web::test]
async fn an_import_sets_parents_checked_as_patch_checks_them() {
    let app = TestApp::spawn().await;
    let ext = |key: &str| json!({"external_id": key});
    let holding = organization(&app, "Holding", ext("h")).await;
    let a = organization(&app, "A", ext("a")).await;
    let b = organization(&app, "B", json!({"external_id": "b", "parent_id": a})).await;
    let c = organization(&app, "C", ext("c")).await;
    let d = organization(&app, "D", ext("d")).await;
    let rita = person(&app, "Rita", ext("r")).await;
    let head = "external_id,name,kind,parent_id\n";

    // Parents set on new and existing customers, one cleared.
    let body = format!(
        "{head}n,New,organization,{holding}\nc,C,organization,{b}\nd,D,organization,{holding}\n\
         b,B,organization,\n"
    );
    let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
    assert_eq!(crate::imports::counts(&report), [4, 1, 3, 0, 0], "{report}");
    assert_eq!(parent_of(&app, &c).await, b.as_str());
    assert_eq!(parent_of(&app, &d).await, holding.as_str());
    assert_eq!(parent_of(&app, &b).await, Value::Null);
    let tree = app
        .get_ok(&subsidiaries(&holding), &app.token(Role::Viewer))
        .await;
    assert_eq!(tree["data"].as_array().unwrap().len(), 2, "{tree}");
    // Put b under a again, by PATCH.
    let res = patch(&app, &app.token(Role::Agent), &b, json!({"parent_id": a})).await;
    expect_json(res, StatusCode::OK).await;

    // A cycle within the file: both its rows fail, naming it; the other rows are written.
    let x = organization(&app, "X", ext("x")).await;
    let y = organization(&app, "Y", ext("y")).await;
    let body = format!("{head}x,X,organization,{y}\ny,Y,organization,{x}\nd,D,organization,{a}\n");
    let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
    assert_eq!(crate::imports::counts(&report), [3, 0, 1, 0, 2], "{report}");
    assert_eq!(
        row_messages(&report),
        [
            (
                2,
                "parent_id".to_owned(),
                format!("would make a cycle: {x} → {y} → {x}")
            ),
            (
                3,
                "parent_id".to_owned(),
                format!("would make a cycle: {y} → {x} → {y}")
            ),
        ]
    );
    assert_eq!(parent_of(&app, &x).await, Value::Null);
    assert_eq!(parent_of(&app, &d).await, a.as_str());

    // Against the stored groups (c → b → a): a under c closes a cycle; a person or nobody
    // is no parent; an organization with subsidiaries stays one. A row whose parent change
    // fails keeps its stored parent: u stays under v, so v under u fails in turn.
    let v = organization(&app, "V", ext("v")).await;
    let u = organization(&app, "U", json!({"external_id": "u", "parent_id": v})).await;
    let nobody = uuid::Uuid::now_v7();
    let body = format!(
        "{head}a,A,organization,{c}\nx,X,organization,{rita}\ny,Y,organization,{nobody}\n\
         h,Holding,individual,\nu,U,organization,{rita}\nv,V,organization,{u}\n\
         r,Rita,individual,{holding}\n"
    );
    let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
    assert_eq!(crate::imports::counts(&report), [7, 0, 0, 0, 7], "{report}");
    assert_eq!(
        row_messages(&report),
        [
            (
                2,
                "parent_id".to_owned(),
                format!("would make a cycle: {a} → {c} → {b} → {a}")
            ),
            (
                3,
                "parent_id".to_owned(),
                "must be an organization (it names an individual)".to_owned()
            ),
            (
                4,
                "parent_id".to_owned(),
                format!("names no customer ({nobody})")
            ),
            (
                5,
                "kind".to_owned(),
                "an organization with subsidiaries stays an organization: move them first"
                    .to_owned()
            ),
            (
                6,
                "parent_id".to_owned(),
                "must be an organization (it names an individual)".to_owned()
            ),
            (
                7,
                "parent_id".to_owned(),
                format!("would make a cycle: {v} → {u} → {v}")
            ),
            (
                8,
                "parent_id".to_owned(),
                "only an organization belongs to a group (this customer is an individual)"
                    .to_owned()
            ),
        ]
    );
    assert_eq!(parent_of(&app, &a).await, Value::Null);
    assert_eq!(parent_of(&app, &v).await, Value::Null);
    assert_eq!(parent_of(&app, &u).await, v.as_str());
}

#[actix_web::test]
async fn an_import_keeps_groups_within_ten_levels() {
    let app = TestApp::spawn().await;
    // A chain of ten levels: l1 at the top, l10 at the bottom.
    let mut chain: Vec<String> = Vec::new();
    for level in 1..=10 {
        let mut extra = json!({"external_id": format!("l{level}")});
        if let Some(above) = chain.last() {
            extra["parent_id"] = json!(above);
        }
        chain.push(organization(&app, &format!("Level {level}"), extra).await);
    }
    let top = organization(&app, "Top", json!({"external_id": "top"})).await;
    let l5 = chain[4].clone();
    let l10 = chain[9].clone();
    let l1 = chain[0].clone();
    let body = format!(
        "external_id,name,kind,parent_id\n\
         n,Below the bottom,organization,{l10}\n\
         l1,Level 1,organization,{top}\n\
         m,Beside level 6,organization,{l5}\n"
    );
    let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
    // The rows are checked together: with both, top → l1 → … → l10 → n is 12 levels.
    assert_eq!(crate::imports::counts(&report), [3, 1, 0, 0, 2], "{report}");
    assert_eq!(
        row_messages(&report),
        [
            (
                2,
                "parent_id".to_owned(),
                "a group has at most 10 levels; this one would have 12".to_owned()
            ),
            (
                3,
                "parent_id".to_owned(),
                "a group has at most 10 levels; this one would have 12".to_owned()
            ),
        ]
    );
    // Alone, each is one level too many.
    for (line, expected) in [
        (
            format!("n,Below the bottom,organization,{l10}"),
            [1, 0, 0, 0, 1],
        ),
        (format!("l1,Level 1,organization,{top}"), [1, 0, 0, 0, 1]),
    ] {
        let body = format!("external_id,name,kind,parent_id\n{line}\n");
        let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
        assert_eq!(crate::imports::counts(&report), expected, "{report}");
        assert_eq!(
            row_messages(&report)[0].2,
            "a group has at most 10 levels; this one would have 11"
        );
    }
    assert_eq!(parent_of(&app, &l1).await, Value::Null);
    // Nine levels below a new top is fine: the chain's lower half moves under it.
    let body = format!("external_id,name,kind,parent_id\nl6,Level 6,organization,{top}\n");
    let report = crate::imports::csv(&app, "?mode=upsert", &body).await;
    assert_eq!(crate::imports::counts(&report), [1, 0, 1, 0, 0], "{report}");
    assert_eq!(parent_of(&app, &chain[5]).await, top.as_str());
}
