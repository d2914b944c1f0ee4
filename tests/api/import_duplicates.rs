//! `on_duplicate=fail|skip|merge` on customer imports: CSV and NDJSON, dry runs, all or
//! nothing, async jobs; the matched customer named in the error file (`fail`) and in
//! `matched` (`skip`, `merge`); bad requests writing nothing.

use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::imports::{counts, errors};

async fn create(app: &TestApp, body: Value) -> String {
    crate::customers::create(app, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send(app: &TestApp, query: &str, content_type: &str, body: &str) -> reqwest::Response {
    app.post(&format!("/v1/imports/customers{query}"))
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", content_type)
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn csv(app: &TestApp, query: &str, body: &str) -> Value {
    expect_json(
        send(app, query, "text/csv", body).await,
        StatusCode::CREATED,
    )
    .await
}

async fn customer(app: &TestApp, id: &str) -> Value {
    app.get_ok(&format!("/v1/customers/{id}"), &app.token(Role::Admin))
        .await
}

fn matched(report: &Value) -> Vec<Value> {
    report["matched"].as_array().unwrap().clone()
}

const FILE: &str = "name,email,phone,occupation,tags\n\
    A. Lovelace,AdaLovelace+shop@Example.com,,mathematician,news\n\
    Grace Hopper,grace@example.com,,,\n\
    Carla,,+49 30 111,,\n";

#[actix_web::test]
async fn fail_names_the_match_in_the_error_file_and_writes_the_rest() {
    let app = TestApp::spawn().await;
    let ada = create(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}),
    )
    .await;
    let carl = create(&app, json!({"name": "Carl", "phone": "+4930111"})).await;
    let report = csv(&app, "?on_duplicate=fail", FILE).await;
    assert_eq!(report["on_duplicate"], "fail");
    assert_eq!(counts(&report), [3, 1, 0, 0, 2]);
    assert_eq!(
        errors(&report),
        [(2, "email".to_owned()), (4, "phone".to_owned())]
    );
    assert_eq!(
        report["errors"][0]["message"],
        format!("matches customer {ada} (score 90, by email)")
    );
    assert!(matched(&report).is_empty());
    let res = app
        .get(report["errors_url"].as_str().unwrap())
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    let file = res.text().await.unwrap();
    assert_eq!(
        file,
        format!(
            "_line,_error,name,email,phone,occupation,tags\r\n\
             2,\"email: matches customer {ada} (score 90, by email)\",A. Lovelace,\
             AdaLovelace+shop@Example.com,,mathematician,news\r\n\
             4,\"phone: matches customer {carl} (score 80, by phone)\",Carla,,+49 30 111,,\r\n"
        )
    );
    assert_eq!(app.count("customers").await, 3);

    // All or nothing: the match fails the import, nothing is written.
    let report = csv(
        &app,
        "?on_duplicate=fail&all_or_nothing=true",
        "name,email\nNew One,one@example.com\nAda,ada.lovelace@example.com\n",
    )
    .await;
    assert_eq!(counts(&report), [2, 1, 0, 0, 1]);
    assert_eq!(report["committed"], false);
    assert_eq!(app.count("customers").await, 3);
}

#[actix_web::test]
async fn skip_leaves_the_match_alone_and_lists_it() {
    let app = TestApp::spawn().await;
    let ada = create(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}),
    )
    .await;
    let carl = create(&app, json!({"name": "Carl", "phone": "+4930111"})).await;
    let ndjson = "{\"name\": \"A. Lovelace\", \"email\": \"AdaLovelace+shop@Example.com\"}\n\
                  {\"name\": \"Grace Hopper\", \"email\": \"grace@example.com\"}\n\
                  {\"name\": \"Carla\", \"phone\": \"+49 30 111\", \"email\": \"c.arl@example.com\"}\n";
    let res = send(&app, "?on_duplicate=skip", "application/x-ndjson", ndjson).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [3, 1, 0, 2, 0]);
    assert_eq!(
        matched(&report),
        vec![
            json!({"line": 1, "customer_id": ada, "score": 90, "reasons": ["email"],
                   "action": "skipped"}),
            json!({"line": 3, "customer_id": carl, "score": 80, "reasons": ["phone"],
                   "action": "skipped"}),
        ]
    );
    assert_eq!(report["matched_total"], 2);
    assert_eq!(customer(&app, &ada).await["version"], 1);
    assert_eq!(customer(&app, &carl).await["version"], 1);
    assert_eq!(app.count("customers").await, 3);
    // The import as read later says the same.
    let again = app
        .get_ok(
            &format!("/v1/imports/{}", report["id"].as_str().unwrap()),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(again["matched"], report["matched"]);
}

