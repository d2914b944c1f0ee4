//! Duplicates: each rule on hand-built customers with its exact score, pairs marked as not
//! duplicates, `on_duplicate` on the way in, merges with points, surveys, opportunities and
//! contact links on both sides (exact sums afterwards), tombstones, the unmerge window, bad
//! input, roles and owned-only access.

use rapport::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn customer(app: &TestApp, body: Value) -> String {
    crate::customers::create(app, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every pair of the list (all pages), as (ids, score, reasons).
async fn pairs(app: &TestApp, token: &str, query: &str) -> Vec<(Vec<String>, i64, Vec<String>)> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers/duplicates?limit=2&cursor={c}{query}"),
            None => format!("/v1/customers/duplicates?limit=2{query}"),
        };
        let page = app.get_ok(&path, token).await;
        for p in page["data"].as_array().unwrap() {
            let ids = p["customers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
            let reasons = p["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            out.push((ids, p["score"].as_i64().unwrap(), reasons));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

fn pair(a: &str, b: &str, score: i64, reasons: &[&str]) -> (Vec<String>, i64, Vec<String>) {
    let mut ids = vec![a.to_owned(), b.to_owned()];
    ids.sort();
    (
        ids,
        score,
        reasons.iter().map(|r| (*r).to_owned()).collect(),
    )
}

async fn merge(app: &TestApp, token: &str, survivor: &str, body: Value) -> Response {
    app.send(
        Method::POST,
        &format!("/v1/customers/{survivor}/merge"),
        token,
        &body,
    )
    .await
}

async fn unmerge(app: &TestApp, token: &str, survivor: &str) -> Response {
    app.send(
        Method::POST,
        &format!("/v1/customers/{survivor}/unmerge"),
        token,
        &json!({}),
    )
    .await
}

/// A client that shows redirects instead of following them.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn count(app: &TestApp, what: &str) -> i64 {
    app.count(what).await
}

#[actix_web::test]
async fn each_rule_finds_its_pairs_with_exact_scores() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    // Created in this order, so that ids (time-ordered) break ties of score.
    let g = customer(&app, json!({"name": "Gerd Shop", "external_id": "shop-77"})).await;
    let h = customer(
        &app,
        json!({"name": "Gerd S.", "attributes": {"shop_id": "shop-77"}}),
    )
    .await;
    let i = customer(
        &app,
        json!({"name": "Ines", "attributes": {"hubspot_id": "hs-9"}}),
    )
    .await;
    let j = customer(
        &app,
        json!({"name": "Ines B", "attributes": {"hubspot_id": "hs-9"}}),
    )
    .await;
    let a = customer(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}),
    )
    .await;
    let b = customer(
        &app,
        json!({"name": "A. King", "email": "AdaLovelace+news@Example.com"}),
    )
    .await;
    let c = customer(&app, json!({"name": "Carl", "phone": "+49 30 123456"})).await;
    let d = customer(&app, json!({"name": "Dora", "phone": "+4930123456"})).await;
    let address = |line1: &str, postal: &str| json!({"line1": line1, "postal_code": postal, "city": "Berlin", "country": "DE"});
    let e = customer(
        &app,
        json!({"name": "Grace Hopper", "address": address("1 Main Street", "10117")}),
    )
    .await;
    let f = customer(
        &app,
        json!({"name": "Grace M. Hopper", "address": address("1  main street", "101 17")}),
    )
    .await;
    // Same street, another name: no pair.
    customer(
        &app,
        json!({"name": "Zed Zulu", "address": address("1 Main Street", "10117")}),
    )
    .await;
    let k = customer(
        &app,
        json!({"name": "Kim", "email": "kim@example.com", "phone": "+4940111"}),
    )
    .await;
    let l = customer(
        &app,
        json!({"name": "Kim B", "email": "k.im@example.com", "phone": "+4940111"}),
    )
    .await;
    // Another kind with the same phone: never a pair.
    customer(
        &app,
        json!({"name": "Kim GmbH", "kind": "organization", "phone": "+4940111"}),
    )
    .await;

    let all = pairs(&app, &viewer, "").await;
    assert_eq!(
        all,
        vec![
            pair(&k, &l, 98, &["email", "phone"]),
            pair(&g, &h, 95, &["external_id"]),
            pair(&i, &j, 95, &["external_id"]),
            pair(&a, &b, 90, &["email"]),
            pair(&c, &d, 80, &["phone"]),
            pair(&e, &f, 70, &["name_address"]),
        ]
    );
    // By reason: the score still counts every reason.
    assert_eq!(
        pairs(&app, &viewer, "&reason=phone").await,
        vec![
            pair(&k, &l, 98, &["email", "phone"]),
            pair(&c, &d, 80, &["phone"])
        ]
    );
    let one = app
        .get_ok("/v1/customers/duplicates?reason=name_address", &viewer)
        .await;
    assert_eq!(one["data"][0]["customers"][0]["name"], "Grace Hopper");
    assert_eq!(one["next_cursor"], Value::Null);

    // Bad queries and callers.
    app.expect_bad_queries(
        "/v1/customers/duplicates",
        &viewer,
        &[
            ("reason=shoe", "reason"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("cursor=nonsense", "cursor"),
            ("sort=score", "sort"),
        ],
    )
    .await;
    let res = app.get("/v1/customers/duplicates").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let client = app.client_token("nosy", &["events:read"]).await;
    let res = app
        .get("/v1/customers/duplicates")
        .bearer_auth(&client)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[actix_web::test]
async fn a_pair_marked_not_duplicate_is_not_listed_again() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let a = customer(&app, json!({"name": "Ada", "email": "ada@example.com"})).await;
    let b = customer(&app, json!({"name": "Ada B", "email": "a.da@example.com"})).await;
    let c = customer(&app, json!({"name": "Ada C", "email": "ada+c@example.com"})).await;
    assert_eq!(pairs(&app, &agent, "").await.len(), 3);
    let path = "/v1/customers/duplicates/not-duplicate";
    let res = app
        .send(Method::POST, path, &agent, &json!({"customer_ids": [b, a]}))
        .await;
    let marked = expect_json(res, StatusCode::CREATED).await;
    let mut ids = vec![a.clone(), b.clone()];
    ids.sort();
    assert_eq!(marked["customer_ids"], json!(ids));
    let res = app
        .send(Method::POST, path, &agent, &json!({"customer_ids": [a, b]}))
        .await;
    expect_json(res, StatusCode::OK).await;
    let left = pairs(&app, &agent, "").await;
    assert_eq!(left.len(), 2);
    assert!(
        left.iter()
            .all(|(ids, _, _)| !(ids.contains(&a) && ids.contains(&b)))
    );
    assert_eq!(count(&app, "customer_not_duplicates").await, 1);
    assert_eq!(
        count(
            &app,
            "audit_events WHERE action = 'customer.marked_not_duplicate'"
        )
        .await,
        1
    );

    // Bad input writes nothing.
    let unknown = uuid::Uuid::now_v7().to_string();
    for (body, field) in [
        (json!({"customer_ids": [a, a]}), "customer_ids"),
        (json!({"customer_ids": [a]}), "customer_ids"),
        (json!({"customer_ids": [a, b, c]}), "customer_ids"),
        (json!({"customer_ids": [a, unknown]}), "customer_ids[1]"),
        (json!({"customer_ids": [a, "x"]}), "customer_ids[1]"),
        (json!({"customer_ids": [a, c], "why": "twins"}), "why"),
        (json!({}), "customer_ids"),
    ] {
        let res = app.send(Method::POST, path, &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    let res = app
        .post(path)
        .bearer_auth(&agent)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app
        .send(
            Method::POST,
            path,
            &app.token(Role::Viewer),
            &json!({"customer_ids": [a, c]}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .post(path)
        .json(&json!({"customer_ids": [a, c]}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(count(&app, "customer_not_duplicates").await, 1);
}

#[actix_web::test]
async fn on_duplicate_fails_skips_or_merges() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let ada = customer(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com", "tags": ["vip"]}),
    )
    .await;
    let twin = json!({"name": "Ada L.", "email": "adalovelace+crm@example.com",
                      "occupation": "mathematician", "tags": ["news"]});
    let post = |query: &'static str, body: Value| {
        let agent = agent.clone();
        let app = &app;
        async move {
            app.send(
                Method::POST,
                &format!("/v1/customers{query}"),
                &agent,
                &body,
            )
            .await
        }
    };
    let res = post("?on_duplicate=fail", twin.clone()).await;
    assert_eq!(
        res.headers()["location"].to_str().unwrap(),
        format!("/v1/customers/{ada}")
    );
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert!(p["detail"].as_str().unwrap().contains(&ada), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("score 90"), "{p}");
    assert_eq!(fields(&p), ["email"]);
    assert_eq!(count(&app, "customers").await, 1);

    let res = post("?on_duplicate=skip", twin.clone()).await;
    let skipped = expect_json(res, StatusCode::OK).await;
    assert_eq!(skipped["id"], ada.as_str());
    assert_eq!(skipped["version"], 1);
    assert_eq!(skipped["occupation"], Value::Null);

    let res = post("?on_duplicate=merge", twin.clone()).await;
    let merged = expect_json(res, StatusCode::OK).await;
    assert_eq!(merged["id"], ada.as_str());
    assert_eq!(merged["version"], 2);
    assert_eq!(merged["name"], "Ada Lovelace");
    assert_eq!(merged["email"], "ada.lovelace@example.com");
    assert_eq!(merged["occupation"], "mathematician");
    assert_eq!(merged["tags"], json!(["vip", "news"]));
    assert_eq!(count(&app, "customers").await, 1);
    // The same again changes nothing.
    let res = post("?on_duplicate=merge", twin.clone()).await;
    assert_eq!(expect_json(res, StatusCode::OK).await["version"], 2);

    // No match: created as usual.
    let res = post("?on_duplicate=fail", json!({"name": "Grace Hopper"})).await;
    expect_json(res, StatusCode::CREATED).await;
    // Without the option the rules are not asked.
    let res = post("", twin.clone()).await;
    expect_json(res, StatusCode::CREATED).await;
    assert_eq!(count(&app, "customers").await, 3);

    for query in ["?on_duplicate=maybe", "?on_dup=fail"] {
        let res = post(query, json!({"name": "X"})).await;
        expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    // Invalid input is a 422 before any matching.
    let res = post("?on_duplicate=skip", json!({"name": " ", "email": "no"})).await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(count(&app, "customers").await, 3);
}

struct Cast {
    survivor: String,
    other: String,
    org_x: String,
    org_y: String,
    single: String,
    survivor_response: String,
    other_single_response: String,
}

/// Two duplicates with something of everything: purchases earning points (lapsing in 365
/// days), an adjustment, interactions, responses to a one-per-customer survey (both) and to
/// a many-per-customer one (the other only), an opportunity of the other, links to one
/// organization (both) and to another (the other only), and an opportunity of that
/// organization naming the other as its contact person.
async fn cast(app: &TestApp) -> Cast {
    let admin = app.token(Role::Admin);
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/program",
            &admin,
            &json!({"currency": "EUR",
                    "earn": {"points": 1, "per_amount": 100, "rounding": "down"},
                    "expiry": {"policy": "after_days", "days": 365},
                    "qualification": {"basis": "points_earned", "months": 12},
                    "downgrade": {"policy": "never"}}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let survivor = customer(
        app,
        json!({"name": "Ada Lovelace", "email": "ada@example.com", "external_id": "crm-s",
               "tags": ["vip"], "attributes": {"a": 1}}),
    )
    .await;
    let other = customer(
        app,
        json!({"name": "Ada King", "email": "a.da+old@example.com", "external_id": "crm-o",
               "phone": "+4930999", "tags": ["news"], "attributes": {"b": 2}}),
    )
    .await;
    let agent = app.token(Role::Agent);
    let manager = app.token(Role::Manager);
    for (c, amount) in [(&survivor, 10_000), (&other, 5000)] {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/customers/{c}/purchases"),
                &agent,
                &json!({"amount": amount, "currency": "EUR"}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await;
        let res = app
            .send(
                Method::POST,
                &format!("/v1/customers/{c}/interactions"),
                &agent,
                &json!({"channel": "phone", "direction": "inbound", "kind": "inquiry",
                        "occurred_at": "2026-11-01T10:00:00Z"}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await;
    }
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{other}/points"),
            &manager,
            &json!({"kind": "adjust", "points": 30, "reason": "welcome gift"}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;

    let single = crate::surveys::active_survey(app, json!({})).await;
    let many = crate::surveys::active_survey(app, json!({"allow_multiple_responses": true})).await;
    let respond = |survey: String, c: String, nps: i64| async move {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/surveys/{survey}/responses"),
                &app.token(Role::Agent),
                &json!({"customer_id": c, "answers": {"recommend": nps}}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let survivor_response = respond(single.clone(), survivor.clone(), 9).await;
    let other_single_response = respond(single.clone(), other.clone(), 3).await;
    respond(many.clone(), other.clone(), 7).await;

    let (_, seller) = app.user(Role::Agent).await;
    let org_x = customer(app, json!({"name": "Acme", "kind": "organization"})).await;
    let org_y = customer(app, json!({"name": "Globex", "kind": "organization"})).await;
    for (org, person) in [(&org_x, &survivor), (&org_x, &other), (&org_y, &other)] {
        let res = app
            .send(
                Method::POST,
                &format!("/v1/customers/{org}/contacts"),
                &agent,
                &json!({"person_id": person}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await;
    }
    for (c, contacts) in [(&other, json!([])), (&org_y, json!([other]))] {
        let res = app
            .send(
                Method::POST,
                "/v1/opportunities",
                &seller,
                &json!({"customer_id": c, "title": "Chairs", "amount": 100_000,
                        "currency": "EUR", "expected_close_date": "2027-01-15",
                        "contact_ids": contacts}),
            )
            .await;
        expect_json(res, StatusCode::CREATED).await;
    }
    Cast {
        survivor,
        other,
        org_x,
        org_y,
        single,
        survivor_response,
        other_single_response,
    }
}

async fn balance(app: &TestApp, c: &str) -> i64 {
    app.get_ok(
        &format!("/v1/customers/{c}/loyalty"),
        &app.token(Role::Viewer),
    )
    .await["balance"]
        .as_i64()
        .unwrap()
}

#[actix_web::test]
async fn a_merge_moves_everything_and_an_unmerge_moves_it_back() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let manager = app.token(Role::Manager);
    let (s, o) = (c.survivor.clone(), c.other.clone());
    assert_eq!(balance(&app, &s).await, 100);
    assert_eq!(balance(&app, &o).await, 80);
    let o_interactions = count(&app, &format!("interactions WHERE customer_id = '{o}'")).await;
    let expiries = format!(
        "loyalty_lots WHERE customer_id = '{s}' AND expires_at > now() + interval '364 days'"
    );
    let before = app.get_ok(&format!("/v1/customers/{s}"), &manager).await;

    let res = app
        .post(&format!("/v1/customers/{s}/merge"))
        .bearer_auth(&manager)
        .header("If-Match", format!("\"{}\"", before["version"]))
        .json(&json!({"merge_ids": [o], "fields": {"name": "other"}}))
        .send()
        .await
        .unwrap();
    let report = expect_json(res, StatusCode::OK).await;
    assert_eq!(report["merged_ids"], json!([o]));
    let moved = &report["moved"];
    assert_eq!(moved["purchases"], 1);
    assert_eq!(moved["interactions"], o_interactions);
    assert_eq!(moved["loyalty_points"], 80);
    assert_eq!(moved["loyalty_lots"], 2);
    assert_eq!(moved["loyalty_ledger_entries"], 2);
    assert_eq!(moved["survey_responses"], 1);
    assert_eq!(moved["opportunities"], 1);
    assert_eq!(moved["opportunity_contacts"], 1);
    assert_eq!(moved["contact_links"], 1);
    assert_eq!(
        report["kept"]["survey_responses"],
        json!([c.other_single_response])
    );
    assert_eq!(report["kept"]["contact_links"].as_array().unwrap().len(), 1);
    assert_eq!(report["tags_added"], json!(["news"]));
    assert_eq!(report["attributes_added"], json!(["b"]));
    let survivor = &report["survivor"];
    assert_eq!(survivor["name"], "Ada King");
    assert_eq!(survivor["email"], "ada@example.com");
    assert_eq!(survivor["external_id"], "crm-s");
    assert_eq!(survivor["phone"], "+4930999");
    assert_eq!(survivor["tags"], json!(["vip", "news"]));
    assert_eq!(survivor["attributes"], json!({"a": 1, "b": 2}));

    // Exact sums: the balance is both, every lot kept with its expiry, the ledger sums.
    assert_eq!(balance(&app, &s).await, 180);
    assert_eq!(count(&app, &expiries).await, 3);
    assert_eq!(
        count(
            &app,
            &format!(
                "(SELECT 1 FROM loyalty_ledger WHERE customer_id = '{s}' \
              HAVING sum(points) = 180) x"
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, &format!("purchases WHERE customer_id = '{s}'")).await,
        2
    );
    assert_eq!(
        count(&app, &format!("purchases WHERE customer_id = '{o}'")).await,
        0
    );
    // The one-per-customer survey: the survivor keeps its own answer.
    assert_eq!(
        count(
            &app,
            &format!(
                "survey_responses WHERE customer_id = '{s}' AND survey_id = '{}'",
                c.single
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "survey_responses WHERE id = '{}' AND customer_id = '{s}'",
                c.survivor_response
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, &format!("contacts WHERE person_id = '{s}'")).await,
        2
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "opportunities WHERE customer_id = '{}' AND contact_ids = ARRAY['{s}']::uuid[]",
                c.org_y
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            &format!("contacts WHERE organization_id = '{}'", c.org_x)
        )
        .await,
        2
    );

    // The tombstone points to the survivor, by id and by external id.
    let raw = no_redirects();
    for path in [
        format!("/v1/customers/{o}"),
        "/v1/customers/by-external-id/crm-o".to_owned(),
    ] {
        let res = raw
            .get(app.url(&path))
            .bearer_auth(app.token(Role::Viewer))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY, "{path}");
        assert_eq!(
            res.headers()["location"].to_str().unwrap(),
            format!("/v1/customers/{s}")
        );
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["merged_into"], s.as_str());
    }
    // Gone from lists and from the duplicates.
    let list = app.get_ok("/v1/customers?limit=200", &manager).await;
    assert!(
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["id"] != o.as_str())
    );
    assert!(pairs(&app, &manager, "").await.is_empty());
    // Restoring a tombstone is refused: unmerge instead.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{o}/restore"),
            &manager,
            &json!({}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(
        count(&app, "events WHERE type = 'customer.merged'").await,
        1
    );
    assert_eq!(
        count(
            &app,
            &format!("audit_events WHERE action = 'customer.merged_into' AND entity_id = '{o}'")
        )
        .await,
        1
    );

    // Undone within the window: everything back.
    let res = unmerge(&app, &manager, &s).await;
    let undone = expect_json(res, StatusCode::OK).await;
    assert_eq!(undone["moved_back"], *moved);
    assert_eq!(undone["survivor"]["name"], "Ada Lovelace");
    assert_eq!(undone["survivor"]["tags"], json!(["vip"]));
    assert_eq!(undone["restored"][0]["id"], o.as_str());
    assert_eq!(undone["restored"][0]["deleted_at"], Value::Null);
    assert_eq!(balance(&app, &s).await, 100);
    assert_eq!(balance(&app, &o).await, 80);
    assert_eq!(
        count(&app, &format!("purchases WHERE customer_id = '{o}'")).await,
        1
    );
    assert_eq!(
        count(&app, &format!("survey_responses WHERE customer_id = '{o}'")).await,
        2
    );
    assert_eq!(
        count(&app, &format!("contacts WHERE person_id = '{o}'")).await,
        2
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "opportunities WHERE customer_id = '{}' AND contact_ids = ARRAY['{o}']::uuid[]",
                c.org_y
            )
        )
        .await,
        1
    );
    let back = app.get_ok(&format!("/v1/customers/{o}"), &manager).await;
    assert_eq!(back["email"], "a.da+old@example.com");
    assert_eq!(count(&app, "customer_tombstones").await, 0);
    assert_eq!(
        count(&app, "events WHERE type = 'customer.unmerged'").await,
        1
    );
    // Once only.
    let res = unmerge(&app, &manager, &s).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
}

#[actix_web::test]
async fn an_unmerge_is_refused_after_new_writes_or_the_window() {
    let app = TestApp::spawn_with(&[("RAPPORT_MERGE_UNDO_WINDOW", "2s")]).await;
    let manager = app.token(Role::Manager);
    let s = customer(&app, json!({"name": "Ada", "email": "ada@example.com"})).await;
    let o = customer(&app, json!({"name": "Ada B", "email": "a.da@example.com"})).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{o}/interactions"),
            &app.token(Role::Agent),
            &json!({"channel": "phone", "direction": "inbound", "kind": "inquiry",
                        "occurred_at": "2026-11-01T10:00:00Z"}),
        )
        .await;
    let interaction = expect_json(res, StatusCode::CREATED).await;
    let res = merge(&app, &manager, &s, json!({"merge_ids": [o]})).await;
    expect_json(res, StatusCode::OK).await;
    // A moved interaction changed since: the undo would lose it.
    let res = app
        .patch(&format!(
            "/v1/interactions/{}",
            interaction["id"].as_str().unwrap()
        ))
        .bearer_auth(&manager)
        .json(&json!({"notes": "called back"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = unmerge(&app, &manager, &s).await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert!(
        p["detail"].as_str().unwrap().contains("1 interactions"),
        "{p}"
    );

    // Another merge, then the survivor changes: refused too.
    let t = customer(&app, json!({"name": "Tim", "phone": "+4930555"})).await;
    let u = customer(&app, json!({"name": "Tom", "phone": "+4930555"})).await;
    let res = merge(&app, &manager, &t, json!({"merge_ids": [u]})).await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .patch(&format!("/v1/customers/{t}"))
        .bearer_auth(&manager)
        .json(&json!({"occupation": "pilot"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = unmerge(&app, &manager, &t).await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert!(
        p["detail"].as_str().unwrap().contains("changed since"),
        "{p}"
    );

    // A third, untouched, past its window.
    let v = customer(&app, json!({"name": "Vera", "phone": "+4930777"})).await;
    let w = customer(&app, json!({"name": "Vera W", "phone": "+4930777"})).await;
    let res = merge(&app, &manager, &v, json!({"merge_ids": [w]})).await;
    expect_json(res, StatusCode::OK).await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let res = unmerge(&app, &manager, &v).await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert!(
        p["detail"].as_str().unwrap().contains("window closed"),
        "{p}"
    );
    assert_eq!(count(&app, "customer_tombstones").await, 3);
    // A customer never merged into has nothing to undo.
    let res = unmerge(&app, &manager, &o).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn bad_merges_write_nothing() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    let s = customer(&app, json!({"name": "Ada"})).await;
    let o = customer(&app, json!({"name": "Ada B"})).await;
    let org = customer(&app, json!({"name": "Acme", "kind": "organization"})).await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for (body, field) in [
        (json!({"merge_ids": [s]}), "merge_ids[0]"),
        (json!({"merge_ids": [o, o]}), "merge_ids[1]"),
        (json!({"merge_ids": []}), "merge_ids"),
        (json!({"merge_ids": [unknown]}), "merge_ids[0]"),
        (json!({"merge_ids": [org]}), "merge_ids[0]"),
        (
            json!({"merge_ids": [o], "fields": {"shoe_size": "other"}}),
            "fields.shoe_size",
        ),
        (
            json!({"merge_ids": [o], "fields": {"name": "mine"}}),
            "fields.name",
        ),
        (json!({"merge_ids": ["x"]}), "merge_ids[0]"),
        (json!({"merge_ids": [o], "why": 1}), "why"),
        (json!({}), "merge_ids"),
    ] {
        let res = merge(&app, &manager, &s, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    let res = app
        .post(&format!("/v1/customers/{s}/merge"))
        .bearer_auth(&manager)
        .header("Content-Type", "application/json")
        .body("[")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = merge(&app, &manager, "nope", json!({"merge_ids": [o]})).await;
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    let res = merge(&app, &manager, &unknown, json!({"merge_ids": [o]})).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .post(&format!("/v1/customers/{s}/merge"))
        .bearer_auth(&manager)
        .header("If-Match", "\"7\"")
        .json(&json!({"merge_ids": [o]}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    for role in [Role::Agent, Role::Viewer] {
        let res = merge(&app, &app.token(role), &s, json!({"merge_ids": [o]})).await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        let res = unmerge(&app, &app.token(role), &s).await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = app
        .post(&format!("/v1/customers/{s}/merge"))
        .json(&json!({"merge_ids": [o]}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(count(&app, "customer_merges").await, 0);
    assert_eq!(
        count(&app, "events WHERE type = 'customer.merged'").await,
        0
    );

    // A tombstone can be neither merged nor merged into.
    let res = merge(&app, &manager, &s, json!({"merge_ids": [o]})).await;
    expect_json(res, StatusCode::OK).await;
    let third = customer(&app, json!({"name": "Ada C"})).await;
    let res = merge(&app, &manager, &third, json!({"merge_ids": [o]})).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let res = merge(&app, &manager, &o, json!({"merge_ids": [third]})).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(count(&app, "customer_merges").await, 1);
}

#[actix_web::test]
async fn owned_only_callers_find_and_merge_only_their_own_customers() {
    let app = TestApp::spawn().await;
    let (me, mine_token) = app.user_with_access(Role::Manager, "owned").await;
    let (other_manager, _) = app.user(Role::Manager).await;
    let admin = app.token(Role::Admin);
    let make = |name: &str, manager: uuid::Uuid| json!({"name": name, "phone": "+4930111", "account_manager_id": manager});
    let a = customer(&app, make("Ada", me)).await;
    let b = customer(&app, make("Ada B", me)).await;
    let theirs = customer(&app, make("Ada C", other_manager)).await;
    // The admin sees three pairs; the owned-only manager the one of theirs.
    assert_eq!(pairs(&app, &admin, "").await.len(), 3);
    assert_eq!(
        pairs(&app, &mine_token, "").await,
        vec![pair(&a, &b, 80, &["phone"])]
    );
    let res = merge(&app, &mine_token, &a, json!({"merge_ids": [theirs]})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["merge_ids[0]"]);
    let res = merge(&app, &mine_token, &theirs, json!({"merge_ids": [a]})).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .send(
            Method::POST,
            "/v1/customers/duplicates/not-duplicate",
            &mine_token,
            &json!({"customer_ids": [a, theirs]}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(count(&app, "customer_merges").await, 0);
    let res = merge(&app, &mine_token, &a, json!({"merge_ids": [b]})).await;
    expect_json(res, StatusCode::OK).await;
    // The admin merges theirs into the owned-only manager's: the tombstone then points to a
    // customer the other manager cannot see, so to them it is simply not found.
    let res = merge(&app, &admin, &a, json!({"merge_ids": [theirs]})).await;
    expect_json(res, StatusCode::OK).await;
    let res = no_redirects()
        .get(app.url(&format!("/v1/customers/{b}")))
        .bearer_auth(&mine_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::MOVED_PERMANENTLY);
}
