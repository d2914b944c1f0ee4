//! The test harness: every test gets the real application, serving over HTTP on a free port,
//! with its own database cloned from a migrated template (created once per run of the
//! migrations' content, shared across test processes under an advisory lock) and dropped after.

pub mod proxy;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::web;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use rapport::auth::Role;
use rapport::config::{DatabaseUrl, Settings};
use rapport::startup::Application;
use rapport::state::AppState;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// The JWT secret test apps are configured with.
pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0123456789";

/// The server key test apps seal stored secrets with (32 bytes, base64).
pub const TEST_SECRET_KEY: &str = "dGVzdC1zZXJ2ZXIta2V5LXRlc3Qtc2VydmVyLWtleSE=";

/// How long the service tokens `TestApp::token` hands out stay valid.
const TEST_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The server tests run against; its `postgres` database is used to create the others.
pub fn server_url() -> DatabaseUrl {
    let url = std::env::var("RAPPORT_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    DatabaseUrl::parse(&url).expect("RAPPORT_TEST_DATABASE_URL is a postgres URL")
}

pub async fn admin_connection() -> AsyncPgConnection {
    rapport::db::connect(&server_url().maintenance(), Duration::from_secs(10))
        .await
        .expect("PostgreSQL for tests is reachable (RAPPORT_TEST_DATABASE_URL)")
}

fn migrations_hash() -> String {
    fn walk(dir: &Path, hasher: &mut Sha256) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("migrations directory")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, hasher);
            } else {
                hasher.update(path.to_string_lossy().as_bytes());
                hasher.update(std::fs::read(&path).expect("migration file"));
            }
        }
    }
    let mut hasher = Sha256::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations"),
        &mut hasher,
    );
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The migrated template database, built once per migrations content.
pub async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("rapport_tpl_{}", migrations_hash());
            let building = format!("{name}_building");
            let mut conn = admin_connection().await;
            // Serialise template creation across test processes.
            diesel::sql_query("SELECT pg_advisory_lock(72707)")
                .execute(&mut conn)
                .await
                .expect("template lock");
            if !database_exists(&mut conn, &name).await {
                drop_database(&mut conn, &building).await;
                create_database(&mut conn, &building, None).await;
                rapport::db::migrate(&server_url().with_database(&building))
                    .await
                    .expect("migrations apply to a fresh database");
                let rename = format!(
                    "ALTER DATABASE {} RENAME TO {}",
                    rapport::db::quote_ident(&building),
                    rapport::db::quote_ident(&name)
                );
                retry_while_busy(&mut conn, &rename).await;
            }
            diesel::sql_query("SELECT pg_advisory_unlock(72707)")
                .execute(&mut conn)
                .await
                .expect("template unlock");
            name
        })
        .await
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        found: bool,
    }
    let found: Found =
        diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found")
            .bind::<diesel::sql_types::Text, _>(name)
            .get_result(conn)
            .await
            .expect("pg_database query");
    found.found
}

/// Runs a statement that fails while another session still uses a database being copied.
async fn retry_while_busy(conn: &mut AsyncPgConnection, sql: &str) {
    for attempt in 0.. {
        match diesel::sql_query(sql).execute(conn).await {
            Ok(_) => return,
            Err(err) if err.to_string().contains("accessed by other users") && attempt < 100 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{sql}: {err}"),
        }
    }
}

pub async fn create_database(conn: &mut AsyncPgConnection, name: &str, template: Option<&str>) {
    let sql = match template {
        Some(t) => format!(
            "CREATE DATABASE {} TEMPLATE {}",
            rapport::db::quote_ident(name),
            rapport::db::quote_ident(t)
        ),
        None => format!("CREATE DATABASE {}", rapport::db::quote_ident(name)),
    };
    retry_while_busy(conn, &sql).await;
}

pub async fn drop_database(conn: &mut AsyncPgConnection, name: &str) {
    let sql = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        rapport::db::quote_ident(name)
    );
    diesel::sql_query(sql)
        .execute(conn)
        .await
        .expect("drop database");
}

/// Behind a transaction-mode pooler the app sets nothing on its request sessions: the
/// server starts the test database's sessions with the request limits and settings, as
/// PgBouncer's `connect_query` or `ALTER ROLE … SET` would in production.
pub async fn start_pooled_sessions_as_requests_need(db: &TestDatabase, settings: &Settings) {
    let session = rapport::db::Session::new(
        settings.database.statement_timeout,
        settings.database.idle_in_transaction_timeout,
    );
    let mut conn = admin_connection().await;
    for (name, value) in session.settings() {
        diesel::sql_query(format!(
            "ALTER DATABASE {} SET {name} = '{value}'",
            rapport::db::quote_ident(&db.name)
        ))
        .execute(&mut conn)
        .await
        .expect("database defaults for pooled sessions");
    }
}

