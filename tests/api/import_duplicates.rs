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

    // Two rows of one file merging into one customer: the second fails, naming both.
    let report = csv(
        &app,
        "?on_duplicate=merge",
        "name,email,occupation\nAda,ada.lovelace@example.com,poet\nAda,a.da.lovelace@example.com,x\n",
    )
    .await;
    assert_eq!(counts(&report), [2, 0, 0, 1, 1]);
    assert_eq!(errors(&report), [(3, "email".to_owned())]);
    assert_eq!(
        report["errors"][0]["message"],
        format!(
            "matches customer {ada} (score 90, by email), which line 2 writes too: one row per customer"
        )
    );
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
