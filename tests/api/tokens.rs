//! Signing keys with ids and their rotation, recorded service tokens (listed and revoked
//! through the API and the CLI), and secrets sealed at rest under the server key.

use std::time::Duration;

use jsonwebtoken::{EncodingKey, Header};
use rapport::auth::Role;
use rapport::auth::jwt::{Claims, SubjectKind, configured_kid};
use rapport::secrets::SecretBox;
use rapport::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::cli::{rapport, stderr, stdout};
use crate::helpers::{
    TEST_SECRET, TEST_SECRET_KEY, TestApp, expect_json, expect_problem, settings,
};
use crate::webhooks::{FAST, Receiver, create_webhook, verifies};

/// Another server key (32 bytes, base64).
const OTHER_SECRET_KEY: &str = "c2Vjb25kLXNlcnZlci1rZXktc2Vjb25kLXNlcnZlciE=";

fn kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid)
}

/// A token with these claims and header kid, signed with `secret`.
fn forge(secret: &[u8], kid: Option<&str>, kind: SubjectKind) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = Claims {
        sub: "forger".to_owned(),
        iss: "rapport".to_owned(),
        aud: "rapport-api".to_owned(),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: uuid::Uuid::now_v7().to_string(),
        kind,
        role: Some(Role::Admin),
        scopes: vec![],
        cv: None,
    };
    let header = Header {
        kid: kid.map(str::to_owned),
        ..Default::default()
    };
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
}

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.get("/v1/me")
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn cli_ok(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut cmd = rapport(app.db.url.expose());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().await.unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    stdout(&out)
}

#[actix_web::test]
async fn tokens_name_their_key_and_a_configured_secret_has_a_derived_kid() {
    let app = TestApp::spawn().await;
    assert_eq!(
        kid(&app.token(Role::Admin)),
        Some(configured_kid(TEST_SECRET))
    );
    let (_, user) = app.user(Role::Agent).await;
    assert_eq!(kid(&user), Some(configured_kid(TEST_SECRET)));

    // The right secret without a kid, or under a kid that is not its own, is refused.
    for token in [
        forge(TEST_SECRET.as_bytes(), None, SubjectKind::User),
        forge(TEST_SECRET.as_bytes(), Some("nope"), SubjectKind::User),
    ] {
        let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
        let p = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        assert_eq!(p["detail"], "the token is not valid for this service");
    }

    // A previous secret still verifies its tokens, never signs.
    let rotated = TestApp::spawn_with(&[
        (
            "RAPPORT_JWT_SECRET",
            "a-brand-new-secret-a-brand-new-secret-0",
        ),
        ("RAPPORT_JWT_PREVIOUS_SECRETS", TEST_SECRET),
    ])
    .await;
    assert_eq!(
        kid(&rotated.token(Role::Admin)),
        Some(configured_kid("a-brand-new-secret-a-brand-new-secret-0"))
    );
    let (user_id, _) = rotated.user(Role::Viewer).await;
    let old = {
        let now = chrono::Utc::now().timestamp();
        let claims = json!({"sub": user_id, "iss": "rapport", "aud": "rapport-api", "iat": now,
            "nbf": now, "exp": now + 600, "jti": "old", "kind": "user", "cv": 1});
        let header = Header {
            kid: Some(configured_kid(TEST_SECRET)),
            ..Default::default()
        };
        jsonwebtoken::encode(
            &header,
            &claims,
            &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
        )
        .unwrap()
    };
    assert_eq!(me(&rotated, &old).await, StatusCode::OK);
}