/// A fresh database cloned from the template, dropped when this value is.
pub struct TestDatabase {
    pub name: String,
    pub url: DatabaseUrl,
}

impl TestDatabase {
    pub async fn new() -> Self {
        let template = template().await;
        let name = format!("rapport_test_{}", Uuid::now_v7().simple());
        let mut conn = admin_connection().await;
        create_database(&mut conn, &name, Some(template)).await;
        let url = server_url().with_database(&name);
        Self { name, url }
    }

    pub async fn connect(&self) -> AsyncPgConnection {
        rapport::db::connect(&self.url, Duration::from_secs(10))
            .await
            .expect("test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs outside async; use a runtime of its own on a thread of its own.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let mut conn = admin_connection().await;
                drop_database(&mut conn, &name).await;
            });
        })
        .join();
    }
}

/// The transaction-mode pooler (PgBouncer 1.21+) the suite runs through when
/// `RAPPORT_TEST_POOLER_URL` names one (say `postgres://postgres@127.0.0.1:6432/postgres`,
/// serving every database of the test server: `tests/support/pgbouncer.ini`): every app's
/// request pool then goes through it, with `RAPPORT_DB_POOLER=transaction`.
pub fn pooler_url() -> Option<DatabaseUrl> {
    let url = std::env::var("RAPPORT_TEST_POOLER_URL").ok()?;
    Some(DatabaseUrl::parse(&url).expect("RAPPORT_TEST_POOLER_URL is a postgres URL"))
}

