use rapport::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/v1/users")
        .bearer_auth(app.token(Role::Admin))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn create_read_and_list_users() {
    let app = TestApp::spawn().await;
    let res = create(
        &app,
        json!({"email": " Grace@Example.com ", "name": " Grace Hopper ", "role": "manager"}),
    )
    .await;
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(res.headers()["etag"], "\"1\"");
    let user = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(user["email"], "Grace@Example.com");
    assert_eq!(user["name"], "Grace Hopper");
    assert_eq!(user["has_password"], false);
    assert_eq!(user["version"], 1);
    assert_eq!(
        location,
        format!("/v1/users/{}", user["id"].as_str().unwrap())
    );

    let res = app
        .get(&location)
        .bearer_auth(app.token(Role::Viewer))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"1\"");
    assert_eq!(expect_json(res, StatusCode::OK).await, user);

    // Emails are unique whatever their case; the 409 names the field.
    let res = create(
        &app,
        json!({"email": "grace@example.COM", "name": "G", "role": "agent"}),
    )
    .await;
    let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
    assert_eq!(fields(&p), ["email"]);

    for i in 0..5 {
        let role = if i % 2 == 0 { "agent" } else { "viewer" };
        let res = create(&app, json!({"email": format!("u{i}@example.com"), "name": format!("User {i}"), "role": role})).await;
        expect_json(res, StatusCode::CREATED).await;
    }
    let viewer = app.token(Role::Viewer);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/users?limit=2&cursor={c}"),
            None => "/v1/users?limit=2".to_owned(),
        };
        let page = expect_json(
            app.get(&path).bearer_auth(&viewer).send().await.unwrap(),
            StatusCode::OK,
        )
        .await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        seen.extend(data.iter().map(|u| u["email"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[0], "Grace@Example.com", "oldest first");

    let page = expect_json(
        app.get("/v1/users?role=agent")
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    let page = expect_json(
        app.get("/v1/users?q=hopper")
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["data"][0]["name"], "Grace Hopper");
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let page = expect_json(
        app.get("/v1/users?q=%25")
            .bearer_auth(&viewer)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        0,
        "% is matched literally"
    );
}

#[actix_web::test]
async fn updates_are_merge_patches_guarded_by_if_match() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let user = expect_json(
        create(
            &app,
            json!({"email": "p@example.com", "name": "Pat", "role": "agent"}),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/v1/users/{}", user["id"].as_str().unwrap());

    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"name": "Patricia"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    let updated = expect_json(res, StatusCode::OK).await;
    assert_eq!(updated["name"], "Patricia");
    assert_eq!(updated["role"], "agent", "absent fields stay");
    assert_eq!(updated["version"], 2);

    // A writer still holding version 1 loses nothing: it is told to re-read.
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["etag"], "\"2\"");
    expect_problem(res, StatusCode::PRECONDITION_FAILED, "precondition_failed").await;
    let current = expect_json(
        app.get(&path).bearer_auth(&admin).send().await.unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(current["role"], "agent");
    assert_eq!(current["version"], 2);

    // null cannot clear a required field; bad values are named.
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .json(&json!({"name": null, "email": "nope", "password": "short"}))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(fields(&p), ["email", "name", "password"]);

    // An empty patch changes nothing, not even the version.
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, StatusCode::OK).await["version"], 2);

    // Setting a password lets the user sign in.
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .header("If-Match", "*")
        .json(&json!({"password": "a brand new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, StatusCode::OK).await["has_password"], true);
    app.sign_in("p@example.com", "a brand new password").await;
}

#[actix_web::test]
async fn the_last_active_admin_cannot_be_removed() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let (first, _) = app.user(Role::Admin).await;
    let res = app
        .patch(&format!("/v1/users/{first}"))
        .bearer_auth(&admin)
        .json(&json!({"role": "manager"}))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::CONFLICT, "conflict").await;
    assert!(p["detail"].as_str().unwrap().contains("last active admin"));
    let res = app
        .post(&format!("/v1/users/{first}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;

    let (second, _) = app.user(Role::Admin).await;
    let res = app
        .post(&format!("/v1/users/{first}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let user = expect_json(res, StatusCode::OK).await;
    assert_eq!(user["active"], false);
    assert!(user["deactivated_at"].is_string());
    let res = app
        .post(&format!("/v1/users/{second}/deactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::CONFLICT, "conflict").await;

    let res = app
        .post(&format!("/v1/users/{first}/reactivate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let user = expect_json(res, StatusCode::OK).await;
    assert_eq!(user["active"], true);
    assert!(user["deactivated_at"].is_null());

    let page = expect_json(
        app.get("/v1/users?active=true&role=admin")
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn access_is_set_by_admins_audited_and_ends_old_tokens() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    // `all` by default, shown in every user answer.
    let res = create(
        &app,
        json!({"email": "ada@example.com", "name": "Ada", "role": "agent",
               "password": "a long enough password"}),
    )
    .await;
    let user = expect_json(res, StatusCode::CREATED).await;
    assert_eq!(user["access"], "all");
    let id = user["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/users/{id}");
    let token = app
        .sign_in("ada@example.com", "a long enough password")
        .await;
    assert_eq!(app.get_ok("/v1/me", &token).await["access"], "all");

    // Limiting the user ends their tokens at once, like a role change, and is audited.
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .json(&json!({"access": "owned"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(res, StatusCode::OK).await["access"], "owned");
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let token = app
        .sign_in("ada@example.com", "a long enough password")
        .await;
    assert_eq!(app.get_ok("/v1/me", &token).await["access"], "owned");
    assert_eq!(app.get_ok(&path, &admin).await["access"], "owned");
    assert_eq!(
        app.count("audit_events WHERE action = 'user.updated' AND changes::text LIKE '%owned%'")
            .await,
        1
    );
    let listed = app.get_ok("/v1/users?role=agent", &admin).await;
    assert_eq!(listed["data"][0]["access"], "owned");
    // Only admins change it.
    let res = app
        .patch(&path)
        .bearer_auth(app.token(Role::Manager))
        .json(&json!({"access": "all"}))
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.get_ok(&path, &admin).await["access"], "owned");
}

#[actix_web::test]
async fn bad_access_values_are_422_and_write_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let users = app.count("users").await;
    let audited = app.count("audit_events").await;
    for body in [
        json!({"email": "x@example.com", "name": "X", "role": "agent", "access": "team"}),
        json!({"email": "x@example.com", "name": "X", "role": "agent", "access": "OWNED"}),
        json!({"email": "x@example.com", "name": "X", "role": "admin", "access": "owned"}),
    ] {
        let res = create(&app, body.clone()).await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["access"], "{body}");
    }
    assert_eq!(app.count("users").await, users);

    let res = create(
        &app,
        json!({"email": "owned@example.com", "name": "O", "role": "agent", "access": "owned"}),
    )
    .await;
    let owned = expect_json(res, StatusCode::CREATED).await;
    let path = format!("/v1/users/{}", owned["id"].as_str().unwrap());
    let res = create(
        &app,
        json!({"email": "boss@example.com", "name": "B", "role": "admin"}),
    )
    .await;
    let boss = expect_json(res, StatusCode::CREATED).await;
    let boss_path = format!("/v1/users/{}", boss["id"].as_str().unwrap());
    let audited = audited + 2;
    for (path, body) in [
        (&path, json!({"access": "everything"})),
        (&path, json!({"access": null})),
        // An owned user made admin must reach all in the same change.
        (&path, json!({"role": "admin"})),
        (&boss_path, json!({"access": "owned"})),
    ] {
        let res = app
            .patch(path)
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["access"], "{body}");
    }
    assert_eq!(app.count("audit_events").await, audited);
    assert_eq!(app.get_ok(&path, &admin).await["role"], "agent");
    assert_eq!(app.get_ok(&boss_path, &admin).await["access"], "all");
    // Both in one change is fine.
    let res = app
        .patch(&path)
        .bearer_auth(&admin)
        .json(&json!({"role": "admin", "access": "all"}))
        .send()
        .await
        .unwrap();
    let promoted = expect_json(res, StatusCode::OK).await;
    assert_eq!(
        (promoted["role"].as_str(), promoted["access"].as_str()),
        (Some("admin"), Some("all"))
    );
    // The database holds the rule too, whatever path writes.
    let mut conn = app.db.connect().await;
    let refused = diesel_async::RunQueryDsl::execute(
        diesel::sql_query("UPDATE users SET access = 'owned' WHERE role = 'admin'"),
        &mut conn,
    )
    .await;
    assert!(refused.is_err());
}