#[actix_web::test]
async fn merge_fills_the_match_and_dry_runs_write_nothing() {
    let app = TestApp::spawn().await;
    let ada = create(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com", "tags": ["vip"]}),
    )
    .await;
    let carl = create(&app, json!({"name": "Carl", "phone": "+4930111"})).await;

    // A dry run reports what would be merged and writes nothing.
    let dry = csv(&app, "?on_duplicate=merge&dry_run=true", FILE).await;
    assert_eq!(counts(&dry), [3, 1, 1, 1, 0]);
    assert_eq!(dry["committed"], false);
    assert_eq!(dry["matched_total"], 2);
    assert_eq!(customer(&app, &ada).await["version"], 1);
    assert_eq!(app.count("customers").await, 2);

    let report = csv(&app, "?on_duplicate=merge", FILE).await;
    // Ada gains the occupation and a tag (updated); Carl gains nothing (unchanged).
    assert_eq!(counts(&report), [3, 1, 1, 1, 0]);
    assert_eq!(
        matched(&report),
        vec![
            json!({"line": 2, "customer_id": ada, "score": 90, "reasons": ["email"],
                   "action": "merged"}),
            json!({"line": 4, "customer_id": carl, "score": 80, "reasons": ["phone"],
                   "action": "merged"}),
        ]
    );
    let merged = customer(&app, &ada).await;
    assert_eq!(merged["name"], "Ada Lovelace");
    assert_eq!(merged["email"], "ada.lovelace@example.com");
    assert_eq!(merged["occupation"], "mathematician");
    assert_eq!(merged["tags"], json!(["vip", "news"]));
    assert_eq!(merged["version"], 2);
    assert_eq!(customer(&app, &carl).await["version"], 1);
    assert_eq!(app.count("customers").await, 3);

    // Two rows of one file merging into one stored customer: both are folded into it, in one
    // update, each counted by what it added.
    let file = "name,email,phone,tags\n\
                Ada,ada.lovelace@example.com,,poet\n\
                Ada,a.da.lovelace@example.com,+44 20 7946 0000,\n";
    let report = csv(&app, "?on_duplicate=merge", file).await;
    assert_eq!(counts(&report), [2, 0, 2, 0, 0]);
    let ada_merged = |line: i64| {
        json!({"line": line, "customer_id": ada, "score": 90, "reasons": ["email"],
               "action": "merged"})
    };
    assert_eq!(matched(&report), vec![ada_merged(2), ada_merged(3)]);
    let merged = customer(&app, &ada).await;
    assert_eq!(merged["tags"], json!(["vip", "news", "poet"]));
    assert_eq!(merged["phone"], "+442079460000");
    assert_eq!(merged["occupation"], "mathematician");
    assert_eq!(merged["version"], 3);
    // Again (another file, as the same one would be replayed), neither adds anything: both
    // unchanged, nothing written.
    let again = file.replace("Ada,ada.", "Ada,ADA.");
    let report = csv(&app, "?on_duplicate=merge", &again).await;
    assert_eq!(counts(&report), [2, 0, 0, 2, 0]);
    let by_both = json!({"line": 3, "customer_id": ada, "score": 98,
                         "reasons": ["email", "phone"], "action": "merged"});
    assert_eq!(matched(&report), vec![ada_merged(2), by_both]);
    assert_eq!(customer(&app, &ada).await["version"], 3);
    // A row folded into another stands or falls with it: here the second row brings an
    // external id an organization holds (no match: another kind), which fails the update.
    create(
        &app,
        json!({"kind": "organization", "name": "Acme", "external_id": "acme-1"}),
    )
    .await;
    let file = "name,email,external_id\n\
                Ada,ada.lovelace@example.com,\n\
                Ada,a.da.lovelace@example.com,acme-1\n";
    let report = csv(&app, "?on_duplicate=merge", file).await;
    assert_eq!(counts(&report), [2, 0, 0, 0, 2]);
    assert_eq!(
        errors(&report),
        [(2, "external_id".to_owned()), (3, "row".to_owned())]
    );
    assert_eq!(
        report["errors"][0]["message"],
        "is already in use by another customer (with line 3 merged into it)"
    );
    assert_eq!(
        report["errors"][1]["message"],
        "is a duplicate of line 2, which failed: external_id is already in use by another \
         customer"
    );
    assert_eq!(customer(&app, &ada).await["version"], 3);
}

