//! Statements are prepared once per connection: the hot requests, sent again, make
//! PostgreSQL parse and plan nothing new. Proved on a pool of one connection, from both
//! sides: the service's own count of statements it prepared stays flat, and every statement
//! it sent ran as one of the statements PostgreSQL holds prepared for that session
//! (`pg_prepared_statements`, whose plan counters grow by exactly the statements sent).

use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json};

/// The hot requests: what a frontend, an integration and a till send all day.
fn requests(customer: &str, email: &str, n: usize) -> Vec<(Method, String, Option<Value>)> {
    let get = |path: String| (Method::GET, path, None);
    vec![
        get(format!("/v1/customers/{customer}")),
        get("/v1/customers?limit=50".into()),
        get("/v1/customers?lifecycle_stage=stable&limit=50".into()),
        get("/v1/customers?lifecycle_stage=stable,commitment&sort=-updated_at".into()),
        get("/v1/customers?tags=vip&sort=name".into()),
        get("/v1/customers?q=ada".into()),
        get("/v1/customers?q=ada+lovlace".into()),
        get(format!("/v1/customers?q={email}")),
        get("/v1/customers?q=%2B49+30+1234".into()),
        get(format!("/v1/customers/{customer}/timeline?limit=20")),
        get("/v1/complaints?sort=oldest".into()),
        get("/v1/complaints?sort=severity&severity=high".into()),
        get("/v1/interactions?kind=complaint".into()),
        (
            Method::POST,
            "/v1/customers".into(),
            Some(json!({"name": format!("Walk-in {n}"), "lifecycle_stage": "stable"})),
        ),
        (
            Method::POST,
            format!("/v1/customers/{customer}/purchases"),
            Some(json!({"amount": 1250, "currency": "EUR"})),
        ),
    ]
}

#[derive(QueryableByName)]
struct Executions {
    #[diesel(sql_type = BigInt)]
    executions: i64,
}

/// How many times the statements the session holds prepared have run (this one left out).
async fn executions(app: &TestApp) -> u64 {
    let mut conn = app
        .state
        .pool
        .get()
        .await
        .expect("the pool's one connection");
    let row: Executions = diesel::sql_query(
        "SELECT coalesce(sum(generic_plans + custom_plans), 0)::bigint AS executions \
         FROM pg_prepared_statements WHERE statement NOT LIKE '%pg_prepared_statements%'",
    )
    .get_result(&mut conn)
    .await
    .expect("pg_prepared_statements");
    u64::try_from(row.executions).expect("a count")
}

#[actix_web::test]
async fn hot_requests_reuse_their_prepared_statements() {
    let hour = "1h";
    let app = TestApp::spawn_with(&[
        ("RAPPORT_DB_POOL_SIZE", "1"),
        ("RAPPORT_LOYALTY_INTERVAL", hour),
        ("RAPPORT_ANALYTICS_INTERVAL", hour),
        ("RAPPORT_IMPORT_INTERVAL", hour),
        ("RAPPORT_WEBHOOK_INTERVAL", hour),
    ])
    .await;
    let admin = app.token(Role::Admin);
    let (_, manager) = app.user(Role::Manager).await;
    for (path, body) in [
        (
            "/v1/loyalty/program",
            json!({"currency": "EUR", "earn": {"points": 1, "per_amount": 100, "rounding": "down"},
                   "expiry": {"policy": "never"}, "qualification": {"basis": "points_earned", "months": 12},
                   "downgrade": {"policy": "never"}}),
        ),
        (
            "/v1/loyalty/tiers",
            json!({"tiers": [
                {"key": "standard", "name": "Standard", "threshold": 0, "multiplier_percent": 100, "benefits": []},
                {"key": "gold", "name": "Gold", "threshold": 1000, "multiplier_percent": 150, "benefits": []}]}),
        ),
    ] {
        expect_json(
            app.send(Method::PUT, path, &admin, &body).await,
            StatusCode::OK,
        )
        .await;
    }
    let email = "ada@example.com";
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &manager,
            &json!({"name": "Ada Lovelace", "email": email, "phone": "+49 30 1234567",
                    "tags": ["vip"], "lifecycle_stage": "stable"}),
        )
        .await;
    let customer = expect_json(res, StatusCode::CREATED).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let complaint = json!({"kind": "complaint", "channel": "phone", "direction": "inbound",
                           "subject": "Parcel damaged", "severity": "high",
                           "occurred_at": "2026-11-20T10:00:00Z"});
    let path = format!("/v1/customers/{customer}/interactions");
    expect_json(
        app.send(Method::POST, &path, &manager, &complaint).await,
        StatusCode::CREATED,
    )
    .await;

    let mut sent = 0;
    let mut round = async |app: &TestApp| {
        for (method, path, body) in requests(&customer, email, sent) {
            let mut req = app.request(method, &path).bearer_auth(&manager);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let res = req.send().await.expect("request");
            assert!(res.status().is_success(), "{path}: {}", res.status());
            sent += 1;
        }
    };
    // Each connection prepares a statement the first time it runs it.
    round(&app).await;
    round(&app).await;

    let before = app.state.statements.counts();
    let ran_before = executions(&app).await;
    for _ in 0..3 {
        round(&app).await;
    }
    let after = app.state.statements.counts();
    let ran_after = executions(&app).await;

    assert_eq!(
        after.prepared, before.prepared,
        "statements were prepared again"
    );
    // The statements sent since, but for the first count of executions itself.
    let statements = after.statements - before.statements - 1;
    assert!(statements > 100, "the requests ran {statements} statements");
    assert_eq!(
        ran_after - ran_before,
        statements,
        "every statement sent ran as one PostgreSQL holds prepared"
    );

    // The purchase's transaction plans its statements once (`db::planned_once`): the
    // statement that earns the points, sent five times, never got a custom plan.
    let mut conn = app
        .state
        .pool
        .get()
        .await
        .expect("the pool's one connection");
    let earn: Plans = diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%INSERT INTO loyalty_lots%' AND statement LIKE '%purchases pu%' \
           AND statement NOT LIKE '%pg_prepared_statements%'",
    )
    .get_result(&mut conn)
    .await
    .expect("the earning statement is prepared");
    assert_eq!((earn.generic_plans, earn.custom_plans), (5, 0));
}

