//! The customer record: creation, validation, updates, masking, deletion, export, erasure.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

pub async fn create(app: &TestApp, body: Value) -> Value {
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &app.token(Role::Agent),
            &body,
        )
        .await;
    expect_json(res, StatusCode::CREATED).await
}

fn full() -> Value {
    json!({
        "kind": "individual",
        "name": "  Ada Lovelace ",
        "organization_name": "Analytical Engines Ltd",
        "email": "Ada@Example.com",
        "phone": "030 12345678",
        "address": {"line1": "Unter den Linden 1", "city": "Berlin", "postal_code": "10117", "country": "de"},
        "region_type": "urban",
        "birth_date": "1990-12-10",
        "gender": "female",
        "occupation": "Engineer",
        "income_band": "upper_middle",
        "national_id": "T22000129",
        "preferred_channel": "email",
        "consent": {"email": {"granted": true, "at": "2026-01-02T03:04:05Z"}, "sms": {"granted": false}},
        "tags": ["VIP", "Newsletter", "vip"],
        "attributes": {"plan": "gold", "seats": 5, "beta": true},
        "source": "webshop",
        "external_id": "shop-1",
        "lifecycle_stage": "acquaintance",
        "lifecycle_reason": "first purchase",
        "relationship_level": "accountable",
        "qualification": {"money": true, "authority": true, "need": true}
    })
}

#[actix_web::test]
async fn a_customer_is_created_with_every_field_normalised() {
    let app = TestApp::spawn().await;
    let (manager_id, _) = app.user(Role::Manager).await;
    let mut body = full();
    body["account_manager_id"] = json!(manager_id);
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &app.token(Role::Agent),
            &body,
        )
        .await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let c = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(
        location,
        format!("/v1/customers/{}", c["id"].as_str().unwrap())
    );
    assert_eq!(c["name"], "Ada Lovelace");
    assert_eq!(c["email"], "Ada@Example.com");
    assert_eq!(c["phone"], "+493012345678");
    assert_eq!(c["address"]["country"], "DE");
    assert_eq!(c["address"]["line2"], Value::Null);
    assert!(c["age"].as_u64().unwrap() >= 35);
    assert_eq!(c["tags"], json!(["vip", "newsletter"]));
    assert_eq!(
        c["attributes"],
        json!({"plan": "gold", "seats": 5, "beta": true})
    );
    assert_eq!(
        c["consent"]["email"],
        json!({"granted": true, "at": "2026-01-02T03:04:05Z"})
    );
    assert_eq!(c["consent"]["sms"], json!({"granted": false, "at": null}));
    assert_eq!(c["prospect_grade"], "ideal");
    assert_eq!(c["account_manager_id"], json!(manager_id));
    // An agent does not hold pii:read: the ID number is masked.
    assert_eq!(c["national_id"], "****0129");
    assert_eq!(c["version"], 1);
    assert!(c["deleted_at"].is_null() && c["erased_at"].is_null());

    let history = app
        .get_ok(&format!("{location}/lifecycle"), &app.token(Role::Viewer))
        .await;
    let first = &history["data"][0];
    assert!(first["from"].is_null());
    assert_eq!(first["to"], "acquaintance");
    assert_eq!(first["reason"], "first purchase");
    assert_eq!(first["actor_id"], "test-agent");

    // Defaults.
    let c = create(&app, json!({"name": "Bo"})).await;
    assert_eq!(c["kind"], "individual");
    assert_eq!(c["lifecycle_stage"], "prospect");
    assert_eq!(c["relationship_level"], "basic");
    assert_eq!(c["tags"], json!([]));
    assert_eq!(c["attributes"], json!({}));
    assert!(c["prospect_grade"].is_null() && c["address"].is_null());
}

#[actix_web::test]
async fn pii_is_shown_only_to_callers_with_pii_read() {
    let app = TestApp::spawn().await;
    let c = create(&app, json!({"name": "P", "national_id": "X1234567"})).await;
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());
    for (role, shown) in [
        (Role::Viewer, "****4567"),
        (Role::Agent, "****4567"),
        (Role::Manager, "X1234567"),
        (Role::Admin, "X1234567"),
    ] {
        let c = app.get_ok(&path, &app.token(role)).await;
        assert_eq!(c["national_id"], shown, "{role}");
    }
    let audit = app
        .get_ok("/v1/audit?entity_type=customer", &app.token(Role::Admin))
        .await;
    let raw = audit.to_string();
    assert!(
        raw.contains("****4567") && !raw.contains("X1234567"),
        "masked in the audit log"
    );
}

