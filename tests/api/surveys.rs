//! Satisfaction surveys: definitions and their freeze, every question type's answers, every
//! metric on a hand-built data set (computed by hand in the comments), the follow-up rule,
//! the customer list's satisfaction filters, the timeline, export and erasure.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn customer(app: &TestApp, body: Value) -> String {
    let created = crate::customers::create(app, body).await;
    created["id"].as_str().unwrap().to_owned()
}

/// `n` individuals named C0, C1, …: their ids.
async fn numbered_customers(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(customer(app, json!({"kind": "individual", "name": format!("C{i}")})).await);
    }
    ids
}

/// Every question type: NPS (required), CSAT, CES, a 1–4 rating, choices, text, and three
/// service attributes, one per Kano category.
fn questions() -> Value {
    json!([
        {"key": "recommend", "text": "Would you recommend us?", "type": "nps", "required": true},
        {"key": "csat", "text": "How satisfied are you?", "type": "csat"},
        {"key": "effort", "text": "How easy was it?", "type": "ces"},
        {"key": "stars", "text": "Stars?", "type": "rating", "scale_max": 4,
         "labels": ["bad", "meh", "good", "great"]},
        {"key": "contact", "text": "How do we reach you?", "type": "single_choice",
         "choices": ["email", "phone", "in_store"]},
        {"key": "channels", "text": "Which channels do you use?", "type": "multi_choice",
         "choices": ["email", "phone", "in_store"]},
        {"key": "comment", "text": "Anything else?", "type": "text"},
        {"key": "speed", "text": "Speed of service", "type": "expectation_performance",
         "kano": "performance", "weight": 2},
        {"key": "clean", "text": "Cleanliness", "type": "expectation_performance",
         "kano": "must_be"},
        {"key": "surprise", "text": "A pleasant surprise", "type": "expectation_performance",
         "kano": "attractive", "scale_max": 7},
    ])
}

async fn create_survey(app: &TestApp, body: Value) -> Value {
    let res = app
        .send(
            Method::POST,
            "/v1/surveys",
            &app.token(Role::Manager),
            &body,
        )
        .await;
    expect_json(res, StatusCode::CREATED).await
}

async fn set_status(app: &TestApp, id: &str, status: &str) -> reqwest::Response {
    app.send(
        Method::PATCH,
        &format!("/v1/surveys/{id}"),
        &app.token(Role::Manager),
        &json!({ "status": status }),
    )
    .await
}

/// A new active survey; its id.
pub async fn active_survey(app: &TestApp, extra: Value) -> String {
    let mut body = json!({"name": "After-sales", "questions": questions()});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let survey = create_survey(app, body).await;
    let id = survey["id"].as_str().unwrap().to_owned();
    expect_json(set_status(app, &id, "active").await, StatusCode::OK).await;
    id
}

async fn respond(app: &TestApp, survey: &str, body: Value) -> reqwest::Response {
    app.send(
        Method::POST,
        &format!("/v1/surveys/{survey}/responses"),
        &app.token(Role::Agent),
        &body,
    )
    .await
}

async fn respond_ok(app: &TestApp, survey: &str, body: Value) -> Value {
    expect_json(respond(app, survey, body).await, StatusCode::CREATED).await
}

async fn results(app: &TestApp, survey: &str, query: &str) -> Value {
    app.get_ok(
        &format!("/v1/surveys/{survey}/results?{query}"),
        &app.token(Role::Viewer),
    )
    .await
}

fn question<'a>(metrics: &'a Value, key: &str) -> &'a Value {
    metrics["questions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["key"] == key)
        .unwrap_or_else(|| panic!("no question {key} in {metrics}"))
}

fn distribution(q: &Value) -> Vec<i64> {
    q["distribution"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["count"].as_i64().unwrap())
        .collect()
}