#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = BigInt)]
    custom_plans: i64,
}

#[derive(QueryableByName)]
struct Function {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// The database's own functions that run statements on an array they are given (the
/// duplicates refresh, on every customer write) plan those statements once per session:
/// PostgreSQL otherwise plans them again for every call's array, whose length the custom
/// plan knows and the generic one does not.
#[actix_web::test]
async fn functions_taking_arrays_plan_their_statements_once() {
    let app = TestApp::spawn().await;
    let mut conn = app.state.pool.get().await.expect("a connection");
    let taking_arrays: Vec<Function> = diesel::sql_query(
        "SELECT p.proname::text AS name FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         JOIN pg_language l ON l.oid = p.prolang \
         WHERE n.nspname = 'public' AND l.lanname = 'plpgsql' \
           AND EXISTS (SELECT 1 FROM unnest(p.proargtypes) a JOIN pg_type t ON t.oid = a \
                       WHERE t.typcategory = 'A') \
         ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .expect("pg_proc");
    let pinned: Vec<Function> = diesel::sql_query(
        "SELECT p.proname::text AS name FROM pg_proc p \
         JOIN pg_namespace n ON n.oid = p.pronamespace \
         WHERE n.nspname = 'public' \
           AND 'plan_cache_mode=force_generic_plan' = ANY (p.proconfig) \
         ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .expect("pg_proc");
    let names = |fs: Vec<Function>| fs.into_iter().map(|f| f.name).collect::<Vec<_>>();
    let (taking_arrays, pinned) = (names(taking_arrays), names(pinned));
    assert!(
        taking_arrays.contains(&"customer_duplicates_refresh".to_owned()),
        "the duplicates refresh takes its keys as an array"
    );
    for name in &taking_arrays {
        assert!(
            pinned.contains(name),
            "{name} plans its statements again on every call"
        );
    }
}

/// The functions that index expressions, index predicates and generated columns of the
/// database call are not SQL functions: PostgreSQL parses the body of such a function again
/// each time a write prepares the expression (once per INSERT or UPDATE), to inline it or
/// to run it; a PL/pgSQL function is compiled once per session.
#[actix_web::test]
async fn writes_call_no_sql_function_from_indexes_or_generated_columns() {
    let app = TestApp::spawn().await;
    let mut conn = app.state.pool.get().await.expect("a connection");
    let called: Vec<Function> = diesel::sql_query(
        "SELECT DISTINCT p.proname || ' (' || l.lanname || ')' AS name \
         FROM pg_depend d \
         JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND d.refobjid = p.oid \
         JOIN pg_language l ON l.oid = p.prolang \
         LEFT JOIN pg_class i ON d.classid = 'pg_class'::regclass AND i.oid = d.objid \
         LEFT JOIN pg_attrdef ad ON d.classid = 'pg_attrdef'::regclass AND ad.oid = d.objid \
         LEFT JOIN pg_attribute a ON a.attrelid = ad.adrelid AND a.attnum = ad.adnum \
         WHERE p.pronamespace = 'public'::regnamespace \
           AND (i.relkind = 'i' OR a.attgenerated = 's') \
         ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .expect("pg_depend");
    let called: Vec<String> = called.into_iter().map(|f| f.name).collect();
    assert!(
        called.contains(&"customer_words (plpgsql)".to_owned()),
        "the search words are a generated column: {called:?}"
    );
    let sql: Vec<&String> = called.iter().filter(|f| f.ends_with("(sql)")).collect();
    assert!(sql.is_empty(), "SQL functions called by writes: {sql:?}");
}