#[actix_web::test]
async fn every_field_is_validated_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "name"),
        (json!({"name": ""}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "A", "kind": "robot"}), "kind"),
        (json!({"name": "A", "kind": null}), "kind"),
        (
            json!({"name": "A", "organization_name": "o".repeat(201)}),
            "organization_name",
        ),
        (json!({"name": "A", "email": "not-an-email"}), "email"),
        (json!({"name": "A", "phone": "12"}), "phone"),
        (json!({"name": "A", "phone": "030 12345678"}), "phone"),
        (
            json!({"name": "A", "address": {"country": "Germany"}}),
            "address.country",
        ),
        (
            json!({"name": "A", "address": {"postal_code": "1".repeat(21)}}),
            "address.postal_code",
        ),
        (
            json!({"name": "A", "address": {"town": "X"}}),
            "address.town",
        ),
        (
            json!({"name": "A", "region_type": "suburban"}),
            "region_type",
        ),
        (
            json!({"name": "A", "birth_date": "2999-01-01"}),
            "birth_date",
        ),
        (
            json!({"name": "A", "birth_date": "1850-01-01"}),
            "birth_date",
        ),
        (
            json!({"name": "A", "birth_date": "10/12/1990"}),
            "birth_date",
        ),
        (json!({"name": "A", "gender": "x"}), "gender"),
        (
            json!({"name": "A", "occupation": "o".repeat(101)}),
            "occupation",
        ),
        (json!({"name": "A", "income_band": "rich"}), "income_band"),
        (
            json!({"name": "A", "national_id": "<script>"}),
            "national_id",
        ),
        (
            json!({"name": "A", "preferred_channel": "pigeon"}),
            "preferred_channel",
        ),
        (
            json!({"name": "A", "consent": {"email": {"granted": "yes"}}}),
            "consent.email.granted",
        ),
        (
            json!({"name": "A", "consent": {"sms": {"granted": true, "at": "2999-01-01T00:00:00Z"}}}),
            "consent.sms.at",
        ),
        (json!({"name": "A", "tags": ["ok", ""]}), "tags"),
        (json!({"name": "A", "tags": ["a,b"]}), "tags"),
        (json!({"name": "A", "tags": vec!["t"; 51]}), "tags"),
        (json!({"name": "A", "tags": "vip"}), "tags"),
        (json!({"name": "A", "attributes": [1]}), "attributes"),
        (
            json!({"name": "A", "attributes": {"bad key": 1}}),
            "attributes",
        ),
        (
            json!({"name": "A", "attributes": {"big": "x".repeat(17_000)}}),
            "attributes",
        ),
        (json!({"name": "A", "source": "s".repeat(101)}), "source"),
        (
            json!({"name": "A", "external_id": "has/slash"}),
            "external_id",
        ),
        (
            json!({"name": "A", "account_manager_id": "not-a-uuid"}),
            "account_manager_id",
        ),
        (
            json!({"name": "A", "account_manager_id": "0193b0a6-0000-7000-8000-000000000001"}),
            "account_manager_id",
        ),
        (
            json!({"name": "A", "lifecycle_stage": "friend"}),
            "lifecycle_stage",
        ),
        (
            json!({"name": "A", "relationship_level": "close"}),
            "relationship_level",
        ),
        (
            json!({"name": "A", "qualification": {"money": true}}),
            "qualification",
        ),
        (
            json!({"name": "A", "qualification": {"money": true, "authority": true, "need": true, "luck": true}}),
            "qualification.luck",
        ),
        (
            json!({"name": "A", "prospect_grade": "ideal"}),
            "prospect_grade",
        ),
        (
            json!({"name": "A", "id": "0193b0a6-0000-7000-8000-000000000001"}),
            "id",
        ),
    ];
    for (body, field) in cases {
        let res = app.send(Method::POST, "/v1/customers", &agent, &body).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), [field], "{body}");
    }
    assert_eq!(app.count("customers").await, 0);
    assert_eq!(app.count("customer_lifecycle_events").await, 0);
    assert_eq!(app.count("audit_events").await, 0);

    // Several bad fields: all reported at once.
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "", "email": "x", "birth_date": "2999-01-01", "tags": [""]}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["name", "email", "birth_date", "tags"]);

    // A deactivated user cannot be an account manager.
    let (manager, _) = app.user(Role::Manager).await;
    let res = app
        .post(&format!("/v1/users/{manager}/deactivate"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "A", "account_manager_id": manager}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["account_manager_id"]);
    assert_eq!(app.count("customers").await, 0);
}

