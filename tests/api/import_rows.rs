//! Imports facing hostile rows: batches bounded by bytes, a row too long failing alone, a row
//! the database refuses failing alone, and a job that keeps failing given up.

use diesel::sql_types::Text;
use rapport::auth::Role;
use rapport::imports::parse::MAX_RECORD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem};
use crate::imports::{counts, errors, settled};

/// What a row too long fails with.
fn too_long() -> String {
    format!("is longer than {MAX_RECORD} bytes (the most a row may hold)")
}

/// Uploads `body` to `path` as an admin.
async fn upload(app: &TestApp, path: &str, content_type: &str, body: String) -> reqwest::Response {
    app.post(path)
        .bearer_auth(app.token(Role::Admin))
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The report's failed rows with their messages.
pub(crate) fn messages(report: &Value) -> Vec<(i64, String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
                e["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The customers' external ids, grouped by the transaction that wrote them (`xmin`), in
/// the order of the file.
async fn written_together(app: &TestApp) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Batch {
        #[diesel(sql_type = Text)]
        ids: String,
    }
    let mut conn = app.db.connect().await;
    let batches: Vec<Batch> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT string_agg(external_id, ' ' ORDER BY external_id) AS ids FROM customers \
             GROUP BY xmin::text ORDER BY min(external_id)",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    batches.into_iter().map(|b| b.ids).collect()
}

/// The external ids of the customers, in order.
async fn external_ids(app: &TestApp) -> Vec<String> {
    let page = app
        .get_ok("/v1/customers?limit=200", &app.token(Role::Admin))
        .await;
    let mut ids: Vec<String> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["external_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    ids.sort();
    ids
}

#[actix_web::test]
async fn rows_near_the_longest_are_written_in_batches_of_at_most_the_byte_budget() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_BATCH_BYTES", "64KiB")]).await;
    // Small rows and rows just under the longest: a batch is written once its rows hold
    // 64 KiB, so each big row closes the batch it joins (the row count, 5000, never does).
    let pad = "p".repeat(MAX_RECORD - 100);
    let mut file = String::from("external_id,name,_pad\n");
    for (line, big) in [
        (2, false),
        (3, false),
        (4, true),
        (5, false),
        (6, true),
        (7, false),
        (8, false),
    ] {
        let padding = if big { pad.as_str() } else { "" };
        file.push_str(&format!("r{line:02},Row {line},{padding}\n"));
    }
    let res = upload(&app, "/v1/imports/customers", "text/csv", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["state"], "succeeded");
    assert_eq!(counts(&report), [7, 7, 0, 0, 0]);
    assert_eq!(
        written_together(&app).await,
        ["r02 r03 r04", "r05 r06", "r07 r08"],
        "one transaction per batch"
    );
}

#[actix_web::test]
async fn a_row_too_long_fails_alone_and_the_lines_after_it_stay_right() {
    let app = TestApp::spawn().await;
    // CSV: the long row spans lines 3 and 4 (a quoted line break).
    let long = "x".repeat(MAX_RECORD);
    let file = format!(
        "external_id,name,email\n\
         c-1,Ada,ada@example.com\n\
         c-2,\"Too\n{long}\",too@example.com\n\
         c-3,Bob,not-an-email\n\
         c-4,Cy,cy@example.com\n"
    );
    let res = upload(&app, "/v1/imports/customers", "text/csv", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["state"], "succeeded");
    assert_eq!(counts(&report), [4, 2, 0, 0, 2]);
    assert_eq!(
        messages(&report),
        [
            (3, "row".to_owned(), too_long()),
            (
                5,
                "email".to_owned(),
                "must be an email address such as ada@example.com".to_owned()
            )
        ]
    );
    assert_eq!(external_ids(&app).await, ["c-1", "c-4"]);
    // Its text is not kept: the error file holds its line and why, nothing of the row.
    let res = app
        .get(report["errors_url"].as_str().unwrap())
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    let error_file = res.text().await.unwrap();
    assert!(
        error_file.contains(&format!("\r\n3,row: {},\r\n5,", too_long())),
        "{error_file}"
    );

    // NDJSON: the long line is line 2; a blank line 3 still counts.
    let file = format!(
        "{}\n{{\"external_id\": \"n-2\", \"name\": \"{long}\"}}\n\n{}\n{}\n",
        json!({"external_id": "n-1", "name": "Ada"}),
        json!({"external_id": "n-4", "name": ""}),
        json!({"external_id": "n-5", "name": "Cy"}),
    );
    let res = upload(&app, "/v1/imports/customers", "application/x-ndjson", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["state"], "succeeded");
    assert_eq!(counts(&report), [4, 2, 0, 0, 2]);
    assert_eq!(
        errors(&report),
        [(2, "row".to_owned()), (4, "name".to_owned())]
    );
    assert_eq!(messages(&report)[0].2, too_long());
    assert_eq!(external_ids(&app).await, ["c-1", "c-4", "n-1", "n-5"]);
}

/// What the database answers a value it cannot store, as a row's failure.
const REFUSED: &str = "a value of the request cannot be stored (a NUL character, a byte sequence \
                       that is not UTF-8, or a number or date out of range)";

/// One text value read straight from the database.
async fn scalar(app: &TestApp, query: &str) -> Option<String> {
    #[derive(diesel::QueryableByName)]
    struct One {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        v: Option<String>,
    }
    let mut conn = app.db.connect().await;
    let one: One = diesel_async::RunQueryDsl::get_result(diesel::sql_query(query), &mut conn)
        .await
        .expect(query);
    one.v
}

/// Starts an import with `async=true` and waits for its end.
async fn in_background(app: &TestApp, path: &str, content_type: &str, body: String) -> Value {
    let res = upload(app, path, content_type, body).await;
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    settled(app, job["id"].as_str().unwrap()).await
}

#[actix_web::test]
async fn a_customer_the_database_refuses_fails_alone_and_the_batch_is_written() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1s")]).await;
    // Year 0 passes the rules (it is not in the future) but PostgreSQL has no year 0: the
    // batch's one statement is refused as a whole.
    let poison = json!({"granted": true, "at": "0000-06-01T00:00:00Z"});
    let file = [
        json!({"external_id": "p-1", "name": "Ada"}),
        json!({"external_id": "p-2", "name": "Poison", "consent": {"email": poison}}),
        json!({"external_id": "p-3", "name": "Bob", "email": "nope"}),
        json!({"external_id": "p-4", "name": "Cy"}),
    ]
    .map(|row| format!("{row}\n"))
    .concat();
    let res = upload(&app, "/v1/imports/customers", "application/x-ndjson", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["state"], "succeeded");
    assert_eq!(report["committed"], true);
    assert_eq!(counts(&report), [4, 2, 0, 0, 2]);
    assert_eq!(
        messages(&report),
        [
            (2, "row".to_owned(), REFUSED.to_owned()),
            (
                3,
                "email".to_owned(),
                "must be an email address such as ada@example.com".to_owned()
            )
        ]
    );
    assert_eq!(external_ids(&app).await, ["p-1", "p-4"]);
    assert_eq!(app.count("customer_lifecycle_events").await, 2);

    // In the background, upserting: the refused row is an update this time.
    let file = [
        json!({"external_id": "p-1", "name": "Ada", "consent": {"email": poison}}),
        json!({"external_id": "p-4", "name": "Cyrus"}),
        json!({"external_id": "p-5", "name": "Dee"}),
    ]
    .map(|row| format!("{row}\n"))
    .concat();
    let job = in_background(
        &app,
        "/v1/imports/customers?mode=upsert&async=true",
        "application/x-ndjson",
        file,
    )
    .await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(counts(&job), [3, 1, 1, 0, 1]);
    assert_eq!(messages(&job), [(1, "row".to_owned(), REFUSED.to_owned())]);
    assert_eq!(external_ids(&app).await, ["p-1", "p-4", "p-5"]);
    let names = scalar(
        &app,
        "SELECT string_agg(name, ',' ORDER BY external_id) AS v FROM customers",
    )
    .await;
    assert_eq!(names.as_deref(), Some("Ada,Cyrus,Dee"));
}

#[actix_web::test]
async fn a_purchase_or_interaction_the_database_refuses_fails_alone() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1s")]).await;
    let customer =
        crate::customers::create(&app, json!({"kind": "individual", "name": "Buyer"})).await;
    let customer = customer["id"].as_str().unwrap();
    // 5001 BC passes the rules (it is not in the future), and PostgreSQL's timestamps start
    // in 4713 BC: the row's insert is refused in its savepoint, the batch goes on.
    let file = format!(
        "customer_id,external_ref,amount,currency,occurred_at\n\
         {customer},q-1,1000,EUR,2026-01-01T00:00:00Z\n\
         {customer},q-2,2000,EUR,-5000-01-01T00:00:00Z\n\
         {customer},q-3,-1,EUR,2026-01-02T00:00:00Z\n\
         {customer},q-4,4000,EUR,2026-01-03T00:00:00Z\n"
    );
    let res = upload(&app, "/v1/imports/purchases", "text/csv", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["state"], "succeeded");
    assert_eq!(counts(&report), [4, 2, 0, 0, 2]);
    assert_eq!(
        errors(&report),
        [(3, "row".to_owned()), (4, "amount".to_owned())]
    );
    assert_eq!(messages(&report)[0].2, REFUSED);
    let refs = scalar(
        &app,
        "SELECT string_agg(external_ref, ',' ORDER BY external_ref) AS v FROM purchases",
    )
    .await;
    assert_eq!(refs.as_deref(), Some("q-1,q-4"));

    // Interactions, in the background.
    let file = format!(
        "customer_id,channel,direction,kind,subject,occurred_at\n\
         {customer},phone,inbound,note,First,2026-11-01T10:00:00Z\n\
         {customer},phone,inbound,note,Refused,-5000-01-01T10:00:00Z\n\
         {customer},email,outbound,note,Third,2026-11-02T10:00:00Z\n"
    );
    let job = in_background(
        &app,
        "/v1/imports/interactions?async=true",
        "text/csv",
        file,
    )
    .await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(counts(&job), [3, 2, 0, 0, 1]);
    assert_eq!(messages(&job), [(3, "row".to_owned(), REFUSED.to_owned())]);
    let subjects = scalar(
        &app,
        "SELECT string_agg(subject, ',' ORDER BY subject) AS v FROM interactions",
    )
    .await;
    assert_eq!(subjects.as_deref(), Some("First,Third"));
}

