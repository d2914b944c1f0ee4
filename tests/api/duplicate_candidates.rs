//! The duplicate candidates kept on write (migration 2026-12-05-000030): after every kind of
//! write to customers (create, update, delete, restore, batch, import, merge, unmerge,
//! erasure) the list shows exactly the pairs the rules give, and the candidates equal those
//! computed from scratch by grouping every live customer by each key (the list's former
//! SQL, kept here as the oracle). Also: the cap on a key's group, the score function's
//! agreement with `customers::matching`, and concurrent writers completing a pair.

use diesel::sql_types::{Array, BigInt, Text, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use rapport::auth::Role;
use rapport::customers::json::DuplicateReason;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, expect_json};

/// Every likely pair from scratch: each rule groups the live customers by its key (2 to 20
/// holders), pairs of one kind; scores as `customers::matching::score`.
const ORACLE: &str = "
WITH live AS (SELECT * FROM customers WHERE deleted_at IS NULL),
ids AS (SELECT id, unnest(customer_id_values(attributes)) AS k FROM live
        UNION ALL SELECT id, external_id FROM live WHERE external_id IS NOT NULL),
keys AS (
    SELECT 'email' AS reason, email_key AS k, id FROM live WHERE email_key IS NOT NULL
    UNION ALL SELECT 'phone', phone, id FROM live WHERE phone IS NOT NULL
    UNION ALL SELECT 'name_address', address_key, id FROM live WHERE address_key IS NOT NULL
    UNION ALL SELECT DISTINCT 'external_id', k, id FROM ids),
groups AS (SELECT reason, k FROM keys GROUP BY 1, 2 HAVING count(*) BETWEEN 2 AND 20),
pairs AS (
    SELECT DISTINCT a.id AS a, b.id AS b, g.reason
    FROM groups g
    JOIN keys ka ON ka.reason = g.reason AND ka.k = g.k
    JOIN keys kb ON kb.reason = g.reason AND kb.k = g.k AND kb.id > ka.id
    JOIN live a ON a.id = ka.id JOIN live b ON b.id = kb.id AND b.kind = a.kind
    WHERE g.reason <> 'name_address' OR similarity(lower(a.name), lower(b.name)) >= 0.5)
SELECT a, b, array_agg(reason ORDER BY reason) AS reasons FROM pairs GROUP BY a, b ORDER BY a, b";

#[derive(Debug, PartialEq, diesel::QueryableByName)]
struct Candidate {
    #[diesel(sql_type = SqlUuid)]
    a: Uuid,
    #[diesel(sql_type = SqlUuid)]
    b: Uuid,
    #[diesel(sql_type = Array<Text>)]
    reasons: Vec<String>,
}