#[actix_web::test]
async fn surveys_are_defined_activated_frozen_once_answered_and_revised() {
    let app = TestApp::spawn().await;
    let survey = create_survey(
        &app,
        json!({"name": "  After-sales ", "questions": questions()}),
    )
    .await;
    let id = survey["id"].as_str().unwrap().to_owned();
    assert_eq!(survey["name"], "After-sales");
    assert_eq!(survey["status"], "draft");
    assert_eq!(survey["revision"], 1);
    assert_eq!(survey["allow_multiple_responses"], false);
    assert_eq!(survey["follow_up"], Value::Null);
    // Defaults filled in: the scale 1–5 and the weight 1.
    let clean = question(&survey, "clean");
    assert_eq!(
        (clean["scale_max"].clone(), clean["weight"].clone()),
        (json!(5), json!(1.0))
    );
    assert_eq!(question(&survey, "recommend").get("scale_max"), None);
    assert_eq!(question(&survey, "csat")["required"], false);

    // A draft takes no responses, and cannot close before it opened.
    let c = customer(&app, json!({"kind": "individual", "name": "Ada"})).await;
    let answer = json!({"customer_id": c, "answers": {"recommend": 9}});
    let res = respond(&app, &id, answer.clone()).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let p = expect_problem(
        set_status(&app, &id, "closed").await,
        StatusCode::CONFLICT,
        "conflict",
    )
    .await;
    assert_eq!(fields(&p), ["status"]);
    // Questions change freely before the first response.
    let mut fewer = questions();
    fewer.as_array_mut().unwrap().truncate(3);
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/surveys/{id}"),
            &app.token(Role::Manager),
            &json!({"questions": fewer, "description": "Sent after each purchase"}),
        )
        .await;
    let changed = expect_json(res, StatusCode::OK).await;
    assert_eq!(changed["questions"].as_array().unwrap().len(), 3);
    assert_eq!(changed["version"], 2);
    let activated = expect_json(set_status(&app, &id, "active").await, StatusCode::OK).await;
    assert!(activated["activated_at"].is_string());
    respond_ok(&app, &id, answer.clone()).await;

    // Once answered, the questions and the response rule are frozen; the rest is not.
    for body in [
        json!({"questions": questions()}),
        json!({"allow_multiple_responses": true}),
    ] {
        let res = app
            .send(
                Method::PATCH,
                &format!("/v1/surveys/{id}"),
                &app.token(Role::Manager),
                &body,
            )
            .await;
        expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    }
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/surveys/{id}"),
            &app.token(Role::Manager),
            &json!({"name": "After-sales 2026"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    // A survey with responses is kept: deleting it is refused.
    let res = app
        .request(Method::DELETE, &format!("/v1/surveys/{id}"))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;

    // A revision: a new draft with the same questions, free to change.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/surveys/{id}/revisions"),
            &app.token(Role::Manager),
            &json!({}),
        )
        .await;
    let revision = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(revision["revision"], 2);
    assert_eq!(revision["revises"], id.as_str());
    assert_eq!(revision["status"], "draft");
    assert_eq!(revision["questions"], changed["questions"]);
    let rid = revision["id"].as_str().unwrap();
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/surveys/{rid}"),
            &app.token(Role::Manager),
            &json!({"questions": questions()}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    // The original closes and reopens; the revision, unanswered, can be deleted.
    let closed = expect_json(set_status(&app, &id, "closed").await, StatusCode::OK).await;
    assert!(closed["closed_at"].is_string());
    let res = respond(&app, &id, answer.clone()).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    expect_json(set_status(&app, &id, "active").await, StatusCode::OK).await;
    let res = app
        .request(Method::DELETE, &format!("/v1/surveys/{rid}"))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .get(&format!("/v1/surveys/{rid}"))
        .bearer_auth(app.token(Role::Viewer))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    // Lists, newest first, by status.
    let list = app
        .get_ok("/v1/surveys?status=active", &app.token(Role::Viewer))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["name"], "After-sales 2026");
    // A stale If-Match loses nothing.
    let res = app
        .request(Method::PATCH, &format!("/v1/surveys/{id}"))
        .bearer_auth(app.token(Role::Manager))
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Lost update"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;

    // Agents answer surveys but do not define them; viewers read.
    let res = app
        .send(
            Method::POST,
            "/v1/surveys",
            &app.token(Role::Agent),
            &json!({"name": "x", "questions": questions()}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = respond(&app, &id, json!({})).await;
    assert_ne!(res.status(), StatusCode::FORBIDDEN);
    let res = app
        .send(
            Method::POST,
            &format!("/v1/surveys/{id}/responses"),
            &app.token(Role::Viewer),
            &answer,
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[actix_web::test]
async fn bad_definitions_name_every_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let audit = app.count("audit_events").await;
    let q = |extra: Value| {
        let mut base = json!({"key": "k", "text": "A question?", "type": "nps"});
        base.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"name": "S", "questions": [base]})
    };
    let long = "x".repeat(501);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"name": " ", "questions": questions()}), vec!["name"]),
        (json!({"name": "S", "questions": []}), vec!["questions"]),
        (q(json!({"key": "Bad Key"})), vec!["questions[0].key"]),
        (q(json!({"key": "9lives"})), vec!["questions[0].key"]),
        (q(json!({"text": long})), vec!["questions[0].text"]),
        (q(json!({"type": "stars"})), vec!["questions[0].type"]),
        (q(json!({"scale_max": 5})), vec!["questions[0].scale_max"]),
        (
            q(json!({"choices": ["a", "b"]})),
            vec!["questions[0].choices"],
        ),
        (q(json!({"kano": "must_be"})), vec!["questions[0].kano"]),
        (q(json!({"weight": 2})), vec!["questions[0].weight"]),
        (
            q(json!({"type": "rating", "scale_max": 11})),
            vec!["questions[0].scale_max"],
        ),
        (
            q(json!({"type": "rating", "scale_max": 1})),
            vec!["questions[0].scale_max"],
        ),
        (
            q(json!({"type": "rating", "scale_max": 3, "labels": ["a", "b"]})),
            vec!["questions[0].labels"],
        ),
        (
            q(json!({"type": "rating", "labels": ["a", "b", " ", "d", "e"]})),
            vec!["questions[0].labels[2]"],
        ),
        (
            q(json!({"type": "single_choice"})),
            vec!["questions[0].choices"],
        ),
        (
            q(json!({"type": "single_choice", "choices": ["a"]})),
            vec!["questions[0].choices"],
        ),
        (
            q(json!({"type": "multi_choice", "choices": ["a", "a"]})),
            vec!["questions[0].choices[1]"],
        ),
        (
            q(json!({"type": "expectation_performance"})),
            vec!["questions[0].kano"],
        ),
        (
            q(json!({"type": "expectation_performance", "kano": "performance", "weight": 0})),
            vec!["questions[0].weight"],
        ),
        (
            q(json!({"type": "expectation_performance", "kano": "delight"})),
            vec!["questions[0].kano"],
        ),
        (q(json!({"colour": "red"})), vec!["questions[0].colour"]),
        (
            json!({"name": "S", "questions": [
                {"key": "a", "text": "A?", "type": "text"},
                {"key": "a", "text": "B?", "type": "text"}]}),
            vec!["questions[1].key"],
        ),
        (
            json!({"name": "S", "questions": questions(), "follow_up": {}}),
            vec!["follow_up"],
        ),
        (
            json!({"name": "S", "questions": [{"key": "a", "text": "A?", "type": "text"}],
                   "follow_up": {"detractors": true, "csat_at_most": 2}}),
            vec!["follow_up.detractors", "follow_up.csat_at_most"],
        ),
        (
            json!({"name": "S", "questions": questions(),
                   "follow_up": {"csat_at_most": 5, "due_in_hours": 0}}),
            vec!["follow_up.csat_at_most", "follow_up.due_in_hours"],
        ),
        (json!({"name": "S"}), vec!["questions"]),
        (json!({"name": 5, "questions": questions()}), vec!["name"]),
        (
            json!({"name": "S", "questions": questions(), "colour": "red"}),
            vec!["colour"],
        ),
    ];
    let manager = app.token(Role::Manager);
    for (body, expected) in cases {
        let res = app.send(Method::POST, "/v1/surveys", &manager, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let res = app
        .post("/v1/surveys")
        .bearer_auth(&manager)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let body = json!({"name": "S", "questions": questions()});
    let res = app.post("/v1/surveys").json(&body).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post("/v1/surveys")
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post("/v1/surveys")
        .bearer_auth(&manager)
        .header("Content-Type", "application/json")
        .body(format!("{{\"name\": \"{}\"}}", "x".repeat(2_000_000)))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    app.expect_bad_queries(
        "/v1/surveys",
        &manager,
        &[
            ("status=open", "status"),
            ("limit=0", "limit"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    let res = app
        .get("/v1/surveys/0193b0a6-0000-7000-8000-000000000009")
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    // A patch is checked the same way, and a bad status is named.
    let survey = create_survey(&app, json!({"name": "S", "questions": questions()})).await;
    let audit = audit + 1;
    let id = survey["id"].as_str().unwrap();
    for (body, expected) in [
        (json!({"name": null}), vec!["name"]),
        (json!({"questions": null}), vec!["questions"]),
        (json!({"status": "paused"}), vec!["status"]),
        (
            json!({"follow_up": {"csat_at_most": 9}}),
            vec!["follow_up.csat_at_most"],
        ),
    ] {
        let res = app
            .send(Method::PATCH, &format!("/v1/surveys/{id}"), &manager, &body)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    assert_eq!(app.count("surveys").await, 1);
    assert_eq!(app.count("audit_events").await, audit);
}

/// The hand-built data set: five customers' answers in January and March 2026.
///
/// | | nps | csat | ces | stars | contact | channels | speed E/P | clean E/P | surprise E/P |
/// | R1 Jan 10 urban | 10 | 5 | 2 | 4 | email | email, phone | 4/5 | 5/5 | 3/6 |
/// | R2 Jan 20 rural | 9 | 4 | 3 | 3 | phone | phone | 4/3 | 5/4 | |
/// | R3 Mar 5 urban | 7 | 3 | 5 | 2 | email | | 5/4 | | 4/4 |
/// | R4 Mar 6 | 3 | 2 | 6 | 1 | | email, in_store | 3/2 | 4/4 | |
/// | R5 Mar 7 | 6 | 1 | | | | | | 5/2 | |
async fn data_set(app: &TestApp, survey: &str) {
    let rows = [
        (
            "2026-01-10T10:00:00Z",
            Some("urban"),
            json!({"recommend": 10, "csat": 5, "effort": 2, "stars": 4,
            "contact": "email", "channels": ["email", "phone"], "comment": " Great ",
            "speed": {"expectation": 4, "performance": 5}, "clean": {"expectation": 5, "performance": 5},
            "surprise": {"expectation": 3, "performance": 6}}),
        ),
        (
            "2026-01-20T23:59:59Z",
            Some("rural"),
            json!({"recommend": 9, "csat": 4, "effort": 3, "stars": 3,
            "contact": "phone", "channels": ["phone"], "comment": null,
            "speed": {"expectation": 4, "performance": 3}, "clean": {"expectation": 5, "performance": 4}}),
        ),
        (
            "2026-03-05T00:00:00Z",
            Some("urban"),
            json!({"recommend": 7, "csat": 3, "effort": 5, "stars": 2,
            "contact": "email", "comment": "   ",
            "speed": {"expectation": 5, "performance": 4}, "surprise": {"expectation": 4, "performance": 4}}),
        ),
        (
            "2026-03-06T12:00:00Z",
            None,
            json!({"recommend": 3, "csat": 2, "effort": 6, "stars": 1,
            "channels": ["email", "in_store"],
            "speed": {"expectation": 3, "performance": 2}, "clean": {"expectation": 4, "performance": 4}}),
        ),
        (
            "2026-03-07T12:00:00Z",
            None,
            json!({"recommend": 6, "csat": 1,
            "clean": {"expectation": 5, "performance": 2}}),
        ),
    ];
    for (i, (at, region, answers)) in rows.into_iter().enumerate() {
        let mut body = json!({"kind": "individual", "name": format!("R{}", i + 1)});
        if let Some(region) = region {
            body["region_type"] = json!(region);
        }
        let c = customer(app, body).await;
        respond_ok(
            app,
            survey,
            json!({"customer_id": c, "submitted_at": at, "answers": answers}),
        )
        .await;
    }
}

#[actix_web::test]
async fn every_metric_is_computed_exactly_on_a_hand_built_data_set() {
    let app = TestApp::spawn().await;
    let s = active_survey(&app, json!({})).await;
    // Before any response: nothing to count, every figure empty.
    let empty = results(&app, &s, "group_by=month").await;
    assert_eq!(empty["responses"], 0);
    assert_eq!(
        (empty["from"].clone(), empty["to"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(empty["groups"], json!([]));
    assert_eq!(empty["satisfaction_index"], Value::Null);
    assert_eq!(question(&empty, "recommend")["mean"], Value::Null);
    assert_eq!(question(&empty, "recommend").get("nps"), None);
    data_set(&app, &s).await;

    let all = results(&app, &s, "").await;
    assert_eq!(all["responses"], 5);
    assert_eq!(
        (all["from"].clone(), all["to"].clone()),
        (json!("2026-01-10"), json!("2026-03-07"))
    );
    // NPS: 10, 9 promoters; 7 passive; 3, 6 detractors: 40 % − 40 % = 0 (a tie).
    let nps = question(&all, "recommend");
    assert_eq!(
        nps["nps"],
        json!({"n": 5, "promoters": 2, "passives": 1, "detractors": 2, "promoter_share": 40.0,
               "passive_share": 20.0, "detractor_share": 40.0, "score": 0.0})
    );
    assert_eq!(distribution(nps), [0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1]);
    // mean (10 + 9 + 7 + 3 + 6) / 5 = 7.
    assert_eq!(nps["mean"], 7.0);
    // CSAT: 5 and 4 of five answers: 40 %.
    let csat = question(&all, "csat");
    assert_eq!(csat["csat"], json!({"n": 5, "satisfied": 2, "score": 40.0}));
    assert_eq!(distribution(csat), [1, 1, 1, 1, 1]);
    // CES: (2 + 3 + 5 + 6) / 4 = 4.
    assert_eq!(
        question(&all, "effort")["ces"],
        json!({"n": 4, "score": 4.0})
    );
    assert_eq!(
        distribution(question(&all, "effort")),
        [0, 1, 1, 0, 1, 1, 0]
    );
    // Rating on 1–4: (4 + 3 + 2 + 1) / 4 = 2.5.
    let stars = question(&all, "stars");
    assert_eq!(
        (stars["n"].clone(), stars["mean"].clone()),
        (json!(4), json!(2.5))
    );
    assert_eq!(distribution(stars), [1, 1, 1, 1]);
    // Single choice: email 2, phone 1 of 3 answers.
    let contact = question(&all, "contact");
    assert_eq!(contact["n"], 3);
    assert_eq!(contact["mean"], Value::Null);
    assert_eq!(
        contact["choices"],
        json!([{"choice": "email", "count": 2, "share": 66.67},
               {"choice": "phone", "count": 1, "share": 33.33},
               {"choice": "in_store", "count": 0, "share": 0.0}])
    );
    // Multiple choice: 3 answers naming email twice, phone twice, in_store once.
    let channels = question(&all, "channels");
    assert_eq!(channels["n"], 3);
    assert_eq!(
        channels["choices"],
        json!([{"choice": "email", "count": 2, "share": 66.67},
               {"choice": "phone", "count": 2, "share": 66.67},
               {"choice": "in_store", "count": 1, "share": 33.33}])
    );
    // Text: one answer (a blank one is no answer).
    assert_eq!(question(&all, "comment")["n"], 1);
    // speed: E 4, 4, 5, 3 = 16 / 4 = 4; P 5, 3, 4, 2 = 14 / 4 = 3.5; gap −0.5.
    let speed = question(&all, "speed");
    assert_eq!(
        speed["gap"],
        json!({"kano": "performance", "weight": 2.0, "n": 4, "mean_expectation": 4.0,
               "mean_performance": 3.5, "gap": -0.5,
               "expectation_distribution": [{"value": 1, "count": 0}, {"value": 2, "count": 0},
                   {"value": 3, "count": 1}, {"value": 4, "count": 2}, {"value": 5, "count": 1}],
               // P against each respondent's own E: 5 > 4 satisfied; 3 < 4, 4 < 5, 2 < 3
               // dissatisfied: 1 and 3 of 4, 25 % and 75 %.
               "verdicts": {"satisfied": 1, "acceptable": 0, "dissatisfied": 3,
                            "satisfied_share": 25.0, "acceptable_share": 0.0,
                            "dissatisfied_share": 75.0}})
    );
    assert_eq!(distribution(speed), [0, 1, 1, 1, 1]);
    // clean: E 5, 5, 4, 5 = 4.75; P 5, 4, 4, 2 = 3.75; gap −1. surprise (1–7): E 3, 4 = 3.5;
    // P 6, 4 = 5; gap 1.5.
    let clean = &question(&all, "clean")["gap"];
    assert_eq!(
        (
            clean["mean_expectation"].clone(),
            clean["mean_performance"].clone(),
            clean["gap"].clone()
        ),
        (json!(4.75), json!(3.75), json!(-1.0))
    );
    let surprise = &question(&all, "surprise")["gap"];
    assert_eq!(
        (
            surprise["n"].clone(),
            surprise["mean_performance"].clone(),
            surprise["gap"].clone()
        ),
        (json!(2), json!(5.0), json!(1.5))
    );
    assert_eq!(distribution(question(&all, "surprise")).len(), 7);
    // clean: 5 = 5 and 4 = 4 acceptable (ties), 4 < 5 and 2 < 5 dissatisfied: 2 and 2 of 4.
    assert_eq!(
        clean["verdicts"],
        json!({"satisfied": 0, "acceptable": 2, "dissatisfied": 2, "satisfied_share": 0.0,
               "acceptable_share": 50.0, "dissatisfied_share": 50.0})
    );
    // surprise: 6 > 3 satisfied, 4 = 4 acceptable: 1 and 1 of 2.
    assert_eq!(
        surprise["verdicts"],
        json!({"satisfied": 1, "acceptable": 1, "dissatisfied": 0, "satisfied_share": 50.0,
               "acceptable_share": 50.0, "dissatisfied_share": 0.0})
    );
    // Index: speed (3.5 − 1) / 4 = 62.5 % × 2; clean (3.75 − 1) / 4 = 68.75 %; surprise
    // (5 − 1) / 6 = 66.667 %: (125 + 68.75 + 66.667) / 4 = 65.104 → 65.1.
    assert_eq!(all["satisfaction_index"], 65.1);
    assert_eq!(
        all["kano"],
        json!([
            {"category": "must_be", "attributes": 1, "n": 4, "mean_expectation": 4.75,
             "mean_performance": 3.75, "gap": -1.0},
            {"category": "performance", "attributes": 1, "n": 4, "mean_expectation": 4.0,
             "mean_performance": 3.5, "gap": -0.5},
            {"category": "attractive", "attributes": 1, "n": 2, "mean_expectation": 3.5,
             "mean_performance": 5.0, "gap": 1.5},
        ])
    );

    // By month, every month of the range: January all promoters, February empty, March.
    let by_month = results(&app, &s, "from=2026-01-01&to=2026-03-31&group_by=month").await;
    assert_eq!(by_month["responses"], 5);
    let groups = by_month["groups"].as_array().unwrap();
    let keys: Vec<&str> = groups.iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["2026-01", "2026-02", "2026-03"]);
    assert_eq!(
        (groups[1]["from"].clone(), groups[1]["to"].clone()),
        (json!("2026-02-01"), json!("2026-02-28"))
    );
    let jan = &groups[0];
    assert_eq!(jan["responses"], 2);
    assert_eq!(question(jan, "recommend")["nps"]["score"], 100.0);
    assert_eq!(question(jan, "recommend")["nps"]["detractors"], 0);
    // January's index: speed P 5, 3 = 4 → 75 % × 2; clean 5, 4 = 4.5 → 87.5 %; surprise 6 →
    // 83.333 %: (150 + 87.5 + 83.333) / 4 = 80.208 → 80.21.
    assert_eq!(jan["satisfaction_index"], 80.21);
    // January's verdicts on speed: R1 5 > 4, R2 3 < 4: one each of 2.
    assert_eq!(
        question(jan, "speed")["gap"]["verdicts"],
        json!({"satisfied": 1, "acceptable": 0, "dissatisfied": 1, "satisfied_share": 50.0,
               "acceptable_share": 0.0, "dissatisfied_share": 50.0})
    );
    // March's on clean: R4 4 = 4 acceptable, R5 2 < 5 dissatisfied.
    assert_eq!(
        question(&groups[2], "clean")["gap"]["verdicts"],
        json!({"satisfied": 0, "acceptable": 1, "dissatisfied": 1, "satisfied_share": 0.0,
               "acceptable_share": 50.0, "dissatisfied_share": 50.0})
    );
    let feb = &groups[1];
    assert_eq!(feb["responses"], 0);
    // An empty period has no gap, so no verdicts.
    assert_eq!(question(feb, "speed").get("gap"), None);
    assert_eq!(feb["satisfaction_index"], Value::Null);
    assert_eq!(feb["kano"], json!([]));
    assert_eq!(question(feb, "recommend").get("nps"), None);
    assert_eq!(distribution(question(feb, "recommend")), [0; 11]);
    // March: 7 passive, 3 and 6 detractors: (0 − 2) / 3 = −66.67.
    let mar = question(&groups[2], "recommend");
    assert_eq!(
        (
            mar["nps"]["score"].clone(),
            mar["nps"]["passive_share"].clone(),
            mar["nps"]["detractor_share"].clone()
        ),
        (json!(-66.67), json!(33.33), json!(66.67))
    );
    // A single response (R1's day): every figure from one answer.
    let one = results(&app, &s, "from=2026-01-10&to=2026-01-10").await;
    assert_eq!(one["responses"], 1);
    assert_eq!(question(&one, "recommend")["nps"]["score"], 100.0);
    assert_eq!(question(&one, "csat")["csat"]["score"], 100.0);
    assert_eq!(question(&one, "effort")["ces"]["score"], 2.0);
    assert_eq!(question(&one, "speed")["gap"]["gap"], 1.0);
    // Ranges whose months are mostly covered are read as whole months less the days outside
    // them: the same answers as day by day. 11 Jan .. 6 Mar: January less 1–10 Jan (R1 out),
    // February, March's first six days: R2 in January; R3 (7, passive) and R4 (3, detractor)
    // in March: (0 − 1) / 2 = −50.
    let ragged = results(&app, &s, "from=2026-01-11&to=2026-03-06&group_by=month").await;
    assert_eq!(ragged["responses"], 3);
    let months: Vec<(i64, Value)> = ragged["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["responses"].as_i64().unwrap(),
                question(g, "recommend")
                    .get("nps")
                    .map_or(Value::Null, |n| n["score"].clone()),
            )
        })
        .collect();
    assert_eq!(
        months,
        [(1, json!(100.0)), (0, Value::Null), (2, json!(-50.0))]
    );
    // 6 .. 31 Mar: March less its first five days, so R3 (urban, 5 Mar) is out and no urban
    // group is left; R4 and R5 have no region.
    let late_march = results(
        &app,
        &s,
        "from=2026-03-06&to=2026-03-31&group_by=region_type",
    )
    .await;
    let regions: Vec<(&str, i64)> = late_march["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["responses"].as_i64().unwrap()))
        .collect();
    assert_eq!(regions, [("none", 2)]);
    // 4 .. 6 Mar (3 of 31 days) by day: R3 and R4.
    assert_eq!(
        results(&app, &s, "from=2026-03-04&to=2026-03-06").await["responses"],
        2
    );
    // A range with nothing in it.
    let none = results(&app, &s, "from=2025-01-01&to=2025-01-31&group_by=week").await;
    assert_eq!(none["responses"], 0);
    assert_eq!(none["groups"].as_array().unwrap().len(), 5);
    // ISO weeks: 1 Jan 2026 is a Thursday of 2026-W01; R1 answered in W02.
    let weeks = results(&app, &s, "from=2026-01-01&to=2026-01-12&group_by=week").await;
    let weeks: Vec<(String, i64)> = weeks["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_owned(),
                g["responses"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        weeks,
        [
            ("2026-W01".to_owned(), 0),
            ("2026-W02".to_owned(), 1),
            ("2026-W03".to_owned(), 0)
        ]
    );
    // By region when they answered: urban 2 and none 2 tie (by key), rural 1.
    let by_region = results(&app, &s, "group_by=region_type").await;
    let groups = by_region["groups"].as_array().unwrap();
    let keys: Vec<(&str, i64)> = groups
        .iter()
        .map(|g| (g["key"].as_str().unwrap(), g["responses"].as_i64().unwrap()))
        .collect();
    assert_eq!(keys, [("none", 2), ("urban", 2), ("rural", 1)]);
    // Urban: 10 promoter, 7 passive: 50.
    assert_eq!(question(&groups[1], "recommend")["nps"]["score"], 50.0);
    // No region (R4, R5) on speed: R4's 2 < 3 alone, 100 % dissatisfied.
    assert_eq!(
        question(&groups[0], "speed")["gap"]["verdicts"],
        json!({"satisfied": 0, "acceptable": 0, "dissatisfied": 1, "satisfied_share": 0.0,
               "acceptable_share": 0.0, "dissatisfied_share": 100.0})
    );
    assert_eq!(by_region["responses"], 5);
    let by_tier = results(&app, &s, "group_by=tier").await;
    assert_eq!(by_tier["groups"][0]["key"], "none");
    assert_eq!(by_tier["groups"][0]["responses"], 5);
    let by_stage = results(&app, &s, "group_by=lifecycle_stage").await;
    assert_eq!(by_stage["groups"][0]["key"], "prospect");

    // The responses list filters on scores, time and segment.
    let viewer = app.token(Role::Viewer);
    let list = |q: &'static str| {
        let app = &app;
        let viewer = viewer.clone();
        let s = s.clone();
        async move {
            let page = app
                .get_ok(&format!("/v1/surveys/{s}/responses?{q}"), &viewer)
                .await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["nps"].as_i64().unwrap())
                .collect::<Vec<i64>>()
        }
    };
    assert_eq!(list("").await, [6, 3, 7, 9, 10]);
    assert_eq!(list("sort=submitted_at").await, [10, 9, 7, 3, 6]);
    assert_eq!(list("nps_max=6").await, [6, 3]);
    assert_eq!(list("nps_min=7&nps_max=9").await, [7, 9]);
    assert_eq!(list("csat_min=4").await, [9, 10]);
    assert_eq!(list("ces_min=5&ces_max=6").await, [3, 7]);
    assert_eq!(
        list("submitted_after=2026-03-01T00:00:00Z&submitted_before=2026-03-07T00:00:00Z").await,
        [3, 7]
    );
    assert_eq!(list("region_type=urban").await, [7, 10]);
    assert_eq!(
        list("loyalty_tier=none&lifecycle_stage=prospect&limit=1").await,
        [6]
    );
    let first = app
        .get_ok(&format!("/v1/surveys/{s}/responses?limit=2"), &viewer)
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let next = app
        .get_ok(
            &format!("/v1/surveys/{s}/responses?limit=2&cursor={cursor}"),
            &viewer,
        )
        .await;
    assert_eq!(next["data"][0]["nps"], 7);
    let r = &first["data"][0];
    assert_eq!(r["nps_category"], "detractor");
    assert_eq!(
        r["segment"],
        json!({"loyalty_tier": null, "lifecycle_stage": "prospect", "region_type": null})
    );
    let one = app
        .get_ok(
            &format!("/v1/survey-responses/{}", r["id"].as_str().unwrap()),
            &viewer,
        )
        .await;
    assert_eq!(
        one["answers"],
        json!({"recommend": 6, "csat": 1, "clean": {"expectation": 5, "performance": 2}})
    );
    // The verdict per attribute: clean 2 − 5 = −3, dissatisfied.
    assert_eq!(
        one["verdicts"],
        json!([{"key": "clean", "expectation": 5, "performance": 2, "gap": -3,
                "verdict": "dissatisfied"}])
    );
    // R1's: clean 5 = 5 acceptable, speed 5 − 4 = 1 satisfied, surprise 6 − 3 = 3 satisfied.
    let oldest = app
        .get_ok(
            &format!("/v1/surveys/{s}/responses?sort=submitted_at&limit=1"),
            &viewer,
        )
        .await;
    assert_eq!(
        oldest["data"][0]["verdicts"],
        json!([
            {"key": "clean", "expectation": 5, "performance": 5, "gap": 0, "verdict": "acceptable"},
            {"key": "speed", "expectation": 4, "performance": 5, "gap": 1, "verdict": "satisfied"},
            {"key": "surprise", "expectation": 3, "performance": 6, "gap": 3,
             "verdict": "satisfied"}
        ])
    );
    let across = app
        .get_ok(
            &format!(
                "/v1/survey-responses?customer_id={}",
                r["customer_id"].as_str().unwrap()
            ),
            &viewer,
        )
        .await;
    assert_eq!(across["data"].as_array().unwrap().len(), 1);

    // Bad queries name their parameter.
    app.expect_bad_queries(
        &format!("/v1/surveys/{s}/results"),
        &viewer,
        &[
            ("group_by=year", "group_by"),
            ("from=2026-13-01", "from"),
            ("from=2026-03-01&to=2026-02-01", "to"),
            ("from=1990-01-01&to=2026-01-01&group_by=week", "group_by"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    app.expect_bad_queries(
        &format!("/v1/surveys/{s}/responses"),
        &viewer,
        &[
            ("nps_min=11", "nps_min"),
            ("nps_min=5&nps_max=3", "nps_max"),
            ("csat_max=0", "csat_max"),
            ("ces_min=x", "ces_min"),
            ("lifecycle_stage=bored", "lifecycle_stage"),
            ("sort=nps", "sort"),
            (
                "survey_id=0193b0a6-0000-7000-8000-000000000009",
                "survey_id",
            ),
            ("colour=red", "colour"),
        ],
    )
    .await;
    let res = app
        .get("/v1/surveys/0193b0a6-0000-7000-8000-000000000009/results")
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .get(&format!("/v1/surveys/{s}/results"))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
}

/// Reverts the migration that counts attributes apart (`back`), or applies it again.
/// Folds the counts the responses appended into the roll-up now (the service does every
/// second), so a test can read the roll-up's rows.
async fn fold(app: &TestApp) -> usize {
    let mut conn = app.db.connect().await;
    rapport::surveys::fold(&mut conn).await.unwrap()
}

#[actix_web::test]
async fn responses_count_once_whether_their_counts_are_folded_or_not() {
    // Folded only when the test says, to see both sides of a fold.
    let app = TestApp::spawn_with(&[("RAPPORT_SURVEY_FOLD_INTERVAL", "1h")]).await;
    let s = active_survey(&app, json!({})).await;
    data_set(&app, &s).await;
    // Posted: the counts are appended, the roll-up is untouched.
    let appended = app.count("survey_stats_deltas").await;
    assert!(appended > 0);
    for table in ["survey_stats", "survey_stats_months"] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    let queries = [
        "",
        "group_by=month",
        "group_by=week",
        "group_by=tier",
        "group_by=lifecycle_stage",
        "group_by=region_type",
        "from=2026-01-15&to=2026-03-06",
        "from=2026-01-15&to=2026-03-06&group_by=month",
    ];
    let mut before = Vec::new();
    for query in queries {
        before.push(results(&app, &s, query).await);
    }
    assert_eq!(before[0]["responses"], 5);
    assert_eq!(
        (before[0]["from"].as_str(), before[0]["to"].as_str()),
        (Some("2026-01-10"), Some("2026-03-07"))
    );
    assert_eq!(before[6]["responses"], 3);

    // Folded: every appended row goes to the roll-up, and the results do not change.
    assert_eq!(fold(&app).await, usize::try_from(appended).unwrap());
    assert_eq!(app.count("survey_stats_deltas").await, 0);
    assert_eq!(fold(&app).await, 0);
    // The service reclaims the folded rows' space now and then, outside a transaction.
    rapport::surveys::store::vacuum_deltas(&mut app.db.connect().await)
        .await
        .unwrap();
    let day = |day: &str| {
        format!("survey_stats WHERE dimension = '' AND question_key = '' AND day = '{day}'")
    };
    assert_eq!(
        app.count(&format!("{} AND n = 1", day("2026-01-10"))).await,
        1
    );
    for (query, expected) in queries.iter().zip(&before) {
        assert_eq!(&results(&app, &s, query).await, expected, "{query}");
    }

    // Half folded: a response appended beside the roll-up is read with it, and folding it
    // adds to the rows already there.
    let c = customer(&app, json!({"kind": "individual", "name": "R6"})).await;
    respond_ok(
        &app,
        &s,
        json!({"customer_id": c, "submitted_at": "2026-01-10T18:00:00Z",
               "answers": {"recommend": 8}}),
    )
    .await;
    let mixed = results(&app, &s, "group_by=month").await;
    assert_eq!(mixed["responses"], 6);
    assert_eq!(question(&mixed, "recommend")["n"], 6);
    assert!(fold(&app).await > 0);
    assert_eq!(results(&app, &s, "group_by=month").await, mixed);
    assert_eq!(
        app.count(&format!("{} AND n = 2", day("2026-01-10"))).await,
        1
    );
    assert_eq!(
        app.count(
            "survey_stats_months WHERE dimension = '' AND question_key = '' \
             AND month = '2026-01-01' AND n = 3"
        )
        .await,
        1
    );
}

#[actix_web::test]
async fn the_service_folds_the_counts_by_itself_and_counts_its_folds_in_metrics() {
    let app = TestApp::spawn_with(&[("RAPPORT_SURVEY_FOLD_INTERVAL", "100ms")]).await;
    let s = active_survey(&app, json!({})).await;
    data_set(&app, &s).await;
    let mut left = i64::MAX;
    for _ in 0..100 {
        left = app.count("survey_stats_deltas").await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "the service left counts unfolded for 10 s");
    assert_eq!(
        app.count("survey_stats WHERE dimension = '' AND question_key = ''")
            .await,
        5,
        "a row for each of the data set's five days"
    );
    assert_eq!(results(&app, &s, "").await["responses"], 5);
    let value = async |name: &str| -> u64 {
        app.metric(name)
            .await
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} on /metrics"))
    };
    assert!(value("survey_counts_folded_total").await > 0);
    assert_eq!(value("survey_folds_failed_total").await, 0);
}

#[actix_web::test]
async fn responses_posted_at_once_while_folding_are_each_counted_once() {
    let app = TestApp::spawn_with(&[("RAPPORT_SURVEY_FOLD_INTERVAL", "1h")]).await;
    let s = active_survey(&app, json!({})).await;
    let customers = numbered_customers(&app, 12).await;
    let posts = customers.iter().map(|c| {
        respond_ok(
            &app,
            &s,
            json!({"customer_id": c, "submitted_at": "2026-02-03T10:00:00Z",
                   "answers": {"recommend": 9, "speed": {"expectation": 3, "performance": 4}}}),
        )
    });
    let folds = (0..6).map(|_| fold(&app));
    let (_, _) = tokio::join!(
        futures_util::future::join_all(posts),
        futures_util::future::join_all(folds)
    );
    fold(&app).await;
    assert_eq!(app.count("survey_stats_deltas").await, 0);
    let r = results(&app, &s, "group_by=lifecycle_stage").await;
    assert_eq!(r["responses"], 12);
    assert_eq!(question(&r, "recommend")["n"], 12);
    assert_eq!(question(&r, "speed")["gap"]["verdicts"]["satisfied"], 12);
    for dimension in ["", "tier", "lifecycle_stage", "region_type"] {
        assert_eq!(
            app.count(&format!(
                "survey_stats WHERE dimension = '{dimension}' AND question_key = '' AND n = 12"
            ))
            .await,
            1,
            "{dimension}"
        );
    }
}

async fn migrate_attributes_apart(app: &TestApp, back: bool) {
    use diesel::Connection;
    use diesel::migration::MigrationSource;
    use diesel_async::AsyncPgConnection;
    use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
    use diesel_migrations::MigrationHarness;
    let url = app.db.url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            AsyncConnectionWrapper::<AsyncPgConnection>::establish(url.expose()).unwrap();
        if back {
            let all = MigrationSource::<diesel::pg::Pg>::migrations(&rapport::db::MIGRATIONS);
            let apart = all
                .unwrap()
                .into_iter()
                .find(|m| m.name().to_string().ends_with("_survey_attributes_apart"))
                .expect("the migration");
            conn.revert_migration(apart.as_ref()).unwrap();
        } else {
            conn.run_pending_migrations(rapport::db::MIGRATIONS)
                .unwrap();
        }
    })
    .await
    .unwrap();
}

#[actix_web::test]
async fn attribute_answers_are_counted_apart_and_earlier_pairs_split() {
    let app = TestApp::spawn().await;
    let s = active_survey(&app, json!({})).await;
    data_set(&app, &s).await;
    let queries = [
        "",
        "group_by=month",
        "group_by=region_type",
        "group_by=week",
    ];
    let mut before = Vec::new();
    for query in queries {
        before.push(results(&app, &s, query).await);
    }
    fold(&app).await;
    // R1's speed (E 4, P 5) on 2026-01-10: its P, its E and its verdict, each counted apart.
    let speed = |day: &str| {
        format!("survey_stats WHERE dimension = '' AND question_key = 'speed' AND day = '{day}'")
    };
    let of_r1 = speed("2026-01-10");
    assert_eq!(app.count(&of_r1).await, 3);
    for cell in [
        "score = 5 AND expectation IS NULL AND choice IS NULL",
        "score IS NULL AND expectation = 4 AND choice IS NULL",
        "score IS NULL AND expectation IS NULL AND choice = 'satisfied'",
    ] {
        assert_eq!(
            app.count(&format!("{of_r1} AND {cell} AND n = 1")).await,
            1,
            "{cell}"
        );
    }
    let pairs = "score IS NOT NULL AND expectation IS NOT NULL";
    for table in ["survey_stats", "survey_stats_months"] {
        assert_eq!(app.count(&format!("{table} WHERE {pairs}")).await, 0);
    }

    // Back before the split: the attributes' pairs are recounted from the responses, and a
    // server not yet upgraded would read them. This one reads them to the same figures.
    migrate_attributes_apart(&app, true).await;
    assert_eq!(app.count(&of_r1).await, 1);
    assert_eq!(
        app.count(&format!(
            "{of_r1} AND score = 5 AND expectation = 4 AND n = 1"
        ))
        .await,
        1
    );
    assert_eq!(
        app.count("survey_stats_months WHERE question_key = 'speed' AND choice IS NOT NULL")
            .await,
        0
    );
    for (query, expected) in queries.iter().zip(&before) {
        assert_eq!(&results(&app, &s, query).await, expected, "{query}");
    }
    // A response counted apart beside the pairs (a server already upgraded), then the split
    // again: the pairs and the new rows add up, as they do when read mixed.
    let c = customer(&app, json!({"kind": "individual", "name": "R6"})).await;
    respond_ok(
        &app,
        &s,
        json!({"customer_id": c, "submitted_at": "2026-01-10T18:00:00Z",
               "answers": {"recommend": 8, "speed": {"expectation": 2, "performance": 5}}}),
    )
    .await;
    let mixed = results(&app, &s, "group_by=month").await;
    fold(&app).await;
    migrate_attributes_apart(&app, false).await;
    for table in ["survey_stats", "survey_stats_months"] {
        assert_eq!(app.count(&format!("{table} WHERE {pairs}")).await, 0);
    }
    assert_eq!(results(&app, &s, "group_by=month").await, mixed);
    assert_eq!(
        app.count(&format!("{of_r1} AND score = 5 AND n = 2")).await,
        1
    );
    assert_eq!(
        app.count(&format!("{of_r1} AND choice = 'satisfied' AND n = 2"))
            .await,
        1
    );
    // speed over R1–R4 and R6: P 5, 3, 4, 2, 5 and E 4, 4, 5, 3, 2.
    let speed = question(&mixed, "speed");
    assert_eq!(speed["gap"]["n"], 5);
    assert_eq!(speed["gap"]["mean_performance"], 3.8);
    assert_eq!(speed["gap"]["mean_expectation"], 3.6);
    assert_eq!(speed["gap"]["verdicts"]["satisfied"], 2);
    assert_eq!(speed["gap"]["verdicts"]["dissatisfied"], 3);
}

#[actix_web::test]
async fn every_question_type_refuses_bad_answers_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let s = active_survey(&app, json!({})).await;
    let c = customer(&app, json!({"kind": "individual", "name": "Ada"})).await;
    let other = customer(&app, json!({"kind": "individual", "name": "Bob"})).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{other}/purchases"),
            &app.token(Role::Agent),
            &json!({"amount": 100, "currency": "EUR"}),
        )
        .await;
    let purchase = expect_json(res, StatusCode::CREATED).await;
    let audit = app.count("audit_events").await;
    let ok = json!({"recommend": 8});
    let with = |answers: Value| {
        let mut all = ok.clone();
        all.as_object_mut()
            .unwrap()
            .extend(answers.as_object().unwrap().clone());
        json!({"customer_id": c, "answers": all})
    };
    let long = "x".repeat(2001);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (with(json!({"recommend": 11})), vec!["answers.recommend"]),
        (with(json!({"recommend": -1})), vec!["answers.recommend"]),
        (with(json!({"recommend": 9.5})), vec!["answers.recommend"]),
        (with(json!({"recommend": "9"})), vec!["answers.recommend"]),
        (with(json!({"recommend": null})), vec!["answers.recommend"]),
        (
            json!({"customer_id": c, "answers": {}}),
            vec!["answers.recommend"],
        ),
        (with(json!({"csat": 0})), vec!["answers.csat"]),
        (with(json!({"effort": 8})), vec!["answers.effort"]),
        (with(json!({"stars": 5})), vec!["answers.stars"]),
        (with(json!({"contact": "fax"})), vec!["answers.contact"]),
        (with(json!({"contact": ["email"]})), vec!["answers.contact"]),
        (with(json!({"channels": "email"})), vec!["answers.channels"]),
        (with(json!({"channels": []})), vec!["answers.channels"]),
        (
            with(json!({"channels": ["email", "email"]})),
            vec!["answers.channels"],
        ),
        (with(json!({"channels": ["fax"]})), vec!["answers.channels"]),
        (with(json!({"comment": 42})), vec!["answers.comment"]),
        (with(json!({"comment": long})), vec!["answers.comment"]),
        (with(json!({"speed": 4})), vec!["answers.speed"]),
        (
            with(json!({"speed": {"expectation": 4}})),
            vec!["answers.speed.performance"],
        ),
        (
            with(json!({"speed": {"expectation": 6, "performance": 1}})),
            vec!["answers.speed.expectation"],
        ),
        (
            with(json!({"surprise": {"expectation": 7, "performance": 8}})),
            vec!["answers.surprise.performance"],
        ),
        (
            with(json!({"speed": {"expectation": 1, "performance": 1, "importance": 3}})),
            vec!["answers.speed.importance"],
        ),
        (with(json!({"colour": "red"})), vec!["answers.colour"]),
        (
            with(json!({"recommend": 12, "csat": 6})),
            vec!["answers.recommend", "answers.csat"],
        ),
        (
            json!({"customer_id": "0193b0a6-0000-7000-8000-000000000009", "answers": {"recommend": 12}}),
            vec!["customer_id", "answers.recommend"],
        ),
        (
            json!({"customer_id": c, "purchase_id": purchase["id"], "answers": ok}),
            vec!["purchase_id"],
        ),
        (
            json!({"customer_id": c, "interaction_id": "0193b0a6-0000-7000-8000-000000000009", "answers": ok}),
            vec!["interaction_id"],
        ),
        (
            json!({"customer_id": c, "submitted_at": "2999-01-01T00:00:00Z", "answers": ok}),
            vec!["submitted_at"],
        ),
        (json!({"customer_id": c}), vec!["answers"]),
        (json!({"answers": ok}), vec!["customer_id"]),
        (json!({"customer_id": c, "answers": [9]}), vec!["answers"]),
        (
            json!({"customer_id": c, "answers": ok, "colour": "red"}),
            vec!["colour"],
        ),
    ];
    for (body, expected) in cases {
        let res = respond(&app, &s, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let path = format!("/v1/surveys/{s}/responses");
    let res = app
        .post(&path)
        .bearer_auth(app.token(Role::Agent))
        .header("Content-Type", "application/json")
        .body("{\"customer_id\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app
        .post(&path)
        .bearer_auth(app.token(Role::Agent))
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\"customer_id\": \"{c}\", \"answers\": {{\"comment\": \"{}\"}}}}",
            "x".repeat(2_000_000)
        ))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let good = json!({"customer_id": c, "answers": ok});
    let res = app.post(&path).json(&good).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post(&path)
        .bearer_auth("nope")
        .json(&good)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .send(
            Method::POST,
            "/v1/surveys/0193b0a6-0000-7000-8000-000000000009/responses",
            &app.token(Role::Agent),
            &good,
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    for table in [
        "survey_responses",
        "survey_stats",
        "survey_stats_months",
        "survey_stats_deltas",
        "customer_satisfaction",
        "interactions",
    ] {
        assert_eq!(app.count(table).await, 0, "{table}");
    }
    assert_eq!(app.count("audit_events").await, audit);

    // A good response, sent twice with one Idempotency-Key: recorded once.
    let send = || {
        app.post(&path)
            .bearer_auth(app.token(Role::Agent))
            .header("Idempotency-Key", "resp-1")
            .json(&json!({"customer_id": c, "answers": {"recommend": 8, "comment": "fine"}}))
            .send()
    };
    let first = expect_json(send().await.unwrap(), StatusCode::CREATED).await;
    let again = expect_json(send().await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["nps_category"], "passive");
    // One response per customer: a second (another key) is refused.
    let res = respond(
        &app,
        &s,
        json!({"customer_id": c, "answers": {"recommend": 9}}),
    )
    .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(fields(&p), ["customer_id"]);
    assert_eq!(app.count("survey_responses").await, 1);
    // A survey that allows more takes them.
    let many = active_survey(&app, json!({"allow_multiple_responses": true})).await;
    respond_ok(
        &app,
        &many,
        json!({"customer_id": c, "answers": {"recommend": 9}}),
    )
    .await;
    respond_ok(
        &app,
        &many,
        json!({"customer_id": c, "answers": {"recommend": 10}}),
    )
    .await;
    assert_eq!(results(&app, &many, "").await["responses"], 2);
}

#[actix_web::test]
async fn detractors_and_low_csat_open_a_follow_up_for_the_account_manager() {
    let app = TestApp::spawn().await;
    let (manager, _) = app.user(Role::Manager).await;
    let s = active_survey(
        &app,
        json!({"name": "Service check", "follow_up": {"detractors": true, "csat_at_most": 2, "due_in_hours": 48}}),
    )
    .await;
    let managed = customer(
        &app,
        json!({"kind": "individual", "name": "Ada", "account_manager_id": manager, "preferred_channel": "email"}),
    )
    .await;
    let unmanaged = customer(&app, json!({"kind": "individual", "name": "Bob"})).await;
    let happy = customer(&app, json!({"kind": "individual", "name": "Cy"})).await;
    let unhappy = customer(&app, json!({"kind": "individual", "name": "Di"})).await;

    let before = chrono::Utc::now();
    let r = respond_ok(
        &app,
        &s,
        json!({"customer_id": managed, "answers": {"recommend": 3, "csat": 4}}),
    )
    .await;
    let id = r["follow_up_interaction_id"].as_str().expect("a follow-up");
    let agent = app.token(Role::Agent);
    let follow_up = app.get_ok(&format!("/v1/interactions/{id}"), &agent).await;
    assert_eq!(follow_up["customer_id"], managed.as_str());
    assert_eq!(follow_up["kind"], "callback");
    assert_eq!(follow_up["direction"], "outbound");
    assert_eq!(follow_up["channel"], "email");
    assert_eq!(follow_up["assignee_id"], manager.to_string());
    assert_eq!(follow_up["staff_id"], Value::Null);
    assert_eq!(follow_up["follow_up_state"], "due");
    assert!(
        follow_up["notes"]
            .as_str()
            .unwrap()
            .contains("NPS 3 (detractor)")
    );
    let due = chrono::DateTime::parse_from_rfc3339(follow_up["due_at"].as_str().unwrap()).unwrap();
    let hours = (due.with_timezone(&chrono::Utc) - before).num_minutes() as f64 / 60.0;
    assert!((47.9..48.2).contains(&hours), "due in {hours} h");
    // It is on the manager's due list.
    let due_list = app
        .get_ok(&format!("/v1/follow-ups?assignee={manager}"), &agent)
        .await;
    assert_eq!(due_list["data"][0]["id"], id);

    // Low CSAT alone calls for one too; without an account manager it is unassigned.
    let r = respond_ok(
        &app,
        &s,
        json!({"customer_id": unmanaged, "answers": {"recommend": 8, "csat": 2}}),
    )
    .await;
    let id = r["follow_up_interaction_id"].as_str().expect("a follow-up");
    let follow_up = app.get_ok(&format!("/v1/interactions/{id}"), &agent).await;
    assert_eq!(follow_up["assignee_id"], Value::Null);
    assert_eq!(follow_up["channel"], "phone");
    assert!(
        follow_up["notes"]
            .as_str()
            .unwrap()
            .contains("CSAT 2 (at most 2)")
    );
    // Satisfied customers open none; neither does a survey without the rule.
    let r = respond_ok(
        &app,
        &s,
        json!({"customer_id": happy, "answers": {"recommend": 7, "csat": 3}}),
    )
    .await;
    assert_eq!(r["follow_up_interaction_id"], Value::Null);
    let plain = active_survey(&app, json!({})).await;
    let r = respond_ok(
        &app,
        &plain,
        json!({"customer_id": unhappy, "answers": {"recommend": 0, "csat": 1}}),
    )
    .await;
    assert_eq!(r["follow_up_interaction_id"], Value::Null);
    assert_eq!(app.count("interactions").await, 2);
    // A refused response opens nothing.
    let res = respond(
        &app,
        &s,
        json!({"customer_id": managed, "answers": {"recommend": 0}}),
    )
    .await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(app.count("interactions").await, 2);
}

#[actix_web::test]
async fn the_customer_list_finds_the_unhappy_and_the_timeline_shows_responses() {
    let app = TestApp::spawn().await;
    let s = active_survey(&app, json!({"allow_multiple_responses": true})).await;
    let day = |d: i64| (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339();
    let answer = |c: &str, at: String, nps: i64, csat: Option<i64>| {
        let mut answers = json!({"recommend": nps});
        if let Some(csat) = csat {
            answers["csat"] = json!(csat);
        }
        json!({"customer_id": c, "submitted_at": at, "answers": answers})
    };
    // A: 9, then 3 (latest: detractor). B: 10 with CSAT 5. C: 3, then 9 (promoter).
    // D: 10, then a back-dated 2 recorded later (latest by time answered: still 10).
    // E: no response.
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        ids.push(
            customer(
                &app,
                json!({"kind": "individual", "name": name, "email": format!("{name}@example.com")}),
            )
            .await,
        );
    }
    let (a, b, c, d) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    respond_ok(&app, &s, answer(a, day(2), 9, Some(4))).await;
    respond_ok(&app, &s, answer(a, day(1), 3, None)).await;
    respond_ok(&app, &s, answer(b, day(1), 10, Some(5))).await;
    respond_ok(&app, &s, answer(c, day(5), 3, Some(1))).await;
    respond_ok(&app, &s, answer(c, day(1), 9, None)).await;
    respond_ok(&app, &s, answer(d, day(1), 10, None)).await;
    respond_ok(&app, &s, answer(d, day(10), 2, Some(2))).await;
    let viewer = app.token(Role::Viewer);
    let names = |q: &'static str| {
        let app = &app;
        let viewer = viewer.clone();
        async move {
            let page = app
                .get_ok(&format!("/v1/customers?{q}&sort=name"), &viewer)
                .await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(names("nps_category=detractor").await, ["A"]);
    assert_eq!(names("latest_nps_max=6").await, ["A"]);
    assert_eq!(names("nps_category=promoter").await, ["B", "C", "D"]);
    assert_eq!(
        names("nps_category=promoter,detractor&latest_nps_min=10").await,
        ["B", "D"]
    );
    // Latest CSAT: A 4 (the later response had none), B 5, C 1, D 2 (its only CSAT).
    assert_eq!(names("latest_csat_max=2").await, ["C", "D"]);
    assert_eq!(
        names("latest_csat_min=4&nps_category=detractor").await,
        ["A"]
    );
    assert_eq!(
        names("q=example&nps_category=passive").await,
        Vec::<String>::new()
    );
    app.expect_bad_queries(
        "/v1/customers",
        &viewer,
        &[
            ("latest_nps_min=11", "latest_nps_min"),
            ("latest_nps_min=7&latest_nps_max=6", "latest_nps_max"),
            ("latest_csat_max=6", "latest_csat_max"),
            ("nps_category=angry", "nps_category"),
        ],
    )
    .await;

    // The timeline shows the responses, newest first, with the other items.
    let timeline = app
        .get_ok(&format!("/v1/customers/{a}/timeline"), &viewer)
        .await;
    let items = timeline["data"].as_array().unwrap();
    let responses: Vec<i64> = items
        .iter()
        .filter(|i| i["type"] == "survey_response")
        .map(|i| i["survey_response"]["nps"].as_i64().unwrap())
        .collect();
    assert_eq!(responses, [3, 9]);
    let only = app
        .get_ok(
            &format!("/v1/customers/{a}/timeline?types=survey_response"),
            &viewer,
        )
        .await;
    assert_eq!(only["data"].as_array().unwrap().len(), 2);

    // An integration without `surveys:read` sees the rest of the timeline, not the answers.
    let till = app
        .client_token(
            "Till",
            &["customers:read", "interactions:read", "purchases:read"],
        )
        .await;
    let seen = app
        .get_ok(&format!("/v1/customers/{a}/timeline"), &till)
        .await;
    assert!(
        seen["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["type"] != "survey_response")
    );
    assert!(!seen["data"].as_array().unwrap().is_empty());
    let res = app
        .get(&format!("/v1/customers/{a}/timeline?types=survey_response"))
        .bearer_auth(&till)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    // Export carries the responses; erasure removes their text and keeps the scores.
    let admin = app.token(Role::Admin);
    respond_ok(
        &app,
        &s,
        json!({"customer_id": a, "answers": {"recommend": 5, "comment": "Call me on 0170 1234567"}}),
    )
    .await;
    let export = app
        .get_ok(&format!("/v1/customers/{a}/export"), &admin)
        .await;
    assert_eq!(export["survey_responses"].as_array().unwrap().len(), 3);
    assert_eq!(
        export["survey_responses"][2]["answers"]["comment"],
        "Call me on 0170 1234567"
    );
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{a}/erase"),
            &admin,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let page = app
        .get_ok(
            &format!("/v1/survey-responses?customer_id={a}&sort=submitted_at"),
            &viewer,
        )
        .await;
    let last = &page["data"][2];
    assert_eq!(last["answers"], json!({"recommend": 5}));
    assert_eq!(results(&app, &s, "").await["responses"], 8);
    let audit = app
        .get_ok(
            &format!(
                "/v1/audit?entity_type=survey_response&entity_id={}",
                last["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    assert!(!audit.to_string().contains("0170 1234567"), "{audit}");
}

#[actix_web::test]
async fn concurrent_responses_count_exactly_and_one_customer_answers_once() {
    let app = TestApp::spawn_with(&[("RAPPORT_DB_POOL_SIZE", "8")]).await;
    let s = active_survey(&app, json!({})).await;
    let customers = numbered_customers(&app, 16).await;
    // Sixteen customers at once, the same answers: every count lands on the same roll-up
    // rows, and none is lost.
    let sends = customers.iter().map(|c| {
        respond(
            &app,
            &s,
            json!({"customer_id": c, "answers": {"recommend": 9, "channels": ["email", "phone"],
                   "speed": {"expectation": 4, "performance": 5}}}),
        )
    });
    for res in futures_util::future::join_all(sends).await {
        assert_eq!(res.status(), StatusCode::CREATED);
    }
    let all = results(&app, &s, "").await;
    assert_eq!(all["responses"], 16);
    assert_eq!(question(&all, "recommend")["nps"]["promoters"], 16);
    assert_eq!(question(&all, "channels")["choices"][1]["count"], 16);
    assert_eq!(question(&all, "speed")["gap"]["n"], 16);
    // One customer eight times at once: one response, seven refusals.
    let c = &customers[0];
    let other = active_survey(&app, json!({})).await;
    let sends = (0..8).map(|_| {
        respond(
            &app,
            &other,
            json!({"customer_id": c, "answers": {"recommend": 1}}),
        )
    });
    let mut statuses: Vec<u16> = futures_util::future::join_all(sends)
        .await
        .iter()
        .map(|r| r.status().as_u16())
        .collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409]);
    assert_eq!(results(&app, &other, "").await["responses"], 1);
}

#[actix_web::test]
async fn a_shortfall_of_performance_opens_a_follow_up() {
    let app = TestApp::spawn().await;
    // Any attribute two points short or worse. speed weighs 2, clean 1 (questions()).
    let any = active_survey(
        &app,
        json!({"name": "Any", "allow_multiple_responses": true,
               "follow_up": {"gap_at_most": -2}}),
    )
    .await;
    let mean = active_survey(
        &app,
        json!({"name": "Mean", "allow_multiple_responses": true,
               "follow_up": {"gap_at_most": -1, "gap_of": "weighted_mean"}}),
    )
    .await;
    let c = customer(&app, json!({"kind": "individual", "name": "Ada"})).await;
    let answer = |speed: (i64, i64), clean: Option<(i64, i64)>| {
        let mut answers = json!({"recommend": 8,
            "speed": {"expectation": speed.0, "performance": speed.1}});
        if let Some((e, p)) = clean {
            answers["clean"] = json!({"expectation": e, "performance": p});
        }
        json!({"customer_id": c, "answers": answers})
    };
    let agent = app.token(Role::Agent);
    // speed P 2 − E 4 = −2 ≤ −2: a callback, naming the attribute.
    let r = respond_ok(&app, &any, answer((4, 2), Some((3, 5)))).await;
    let id = r["follow_up_interaction_id"].as_str().expect("a follow-up");
    let follow_up = app.get_ok(&format!("/v1/interactions/{id}"), &agent).await;
    assert_eq!(follow_up["kind"], "callback");
    assert!(
        follow_up["notes"]
            .as_str()
            .unwrap()
            .contains("speed: P − E = -2 (at most -2)"),
        "{}",
        follow_up["notes"]
    );
    assert_eq!(
        r["verdicts"],
        json!([
            {"key": "clean", "expectation": 3, "performance": 5, "gap": 2, "verdict": "satisfied"},
            {"key": "speed", "expectation": 4, "performance": 2, "gap": -2,
             "verdict": "dissatisfied"}
        ])
    );
    // −1 is not short enough; a tie P = E is no shortfall.
    for speed in [(4, 3), (4, 4)] {
        let r = respond_ok(&app, &any, answer(speed, None)).await;
        assert_eq!(r["follow_up_interaction_id"], Value::Null, "{speed:?}");
    }
    // Weighted mean: (2 · (3 − 5) + 1 · (5 − 4)) / (2 + 1) = −3 / 3 = −1 ≤ −1: a callback.
    let r = respond_ok(&app, &mean, answer((5, 3), Some((4, 5)))).await;
    let id = r["follow_up_interaction_id"].as_str().expect("a follow-up");
    let follow_up = app.get_ok(&format!("/v1/interactions/{id}"), &agent).await;
    assert!(
        follow_up["notes"]
            .as_str()
            .unwrap()
            .contains("weighted mean P − E = -1 (at most -1)"),
        "{}",
        follow_up["notes"]
    );
    // (2 · (4 − 5) + 1 · (5 − 4)) / 3 = −1/3: none, though speed alone is short by one.
    let r = respond_ok(&app, &mean, answer((5, 4), Some((4, 5)))).await;
    assert_eq!(r["follow_up_interaction_id"], Value::Null);
    // speed alone answered: −2 · 2 / 2 = −2 ≤ −1.
    let r = respond_ok(&app, &mean, answer((5, 3), None)).await;
    assert!(r["follow_up_interaction_id"].is_string());
    assert_eq!(app.count("interactions").await, 3);

    // The rule is shown as given.
    let shown = app
        .get_ok(&format!("/v1/surveys/{mean}"), &app.token(Role::Viewer))
        .await;
    assert_eq!(
        shown["follow_up"],
        json!({"detractors": false, "gap_at_most": -1, "gap_of": "weighted_mean",
               "due_in_hours": 24})
    );
}

#[actix_web::test]
async fn bad_gap_rules_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    let surveys = app.count("surveys").await;
    let audit = app.count("audit_events").await;
    let with =
        |follow_up: Value| json!({"name": "S", "questions": questions(), "follow_up": follow_up});
    let no_attributes = json!({"name": "S",
        "questions": [{"key": "recommend", "text": "Recommend?", "type": "nps"}],
        "follow_up": {"gap_at_most": -2}});
    for (body, field) in [
        (with(json!({"gap_at_most": 0})), "follow_up.gap_at_most"),
        (with(json!({"gap_at_most": -10})), "follow_up.gap_at_most"),
        (
            with(json!({"detractors": true, "gap_of": "weighted_mean"})),
            "follow_up.gap_of",
        ),
        (no_attributes, "follow_up.gap_at_most"),
        // Wrong types, unknown words and fields.
        (with(json!({"gap_at_most": "-2"})), "follow_up.gap_at_most"),
        (with(json!({"gap_at_most": -1.5})), "follow_up.gap_at_most"),
        (
            with(json!({"gap_at_most": -2, "gap_of": "median"})),
            "follow_up.gap_of",
        ),
        (
            with(json!({"gap_at_most": -2, "gap_under": 1})),
            "follow_up.gap_under",
        ),
    ] {
        let res = app.send(Method::POST, "/v1/surveys", &manager, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    // Another role's rights: an agent may not define surveys.
    let res = app
        .send(
            Method::POST,
            "/v1/surveys",
            &app.token(Role::Agent),
            &with(json!({"gap_at_most": -2})),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("surveys").await, surveys);
    assert_eq!(app.count("audit_events").await, audit);
}

#[actix_web::test]
async fn the_customer_list_finds_who_was_last_dissatisfied_with_an_attribute() {
    let app = TestApp::spawn().await;
    let s = active_survey(&app, json!({"allow_multiple_responses": true})).await;
    // Another survey asking about speed too: the latest answer counts, whichever survey.
    let other = active_survey(&app, json!({"name": "Other"})).await;
    let day = |d: i64| (chrono::Utc::now() - chrono::Duration::days(d)).to_rfc3339();
    let answer = |c: &str, at: String, (e, p): (i64, i64)| {
        json!({"customer_id": c, "submitted_at": at,
               "answers": {"recommend": 8, "speed": {"expectation": e, "performance": p}}})
    };
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D", "E", "F"] {
        ids.push(customer(&app, json!({"kind": "individual", "name": name})).await);
    }
    // A: P 2 < E 4. B: 2 < 4, then a tie 4 = 4 (no longer dissatisfied). C: a tie, then
    // 3 < 5 in the other survey. D: 5 > 4. E: 3 < 4, then a back-dated 5 > 4 recorded later
    // (the latest by time answered is still 3 < 4). F: answers no attribute.
    let (a, b, c, d, e, f) = (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4], &ids[5]);
    respond_ok(&app, &s, answer(a, day(1), (4, 2))).await;
    respond_ok(&app, &s, answer(b, day(3), (4, 2))).await;
    respond_ok(&app, &s, answer(b, day(1), (4, 4))).await;
    respond_ok(&app, &s, answer(c, day(3), (4, 4))).await;
    respond_ok(&app, &other, answer(c, day(1), (5, 3))).await;
    respond_ok(&app, &s, answer(d, day(1), (4, 5))).await;
    respond_ok(&app, &s, answer(e, day(1), (4, 3))).await;
    respond_ok(&app, &s, answer(e, day(9), (4, 5))).await;
    respond_ok(
        &app,
        &s,
        json!({"customer_id": f, "answers": {"recommend": 2}}),
    )
    .await;
    let viewer = app.token(Role::Viewer);
    let names = |q: &'static str| {
        let app = &app;
        let viewer = viewer.clone();
        async move {
            let page = app
                .get_ok(&format!("/v1/customers?{q}&sort=name"), &viewer)
                .await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(names("dissatisfied_with=speed").await, ["A", "C", "E"]);
    assert_eq!(
        names("dissatisfied_with=speed&nps_category=passive").await,
        ["A", "C", "E"]
    );
    // A key nobody answered lists nobody.
    assert_eq!(names("dissatisfied_with=clean").await, Vec::<String>::new());
    // Newest first too (the default order), and in the export's selection.
    let page = app
        .get_ok("/v1/customers?dissatisfied_with=speed&limit=2", &viewer)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());
    app.expect_bad_queries(
        "/v1/customers",
        &viewer,
        &[
            ("dissatisfied_with=Speed", "dissatisfied_with"),
            ("dissatisfied_with=", "dissatisfied_with"),
            ("dissatisfied_with=9lives", "dissatisfied_with"),
            (
                &format!("dissatisfied_with={}", "k".repeat(41)),
                "dissatisfied_with",
            ),
        ],
    )
    .await;
    let res = app
        .get("/v1/customers?dissatisfied_with=speed")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    // A client without `customers:read` may not list them.
    let client = app.client_token("till", &["purchases:write"]).await;
    let res = app
        .get("/v1/customers?dissatisfied_with=speed")
        .bearer_auth(client)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}
