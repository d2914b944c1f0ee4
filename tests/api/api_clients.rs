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
