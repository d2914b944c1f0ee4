//! What each analytics computation keeps: the default Pareto rankings and the segment
//! breakdown, served to full-access callers as of the computation, equal to the live answer
//! right after it, unchanged by writes until the next one.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::analytics::{customer, purchase, put_settings, recompute, settings_body};
use crate::helpers::TestApp;
use rapport::auth::Role;

/// Every page of a Pareto query, `limit` at a time: the rows, and the first page.
async fn all_pages(app: &TestApp, query: &str, limit: u32, token: &str) -> (Vec<Value>, Value) {
    let mut rows = Vec::new();
    let first = app
        .get_ok(
            &format!("/v1/analytics/pareto?{query}&limit={limit}"),
            token,
        )
        .await;
    let mut page = first.clone();
    loop {
        rows.extend(page["data"].as_array().unwrap().iter().cloned());
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        let next = app
            .get_ok(
                &format!("/v1/analytics/pareto?{query}&limit={limit}&cursor={cursor}"),
                token,
            )
            .await;
        assert_eq!(next["summary"], first["summary"]);
        assert_eq!(next["computed_at"], first["computed_at"]);
        page = next;
    }
    (rows, first)
}

/// A report without what says where it comes from, to compare kept with live.
fn figures(report: &Value) -> Value {
    let mut report = report.clone();
    let object = report.as_object_mut().unwrap();
    object.remove("live");
    object.remove("computed_at");
    report
}

async fn last_computed_at(app: &TestApp) -> Value {
    app.get_ok("/v1/analytics/settings", &app.token(Role::Viewer))
        .await["last_computation"]["computed_at"]
        .clone()
}