#[actix_web::test]
async fn the_key_ring_rotates_keeps_old_tokens_and_retires_a_leaked_key() {
    let app = TestApp::spawn_with(&[("RAPPORT_JWT_SECRET", "")]).await;
    let no_jwt_secret = [("RAPPORT_JWT_SECRET", "")];
    let old_kid = app.state.jwt.signing_kid().unwrap();
    let old_service = app.token(Role::Admin);
    let (_, old_user) = app.user(Role::Agent).await;
    assert_eq!(kid(&old_service).as_deref(), Some(old_kid.as_str()));
    assert_eq!(kid(&old_user).as_deref(), Some(old_kid.as_str()));

    // The key is kept sealed: the database alone does not hold it.
    let mut conn = app.db.connect().await;
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        secret: String,
    }
    let stored: Vec<Stored> = diesel_async::RunQueryDsl::load(
        diesel::sql_query("SELECT secret FROM signing_keys"),
        &mut conn,
    )
    .await
    .unwrap();
    assert!(stored.iter().all(|s| s.secret.starts_with("v1.")));
    assert_eq!(app.count("app_secrets").await, 0);

    // Rotation by the CLI: a token from the new key is accepted here at once (the ring is
    // reloaded for a kid not seen yet), and the old key's tokens keep working.
    let new_kid = cli_ok(&app, &["keys", "rotate"], &no_jwt_secret).await;
    assert_ne!(new_kid, old_kid);
    let fresh = cli_ok(&app, &["token", "--role", "viewer"], &no_jwt_secret).await;
    assert_eq!(kid(&fresh).as_deref(), Some(new_kid.as_str()));
    assert_eq!(me(&app, &fresh).await, StatusCode::OK);
    assert_eq!(me(&app, &old_service).await, StatusCode::OK);
    assert_eq!(me(&app, &old_user).await, StatusCode::OK);
    // The instance signs with the new key from its next reload on.
    app.state.jwt.refresh(&mut conn).await.unwrap();
    let (_, new_user) = app.user(Role::Viewer).await;
    assert_eq!(kid(&new_user).as_deref(), Some(new_kid.as_str()));

    let list = cli_ok(&app, &["keys", "list"], &no_jwt_secret).await;
    let line = |kid: &str| {
        list.lines()
            .find(|l| l.starts_with(kid))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line(&new_kid).ends_with("\tsigning"), "{list}");
    assert!(line(&old_kid).contains("verifying until"), "{list}");
    assert!(!list.contains("v1."), "no key material: {list}");

    // A leaked key is retired at once: its tokens are refused (here after the reload every
    // instance does within 30 s), the new key's still work.
    cli_ok(&app, &["keys", "retire", &old_kid], &no_jwt_secret).await;
    app.state.jwt.refresh(&mut conn).await.unwrap();
    for token in [&old_service, &old_user] {
        let res = app.get("/v1/me").bearer_auth(token).send().await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert_eq!(me(&app, &fresh).await, StatusCode::OK);
    assert_eq!(me(&app, &new_user).await, StatusCode::OK);
    let list = cli_ok(&app, &["keys", "list"], &no_jwt_secret).await;
    assert!(
        list.contains(&format!("{old_kid}\t")) && list.contains("retired"),
        "{list}"
    );

    // Unknown kids are refused (after at most one reload a second), as are tokens without.
    let started = std::time::Instant::now();
    for kid in [Some("k-made-up"), Some("k-another"), None] {
        let token = forge(
            b"whatever-whatever-whatever-whatever",
            kid,
            SubjectKind::Service,
        );
        let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // With a configured secret, the ring is not the rotation path: the CLI says so.
    let out = rapport(app.db.url.expose())
        .env("RAPPORT_JWT_SECRET", TEST_SECRET)
        .args(["keys", "rotate"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("RAPPORT_JWT_PREVIOUS_SECRETS"),
        "{}",
        stderr(&out)
    );
}

#[actix_web::test]
async fn the_key_generated_before_key_ids_moves_into_the_ring_and_keeps_its_tokens() {
    let db = crate::helpers::TestDatabase::new().await;
    // A database as an earlier version left it: the generated key in clear.
    let legacy = [42_u8; 64];
    let mut conn = db.connect().await;
    use base64::Engine;
    let stored = base64::engine::general_purpose::STANDARD.encode(legacy);
    diesel_async::RunQueryDsl::execute(
        diesel::sql_query(format!(
            "INSERT INTO app_secrets (name, value) VALUES ('jwt_signing_key', '{stored}')"
        )),
        &mut conn,
    )
    .await
    .unwrap();
    let ring = settings(&db.url, &[("RAPPORT_JWT_SECRET", "")]);
    let app = TestApp::spawn_on(db, ring).await;
    // The clear copy is gone; a token it signed before (without kid) still works for now.
    assert_eq!(app.count("app_secrets").await, 0);
    assert_eq!(
        app.count("signing_keys WHERE legacy AND secret LIKE 'v1.%'")
            .await,
        1
    );
    let (user_id, _) = app.user(Role::Viewer).await;
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": user_id, "iss": "rapport", "aud": "rapport-api", "iat": now,
        "nbf": now, "exp": now + 600, "jti": "before", "kind": "user", "cv": 1});
    let before = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(&legacy),
    )
    .unwrap();
    assert_eq!(me(&app, &before).await, StatusCode::OK);
    // New tokens come from a new key, with its kid.
    let (_, token) = app.user(Role::Viewer).await;
    assert!(kid(&token).unwrap().starts_with('k'));
    // Once the old key's verification window has passed, tokens without kid are refused.
    app.sql("UPDATE signing_keys SET verifies_until = now() WHERE legacy")
        .await;
    let mut conn = app.db.connect().await;
    app.state.jwt.refresh(&mut conn).await.unwrap();
    assert_eq!(me(&app, &before).await, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn service_tokens_are_recorded_listed_and_revoked_through_the_api() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let jwt = [("RAPPORT_JWT_SECRET", TEST_SECRET)];
    let token = cli_ok(
        &app,
        &[
            "token",
            "--role",
            "manager",
            "--subject",
            "deploy-script",
            "--ttl",
            "2h",
        ],
        &jwt,
    )
    .await;
    let jti = jsonwebtoken::dangerous::insecure_decode::<Claims>(&token)
        .unwrap()
        .claims
        .jti;
    assert_eq!(me(&app, &token).await, StatusCode::OK);

    let page = app.get_ok("/v1/service-tokens?status=active", &admin).await;
    let listed: Vec<&Value> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["jti"] == jti.as_str())
        .collect();
    assert_eq!(listed.len(), 1, "{page}");
    let t = listed[0];
    assert_eq!(t["subject"], "deploy-script");
    assert_eq!(t["role"], "manager");
    assert_eq!(t["status"], "active");
    assert_eq!(t["issued_by"], "service:cli");
    assert_eq!(t["kid"], configured_kid(TEST_SECRET));
    assert!(t["revoked_at"].is_null());
    assert!(!page.to_string().contains(&token), "never the token itself");
    let one = app
        .get_ok(&format!("/v1/service-tokens/{jti}"), &admin)
        .await;
    assert_eq!(one["jti"], jti.as_str());
    // Paged like other lists: the test app's five tokens and this one, two per page.
    let first = app.get_ok("/v1/service-tokens?limit=2", &admin).await;
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let next = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_ok(&format!("/v1/service-tokens?limit=2&cursor={next}"), &admin)
        .await;
    assert_ne!(first["data"][0]["jti"], second["data"][0]["jti"]);

    // Revoked through the API: refused at once, audited once, listed as revoked.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/service-tokens/{jti}/revoke"),
            &admin,
            &json!({"reason": "the script moved to a client"}),
        )
        .await;
    let revoked = expect_json(res, StatusCode::OK).await;
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_by"], "service:test-admin");
    let res = app.get("/v1/me").bearer_auth(&token).send().await.unwrap();
    let p = expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    assert!(p["detail"].as_str().unwrap().contains("revoked"));
    let res = app
        .post(&format!("/v1/service-tokens/{jti}/revoke"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, StatusCode::OK).await["revoked_at"],
        revoked["revoked_at"]
    );
    assert_eq!(
        app.count(
            "audit_events WHERE action = 'service_token.revoked' \
             AND changes->'reason'->>'to' = 'the script moved to a client'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("audit_events WHERE action = 'service_token.issued'")
            .await,
        1
    );
    let page = app
        .get_ok("/v1/service-tokens?status=revoked", &admin)
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    assert_eq!(page["data"][0]["jti"], jti.as_str());

    // A token signed with the right key but never recorded is refused.
    let unrecorded = app
        .state
        .jwt
        .mint(
            SubjectKind::Service,
            "ghost",
            Some(Role::Admin),
            vec![],
            Duration::from_secs(60),
        )
        .unwrap()
        .token;
    assert_eq!(me(&app, &unrecorded).await, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn bad_service_token_requests_are_problems_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.token(Role::Admin);
    let jti = app.get_ok("/v1/service-tokens", &admin).await["data"][0]["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let revoke = format!("/v1/service-tokens/{jti}/revoke");
    for role in [Role::Manager, Role::Agent, Role::Viewer] {
        for (method, path) in [
            (Method::GET, "/v1/service-tokens".to_owned()),
            (Method::GET, format!("/v1/service-tokens/{jti}")),
            (Method::POST, revoke.clone()),
        ] {
            let res = app
                .request(method, &path)
                .bearer_auth(app.token(role))
                .send()
                .await
                .unwrap();
            expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    for token in [None, Some("not.a.token")] {
        let mut req = app.post(&revoke);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        expect_problem(
            req.send().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        )
        .await;
    }
    // Malformed, unknown or too long input changes nothing either.
    app.expect_bad_envelopes(Method::POST, &revoke, &admin, &json!({"reason": "x"}))
        .await;
    for body in [json!({"colour": "red"}), json!({"reason": 7}), json!([])] {
        let res = app.send(Method::POST, &revoke, &admin, &body).await;
        let status = res.status();
        assert!(status == 400 || status == 422, "{body}: {status}");
        let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert_eq!(content_type, "application/problem+json", "{body}");
    }
    let res = app
        .send(
            Method::POST,
            &revoke,
            &admin,
            &json!({"reason": "x".repeat(501)}),
        )
        .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(crate::helpers::fields(&p), ["reason"]);
    let missing = uuid::Uuid::now_v7();
    let res = app
        .post(&format!("/v1/service-tokens/{missing}/revoke"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    let res = app
        .get("/v1/service-tokens/not-a-uuid")
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    expect_problem(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    app.expect_bad_queries(
        "/v1/service-tokens",
        &admin,
        &[
            ("status=lost", "status"),
            ("limit=0", "limit"),
            ("colour=red", "colour"),
        ],
    )
    .await;
    assert_eq!(
        app.count("service_tokens WHERE revoked_at IS NOT NULL")
            .await,
        0
    );
    assert_eq!(app.count("audit_events").await, 0);
}

#[actix_web::test]
async fn the_cli_lists_and_revokes_service_tokens() {
    let app = TestApp::spawn().await;
    let jwt = [("RAPPORT_JWT_SECRET", TEST_SECRET)];
    let token = cli_ok(
        &app,
        &["token", "--role", "agent", "--subject", "nightly"],
        &jwt,
    )
    .await;
    let jti = jsonwebtoken::dangerous::insecure_decode::<Claims>(&token)
        .unwrap()
        .claims
        .jti;
    let list = cli_ok(&app, &["token", "list"], &jwt).await;
    let line = list
        .lines()
        .find(|l| l.starts_with(&jti))
        .unwrap()
        .to_owned();
    assert!(line.contains("\tnightly\tagent\tactive\t"), "{line}");
    assert!(!list.contains(&token));

    // The reason has the API's limit on the command line too, and a refused one revokes nothing.
    let long = "x".repeat(501);
    let out = rapport(app.db.url.expose())
        .args(["token", "revoke", &jti, "--reason", &long])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at most 500 characters"),
        "{}",
        stderr(&out)
    );
    assert_eq!(me(&app, &token).await, StatusCode::OK);
    let out = rapport(app.db.url.expose())
        .args(["token", "revoke", &jti])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    // Another process revoked it: this instance sees it once its cache entry (1 s) is stale.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(me(&app, &token).await, StatusCode::UNAUTHORIZED);
    let active = cli_ok(&app, &["token", "list"], &jwt).await;
    assert!(!active.contains(&jti));
    let all = cli_ok(&app, &["token", "list", "--all"], &jwt).await;
    assert!(
        all.lines()
            .any(|l| l.starts_with(&jti) && l.contains("\trevoked\t")),
        "{all}"
    );
    let by_cli = app
        .get_ok(
            &format!("/v1/service-tokens/{jti}"),
            &app.token(Role::Admin),
        )
        .await;
    assert_eq!(by_cli["revoked_by"], "service:cli");

    let out = rapport(app.db.url.expose())
        .args(["token", "revoke", "0193b0a6-0000-7000-8000-000000000000"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let out = rapport(app.db.url.expose())
        .args(["token"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--role"), "{}", stderr(&out));
}

#[actix_web::test]
async fn webhook_secrets_are_sealed_at_rest_and_deliveries_still_verify() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let column = stored_secret(&app, &id).await;
    assert_ne!(column, secret);
    assert!(column.starts_with(&format!(
        "v1.{}.",
        SecretBox::new(&key(TEST_SECRET_KEY), &[]).key_id()
    )));
    assert!(!column.contains(secret.trim_start_matches("whsec_")));
    crate::customers::create(&app, json!({"name": "Ada Lovelace"})).await;
    let got = receiver.wait_for(1).await;
    assert!(verifies(&secret, &got[0]));

    // The row moved to another webhook does not open there.
    let other = create_webhook(&app, json!({"url": receiver.url})).await;
    let other_id = other["id"].as_str().unwrap();
    app.sql(&format!(
        "UPDATE webhooks SET secret = '{column}' WHERE id = '{other_id}'"
    ))
    .await;
    let res = app
        .post(&format!("/v1/webhooks/{other_id}/test"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::INTERNAL_SERVER_ERROR, "internal").await;
    assert!(!p.to_string().contains("v1."));
}

async fn stored_secret(app: &TestApp, id: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        secret: String,
    }
    let mut conn = app.db.connect().await;
    let row: Stored = diesel_async::RunQueryDsl::get_result(
        diesel::sql_query(format!("SELECT secret FROM webhooks WHERE id = '{id}'")),
        &mut conn,
    )
    .await
    .unwrap();
    row.secret
}

fn key(text: &str) -> [u8; 32] {
    rapport::config::decode_secret_key(text).unwrap()
}

/// Another instance on the app's database (loopback webhooks allowed), with some settings of
/// its own.
async fn instance(app: &TestApp, overrides: &[(&str, &str)]) -> Result<String, String> {
    let mut all = FAST.to_vec();
    all.extend_from_slice(overrides);
    let built = Application::build(settings(&app.db.url, &all)).await?;
    let address = format!("http://127.0.0.1:{}", built.port());
    actix_web::rt::spawn(built.run_until_stopped());
    Ok(address)
}

#[actix_web::test]
async fn the_server_key_rotates_and_reseal_moves_every_secret_to_the_new_key() {
    let app = TestApp::spawn_with(&FAST).await;
    let receiver = Receiver::start().await;
    let hook = create_webhook(&app, json!({"url": receiver.url})).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let old_id = SecretBox::new(&key(TEST_SECRET_KEY), &[])
        .key_id()
        .to_owned();
    let new_id = SecretBox::new(&key(OTHER_SECRET_KEY), &[])
        .key_id()
        .to_owned();

    // A copy of the database under another server key: startup stops with one clear line.
    let err = instance(&app, &[("RAPPORT_SECRET_KEY", OTHER_SECRET_KEY)])
        .await
        .unwrap_err();
    assert!(
        err.contains("RAPPORT_SECRET_KEY") && err.contains(&old_id),
        "{err}"
    );
    assert!(!err.contains(&secret) && !err.contains('\n'), "{err}");

    // Rotated, the old key listed as previous: deliveries still verify.
    let rotated = [
        ("RAPPORT_SECRET_KEY", OTHER_SECRET_KEY),
        ("RAPPORT_SECRET_KEY_PREVIOUS", TEST_SECRET_KEY),
    ];
    let second = instance(&app, &rotated).await.unwrap();
    let res = app
        .client
        .post(format!("{second}/v1/webhooks/{id}/test"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, StatusCode::OK).await["status"],
        "succeeded"
    );
    let got = receiver.wait_for(1).await;
    assert!(verifies(&secret, got.last().unwrap()));
    assert!(
        stored_secret(&app, &id)
            .await
            .starts_with(&format!("v1.{old_id}."))
    );

    // Reseal moves every stored secret to the new key; then the old key can go.
    let out = rapport(app.db.url.expose())
        .env("RAPPORT_SECRET_KEY", OTHER_SECRET_KEY)
        .env("RAPPORT_SECRET_KEY_PREVIOUS", TEST_SECRET_KEY)
        .args(["secrets", "reseal"])
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("resealed 1 secret(s)"),
        "{}",
        stdout(&out)
    );
    assert!(
        stored_secret(&app, &id)
            .await
            .starts_with(&format!("v1.{new_id}."))
    );
    let third = instance(&app, &[("RAPPORT_SECRET_KEY", OTHER_SECRET_KEY)])
        .await
        .unwrap();
    let res = app
        .client
        .post(format!("{third}/v1/webhooks/{id}/test"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(res, StatusCode::OK).await["status"],
        "succeeded"
    );
    let got = receiver.received();
    assert!(verifies(&secret, got.last().unwrap()));

    // A secret stored in clear by an earlier version is sealed at startup.
    app.sql(&format!(
        "UPDATE webhooks SET secret = '{secret}' WHERE id = '{id}'"
    ))
    .await;
    instance(&app, &[("RAPPORT_SECRET_KEY", OTHER_SECRET_KEY)])
        .await
        .unwrap();
    assert!(
        stored_secret(&app, &id)
            .await
            .starts_with(&format!("v1.{new_id}."))
    );
}
