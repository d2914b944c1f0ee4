//! Imports sent as `multipart/form-data` forms (`curl -F`): a `file` part, streamed, and an
//! optional `mapping` part before it. CSV and NDJSON with a mapping part, async and dry
//! runs, a gzip file part, the preview; and every bad form refused with a problem, writing
//! nothing.

use std::io::Write;

use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};
use crate::imports::{counts, settled};

const BOUNDARY: &str = "rapport-form-0193b0a67c1e";

/// One part of a form.
struct Part<'a> {
    name: Option<&'a str>,
    filename: Option<&'a str>,
    content_type: Option<&'a str>,
    body: Vec<u8>,
}

fn mapping_part(mapping: &Value) -> Part<'static> {
    Part {
        name: Some("mapping"),
        filename: None,
        content_type: Some("application/json"),
        body: mapping.to_string().into_bytes(),
    }
}

fn file_part<'a>(filename: &'a str, content_type: Option<&'a str>, body: &[u8]) -> Part<'a> {
    Part {
        name: Some("file"),
        filename: Some(filename),
        content_type,
        body: body.to_vec(),
    }
}

/// A form's body, as curl writes it.
fn form(parts: &[Part<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        write!(out, "--{BOUNDARY}\r\nContent-Disposition: form-data").unwrap();
        if let Some(name) = part.name {
            write!(out, "; name=\"{name}\"").unwrap();
        }
        if let Some(filename) = part.filename {
            write!(out, "; filename=\"{filename}\"").unwrap();
        }
        out.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            write!(out, "Content-Type: {content_type}\r\n").unwrap();
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&part.body);
        out.extend_from_slice(b"\r\n");
    }
    write!(out, "--{BOUNDARY}--\r\n").unwrap();
    out
}

