//! Mapping imports: each preset's sample export imported with every field checked, previews
//! that write nothing, bad mappings named, value maps, dates, blanks kept or cleared, saved
//! mappings (versions, If-Match, roles, bad input), NDJSON dotted paths, and an async job
//! whose error file keeps the source columns.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};
use crate::imports::{counts, settled};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/imports/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Sends a file to `path` with the query pairs given.
async fn send_file(
    app: &TestApp,
    token: &str,
    path: &str,
    query: &[(&str, &str)],
    content_type: &str,
    body: String,
) -> reqwest::Response {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query)
        .finish();
    app.post(&format!("{path}?{query}"))
        .bearer_auth(token)
        .header("Content-Type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn import_csv(app: &TestApp, query: &[(&str, &str)], body: String) -> reqwest::Response {
    send_file(
        app,
        &app.token(Role::Manager),
        "/v1/imports/customers",
        query,
        "text/csv",
        body,
    )
    .await
}

async fn by_external_id(app: &TestApp, id: &str) -> Value {
    app.get_ok(
        &format!("/v1/customers/by-external-id/{id}"),
        &app.token(Role::Admin),
    )
    .await
}

/// The fields of a customer this module checks, as one object.
fn shown(customer: &Value) -> Value {
    let address = &customer["address"];
    json!({
        "kind": customer["kind"], "name": customer["name"],
        "organization_name": customer["organization_name"], "email": customer["email"],
        "phone": customer["phone"], "occupation": customer["occupation"],
        "lifecycle_stage": customer["lifecycle_stage"], "source": customer["source"],
        "birth_date": customer["birth_date"], "tags": customer["tags"],
        "consent_email": customer["consent"]["email"]["granted"],
        "address": if address.is_null() { Value::Null } else { json!({
            "line1": address["line1"], "line2": address["line2"], "city": address["city"],
            "region": address["region"], "postal_code": address["postal_code"],
            "country": address["country"]}) },
    })
}

