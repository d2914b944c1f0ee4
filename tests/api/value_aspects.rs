//! The fourth of the course's five value aspects, the credit grade (等级信用), beside the
//! others in the analytics rows, the Pareto ranking and its export and the segments; and a
//! group's lifetime potential and demand contribution in the segments with `group=true`.
//! Hand-built data, the arithmetic in the comments.

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::analytics::{customer, purchase, put_settings, recompute, settings_body};
use crate::helpers::{TestApp, expect_json};
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

async fn grade(app: &TestApp, id: &str, grade: &str) {
    let after = patch(app, id, json!({"credit": {"grade": grade}})).await;
    assert_eq!(after["credit"]["grade"], grade);
}

/// One dimension of the segments: (key, customers, value, lifetime potential, demand %).
async fn segments(
    app: &TestApp,
    query: &str,
    dimension: &str,
) -> Vec<(String, i64, i64, Value, Value)> {
    let all = app
        .get_ok(
            &format!("/v1/analytics/segments{query}"),
            &app.token(Role::Viewer),
        )
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

async fn figures(app: &TestApp, id: &str) -> Value {
    app.get_ok(&format!("/v1/customers/{id}"), &app.token(Role::Viewer))
        .await["analytics"]
        .clone()
}

#[actix_web::test]
async fn the_credit_grade_stands_beside_the_other_value_aspects() {
    let app = TestApp::spawn().await;
    // r = 0.8, d = 0.1: the lifetime potential is m · 0.8 / (1 + 0.1 − 0.8) = m · 8/3.
    put_settings(
        &app,
        settings_body(json!({"retention_rate": 0.8, "discount_rate": 0.1})),
    )
    .await;
    let ada = customer(&app, "Ada", "stable").await;
    let bea = customer(&app, "Bea", "stable").await;
    let cal = customer(&app, "Cal", "stable").await;
    let dan = customer(&app, "Dan", "stable").await;
    let eve = customer(&app, "Eve", "stable").await;
    grade(&app, &ada, "a").await;
    grade(&app, &bea, "b").await;
    grade(&app, &cal, "b").await;
    grade(&app, &eve, "c").await;
    // Dan is not graded and never buys.
    purchase(&app, &ada, 10_000, 10.0, json!({})).await;
    purchase(&app, &bea, 6_000, 20.0, json!({})).await;
    purchase(&app, &cal, 3_000, 30.0, json!({})).await;
    purchase(&app, &eve, 2_000, 40.0, json!({})).await;
    // Eve is deleted: her purchase still counts in everyone's sales (she was sold), but she
    // has no row and the ranking shows neither her name nor her grade.
    let res = app
        .delete(
            &format!("/v1/customers/{eve}"),
            &app.token(Role::Manager),
            None,
        )
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    recompute(&app).await;

    // Everyone's window sales: 10 000 + 6 000 + 3 000 + 2 000 = 21 000.
    let expected = [
        // 10 000 · 8/3 = 26 666.67; 10 000 ÷ 21 000 = 47.62 %.
        (&ada, json!("a"), 26_667, 47.62),
        // 6 000 · 8/3 = 16 000; 6 000 ÷ 21 000 = 28.57 %.
        (&bea, json!("b"), 16_000, 28.57),
        // 3 000 · 8/3 = 8 000; 3 000 ÷ 21 000 = 14.29 %.
        (&cal, json!("b"), 8_000, 14.29),
        // m = 0: 0; 0 %; not graded.
        (&dan, Value::Null, 0, 0.0),
    ];
    let listed = app
        .get_ok("/v1/customers?limit=200", &app.token(Role::Viewer))
        .await;
    for (id, credit_grade, potential, demand) in &expected {
        let a = figures(&app, id).await;
        assert_eq!(&a["credit_grade"], credit_grade, "{a}");
        assert_eq!(a["lifetime_potential"], *potential, "{a}");
        assert_eq!(a["demand_contribution_percent"], *demand, "{a}");
        // The list reads the rows another way (many at once): the same figures.
        let row = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .unwrap();
        assert_eq!(row["analytics"], a);
    }

    // Segments by grade: a is Ada; b is Bea and Cal, 9 000 · 8/3 = 24 000 and
    // 9 000 ÷ 21 000 = 42.86 %; Dan is `none` (m = 0). Eve is deleted: not counted.
    assert_eq!(
        segments(&app, "", "credit_grade").await,
        [
            seg("a", 1, 10_000, json!(26_667), json!(47.62)),
            seg("b", 2, 9_000, json!(24_000), json!(42.86)),
            seg("none", 1, 0, json!(0), json!(0.0)),
        ]
    );

    // The grade is set by hand, not computed: a change shows at once, before any
    // computation, in the rows and in the live segments (the kept breakdown is as of the
    // last computation).
    grade(&app, &cal, "d").await;
    assert_eq!(figures(&app, &cal).await["credit_grade"], "d");
    assert_eq!(segments(&app, "", "credit_grade").await.len(), 3);
    assert_eq!(
        segments(&app, "?live=true", "credit_grade").await,
        [
            seg("a", 1, 10_000, json!(26_667), json!(47.62)),
            seg("b", 1, 6_000, json!(16_000), json!(28.57)),
            seg("d", 1, 3_000, json!(8_000), json!(14.29)),
            seg("none", 1, 0, json!(0), json!(0.0)),
        ]
    );
    // Taking the credit away: Cal is `none` again (3 000 + 0 = 3 000 with Dan).
    patch(&app, &cal, json!({"credit": null})).await;
    assert_eq!(figures(&app, &cal).await["credit_grade"], Value::Null);
    assert_eq!(
        segments(&app, "?live=true", "credit_grade").await[2],
        seg("none", 2, 3_000, json!(8_000), json!(14.29))
    );
    grade(&app, &cal, "d").await;

    // The Pareto ranking: Ada 10 000, Bea 6 000, Cal 3 000, Eve 2 000 of 21 000.
    let today = Utc::now().date_naive();
    let from = today - chrono::Days::new(364);
    let report = app
        .get_ok(
            &format!("/v1/analytics/pareto?from={from}&to={today}"),
            &app.token(Role::Viewer),
        )
        .await;
    let ranked: Vec<(Value, Value, Value, Value)> = report["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["customer_id"].clone(),
                r["credit_grade"].clone(),
                r["lifetime_potential"].clone(),
                r["demand_contribution_percent"].clone(),
            )
        })
        .collect();
    assert_eq!(
        ranked,
        [
            (json!(ada), json!("a"), json!(26_667), json!(47.62)),
            (json!(bea), json!("b"), json!(16_000), json!(28.57)),
            (json!(cal), json!("d"), json!(8_000), json!(14.29)),
            // Deleted: no name, no grade, no row to read the aspects from.
            (json!(eve), Value::Null, Value::Null, Value::Null),
        ]
    );
    // The export: the same columns, the grade last. Shares: 10 000 ÷ 21 000 = 47.62 %,
    // Eve 2 000 ÷ 21 000 = 9.52 %.
    let csv = crate::exports::csv(
        &app,
        &format!("/v1/exports/pareto?from={from}&to={today}"),
        &app.token(Role::Viewer),
    )
    .await;
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(
        lines[0],
        "rank,customer_id,name,value,purchases,share,cumulative_share,customer_percent,\
         lifetime_potential,demand_contribution_percent,credit_grade"
    );
    assert_eq!(
        lines[1],
        format!("1,{ada},Ada,10000,1,47.62,47.62,25.0,26667,47.62,a")
    );
    assert_eq!(
        lines[3],
        format!("3,{cal},Cal,3000,1,14.29,90.48,75.0,8000,14.29,d")
    );
    assert_eq!(lines[4], format!("4,{eve},,2000,1,9.52,100.0,100.0,,,"));
    let rows = crate::exports::ndjson(
        &app,
        &format!("/v1/exports/pareto?from={from}&to={today}"),
        &app.token(Role::Viewer),
    )
    .await;
    assert_eq!(rows[1]["credit_grade"], "b");
    assert_eq!(rows[3]["credit_grade"], Value::Null);
}