#[actix_web::test]
async fn async_imports_check_too_and_bad_requests_write_nothing() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1s")]).await;
    let ada = create(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}),
    )
    .await;
    let res = send(&app, "?on_duplicate=skip&async=true", "text/csv", FILE).await;
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    assert_eq!(job["on_duplicate"], "skip");
    let done = crate::imports::settled(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(counts(&done), [3, 2, 0, 1, 0]);
    assert_eq!(
        matched(&done),
        vec![
            json!({"line": 2, "customer_id": ada, "score": 90, "reasons": ["email"],
                    "action": "skipped"})
        ]
    );

    let before = app.count("imports").await;
    for query in [
        "?on_duplicate=maybe",
        "?on_duplicate=",
        "?on_duplicates=fail",
    ] {
        let res = send(&app, query, "text/csv", FILE).await;
        expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    let res = app
        .post("/v1/imports/interactions?on_duplicate=skip")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body("customer_id,channel\n")
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert!(p.to_string().contains("on_duplicate"), "{p}");
    let res = app
        .post("/v1/imports/customers?on_duplicate=skip")
        .header("Content-Type", "text/csv")
        .body(FILE)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post("/v1/imports/customers?on_duplicate=skip")
        .bearer_auth(app.token(Role::Viewer))
        .header("Content-Type", "text/csv")
        .body(FILE)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("imports").await, before);
    assert_eq!(app.count("customers").await, 3);
}

#[actix_web::test]
async fn owned_only_senders_match_only_their_own_customers() {
    let app = TestApp::spawn().await;
    let (me, token) = app.user_with_access(Role::Manager, "owned").await;
    let (other, _) = app.user(Role::Manager).await;
    let mine = create(
        &app,
        json!({"name": "Ada", "phone": "+4930111", "account_manager_id": me}),
    )
    .await;
    create(
        &app,
        json!({"name": "Bob", "phone": "+4930222", "account_manager_id": other}),
    )
    .await;
    let res = app
        .post("/v1/imports/customers?on_duplicate=skip")
        .bearer_auth(&token)
        .header("Content-Type", "text/csv")
        .body("name,phone\nAda B,+4930111\nBob B,+4930222\n")
        .send()
        .await
        .unwrap();
    let report = expect_json(res, StatusCode::CREATED).await;
    // Bob is another's: not a match for this sender, so Bob B is created (theirs).
    assert_eq!(counts(&report), [2, 1, 0, 1, 0]);
    assert_eq!(matched(&report)[0]["customer_id"], mine.as_str());
}

// Rows checked against each other: a row that would create a customer and matches an earlier
// new row of the same import is a duplicate of the customer that row creates.

/// The id of the one customer `condition` (SQL) holds.
async fn id_where(app: &TestApp, condition: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let mut conn = app.db.connect().await;
    let rows: Vec<Id> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(format!(
            "SELECT id::text AS id FROM customers WHERE {condition}"
        )),
        &mut conn,
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1, "{condition}");
    rows[0].id.clone()
}

/// Ada twice more (her email in another case, then dotted with a `+tag`), Grace again by her
/// phone, and a row matching Ada's second row by the phone only it carries.
const TWICE: &str = "name,email,phone,occupation,tags\n\
    Ada Lovelace,Ada@Example.com,,,vip\n\
    Grace Hopper,grace@example.com,+49 30 222,,\n\
    ada,ada@example.com,+49 30 333,mathematician,news\n\
    A. Lovelace,a.d.a+news@example.com,,,vip\n\
    G. Hopper,,+4930222,admiral,\n\
    Lady Ada,,+4930333,,\n\
    Carl,carl@example.com,,,\n";