async fn send(
    app: &TestApp,
    token: &str,
    path: &str,
    query: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    app.post(&format!("{path}?{query}"))
        .bearer_auth(token)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A form sent without a `Content-Length` (chunked), so that only the limits checked as it
/// arrives can refuse it.
async fn import_chunked(app: &TestApp, query: &str, parts: &[Part<'_>]) -> reqwest::Response {
    let body = form(parts);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    app.post(&format!("/v1/imports/customers?{query}"))
        .bearer_auth(app.token(Role::Manager))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap()
}

async fn import(app: &TestApp, query: &str, parts: &[Part<'_>]) -> reqwest::Response {
    let token = app.token(Role::Manager);
    send(app, &token, "/v1/imports/customers", query, form(parts)).await
}

async fn by_external_id(app: &TestApp, id: &str) -> Value {
    app.get_ok(
        &format!("/v1/customers/by-external-id/{id}"),
        &app.token(Role::Admin),
    )
    .await
}

/// A spreadsheet of one's own, and the mapping that reads it.
const SHEET: &str = "Given,Family,Born,Status,Fax\n\
    Edsger,Dijkstra,11.05.1930,Customer,\n\
    Barbara,Liskov,,Lead,030 1234\n";

fn sheet_mapping() -> Value {
    json!({"fields": {
        "external_id": {"from": "Given", "prefix": "sheet-"},
        "name": {"from": ["Given", "Family"]},
        "birth_date": {"from": "Born", "date_format": "%d.%m.%Y"},
        "lifecycle_stage": {"from": "Status", "values": {"Customer": "stable", "Lead": "prospect"}}
    }})
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[actix_web::test]
async fn a_form_carries_a_csv_or_ndjson_file_and_its_mapping() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1s")]).await;

    // CSV, the mapping as a part before the file.
    let res = import(
        &app,
        "",
        &[
            mapping_part(&sheet_mapping()),
            file_part("sheet.csv", Some("text/csv"), SHEET.as_bytes()),
        ],
    )
    .await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["format"], "csv");
    assert_eq!(report["committed"], true);
    assert_eq!(report["mapping"]["preset"], Value::Null);
    assert_eq!(
        report["mapping"]["spec"]["fields"]["name"]["from"],
        json!(["Given", "Family"])
    );
    assert_eq!(report["unmapped_columns"], json!(["Fax"]));
    assert_eq!(report["bytes"], SHEET.len());
    let edsger = by_external_id(&app, "sheet-Edsger").await;
    assert_eq!(
        [
            &edsger["name"],
            &edsger["birth_date"],
            &edsger["lifecycle_stage"]
        ],
        [
            &json!("Edsger Dijkstra"),
            &json!("1930-05-11"),
            &json!("stable")
        ]
    );
    let barbara = by_external_id(&app, "sheet-Barbara").await;
    assert_eq!(
        [
            &barbara["name"],
            &barbara["birth_date"],
            &barbara["lifecycle_stage"]
        ],
        [&json!("Barbara Liskov"), &Value::Null, &json!("prospect")]
    );

    // NDJSON, async: its format told by the file's name (curl sends a file it cannot type
    // as `application/octet-stream`), dotted paths into nested objects.
    let ndjson = concat!(
        r#"{"id": "n-1", "name": {"first": "Ada", "last": "Lovelace"}, "contact": {"email": "ada@form.example"}, "score": 3}"#,
        "\n",
        r#"{"id": "n-2", "name": {"first": "Grace", "last": "Hopper"}, "contact": {"email": "grace@form.example"}}"#,
        "\n"
    );
    let mapping = json!({"fields": {
        "external_id": {"from": "id", "prefix": "form-"},
        "name": {"from": ["name.first", "name.last"]},
        "email": {"from": "contact.email"}
    }});
    let res = import(
        &app,
        "async=true&mode=upsert",
        &[
            mapping_part(&mapping),
            file_part(
                "people.ndjson",
                Some("application/octet-stream"),
                ndjson.as_bytes(),
            ),
        ],
    )
    .await;
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    assert_eq!(job["format"], "ndjson");
    assert_eq!(job["mode"], "upsert");
    assert_eq!(
        job["mapping"]["spec"]["fields"]["email"]["from"],
        json!(["contact.email"])
    );
    let done = settled(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(counts(&done), [2, 2, 0, 0, 0], "{done}");
    assert_eq!(done["unmapped_columns"], json!(["score"]));
    let ada = by_external_id(&app, "form-n-1").await;
    assert_eq!(
        [&ada["name"], &ada["email"]],
        [&json!("Ada Lovelace"), &json!("ada@form.example")]
    );
    let grace = by_external_id(&app, "form-n-2").await;
    assert_eq!(
        [&grace["name"], &grace["email"]],
        [&json!("Grace Hopper"), &json!("grace@form.example")]
    );

    // A preset from the query with the file as a form: HubSpot's sample, every row in.
    let sample = std::fs::read(format!(
        "{}/tests/fixtures/imports/hubspot_contacts.csv",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let res = import(
        &app,
        "preset=hubspot_contacts",
        &[file_part("hubspot_contacts.csv", None, &sample)],
    )
    .await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [3, 3, 0, 0, 0], "{report}");
    assert_eq!(report["mapping"]["preset"], "hubspot_contacts");
    assert_eq!(
        by_external_id(&app, "hubspot-contact-52").await["email"],
        "grace@example.com"
    );
    // The same file sent again, as a body this time, is the same import.
    let res = app
        .post("/v1/imports/customers?preset=hubspot_contacts")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body(sample)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let replayed = expect_json(res, StatusCode::OK).await;
    assert_eq!(replayed["id"], report["id"]);
    assert_eq!(app.count("customers").await, 7);
}

#[actix_web::test]
async fn a_form_dry_run_a_gzip_part_and_a_preview_write_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Manager);

    // A dry run of a compressed file part: checked in full, nothing kept.
    let res = import(
        &app,
        "dry_run=true",
        &[
            mapping_part(&sheet_mapping()),
            file_part(
                "sheet.csv.gz",
                Some("application/gzip"),
                &gzip(SHEET.as_bytes()),
            ),
        ],
    )
    .await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["committed"], false);
    assert_eq!(report["bytes"], SHEET.len());

    // A preview: the first row mapped and checked, with the mapping part.
    let body = form(&[
        mapping_part(&sheet_mapping()),
        file_part("sheet.csv", Some("text/csv"), SHEET.as_bytes()),
    ]);
    let res = send(
        &app,
        &token,
        "/v1/imports/customers/preview",
        "limit=1",
        body,
    )
    .await;
    let preview = expect_json(res, StatusCode::OK).await;
    assert_eq!(preview["format"], "csv");
    assert_eq!(
        preview["columns"],
        json!(["Given", "Family", "Born", "Status", "Fax"])
    );
    assert_eq!(preview["unmapped_columns"], json!(["Fax"]));
    assert_eq!(preview["valid"], 1);
    assert_eq!(preview["invalid"], 0);
    assert_eq!(
        preview["rows"],
        json!([{"line": 2, "errors": [], "object": {"external_id": "sheet-Edsger",
            "name": "Edsger Dijkstra", "birth_date": "1930-05-11",
            "lifecycle_stage": "stable"}}])
    );
    // A preview's row with a problem names it.
    let bad = SHEET.replace("11.05.1930", "1930-05-11");
    let body = form(&[
        mapping_part(&sheet_mapping()),
        file_part("sheet.csv", Some("text/csv"), bad.as_bytes()),
    ]);
    let res = send(&app, &token, "/v1/imports/customers/preview", "", body).await;
    let preview = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        (preview["valid"].as_i64(), preview["invalid"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(preview["rows"][0]["errors"][0]["field"], "birth_date");
    assert_eq!(app.count("customers").await, 0);
    assert_eq!(app.count("audit_events").await, 0);
}

#[actix_web::test]
async fn bad_forms_are_refused_with_a_problem_and_write_nothing() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_MAX_BYTES", "64KiB")]).await;
    let file = || file_part("sheet.csv", Some("text/csv"), SHEET.as_bytes());
    let mapping = || mapping_part(&sheet_mapping());
    let check =
        async |query: &str, parts: &[Part<'_>], status: StatusCode, code: &str, named: &[&str]| {
            let res = import_chunked(&app, query, parts).await;
            let problem = expect_problem(res, status, code).await;
            assert_eq!(fields(&problem), named, "{problem}");
            problem
        };

    // No file part; two; the mapping after the file; a part an import does not take.
    let problem = check(
        "",
        &[mapping()],
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["file"],
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no `file` part"),
        "{problem}"
    );
    check(
        "",
        &[mapping(), file(), file()],
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["file"],
    )
    .await;
    check(
        "",
        &[file(), mapping()],
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["mapping"],
    )
    .await;
    let notes = Part {
        name: Some("notes"),
        filename: None,
        content_type: None,
        body: b"hello".to_vec(),
    };
    check(
        "",
        &[notes, file()],
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["notes"],
    )
    .await;
    let twice = [mapping(), mapping(), file()];
    check(
        "",
        &twice,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["mapping"],
    )
    .await;

    // A mapping part that is not JSON, or names a field that is not one; a second mapping
    // named in the query.
    let broken = Part {
        body: b"{\"fields\": ".to_vec(),
        ..mapping()
    };
    check(
        "",
        &[broken, file()],
        StatusCode::BAD_REQUEST,
        "malformed_json",
        &["mapping"],
    )
    .await;
    let latin1 = Part {
        body: b"{\"fields\": {\"name\": {\"from\": \"\xe9\"}}}".to_vec(),
        ..mapping()
    };
    check(
        "",
        &[latin1, file()],
        StatusCode::BAD_REQUEST,
        "malformed_json",
        &["mapping"],
    )
    .await;
    let unknown = mapping_part(&json!({"fields": {"shoe_size": {"from": "Given"}}}));
    check(
        "",
        &[unknown, file()],
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["mapping.fields.shoe_size"],
    )
    .await;
    let missing = mapping_part(&json!({"fields": {"name": {"from": "Surname"}}}));
    let problem = check(
        "",
        &[missing, file()],
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
        &["body"],
    )
    .await;
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("`Surname`"), "{problem}");
    check(
        "preset=hubspot_contacts",
        &[mapping(), file()],
        StatusCode::BAD_REQUEST,
        "invalid_query",
        &["preset"],
    )
    .await;
    check(
        "mapping=%7B%7D",
        &[mapping(), file()],
        StatusCode::BAD_REQUEST,
        "invalid_query",
        &["mapping"],
    )
    .await;

    // A file part of another type, or none and a name that does not tell.
    check(
        "",
        &[
            mapping(),
            file_part("sheet.pdf", Some("application/pdf"), b"%PDF"),
        ],
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        &[],
    )
    .await;
    check(
        "",
        &[file_part(
            "export.txt",
            Some("application/octet-stream"),
            SHEET.as_bytes(),
        )],
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        &[],
    )
    .await;

    // Over the limits: the file part (as sent and once inflated), the mapping part.
    let big = format!("Given,Family\n{}", "Ada,Lovelace\n".repeat(6000));
    // Declared too large: refused before anything is read.
    let res = import(
        &app,
        "",
        &[file_part("big.csv", Some("text/csv"), big.as_bytes())],
    )
    .await;
    expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    check(
        "",
        &[
            mapping(),
            file_part("big.csv", Some("text/csv"), big.as_bytes()),
        ],
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &[],
    )
    .await;
    let bomb = gzip(big.as_bytes());
    assert!(bomb.len() < 64 * 1024);
    check(
        "",
        &[file_part("big.csv.gz", None, &bomb)],
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &[],
    )
    .await;
    let huge = Part {
        body: vec![b' '; (1 << 20) + 1],
        ..mapping()
    };
    check(
        "",
        &[huge, file()],
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &[],
    )
    .await;

    // A part without a name, a form without a boundary, a form compressed as a whole.
    let nameless = Part {
        name: None,
        ..file()
    };
    check("", &[nameless], StatusCode::BAD_REQUEST, "bad_request", &[]).await;
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "multipart/form-data")
        .body(form(&[file()]))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "bad_request").await;
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("Content-Encoding", "gzip")
        .body(gzip(&form(&[file()])))
        .send()
        .await
        .unwrap();
    expect_problem(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    // The preview refuses the same forms.
    let token = app.token(Role::Manager);
    let res = send(
        &app,
        &token,
        "/v1/imports/customers/preview",
        "",
        form(&[mapping()]),
    )
    .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&problem), ["file"]);

    // Who may send: a token, and the resource's write permission.
    let res = app
        .post("/v1/imports/customers")
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(&[file()]))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let viewer = app.token(Role::Viewer);
    let res = send(&app, &viewer, "/v1/imports/customers", "", form(&[file()])).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;

    assert_eq!(app.count("customers").await, 0);
}
