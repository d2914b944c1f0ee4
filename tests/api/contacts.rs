//! Contacts: people linked to organizations with titles, buying roles, the one primary
//! contact, and past links; every rule with bad input.

use chrono::{Duration as Span, SecondsFormat, Utc};
use rapport::auth::Role;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::customers::create as create_customer;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

fn ago(days: i64) -> String {
    (Utc::now() - Span::days(days)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn organization(app: &TestApp, name: &str) -> String {
    id(&create_customer(app, json!({"name": name, "kind": "organization"})).await)
}

async fn person(app: &TestApp, name: &str) -> String {
    id(&create_customer(app, json!({"name": name})).await)
}

fn contacts(org: &str) -> String {
    format!("/v1/customers/{org}/contacts")
}

fn contact(org: &str, person: &str) -> String {
    format!("/v1/customers/{org}/contacts/{person}")
}

async fn post(app: &TestApp, org: &str, token: &str, body: Value) -> Response {
    app.send(Method::POST, &contacts(org), token, &body).await
}

/// Links with the agent's service token and expects `201`.
async fn link(app: &TestApp, org: &str, body: Value) -> Value {
    let res = post(app, org, &app.token(Role::Agent), body).await;
    expect_json(res, StatusCode::CREATED).await
}

async fn change(app: &TestApp, token: &str, path: &str, etag: &str, body: Value) -> Response {
    app.patch(path)
        .bearer_auth(token)
        .header("If-Match", etag)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn person_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["person_id"].as_str().unwrap().to_owned())
        .collect()
}

/// What nothing-written looks like: no link, no event, no audit row about contacts.
async fn nothing_written(app: &TestApp) {
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("events WHERE object_type = 'contact'").await, 0);
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'contact'")
            .await,
        0
    );
}

#[actix_web::test]
async fn a_person_is_linked_read_changed_and_ended_as_a_past_contact() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let ada = person(&app, "Ada Lovelace").await;
    let started = ago(400);
    let res = post(
        &app,
        &org,
        &app.token(Role::Agent),
        json!({"person_id": ada, "title": " Head of Procurement ",
               "buying_roles": ["decision_maker", "purchaser"], "primary": true,
               "started_at": started, "note": "Signs every order."}),
    )
    .await;
    assert_eq!(res.headers()["location"], contact(&org, &ada).as_str());
    assert_eq!(res.headers()["etag"], "\"1\"");
    let created = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(created["organization_id"], org.as_str());
    assert_eq!(created["person_id"], ada.as_str());
    assert_eq!(created["title"], "Head of Procurement");
    assert_eq!(
        created["buying_roles"],
        json!(["purchaser", "decision_maker"])
    );
    assert_eq!(created["primary"], true);
    assert_eq!(created["current"], true);
    assert_eq!(created["started_at"], started.as_str());
    assert_eq!(created["ended_at"], Value::Null);
    assert_eq!(created["note"], "Signs every order.");
    assert_eq!(created["version"], 1);

    let viewer = app.token(Role::Viewer);
    let got = app.get_ok(&contact(&org, &ada), &viewer).await;
    assert_eq!(got, created);
    let list = app.get_ok(&contacts(&org), &viewer).await;
    assert_eq!(
        list,
        json!({"data": [created.clone()], "next_cursor": null})
    );
    let orgs = app
        .get_ok(&format!("/v1/customers/{ada}/organizations"), &viewer)
        .await;
    assert_eq!(
        orgs,
        json!({"data": [created.clone()], "next_cursor": null})
    );
    // An organization is nobody's person, and a person has no contacts.
    let none = app
        .get_ok(&format!("/v1/customers/{org}/organizations"), &viewer)
        .await;
    assert_eq!(none["data"], json!([]));
    let none = app.get_ok(&contacts(&ada), &viewer).await;
    assert_eq!(none["data"], json!([]));

    // Ada leaves: the link stays, as a past contact.
    let agent = app.token(Role::Agent);
    let left = ago(1);
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"1\"",
        json!({"ended_at": left, "note": null, "buying_roles": ["user"]}),
    )
    .await;
    assert_eq!(res.headers()["etag"], "\"2\"");
    let ended = expect_json(res, StatusCode::OK).await;
    assert_eq!(ended["current"], false);
    assert_eq!(ended["ended_at"], left.as_str());
    assert_eq!(ended["note"], Value::Null);
    assert_eq!(ended["buying_roles"], json!(["user"]));
    assert_eq!(ended["primary"], true, "a past primary keeps the flag");
    assert_eq!(ended["title"], "Head of Procurement");
    let current = app
        .get_ok(&format!("{}?current=true", contacts(&org)), &viewer)
        .await;
    assert_eq!(current["data"], json!([]));
    let past = app
        .get_ok(&format!("{}?current=false", contacts(&org)), &viewer)
        .await;
    assert_eq!(person_ids(&past), [ada.as_str()]);
    // A stale version is 412 and changes nothing; the same values again write nothing.
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"1\"",
        json!({"title": "CEO"}),
    )
    .await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"2\"",
        json!({"ended_at": left}),
    )
    .await;
    assert_eq!(expect_json(res, StatusCode::OK).await, ended);

    // Every write has its event and audit row, written together.
    let events = app
        .feed(
            "type=contact.linked,contact.updated",
            "object_type = 'contact'",
        )
        .await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["contact.linked", "contact.updated"]);
    assert_eq!(events[0]["object_id"], created["id"]);
    assert_eq!(events[0]["data"], created);
    assert_eq!(events[1]["data"], ended);
    assert_eq!(
        events[1]["previous"],
        json!({"current": true, "ended_at": null, "note": "Signs every order.",
               "buying_roles": ["purchaser", "decision_maker"]})
    );
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE entity_type = 'contact' AND entity_id = '{}' \
             AND action IN ('contact.linked', 'contact.updated')",
            id(&created)
        ))
        .await,
        2
    );
}