#[actix_web::test]
async fn kept_rankings_and_segments_equal_live_ones_and_stay_until_the_next_computation() {
    let app = TestApp::spawn().await;
    let viewer = app.token(Role::Viewer);
    let mut ids: Vec<String> = Vec::new();
    for (i, name) in ["K1", "K2", "K3", "K4", "K5", "K6", "K7"]
        .iter()
        .enumerate()
    {
        // A group: K2 under K1, both organizations, ranked as K1 with group=true.
        let mut body = json!({"name": name, "lifecycle_stage": "stable"});
        if i < 2 {
            body["kind"] = json!("organization");
        }
        if i == 1 {
            body["parent_id"] = json!(ids[0]);
        }
        let id = crate::customers::create(&app, body).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        purchase(
            &app,
            &id,
            10_000 * (i as i64 + 1),
            3.0 + i as f64,
            json!({"cost": 1_000}),
        )
        .await;
        ids.push(id);
    }
    // A second purchase, an old one outside the period, another currency.
    purchase(&app, &ids[0], 20_000, 1.0, json!({})).await;
    purchase(&app, &ids[1], 99_000, 400.0, json!({})).await;
    purchase(&app, &ids[2], 99_000, 2.0, json!({"currency": "USD"})).await;

    // Before any computation: live.
    let before = app.get_ok("/v1/analytics/pareto", &viewer).await;
    assert_eq!(
        (&before["live"], &before["computed_at"]),
        (&json!(true), &Value::Null)
    );
    let seg = app.get_ok("/v1/analytics/segments", &viewer).await;
    assert_eq!(seg["live"], true);

    recompute(&app).await;
    let at = last_computed_at(&app).await;
    let kept = app.get_ok("/v1/analytics/pareto", &viewer).await;
    assert_eq!(
        (&kept["live"], &kept["computed_at"]),
        (&json!(false), &at),
        "{kept}"
    );
    let today = chrono::Utc::now().date_naive();
    let (from, to) = (kept["from"].as_str().unwrap(), kept["to"].as_str().unwrap());
    assert_eq!(to, today.to_string());
    assert_eq!(from, (today - chrono::Days::new(364)).to_string());
    let period = format!("from={from}&to={to}");
    let live = app
        .get_ok(&format!("/v1/analytics/pareto?{period}&live=true"), &viewer)
        .await;
    assert_eq!(
        (&live["live"], &live["computed_at"]),
        (&json!(true), &Value::Null)
    );
    assert_eq!(figures(&kept), figures(&live));
    assert_eq!(kept["summary"]["customers"], 7);
    assert_eq!(kept["data"][0]["name"], "K7");

    // The same period given is the kept one; another is ranked live.
    let given = app
        .get_ok(&format!("/v1/analytics/pareto?{period}"), &viewer)
        .await;
    assert_eq!(
        (&given["live"], figures(&given)),
        (&json!(false), figures(&kept))
    );
    let other = app
        .get_ok(
            &format!("/v1/analytics/pareto?from={today}&to={today}"),
            &viewer,
        )
        .await;
    assert_eq!(other["live"], true);
    // Not kept: profit (the settings' measure is revenue), another currency.
    for query in ["measure=profit", "currency=USD"] {
        let r = app
            .get_ok(&format!("/v1/analytics/pareto?{query}"), &viewer)
            .await;
        assert_eq!(r["live"], true, "{query}");
    }

    // Every kept variant equals its live twin, page by page.
    for query in [
        "",
        "group=true",
        "top_sales_percent=50",
        "group=true&top_sales_percent=80",
    ] {
        let (kept_rows, kept_first) = all_pages(&app, query, 2, &viewer).await;
        let (live_rows, live_first) =
            all_pages(&app, &format!("{query}&{period}&live=true"), 3, &viewer).await;
        assert_eq!(kept_first["live"], false, "{query}");
        assert_eq!(live_first["live"], true, "{query}");
        assert_eq!(kept_rows, live_rows, "{query}");
        assert_eq!(kept_first["summary"], live_first["summary"], "{query}");
        assert!(!kept_rows.is_empty(), "{query}");
    }
    let (rows, _) = all_pages(&app, "", 2, &viewer).await;
    let ranks: Vec<i64> = rows.iter().map(|r| r["rank"].as_i64().unwrap()).collect();
    assert_eq!(ranks, [1, 2, 3, 4, 5, 6, 7]);

    // The export ranks live, the same lines.
    let res = app
        .get(&format!("/v1/exports/pareto?{period}"))
        .bearer_auth(&viewer)
        .header("Accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let exported: Vec<Value> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported, rows);

    // Segments: the kept breakdown is the live one.
    for query in ["", "?group=true"] {
        let kept = app
            .get_ok(&format!("/v1/analytics/segments{query}"), &viewer)
            .await;
        let sep = if query.is_empty() { '?' } else { '&' };
        let live = app
            .get_ok(
                &format!("/v1/analytics/segments{query}{sep}live=true"),
                &viewer,
            )
            .await;
        assert_eq!(
            (&kept["live"], &live["live"]),
            (&json!(false), &json!(true))
        );
        assert_eq!(kept["computed_at"], at);
        let (mut kept, mut live) = (kept, live);
        kept.as_object_mut().unwrap().remove("live");
        live.as_object_mut().unwrap().remove("live");
        assert_eq!(kept, live, "{query}");
    }
    let seg_before = app.get_ok("/v1/analytics/segments", &viewer).await;

    // Writes after the computation: a new top customer, a deletion. The kept answers stay
    // (names aside, read as they stand now) until the next computation.
    let new = customer(&app, "K8", "acquaintance").await;
    purchase(&app, &new, 500_000, 0.5, json!({})).await;
    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{}", ids[6]))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let after = app.get_ok("/v1/analytics/pareto", &viewer).await;
    assert_eq!(
        (&after["live"], &after["computed_at"]),
        (&json!(false), &at)
    );
    assert_eq!(after["summary"], kept["summary"]);
    assert_eq!(
        after["data"][0]["customer_id"],
        kept["data"][0]["customer_id"]
    );
    // The deleted customer's name is hidden at once.
    assert_eq!(after["data"][0]["name"], Value::Null);
    let mut unnamed = kept["data"].clone();
    unnamed[0]["name"] = Value::Null;
    assert_eq!(after["data"], unnamed);
    let live_now = app.get_ok("/v1/analytics/pareto?live=true", &viewer).await;
    assert_eq!(live_now["data"][0]["name"], "K8");
    assert_eq!(live_now["summary"]["customers"], 8);
    let seg_after = app.get_ok("/v1/analytics/segments", &viewer).await;
    assert_eq!(seg_after, seg_before);
    let seg_live = app
        .get_ok("/v1/analytics/segments?live=true", &viewer)
        .await;
    assert_ne!(seg_live["lifecycle_stage"], seg_before["lifecycle_stage"]);

    // The next computation keeps the new state.
    recompute(&app).await;
    let at2 = last_computed_at(&app).await;
    assert_ne!(at2, at);
    let kept2 = app.get_ok("/v1/analytics/pareto", &viewer).await;
    assert_eq!(
        (&kept2["live"], &kept2["computed_at"]),
        (&json!(false), &at2)
    );
    assert_eq!(kept2["data"][0]["name"], "K8");
    let live2 = app
        .get_ok(&format!("/v1/analytics/pareto?{period}&live=true"), &viewer)
        .await;
    assert_eq!(figures(&kept2), figures(&live2));
    let seg2 = app.get_ok("/v1/analytics/segments", &viewer).await;
    assert_eq!((&seg2["computed_at"], &seg2["live"]), (&at2, &json!(false)));
    let seg2_live = app
        .get_ok("/v1/analytics/segments?live=true", &viewer)
        .await;
    assert_eq!(seg2["lifecycle_stage"], seg2_live["lifecycle_stage"]);
    assert_ne!(seg2["lifecycle_stage"], seg_before["lifecycle_stage"]);

    // With profit as the settings' measure, the profit ranking is kept too.
    put_settings(&app, settings_body(json!({"measure": "profit"}))).await;
    recompute(&app).await;
    let profit = app
        .get_ok("/v1/analytics/pareto?measure=profit", &viewer)
        .await;
    assert_eq!(profit["live"], false);
    let profit_live = app
        .get_ok(
            &format!("/v1/analytics/pareto?measure=profit&{period}&live=true"),
            &viewer,
        )
        .await;
    assert_eq!(figures(&profit), figures(&profit_live));
    let revenue = app.get_ok("/v1/analytics/pareto", &viewer).await;
    assert_eq!(revenue["live"], false);

    // Bad input is still a 400 naming the parameter.
    app.expect_bad_queries(
        "/v1/analytics/pareto",
        &viewer,
        &[
            ("live=maybe", "live"),
            ("top_sales_percent=101", "top_sales_percent"),
        ],
    )
    .await;
    app.expect_bad_queries(
        "/v1/analytics/segments",
        &viewer,
        &[
            ("live=1x", "live"),
            ("group=yes", "group"),
            ("colour=red", "colour"),
        ],
    )
    .await;
}

#[actix_web::test]
async fn owned_only_callers_get_their_own_live_ranking_and_breakdown() {
    let app = TestApp::spawn().await;
    let (a_id, a) = app.user_with_access(Role::Manager, "owned").await;
    let (_, all) = app.user_with_access(Role::Manager, "all").await;
    let mine = crate::customers::create(
        &app,
        json!({"name": "Mine", "lifecycle_stage": "stable", "account_manager_id": a_id}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let theirs = customer(&app, "Theirs", "stable").await;
    purchase(&app, &mine, 1_000, 2.0, json!({})).await;
    purchase(&app, &theirs, 9_000, 2.0, json!({})).await;
    recompute(&app).await;

    let every = app.get_ok("/v1/analytics/pareto", &all).await;
    assert_eq!(
        (&every["live"], &every["summary"]["customers"]),
        (&json!(false), &json!(2))
    );
    let own = app.get_ok("/v1/analytics/pareto", &a).await;
    assert_eq!(
        (&own["live"], &own["computed_at"]),
        (&json!(true), &Value::Null)
    );
    assert_eq!(own["summary"]["customers"], 1);
    assert_eq!(own["data"][0]["customer_id"], mine);
    // A purchase since shows at once in the owned (live) ranking.
    purchase(&app, &mine, 2_000, 1.0, json!({})).await;
    let own = app.get_ok("/v1/analytics/pareto", &a).await;
    assert_eq!(own["data"][0]["value"], 3_000);

    let seg = app.get_ok("/v1/analytics/segments", &a).await;
    assert_eq!(seg["live"], true);
    let counted: i64 = seg["lifecycle_stage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["customers"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 1);
    let seg = app.get_ok("/v1/analytics/segments", &all).await;
    assert_eq!(seg["live"], false);

    // An owned-only token with `live=false` is still live; a viewer without
    // `analytics:read` is refused.
    let own = app.get_ok("/v1/analytics/pareto?live=false", &a).await;
    assert_eq!(own["live"], true);
    let token = app.client_token("Shop", &["customers:read"]).await;
    let res = app
        .get("/v1/analytics/pareto")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