#[actix_web::test]
async fn fail_fails_rows_matching_an_earlier_new_row_naming_its_line() {
    let app = TestApp::spawn().await;

    // All or nothing: the in-file duplicates fail the import, nothing is written.
    let report = csv(&app, "?on_duplicate=fail&all_or_nothing=true", TWICE).await;
    assert_eq!(counts(&report), [7, 3, 0, 0, 4]);
    assert_eq!(report["committed"], false);
    assert_eq!(app.count("customers").await, 0);

    let report = csv(&app, "?on_duplicate=fail", TWICE).await;
    assert_eq!(counts(&report), [7, 3, 0, 0, 4]);
    assert_eq!(app.count("customers").await, 3);
    let ada = id_where(&app, "email = 'Ada@Example.com'").await;
    let grace = id_where(&app, "email = 'grace@example.com'").await;
    assert_eq!(
        errors(&report),
        [
            (4, "email".to_owned()),
            (5, "email".to_owned()),
            (6, "phone".to_owned()),
            (7, "phone".to_owned()),
        ]
    );
    let messages: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            format!("matches line 2 (score 90, by email), which creates customer {ada}"),
            format!("matches line 2 (score 90, by email), which creates customer {ada}"),
            format!("matches line 3 (score 80, by phone), which creates customer {grace}"),
            format!(
                "matches line 4 (score 80, by phone), a duplicate of line 2, which creates \
                 customer {ada}"
            ),
        ]
    );
    assert!(matched(&report).is_empty());
    let stored = customer(&app, &ada).await;
    assert_eq!(stored["phone"], Value::Null);
    assert_eq!(stored["tags"], json!(["vip"]));
}

#[actix_web::test]
async fn skip_leaves_out_rows_matching_an_earlier_new_row_and_dry_runs_write_nothing() {
    let app = TestApp::spawn().await;
    let carl = create(&app, json!({"name": "Carl", "phone": "+4930111"})).await;
    // NDJSON: lines count from 1. Line 8 matches line 7, which matches Carl.
    let ndjson: String = TWICE
        .lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let mut o = serde_json::Map::new();
            for (k, v) in ["name", "email", "phone", "occupation"].iter().zip(&f) {
                if !v.is_empty() {
                    o.insert((*k).to_owned(), json!(v));
                }
            }
            if !f[4].is_empty() {
                o.insert("tags".to_owned(), json!([f[4]]));
            }
            format!("{}\n", Value::Object(o))
        })
        .chain([
            "{\"name\": \"Carla\", \"email\": \"c@example.com\", \"phone\": \"+49 30 111\"}\n"
                .to_owned(),
            "{\"name\": \"C.\", \"email\": \"C@Example.com\"}\n".to_owned(),
        ])
        .collect();
    let dry = expect_json(
        send(
            &app,
            "?on_duplicate=skip&dry_run=true",
            "application/x-ndjson",
            &ndjson,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&dry), [9, 3, 0, 6, 0]);
    assert_eq!(dry["matched_total"], 6);
    assert_eq!(app.count("customers").await, 1);

    let res = send(&app, "?on_duplicate=skip", "application/x-ndjson", &ndjson).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [9, 3, 0, 6, 0]);
    assert_eq!(app.count("customers").await, 4);
    let ada = id_where(&app, "email = 'Ada@Example.com'").await;
    let grace = id_where(&app, "email = 'grace@example.com'").await;
    let skipped = |line: i64, customer: &str, reasons: Value, matched_line: Option<i64>| {
        let score = if reasons == json!(["email"]) { 90 } else { 80 };
        let mut m = json!({"line": line, "customer_id": customer, "score": score,
                           "reasons": reasons, "action": "skipped"});
        if let Some(l) = matched_line {
            m["matched_line"] = json!(l);
        }
        m
    };
    let expected = vec![
        skipped(3, &ada, json!(["email"]), Some(1)),
        skipped(4, &ada, json!(["email"]), Some(1)),
        skipped(5, &grace, json!(["phone"]), Some(2)),
        skipped(6, &ada, json!(["phone"]), Some(3)),
        skipped(8, &carl, json!(["phone"]), None),
        skipped(9, &carl, json!(["email"]), Some(8)),
    ];
    assert_eq!(matched(&report), expected);
    // Dry or not, the same rows are matched (a dry run's customers are never written).
    let lines = |m: &[Value]| -> Vec<Value> { m.iter().map(|m| m["line"].clone()).collect() };
    assert_eq!(lines(&matched(&dry)), lines(&expected));
    // Nothing of the skipped rows was written.
    let stored = customer(&app, &ada).await;
    assert_eq!(stored["phone"], Value::Null);
    assert_eq!(stored["version"], 1);
    assert_eq!(customer(&app, &carl).await["version"], 1);
    // The import as read later says the same.
    let again = app
        .get_ok(
            &format!("/v1/imports/{}", report["id"].as_str().unwrap()),
            &app.token(Role::Viewer),
        )
        .await;
    assert_eq!(again["matched"], report["matched"]);
}

