//! Imports facing hostile rows: batches bounded by bytes, a row too long failing alone, a row
//! the database refuses failing alone, and a job that keeps failing given up.

use diesel::sql_types::Text;
use rapport::auth::Role;
use rapport::imports::parse::MAX_RECORD;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json};
use crate::imports::{counts, errors};

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
fn messages(report: &Value) -> Vec<(i64, String, String)> {
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