#[actix_web::test]
async fn a_job_that_keeps_failing_is_given_up_after_its_attempts() {
    // This instance's worker sleeps; another, started below, runs the jobs.
    let limits = [
        ("RAPPORT_IMPORT_BATCH", "2"),
        ("RAPPORT_IMPORT_MAX_ATTEMPTS", "2"),
    ];
    let app = TestApp::spawn_with(&[limits[0], limits[1], ("RAPPORT_IMPORT_INTERVAL", "1h")]).await;
    // The table fails the second batch for a reason no row's value explains.
    app.sql(
        "CREATE FUNCTION broken() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF NEW.name = 'Boom' THEN RAISE EXCEPTION 'secret internal detail'; END IF; \
         RETURN NEW; END $$",
    )
    .await;
    app.sql(
        "CREATE TRIGGER broken BEFORE INSERT ON customers FOR EACH ROW EXECUTE FUNCTION broken()",
    )
    .await;
    let file = "external_id,name\na-1,A\na-2,B\na-3,C\na-4,Boom\na-5,E\n";
    let res = upload(
        &app,
        "/v1/imports/customers?async=true",
        "text/csv",
        file.into(),
    )
    .await;
    let failing = expect_json(res, StatusCode::ACCEPTED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // What a runner that died on this job's last attempt leaves: running, its lease lapsed.
    let file = "external_id,name\nd-1,Dead\n";
    let res = upload(
        &app,
        "/v1/imports/customers?async=true",
        "text/csv",
        file.into(),
    )
    .await;
    let died = expect_json(res, StatusCode::ACCEPTED).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.sql(&format!(
        "UPDATE imports SET state = 'running', attempts = 2, \
         lease_until = now() - interval '1 minute' WHERE id = '{died}'"
    ))
    .await;
    let settings = crate::helpers::settings(
        &app.db.url,
        &[limits[0], limits[1], ("RAPPORT_IMPORT_INTERVAL", "1s")],
    );
    let worker = rapport::startup::Application::build(settings)
        .await
        .unwrap();
    let handle = worker.handle();
    actix_web::rt::spawn(worker.run_until_stopped());

    // Claimed past its attempts, the job is given up without running.
    let ended = settled(&app, &died).await;
    assert_eq!(ended["state"], "failed");
    assert_eq!(
        ended["error"],
        "gave up after 2 attempts: its last run ended without a word (the service may have \
         stopped mid-way)"
    );
    assert_eq!(counts(&ended), [0, 0, 0, 0, 0]);

    // The failing job's first attempt wrote its first batch, then stopped; it waits for its
    // lease to lapse (hurried here), and its second attempt is its last.
    let attempt =
        format!("SELECT attempts::text || ' ' || state AS v FROM imports WHERE id = '{failing}'");
    for _ in 0..100 {
        if scalar(&app, &attempt).await.as_deref() == Some("1 running")
            && scalar(
                &app,
                &format!("SELECT last_error AS v FROM imports WHERE id = '{failing}'"),
            )
            .await
            .is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(scalar(&app, &attempt).await.as_deref(), Some("1 running"));
    assert_eq!(external_ids(&app).await, ["a-1", "a-2"]);
    app.sql(&format!(
        "UPDATE imports SET lease_until = now() - interval '1 second' WHERE id = '{failing}'"
    ))
    .await;
    let ended = settled(&app, &failing).await;
    assert_eq!(ended["state"], "failed");
    assert_eq!(
        ended["error"],
        "gave up after 2 attempts: internal error (the cause is in the service's log)"
    );
    assert_eq!(counts(&ended), [2, 2, 0, 0, 0], "its first batch's counts");
    assert_eq!(ended["committed"], false);
    // Never run again.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(scalar(&app, &attempt).await.as_deref(), Some("2 failed"));
    handle.stop(false).await;
    assert_eq!(external_ids(&app).await, ["a-1", "a-2"]);
    // Both ends were announced, as a batch job's failed end is.
    assert_eq!(app.count("events WHERE type = 'import.completed'").await, 2);
    assert_eq!(
        app.count("import_chunks").await,
        0,
        "the stored files are gone"
    );
}

#[actix_web::test]
async fn a_row_breaking_an_integrity_rule_of_the_database_fails_alone() {
    let app = TestApp::spawn().await;
    // A rule the service's own checks do not know (SQLSTATE 23514): the database alone
    // refuses the row, as it would a rule a future migration adds before the code checks it.
    app.sql("ALTER TABLE customers ADD CONSTRAINT no_poison CHECK (name <> 'Poison')")
        .await;
    let file = "external_id,name\nc-1,Ada\nc-2,Poison\nc-3,Cy\n".to_owned();
    let res = upload(&app, "/v1/imports/customers", "text/csv", file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [3, 2, 0, 0, 1]);
    let failures = messages(&report);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!((failures[0].0, failures[0].1.as_str()), (3, "row"));
    assert!(failures[0].2.contains("breaks a rule"), "{failures:?}");
    assert!(!failures[0].2.contains("no_poison"), "{failures:?}");
    assert_eq!(external_ids(&app).await, ["c-1", "c-3"]);
    // The single-object endpoint answers the same rule with a 422, not a 500.
    let res = app
        .post("/v1/customers")
        .bearer_auth(app.token(Role::Admin))
        .json(&json!({"name": "Poison"}))
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(!problem.to_string().contains("no_poison"), "{problem}");
}