#[actix_web::test]
async fn merge_folds_rows_into_the_customer_an_earlier_new_row_creates() {
    let app = TestApp::spawn().await;
    let report = csv(&app, "?on_duplicate=merge", TWICE).await;
    // Line 4 adds a phone, an occupation and a tag, line 6 an occupation (updated); lines 5
    // and 7 add nothing (unchanged).
    assert_eq!(counts(&report), [7, 3, 2, 2, 0]);
    assert_eq!(app.count("customers").await, 3);
    let ada = id_where(&app, "email = 'Ada@Example.com'").await;
    let grace = id_where(&app, "email = 'grace@example.com'").await;
    let merged = |line: i64, customer: &str, reason: &str, matched_line: i64| {
        json!({"line": line, "customer_id": customer,
               "score": if reason == "email" { 90 } else { 80 },
               "reasons": [reason], "action": "merged", "matched_line": matched_line})
    };
    assert_eq!(
        matched(&report),
        vec![
            merged(4, &ada, "email", 2),
            merged(5, &ada, "email", 2),
            merged(6, &grace, "phone", 3),
            merged(7, &ada, "phone", 4),
        ]
    );
    let stored = customer(&app, &ada).await;
    assert_eq!(stored["name"], "Ada Lovelace");
    assert_eq!(stored["email"], "Ada@Example.com");
    assert_eq!(stored["phone"], "+4930333");
    assert_eq!(stored["occupation"], "mathematician");
    assert_eq!(stored["tags"], json!(["vip", "news"]));
    assert_eq!(stored["version"], 1);
    let stored = customer(&app, &grace).await;
    assert_eq!(stored["occupation"], "admiral");
    // One customer each, so the duplicates list has nothing to show.
    let list = app
        .get_ok("/v1/customers/duplicates", &app.token(Role::Admin))
        .await;
    assert_eq!(list["data"], json!([]));
}

#[actix_web::test]
async fn without_on_duplicate_new_rows_are_not_checked_against_each_other() {
    let app = TestApp::spawn().await;
    let report = csv(&app, "", TWICE).await;
    // Only the unique email stops line 4 (the same email in another case).
    assert_eq!(counts(&report), [7, 6, 0, 0, 1]);
    assert_eq!(errors(&report), [(4, "email".to_owned())]);
    assert!(matched(&report).is_empty());
    assert_eq!(app.count("customers").await, 6);
}

/// `n` rows of distinct customers, then Ada's and Grace's twins far below them.
fn far_apart(n: usize) -> String {
    let mut file = String::from("name,email,phone,occupation\n");
    file.push_str("Ada Lovelace,Ada@Example.com,,\n");
    file.push_str("Grace Hopper,,+49 30 222,\n");
    for i in 0..n {
        file.push_str(&format!("Filler {i},filler{i}@example.com,,\n"));
    }
    file.push_str("ada,a.da+x@example.com,,poet\n");
    file.push_str("G. Hopper,,+4930222,\n");
    file
}

