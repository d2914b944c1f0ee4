//! Loyalty points and tiers: earning, refunds, redemption across expiry lots, expiry at each
//! policy, tier moves at each downgrade policy, the evaluation pass, simulation, bulk awards.
//! Every figure below is computed by hand in the comments.

use chrono::{DateTime, Datelike, Duration, Months, SecondsFormat, TimeZone, Utc};
use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn customer(app: &TestApp, body: Value) -> String {
    let created = crate::customers::create(app, body).await;
    created["id"].as_str().unwrap().to_owned()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ts(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("no time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

/// Whole seconds, some days back.
fn days_ago(days: i64) -> DateTime<Utc> {
    let t = Utc::now() - Duration::days(days);
    Utc.timestamp_opt(t.timestamp(), 0).unwrap()
}

async fn configure(app: &TestApp, program: Value, tiers: Value) {
    put_program(app, &program).await;
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/tiers",
            &app.token(Role::Admin),
            &json!({ "tiers": tiers }),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
}

fn program(rounding: &str, expiry: Value, basis: &str, downgrade: Value) -> Value {
    json!({"currency": "EUR",
           "earn": {"points": 1, "per_amount": 100, "rounding": rounding},
           "expiry": expiry,
           "qualification": {"basis": basis, "months": 12},
           "downgrade": downgrade})
}

/// Points earned qualify, rounded down, never lapsing; the given downgrade policy.
fn points_earned(downgrade: Value) -> Value {
    program("down", never(), "points_earned", downgrade)
}

async fn put_program(app: &TestApp, body: &Value) {
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/program",
            &app.token(Role::Admin),
            body,
        )
        .await;
    expect_json(res, StatusCode::OK).await;
}

fn never() -> Value {
    json!({"policy": "never"})
}

fn tier(key: &str, threshold: i64, multiplier: i32) -> Value {
    json!({"key": key, "name": key, "threshold": threshold, "multiplier_percent": multiplier,
           "benefits": []})
}

/// Records a purchase; the answer.
async fn buy(
    app: &TestApp,
    customer: &str,
    amount: i64,
    currency: &str,
    at: DateTime<Utc>,
) -> Value {
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{customer}/purchases"),
            &app.token(Role::Agent),
            &json!({"amount": amount, "currency": currency, "occurred_at": iso(at)}),
        )
        .await;
    expect_json(res, StatusCode::CREATED).await
}

async fn points(app: &TestApp, customer: &str, token: &str, body: Value) -> reqwest::Response {
    app.send(
        Method::POST,
        &format!("/v1/customers/{customer}/points"),
        token,
        &body,
    )
    .await
}

async fn standing(app: &TestApp, customer: &str, query: &str) -> Value {
    app.get_ok(
        &format!("/v1/customers/{customer}/loyalty{query}"),
        &app.token(Role::Viewer),
    )
    .await
}

async fn ledger(app: &TestApp, customer: &str) -> Vec<Value> {
    let page = app
        .get_ok(
            &format!("/v1/customers/{customer}/points?limit=200"),
            &app.token(Role::Viewer),
        )
        .await;
    page["data"].as_array().unwrap().clone()
}

async fn evaluate(app: &TestApp) -> Value {
    let res = app
        .send(
            Method::POST,
            "/v1/loyalty/evaluate",
            &app.token(Role::Admin),
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await
}

fn summary(purchase: &Value) -> (i64, i64, Value) {
    let l = &purchase["loyalty"];
    (
        l["points"].as_i64().unwrap(),
        l["balance"].as_i64().unwrap(),
        l["tier"].clone(),
    )
}

#[actix_web::test]
async fn purchases_earn_at_the_tier_multiplier_rounded_and_move_members_up_at_once() {
    let app = TestApp::spawn().await;
    let tiers = json!([
        tier("standard", 0, 100),
        tier("silver", 100, 150),
        tier("gold", 300, 200)
    ]);
    configure(
        &app,
        program(
            "nearest",
            never(),
            "points_earned",
            json!({"policy": "window_end"}),
        ),
        tiers,
    )
    .await;
    let c = customer(&app, json!({"name": "Ada Lovelace"})).await;
    let first = days_ago(22);

    // 4999 cents at 100 %: 49.99 points, nearest 50. A new member joins the first tier.
    let p = buy(&app, &c, 4999, "EUR", first).await;
    assert_eq!(summary(&p), (50, 50, json!("standard")));
    // 5049: 50.49, nearest 50; 100 points earned reach silver at once.
    let p = buy(&app, &c, 5049, "EUR", days_ago(20)).await;
    assert_eq!(summary(&p), (50, 100, json!("silver")));
    // At silver (150 %): 3333 × 1.5 / 100 = 49.995, nearest 50.
    let p = buy(&app, &c, 3333, "EUR", days_ago(18)).await;
    assert_eq!(summary(&p), (50, 150, json!("silver")));
    // Rounded down: 49.
    let mut config = program(
        "down",
        never(),
        "points_earned",
        json!({"policy": "window_end"}),
    );
    put_program(&app, &config).await;
    let p = buy(&app, &c, 3333, "EUR", days_ago(16)).await;
    assert_eq!(summary(&p), (49, 199, json!("silver")));
    // Rounded up: 1001 × 1.5 / 100 = 15.015, up 16.
    config["earn"]["rounding"] = json!("up");
    put_program(&app, &config).await;
    let p = buy(&app, &c, 1001, "EUR", days_ago(14)).await;
    assert_eq!(summary(&p), (16, 215, json!("silver")));
    // Another currency earns nothing and says nothing of loyalty.
    let p = buy(&app, &c, 100_000, "USD", days_ago(12)).await;
    assert!(p.get("loyalty").is_none(), "{p}");
    // 5700 × 1.5 / 100 = 85.5, up 86: 301 earned reach gold (300).
    let p = buy(&app, &c, 5700, "EUR", days_ago(10)).await;
    assert_eq!(summary(&p), (86, 301, json!("gold")));

    let s = standing(&app, &c, "").await;
    assert_eq!(s["balance"], 301);
    assert_eq!(s["tier"]["key"], "gold");
    assert_eq!(s["tier"]["tier"]["multiplier_percent"], 200);
    assert_eq!(s["qualifying"]["basis"], "points_earned");
    assert_eq!(s["qualifying"]["sum"], 301);
    let explanation = s["qualifying"]["explanation"].as_str().unwrap();
    assert!(
        explanation.starts_with("301 points earned from "),
        "{explanation}"
    );
    assert!(explanation.ends_with(" reach gold (300)"), "{explanation}");
    assert_eq!(s["next_tier"], Value::Null, "gold is the highest");
    assert_eq!(s["keep"]["threshold"], 300);
    assert_eq!(s["keep"]["shortfall"], 0);
    // Losing the first 50 leaves 251 < 300: gold is secure until the first purchase leaves
    // the twelve-month window.
    assert_eq!(
        ts(&s["keep"]["secure_until"]),
        first.checked_add_months(Months::new(12)).unwrap()
    );
    let history = s["history"].as_array().unwrap();
    let moves: Vec<(Value, Value, Value, Value, Value)> = history
        .iter()
        .map(|h| {
            (
                h["from_tier"].clone(),
                h["to_tier"].clone(),
                h["reason"].clone(),
                h["qualifying"].clone(),
                h["threshold"].clone(),
            )
        })
        .collect();
    assert_eq!(
        moves,
        [
            (
                Value::Null,
                json!("standard"),
                json!("qualified"),
                json!(50),
                json!(0)
            ),
            (
                json!("standard"),
                json!("silver"),
                json!("qualified"),
                json!(100),
                json!(100)
            ),
            (
                json!("silver"),
                json!("gold"),
                json!("qualified"),
                json!(301),
                json!(300)
            ),
        ]
    );
    // The moves are on the timeline, the ledger holds one earn per purchase in euros.
    let timeline = app
        .get_ok(
            &format!("/v1/customers/{c}/timeline?types=tier_change"),
            &app.token(Role::Viewer),
        )
        .await;
    let on_timeline: Vec<&Value> = timeline["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["tier_change"]["to_tier"])
        .collect();
    assert_eq!(
        on_timeline,
        [&json!("gold"), &json!("silver"), &json!("standard")]
    );
    let entries = ledger(&app, &c).await;
    let earned: Vec<i64> = entries
        .iter()
        .map(|e| e["points"].as_i64().unwrap())
        .collect();
    assert_eq!(earned, [86, 16, 49, 50, 50, 50], "newest first");
    assert!(
        entries
            .iter()
            .all(|e| e["kind"] == "earn" && e["expires_at"].is_null())
    );
    // Paging walks the same entries.
    let page = app
        .get_ok(
            &format!("/v1/customers/{c}/points?limit=4"),
            &app.token(Role::Viewer),
        )
        .await;
    let next = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get_ok(
            &format!("/v1/customers/{c}/points?limit=4&cursor={next}"),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 2);
    assert_eq!(rest["next_cursor"], Value::Null);
}

#[actix_web::test]
async fn refunds_take_back_their_share_and_never_overdraw() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = customer(&app, json!({"name": "Grace Hopper"})).await;
    // The default programme: 1 point per euro, rounded down, no tiers.
    let p = buy(&app, &c, 10_000, "EUR", days_ago(3)).await;
    assert_eq!(summary(&p), (100, 100, Value::Null));
    let refund = format!("/v1/purchases/{}/refund", p["id"].as_str().unwrap());
    // Refunded 3333 of 10000: floor(100 × 3333 / 10000) = 33.
    let r = expect_json(
        app.send(Method::POST, &refund, &agent, &json!({"amount": 3333}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(summary(&r), (-33, 67, Value::Null));
    // 6666 in all: floor(66.66) = 66, less 33 taken: 33.
    let r = expect_json(
        app.send(Method::POST, &refund, &agent, &json!({"amount": 3333}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(summary(&r), (-33, 34, Value::Null));
    // The rest: 100 − 66 = 34; the whole purchase took back exactly what it earned.
    let r = expect_json(
        app.send(Method::POST, &refund, &agent, &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(summary(&r), (-34, 0, Value::Null));
    let kinds: Vec<(Value, Value)> = ledger(&app, &c)
        .await
        .iter()
        .map(|e| (e["kind"].clone(), e["points"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            (json!("reverse"), json!(-34)),
            (json!("reverse"), json!(-33)),
            (json!("reverse"), json!(-33)),
            (json!("earn"), json!(100)),
        ]
    );

    // Points spent already are not taken below zero: 50 earned, 40 redeemed, all refunded.
    let p = buy(&app, &c, 5000, "EUR", days_ago(2)).await;
    assert_eq!(summary(&p), (50, 50, Value::Null));
    let res = points(&app, &c, &agent, json!({"kind": "redeem", "points": 40})).await;
    assert_eq!(expect_json(res, StatusCode::CREATED).await["balance"], 10);
    let refund = format!("/v1/purchases/{}/refund", p["id"].as_str().unwrap());
    let r = expect_json(
        app.send(Method::POST, &refund, &agent, &json!({})).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(summary(&r), (-10, 0, Value::Null));
    let last = &ledger(&app, &c).await[0];
    assert_eq!(
        last["reason"],
        "refund of 5000 minor units: 50 points due, 40 already spent"
    );
    assert_eq!(standing(&app, &c, "").await["balance"], 0);
}

#[actix_web::test]
async fn redemptions_spend_the_oldest_expiring_lots_first() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let manager = app.token(Role::Manager);
    configure(
        &app,
        program(
            "down",
            json!({"policy": "after_days", "days": 365}),
            "points_earned",
            json!({"policy": "never"}),
        ),
        json!([]),
    )
    .await;
    let c = customer(&app, json!({"name": "Katherine Johnson"})).await;
    // Lot a: 100 points from 200 days ago, lapsing in 165 days; lot b: 50 points from 300
    // days ago, lapsing in 65 days; lot c: 30 points adjusted now, lapsing in 365 days.
    let a_at = days_ago(200);
    let b_at = days_ago(300);
    buy(&app, &c, 10_000, "EUR", a_at).await;
    buy(&app, &c, 5000, "EUR", b_at).await;
    let res = points(
        &app,
        &c,
        &manager,
        json!({"kind": "adjust", "points": 30, "reason": "welcome gift"}),
    )
    .await;
    let adjusted = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(adjusted["balance"], 180);
    let lot_c = adjusted["entries"][0]["lot_id"].clone();

    // Redeeming 120 takes all 50 of lot b, then 70 of lot a: two entries, one posting.
    let res = points(
        &app,
        &c,
        &agent,
        json!({"kind": "redeem", "points": 120, "reason": "voucher V-7"}),
    )
    .await;
    let posting = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(posting["points"], -120);
    assert_eq!(posting["balance"], 60);
    let taken: Vec<(Value, Value)> = posting["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["points"].clone(), e["expires_at"].clone()))
        .collect();
    assert_eq!(
        taken,
        [
            (json!(-50), json!(iso(b_at + Duration::days(365)))),
            (json!(-70), json!(iso(a_at + Duration::days(365)))),
        ]
    );
    assert!(
        posting["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["posting_id"] == posting["id"])
    );

    // More than the 60 left is refused, naming what is there, and writes nothing.
    let before = app.count("loyalty_ledger").await;
    let res = points(&app, &c, &agent, json!({"kind": "redeem", "points": 61})).await;
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(p["detail"], "only 60 points are available");
    assert_eq!(fields(&p), ["points"]);
    assert_eq!(app.count("loyalty_ledger").await, before);

    // Adjusting down takes the same way: 30 left of lot a, then 10 of lot c.
    let res = points(
        &app,
        &c,
        &manager,
        json!({"kind": "adjust", "points": -40, "reason": "duplicate bonus"}),
    )
    .await;
    let posting = expect_json(res, StatusCode::CREATED).await;
    let taken: Vec<(Value, Value)> = posting["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["points"].clone(), e["lot_id"].clone()))
        .collect();
    assert_eq!(taken[0].0, -30);
    assert_eq!(taken[1], (json!(-10), lot_c));
    assert_eq!(posting["balance"], 20);

    // What is left lapses a year after the adjustment.
    let s = standing(&app, &c, "?expiring_days=400").await;
    assert_eq!(s["balance"], 20);
    assert_eq!(s["expiring"].as_array().unwrap().len(), 1);
    assert_eq!(s["expiring"][0]["points"], 20);
    assert!(
        standing(&app, &c, "").await["expiring"]
            .as_array()
            .unwrap()
            .is_empty(),
        "not within 90 days"
    );
    // The audit trail has each request.
    assert_eq!(
        app.count("audit_events WHERE action LIKE 'loyalty.points_%'")
            .await,
        3
    );
    // Erasure keeps the figures (aggregates stay true) but forgets every reason.
    let admin = app.token(Role::Admin);
    let res = app
        .post(&format!("/v1/customers/{c}/erase"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let export = app
        .get_ok(&format!("/v1/customers/{c}/export"), &admin)
        .await;
    let entries = export["points"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        7,
        "2 earned, 1 adjusted up, 2 redeemed, 2 adjusted down"
    );
    assert!(entries.iter().all(|e| e["reason"].is_null()), "{entries:?}");
    assert!(!export.to_string().contains("voucher V-7"));
}

#[actix_web::test]
async fn points_expire_at_each_policy_through_the_ledger() {
    let app = TestApp::spawn().await;
    let c = customer(&app, json!({"name": "Hedy Lamarr"})).await;
    // after_days 30: points from 40 days ago lapsed 10 days ago; written at once as expiry.
    put_program(
        &app,
        &program(
            "down",
            json!({"policy": "after_days", "days": 30}),
            "points_earned",
            json!({"policy": "never"}),
        ),
    )
    .await;
    let old = days_ago(40);
    let p = buy(&app, &c, 1000, "EUR", old).await;
    assert_eq!(summary(&p), (10, 0, Value::Null));
    let entries = ledger(&app, &c).await;
    assert_eq!(entries[0]["kind"], "expire");
    assert_eq!(entries[0]["points"], -10);
    assert_eq!(ts(&entries[0]["occurred_at"]), old + Duration::days(30));

    // end_of_month: points earned now lapse at the first instant of next month (UTC).
    put_program(
        &app,
        &program(
            "down",
            json!({"policy": "end_of_month"}),
            "points_earned",
            json!({"policy": "never"}),
        ),
    )
    .await;
    let now = days_ago(0);
    let p = buy(&app, &c, 2000, "EUR", now).await;
    assert_eq!(summary(&p), (20, 20, Value::Null));
    let next_month = Utc
        .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
        .unwrap()
        .checked_add_months(Months::new(1))
        .unwrap();
    assert_eq!(ts(&ledger(&app, &c).await[0]["expires_at"]), next_month);
    let s = standing(&app, &c, "?expiring_days=40").await;
    assert_eq!(
        s["expiring"],
        json!([{"expires_at": iso(next_month), "points": 20}])
    );

    // end_of_year: points of a purchase in an earlier year lapsed at its year's end.
    put_program(
        &app,
        &program(
            "down",
            json!({"policy": "end_of_year"}),
            "points_earned",
            json!({"policy": "never"}),
        ),
    )
    .await;
    let last_year = Utc
        .with_ymd_and_hms(now.year() - 1, 12, 30, 12, 0, 0)
        .unwrap();
    let p = buy(&app, &c, 3000, "EUR", last_year).await;
    assert_eq!(summary(&p), (30, 20, Value::Null));
    let entries = ledger(&app, &c).await;
    assert_eq!(
        (&entries[0]["kind"], &entries[0]["points"]),
        (&json!("expire"), &json!(-30))
    );
    assert_eq!(
        ts(&entries[0]["occurred_at"]),
        Utc.with_ymd_and_hms(now.year(), 1, 1, 0, 0, 0).unwrap()
    );

    // never: nothing lapses.
    put_program(
        &app,
        &program("down", never(), "points_earned", json!({"policy": "never"})),
    )
    .await;
    let p = buy(&app, &c, 500, "EUR", days_ago(300)).await;
    assert_eq!(summary(&p), (5, 25, Value::Null));
    assert_eq!(ledger(&app, &c).await[0]["expires_at"], Value::Null);

    // The pass writes what lapses later: the month's lot, once its time has come.
    app.sql("UPDATE loyalty_lots SET expires_at = now() - interval '1 minute' WHERE points = 20")
        .await;
    let report = evaluate(&app).await;
    assert_eq!(
        (
            report["members"].as_i64(),
            report["expired_lots"].as_i64(),
            report["expired_points"].as_i64()
        ),
        (Some(1), Some(1), Some(20))
    );
    assert_eq!(standing(&app, &c, "").await["balance"], 5);
    // A second pass finds nothing more.
    let report = evaluate(&app).await;
    assert_eq!(report["expired_points"], 0);
    let sum: i64 = ledger(&app, &c)
        .await
        .iter()
        .map(|e| e["points"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 5, "the ledger sums to the balance");
}

#[actix_web::test]
async fn tiers_go_down_by_each_downgrade_policy_with_the_history() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let tiers = json!([tier("standard", 0, 100), tier("silver", 100, 100)]);
    configure(&app, points_earned(json!({"policy": "window_end"})), tiers).await;
    let a = customer(&app, json!({"name": "A"})).await;
    let b = customer(&app, json!({"name": "B"})).await;
    let c = customer(&app, json!({"name": "C"})).await;
    for who in [&a, &b, &c] {
        let p = buy(&app, who, 10_000, "EUR", days_ago(5)).await;
        assert_eq!(summary(&p).2, "silver");
    }
    // Moves a member's qualifying points out of the twelve-month window.
    let age = |who: &str| {
        format!(
            "UPDATE loyalty_ledger SET qualifying_at = qualifying_at - interval '13 months' \
         WHERE customer_id = '{who}'"
        )
    };

    // window_end: below the threshold at an evaluation, down at once.
    app.sql(&age(&a)).await;
    let report = evaluate(&app).await;
    assert_eq!(
        (
            report["members"].as_i64(),
            report["upgrades"].as_i64(),
            report["downgrades"].as_i64()
        ),
        (Some(3), Some(0), Some(1))
    );
    assert_eq!(
        report["moves"],
        json!([{"from_tier": "silver", "to_tier": "standard", "members": 1}])
    );
    let s = standing(&app, &a, "").await;
    assert_eq!(s["tier"]["key"], "standard");
    let last = s["history"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            &last["reason"],
            &last["direction"],
            &last["qualifying"],
            &last["threshold"]
        ),
        (
            &json!("below_threshold"),
            &json!("down"),
            &json!(0),
            &json!(100)
        )
    );

    // grace_period: the first evaluation below starts the grace period; down after it.
    put_program(
        &app,
        &points_earned(json!({"policy": "grace_period", "grace_days": 30})),
    )
    .await;
    app.sql(&age(&b)).await;
    assert_eq!(evaluate(&app).await["downgrades"], 0);
    let s = standing(&app, &b, "").await;
    assert_eq!(s["tier"]["key"], "silver");
    assert_eq!(s["keep"]["shortfall"], 100);
    let below = ts(&s["keep"]["below_since"]);
    assert_eq!(
        ts(&s["keep"]["downgrade_after"]),
        below + Duration::days(30)
    );
    assert!(
        s["qualifying"]["explanation"]
            .as_str()
            .unwrap()
            .contains("below silver's threshold (100)")
    );
    assert_eq!(
        evaluate(&app).await["downgrades"],
        0,
        "still within the grace period"
    );
    app.sql(&format!(
        "UPDATE loyalty_accounts SET below_since = below_since - interval '31 days' WHERE customer_id = '{b}'"
    ))
    .await;
    let report = evaluate(&app).await;
    assert_eq!(report["downgrades"], 1);
    let s = standing(&app, &b, "").await;
    assert_eq!(s["tier"]["key"], "standard");
    assert_eq!(
        s["history"].as_array().unwrap().last().unwrap()["reason"],
        "grace_period_ended"
    );
    assert_eq!(s["keep"]["below_since"], Value::Null);

    // A purchase that brings the sum back ends the grace period and moves up again.
    let p = buy(&app, &b, 10_000, "EUR", days_ago(1)).await;
    assert_eq!(summary(&p).2, "silver");

    // never: below the threshold for good, the tier stays.
    put_program(&app, &points_earned(json!({"policy": "never"}))).await;
    app.sql(&age(&c)).await;
    app.sql(&format!(
        "UPDATE loyalty_accounts SET below_since = now() - interval '400 days' WHERE customer_id = '{c}'"
    ))
    .await;
    assert_eq!(evaluate(&app).await["downgrades"], 0);
    assert_eq!(standing(&app, &c, "").await["tier"]["key"], "silver");

    // A tier leaving the programme moves its members at the next evaluation.
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/tiers",
            &admin,
            &json!({"tiers": [tier("standard", 0, 100)]}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let report = evaluate(&app).await;
    assert_eq!(report["moved"], 2, "b and c held silver");
    let s = standing(&app, &c, "").await;
    assert_eq!(s["tier"]["key"], "standard");
    assert_eq!(
        s["history"].as_array().unwrap().last().unwrap()["reason"],
        "tier_removed"
    );
    // Every change is on the timeline.
    let timeline = app
        .get_ok(
            &format!("/v1/customers/{b}/timeline?types=tier_change"),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(
        timeline["data"].as_array().unwrap().len(),
        4,
        "joined, down, up, moved"
    );
}

#[actix_web::test]
async fn concurrent_redemptions_never_overdraw() {
    // Every request holds a connection while it queues for the account's lock.
    let app = TestApp::spawn_with(&[("RAPPORT_DB_POOL_SIZE", "24")]).await;
    let c = customer(&app, json!({"name": "Margaret Hamilton"})).await;
    let res = points(
        &app,
        &c,
        &app.token(Role::Manager),
        json!({"kind": "adjust", "points": 100, "reason": "opening balance"}),
    )
    .await;
    expect_json(res, StatusCode::CREATED).await;
    let agent = app.token(Role::Agent);
    // Twenty redemptions of 7 at once: 14 fit into 100 (98), six are refused.
    let attempts =
        (0..20).map(|_| points(&app, &c, &agent, json!({"kind": "redeem", "points": 7})));
    let statuses: Vec<StatusCode> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        14,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        6
    );
    assert_eq!(standing(&app, &c, "").await["balance"], 2);
    let sum: i64 = ledger(&app, &c)
        .await
        .iter()
        .map(|e| e["points"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, 2);

    // A retried redemption with its Idempotency-Key spends once.
    let send = || {
        app.post(&format!("/v1/customers/{c}/points"))
            .bearer_auth(&agent)
            .header("Idempotency-Key", "till-7-redeem-1")
            .json(&json!({"kind": "redeem", "points": 1}))
            .send()
    };
    let first = expect_json(send().await.unwrap(), StatusCode::CREATED).await;
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(again, StatusCode::CREATED).await, first);
    assert_eq!(standing(&app, &c, "").await["balance"], 1);
}

#[actix_web::test]
async fn simulation_places_members_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let tiers = json!([tier("standard", 0, 100), tier("silver", 100, 100)]);
    configure(&app, points_earned(json!({"policy": "window_end"})), tiers).await;
    // Members with 0 (an adjustment does not qualify), 100 and 250 points earned.
    let zero = customer(&app, json!({"name": "Zero"})).await;
    let res = points(
        &app,
        &zero,
        &app.token(Role::Manager),
        json!({"kind": "adjust", "points": 999, "reason": "gift"}),
    )
    .await;
    expect_json(res, StatusCode::CREATED).await;
    let hundred = customer(&app, json!({"name": "Hundred"})).await;
    buy(&app, &hundred, 10_000, "EUR", days_ago(3)).await;
    let more = customer(&app, json!({"name": "More"})).await;
    buy(&app, &more, 25_000, "EUR", days_ago(3)).await;
    let version = app
        .get_ok("/v1/loyalty/program", &app.token(Role::Admin))
        .await["version"]
        .clone();
    let changes = app.count("loyalty_tier_changes").await;

    let proposal =
        json!({"tiers": [tier("base", 0, 100), tier("silver", 150, 120), tier("gold", 250, 150)]});
    let res = app
        .send(
            Method::POST,
            "/v1/loyalty/simulate",
            &app.token(Role::Admin),
            &proposal,
        )
        .await;
    let sim = expect_json(res, StatusCode::OK).await;
    assert_eq!(sim["members"], 3);
    assert_eq!(
        sim["qualification"],
        json!({"basis": "points_earned", "months": 12})
    );
    assert_eq!(
        sim["tiers"],
        json!([
            {"key": "base", "threshold": 0, "members": 2, "unchanged": 0},
            {"key": "silver", "threshold": 150, "members": 0, "unchanged": 0},
            {"key": "gold", "threshold": 250, "members": 1, "unchanged": 0},
        ])
    );
    assert_eq!(
        sim["moves"],
        json!([
            {"from_tier": "silver", "to_tier": "base", "members": 1},
            {"from_tier": "silver", "to_tier": "gold", "members": 1},
            {"from_tier": "standard", "to_tier": "base", "members": 1},
        ])
    );
    // By amount spent instead: 10000 and 25000 cents, with thresholds in cents.
    let by_amount = json!({"tiers": [tier("standard", 0, 100), tier("silver", 20_000, 100)],
                           "qualification": {"basis": "amount_spent", "months": 12}});
    let res = app
        .send(
            Method::POST,
            "/v1/loyalty/simulate",
            &app.token(Role::Admin),
            &by_amount,
        )
        .await;
    let sim = expect_json(res, StatusCode::OK).await;
    assert_eq!(sim["tiers"][0]["members"], 2);
    assert_eq!(
        sim["tiers"][0]["unchanged"], 1,
        "zero holds standard already"
    );
    assert_eq!(sim["tiers"][1]["members"], 1);
    assert_eq!(sim["tiers"][1]["unchanged"], 1);
    // Nothing changed.
    assert_eq!(
        app.get_ok("/v1/loyalty/program", &app.token(Role::Admin))
            .await["version"],
        version
    );
    assert_eq!(app.count("loyalty_tier_changes").await, changes);
    // A bad proposal is a 422 naming the field.
    let res = app
        .send(Method::POST, "/v1/loyalty/simulate", &app.token(Role::Admin),
              &json!({"tiers": [tier("base", 5, 100)], "qualification": {"basis": "points_earned", "months": 0}}))
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["tiers[0].threshold"]);
    let res = app
        .send(
            Method::POST,
            "/v1/loyalty/simulate",
            &app.token(Role::Manager),
            &proposal,
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[actix_web::test]
async fn bulk_awards_reach_every_selected_customer_once() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    let vip1 = customer(&app, json!({"name": "V1", "tags": ["vip"]})).await;
    let vip2 = customer(&app, json!({"name": "V2", "tags": ["vip"]})).await;
    let other = customer(&app, json!({"name": "O"})).await;
    let bulk = |key: &str, body: Value| {
        app.post("/v1/loyalty/points/bulk")
            .bearer_auth(&manager)
            .header("Idempotency-Key", key.to_owned())
            .json(&body)
            .send()
    };
    let award = json!({"points": 500, "reason": "spring campaign", "filter": "tags=vip"});
    let report = expect_json(
        bulk("spring-1", award.clone()).await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        report,
        json!({"customers": 2, "points": 1000, "entries": 2})
    );
    // The same call again replays the answer and awards nothing more.
    let again = bulk("spring-1", award.clone()).await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(again, StatusCode::OK).await, report);
    assert_eq!(app.count("loyalty_ledger").await, 2);
    for (who, balance) in [(&vip1, 500), (&vip2, 500), (&other, 0)] {
        assert_eq!(standing(&app, who, "").await["balance"], balance);
    }
    // By ids, taking points: all or nothing.
    let take = json!({"points": -300, "reason": "correction", "customer_ids": [vip1, other]});
    let res = bulk("fix-1", take).await.unwrap();
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(
        p["errors"][0]["message"],
        format!("customer {other} holds only 0 points")
    );
    assert_eq!(standing(&app, &vip1, "").await["balance"], 500);
    let take = json!({"points": -300, "reason": "correction", "customer_ids": [vip1, vip2, vip1]});
    let report = expect_json(bulk("fix-2", take).await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        report,
        json!({"customers": 2, "points": -600, "entries": 2})
    );
    assert_eq!(standing(&app, &vip2, "").await["balance"], 200);

    // Refused: no key, neither or both selections, unknown customers, a bad filter, an agent.
    let res = app
        .send(Method::POST, "/v1/loyalty/points/bulk", &manager, &award)
        .await;
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_header").await;
    let cases = [
        (json!({"points": 5, "reason": "x"}), vec!["customer_ids"]),
        (
            json!({"points": 5, "reason": "x", "filter": "tags=vip", "customer_ids": [vip1]}),
            vec!["customer_ids"],
        ),
        (
            json!({"points": 0, "reason": "", "filter": "tags=vip"}),
            vec!["points", "reason"],
        ),
        (
            json!({"points": 5, "reason": "x", "customer_ids": ["0193b0a6-0000-7000-8000-000000000009"]}),
            vec!["customer_ids"],
        ),
        (
            json!({"points": 5, "reason": "x", "filter": "limit=5"}),
            vec!["filter.limit"],
        ),
        (
            json!({"points": 5, "reason": "x", "filter": "lifecycle_stage=nope"}),
            vec!["filter.lifecycle_stage"],
        ),
        (
            json!({"points": 5, "reason": "x", "filter": "colour=red"}),
            vec!["filter.colour"],
        ),
    ];
    for (i, (body, expected)) in cases.into_iter().enumerate() {
        let res = bulk(&format!("bad-{i}"), body.clone()).await.unwrap();
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let res = app
        .post("/v1/loyalty/points/bulk")
        .bearer_auth(app.token(Role::Agent))
        .header("Idempotency-Key", "agent-1")
        .json(&award)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("loyalty_ledger").await, 4);
}

#[actix_web::test]
async fn bad_points_requests_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let c = customer(&app, json!({"name": "Annie Easley"})).await;
    let agent = app.token(Role::Agent);
    let manager = app.token(Role::Manager);
    let audit = app.count("audit_events").await;
    let long = "x".repeat(501);
    let cases = [
        (json!({"kind": "redeem", "points": 0}), vec!["points"]),
        (json!({"kind": "redeem", "points": -5}), vec!["points"]),
        (
            json!({"kind": "adjust", "points": 0, "reason": "x"}),
            vec!["points"],
        ),
        (json!({"kind": "adjust", "points": 5}), vec!["reason"]),
        (
            json!({"kind": "adjust", "points": 5, "reason": "  "}),
            vec!["reason"],
        ),
        (
            json!({"kind": "adjust", "points": 5, "reason": long}),
            vec!["reason"],
        ),
        (
            json!({"kind": "adjust", "points": 2_000_000_000_000_i64, "reason": "x"}),
            vec!["points"],
        ),
        (
            json!({"kind": "adjust", "points": i64::MIN, "reason": "x"}),
            vec!["points"],
        ),
        (json!({"kind": "gift", "points": 5}), vec!["kind"]),
        (json!({"kind": "redeem", "points": "5"}), vec!["points"]),
        (
            json!({"kind": "redeem", "points": 5, "colour": "red"}),
            vec!["colour"],
        ),
        (json!({"points": 5}), vec!["kind"]),
    ];
    for (body, expected) in cases {
        let res = points(&app, &c, &manager, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), expected, "{body}");
    }
    let path = format!("/v1/customers/{c}/points");
    let res = app
        .post(&path)
        .bearer_auth(&agent)
        .header("Content-Type", "application/json")
        .body("{\"kind\": \"redeem\"")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let redeem = json!({"kind": "redeem", "points": 1});
    let adjust = json!({"kind": "adjust", "points": 1, "reason": "x"});
    let res = app.post(&path).json(&redeem).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post(&path)
        .bearer_auth("not-a-token")
        .json(&redeem)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = points(&app, &c, &app.token(Role::Viewer), redeem.clone()).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = points(&app, &c, &agent, adjust.clone()).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = points(
        &app,
        "0193b0a6-0000-7000-8000-000000000009",
        &manager,
        adjust.clone(),
    )
    .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = points(&app, &c, &agent, json!({"kind": "redeem", "points": 1})).await;
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    app.expect_bad_queries(
        &format!("/v1/customers/{c}/loyalty"),
        &agent,
        &[
            ("expiring_days=0", "expiring_days"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    app.expect_bad_queries(
        &format!("/v1/customers/{c}/points"),
        &agent,
        &[
            ("kind=gift", "kind"),
            ("limit=500", "limit"),
            ("cursor=abc", "cursor"),
        ],
    )
    .await;
    let res = app
        .get("/v1/customers/0193b0a6-0000-7000-8000-000000000009/loyalty")
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .send(Method::POST, "/v1/loyalty/evaluate", &manager, &json!({}))
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    // A customer who is not yet a member: nothing earned, the first tier to reach.
    let s = standing(&app, &c, "").await;
    assert_eq!(
        (
            s["member_since"].clone(),
            s["balance"].clone(),
            s["tier"].clone()
        ),
        (Value::Null, json!(0), Value::Null)
    );
    assert_eq!(app.count("loyalty_ledger").await, 0);
    assert_eq!(
        app.count("loyalty_accounts").await,
        0,
        "the refused redemption wrote no account"
    );
    assert_eq!(app.count("audit_events").await, audit);
}

/// The ledger is partitioned by month on its ids (issue 24): a member's page, its paging,
/// its filter by kind and the balance read across the partitions as before, newest first.
#[actix_web::test]
async fn a_members_ledger_reads_across_its_monthly_partitions() {
    let app = TestApp::spawn().await;
    let tiers = json!([tier("standard", 0, 100)]);
    configure(&app, points_earned(json!({"policy": "window_end"})), tiers).await;
    let c = customer(&app, json!({"name": "Ada"})).await;
    buy(&app, &c, 10_000, "EUR", days_ago(3)).await;
    let res = points(
        &app,
        &c,
        &app.token(Role::Manager),
        json!({"kind": "adjust", "points": 5, "reason": "gift"}),
    )
    .await;
    expect_json(res, StatusCode::CREATED).await;
    // The months ahead are made; entries written now are in the rows from before the
    // partitioning (this month). The adjustment moves to next month's partition, as if
    // written a month from now.
    let next = {
        let first = Utc::now().date_naive().with_day(1).unwrap() + Months::new(1);
        format!("loyalty_ledger_{}", first.format("%Y_%m"))
    };
    assert_eq!(app.count(&next).await, 0);
    app.sql(
        "UPDATE loyalty_ledger SET id = uuid_v7_beside(uuid_v7_floor(utc_month(now(), 1))) \
         WHERE kind = 'adjust'",
    )
    .await;
    assert_eq!(app.count(&next).await, 1);
    assert_eq!(app.count("loyalty_ledger_before").await, 1);

    let entries = ledger(&app, &c).await;
    let kinds: Vec<(&str, i64)> = entries
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["points"].as_i64().unwrap()))
        .collect();
    assert_eq!(kinds, [("adjust", 5), ("earn", 100)], "newest first");
    let viewer = app.token(Role::Viewer);
    let first = app
        .get_ok(&format!("/v1/customers/{c}/points?limit=1"), &viewer)
        .await;
    assert_eq!(first["data"][0]["kind"], "adjust");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(
            &format!("/v1/customers/{c}/points?limit=1&cursor={cursor}"),
            &viewer,
        )
        .await;
    assert_eq!(second["data"][0]["kind"], "earn");
    assert!(second["next_cursor"].is_null());
    let adjusted = app
        .get_ok(&format!("/v1/customers/{c}/points?kind=adjust"), &viewer)
        .await;
    assert_eq!(adjusted["data"].as_array().unwrap().len(), 1);
    assert_eq!(standing(&app, &c, "").await["balance"], 105);
}