#[actix_web::test]
async fn a_person_may_be_at_several_organizations_and_lists_page() {
    let app = TestApp::spawn().await;
    let acme = organization(&app, "Acme Ltd").await;
    let globex = organization(&app, "Globex").await;
    let ada = person(&app, "Ada Lovelace").await;
    let mut people = Vec::new();
    for name in ["Alan Turing", "Grace Hopper", "Edsger Dijkstra"] {
        let p = person(&app, name).await;
        link(&app, &acme, json!({"person_id": p})).await;
        people.push(p);
    }
    link(&app, &acme, json!({"person_id": ada})).await;
    link(
        &app,
        &globex,
        json!({"person_id": ada, "ended_at": ago(2), "started_at": ago(30)}),
    )
    .await;
    people.push(ada.clone());

    let viewer = app.token(Role::Viewer);
    let first = app
        .get_ok(&format!("{}?limit=3", contacts(&acme)), &viewer)
        .await;
    assert_eq!(person_ids(&first), people[..3]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(
            &format!("{}?limit=3&cursor={cursor}", contacts(&acme)),
            &viewer,
        )
        .await;
    assert_eq!(person_ids(&second), people[3..]);
    assert_eq!(second["next_cursor"], Value::Null);

    let path = format!("/v1/customers/{ada}/organizations");
    let orgs: Vec<String> = app.get_ok(&path, &viewer).await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["organization_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(orgs, [acme.clone(), globex.clone()]);
    let current = app.get_ok(&format!("{path}?current=true"), &viewer).await;
    assert_eq!(current["data"][0]["organization_id"], acme.as_str());
    assert_eq!(current["data"].as_array().unwrap().len(), 1);
    let past = app.get_ok(&format!("{path}?current=false"), &viewer).await;
    assert_eq!(past["data"][0]["organization_id"], globex.as_str());
    assert_eq!(past["data"].as_array().unwrap().len(), 1);

    // A deleted person leaves the lists; a deleted organization is 404 for its contacts.
    let res = app
        .delete(
            &format!("/v1/customers/{}", people[0]),
            &app.token(Role::Admin),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let after = app.get_ok(&contacts(&acme), &viewer).await;
    assert_eq!(person_ids(&after), people[1..]);
    let res = app
        .get(&contact(&acme, &people[0]))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .delete(
            &format!("/v1/customers/{globex}"),
            &app.token(Role::Admin),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let orgs = app.get_ok(&path, &viewer).await;
    assert_eq!(orgs["data"].as_array().unwrap().len(), 1);
    for path in [contacts(&globex), contact(&globex, &ada)] {
        let res = app.get(&path).bearer_auth(&viewer).send().await.unwrap();
        expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = post(
        &app,
        &globex,
        &app.token(Role::Agent),
        json!({"person_id": ada}),
    )
    .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn a_new_person_is_created_inline_with_every_customer_rule() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let created = link(
        &app,
        &org,
        json!({"person": {"name": "Grace Hopper", "email": "Grace@Example.com",
                          "phone": "+44 20 7946 0958"},
               "buying_roles": ["technical_gatekeeper"]}),
    )
    .await;
    let person_id = created["person_id"].as_str().unwrap();
    let grace = app
        .get_ok(
            &format!("/v1/customers/{person_id}"),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(grace["kind"], "individual");
    assert_eq!(grace["email"], "Grace@Example.com");
    assert_eq!(
        app.count("events WHERE type IN ('customer.created', 'contact.linked')")
            .await,
        3,
        "the organization, the person and the link"
    );

    // The customer rules, with their fields under `person.`; nothing is written.
    let customers = app.count("customers").await;
    let agent = app.token(Role::Agent);
    let cases = [
        (
            json!({"person": {"name": "Bad Mail", "email": "not-an-email"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person.email"],
        ),
        (
            json!({"person": {"name": " "}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person.name"],
        ),
        (
            json!({"person": {"email": "x@example.com"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person.name"],
        ),
        (
            json!({"person": {"name": "Twin", "email": "Grace@Example.com"}}),
            StatusCode::CONFLICT,
            "duplicate",
            vec!["person.email"],
        ),
        (
            json!({"person": {"name": "Initech", "kind": "organization"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person.kind"],
        ),
        (
            json!({"person": {"name": "Typo", "nmae": "x"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person.nmae"],
        ),
        (
            json!({"person": {"name": "Both"}, "person_id": person_id}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person"],
        ),
        (
            json!({"title": "Nobody"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            vec!["person_id"],
        ),
    ];
    for (body, status, code, expected) in cases {
        let res = post(&app, &org, &agent, body.clone()).await;
        let p = expect_problem(res, status, code).await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    assert_eq!(app.count("customers").await, customers);
    assert_eq!(app.count("contacts").await, 1);
    assert_eq!(app.count("events WHERE object_type = 'contact'").await, 1);
}

#[actix_web::test]
async fn kinds_and_self_links_are_refused() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let other_org = organization(&app, "Globex").await;
    let ada = person(&app, "Ada Lovelace").await;
    let grace = person(&app, "Grace Hopper").await;
    let agent = app.token(Role::Agent);
    // (path organization, body, field)
    let cases = [
        (ada.clone(), json!({"person_id": grace}), "organization_id"),
        (org.clone(), json!({"person_id": other_org}), "person_id"),
        (org.clone(), json!({"person_id": org}), "person_id"),
        (
            org.clone(),
            json!({"person_id": "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5b"}),
            "person_id",
        ),
        (
            ada.clone(),
            json!({"person": {"name": "New Person"}}),
            "organization_id",
        ),
    ];
    for (path_org, body, field) in cases {
        let res = post(&app, &path_org, &agent, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    // A deleted person cannot be linked either.
    let res = app
        .delete(
            &format!("/v1/customers/{grace}"),
            &app.token(Role::Admin),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = post(&app, &org, &agent, json!({"person_id": grace})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["person_id"]);
    // No such organization.
    let res = post(
        &app,
        "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4e5a",
        &agent,
        json!({"person_id": ada}),
    )
    .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(app.count("customers WHERE name = 'New Person'").await, 0);
    nothing_written(&app).await;

    // Linked once per organization: the second time is 409 on `person_id`.
    link(&app, &org, json!({"person_id": ada})).await;
    let res = post(
        &app,
        &org,
        &agent,
        json!({"person_id": ada, "title": "again"}),
    )
    .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["person_id"]);
    assert_eq!(app.count("contacts").await, 1);
}

#[actix_web::test]
async fn an_organization_has_at_most_one_current_primary_contact() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let ada = person(&app, "Ada Lovelace").await;
    let grace = person(&app, "Grace Hopper").await;
    let agent = app.token(Role::Agent);
    link(
        &app,
        &org,
        json!({"person_id": ada, "primary": true, "started_at": ago(30)}),
    )
    .await;
    let res = post(
        &app,
        &org,
        &agent,
        json!({"person_id": grace, "primary": true}),
    )
    .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["primary"]);
    assert_eq!(app.count("contacts").await, 1);

    let g = link(&app, &org, json!({"person_id": grace})).await;
    assert_eq!(g["primary"], false);
    let res = change(
        &app,
        &agent,
        &contact(&org, &grace),
        "\"1\"",
        json!({"primary": true}),
    )
    .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["primary"]);

    // Ada leaves: she stays a past primary, and Grace can become the primary contact.
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"1\"",
        json!({"ended_at": ago(1)}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    let res = change(
        &app,
        &agent,
        &contact(&org, &grace),
        "\"1\"",
        json!({"primary": true}),
    )
    .await;
    assert_eq!(expect_json(res, StatusCode::OK).await["primary"], true);
    // Ada coming back as a current primary would make two.
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"2\"",
        json!({"ended_at": null}),
    )
    .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["primary"]);
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"2\"",
        json!({"ended_at": null, "primary": false}),
    )
    .await;
    let back = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        (back["current"].clone(), back["primary"].clone()),
        (json!(true), json!(false))
    );
    // A past link cannot be made primary.
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"3\"",
        json!({"ended_at": ago(1), "primary": true}),
    )
    .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["primary"]);
    // The database holds the rule whatever path writes.
    let mut conn = app.db.connect().await;
    let twice = diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "UPDATE contacts SET is_primary = true WHERE person_id = '{ada}'"
        )),
        &mut conn,
    )
    .await;
    assert!(
        twice.is_err(),
        "the partial unique index refuses a second current primary"
    );
}

#[actix_web::test]
async fn bad_input_is_a_problem_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let ada = person(&app, "Ada Lovelace").await;
    let agent = app.token(Role::Agent);
    app.expect_bad_envelopes(
        Method::POST,
        &contacts(&org),
        &agent,
        &json!({"person_id": ada}),
    )
    .await;
    let tomorrow = (Utc::now() + Span::days(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let cases = [
        (json!({"person_id": 42}), "person_id"),
        (json!({"person_id": "nope"}), "person_id"),
        (
            json!({"person_id": ada, "buying_roles": "purchaser"}),
            "buying_roles",
        ),
        (
            json!({"person_id": ada, "buying_roles": ["boss"]}),
            "buying_roles[0]",
        ),
        (
            json!({"person_id": ada, "buying_roles": ["user", "user"]}),
            "buying_roles",
        ),
        (json!({"person_id": ada, "primary": "yes"}), "primary"),
        (json!({"person_id": ada, "title": "x".repeat(201)}), "title"),
        (json!({"person_id": ada, "note": "x".repeat(2001)}), "note"),
        (
            json!({"person_id": ada, "started_at": tomorrow}),
            "started_at",
        ),
        (
            json!({"person_id": ada, "started_at": "yesterday"}),
            "started_at",
        ),
        (json!({"person_id": ada, "ended_at": tomorrow}), "ended_at"),
        (
            json!({"person_id": ada, "started_at": ago(1), "ended_at": ago(2)}),
            "ended_at",
        ),
        (
            json!({"person_id": ada, "primary": true, "ended_at": ago(1), "started_at": ago(9)}),
            "primary",
        ),
        (json!({"person_id": ada, "role": "boss"}), "role"),
    ];
    for (body, field) in cases {
        let res = post(&app, &org, &agent, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    // Another role's rights: a viewer reads but does not link; an agent links but does
    // not remove.
    let res = post(
        &app,
        &org,
        &app.token(Role::Viewer),
        json!({"person_id": ada}),
    )
    .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let reader = app.client_token("reader", &["customers:read"]).await;
    let res = post(&app, &org, &reader, json!({"person_id": ada})).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.get(&contacts(&org)).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    nothing_written(&app).await;

    // The same for a change, and bad queries on the lists.
    let linked = link(&app, &org, json!({"person_id": ada, "started_at": ago(10)})).await;
    let path = contact(&org, &ada);
    app.expect_bad_envelopes(Method::PATCH, &path, &agent, &json!({"title": "CEO"}))
        .await;
    let cases = [
        (json!({"primary": null}), "primary"),
        (json!({"started_at": null}), "started_at"),
        (json!({"title": ""}), "title"),
        (json!({"title": 7}), "title"),
        (json!({"buying_roles": ["boss"]}), "buying_roles[0]"),
        (json!({"ended_at": ago(20)}), "ended_at"),
        (json!({"ended_at": tomorrow}), "ended_at"),
        (json!({"person_id": ada}), "person_id"),
    ];
    for (body, field) in cases {
        let res = change(&app, &agent, &path, "\"1\"", body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    let res = change(
        &app,
        &app.token(Role::Viewer),
        &path,
        "\"1\"",
        json!({"title": "CEO"}),
    )
    .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.delete(&path, &agent, Some("\"1\"")).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let viewer = app.token(Role::Viewer);
    app.expect_bad_queries(
        &contacts(&org),
        &viewer,
        &[
            ("current=maybe", "current"),
            ("limit=0", "limit"),
            ("limit=201", "limit"),
            ("cursor=garbage!", "cursor"),
            ("sort=title", "sort"),
        ],
    )
    .await;
    app.expect_bad_queries(
        &format!("/v1/customers/{ada}/organizations"),
        &viewer,
        &[("current=2", "current")],
    )
    .await;
    let res = app
        .get(&format!("/v1/customers/{org}/contacts/nope"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    assert_eq!(app.get_ok(&path, &viewer).await, linked);
    assert_eq!(app.count("events WHERE object_type = 'contact'").await, 1);
    assert_eq!(
        app.count("audit_events WHERE entity_type = 'contact'")
            .await,
        1
    );
}

#[actix_web::test]
async fn a_link_made_by_mistake_is_removed_with_its_audit_row() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let ada = person(&app, "Ada Lovelace").await;
    let linked = link(&app, &org, json!({"person_id": ada, "title": "CTO"})).await;
    let manager = app.token(Role::Manager);
    let path = contact(&org, &ada);
    let res = app.delete(&path, &manager, Some("\"2\"")).await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app.delete(&path, &manager, Some("\"1\"")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get(&path).bearer_auth(&manager).send().await.unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app.delete(&path, &manager, None).await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let events = app
        .feed("type=contact.unlinked", "type = 'contact.unlinked'")
        .await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["data"], linked);
    assert_eq!(
        app.count(&format!(
            "audit_events WHERE action = 'contact.unlinked' AND entity_id = '{}' \
             AND changes -> 'title' ->> 'from' = 'CTO'",
            id(&linked)
        ))
        .await,
        1
    );
    // The person can be linked again.
    link(&app, &org, json!({"person_id": ada})).await;
}

#[actix_web::test]
async fn owned_only_users_see_the_links_of_the_customers_they_manage() {
    let app = TestApp::spawn().await;
    let (me, mine) = app.user_with_access(Role::Agent, "owned").await;
    let (other, _) = app.user(Role::Agent).await;
    let managed = |name: &str, kind: &str, by: uuid::Uuid| json!({"name": name, "kind": kind, "account_manager_id": by});
    let my_org = id(&create_customer(&app, managed("Acme", "organization", me)).await);
    let their_org = id(&create_customer(&app, managed("Globex", "organization", other)).await);
    let my_person = id(&create_customer(&app, managed("Ada", "individual", me)).await);
    let their_person = id(&create_customer(&app, managed("Alan", "individual", other)).await);
    link(&app, &my_org, json!({"person_id": my_person})).await;
    link(&app, &my_org, json!({"person_id": their_person})).await;
    link(&app, &their_org, json!({"person_id": my_person})).await;

    let list = app.get_ok(&contacts(&my_org), &mine).await;
    assert_eq!(person_ids(&list), [my_person.as_str()]);
    let orgs = app
        .get_ok(&format!("/v1/customers/{my_person}/organizations"), &mine)
        .await;
    assert_eq!(orgs["data"].as_array().unwrap().len(), 1);
    assert_eq!(orgs["data"][0]["organization_id"], my_org.as_str());
    for path in [
        contacts(&their_org),
        contact(&their_org, &my_person),
        contact(&my_org, &their_person),
        format!("/v1/customers/{their_person}/organizations"),
    ] {
        let res = app.get(&path).bearer_auth(&mine).send().await.unwrap();
        expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    let res = post(
        &app,
        &their_org,
        &mine,
        json!({"person": {"name": "Sneaky"}}),
    )
    .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let other_person = id(&create_customer(&app, managed("Edsger", "individual", other)).await);
    let res = post(&app, &my_org, &mine, json!({"person_id": other_person})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["person_id"]);
    let res = change(
        &app,
        &mine,
        &contact(&my_org, &their_person),
        "\"1\"",
        json!({"title": "x"}),
    )
    .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // A person created inline is managed by the caller, as on `POST /v1/customers`.
    let res = post(&app, &my_org, &mine, json!({"person": {"name": "Barbara"}})).await;
    let linked = expect_json(res, StatusCode::CREATED).await;
    let barbara = app
        .get_ok(
            &format!("/v1/customers/{}", linked["person_id"].as_str().unwrap()),
            &mine,
        )
        .await;
    assert_eq!(barbara["account_manager_id"], me.to_string());
}

/// An organization with Ada (current decision maker), Grace (current purchaser) and Edsger
/// (a past decision maker); Alan is a decision maker of another organization; Bob is linked
/// nowhere.
struct Cast {
    org: String,
    ada: String,
    grace: String,
    edsger: String,
    alan: String,
    bob: String,
}

async fn cast(app: &TestApp) -> Cast {
    let org = organization(app, "Acme Ltd").await;
    let other = organization(app, "Globex").await;
    let ada = person(app, "Ada Lovelace").await;
    let grace = person(app, "Grace Hopper").await;
    let edsger = person(app, "Edsger Dijkstra").await;
    let alan = person(app, "Alan Turing").await;
    let bob = person(app, "Bob Nobody").await;
    let decides = json!(["decision_maker"]);
    link(
        app,
        &org,
        json!({"person_id": ada, "buying_roles": decides, "started_at": ago(30)}),
    )
    .await;
    link(
        app,
        &org,
        json!({"person_id": grace, "buying_roles": ["purchaser"]}),
    )
    .await;
    link(
        app,
        &org,
        json!({"person_id": edsger, "buying_roles": decides, "started_at": ago(90),
               "ended_at": ago(60)}),
    )
    .await;
    link(
        app,
        &other,
        json!({"person_id": alan, "buying_roles": decides}),
    )
    .await;
    Cast {
        org,
        ada,
        grace,
        edsger,
        alan,
        bob,
    }
}

fn opportunity_ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(id).collect()
}

#[actix_web::test]
async fn opportunities_name_their_people_and_show_whether_a_decision_maker_is_known() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, seller) = app.user(Role::Agent).await;
    let deal = |contact_ids: Value| {
        json!({"customer_id": c.org, "title": "50 office chairs", "amount": 1250000,
               "currency": "EUR", "expected_close_date": "2027-01-15",
               "contact_ids": contact_ids})
    };
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &seller,
            &deal(json!([c.grace])),
        )
        .await;
    let without = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(without["contact_ids"], json!([c.grace]));
    assert_eq!(without["has_decision_maker"], false);
    // A past contact may be named; being past, he decides nothing now.
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &seller,
            &deal(json!([c.edsger])),
        )
        .await;
    let past = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(past["has_decision_maker"], false);
    let res = app
        .send(Method::POST, "/v1/opportunities", &seller, &deal(json!([])))
        .await;
    let nobody = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(nobody["contact_ids"], json!([]));

    // Someone else's contact, a stranger, a repeat, a wrong type: 422 on `contact_ids`,
    // nothing written.
    let opportunities = app.count("opportunities").await;
    for ids in [
        json!([c.alan]),
        json!([c.grace, c.bob]),
        json!([c.grace, c.grace]),
        json!(c.grace),
        json!(["nope"]),
    ] {
        let res = app
            .send(
                Method::POST,
                "/v1/opportunities",
                &seller,
                &deal(ids.clone()),
            )
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        let expected = if ids == json!(["nope"]) {
            "contact_ids[0]"
        } else {
            "contact_ids"
        };
        assert_eq!(fields(&p), [expected], "{ids}");
    }
    // An individual customer has no contacts to name.
    let mut body = deal(json!([c.ada]));
    body["customer_id"] = json!(c.grace);
    let res = app
        .send(Method::POST, "/v1/opportunities", &seller, &body)
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["contact_ids"]);
    assert_eq!(app.count("opportunities").await, opportunities);
    assert_eq!(
        app.count("events WHERE type = 'opportunity.created'").await,
        3
    );

    let viewer = app.token(Role::Viewer);
    let unknown = "/v1/opportunities?has_decision_maker=false";
    let known = "/v1/opportunities?has_decision_maker=true";
    let mut all = vec![id(&without), id(&past), id(&nobody)];
    all.sort();
    let mut listed = opportunity_ids(&app.get_ok(unknown, &viewer).await);
    listed.sort();
    assert_eq!(listed, all);
    assert_eq!(
        opportunity_ids(&app.get_ok(known, &viewer).await),
        Vec::<String>::new()
    );

    // Ada joins the deal: the decision maker is known.
    let path = format!("/v1/opportunities/{}", id(&without));
    let res = change(
        &app,
        &seller,
        &path,
        "\"1\"",
        json!({"contact_ids": [c.grace, c.ada]}),
    )
    .await;
    let with = expect_json(res, StatusCode::OK).await;
    assert_eq!(with["contact_ids"], json!([c.grace, c.ada]));
    assert_eq!(with["has_decision_maker"], true);
    assert_eq!(
        opportunity_ids(&app.get_ok(known, &viewer).await),
        [id(&without)]
    );
    assert!(!opportunity_ids(&app.get_ok(unknown, &viewer).await).contains(&id(&without)));
    let res = change(
        &app,
        &seller,
        &path,
        "\"2\"",
        json!({"contact_ids": [c.ada, c.alan]}),
    )
    .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["contact_ids"]);

    // Ada leaves: the deal no longer has a decision maker, at once.
    let agent = app.token(Role::Agent);
    let res = change(
        &app,
        &agent,
        &contact(&c.org, &c.ada),
        "\"1\"",
        json!({"ended_at": ago(1)}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    let now = app.get_ok(&path, &viewer).await;
    assert_eq!(now["has_decision_maker"], false);
    assert_eq!(now["contact_ids"], json!([c.grace, c.ada]));
    assert_eq!(
        opportunity_ids(&app.get_ok(known, &viewer).await),
        Vec::<String>::new()
    );
    // Named while a contact, Ada stays named when the deal changes otherwise.
    let res = change(&app, &seller, &path, "\"2\"", json!({"amount": 1300000})).await;
    assert_eq!(expect_json(res, StatusCode::OK).await["amount"], 1300000);

    // Grace, named on the deal, is made a decision maker: known at once, on the deal and in
    // the lists. Deleted, she decides nothing; restored, she does again; unlinked, not.
    let decided = async || {
        let deal = app.get_ok(&path, &viewer).await;
        let listed = opportunity_ids(&app.get_ok(known, &viewer).await);
        assert_eq!(
            listed.contains(&id(&deal)),
            deal["has_decision_maker"] == true,
            "the list agrees with the deal"
        );
        deal["has_decision_maker"].clone()
    };
    let grace = contact(&c.org, &c.grace);
    let roles = json!({"buying_roles": ["purchaser", "decision_maker"]});
    let res = change(&app, &agent, &grace, "\"1\"", roles).await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(decided().await, true);
    let manager = app.token(Role::Manager);
    let person = format!("/v1/customers/{}", c.grace);
    let res = app.delete(&person, &manager, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(decided().await, false);
    let res = app
        .send(
            Method::POST,
            &format!("{person}/restore"),
            &manager,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(decided().await, true);
    let res = app.delete(&grace, &manager, Some("\"2\"")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(decided().await, false);
    app.expect_bad_queries(
        "/v1/opportunities",
        &viewer,
        &[("has_decision_maker=maybe", "has_decision_maker")],
    )
    .await;
}

#[actix_web::test]
async fn an_interaction_names_a_contact_of_its_customer() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let agent = app.token(Role::Agent);
    let call = |contact_id: Value| {
        json!({"channel": "phone", "direction": "outbound", "kind": "meeting",
               "occurred_at": ago(1), "contact_id": contact_id})
    };
    let path = format!("/v1/customers/{}/interactions", c.org);
    let res = app
        .send(Method::POST, &path, &agent, &call(json!(c.ada)))
        .await;
    let met = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(met["contact_id"], c.ada.as_str());
    let res = app
        .send(Method::POST, &path, &agent, &call(json!(c.edsger)))
        .await;
    assert_eq!(
        expect_json(res, StatusCode::CREATED).await["contact_id"],
        c.edsger.as_str()
    );

    let interactions = app.count("interactions").await;
    for (who, field) in [
        (json!(c.alan), "contact_id"),
        (json!(c.bob), "contact_id"),
        (json!(c.org), "contact_id"),
        (json!(7), "contact_id"),
    ] {
        let res = app
            .send(Method::POST, &path, &agent, &call(who.clone()))
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{who}");
    }
    // A person's own interactions have no contact at an organization.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{}/interactions", c.grace),
            &agent,
            &call(json!(c.ada)),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["contact_id"]);
    assert_eq!(app.count("interactions").await, interactions);

    let one = format!("/v1/interactions/{}", id(&met));
    let res = change(&app, &agent, &one, "\"1\"", json!({"contact_id": c.alan})).await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["contact_id"]);
    let res = change(&app, &agent, &one, "\"1\"", json!({"contact_id": c.grace})).await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["contact_id"],
        c.grace.as_str()
    );
    let res = change(&app, &agent, &one, "\"2\"", json!({"contact_id": null})).await;
    assert_eq!(
        expect_json(res, StatusCode::OK).await["contact_id"],
        Value::Null
    );
}

#[actix_web::test]
async fn a_retried_link_with_its_idempotency_key_is_answered_once() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Acme Ltd").await;
    let body = json!({"person": {"name": "Grace Hopper"}, "buying_roles": ["user"]});
    let send = |body: Value| {
        app.post(&contacts(&org))
            .bearer_auth(app.token(Role::Agent))
            .header("Idempotency-Key", "link-grace-1")
            .json(&body)
            .send()
    };
    let first = expect_json(send(body.clone()).await.unwrap(), StatusCode::CREATED).await;
    let res = send(body.clone()).await.unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(res, StatusCode::CREATED).await, first);
    assert_eq!(app.count("contacts").await, 1);
    assert_eq!(app.count("customers WHERE name = 'Grace Hopper'").await, 1);
    // The same key with another body is refused.
    let res = send(json!({"person": {"name": "Someone Else"}}))
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    assert_eq!(app.count("contacts").await, 1);
}

#[actix_web::test]
async fn an_organization_can_derive_its_authority_from_a_current_decision_maker() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let created = create_customer(
        &app,
        json!({"name": "Acme Ltd", "kind": "organization",
               "qualification": {"money": true, "need": true, "authority_source": "derived"}}),
    )
    .await;
    assert_eq!(
        created["qualification"],
        json!({"money": true, "authority": false, "need": true, "authority_source": "derived"})
    );
    assert_eq!(created["prospect_grade"], "reachable");
    let org = id(&created);
    let ada = person(&app, "Ada Lovelace").await;
    let grace = person(&app, "Grace Hopper").await;
    let customer = format!("/v1/customers/{org}");
    let read = || app.get_ok(&customer, &agent);

    // A purchaser does not decide; a current decision maker does.
    link(
        &app,
        &org,
        json!({"person_id": grace, "buying_roles": ["purchaser"]}),
    )
    .await;
    assert_eq!(read().await["qualification"]["authority"], false);
    link(
        &app,
        &org,
        json!({"person_id": ada, "buying_roles": ["decision_maker"], "started_at": ago(30)}),
    )
    .await;
    let now = read().await;
    assert_eq!(
        now["qualification"],
        json!({"money": true, "authority": true, "need": true, "authority_source": "derived"})
    );
    assert_eq!(now["prospect_grade"], "ideal");
    // Ada leaves: authority is lost again, with the customer's own event and audit row.
    let res = change(
        &app,
        &agent,
        &contact(&org, &ada),
        "\"1\"",
        json!({"ended_at": ago(1)}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    let now = read().await;
    assert_eq!(now["qualification"]["authority"], false);
    assert_eq!(now["prospect_grade"], "reachable");
    let updates = app
        .feed(
            "type=customer.updated",
            &format!("type = 'customer.updated' AND object_id = '{org}'"),
        )
        .await;
    let authority: Vec<(Value, Value)> = updates
        .iter()
        .map(|e| {
            (
                e["previous"]["qualification"]["authority"].clone(),
                e["data"]["qualification"]["authority"].clone(),
            )
        })
        .collect();
    assert_eq!(
        authority,
        [(json!(false), json!(true)), (json!(true), json!(false))]
    );

    // Set by hand, it stays as set whatever the contacts do; handed back, it follows them.
    let version = now["version"].as_i64().unwrap();
    let res = change(
        &app,
        &agent,
        &customer,
        &format!("\"{version}\""),
        json!({"qualification": {"authority": true}}),
    )
    .await;
    let manual = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        manual["qualification"],
        json!({"money": true, "authority": true, "need": true, "authority_source": "manual"})
    );
    let res = change(
        &app,
        &agent,
        &contact(&org, &grace),
        "\"1\"",
        json!({"buying_roles": ["user"]}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(
        read().await["qualification"]["authority"],
        true,
        "manual stays"
    );
    let version = manual["version"].as_i64().unwrap();
    let res = change(
        &app,
        &agent,
        &customer,
        &format!("\"{version}\""),
        json!({"qualification": {"authority_source": "derived"}}),
    )
    .await;
    let derived = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        derived["qualification"],
        json!({"money": true, "authority": false, "need": true, "authority_source": "derived"})
    );

    // Wrong uses: on a person, together with a hand-set authority.
    let version = derived["version"].as_i64().unwrap();
    let res = change(
        &app,
        &agent,
        &customer,
        &format!("\"{version}\""),
        json!({"qualification": {"authority": true, "authority_source": "derived"}}),
    )
    .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["qualification"]);
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "Lin Wei", "qualification":
                    {"money": true, "need": false, "authority_source": "derived"}}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["qualification.authority_source"]);
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "Initech", "kind": "organization",
                    "qualification": {"money": true, "need": false}}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["qualification"]);
}

/// A person's links are in their data-subject export, and their erasure forgets what was
/// noted of them at their organizations (title, note), in the link, its audit trail and its
/// events; who they were linked to, with which roles and when, stays.
#[actix_web::test]
async fn a_persons_links_are_in_their_export_and_their_notes_forgotten_at_erasure() {
    let app = TestApp::spawn().await;
    let org = organization(&app, "Brightwater Ltd").await;
    let grace = person(&app, "Grace Hopper").await;
    let linked = link(
        &app,
        &org,
        json!({"person_id": grace, "title": "Head of Rear-Admiralty",
               "buying_roles": ["decision_maker"], "note": "prefers calls after lunch"}),
    )
    .await;
    let admin = app.token(Role::Admin);
    let export = app
        .get_ok(&format!("/v1/customers/{grace}/export"), &admin)
        .await;
    assert_eq!(export["organizations"], json!([linked]));

    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{grace}/erase"),
            &admin,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    // The link stays (erased customers leave the lists, so it is read in the table).
    assert_eq!(
        app.count(&format!(
            "contacts WHERE organization_id = '{org}' AND person_id = '{grace}' \
             AND buying_roles = ARRAY['decision_maker'] AND title IS NULL AND note IS NULL"
        ))
        .await,
        1
    );
    for (table, column) in [
        ("audit_events", "changes::text"),
        ("events", "(data::text || coalesce(previous::text, ''))"),
        ("contacts", "coalesce(title, '') || coalesce(note, '')"),
    ] {
        assert_eq!(
            app.count(&format!(
                "{table} WHERE {column} LIKE '%after lunch%' OR {column} LIKE '%Rear-Admiralty%'"
            ))
            .await,
            0,
            "{table}"
        );
    }
}

async fn export(app: &TestApp, accept: &str) -> String {
    let res = app
        .get("/v1/exports/contacts")
        .bearer_auth(app.token(Role::Admin))
        .header("Accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.text().await.unwrap()
}

async fn import_links(app: &TestApp, query: &str, body: &str) -> Value {
    let res = app
        .post(&format!("/v1/imports/contacts{query}"))
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await
}

/// What a link holds that an import brings back (not its id, times or version).
fn kept(page: &Value) -> Vec<Value> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            json!([
                c["person_id"],
                c["title"],
                c["buying_roles"],
                c["primary"],
                c["started_at"],
                c["ended_at"],
                c["note"]
            ])
        })
        .collect()
}

#[actix_web::test]
async fn links_export_and_import_again_by_external_id_or_email() {
    let app = TestApp::spawn().await;
    let org = id(&create_customer(
        &app,
        json!({"name": "Acme", "kind": "organization", "external_id": "acme"}),
    )
    .await);
    let ada = id(&create_customer(&app, json!({"name": "Ada", "email": "Ada@Acme.example"})).await);
    let alan = id(&create_customer(&app, json!({"name": "Alan", "external_id": "alan-1"})).await);
    link(
        &app,
        &org,
        json!({"person_id": ada, "title": "CFO, finance", "primary": true,
               "buying_roles": ["financial_gatekeeper", "decision_maker"],
               "started_at": ago(100), "note": "Signs; \"always\"."}),
    )
    .await;
    link(
        &app,
        &org,
        json!({"person_id": alan, "started_at": ago(300), "ended_at": ago(30)}),
    )
    .await;
    let viewer = app.token(Role::Viewer);
    let before = kept(&app.get_ok(&contacts(&org), &viewer).await);

    let lines: Vec<Value> = export(&app, "application/x-ndjson")
        .await
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["organization_id"], org.as_str());
    assert_eq!(lines[0]["organization_external_id"], "acme");
    assert_eq!(lines[0]["person_email"], "Ada@Acme.example");
    assert_eq!(lines[0]["person_external_id"], Value::Null);
    assert_eq!(lines[1]["person_external_id"], "alan-1");
    assert_eq!(lines[1]["current"], false);
    let csv = export(&app, "text/csv").await;
    assert!(
        csv.starts_with("id,organization_id,organization_external_id,organization_email,"),
        "{csv}"
    );

    // Removed, then imported from the file as it is: the same links again.
    for person in [&ada, &alan] {
        let res = app
            .delete(
                &contact(&org, person),
                &app.token(Role::Manager),
                Some("\"1\""),
            )
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
    let report = import_links(&app, "", &csv).await;
    assert_eq!(crate::imports::counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(kept(&app.get_ok(&contacts(&org), &viewer).await), before);
    assert_eq!(app.count("events WHERE type = 'contact.linked'").await, 4);
    // Again (a dry run: the same file with the same options is the first import): both
    // exist, so both rows fail, named by the column that named the person.
    let report = import_links(&app, "?dry_run=true", &csv).await;
    assert_eq!(crate::imports::counts(&report), [2, 0, 0, 0, 2], "{report}");
    assert_eq!(
        crate::imports::errors(&report),
        [
            (2, "person_email".to_owned()),
            (3, "person_external_id".to_owned())
        ]
    );

    // Bad rows: no organization named, one nobody is, an organization as the person, a
    // role that does not exist, and an unknown column.
    let body = "organization_external_id,organization_email,person_external_id,person_email,buying_roles\n\
                ,,alan-1,,\n\
                nope,,alan-1,,\n\
                acme,,acme,,\n\
                ,ACME-NONE@example.com,,ada@acme.example,\n\
                acme,,,ada@acme.example,boss\n";
    let report = import_links(&app, "", body).await;
    assert_eq!(crate::imports::counts(&report), [5, 0, 0, 0, 5], "{report}");
    let failed: Vec<(i64, String)> = crate::imports::errors(&report);
    assert_eq!(
        failed[..4],
        [
            (2, "organization_external_id".to_owned()),
            (3, "organization_external_id".to_owned()),
            (4, "person_external_id".to_owned()),
            (5, "organization_email".to_owned()),
        ]
    );
    assert_eq!(failed[4].0, 6);
    assert!(failed[4].1.starts_with("buying_roles"), "{failed:?}");
    let res = app
        .post("/v1/imports/contacts")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body("organization_external_id,person_external_id,shoe_size\nacme,alan-1,42\n")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    // Insert only; a viewer may export (`customers:read`) but not import.
    let res = app
        .post("/v1/imports/contacts?mode=upsert")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let res = app
        .post("/v1/imports/contacts")
        .bearer_auth(&viewer)
        .header("Content-Type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    app.expect_bad_queries("/v1/exports/contacts", &viewer, &[("limit=5", "limit")])
        .await;
    assert_eq!(app.count("contacts").await, 2);
}

/// The ids of a customer page with, for each, the person it was found through (`-` when it
/// matched itself).
fn hits(page: &Value) -> Vec<(String, String)> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                id(c),
                c.get("matched_via")
                    .map_or("-".to_owned(), |v| v.as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

/// Every row of a search, read page by page with `limit`.
async fn every_page(
    app: &TestApp,
    token: &str,
    query: &str,
    limit: usize,
) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("/v1/customers?{query}&limit={limit}"),
            Some(c) => format!("/v1/customers?{query}&limit={limit}&cursor={c}"),
        };
        let page = app.get_ok(&path, token).await;
        let got = hits(&page);
        assert!(got.len() <= limit, "{page}");
        rows.extend(got);
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(rows.len() < 100, "paging does not end");
    }
    rows
}

#[actix_web::test]
async fn searching_a_persons_name_with_include_organizations_finds_where_they_work() {
    let app = TestApp::spawn().await;
    let acme = organization(&app, "Acme Ltd").await;
    let globex = organization(&app, "Globex").await;
    let initech = organization(&app, "Initech").await;
    let analytics = organization(&app, "Ada Analytics").await;
    let lin = person(&app, "Lin Lovelaces").await;
    let lovelace = person(&app, "Ada Lovelace").await;
    let byron = id(&create_customer(
        &app,
        json!({"name": "Ada Byron", "email": "ada@byron.example"}),
    )
    .await);
    let grace = person(&app, "Grace Hopper").await;
    link(&app, &acme, json!({"person_id": lin})).await;
    link(&app, &acme, json!({"person_id": lovelace})).await;
    link(
        &app,
        &initech,
        json!({"person_id": lovelace, "started_at": ago(90), "ended_at": ago(30)}),
    )
    .await;
    link(&app, &acme, json!({"person_id": byron})).await;
    link(
        &app,
        &globex,
        json!({"person_id": byron, "started_at": ago(10)}),
    )
    .await;
    link(&app, &analytics, json!({"person_id": byron})).await;
    link(&app, &globex, json!({"person_id": grace})).await;
    let viewer = app.token(Role::Viewer);
    let row = |id: &str, via: &str| (id.to_owned(), via.to_owned());

    // Ada Analytics matches itself, before Byron: it stays there. Acme is found through
    // Lovelace, its best ranked person, and only there; Initech was Lovelace's (past): no.
    let ada = vec![
        row(&analytics, "-"),
        row(&lovelace, "-"),
        row(&acme, &lovelace),
        row(&byron, "-"),
        row(&globex, &byron),
    ];
    let query = "q=ada&include=organizations";
    let page = app.get_ok(&format!("/v1/customers?{query}"), &viewer).await;
    assert_eq!(hits(&page), ada);
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(page["data"][2]["name"], "Acme Ltd");
    assert_eq!(page["data"][2]["kind"], "organization");
    assert!(page["data"][0].get("matched_via").is_none());
    // Without the include, only the customers that match.
    let plain = app.get_ok("/v1/customers?q=ada", &viewer).await;
    assert_eq!(
        hits(&plain),
        [row(&analytics, "-"), row(&lovelace, "-"), row(&byron, "-")]
    );
    // Page by page, whatever the size, the same rows once each: a page may end between a
    // person and their organizations.
    for limit in 1..=6 {
        assert_eq!(
            every_page(&app, &viewer, query, limit).await,
            ada,
            "limit {limit}"
        );
    }

    // An organization stands after its best ranked person: Lovelace matches `lovelace`
    // exactly, Lin (linked to Acme first) only nearly, so Acme follows Lovelace.
    let page = app
        .get_ok("/v1/customers?q=lovelace&include=organizations", &viewer)
        .await;
    assert_eq!(
        hits(&page),
        [row(&lovelace, "-"), row(&acme, &lovelace), row(&lin, "-")]
    );
    // A person's organizations in id order.
    let page = app
        .get_ok("/v1/customers?q=byron&include=organizations", &viewer)
        .await;
    assert_eq!(
        hits(&page),
        [
            row(&byron, "-"),
            row(&acme, &byron),
            row(&globex, &byron),
            row(&analytics, &byron),
        ]
    );
    // An email search finds them too.
    let page = app
        .get_ok(
            "/v1/customers?q=%40byron.example&include=organizations&limit=2",
            &viewer,
        )
        .await;
    assert_eq!(hits(&page), [row(&byron, "-"), row(&acme, &byron)]);
    let rest = app
        .get_ok(
            &format!(
                "/v1/customers?q=%40byron.example&include=organizations&limit=2&cursor={}",
                page["next_cursor"].as_str().unwrap()
            ),
            &viewer,
        )
        .await;
    assert_eq!(hits(&rest), [row(&globex, &byron), row(&analytics, &byron)]);
    assert_eq!(rest["next_cursor"], Value::Null);

    // A link ended or a person deleted: the organization is no longer found through them.
    let res = change(
        &app,
        &app.token(Role::Agent),
        &contact(&globex, &byron),
        "\"1\"",
        json!({"ended_at": ago(1)}),
    )
    .await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .delete(
            &format!("/v1/customers/{lovelace}"),
            &app.token(Role::Manager),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let page = app.get_ok(&format!("/v1/customers?{query}"), &viewer).await;
    assert_eq!(
        hits(&page),
        [row(&analytics, "-"), row(&byron, "-"), row(&acme, &byron)]
    );

    // Bad values: 400 naming the parameter.
    let cursor = plain["next_cursor"].clone();
    assert_eq!(cursor, Value::Null);
    let first = app.get_ok("/v1/customers?q=ada&limit=1", &viewer).await;
    let foreign = format!(
        "q=ada&include=organizations&cursor={}",
        first["next_cursor"].as_str().unwrap()
    );
    app.expect_bad_queries(
        "/v1/customers",
        &viewer,
        &[
            ("q=ada&include=people", "include"),
            ("q=ada&include=", "include"),
            ("q=ada&include=organizations,people", "include"),
            (
                "q=ada&include=organizations&include=organizations",
                "include",
            ),
            ("include=organizations", "include"),
            ("kind=organization&include=organizations", "include"),
            ("q=ada&include=organizations&sort=name", "include"),
            ("q=ada&include=organizations&sort=-created_at", "include"),
            (foreign.as_str(), "cursor"),
            ("q=ada&include=organizations&cursor=garbage", "cursor"),
            ("q=ada&include=organizations&limit=0", "limit"),
        ],
    )
    .await;
    // `include` belongs to the list: the export refuses it as any unknown parameter.
    let res = app
        .get("/v1/exports/customers?q=ada&include=organizations")
        .bearer_auth(app.token(Role::Admin))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
}

#[actix_web::test]
async fn owned_only_users_find_only_the_people_and_organizations_they_manage() {
    let app = TestApp::spawn().await;
    let (me, mine) = app.user_with_access(Role::Agent, "owned").await;
    let (other, _) = app.user(Role::Agent).await;
    let managed = |name: &str, kind: &str, by: uuid::Uuid| json!({"name": name, "kind": kind, "account_manager_id": by});
    let my_org = id(&create_customer(&app, managed("Acme", "organization", me)).await);
    let their_org = id(&create_customer(&app, managed("Globex", "organization", other)).await);
    let my_other_org = id(&create_customer(&app, managed("Initech", "organization", me)).await);
    let my_ada = id(&create_customer(&app, managed("Ada Lovelace", "individual", me)).await);
    let their_ada = id(&create_customer(&app, managed("Ada Byron", "individual", other)).await);
    link(&app, &my_org, json!({"person_id": my_ada})).await;
    link(&app, &their_org, json!({"person_id": my_ada})).await;
    // Found only through a person the caller cannot see: not found.
    link(&app, &my_other_org, json!({"person_id": their_ada})).await;
    let page = app
        .get_ok("/v1/customers?q=ada&include=organizations", &mine)
        .await;
    assert_eq!(
        hits(&page),
        [
            (my_ada.clone(), "-".to_owned()),
            (my_org.clone(), my_ada.clone()),
        ]
    );
    // Everyone sees all of it.
    let page = app
        .get_ok(
            "/v1/customers?q=ada&include=organizations",
            &app.token(Role::Viewer),
        )
        .await;
    let mut expected = vec![(my_ada.clone(), "-".to_owned())];
    let mut orgs = vec![my_org.clone(), their_org.clone()];
    orgs.sort();
    expected.extend(orgs.into_iter().map(|o| (o, my_ada.clone())));
    expected.push((their_ada.clone(), "-".to_owned()));
    expected.push((my_other_org.clone(), their_ada.clone()));
    assert_eq!(hits(&page), expected);
}

#[actix_web::test]
async fn a_person_the_caller_cannot_see_is_answered_as_a_missing_one() {
    let app = TestApp::spawn().await;
    let (me, mine) = app.user_with_access(Role::Agent, "owned").await;
    let (other, agent) = app.user(Role::Agent).await;
    let managed = |name: &str, kind: &str, by: uuid::Uuid| json!({"name": name, "kind": kind, "account_manager_id": by});
    let org = id(&create_customer(&app, managed("Acme", "organization", me)).await);
    let ada = id(&create_customer(&app, managed("Ada", "individual", me)).await);
    let hidden = id(&create_customer(&app, managed("Alan", "individual", other)).await);
    link(&app, &org, json!({"person_id": ada})).await;
    link(&app, &org, json!({"person_id": hidden})).await;
    let missing = uuid::Uuid::now_v7().to_string();
    // The same answer, word for word but the id, for a hidden contact and a missing person.
    let answer = |p: &Value, who: &str| {
        json!([
            p["status"],
            p["code"],
            fields(p),
            p["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace(who, "<id>")
        ])
    };
    let deal = |people: Value| {
        json!({"customer_id": org, "title": "Chairs", "amount": 100, "currency": "EUR",
               "expected_close_date": "2027-01-15", "contact_ids": people})
    };
    let mut answers = Vec::new();
    for who in [&hidden, &missing] {
        let res = app
            .send(
                Method::POST,
                "/v1/opportunities",
                &mine,
                &deal(json!([ada, who])),
            )
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        answers.push(answer(&p, who));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(app.count("opportunities").await, 0);
    // Everyone else may name the hidden contact.
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &agent,
            &deal(json!([hidden])),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await;
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &mine,
            &deal(json!([ada])),
        )
        .await;
    let deal_id = id(&expect_json(res, StatusCode::CREATED).await);
    let mut answers = Vec::new();
    for who in [&hidden, &missing] {
        let res = change(
            &app,
            &mine,
            &format!("/v1/opportunities/{deal_id}"),
            "\"1\"",
            json!({"contact_ids": [ada, who]}),
        )
        .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        answers.push(answer(&p, who));
    }
    assert_eq!(answers[0], answers[1]);

    // An interaction with the organization: the same.
    let call = |who: &str| {
        json!({"channel": "phone", "direction": "outbound", "kind": "meeting",
               "occurred_at": ago(1), "contact_id": who})
    };
    let path = format!("/v1/customers/{org}/interactions");
    let mut answers = Vec::new();
    for who in [&hidden, &missing] {
        let res = app.send(Method::POST, &path, &mine, &call(who)).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        answers.push(answer(&p, who));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(app.count("interactions").await, 0);
    let res = app.send(Method::POST, &path, &mine, &call(&ada)).await;
    let met = id(&expect_json(res, StatusCode::CREATED).await);
    let mut answers = Vec::new();
    for who in [&hidden, &missing] {
        let res = change(
            &app,
            &mine,
            &format!("/v1/interactions/{met}"),
            "\"1\"",
            json!({"contact_id": who}),
        )
        .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        answers.push(answer(&p, who));
    }
    assert_eq!(answers[0], answers[1]);
    let res = app.send(Method::POST, &path, &agent, &call(&hidden)).await;
    expect_json(res, StatusCode::CREATED).await;
}

/// An organization's authority and grade, whether its deal has a decision maker, and the deals
/// listed as having none.
async fn decision_state(
    app: &TestApp,
    org: &str,
    deal: &str,
) -> (Value, Value, Value, Vec<String>) {
    let viewer = app.token(Role::Viewer);
    let customer = app.get_ok(&format!("/v1/customers/{org}"), &viewer).await;
    let opportunity = app
        .get_ok(&format!("/v1/opportunities/{deal}"), &viewer)
        .await;
    let unknown = app
        .get_ok("/v1/opportunities?has_decision_maker=false", &viewer)
        .await;
    (
        customer["qualification"]["authority"].clone(),
        customer["prospect_grade"].clone(),
        opportunity["has_decision_maker"].clone(),
        opportunity_ids(&unknown),
    )
}

#[actix_web::test]
async fn a_deleted_decision_maker_decides_nothing_until_restored() {
    let app = TestApp::spawn().await;
    let created = create_customer(
        &app,
        json!({"name": "Acme Ltd", "kind": "organization",
               "qualification": {"money": true, "need": true, "authority_source": "derived"}}),
    )
    .await;
    let org = id(&created);
    let ada = person(&app, "Ada Lovelace").await;
    let grace = person(&app, "Grace Hopper").await;
    link(
        &app,
        &org,
        json!({"person_id": ada, "buying_roles": ["decision_maker"]}),
    )
    .await;
    link(
        &app,
        &org,
        json!({"person_id": grace, "buying_roles": ["purchaser"]}),
    )
    .await;
    let (_, seller) = app.user(Role::Agent).await;
    let res = app
        .send(
            Method::POST,
            "/v1/opportunities",
            &seller,
            &json!({"customer_id": org, "title": "Chairs", "amount": 100, "currency": "EUR",
                    "expected_close_date": "2027-01-15", "contact_ids": [grace, ada]}),
        )
        .await;
    let deal = id(&expect_json(res, StatusCode::CREATED).await);
    let manager = app.token(Role::Manager);
    let decided = (
        json!(true),
        json!("ideal"),
        json!(true),
        Vec::<String>::new(),
    );
    assert_eq!(decision_state(&app, &org, &deal).await, decided);

    let res = app
        .delete(&format!("/v1/customers/{ada}"), &manager, None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        decision_state(&app, &org, &deal).await,
        (
            json!(false),
            json!("reachable"),
            json!(false),
            vec![deal.clone()]
        )
    );
    let updates = app
        .count(&format!(
            "events WHERE type = 'customer.updated' AND object_id = '{org}'"
        ))
        .await;
    assert_eq!(updates, 2, "linked, then Ada deleted");

    let res = app
        .post(&format!("/v1/customers/{ada}/restore"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    assert_eq!(decision_state(&app, &org, &deal).await, decided);
    // Deleting a purchaser changes nothing.
    let res = app
        .delete(&format!("/v1/customers/{grace}"), &manager, None)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(decision_state(&app, &org, &deal).await, decided);
    assert_eq!(
        app.count(&format!(
            "events WHERE type = 'customer.updated' AND object_id = '{org}'"
        ))
        .await,
        3
    );
}