/// The candidates as kept, after checking them against the oracle and each score against
/// `customers::matching::score`: (a, b, reasons), by ids.
async fn candidates(app: &TestApp) -> Vec<(String, String, Vec<String>)> {
    #[derive(diesel::QueryableByName)]
    struct Kept {
        #[diesel(sql_type = SqlUuid)]
        a: Uuid,
        #[diesel(sql_type = SqlUuid)]
        b: Uuid,
        #[diesel(sql_type = Array<Text>)]
        reasons: Vec<String>,
        #[diesel(sql_type = BigInt)]
        score: i64,
    }
    let mut conn = app.db.connect().await;
    let kept: Vec<Kept> = diesel::sql_query(
        "SELECT customer_a AS a, customer_b AS b, reasons, score::bigint AS score \
         FROM customer_duplicate_pairs ORDER BY 1, 2",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let oracle: Vec<Candidate> = diesel::sql_query(ORACLE).load(&mut conn).await.unwrap();
    let as_kept: Vec<Candidate> = kept
        .iter()
        .map(|k| Candidate {
            a: k.a,
            b: k.b,
            reasons: k.reasons.clone(),
        })
        .collect();
    assert_eq!(
        as_kept, oracle,
        "the kept candidates are those from scratch"
    );
    for k in &kept {
        let reasons: Vec<DuplicateReason> = k.reasons.iter().map(|r| r.parse().unwrap()).collect();
        assert_eq!(k.score, rapport::customers::matching::score(&reasons));
    }
    kept.into_iter()
        .map(|k| (k.a.to_string(), k.b.to_string(), k.reasons))
        .collect()
}

/// The pairs the list shows (all pages), as (a, b, reasons), by ids.
async fn listed(app: &TestApp) -> Vec<(String, String, Vec<String>)> {
    let token = app.token(Role::Admin);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers/duplicates?limit=3&cursor={c}"),
            None => "/v1/customers/duplicates?limit=3".to_owned(),
        };
        let page = app.get_ok(&path, &token).await;
        for p in page["data"].as_array().unwrap() {
            let ids: Vec<String> = p["customers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_owned())
                .collect();
            let reasons = p["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect();
            out.push((ids[0].clone(), ids[1].clone(), reasons));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    out.sort();
    out
}

/// Asserts the list and the candidates are exactly `expected` (pairs in any order).
async fn expect_pairs(app: &TestApp, expected: &[(&str, &str, &[&str])], step: &str) {
    let mut want: Vec<(String, String, Vec<String>)> = expected
        .iter()
        .map(|(a, b, r)| {
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            (
                (*a).to_owned(),
                (*b).to_owned(),
                r.iter().map(|x| (*x).to_owned()).collect(),
            )
        })
        .collect();
    want.sort();
    assert_eq!(candidates(app).await, want, "candidates after {step}");
    assert_eq!(listed(app).await, want, "list after {step}");
}

async fn create(app: &TestApp, body: Value) -> String {
    crate::customers::create(app, body).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn patch(app: &TestApp, id: &str, body: Value) {
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            &app.token(Role::Manager),
            &body,
        )
        .await;
    expect_json(res, StatusCode::OK).await;
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app
        .send(Method::POST, path, &app.token(Role::Admin), &body)
        .await;
    let status = res.status();
    let body = res.json::<Value>().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[actix_web::test]
async fn every_write_keeps_the_candidates_exact() {
    let app = TestApp::spawn().await;
    let manager = app.token(Role::Manager);

    // Create: the same email once normalised.
    let a = create(
        &app,
        json!({"name": "Ada Lovelace", "email": "ada.lovelace@example.com"}),
    )
    .await;
    let b = create(
        &app,
        json!({"name": "Ada King", "email": "AdaLovelace+crm@example.com"}),
    )
    .await;
    expect_pairs(&app, &[(&a, &b, &["email"])], "create").await;

    // Update: b's email moves away, its phone joins another's.
    let c = create(&app, json!({"name": "Carl", "phone": "+4930111"})).await;
    patch(
        &app,
        &b,
        json!({"email": "king@example.com", "phone": "+49 30 111"}),
    )
    .await;
    expect_pairs(&app, &[(&b, &c, &["phone"])], "update").await;
    // A name change that leaves the keys alone but breaks the name rule, and back.
    let address = json!({"line1": "1 Main Street", "postal_code": "10117", "city": "Berlin", "country": "DE"});
    patch(&app, &a, json!({"address": address.clone()})).await;
    let d = create(
        &app,
        json!({"name": "Ada Lovelace", "address": address.clone()}),
    )
    .await;
    expect_pairs(
        &app,
        &[(&b, &c, &["phone"]), (&a, &d, &["name_address"])],
        "address",
    )
    .await;
    patch(&app, &d, json!({"name": "Zed Zulu"})).await;
    expect_pairs(&app, &[(&b, &c, &["phone"])], "rename").await;
    patch(&app, &d, json!({"name": "Ada Lovelace"})).await;
    expect_pairs(
        &app,
        &[(&b, &c, &["phone"]), (&a, &d, &["name_address"])],
        "rename back",
    )
    .await;

    // Delete and restore.
    let res = app
        .request(Method::DELETE, &format!("/v1/customers/{c}"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    expect_pairs(&app, &[(&a, &d, &["name_address"])], "delete").await;
    post(&app, &format!("/v1/customers/{c}/restore"), json!({})).await;
    expect_pairs(
        &app,
        &[(&b, &c, &["phone"]), (&a, &d, &["name_address"])],
        "restore",
    )
    .await;

    // Batch: another with c's phone and an id of another system naming a's external id.
    patch(&app, &a, json!({"external_id": "shop-1"})).await;
    let out = post(
        &app,
        "/v1/customers/batch",
        json!({"items": [
            {"action": "create", "customer": {"name": "Eve", "phone": "+4930111"}},
            {"action": "upsert", "customer": {"name": "Fay", "external_id": "crm-6",
                                              "attributes": {"shop_id": "shop-1"}}}
        ]}),
    )
    .await;
    let e = out["results"][0]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let f = out["results"][1]["customer"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    expect_pairs(
        &app,
        &[
            (&b, &c, &["phone"]),
            (&b, &e, &["phone"]),
            (&c, &e, &["phone"]),
            (&a, &d, &["name_address"]),
            (&a, &f, &["external_id"]),
        ],
        "batch",
    )
    .await;

    // Import: a row with d's address and a's email, and an update of f (by external id)
    // that drops its attribute.
    let report = ndjson(
        &app,
        "?mode=upsert",
        "{\"name\": \"Ada Lovelace\", \"email\": \"ada.lovelace+shop@example.com\", \
         \"address\": {\"line1\": \"1 Main Street\", \"postal_code\": \"10117\"}, \
         \"external_id\": \"imp-1\"}\n\
         {\"name\": \"Fay\", \"external_id\": \"crm-6\", \"attributes\": {\"shop_id\": \"shop-2\"}}\n",
    )
    .await;
    assert_eq!(crate::imports::counts(&report), [2, 1, 1, 0, 0], "{report}");
    let g = customer_with_external_id(&app, "imp-1").await;
    expect_pairs(
        &app,
        &[
            (&b, &c, &["phone"]),
            (&b, &e, &["phone"]),
            (&c, &e, &["phone"]),
            (&a, &d, &["name_address"]),
            (&a, &g, &["email", "name_address"]),
            (&d, &g, &["name_address"]),
        ],
        "import",
    )
    .await;

    // Merge g into a: g's pairs go with it (a tombstone); unmerge brings them back.
    post(
        &app,
        &format!("/v1/customers/{a}/merge"),
        json!({"merge_ids": [g]}),
    )
    .await;
    expect_pairs(
        &app,
        &[
            (&b, &c, &["phone"]),
            (&b, &e, &["phone"]),
            (&c, &e, &["phone"]),
            (&a, &d, &["name_address"]),
        ],
        "merge",
    )
    .await;
    post(&app, &format!("/v1/customers/{a}/unmerge"), json!({})).await;
    expect_pairs(
        &app,
        &[
            (&b, &c, &["phone"]),
            (&b, &e, &["phone"]),
            (&c, &e, &["phone"]),
            (&a, &d, &["name_address"]),
            (&a, &g, &["email", "name_address"]),
            (&d, &g, &["name_address"]),
        ],
        "unmerge",
    )
    .await;

    // Erasure: every pair of the erased customer goes.
    post(&app, &format!("/v1/customers/{e}/erase"), json!({})).await;
    expect_pairs(
        &app,
        &[
            (&b, &c, &["phone"]),
            (&a, &d, &["name_address"]),
            (&a, &g, &["email", "name_address"]),
            (&d, &g, &["name_address"]),
        ],
        "erase",
    )
    .await;
}

pub(crate) async fn ndjson(app: &TestApp, query: &str, body: &str) -> Value {
    let res = app
        .post(&format!("/v1/imports/customers{query}"))
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "application/x-ndjson")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await
}

async fn customer_with_external_id(app: &TestApp, external_id: &str) -> String {
    app.get_ok(
        &format!("/v1/customers/by-external-id/{external_id}"),
        &app.token(Role::Admin),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn a_key_held_by_more_than_twenty_makes_no_pairs() {
    let app = TestApp::spawn().await;
    // 21 customers on one switchboard number, in one import: no pairs.
    let mut file = "name,phone\n".to_owned();
    for i in 0..21 {
        file.push_str(&format!("Desk {i},+4930555\n"));
    }
    let report = crate::imports::csv(&app, "", &file).await;
    assert_eq!(report["created"], 21);
    assert!(candidates(&app).await.is_empty());
    assert!(listed(&app).await.is_empty());
    // One leaves the number: the 20 left make 190 pairs.
    app.sql("UPDATE customers SET phone = '+4930556' WHERE name = 'Desk 0'")
        .await;
    assert_eq!(candidates(&app).await.len(), 190);
    assert_eq!(listed(&app).await.len(), 190);
    // It comes back: none again.
    app.sql("UPDATE customers SET phone = '+4930555' WHERE name = 'Desk 0'")
        .await;
    assert!(candidates(&app).await.is_empty());
}

#[actix_web::test]
async fn the_database_scores_as_the_rules_do() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.connect().await;
    let all = [
        DuplicateReason::ExternalId,
        DuplicateReason::Email,
        DuplicateReason::Phone,
        DuplicateReason::NameAddress,
    ];
    #[derive(diesel::QueryableByName)]
    struct Score {
        #[diesel(sql_type = BigInt)]
        score: i64,
    }
    for mask in 1..16u8 {
        let reasons: Vec<DuplicateReason> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, r)| *r)
            .collect();
        let names: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
        let row: Score = diesel::sql_query("SELECT customer_duplicate_score($1)::bigint AS score")
            .bind::<Array<Text>, _>(&names)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            row.score,
            rapport::customers::matching::score(&reasons),
            "{names:?}"
        );
    }
}

#[actix_web::test]
async fn two_writers_adding_the_halves_of_a_pair_both_count() {
    let app = TestApp::spawn().await;
    // Two transactions each insert one half and hold their lock on the key's group; the
    // second waits for the first to commit, then sees its customer.
    let mut one = app.db.connect().await;
    let mut two = app.db.connect().await;
    diesel::sql_query("BEGIN").execute(&mut one).await.unwrap();
    diesel::sql_query(
        "INSERT INTO customers (id, kind, name, email) \
         VALUES (uuid_v7(), 'individual', 'One', 'twin@example.com')",
    )
    .execute(&mut one)
    .await
    .unwrap();
    let second = tokio::spawn(async move {
        diesel::sql_query(
            "INSERT INTO customers (id, kind, name, email) \
             VALUES (uuid_v7(), 'individual', 'Two', 't.win@example.com')",
        )
        .execute(&mut two)
        .await
        .unwrap();
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second writer waits on the group"
    );
    diesel::sql_query("COMMIT").execute(&mut one).await.unwrap();
    second.await.unwrap();
    let pairs = candidates(&app).await;
    assert_eq!(pairs.len(), 1);
    assert_eq!(pairs[0].2, vec!["email".to_owned()]);
}