fn person(overrides: Value) -> Value {
    let mut base = json!({
        "kind": "individual", "name": null, "organization_name": null, "email": null,
        "phone": null, "occupation": null, "lifecycle_stage": "prospect", "source": null,
        "birth_date": null, "tags": [], "consent_email": false, "address": null,
    });
    for (k, v) in overrides.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

fn address(line1: Value, city: &str, region: Value, postal: Value, country: &str) -> Value {
    json!({"line1": line1, "line2": null, "city": city, "region": region,
           "postal_code": postal, "country": country})
}

#[actix_web::test]
async fn every_preset_sample_imports_with_every_field_mapped() {
    let app = TestApp::spawn().await;
    let presets = app
        .get_ok("/v1/import-mappings/presets", &app.token(Role::Viewer))
        .await;
    let keys: Vec<&str> = presets["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "hubspot_contacts",
            "hubspot_companies",
            "salesforce_contacts",
            "salesforce_accounts",
            "twenty_people",
            "twenty_companies"
        ]
    );
    let london = |line1: &str, postal: &str| {
        address(
            json!(line1),
            "London",
            json!("England"),
            json!(postal),
            "GB",
        )
    };

    // HubSpot contacts: names joined, stages mapped, countries named, the owner ignored.
    let report = expect_json(
        import_csv(
            &app,
            &[("preset", "hubspot_contacts")],
            fixture("hubspot_contacts.csv"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&report), [3, 3, 0, 0, 0], "{report}");
    assert_eq!(report["mapping"]["preset"], "hubspot_contacts");
    assert_eq!(report["unmapped_columns"], json!([]));
    assert_eq!(
        shown(&by_external_id(&app, "hubspot-contact-51").await),
        person(json!({"name": "Ada Lovelace", "email": "ada@example.com",
            "phone": "+442079460958", "occupation": "Analyst",
            "organization_name": "Analytical Engines Ltd", "source": "hubspot",
            "address": london("12 St James's Square", "SW1Y 4JH")}))
    );
    assert_eq!(
        shown(&by_external_id(&app, "hubspot-contact-52").await),
        person(json!({"name": "Grace Hopper", "email": "grace@example.com",
            "phone": "+49301234567", "occupation": "Rear Admiral",
            "organization_name": "Navy Labs", "lifecycle_stage": "stable", "source": "hubspot",
            "address": address(json!("Unter den Linden 1"), "Berlin", json!("Berlin"),
                json!("10117"), "DE")}))
    );
    assert_eq!(
        shown(&by_external_id(&app, "hubspot-contact-53").await),
        person(json!({"name": "Alan Turing", "email": "alan@example.com",
            "lifecycle_stage": "commitment", "source": "hubspot"}))
    );

    // HubSpot companies: organizations, the industry a tag.
    let report = expect_json(
        import_csv(
            &app,
            &[("preset", "hubspot_companies")],
            fixture("hubspot_companies.csv"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["unmapped_columns"], json!([]), "{report}");
    assert_eq!(
        shown(&by_external_id(&app, "hubspot-company-901").await),
        person(
            json!({"kind": "organization", "name": "Analytical Engines Ltd",
            "organization_name": "Analytical Engines Ltd", "phone": "+442079460100",
            "lifecycle_stage": "stable", "source": "hubspot", "tags": ["computer software"],
            "address": address(json!("1 Mill Lane"), "Cambridge", json!("England"),
                json!("CB2 1RX"), "GB")})
        )
    );
    assert_eq!(
        shown(&by_external_id(&app, "hubspot-company-902").await),
        person(
            json!({"kind": "organization", "name": "Difference Works GmbH",
            "organization_name": "Difference Works GmbH", "phone": "+49301234568",
            "source": "hubspot", "tags": ["machinery"],
            "address": address(json!("Friedrichstrasse 10"), "Berlin", json!("Berlin"),
                json!("10117"), "DE")})
        )
    );

    // Salesforce contacts: a birth date read, an email opt-out turned into no consent.
    let report = expect_json(
        import_csv(
            &app,
            &[("preset", "salesforce_contacts")],
            fixture("salesforce_contacts.csv"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["unmapped_columns"], json!([]), "{report}");
    assert_eq!(
        shown(&by_external_id(&app, "salesforce-0035g00000A1b2cAAB").await),
        person(
            json!({"name": "Ada Lovelace", "email": "ada@salesforce.example",
            "phone": "+442079460958", "occupation": "Analyst", "source": "Web",
            "birth_date": "1985-12-10", "address": london("12 St James's Square", "SW1Y 4JH")})
        )
    );
    assert_eq!(
        shown(&by_external_id(&app, "salesforce-0035g00000A1b2dAAB").await),
        person(
            json!({"name": "Charles Babbage", "email": "charles@salesforce.example",
            "occupation": "Engineer", "source": "salesforce"})
        )
    );

    // Salesforce accounts, as Data Loader exports them: the API names in capitals, every
    // value quoted; the account type as the stage.
    let report = expect_json(
        import_csv(
            &app,
            &[("preset", "salesforce_accounts")],
            fixture("salesforce_accounts.csv"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["unmapped_columns"], json!([]), "{report}");
    assert_eq!(
        shown(&by_external_id(&app, "salesforce-0015g00000X9y8zAAA").await),
        person(
            json!({"kind": "organization", "name": "Analytical Engines Ltd",
            "organization_name": "Analytical Engines Ltd", "phone": "+442079460100",
            "lifecycle_stage": "stable", "source": "Partner Referral", "tags": ["technology"],
            "address": address(json!("1 Mill Lane"), "Cambridge", json!("England"),
                json!("CB2 1RX"), "GB")})
        )
    );
    assert_eq!(
        shown(&by_external_id(&app, "salesforce-0015g00000X9y9AAAQ").await),
        person(
            json!({"kind": "organization", "name": "Difference Works GmbH",
            "organization_name": "Difference Works GmbH", "source": "salesforce",
            "tags": ["manufacturing"],
            "address": address(Value::Null, "Berlin", Value::Null, Value::Null, "DE")})
        )
    );

    // Twenty people and companies: the export's "Label / Part" columns of composite
    // fields, the calling code joined on.
    let report = expect_json(
        import_csv(
            &app,
            &[("preset", "twenty_people")],
            fixture("twenty_people.csv"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["unmapped_columns"], json!([]));
    let city = |city: &str| {
        json!({"line1": null, "line2": null, "city": city, "region": null,
               "postal_code": null, "country": null})
    };
    assert_eq!(
        shown(&by_external_id(&app, "twenty-person-20202020-0001-4e7c-8001-123456789abc").await),
        person(
            json!({"name": "Ada Lovelace", "email": "ada@twenty.example",
            "phone": "+442079460958", "occupation": "Analyst", "source": "twenty",
            "address": city("London")})
        )
    );
    assert_eq!(
        shown(&by_external_id(&app, "twenty-person-20202020-0002-4e7c-8001-123456789abc").await),
        person(
            json!({"name": "Grace Hopper", "email": "grace@twenty.example",
            "source": "twenty", "address": city("Arlington")})
        )
    );
    let report = expect_json(
        import_csv(
            &app,
            &[("preset", "twenty_companies")],
            fixture("twenty_companies.csv"),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(counts(&report), [2, 2, 0, 0, 0], "{report}");
    assert_eq!(report["unmapped_columns"], json!([]), "{report}");
    let mut expected = person(
        json!({"kind": "organization", "name": "Analytical Engines Ltd",
        "organization_name": "Analytical Engines Ltd", "source": "twenty",
        "address": address(json!("1 Mill Lane"), "Cambridge", json!("England"),
            json!("CB2 1RX"), "GB")}),
    );
    expected["address"]["line2"] = json!("Floor 2");
    assert_eq!(
        shown(&by_external_id(&app, "twenty-company-20202020-0101-4e7c-8001-123456789abc").await),
        expected
    );
    assert_eq!(
        shown(&by_external_id(&app, "twenty-company-20202020-0102-4e7c-8001-123456789abc").await),
        person(
            json!({"kind": "organization", "name": "Difference Works GmbH",
            "organization_name": "Difference Works GmbH", "source": "twenty",
            "address": address(json!("Friedrichstrasse 10"), "Berlin", json!("Berlin"),
                json!("10117"), "DE")})
        )
    );
    assert_eq!(app.count("customers").await, 13);
}

#[actix_web::test]
async fn a_preview_maps_and_checks_the_first_rows_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let file = fixture("hubspot_contacts.csv")
        + "54,Bad,Row,not-an-email,,Lead,,,,,,,,,,\n"
        + "55,Never,Read,never@example.com,,Lead,,,,,,,,,,\n";
    let res = send_file(
        &app,
        &app.token(Role::Agent),
        "/v1/imports/customers/preview",
        &[("preset", "hubspot_contacts"), ("limit", "4")],
        "text/csv",
        file,
    )
    .await;
    let preview = expect_json(res, StatusCode::OK).await;
    assert_eq!(preview["mapping"]["preset"], "hubspot_contacts");
    assert_eq!(
        (preview["valid"].as_i64(), preview["invalid"].as_i64()),
        (Some(3), Some(1))
    );
    let rows = preview["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "only the first rows: {preview}");
    assert_eq!(rows[0]["line"], 2);
    assert_eq!(rows[0]["object"]["name"], "Ada Lovelace");
    assert_eq!(rows[0]["object"]["lifecycle_stage"], "prospect");
    assert_eq!(rows[0]["object"]["address"]["country"], "GB");
    assert_eq!(rows[0]["object"]["external_id"], "hubspot-contact-51");
    assert_eq!(rows[0]["errors"], json!([]));
    let bad: Vec<&str> = rows[3]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(bad, ["email"], "{preview}");
    assert_eq!(preview["columns"][0], "Record ID");
    for table in [
        "customers",
        "imports",
        "audit_events",
        "events",
        "customer_lifecycle_events",
    ] {
        assert_eq!(app.count(table).await, 0, "{table} written by a preview");
    }
    // A viewer may not preview (it runs an import's checks); bad limits are named.
    let res = send_file(
        &app,
        &app.token(Role::Viewer),
        "/v1/imports/customers/preview",
        &[],
        "text/csv",
        "name\nAda\n".to_owned(),
    )
    .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    for limit in ["0", "101", "x"] {
        let res = send_file(
            &app,
            &app.token(Role::Agent),
            "/v1/imports/customers/preview",
            &[("limit", limit)],
            "text/csv",
            "name\nAda\n".to_owned(),
        )
        .await;
        let problem = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
        assert_eq!(fields(&problem), ["limit"]);
    }
    // A preset takes an export of only some of its columns (its rules are optional).
    let res = send_file(
        &app,
        &app.token(Role::Agent),
        "/v1/imports/customers/preview",
        &[("preset", "hubspot_contacts")],
        "text/csv",
        "First Name,Email,Fax\nAda,ada@example.com,0123\n".to_owned(),
    )
    .await;
    let preview = expect_json(res, StatusCode::OK).await;
    assert_eq!(preview["valid"], 1, "{preview}");
    assert_eq!(preview["unmapped_columns"], json!(["Fax"]));
    assert_eq!(
        preview["rows"][0]["object"],
        json!({"email": "ada@example.com", "kind": "individual", "name": "Ada",
               "source": "hubspot"})
    );
    // Without a mapping, a preview checks the file as it is.
    let res = send_file(
        &app,
        &app.token(Role::Agent),
        "/v1/imports/customers/preview",
        &[],
        "text/csv",
        "name,email\nAda,ada@example.com\n,bad\n".to_owned(),
    )
    .await;
    let preview = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        preview["rows"][0]["object"],
        json!({"name": "Ada", "email": "ada@example.com"})
    );
    assert_eq!(preview["invalid"], 1);
    assert_eq!(app.count("customers").await, 0);
}

#[actix_web::test]
async fn bad_mappings_are_refused_naming_what_is_wrong() {
    let app = TestApp::spawn().await;
    let file = "First Name,Last Name,Email\nAda,Lovelace,ada@example.com\n".to_owned();
    // A field the resource does not have, and a date format on a field that is no date.
    let mapping = json!({"fields": {"shoe_size": {"from": "Size"},
        "name": {"from": "First Name", "date_format": "%Y"}}})
    .to_string();
    for path in ["/v1/imports/customers", "/v1/imports/customers/preview"] {
        let res = send_file(
            &app,
            &app.token(Role::Manager),
            path,
            &[("mapping", &mapping)],
            "text/csv",
            file.clone(),
        )
        .await;
        let problem =
            expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(
            fields(&problem),
            [
                "mapping.fields.name.date_format",
                "mapping.fields.shoe_size"
            ]
        );
    }
    // Columns the file's header lacks are named, before any row is written.
    let mapping = json!({"fields": {"name": {"from": ["First Nme", "Last Name"]},
        "email": {"from": "E-mail"}}})
    .to_string();
    let res = import_csv(&app, &[("mapping", &mapping)], file.clone()).await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let text = problem.to_string();
    assert!(
        text.contains("`First Nme`") && text.contains("`E-mail`"),
        "{text}"
    );
    let res = send_file(
        &app,
        &app.token(Role::Manager),
        "/v1/imports/customers/preview",
        &[("mapping", &mapping)],
        "text/csv",
        file.clone(),
    )
    .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(problem.to_string().contains("`First Nme`"), "{problem}");
    // Not JSON, two mappings at once, unknown keys in a rule, a preset of another resource.
    let res = import_csv(&app, &[("mapping", "{\"fields\":")], file.clone()).await;
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    let res = import_csv(
        &app,
        &[
            ("mapping", "{\"fields\":{}}"),
            ("preset", "hubspot_contacts"),
        ],
        file.clone(),
    )
    .await;
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    let res = import_csv(
        &app,
        &[(
            "mapping",
            "{\"fields\":{\"name\":{\"from\":\"A\",\"colour\":1}}}",
        )],
        file.clone(),
    )
    .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        fields(&problem)[0].starts_with("mapping.fields"),
        "{problem}"
    );
    let res = send_file(
        &app,
        &app.token(Role::Manager),
        "/v1/imports/purchases",
        &[("preset", "hubspot_contacts")],
        "text/csv",
        file.clone(),
    )
    .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&problem), ["preset"]);
    let res = import_csv(&app, &[("preset", "pipedrive")], file.clone()).await;
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    let res = import_csv(
        &app,
        &[("mapping_id", "0193b0a6-7c1e-7d2a-9f3e-2b6f1c9d4ea0")],
        file,
    )
    .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&problem), ["mapping_id"]);
    assert_eq!(app.count("customers").await, 0);
}

#[actix_web::test]
async fn value_maps_dates_defaults_and_blanks_kept_or_cleared() {
    let app = TestApp::spawn().await;
    let mapping = json!({"fields": {
        "external_id": {"from": "ID", "prefix": "sheet-"},
        "name": {"from": ["Given", "Family"], "join": " "},
        "lifecycle_stage": {"from": "Status", "values": {"Lead": "prospect", "Customer": "stable"},
                            "default": "prospect"},
        "birth_date": {"from": "Born", "date_format": "%d.%m.%Y", "blank": "clear"},
        "occupation": {"from": "Job", "blank": "keep"},
        "consent.email.at": {"from": "Opted in", "date_format": "unix"},
        "consent.email.granted": {"from": "Email OK", "values": {"Y": "true", "N": "false"}},
    }, "ignore": ["Notes"]})
    .to_string();
    let file = "ID,Given,Family,Status,Born,Job,Opted in,Email OK,Notes,Fax\n\
                1,Ada,Lovelace,customer,10.12.1985,Analyst,1700000000,y,vip,0123\n\
                2,Grace,,,,,,,,\n\
                3,Bad,Date,Lead,1985-12-10,,,,,\n"
        .to_owned();
    let res = import_csv(&app, &[("mapping", &mapping)], file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [3, 2, 0, 0, 1], "{report}");
    assert_eq!(report["unmapped_columns"], json!(["Fax"]));
    assert_eq!(report["errors"][0]["line"], 4);
    assert_eq!(report["errors"][0]["field"], "birth_date");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("%d.%m.%Y")
    );
    let ada = by_external_id(&app, "sheet-1").await;
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["lifecycle_stage"], "stable", "matched ignoring case");
    assert_eq!(ada["birth_date"], "1985-12-10");
    assert_eq!(ada["occupation"], "Analyst");
    assert_eq!(ada["consent"]["email"]["at"], "2023-11-14T22:13:20Z");
    assert_eq!(ada["consent"]["email"]["granted"], true);
    let grace = by_external_id(&app, "sheet-2").await;
    assert_eq!(grace["name"], "Grace");
    assert_eq!(grace["lifecycle_stage"], "prospect", "the default");

    // Upserting blanks: `keep` leaves the occupation, `clear` empties the birth date.
    let file =
        "ID,Given,Family,Status,Born,Job,Opted in,Email OK,Notes\n1,Ada,Lovelace,Customer,,,,,\n"
            .to_owned();
    let res = import_csv(&app, &[("mapping", &mapping), ("mode", "upsert")], file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [1, 0, 1, 0, 0], "{report}");
    let ada = by_external_id(&app, "sheet-1").await;
    assert_eq!(ada["occupation"], "Analyst", "kept");
    assert_eq!(ada["birth_date"], Value::Null, "cleared");
    assert_eq!(
        ada["consent"]["email"]["at"], "2023-11-14T22:13:20Z",
        "kept"
    );
}

#[actix_web::test]
async fn saved_mappings_are_versioned_audited_and_guarded() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);
    // A preset copied into a saved mapping.
    let res = app
        .send(
            Method::POST,
            "/v1/import-mappings",
            &manager,
            &json!({"name": "HubSpot, sales", "preset": "hubspot_contacts"}),
        )
        .await;
    assert_eq!(res.headers()["etag"], "\"1\"");
    let saved = expect_json(res, StatusCode::CREATED).await;
    let id = saved["id"].as_str().unwrap().to_owned();
    assert_eq!(saved["resource"], "customers");
    assert_eq!(saved["version"], 1);
    assert_eq!(
        saved["mapping"]["fields"]["email"]["from"],
        json!(["Email"])
    );
    let url = format!("/v1/import-mappings/{id}");

    // Edited by a merge patch: one value added, one rule dropped; a new version.
    let patch = json!({"mapping": {"fields": {"lifecycle_stage": {"values": {"Other": "prospect"}},
        "phone": null}}, "description": "The sales team's export"});
    let res = app
        .patch(&url)
        .bearer_auth(&manager)
        .header("If-Match", "\"1\"")
        .json(&patch)
        .send()
        .await
        .unwrap();
    let edited = expect_json(res, StatusCode::OK).await;
    assert_eq!(edited["version"], 2);
    assert_eq!(
        edited["mapping"]["fields"]["lifecycle_stage"]["values"]["Other"],
        "prospect"
    );
    assert_eq!(
        edited["mapping"]["fields"]["lifecycle_stage"]["values"]["Lead"],
        "prospect"
    );
    assert!(edited["mapping"]["fields"].get("phone").is_none());
    // A stale If-Match loses nothing.
    let res = app
        .patch(&url)
        .bearer_auth(&manager)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    // Every version stays readable.
    let versions = app.get_ok(&format!("{url}/versions"), &manager).await;
    let listed: Vec<i64> = versions["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [2, 1]);
    let first = app.get_ok(&format!("{url}/versions/1"), &manager).await;
    assert!(first["mapping"]["fields"].get("phone").is_some());
    assert_eq!(first["description"], Value::Null);

    // An import by id names the version it ran with, and runs the edited rules.
    let file = fixture("hubspot_contacts.csv").replace(",Evangelist,", ",Other,");
    let res = import_csv(&app, &[("mapping_id", &id)], file).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [3, 3, 0, 0, 0], "{report}");
    assert_eq!(report["mapping"]["mapping_id"], id.as_str());
    assert_eq!(report["mapping"]["version"], 2);
    assert_eq!(report["unmapped_columns"], json!(["Phone Number"]));
    let alan = by_external_id(&app, "hubspot-contact-53").await;
    assert_eq!(alan["lifecycle_stage"], "prospect");
    assert_eq!(
        by_external_id(&app, "hubspot-contact-51").await["phone"],
        Value::Null
    );

    // Replaced as a whole (PUT), then read and listed.
    let res = app
        .request(Method::PUT, &url)
        .bearer_auth(&manager)
        .header("If-Match", "\"2\"")
        .json(&json!({"name": "Sheet", "mapping": {"fields": {"name": {"from": "Full name"}}}}))
        .send()
        .await
        .unwrap();
    let replaced = expect_json(res, StatusCode::OK).await;
    assert_eq!(replaced["version"], 3);
    assert_eq!(replaced["description"], Value::Null);
    let viewer = app.token(Role::Viewer);
    let res = app.get(&url).bearer_auth(&viewer).send().await.unwrap();
    assert_eq!(res.headers()["etag"], "\"3\"");
    let list = app
        .get_ok("/v1/import-mappings?resource=customers", &viewer)
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Bad input writes nothing: each field named.
    let bad = [
        (
            json!({"name": " ", "resource": "customers", "mapping": {"fields": {}}}),
            "name",
        ),
        (json!({"name": "A", "resource": "customers"}), "mapping"),
        (
            json!({"name": "A", "resource": "customers", "mapping": {"fields": {"colour": {"from": "C"}}}}),
            "mapping.fields.colour",
        ),
        (
            json!({"name": "A", "resource": "purchases", "preset": "hubspot_contacts"}),
            "resource",
        ),
    ];
    let res = app
        .send(
            Method::POST,
            "/v1/import-mappings",
            &manager,
            &json!({"name": "A"}),
        )
        .await;
    let problem = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&problem), ["resource", "mapping"]);
    for (body, field) in bad {
        let res = app
            .send(Method::POST, "/v1/import-mappings", &manager, &body)
            .await;
        let problem =
            expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&problem), [field], "{body}");
    }
    let res = app
        .send(
            Method::POST,
            "/v1/import-mappings",
            &manager,
            &json!({"name": "A", "resource": "customers", "mapping": {"fields": {}}, "shade": 1}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    let res = app
        .post("/v1/import-mappings")
        .bearer_auth(&manager)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app
        .send(
            Method::POST,
            "/v1/import-mappings",
            &manager,
            &json!({"name": "sheet", "resource": "customers", "mapping": {"fields": {}}}),
        )
        .await;
    expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    let res = app
        .patch(&url)
        .bearer_auth(&manager)
        .json(&json!({"mapping": {"fields": {"name": {"from": 3}}}}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    // Roles: a viewer reads but may not write; a client with another resource's write
    // permission may not touch a customers mapping; no token is a 401.
    let res = app
        .send(
            Method::POST,
            "/v1/import-mappings",
            &viewer,
            &json!({"name": "V", "preset": "twenty_people"}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let client = app
        .client_token("purchases", &["purchases:read", "purchases:write"])
        .await;
    let res = app.get(&url).bearer_auth(&client).send().await.unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.delete(&url, &client, None).await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app.get("/v1/import-mappings").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.count("import_mappings").await, 1);

    // Deleted (with If-Match); imports that ran with it keep their copy.
    let res = app.delete(&url, &manager, Some("\"2\"")).await;
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app.delete(&url, &manager, Some("\"3\"")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app.get(&url).bearer_auth(&manager).send().await.unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let import = app
        .get_ok(
            &format!("/v1/imports/{}", report["id"].as_str().unwrap()),
            &manager,
        )
        .await;
    assert_eq!(import["mapping"]["version"], 2);
    assert_eq!(app.count("import_mapping_versions").await, 0);
    let actions = [
        "import_mapping.created",
        "import_mapping.updated",
        "import_mapping.deleted",
    ];
    for (action, n) in actions.into_iter().zip([1, 2, 1]) {
        assert_eq!(
            app.count(&format!("audit_events WHERE action = '{action}'"))
                .await,
            n,
            "{action}"
        );
    }
}

#[actix_web::test]
async fn ndjson_rows_map_from_dotted_paths_into_nested_objects() {
    let app = TestApp::spawn().await;
    let res = send_file(
        &app,
        &app.token(Role::Manager),
        "/v1/imports/customers",
        &[("preset", "twenty_people")],
        "application/x-ndjson",
        fixture("twenty_people.ndjson").replace("grace@twenty.example", "grace-at-example"),
    )
    .await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [2, 1, 0, 0, 1], "{report}");
    assert_eq!(report["unmapped_columns"], json!(["score"]));
    assert_eq!(report["errors"][0]["field"], "email");
    let ada = by_external_id(&app, "twenty-person-20202020-0001-4e7c-8001-123456789abc").await;
    assert_eq!(ada["name"], "Ada Lovelace");
    assert_eq!(ada["email"], "ada@twenty.example");
    assert_eq!(ada["phone"], "+442079460958");
    assert_eq!(ada["occupation"], "Analyst");
    assert_eq!(ada["address"]["city"], "London");
    // The error file gives the row back as it was sent, nested objects and all.
    let url = report["errors_url"].as_str().unwrap();
    let text = app
        .get(url)
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let row: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(row["name"]["firstName"], "Grace");
    assert_eq!(row["emails"]["primaryEmail"], "grace-at-example");
    assert_eq!(row["_line"], 2);
}

#[actix_web::test]
async fn an_async_mapped_import_keeps_source_columns_in_its_error_file() {
    let app = TestApp::spawn_with(&[("RAPPORT_IMPORT_INTERVAL", "1s")]).await;
    let file = fixture("hubspot_contacts.csv").replace("grace@example.com", "grace-at-example");
    let res = send_file(
        &app,
        &app.token(Role::Manager),
        "/v1/imports/customers",
        &[("preset", "hubspot_contacts"), ("async", "true")],
        "text/csv",
        file,
    )
    .await;
    let job = expect_json(res, StatusCode::ACCEPTED).await;
    assert_eq!(job["mapping"]["preset"], "hubspot_contacts");
    let done = settled(&app, job["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(counts(&done), [3, 2, 0, 0, 1]);
    // The failed row in the source's own columns: fixed, it goes back as it is.
    let url = done["errors_url"].as_str().unwrap();
    let errors = app
        .get(url)
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header = errors.lines().next().unwrap();
    assert!(
        header.starts_with("_line,_error,Record ID,First Name,Last Name,Email,"),
        "{header}"
    );
    assert!(errors.contains("grace-at-example"), "{errors}");
    let fixed = errors.replace("grace-at-example", "grace@example.com");
    let res = import_csv(&app, &[("preset", "hubspot_contacts")], fixed).await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(counts(&report), [1, 1, 0, 0, 0], "{report}");
    assert_eq!(
        by_external_id(&app, "hubspot-contact-52").await["email"],
        "grace@example.com"
    );
    // A dry run with the mapping checks and writes nothing.
    let res = import_csv(
        &app,
        &[("preset", "hubspot_contacts"), ("dry_run", "true")],
        fixture("hubspot_contacts.csv").replace("51,", "61,"),
    )
    .await;
    let report = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(report["committed"], false);
    assert_eq!(app.count("customers").await, 3);
}
