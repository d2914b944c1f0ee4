//! Bulk imports: CSV quirks, NDJSON, each mode, dry runs, all or nothing, the error file and
//! its re-send, idempotent re-sends, gzip, async jobs and a restart mid-import, purchases
//! earning points as if posted one by one, and bad requests writing nothing.

use std::io::Write;

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn import(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.post(path)
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn csv(app: &TestApp, query: &str, body: &str) -> Value {
    let res = import(
        app,
        &format!("/v1/imports/customers{query}"),
        "text/csv",
        body.to_owned(),
    )
    .await;
    expect_json(res, StatusCode::CREATED).await
}

pub(crate) fn counts(report: &Value) -> [i64; 5] {
    ["received", "created", "updated", "unchanged", "failed"].map(|k| report[k].as_i64().unwrap())
}

pub(crate) fn errors(report: &Value) -> Vec<(i64, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn customer_by_external_id(app: &TestApp, id: &str) -> Value {
    let page = app
        .get_ok("/v1/customers?limit=200", &app.token(Role::Admin))
        .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["external_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no customer {id}"))
}

#[actix_web::test]
async fn a_csv_file_with_every_quirk_imports_and_its_error_file_round_trips() {
    let app = TestApp::spawn().await;
    // A BOM, CRLF line ends, quoted commas, quotes and a line break, empty cells, nested and
    // list and JSON columns, a blank line, and three bad rows.
    let file =
        "\u{feff}external_id,name,email,address.city,tags,attributes,consent.email.granted\r\n"
            .to_owned()
            + "crm-1,\"Lovelace, Ada\",ada@example.com,Berlin,vip;newsletter,\"{\"\"plan\"\": \"\"gold\"\"}\",true\r\n"
            + "crm-2,\"Grace \"\"Amazing\"\" Hopper\",,,,,\r\n"
            + "crm-3,\"Two\nLines\",not-an-email,,,,\r\n"
            + "\r\n"
            + "crm-4,Bob,bob@example.com,,,,maybe\r\n"
            + "crm-5,,carl@example.com,,,,\r\n"
            + "crm-6,Dora,dora@example.com\r\n";
    let report = csv(&app, "", &file).await;
    assert_eq!(report["state"], "succeeded");
    assert_eq!(report["committed"], true);
    assert_eq!(counts(&report), [6, 2, 0, 0, 4]);
    assert_eq!(
        errors(&report),
        [
            (4, "email".to_owned()),
            (7, "consent.email.granted".to_owned()),
            (8, "name".to_owned()),
            (9, "row".to_owned())
        ]
    );
    let ada = customer_by_external_id(&app, "crm-1").await;
    assert_eq!(ada["name"], "Lovelace, Ada");
    assert_eq!(ada["address"]["city"], "Berlin");
    assert_eq!(ada["tags"], json!(["vip", "newsletter"]));
    assert_eq!(ada["attributes"], json!({"plan": "gold"}));
    assert_eq!(ada["consent"]["email"]["granted"], true);
    let grace = customer_by_external_id(&app, "crm-2").await;
    assert_eq!(grace["name"], "Grace \"Amazing\" Hopper");
    assert_eq!(grace["email"], Value::Null);
    // Each new customer has its first lifecycle entry, and the import one audit event.
    assert_eq!(app.count("customer_lifecycle_events").await, 2);
    assert_eq!(
        app.count("audit_events WHERE action = 'import.completed'")
            .await,
        1
    );

    // The error file (for the importer): the failed rows as sent, with their line and error
    // first.
    let url = report["errors_url"].as_str().unwrap();
    let res = app
        .get(url)
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let errors_file = res.text().await.unwrap();
    let expected = "_line,_error,external_id,name,email,address.city,tags,attributes,consent.email.granted\r\n\
        4,email: must be an email address such as ada@example.com,crm-3,\"Two\nLines\",not-an-email,,,,\r\n\
        7,consent.email.granted: must be true or false,crm-4,Bob,bob@example.com,,,,maybe\r\n\
        8,name: cannot be null,crm-5,,carl@example.com,,,,\r\n\
        9,row: has 3 fields where the header has 7,crm-6,Dora,dora@example.com\r\n";
    assert_eq!(errors_file, expected);
    // Fixed and sent again as it is (the `_` columns are ignored): all four go in.
    let fixed = errors_file
        .replace("not-an-email", "three@example.com")
        .replace(",maybe", ",false")
        .replace("crm-5,,", "crm-5,Carl,")
        .replace(
            "crm-6,Dora,dora@example.com",
            "crm-6,Dora,dora@example.com,,,,",
        );
    let again = csv(&app, "", &fixed).await;
    assert_eq!(counts(&again), [4, 4, 0, 0, 0]);
    assert_eq!(
        customer_by_external_id(&app, "crm-3").await["name"],
        "Two\nLines"
    );
}

#[actix_web::test]
async fn unknown_columns_are_named_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let res = import(
        &app,
        "/v1/imports/customers",
        "text/csv",
        "name,colour\nAda,red\n",
    )
    .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`colour`"),
        "{p}"
    );
    assert_eq!(app.count("customers").await, 0);
    // An empty file has no header.
    let res = import(&app, "/v1/imports/customers", "text/csv", "").await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    // Wrong content type, token, role, mode, parameter.
    let res = import(&app, "/v1/imports/customers", "application/json", "{}").await;
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let res = app
        .post("/v1/imports/customers")
        .header("Content-Type", "text/csv")
        .body("name\nAda\n")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Viewer))
        .header("Content-Type", "text/csv")
        .body("name\nAda\n")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    for (path, field) in [
        ("/v1/imports/interactions?mode=upsert", "mode"),
        ("/v1/imports/purchases?mode=update_only", "mode"),
        ("/v1/imports/customers?mode=merge", "mode"),
        ("/v1/imports/customers?dry_run=perhaps", "dry_run"),
        ("/v1/imports/customers?colour=red", "colour"),
    ] {
        let res = import(&app, path, "text/csv", "name\nAda\n").await;
        let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
        assert_eq!(fields(&p), [field], "{path}");
    }
    let res = import(&app, "/v1/imports/gizmos", "text/csv", "name\nAda\n").await;
    assert!(res.status().is_client_error());
    assert_eq!(app.count("customers").await, 0);
    let res = app
        .get("/v1/imports/0193b0a6-0000-7000-8000-000000000009")
        .bearer_auth(app.token(Role::Viewer))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn each_mode_dry_runs_and_all_or_nothing() {
    let app = TestApp::spawn().await;
    let first = csv(
        &app,
        "",
        "external_id,name,email,lifecycle_stage\ncrm-1,Ada,ada@example.com,prospect\ncrm-2,Bob,bob@example.com,prospect\n",
    )
    .await;
    assert_eq!(counts(&first), [2, 2, 0, 0, 0]);
    // Insert again: both keys are taken.
    let again = csv(&app, "", "external_id,name\ncrm-1,Ada\n").await;
    assert_eq!(errors(&again), [(2, "external_id".to_owned())]);
    // Upsert: crm-1 changes (only the columns sent), crm-2 is unchanged, crm-3 is new, and
    // a row matched by email updates its customer.
    let upsert = csv(
        &app,
        "?mode=upsert",
        "external_id,name,email,lifecycle_stage\n\
         crm-1,Ada Lovelace,ada@example.com,stable\n\
         crm-2,Bob,bob@example.com,prospect\n\
         crm-3,Cy,cy@example.com,prospect\n",
    )
    .await;
    assert_eq!(counts(&upsert), [3, 1, 1, 1, 0]);
    let ada = customer_by_external_id(&app, "crm-1").await;
    assert_eq!(
        (
            ada["name"].clone(),
            ada["lifecycle_stage"].clone(),
            ada["version"].clone()
        ),
        (json!("Ada Lovelace"), json!("stable"), json!(2))
    );
    assert_eq!(
        app.count("customer_lifecycle_events").await,
        4,
        "three created, one moved"
    );
    let by_email = csv(
        &app,
        "?mode=upsert",
        "email,occupation\nBOB@example.com,Engineer\n",
    )
    .await;
    assert_eq!(counts(&by_email), [1, 0, 1, 0, 0]);
    assert_eq!(
        customer_by_external_id(&app, "crm-2").await["occupation"],
        "Engineer"
    );
    // Update only: a row matching nothing fails.
    let update = csv(
        &app,
        "?mode=update_only",
        "external_id,occupation\ncrm-3,Pilot\ncrm-9,Nobody\n",
    )
    .await;
    assert_eq!(counts(&update), [2, 0, 1, 0, 1]);
    assert_eq!(errors(&update), [(3, "external_id".to_owned())]);

    // A dry run reports what would happen and writes nothing.
    let before = app.count("customers").await;
    let audits = app.count("audit_events").await;
    let dry = csv(
        &app,
        "?mode=upsert&dry_run=true",
        "external_id,name,email\ncrm-1,Ada L.,\ncrm-7,Gus,gus@example.com\ncrm-8,,\n",
    )
    .await;
    assert_eq!(counts(&dry), [3, 1, 1, 0, 1]);
    assert_eq!(dry["committed"], false);
    assert_eq!(app.count("customers").await, before);
    assert_eq!(
        customer_by_external_id(&app, "crm-1").await["name"],
        "Ada Lovelace"
    );
    assert_eq!(app.count("audit_events").await, audits);
    // All or nothing: one bad row keeps every row out; a good file goes in whole.
    let refused = csv(
        &app,
        "?all_or_nothing=true",
        "external_id,name\ncrm-10,Hal\ncrm-11,\n",
    )
    .await;
    assert_eq!(
        (
            refused["committed"].clone(),
            refused["created"].clone(),
            refused["failed"].clone()
        ),
        (json!(false), json!(1), json!(1))
    );
    assert_eq!(app.count("customers").await, before);
    let res = app
        .get(refused["errors_url"].as_str().unwrap())
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    assert!(res.text().await.unwrap().contains("crm-11"));
    let whole = csv(
        &app,
        "?all_or_nothing=true",
        "external_id,name\ncrm-10,Hal\ncrm-11,Ivy\n",
    )
    .await;
    assert_eq!(
        (whole["committed"].clone(), whole["created"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(app.count("customers").await, before + 2);
    // The list shows each import with its own first failed rows, as its GET does.
    let list = app
        .get_ok("/v1/imports?limit=200", &app.token(Role::Viewer))
        .await;
    let listed = list["data"].as_array().unwrap();
    assert!(listed.len() >= 6);
    for import in listed {
        let one = app
            .get_ok(
                &format!("/v1/imports/{}", import["id"].as_str().unwrap()),
                &app.token(Role::Viewer),
            )
            .await;
        assert_eq!(import["errors"], one["errors"]);
    }
    let with_errors: Vec<_> = listed
        .iter()
        .map(errors)
        .filter(|e| !e.is_empty())
        .collect();
    assert!(with_errors.contains(&vec![(3, "external_id".to_owned())]));
    assert!(with_errors.contains(&vec![(3, "name".to_owned())]));
}

#[actix_web::test]
async fn ndjson_gzip_and_idempotent_resends() {
    let app = TestApp::spawn().await;
    let file = "{\"external_id\": \"n-1\", \"name\": \"Ada\", \"tags\": [\"vip\"], \"_note\": \"ignored\"}\n\
                not json\n\
                [1, 2]\n\
                {\"external_id\": \"n-2\", \"name\": \"Bob\", \"kind\": \"robot\"}\n\
                \n\
                {\"external_id\": \"n-3\", \"name\": \"Cy\", \"address\": {\"city\": \"Paris\"}}";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(file.as_bytes()).unwrap();
    let body = gz.finish().unwrap();
    let send = |key: Option<&'static str>| {
        let mut req = app
            .post("/v1/imports/customers")
            .bearer_auth(app.token(Role::Manager))
            .header("Content-Type", "application/x-ndjson")
            .header("Content-Encoding", "gzip")
            .body(body.clone());
        if let Some(key) = key {
            req = req.header("Idempotency-Key", key);
        }
        req.send()
    };
    let report = expect_json(send(Some("file-1")).await.unwrap(), StatusCode::CREATED).await;
    assert_eq!(report["format"], "ndjson");
    assert_eq!(counts(&report), [5, 2, 0, 0, 3]);
    assert_eq!(
        errors(&report),
        [
            (2, "row".to_owned()),
            (3, "row".to_owned()),
            (4, "kind".to_owned())
        ]
    );
    assert_eq!(
        customer_by_external_id(&app, "n-3").await["address"]["city"],
        "Paris"
    );
    // The same key, and the same file without one: the first import again, nothing twice.
    let res = send(Some("file-1")).await.unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let replay = expect_json(res, StatusCode::OK).await;
    assert_eq!(replay["id"], report["id"]);
    let res = send(None).await.unwrap();
    let replay = expect_json(res, StatusCode::OK).await;
    assert_eq!(replay["id"], report["id"]);
    assert_eq!(app.count("customers").await, 2);
    // The NDJSON error file keeps each line, with `_line` and `_error`.
    let res = app
        .get(report["errors_url"].as_str().unwrap())
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["_raw"], "not json");
    assert_eq!(lines[2]["external_id"], "n-2");
    assert_eq!(lines[2]["_line"], 4);
    // A broken gzip stream fails the upload with a clear answer.
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "gzip")
        .body("not gzip at all")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// Waits for an import to end.
pub(crate) async fn settled(app: &TestApp, id: &str) -> Value {
    for _ in 0..100 {
        let job = app
            .get_ok(&format!("/v1/imports/{id}"), &app.token(Role::Viewer))
            .await;
        if job["state"] == "succeeded" || job["state"] == "failed" {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("import {id} did not end");
}

#[actix_web::test]
async fn async_jobs_run_in_the_background_and_resume_after_a_restart() {
    // This instance's worker sleeps: it stands for the instance that stopped.
    let app = TestApp::spawn_with(&[
        ("RAPPORT_IMPORT_INTERVAL", "1h"),
        ("RAPPORT_IMPORT_BATCH", "2"),
    ])
    .await;
    let mut file = String::from("external_id,name\n");
    for i in 1..=7 {
        file.push_str(&format!("a-{i},Customer {i}\n"));
    }
    let res = import(
        &app,
        "/v1/imports/customers?async=true",
        "text/csv",
        file.clone(),
    )
    .await;
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/imports/")
    );
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["state"], "queued");
    assert_eq!(job["async"], true);
    // What a runner that died after its first two batches leaves behind: lines 2 to 5
    // written and counted, the job running with a lapsed lease.
    let first = csv(
        &app,
        "",
        "external_id,name\na-1,Customer 1\na-2,Customer 2\na-3,Customer 3\na-4,Customer 4\n",
    )
    .await;
    assert_eq!(first["created"], 4);
    app.sql(&format!(
        "UPDATE imports SET state = 'running', lease_until = now() - interval '1 minute', \
         lines_done = 5, received = 4, created = 4 WHERE id = '{id}'"
    ))
    .await;
    // Another instance starts: its worker takes the job over and goes on after line 5.
    let settings = crate::helpers::settings(
        &app.db.url,
        &[
            ("RAPPORT_IMPORT_INTERVAL", "1s"),
            ("RAPPORT_IMPORT_BATCH", "2"),
        ],
    );
    let other = rapport::startup::Application::build(settings)
        .await
        .unwrap();
    let handle = other.handle();
    actix_web::rt::spawn(other.run_until_stopped());
    let done = settled(&app, &id).await;
    handle.stop(false).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(counts(&done), [7, 7, 0, 0, 0]);
    assert!(done["finished_at"].is_string());
    assert_eq!(app.count("customers").await, 7, "no row written twice");
    assert_eq!(
        app.count("import_chunks").await,
        0,
        "the stored file is gone"
    );
    let list = app
        .get_ok("/v1/imports?state=succeeded", &app.token(Role::Viewer))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn imported_purchases_earn_points_as_if_posted_one_by_one_and_interactions_import() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let res = app
        .send(
            Method::PUT,
            "/v1/loyalty/program",
            &admin,
            &json!({"currency": "EUR",
            "earn": {"points": 1, "per_amount": 100, "rounding": "down"},
            "expiry": {"policy": "never"},
            "qualification": {"basis": "points_earned", "months": 12},
            "downgrade": {"policy": "never"}}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .send(Method::PUT, "/v1/loyalty/tiers", &admin, &json!({"tiers": [
            {"key": "base", "name": "Base", "threshold": 0, "multiplier_percent": 100, "benefits": []},
            {"key": "gold", "name": "Gold", "threshold": 100, "multiplier_percent": 200, "benefits": []}]}))
        .await;
    expect_json(res, StatusCode::OK).await;
    let posted =
        crate::customers::create(&app, json!({"kind": "individual", "name": "Posted"})).await;
    let imported =
        crate::customers::create(&app, json!({"kind": "individual", "name": "Imported"})).await;
    let (posted, imported) = (
        posted["id"].as_str().unwrap(),
        imported["id"].as_str().unwrap(),
    );
    // 150.00 earns 150 (reaching gold), then 50.00 earns 100 at gold's double rate.
    let sales = [("r-1", 15000), ("r-2", 5000)];
    for (reference, amount) in sales {
        let res = app
            .send(Method::POST, &format!("/v1/customers/{posted}/purchases"), &admin,
                  &json!({"external_ref": format!("p{reference}"), "amount": amount, "currency": "EUR"}))
            .await;
        expect_json(res, StatusCode::CREATED).await;
    }
    let mut file = String::from("customer_id,external_ref,amount,currency,items\n");
    for (reference, amount) in sales {
        file.push_str(&format!("{imported},{reference},{amount},EUR,\"[{{\"\"name\"\": \"\"Vase\"\", \"\"quantity\"\": 1, \"\"unit_price\"\": {amount}}}]\"\n"));
    }
    file.push_str("0193b0a6-0000-7000-8000-000000000009,r-3,100,EUR,\n");
    file.push_str(&format!("{imported},r-4,-5,EUR,\n"));
    let res = import(&app, "/v1/imports/purchases", "text/csv", file.clone()).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [4, 2, 0, 0, 2]);
    assert_eq!(
        errors(&report),
        [(4, "customer_id".to_owned()), (5, "amount".to_owned())]
    );
    let agent = app.token(Role::Agent);
    let standing = |id: &str| {
        let path = format!("/v1/customers/{id}/loyalty");
        let (app, agent) = (&app, agent.clone());
        async move { app.get_ok(&path, &agent).await }
    };
    let (a, b) = (standing(posted).await, standing(imported).await);
    assert_eq!(a["balance"], 250);
    assert_eq!(
        (b["balance"].clone(), b["tier"]["key"].clone()),
        (a["balance"].clone(), a["tier"]["key"].clone())
    );
    // Upsert accepts the same purchases again as unchanged; insert refuses them.
    let res = import(
        &app,
        "/v1/imports/purchases?mode=upsert",
        "text/csv",
        file.replace("r-3", "r-3x"),
    )
    .await;
    let again = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&again), [4, 0, 0, 2, 2]);
    assert_eq!(standing(imported).await["balance"], 250);
    // Imported as posted, the first purchase made each prospect an acquaintance, once (the
    // re-sent file moved nobody again).
    for id in [posted, imported] {
        let customer = app.get_ok(&format!("/v1/customers/{id}"), &agent).await;
        assert_eq!(customer["lifecycle_stage"], "acquaintance", "{id}");
        let history = app
            .get_ok(&format!("/v1/customers/{id}/lifecycle"), &agent)
            .await;
        let moves: Vec<(&Value, &Value)> = history["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (&e["from"], &e["to"]))
            .collect();
        assert_eq!(
            moves,
            [
                (&Value::Null, &json!("prospect")),
                (&json!("prospect"), &json!("acquaintance"))
            ]
        );
    }

    // Interactions name their customer; a complaint starts open.
    let file = format!(
        "customer_id,channel,direction,kind,subject,occurred_at,severity,cause\n\
         {imported},phone,inbound,complaint,\"Broken, twice\",2026-11-01T10:00:00Z,high,product_defect\n\
         {imported},fax,inbound,note,Hm,2026-11-01T10:00:00Z,,\n"
    );
    let res = import(&app, "/v1/imports/interactions", "text/csv", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [2, 1, 0, 0, 1]);
    assert_eq!(errors(&report), [(3, "channel".to_owned())]);
    let list = app
        .get_ok(
            &format!("/v1/customers/{imported}/interactions"),
            &app.token(Role::Agent),
        )
        .await;
    assert_eq!(list["data"][0]["status"], "open");
    assert_eq!(list["data"][0]["subject"], "Broken, twice");
    assert_eq!(list["data"][0]["cause"], "product_defect");
}

#[actix_web::test]
async fn an_export_imports_again_as_the_same_data() {
    let source = TestApp::spawn().await;
    let (manager_id, _) = source.user(Role::Manager).await;
    for body in [
        json!({"kind": "individual", "name": "Lovelace, Ada", "email": "ada@example.com",
               "phone": "+49 30 1234567", "external_id": "crm-1", "tags": ["vip", "newsletter"],
               "attributes": {"plan": "gold", "seats": 3}, "address": {"line1": "Unter den Linden 1",
               "city": "Berlin", "country": "DE"}, "birth_date": "1985-12-10",
               "consent": {"email": {"granted": true, "at": "2026-01-02T03:04:05Z"}},
               "lifecycle_stage": "stable", "relationship_level": "proactive",
               "qualification": {"money": true, "authority": false, "need": true},
               "preferred_channel": "email", "source": "webshop"}),
        json!({"kind": "organization", "name": "Grace \"Amazing\" Hopper",
               "organization_name": "Navy\nResearch", "external_id": "crm-2",
               "national_id": "X1234567", "region_type": "rural", "gender": "female",
               "occupation": "Admiral", "income_band": "high"}),
        json!({"kind": "individual", "name": "Bare", "external_id": "crm-3"}),
    ] {
        crate::customers::create(&source, body).await;
    }
    crate::customers::create(
        &source,
        json!({"kind": "individual", "name": "Managed",
        "external_id": "crm-4", "account_manager_id": manager_id}),
    )
    .await;
    let admin = source.token(Role::Admin);
    // The manager id is another instance's user: the round trip leaves it out.
    let res = source
        .get("/v1/exports/customers?sort=name")
        .bearer_auth(&admin)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let exported = res.text().await.unwrap();
    let without_manager = exported.replace(&manager_id.to_string(), "");

    let target = TestApp::spawn().await;
    let res = import(
        &target,
        "/v1/imports/customers",
        "text/csv",
        without_manager,
    )
    .await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [4, 4, 0, 0, 0], "{report}");
    // The same customers, field for field (ids, times and versions are the target's own).
    assert_eq!(comparable(&target).await, comparable(&source).await);
    // And exporting the target gives the same file, but for the fields it owns.
    let res = target
        .get("/v1/exports/customers?sort=name")
        .bearer_auth(target.token(Role::Admin))
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    let again = res.text().await.unwrap();
    assert_eq!(again.lines().count(), exported.lines().count());
    assert_eq!(again.lines().next(), exported.lines().next());
}

