use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, expect_json};

#[actix_web::test]
async fn every_write_is_in_the_audit_trail() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let res = app
        .post("/v1/users")
        .bearer_auth(&admin)
        .header("X-Request-Id", "create-req-1")
        .json(&json!({"email": "a@example.com", "name": "Ann", "role": "agent", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    let user = expect_json(res, StatusCode::CREATED).await;
    let id = user["id"].as_str().unwrap();
    let res = app
        .patch(&format!("/v1/users/{id}"))
        .bearer_auth(&admin)
        .header("X-Request-Id", "update-req-2")
        .json(&json!({"role": "manager", "password": "another long password"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    let res = app
        .post(&format!("/v1/users/{id}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;

    let log = expect_json(
        app.get(&format!("/v1/audit?entity_type=user&entity_id={id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let events = log["data"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["user.deactivated", "user.updated", "user.created"],
        "newest first"
    );
    for event in events {
        assert_eq!(event["actor_type"], "service");
        assert_eq!(event["actor_id"], "test-admin");
        assert_eq!(event["entity_id"], id);
    }
    let created = &events[2];
    assert_eq!(created["request_id"], "create-req-1");
    assert_eq!(created["changes"]["email"], json!({"to": "a@example.com"}));
    assert_eq!(created["changes"]["password"], json!({"to": "[redacted]"}));
    let updated = &events[1];
    assert_eq!(updated["request_id"], "update-req-2");
    assert_eq!(
        updated["changes"]["role"],
        json!({"from": "agent", "to": "manager"})
    );
    assert_eq!(updated["changes"]["password"], json!({"to": "[redacted]"}));
    assert!(
        updated["changes"].get("name").is_none(),
        "unchanged fields are left out"
    );
    assert_eq!(
        events[0]["changes"]["active"],
        json!({"from": true, "to": false})
    );

    let raw = serde_json::to_string(&log).unwrap();
    assert!(!raw.contains("long enough password") && !raw.contains("argon2"));

    // Filters and pagination.
    let page = expect_json(
        app.get("/v1/audit?action=user.updated")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let page = expect_json(
        app.get("/v1/audit?request_id=create-req-1")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["data"][0]["action"], "user.created");
    let first = expect_json(
        app.get("/v1/audit?limit=2")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = expect_json(
        app.get(&format!("/v1/audit?limit=2&cursor={cursor}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(second["data"][0]["action"], "user.created");
    assert!(second["next_cursor"].is_null());
    let page = expect_json(
        app.get("/v1/audit?occurred_after=2999-01-01T00:00:00Z")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert!(page["data"].as_array().unwrap().is_empty());
}

#[actix_web::test]
async fn the_actor_is_the_user_or_client_that_wrote() {
    let app = TestApp::spawn().await;
    let (admin_id, admin) = app.user(Role::Admin).await;
    let res = app
        .post("/v1/api-clients")
        .bearer_auth(&admin)
        .json(&json!({"name": "CRM sync", "scopes": ["customers:read"]}))
        .send()
        .await
        .unwrap();
    let client = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(client["created_by"], format!("user:{admin_id}"));
    let log = expect_json(
        app.get(&format!("/v1/audit?actor_id={admin_id}"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let event = &log["data"][0];
    assert_eq!(event["action"], "api_client.created");
    assert_eq!(event["actor_type"], "user");
    assert_eq!(
        event["changes"]["client_secret"],
        json!({"to": "[redacted]"})
    );
}