#[actix_web::test]
async fn duplicates_far_apart_across_batches_are_found_in_dry_runs_and_async_jobs() {
    let app = TestApp::spawn_with(&[
        ("RAPPORT_IMPORT_BATCH", "500"),
        ("RAPPORT_IMPORT_INTERVAL", "1s"),
    ])
    .await;
    let file = far_apart(2000);
    // Ada's twin is on line 2004, Grace's on 2005: four batches after their first rows.
    let dry = csv(&app, "?on_duplicate=merge&dry_run=true", &file).await;
    assert_eq!(counts(&dry), [2004, 2002, 1, 1, 0]);
    assert_eq!(dry["committed"], false);
    assert_eq!(dry["matched_total"], 2);
    let lines: Vec<(Value, Value)> = matched(&dry)
        .iter()
        .map(|m| (m["line"].clone(), m["action"].clone()))
        .collect();
    assert_eq!(
        lines,
        [
            (json!(2004), json!("merged")),
            (json!(2005), json!("merged"))
        ]
    );
    assert_eq!(app.count("customers").await, 0);

    let res = send(&app, "?on_duplicate=merge&async=true", "text/csv", &file).await;
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    let done = crate::imports::settled(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(counts(&done), [2004, 2002, 1, 1, 0]);
    assert_eq!(app.count("customers").await, 2002);
    let ada = id_where(&app, "email = 'Ada@Example.com'").await;
    let grace = id_where(&app, "phone = '+4930222'").await;
    // A later batch finds the customer an earlier batch wrote among the stored ones.
    assert_eq!(
        matched(&done),
        vec![
            json!({"line": 2004, "customer_id": ada, "score": 90, "reasons": ["email"],
                   "action": "merged"}),
            json!({"line": 2005, "customer_id": grace, "score": 80, "reasons": ["phone"],
                   "action": "merged"}),
        ]
    );
    let stored = customer(&app, &ada).await;
    assert_eq!(stored["occupation"], "poet");
    assert_eq!(stored["version"], 2);

    // Sent again with fail: every row now matches a stored customer.
    let report = csv(&app, "?on_duplicate=fail", &file).await;
    assert_eq!(counts(&report), [2004, 0, 0, 0, 2004]);
    assert_eq!(app.count("customers").await, 2002);
}

#[actix_web::test]
async fn a_file_sent_again_with_another_on_duplicate_is_imported_afresh() {
    let app = TestApp::spawn().await;
    let file = "name,email\nAda,ada@example.com\n";
    let first = csv(&app, "?on_duplicate=skip", file).await;
    assert_eq!(counts(&first), [1, 1, 0, 0, 0]);
    // The same file and option again: the first import, replayed.
    let res = send(&app, "?on_duplicate=skip", "text/csv", file).await;
    assert_eq!(res.status(), StatusCode::OK);
    let again = res.json::<Value>().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    // Another option: imported afresh, the row now matching the stored Ada.
    let report = csv(&app, "?on_duplicate=fail", file).await;
    assert_ne!(report["id"], first["id"]);
    assert_eq!(counts(&report), [1, 0, 0, 0, 1]);
    assert_eq!(app.count("customers").await, 1);
}

#[actix_web::test]
async fn rows_matched_to_a_new_row_that_fails_fail_with_it() {
    let app = TestApp::spawn().await;
    create(&app, json!({"name": "Stored", "external_id": "crm-1"})).await;
    // Line 2 passes the duplicate rules (an equal external id is the natural key, not a
    // duplicate reason) but cannot be written: line 3, its duplicate, fails with it.
    let file = "external_id,name,phone\ncrm-1,Ada,+49 30 333\n,Ada L.,+4930333\n";
    for on in ["skip", "merge"] {
        let report = csv(&app, &format!("?on_duplicate={on}"), file).await;
        assert_eq!(counts(&report), [2, 0, 0, 0, 2], "{on}");
        assert_eq!(
            errors(&report),
            [(2, "external_id".to_owned()), (3, "row".to_owned())]
        );
        assert_eq!(
            report["errors"][1]["message"],
            "is a duplicate of line 2, which failed: external_id is already in use (by a \
             customer or an earlier row)"
        );
        assert!(matched(&report).is_empty());
    }
    assert_eq!(app.count("customers").await, 1);
}

#[actix_web::test]
async fn rows_match_each_other_by_name_at_an_address_and_by_another_systems_id() {
    let app = TestApp::spawn().await;
    let ndjson = "{\"name\": \"Ada Lovelace\", \"external_id\": \"crm-9\", \
                   \"address\": {\"line1\": \"12 St James Sq\", \"postal_code\": \"SW1Y 4JH\"}}\n\
                  {\"name\": \"ada lovelace\", \
                   \"address\": {\"line1\": \"12  st james sq\", \"postal_code\": \"sw1y4jh\"}}\n\
                  {\"name\": \"A. King\", \"attributes\": {\"salesforce_id\": \"crm-9\"}}\n\
                  {\"name\": \"Grace Hopper\", \
                   \"address\": {\"line1\": \"12 St James Sq\", \"postal_code\": \"SW1Y 4JH\"}}\n";
    let res = send(&app, "?on_duplicate=skip", "application/x-ndjson", ndjson).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [4, 2, 0, 2, 0]);
    let ada = id_where(&app, "external_id = 'crm-9'").await;
    assert_eq!(
        matched(&report),
        vec![
            json!({"line": 2, "customer_id": ada, "score": 70, "reasons": ["name_address"],
                   "action": "skipped", "matched_line": 1}),
            json!({"line": 3, "customer_id": ada, "score": 95, "reasons": ["external_id"],
                   "action": "skipped", "matched_line": 1}),
        ]
    );
    assert_eq!(app.count("customers").await, 2);
}