/// Every customer of an app, without what each instance assigns itself.
async fn comparable(app: &TestApp) -> Vec<Value> {
    let page = app
        .get_ok("/v1/customers?sort=name", &app.token(Role::Admin))
        .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            for key in [
                "id",
                "created_at",
                "updated_at",
                "version",
                "account_manager_id",
            ] {
                c.as_object_mut().unwrap().remove(key);
            }
            c
        })
        .collect()
}

/// What the planner believes `customers` holds (`reltuples`: -1 before any ANALYZE).
async fn planned_customers(app: &TestApp) -> f64 {
    #[derive(diesel::QueryableByName)]
    struct Tuples {
        #[diesel(sql_type = diesel::sql_types::Double)]
        tuples: f64,
    }
    let mut conn = app.db.connect().await;
    let row: Tuples = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(
            "SELECT reltuples::float8 AS tuples FROM pg_class WHERE oid = 'customers'::regclass",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    row.tuples
}

#[actix_web::test]
async fn a_large_import_leaves_fresh_planner_statistics_and_a_small_one_leaves_them() {
    let app = TestApp::spawn().await;
    let before = planned_customers(&app).await;
    assert!(
        before <= 0.0,
        "a new database's customers are not counted yet: {before}"
    );
    let rows: String = (0..120)
        .map(|i| format!("s-{i},Stat Customer {i}\n"))
        .collect();
    let report = csv(&app, "", &format!("external_id,name\n{rows}")).await;
    assert_eq!(counts(&report), [120, 120, 0, 0, 0]);
    // Outgrown (120 rows against none known): analyzed, so lists are planned for 120 rows.
    assert_eq!(planned_customers(&app).await, 120.0);

    // Five more do not outgrow 120 (50 rows and a tenth): the statistics stay as they were.
    let report = csv(
        &app,
        "",
        "external_id,name\nt-1,A\nt-2,B\nt-3,C\nt-4,D\nt-5,E\n",
    )
    .await;
    assert_eq!(counts(&report), [5, 5, 0, 0, 0]);
    assert_eq!(planned_customers(&app).await, 120.0);
}

#[actix_web::test]
async fn a_row_with_two_bad_fields_fails_once_and_the_counts_add_up() {
    let app = TestApp::spawn().await;
    let file = "external_id,name,email,consent.email.granted\n\
                c-1,Ada,ada@example.com,true\n\
                c-2,,not-an-email,true\n\
                c-3,Bob,bob@example.com,false\n";
    let report = csv(&app, "", file).await;
    // Both of row 3's fields are named, but it is one failed row: 3 = 2 created + 1 failed.
    assert_eq!(counts(&report), [3, 2, 0, 0, 1]);
    let named: Vec<(i64, String)> = errors(&report);
    assert!(named.len() >= 2, "every bad field is named: {named:?}");
    assert!(named.iter().all(|(line, _)| *line == 3), "{named:?}");
    let id = report["id"].as_str().unwrap();
    let again = app
        .get_ok(&format!("/v1/imports/{id}"), &app.token(Role::Manager))
        .await;
    assert_eq!(counts(&again), [3, 2, 0, 0, 1]);
}

#[actix_web::test]
async fn a_header_too_wide_or_with_many_unknown_columns_gets_a_short_answer() {
    let app = TestApp::spawn().await;
    // 100 000 columns: refused in one message, not one per column.
    let wide: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
    let body = format!("{}\n", wide.join(","));
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .header("Content-Encoding", "gzip")
        .body({
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            gz.write_all(body.as_bytes()).unwrap();
            gz.finish().unwrap()
        })
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = res.text().await.unwrap();
    assert!(text.len() < 2_000, "a short answer: {} bytes", text.len());
    assert!(text.contains("100000 columns; at most 256"), "{text}");
    // 30 unknown columns: the first 20 named, the others counted.
    let unknown: Vec<String> = (0..30).map(|i| format!("colour{i}")).collect();
    let res = import(
        &app,
        "/v1/imports/customers",
        "text/csv",
        format!("name,{}\nAda{}\n", unknown.join(","), ",x".repeat(30)),
    )
    .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let message = p["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("`colour19`") && !message.contains("`colour20`"),
        "{p}"
    );
    assert!(message.contains("and 10 more"), "{p}");
    assert_eq!(app.count("customers").await, 0);
}

/// An error file of import `id` as `token` reads it: its status and body.
async fn error_file(app: &TestApp, id: &str, format: &str, token: &str) -> (StatusCode, String) {
    let res = app
        .get(&format!("/v1/imports/{id}/errors.{format}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

#[actix_web::test]
async fn error_files_are_for_the_importer_admins_and_writers_with_the_id_number_masked() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let send = |content_type: &'static str, body: &'static str| {
        app.post("/v1/imports/customers")
            .bearer_auth(&admin)
            .header("Content-Type", content_type)
            .body(body)
            .send()
    };
    let csv_report = expect_json(
        send(
            "text/csv",
            "name,email,national_id\nAda,ada@example.com,T22000129\nBob,not-an-email,\"X1234,5678\"\n",
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let ndjson_report = expect_json(
        send(
            "application/x-ndjson",
            "{\"name\": \"Cy\", \"email\": \"bad\", \"national_id\": \"Z98765432\"}\n",
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let csv_id = csv_report["id"].as_str().unwrap();
    let ndjson_id = ndjson_report["id"].as_str().unwrap();

    // The importer (an admin) and a manager (pii:read) read the rows as sent.
    for token in [admin.clone(), app.token(Role::Manager)] {
        let (status, body) = error_file(&app, csv_id, "csv", &token).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("\"X1234,5678\""), "{body}");
        let (_, body) = error_file(&app, ndjson_id, "ndjson", &token).await;
        assert!(body.contains("Z98765432"), "{body}");
    }
    // An agent may write customers but not read ID numbers: masked, the rest as sent.
    let agent = app.token(Role::Agent);
    let (status, body) = error_file(&app, csv_id, "csv", &agent).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("X1234"), "{body}");
    assert!(body.contains("Bob,not-an-email,****5678"), "{body}");
    let (_, body) = error_file(&app, ndjson_id, "ndjson", &agent).await;
    assert!(
        !body.contains("Z98765432") && body.contains("****5432"),
        "{body}"
    );
    // A client that may write customers, without pii:read: masked too.
    let writer = app
        .client_token("writer", &["customers:read", "customers:write"])
        .await;
    let (status, body) = error_file(&app, csv_id, "csv", &writer).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("****5678") && !body.contains("X1234"),
        "{body}"
    );
    // Readers only, a viewer or a client with customers:read, get no failed rows at all.
    let reader = app.client_token("reader", &["customers:read"]).await;
    for token in [app.token(Role::Viewer), reader] {
        for (id, format) in [(csv_id, "csv"), (ndjson_id, "ndjson")] {
            let res = app
                .get(&format!("/v1/imports/{id}/errors.{format}"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        }
        // The import itself (counts and which fields failed) stays readable.
        let _ = app.get_ok(&format!("/v1/imports/{csv_id}"), &token).await;
    }
}

#[actix_web::test]
async fn the_worker_leaves_a_waiting_requests_import_to_it_until_that_request_evidently_stopped() {
    use std::time::{Duration, Instant};
    // An instance whose worker never comes round queues a job; it is then made what a
    // request that waits for its answer leaves between receiving its file and running it.
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1h")]).await;
    let res = import(
        &app,
        "/v1/imports/customers?async=true",
        "text/csv",
        "name\nAda Lovelace\n",
    )
    .await;
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    let id = job["id"].as_str().unwrap().to_owned();
    app.sql(&format!(
        "UPDATE imports SET background = false, updated_at = now() WHERE id = '{id}'"
    ))
    .await;
    // Another instance's worker, looking every second, leaves it to its request.
    let settings = crate::helpers::settings(&app.db.url, &[("RAPPORT_IMPORT_INTERVAL", "1s")]);
    let other = rapport::startup::Application::build(settings)
        .await
        .unwrap();
    let handle = other.handle();
    actix_web::rt::spawn(other.run_until_stopped());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let path = format!("/v1/imports/{id}");
    let admin = app.token(Role::Admin);
    let state = async || app.get_ok(&path, &admin).await["state"].clone();
    assert_eq!(
        state().await,
        "queued",
        "the worker took a waiting request's job"
    );
    assert_eq!(app.count("customers").await, 0);
    // Queued longer ago than a request takes to start it: its instance stopped first, and
    // the worker runs it.
    app.sql(&format!(
        "UPDATE imports SET updated_at = now() - interval '1 minute' WHERE id = '{id}'"
    ))
    .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while state().await != "succeeded" {
        assert!(
            Instant::now() < deadline,
            "the worker never took the job over"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.count("customers").await, 1);
    handle.stop(false).await;
}