#[actix_web::test]
async fn duplicates_are_409_naming_the_field() {
    let app = TestApp::spawn().await;
    create(
        &app,
        json!({"name": "A", "email": "a@example.com", "external_id": "ext-1"}),
    )
    .await;
    let agent = app.token(Role::Agent);
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "B", "email": "A@EXAMPLE.com"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["email"]);
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &agent,
            &json!({"name": "B", "external_id": "ext-1"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["external_id"]);
    let other = create(&app, json!({"name": "C"})).await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{}", other["id"].as_str().unwrap()),
            &agent,
            &json!({"email": "a@example.com"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["email"]);
    assert_eq!(app.count("customers").await, 2);
}

#[actix_web::test]
async fn updates_merge_and_are_guarded_by_if_match() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let c = create(&app, full()).await;
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());

    let res = app
        .patch(&path)
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(
            json!({
                "address": {"line1": null, "city": "Potsdam"},
                "attributes": {"beta": null, "seats": 7},
                "phone": "0331 1234567",
                "tags": ["gold"],
                "organization_name": null,
                "lifecycle_stage": "stable",
                "lifecycle_reason": "third order",
                "qualification": {"need": false},
                "consent": {"sms": {"granted": true}}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    let u = expect_json(res, StatusCode::OK).await;
    assert_eq!(u["address"]["city"], "Potsdam");
    assert!(u["address"]["line1"].is_null());
    assert_eq!(
        u["address"]["postal_code"], "10117",
        "untouched members stay"
    );
    assert_eq!(u["attributes"], json!({"plan": "gold", "seats": 7}));
    assert_eq!(u["phone"], "+493311234567");
    assert_eq!(u["tags"], json!(["gold"]));
    assert!(u["organization_name"].is_null());
    assert_eq!(u["name"], "Ada Lovelace", "absent fields stay");
    assert_eq!(u["prospect_grade"], "reachable");
    assert_eq!(u["consent"]["sms"]["granted"], true);
    assert!(u["consent"]["sms"]["at"].is_string());
    assert_eq!(u["consent"]["email"]["at"], "2026-01-02T03:04:05Z");

    let history = app.get_ok(&format!("{path}/lifecycle"), &agent).await;
    let last = &history["data"][1];
    assert_eq!(last["from"], "acquaintance");
    assert_eq!(last["to"], "stable");
    assert_eq!(last["reason"], "third order");

    // A stale version: 412, and nothing changes.
    let res = app
        .patch(&path)
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Lost Update"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let now = app.get_ok(&path, &agent).await;
    assert_eq!(now["name"], "Ada Lovelace");
    assert_eq!(now["version"], 2);

    // Required fields cannot be cleared; nothing written when the patch is bad.
    let res = app
        .send(
            Method::PATCH,
            &path,
            &agent,
            &json!({"name": null, "lifecycle_stage": null}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["name", "lifecycle_stage"]);
    let res = app
        .send(
            Method::PATCH,
            &path,
            &agent,
            &json!({"lifecycle_reason": "no change"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["lifecycle_reason"]);

    // An empty or no-op patch writes nothing.
    let res = app
        .send(
            Method::PATCH,
            &path,
            &agent,
            &json!({"name": "Ada Lovelace"}),
        )
        .await;
    assert_eq!(expect_json(res, StatusCode::OK).await["version"], 2);
    assert_eq!(app.count("audit_events").await, 2);

    let res = app
        .send(
            Method::PATCH,
            "/v1/customers/0193b0a6-0000-7000-8000-000000000001",
            &agent,
            &json!({"name": "X"}),
        )
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
}

#[actix_web::test]
async fn upsert_by_external_id_creates_then_updates() {
    let app = TestApp::spawn().await;
    let client_token = app
        .client_token("Shop", &["customers:read", "customers:write"])
        .await;
    let path = "/v1/customers/by-external-id/shop-42";
    let res = app
        .send(
            Method::PUT,
            path,
            &client_token,
            &json!({"name": "Grace", "email": "grace@example.com"}),
        )
        .await;
    assert!(
        res.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v1/customers/")
    );
    let created = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(created["external_id"], "shop-42");

    // Staff add something the integration does not know about.
    let id = created["id"].as_str().unwrap();
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            &app.token(Role::Agent),
            &json!({"tags": ["key-account"]}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;

    let res = app
        .send(
            Method::PUT,
            path,
            &client_token,
            &json!({"name": "Grace Hopper", "external_id": "shop-42"}),
        )
        .await;
    let updated = expect_json(res, StatusCode::OK).await;
    assert_eq!(updated["id"], created["id"]);
    assert_eq!(updated["name"], "Grace Hopper");
    assert_eq!(
        updated["tags"],
        json!(["key-account"]),
        "absent fields are kept"
    );
    assert_eq!(updated["email"], "grace@example.com");

    let got = app.get_ok(path, &client_token).await;
    assert_eq!(got["version"], 3);

    let res = app
        .send(
            Method::PUT,
            path,
            &client_token,
            &json!({"name": "G", "external_id": "other"}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["external_id"]);
    let res = app
        .request(Method::PUT, path)
        .bearer_auth(&client_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app
        .send(
            Method::PUT,
            "/v1/customers/by-external-id/bad%20id",
            &client_token,
            &json!({"name": "X"}),
        )
        .await;
    expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(app.count("customers").await, 1);

    // A client without customers:write may not upsert.
    let res = app
        .send(
            Method::PUT,
            path,
            &app.token(Role::Viewer),
            &json!({"name": "V"}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
}

#[actix_web::test]
async fn concurrent_upserts_of_one_external_id_make_one_customer() {
    let app = TestApp::spawn_with(&[("RAPPORT_DB_POOL_SIZE", "8")]).await;
    let agent = app.token(Role::Agent);
    let sends = (0..6).map(|i| {
        app.request(Method::PUT, "/v1/customers/by-external-id/race-1")
            .bearer_auth(&agent)
            .json(&json!({"name": format!("Racer {i}")}))
            .send()
    });
    let results = futures_util::future::join_all(sends).await;
    let mut created = 0;
    for res in results {
        let res = res.unwrap();
        match res.status() {
            StatusCode::CREATED => created += 1,
            StatusCode::OK => {}
            other => panic!("unexpected {other}: {}", res.text().await.unwrap()),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(app.count("customers").await, 1);
}

#[actix_web::test]
async fn soft_delete_and_restore_are_for_managers() {
    let app = TestApp::spawn().await;
    let (agent, manager) = (app.token(Role::Agent), app.token(Role::Manager));
    let c = create(&app, json!({"name": "Del", "email": "del@example.com"})).await;
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());

    let res = app
        .request(Method::DELETE, &path)
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .request(Method::DELETE, &path)
        .bearer_auth(&manager)
        .header("If-Match", "\"9\"")
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app
        .request(Method::DELETE, &path)
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .request(Method::DELETE, &path)
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NO_CONTENT,
        "deleting twice changes nothing"
    );

    // Gone for agents, lists included; visible to managers who ask.
    let res = app.get(&path).bearer_auth(&agent).send().await.unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let list = app.get_ok("/v1/customers", &agent).await;
    assert!(list["data"].as_array().unwrap().is_empty());
    let res = app
        .get("/v1/customers?deleted=include")
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let list = app.get_ok("/v1/customers?deleted=only", &manager).await;
    assert_eq!(list["data"][0]["id"], c["id"]);
    assert!(list["data"][0]["deleted_at"].is_string());
    let res = app
        .send(Method::PATCH, &path, &agent, &json!({"name": "X"}))
        .await;
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;

    let res = app
        .post(&format!("{path}/restore"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .post(&format!("{path}/restore"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    let restored = expect_json(res, StatusCode::OK).await;
    assert!(restored["deleted_at"].is_null());
    assert_eq!(app.get_ok(&path, &agent).await["name"], "Del");
    let actions: Vec<String> = app
        .get_ok(
            &format!("/v1/audit?entity_id={}", c["id"].as_str().unwrap()),
            &app.token(Role::Admin),
        )
        .await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions,
        ["customer.restored", "customer.deleted", "customer.created"]
    );
}

#[actix_web::test]
async fn export_holds_everything_and_erase_leaves_an_anonymous_shell() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let res = app
        .post("/v1/customers")
        .bearer_auth(&agent)
        .header("Idempotency-Key", "create-erasable")
        .json(&full())
        .send()
        .await
        .unwrap();
    let c = expect_json(res, StatusCode::CREATED).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/customers/{id}");
    app.send(
        Method::PATCH,
        &path,
        &agent,
        &json!({"lifecycle_stage": "stable", "lifecycle_reason": "told us about her twins"}),
    )
    .await;

    let res = app
        .get(&format!("{path}/export"))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let export = app
        .get_ok(&format!("{path}/export"), &app.token(Role::Manager))
        .await;
    assert_eq!(export["customer"]["national_id"], "T22000129", "unmasked");
    assert_eq!(export["lifecycle"].as_array().unwrap().len(), 2);
    assert_eq!(export["audit"].as_array().unwrap().len(), 2);
    assert!(export["exported_at"].is_string());

    let res = app
        .post(&format!("{path}/erase"))
        .bearer_auth(app.token(Role::Manager))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let admin = app.token(Role::Admin);
    let res = app
        .post(&format!("{path}/erase"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let shell = expect_json(res, StatusCode::OK).await;
    assert_eq!(shell["name"], "Erased customer");
    for field in [
        "email",
        "phone",
        "address",
        "birth_date",
        "national_id",
        "organization_name",
        "external_id",
        "occupation",
    ] {
        assert!(shell[field].is_null(), "{field} kept");
    }
    assert_eq!(shell["tags"], json!([]));
    assert_eq!(shell["attributes"], json!({}));
    assert_eq!(
        shell["lifecycle_stage"], "stable",
        "what aggregates need stays"
    );
    assert!(shell["erased_at"].is_string() && shell["deleted_at"].is_string());

    // Nothing personal is left anywhere the API can reach.
    let export = app.get_ok(&format!("{path}/export"), &admin).await;
    let raw = export.to_string();
    for secret in [
        "Lovelace",
        "T22000129",
        "ada@example.com",
        "Ada@Example.com",
        "12345678",
        "twins",
        "Unter den Linden",
    ] {
        assert!(!raw.contains(secret), "{secret} survived erasure: {raw}");
    }
    let replay = app
        .post("/v1/customers")
        .bearer_auth(&agent)
        .header("Idempotency-Key", "create-erasable")
        .json(&full())
        .send()
        .await
        .unwrap();
    assert!(
        replay.headers().get("idempotent-replayed").is_none(),
        "the kept response was dropped"
    );
    let actions = app
        .get_ok(
            &format!("/v1/audit?entity_id={id}&action=customer.erased"),
            &admin,
        )
        .await;
    assert_eq!(actions["data"].as_array().unwrap().len(), 1);

    // Erasure is final.
    let res = app
        .post(&format!("{path}/restore"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    let res = app
        .post(&format!("{path}/erase"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, StatusCode::OK).await["version"],
        shell["version"]
    );
}

#[actix_web::test]
async fn a_batch_applies_the_valid_items_and_reports_each() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    create(
        &app,
        json!({"name": "Existing", "email": "taken@example.com"}),
    )
    .await;
    let body = json!({"items": [
        {"action": "create", "customer": {"name": "One"}},
        {"action": "create", "customer": {"name": ""}},
        {"action": "upsert", "customer": {"name": "Two", "external_id": "b-2"}},
        {"action": "create", "customer": {"name": "Dup", "email": "taken@example.com"}},
        {"action": "upsert", "customer": {"name": "No id"}},
        {"action": "upsert", "customer": {"name": "Two again", "external_id": "b-2"}},
        {"action": "create", "customer": {"name": "Typo", "emial": "x@example.com"}}
    ]});
    let res = app
        .send(Method::POST, "/v1/customers/batch", &agent, &body)
        .await;
    let out = expect_json(res, StatusCode::OK).await;
    let results = out["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 422, 201, 409, 422, 200, 422]);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["index"], i);
    }
    assert_eq!(results[1]["problem"]["errors"][0]["field"], "name");
    assert_eq!(results[3]["problem"]["errors"][0]["field"], "email");
    assert_eq!(results[4]["problem"]["errors"][0]["field"], "external_id");
    assert_eq!(results[6]["problem"]["errors"][0]["field"], "emial");
    assert_eq!(results[5]["customer"]["name"], "Two again");
    assert_eq!(app.count("customers").await, 3);

    for bad in [
        json!({"items": []}),
        json!({"items": vec![json!({"action": "create", "customer": {"name": "x"}}); 101]}),
    ] {
        let res = app
            .send(Method::POST, "/v1/customers/batch", &agent, &bad)
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["items"]);
    }
    let res = app
        .send(
            Method::POST,
            "/v1/customers/batch",
            &agent,
            &json!({"items": [{"action": "delete", "customer": {}}]}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["items[0].action"]);
    assert_eq!(app.count("customers").await, 3);
}

#[actix_web::test]
async fn create_is_idempotent_and_viewers_cannot_write() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let send = || {
        app.post("/v1/customers")
            .bearer_auth(&agent)
            .header("Idempotency-Key", "c-1")
            .json(&json!({"name": "Once"}))
            .send()
    };
    let first = expect_json(send().await.unwrap(), StatusCode::CREATED).await;
    let again = send().await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(expect_json(again, StatusCode::CREATED).await, first);
    assert_eq!(app.count("customers").await, 1);

    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &app.token(Role::Viewer),
            &json!({"name": "V"}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .post("/v1/customers")
        .json(&json!({"name": "V"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert_eq!(app.count("customers").await, 1);
}
