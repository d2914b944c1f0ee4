use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn exchange(app: &TestApp, id: &str, secret: &str) -> reqwest::Response {
    app.post("/v1/auth/token")
        .json(
            &json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret}),
        )
        .send()
        .await
        .unwrap()
}

async fn create_client(app: &TestApp, body: Value) -> Value {
    let res = app
        .post("/v1/api-clients")
        .bearer_auth(app.token(Role::Admin))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["cache-control"], "no-store");
    expect_json(res, StatusCode::CREATED).await
}

#[actix_web::test]
async fn a_client_gets_tokens_with_exactly_its_scopes_until_revoked() {
    let app = TestApp::spawn().await;
    let client = create_client(
        &app,
        json!({"name": "Webshop", "description": "orders", "scopes": ["users:read", "customers:read", "users:read"]}),
    )
    .await;
    let id = client["id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("rps_"));
    assert_eq!(client["scopes"], json!(["users:read", "customers:read"]));

    // The secret is never shown again.
    let shown = expect_json(
        app.get(&format!("/v1/api-clients/{id}"))
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(shown.get("client_secret").is_none());
    assert!(shown["last_used_at"].is_null());

    let token = expect_json(exchange(&app, &id, &secret).await, StatusCode::OK).await;
    assert_eq!(token["token_type"], "Bearer");
    let token = token["access_token"].as_str().unwrap().to_owned();
    let me = expect_json(
        app.get("/v1/me").bearer_auth(&token).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["kind"], "api_client");
    assert_eq!(me["name"], "Webshop");
    assert!(me["role"].is_null());
    assert_eq!(me["scopes"], json!(["users:read", "customers:read"]));

    let res = app
        .get("/v1/users")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = app
        .get("/v1/audit")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(p["detail"].as_str().unwrap().contains("audit:read"));

    let shown = expect_json(
        app.get(&format!("/v1/api-clients/{id}"))
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(shown["last_used_at"].is_string());

    // Wrong secret, unknown or malformed id: the same answer.
    for (cid, sec) in [
        (id.as_str(), "rps_wrong"),
        ("0193b0a6-0000-7000-8000-000000000001", secret.as_str()),
        ("not-an-id", secret.as_str()),
    ] {
        let p = expect_problem(
            exchange(&app, cid, sec).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
        assert_eq!(
            p["detail"],
            "these credentials do not match an active account"
        );
    }

    let res = app
        .post(&format!("/v1/api-clients/{id}/revoke"))
        .bearer_auth(app.token(Role::Admin))
        .header("If-Match", "\"1\"")
        .send()
        .await
        .unwrap();
    let revoked = expect_json(res, StatusCode::OK).await;
    assert!(revoked["revoked_at"].is_string());
    let res = app
        .get("/v1/users")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    expect_problem(
        exchange(&app, &id, &secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    )
    .await;

    let list = expect_json(
        app.get("/v1/api-clients?revoked=true")
            .bearer_auth(app.token(Role::Admin))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn clients_are_validated_and_kept_from_staff_only_scopes() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let send = |body: Value| {
        app.post("/v1/api-clients")
            .bearer_auth(&admin)
            .json(&body)
            .send()
    };

    let res = send(
        json!({"name": "X", "scopes": ["users:write", "customers:read", "api_clients:manage"]}),
    )
    .await
    .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["scopes[0]", "scopes[2]"]);

    let res = send(json!({"name": "", "scopes": []})).await.unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["name", "scopes"]);

    let res = send(json!({"name": "X", "scopes": ["everything"]}))
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["scopes[0]"]);

    create_client(&app, json!({"name": "Till", "scopes": ["customers:read"]})).await;
    let res = send(json!({"name": "till", "scopes": ["customers:read"]}))
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["name"]);

    let res = app
        .post("/v1/api-clients")
        .bearer_auth(app.token(Role::Manager))
        .json(&json!({"name": "Y", "scopes": ["customers:read"]}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("api_clients").await, 1);
}

#[actix_web::test]
async fn a_client_is_updated_by_merge_patch_and_its_old_tokens_end() {
    let app = TestApp::spawn_with(&[("RAPPORT_RATE_LIMIT", "1000/60s")]).await;
    let admin = app.token(Role::Admin);
    let client = create_client(
        &app,
        json!({"name": "Webshop", "description": "orders", "scopes": ["customers:read"]}),
    )
    .await;
    let id = client["id"].as_str().unwrap().to_owned();
    let secret = client["client_secret"].as_str().unwrap().to_owned();
    let path = format!("/v1/api-clients/{id}");
    let token = expect_json(exchange(&app, &id, &secret).await, StatusCode::OK).await;
    let old = token["access_token"].as_str().unwrap().to_owned();
    let patch = |body: Value, tag: Option<&str>| {
        let mut req = app
            .request(reqwest::Method::PATCH, &path)
            .bearer_auth(&admin)
            .header("content-type", "application/merge-patch+json")
            .body(body.to_string());
        if let Some(tag) = tag {
            req = req.header("If-Match", tag);
        }
        req.send()
    };

    // Bad input is refused whole, naming each field, and changes nothing.
    for (body, status, code, named) in [
        (
            json!("not an object"),
            422,
            "validation_failed",
            vec!["body"],
        ),
        (
            json!({"scopes": []}),
            422,
            "validation_failed",
            vec!["scopes"],
        ),
        (
            json!({"scopes": ["users:write"]}),
            422,
            "validation_failed",
            vec!["scopes[0]"],
        ),
        (
            json!({"name": null, "scopes": null}),
            422,
            "validation_failed",
            vec!["name", "scopes"],
        ),
        (
            json!({"rate_limit": "lots"}),
            422,
            "validation_failed",
            vec!["rate_limit"],
        ),
        (json!({"name": ""}), 422, "validation_failed", vec!["name"]),
        (
            json!({"secret": "mine"}),
            422,
            "validation_failed",
            vec!["secret"],
        ),
        (
            json!({"scopes": "customers:read"}),
            422,
            "validation_failed",
            vec!["scopes"],
        ),
    ] {
        let res = patch(body.clone(), None).await.unwrap();
        let p = expect_problem(res, StatusCode::from_u16(status).unwrap(), code).await;
        assert_eq!(fields(&p), named, "{body}");
    }
    let res = patch(json!({"name": "X"}), Some("\"7\"")).await.unwrap();
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let res = app
        .request(reqwest::Method::PATCH, &path)
        .bearer_auth(app.token(Role::Manager))
        .json(&json!({"name": "X"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    let unchanged = expect_json(
        app.get(&path).bearer_auth(&admin).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(unchanged["version"], client["version"]);
    let res = app.get("/v1/me").bearer_auth(&old).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    // New scopes and an own limit: the old token ends, a new one carries both.
    let res = patch(
        json!({"scopes": ["customers:write", "customers:read"], "rate_limit": "100/10s",
               "description": null}),
        Some("\"1\""),
    )
    .await
    .unwrap();
    let updated = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        updated["scopes"],
        json!(["customers:read", "customers:write"])
    );
    assert_eq!(updated["rate_limit"], "100/10s");
    assert!(updated["description"].is_null());
    assert_eq!(updated["version"], 2);
    let res = app.get("/v1/me").bearer_auth(&old).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let token = expect_json(exchange(&app, &id, &secret).await, StatusCode::OK).await;
    let new = token["access_token"].as_str().unwrap().to_owned();
    let res = app.get("/v1/me").bearer_auth(&new).send().await.unwrap();
    assert_eq!(res.headers()["ratelimit-policy"], "\"client\";q=100;w=10");
    let me = expect_json(res, StatusCode::OK).await;
    assert_eq!(me["scopes"], json!(["customers:read", "customers:write"]));

    // The same values again write nothing; `null` returns the limit to the default.
    let res = patch(json!({"name": "Webshop", "rate_limit": "100/10s"}), None)
        .await
        .unwrap();
    assert_eq!(expect_json(res, StatusCode::OK).await["version"], 2);
    let res = patch(json!({"rate_limit": null}), None).await.unwrap();
    let reset = expect_json(res, StatusCode::OK).await;
    assert!(reset["rate_limit"].is_null());
    let res = app.get("/v1/me").bearer_auth(&new).send().await.unwrap();
    assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=1000;w=60");

    // The name stays unique among active clients; a revoked client cannot change.
    create_client(&app, json!({"name": "Till", "scopes": ["customers:read"]})).await;
    let res = patch(json!({"name": "TILL"}), None).await.unwrap();
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["name"]);
    let res = app
        .post(&format!("{path}/revoke"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = patch(json!({"name": "Again"}), None).await.unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;

    let audit = app
        .get_ok(
            &format!("/v1/audit?entity_type=api_client&entity_id={id}"),
            &admin,
        )
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "api_client.updated")
            .count(),
        2,
        "{audit}"
    );
}