#[actix_web::test]
async fn rows_match_only_earlier_rows_of_their_kind() {
    let app = TestApp::spawn().await;
    // The organization's address is the person's too, but a person is no duplicate of an
    // organization: line 4 matches the person of line 3, not the organization of line 2.
    let file = "name,kind,email\n\
                Acme,organization,info@acme.example\n\
                Ann,individual,in.fo@acme.example\n\
                Ann B,individual,info+ann@acme.example\n";
    let report = csv(&app, "?on_duplicate=skip", file).await;
    assert_eq!(counts(&report), [3, 2, 0, 1, 0]);
    let ann = id_where(&app, "name = 'Ann'").await;
    assert_eq!(
        matched(&report),
        vec![
            json!({"line": 4, "customer_id": ann, "score": 90, "reasons": ["email"],
                    "action": "skipped", "matched_line": 3})
        ]
    );
}

/// `n` NDJSON rows of individuals at one address, named `{prefix} 01`, `{prefix} 02`, ….
fn residents(prefix: &str, n: usize, line1: &str) -> String {
    (1..=n)
        .map(|k| {
            format!(
                "{{\"name\": \"{prefix} {k:02}\", \
                 \"address\": {{\"line1\": \"{line1}\", \"postal_code\": \"10115\"}}}}\n"
            )
        })
        .collect()
}

#[actix_web::test]
async fn a_key_more_than_twenty_customers_hold_matches_nobody() {
    let app = TestApp::spawn().await;
    let at = |line1: &str, name: &str| json!({"name": name, "address": {"line1": line1, "postal_code": "10115"}});
    // Nineteen residents stored at one address: a twentieth similar name matches them.
    let rows = residents("Resident", 19, "Invalidenstrasse 1");
    let res = send(&app, "", "application/x-ndjson", &rows).await;
    assert_eq!(counts(&expect_json(res, StatusCode::CREATED).await)[1], 19);
    let res = app
        .post("/v1/customers?on_duplicate=fail")
        .bearer_auth(app.token(Role::Manager))
        .json(&at("Invalidenstrasse 1", "Resident 20"))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert!(problem["detail"].as_str().unwrap().contains("name_address"));
    // Written without the check, it makes twenty: the address is then a building, as the
    // list of duplicates holds (no pairs for a key of more than twenty), and a 21st matches
    // nobody.
    create(&app, at("Invalidenstrasse 1", "Resident 20")).await;
    let res = app
        .post("/v1/customers?on_duplicate=fail")
        .bearer_auth(app.token(Role::Manager))
        .json(&at("Invalidenstrasse 1", "Resident 21"))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    let list = app
        .get_ok(
            "/v1/customers/duplicates?reason=name_address",
            &app.token(Role::Manager),
        )
        .await;
    assert_eq!(list["data"], json!([]), "{list}");

    // Within one file the same: 21 similar names at one address are 21 customers, ...
    let rows = residents("Tenant", 21, "Chausseestrasse 5");
    let res = send(&app, "?on_duplicate=fail", "application/x-ndjson", &rows).await;
    assert_eq!(
        counts(&expect_json(res, StatusCode::CREATED).await),
        [21, 21, 0, 0, 0]
    );
    // ... while three at another address are one, the later two failing on the first.
    let rows = residents("Lodger", 3, "Torstrasse 9");
    let res = send(&app, "?on_duplicate=fail", "application/x-ndjson", &rows).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [3, 1, 0, 0, 2]);
    assert_eq!(
        errors(&report),
        [(2, "name".to_owned()), (3, "name".to_owned())]
    );
}