/// Test settings: a free port, one worker, a small pool, a known JWT secret; through the
/// pooler when the suite runs through one ([`pooler_url`]).
pub fn settings(db: &DatabaseUrl, overrides: &[(&str, &str)]) -> Settings {
    let pooled = pooler_url().map(|pooler| pooler.with_database(&db.database_name()));
    let (url, direct, mode) = match &pooled {
        Some(pooled) => (pooled.expose(), db.expose(), "transaction"),
        None => (db.expose(), "", "none"),
    };
    let mut vars: HashMap<String, String> = [
        ("DATABASE_URL", url),
        ("RAPPORT_DIRECT_DATABASE_URL", direct),
        ("RAPPORT_DB_POOLER", mode),
        ("RAPPORT_BIND", "127.0.0.1:0"),
        ("RAPPORT_JWT_SECRET", TEST_SECRET),
        ("RAPPORT_SECRET_KEY", TEST_SECRET_KEY),
        ("RAPPORT_WORKERS", "1"),
        ("RAPPORT_DB_POOL_SIZE", "4"),
        ("RAPPORT_DB_STARTUP_TIMEOUT", "10s"),
        ("RAPPORT_SHUTDOWN_TIMEOUT", "0s"),
        ("RAPPORT_BODY_LIMIT", "64KiB"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_lookup(|k| vars.get(k).cloned()).expect("valid test settings")
}

pub struct TestApp {
    pub address: String,
    /// Where `/metrics` is served without a token, when `RAPPORT_METRICS_BIND` is set.
    pub metrics_address: Option<String>,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub handle: ServerHandle,
    pub state: web::Data<AppState>,
    /// A recorded service token per role, minted at spawn (see [`TestApp::token`]).
    tokens: Vec<(Role, String)>,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Spawns with some settings overridden (`("RAPPORT_JWT_SECRET", "")` unsets one).
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        let db = TestDatabase::new().await;
        let settings = settings(&db.url, overrides);
        Self::spawn_on(db, settings).await
    }

    pub async fn spawn_on(db: TestDatabase, settings: Settings) -> Self {
        init_logging();
        if settings.database.pooler == rapport::config::Pooler::Transaction {
            start_pooled_sessions_as_requests_need(&db, &settings).await;
        }
        let app = Application::build(settings).await.expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let metrics_address = app
            .metrics_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let handle = app.handle();
        let state = app.state();
        let tokens = record_service_tokens(&state).await;
        actix_web::rt::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            address,
            metrics_address,
            client,
            db,
            handle,
            state,
            tokens,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// GET with a token, expecting 200 and JSON.
    /// `DELETE path` with `token`, and `If-Match: if_match` when given.
    pub async fn delete(&self, path: &str, token: &str, if_match: Option<&str>) -> Response {
        let mut req = self.request(Method::DELETE, path).bearer_auth(token);
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        req.send().await.unwrap()
    }

    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let res = self
            .get(path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        expect_json(res, StatusCode::OK).await
    }

    /// The value of one series on `/metrics` (read with an admin's token), `series` being the
    /// metric's name with its labels as exposed, if it is there.
    pub async fn metric(&self, series: &str) -> Option<String> {
        let res = self
            .get("/metrics")
            .bearer_auth(self.token(Role::Admin))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.expect("metrics text");
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.trim().to_owned())
    }

    /// A request with a token and a JSON body.
    pub async fn send(&self, method: Method, path: &str, token: &str, body: &Value) -> Response {
        self.request(method, path)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// A service token (as `rapport token` mints and records) with this role: the same one
    /// for the whole test, recorded when the app was spawned.
    pub fn token(&self, role: Role) -> String {
        self.tokens
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, token)| token.clone())
            .expect("a token per role")
    }

    /// Creates a staff user through the API and signs in as them.
    pub async fn user(&self, role: Role) -> (Uuid, String) {
        let email = format!("{}-{}@example.com", role, Uuid::now_v7().simple());
        let password = "a long enough password";
        let created = self
            .post("/v1/users")
            .bearer_auth(self.token(Role::Admin))
            .json(&json!({"email": email, "name": "Test User", "role": role, "password": password}))
            .send()
            .await
            .expect("request");
        let user = expect_json(created, StatusCode::CREATED).await;
        let id = Uuid::parse_str(user["id"].as_str().expect("id")).expect("uuid");
        let token = self.sign_in(&email, password).await;
        (id, token)
    }

    /// Creates a staff user with this `access` (`all` or `owned`) and signs in as them.
    pub async fn user_with_access(&self, role: Role, access: &str) -> (Uuid, String) {
        let email = format!("{}-{}@example.com", role, Uuid::now_v7().simple());
        let password = "a long enough password";
        let created = self
            .post("/v1/users")
            .bearer_auth(self.token(Role::Admin))
            .json(&json!({"email": email, "name": "Test User", "role": role,
                          "access": access, "password": password}))
            .send()
            .await
            .expect("request");
        let user = expect_json(created, StatusCode::CREATED).await;
        assert_eq!(user["access"], access);
        let id = Uuid::parse_str(user["id"].as_str().expect("id")).expect("uuid");
        let token = self.sign_in(&email, password).await;
        (id, token)
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> String {
        let res = self
            .post("/v1/auth/token")
            .json(&json!({"grant_type": "password", "email": email, "password": password}))
            .send()
            .await
            .expect("request");
        let body = expect_json(res, StatusCode::OK).await;
        body["access_token"].as_str().expect("token").to_owned()
    }

    /// Runs a statement straight on the database (to move recorded times back in tests).
    pub async fn sql(&self, statement: &str) {
        let mut conn = self.db.connect().await;
        diesel_async::RunQueryDsl::execute(diesel::sql_query(statement), &mut conn)
            .await
            .expect(statement);
    }

    /// Asserts that each query string on `path` is a `400 invalid_query` naming its field.
    pub async fn expect_bad_queries(&self, path: &str, token: &str, cases: &[(&str, &str)]) {
        for (query, field) in cases {
            let separator = if path.contains('?') { '&' } else { '?' };
            let res = self
                .get(&format!("{path}{separator}{query}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
            assert_eq!(fields(&p), [*field], "{path} {query}");
        }
    }

    /// A new integration client with these scopes, signed in: its access token.
    pub async fn client_token(&self, name: &str, scopes: &[&str]) -> String {
        let res = self
            .post("/v1/api-clients")
            .bearer_auth(self.token(Role::Admin))
            .json(&json!({"name": name, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        let client = expect_json(res, StatusCode::CREATED).await;
        let res = self
            .post("/v1/auth/token")
            .json(
                &json!({"grant_type": "client_credentials", "client_id": client["id"],
                          "client_secret": client["client_secret"]}),
            )
            .send()
            .await
            .unwrap();
        expect_json(res, StatusCode::OK).await["access_token"]
            .as_str()
            .expect("access token")
            .to_owned()
    }

    /// Asserts what every JSON-taking endpoint answers to a bad envelope, whatever the body
    /// should be: malformed JSON (400), another content type (415), a body over the limit
    /// (413), no token and a token that is none (401). `valid` is a body the endpoint
    /// would take from `token`.
    pub async fn expect_bad_envelopes(
        &self,
        method: Method,
        path: &str,
        token: &str,
        valid: &Value,
    ) {
        let res = self
            .request(method.clone(), path)
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body("{,")
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::BAD_REQUEST, "malformed_json").await;
        let res = self
            .request(method.clone(), path)
            .bearer_auth(token)
            .header("Content-Type", "text/plain")
            .body("plain text")
            .send()
            .await
            .unwrap();
        expect_problem(
            res,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
        // The test app's limit is 64 KiB.
        let res = self
            .send(
                method.clone(),
                path,
                token,
                &json!({"padding": "x".repeat(70 * 1024)}),
            )
            .await;
        expect_problem(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        let res = self
            .request(method.clone(), path)
            .json(valid)
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
        let res = self
            .request(method, path)
            .bearer_auth("not.a.token")
            .json(valid)
            .send()
            .await
            .unwrap();
        expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    }

    /// Rows in a table, read straight from the database.
    pub async fn count(&self, table: &str) -> i64 {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.db.connect().await;
        let row: Count = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
            .get_result(&mut conn)
            .await
            .expect("count");
        row.n
    }

    /// Every event the feed serves for `query` (say `type=customer.created`, or empty), read
    /// page by page once it serves as many as the `events` rows matching `stored` (an SQL
    /// condition). An event is served once every transaction older than its own has ended in
    /// the test's database, so the feed may lag a commit while the app's own jobs write.
    pub async fn feed(&self, query: &str, stored: &str) -> Vec<Value> {
        let token = self.token(Role::Admin);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let stored = self.count(&format!("events WHERE {stored}")).await;
            let mut all = Vec::new();
            let mut path = format!("/v1/events?limit=200&{query}");
            loop {
                let page = self.get_ok(&path, &token).await;
                all.extend(page["data"].as_array().unwrap().iter().cloned());
                if page["has_more"] == false {
                    break;
                }
                let cursor = page["next_cursor"].as_str().unwrap();
                path = format!("/v1/events?limit=200&{query}&cursor={cursor}");
            }
            if all.len() as i64 == stored {
                return all;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the feed shows {} of {stored} events",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the server winds down as the runtime ends.
        drop(self.handle.stop(false));
    }
}

/// Mints a service token per role (`test-<role>`) as `rapport token` does, and records
/// them all in one statement.
async fn record_service_tokens(state: &AppState) -> Vec<(Role, String)> {
    let mut rows = Vec::new();
    let mut tokens = Vec::new();
    for &role in Role::ALL {
        let subject = format!("test-{role}");
        let minted = state
            .jwt
            .mint(
                rapport::auth::jwt::SubjectKind::Service,
                &subject,
                Some(role),
                vec![],
                TEST_TOKEN_TTL,
            )
            .expect("mint");
        rows.push(rapport::service_tokens::record(
            &minted,
            &subject,
            role,
            &rapport::auth::Actor::Service("test".to_owned()),
        ));
        tokens.push((role, minted.token));
    }
    let mut conn = state.pool.get().await.expect("connection");
    rapport::service_tokens::store::insert(&mut conn, &rows)
        .await
        .expect("record test tokens");
    tokens
}

fn init_logging() {
    let filter = std::env::var("RAPPORT_LOG").unwrap_or_else(|_| "error".to_owned());
    rapport::telemetry::init(&filter, rapport::config::LogFormat::Pretty);
}

/// Asserts the status and a JSON body, and returns the body.
pub async fn expect_json(res: Response, status: StatusCode) -> Value {
    let got = res.status();
    let body = res.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Asserts a problem+json answer with this status and code, and returns it.
pub async fn expect_problem(res: Response, status: StatusCode, code: &str) -> Value {
    let got = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = res.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {body}");
    assert_eq!(content_type, "application/problem+json", "body: {body}");
    let problem: Value = serde_json::from_str(&body).expect("problem JSON");
    assert_eq!(problem["code"], code, "problem: {problem}");
    assert_eq!(problem["status"], status.as_u16());
    assert_eq!(problem["type"], format!("urn:rapport:problem:{code}"));
    assert!(problem["title"].is_string());
    assert_eq!(problem["request_id"].as_str(), request_id.as_deref());
    for forbidden in ["diesel", "postgres", "SELECT", "panicked", "src/"] {
        assert!(!body.contains(forbidden), "internal detail in {body}");
    }
    problem
}

/// The field names of a validation problem's errors.
pub fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