#[actix_web::test]
async fn a_group_in_the_segments_has_its_organizations_potential_and_demand() {
    let app = TestApp::spawn().await;
    // A window of 90 days, so that m (the last 12 months) and the window's sales differ;
    // r = 0.8, d = 0.1: the lifetime potential is m · 8/3.
    put_settings(
        &app,
        settings_body(json!({"window_days": 90, "retention_rate": 0.8, "discount_rate": 0.1})),
    )
    .await;
    let org = |name: &'static str, extra: Value| {
        let app = &app;
        async move {
            let mut body = json!({"name": name, "kind": "organization"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            crate::customers::create(app, body).await["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let holding = org("Acme Holding", json!({})).await;
    let europe = org("Acme Europe", json!({"parent_id": holding})).await;
    let asia = org("Acme Asia", json!({"parent_id": europe})).await;
    let globex = org("Globex", json!({})).await;
    grade(&app, &holding, "a").await;
    // Europe's own grade is not the group's: the root stands for the group.
    grade(&app, &europe, "c").await;
    // In the window (90 days): Holding 1 000, Europe 2 000, Globex 4 000 = 7 000 of sales.
    // Over 12 months (m): those, and Asia's 3 000 of 200 days ago.
    purchase(&app, &holding, 1_000, 10.0, json!({})).await;
    purchase(&app, &europe, 2_000, 20.0, json!({})).await;
    purchase(&app, &asia, 3_000, 200.0, json!({})).await;
    purchase(&app, &globex, 4_000, 30.0, json!({})).await;
    recompute(&app).await;

    // One by one. a: Holding, m 1 000 → 2 666.67; 1 000 ÷ 7 000 = 14.29 %. c: Europe, m
    // 2 000 → 5 333.33; 28.57 %. none: Asia and Globex, m 3 000 + 4 000 = 7 000 →
    // 18 666.67; window sales 0 + 4 000 ÷ 7 000 = 57.14 %.
    assert_eq!(
        segments(&app, "", "credit_grade").await,
        [
            seg("a", 1, 1_000, json!(2_667), json!(14.29)),
            seg("c", 1, 2_000, json!(5_333), json!(28.57)),
            seg("none", 2, 4_000, json!(18_667), json!(57.14)),
        ]
    );
    // As groups: Acme counts once, as Holding (grade a), with the whole group's value
    // 1 000 + 2 000 + 0 = 3 000, m 1 000 + 2 000 + 3 000 = 6 000 → 6 000 · 8/3 = 16 000, and
    // window sales 3 000 ÷ 7 000 = 42.86 %. Globex: 4 000 → 10 666.67; 57.14 %.
    let grouped = [
        seg("a", 1, 3_000, json!(16_000), json!(42.86)),
        seg("none", 1, 4_000, json!(10_667), json!(57.14)),
    ];
    assert_eq!(segments(&app, "?group=true", "credit_grade").await, grouped);
    // Every dimension counts the group the same way: whatever stages the two are in, the
    // stage segments' values add up to 3 000 + 4 000 = 7 000 and their potentials to
    // 16 000 + 10 667 = 26 667 (in one stage: 10 000 · 8/3 = 26 666.67, the same).
    let stages = segments(&app, "?group=true", "lifecycle_stage").await;
    let (value, potential): (i64, f64) = stages
        .iter()
        .fold((0, 0.0), |(v, p), s| (v + s.2, p + s.3.as_f64().unwrap()));
    assert_eq!(value, 7_000);
    assert_eq!(potential, 26_667.0);
}
