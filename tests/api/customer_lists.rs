//! The customer list: every filter, every sort, cursors, search.

use std::collections::BTreeSet;

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::customers::create;
use crate::helpers::{TestApp, expect_json, expect_problem, fields};

/// Names of every customer the query lists, following cursors to the end.
async fn names(app: &TestApp, query: &str) -> Vec<String> {
    let token = app.token(Role::Manager);
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if query.is_empty() { "" } else { "&" };
        let path = match &cursor {
            Some(c) => format!("/v1/customers?{query}{sep}limit=2&cursor={c}"),
            None => format!("/v1/customers?{query}{sep}limit=2"),
        };
        let page = app.get_ok(&path, &token).await;
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 2);
        out.extend(data.iter().map(|c| c["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// Every explicit list order.
const SORTS: [&str; 6] = [
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "name",
    "-name",
];

async fn set(app: &TestApp, query: &str) -> BTreeSet<String> {
    names(app, query).await.into_iter().collect()
}

fn of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

async fn dataset(app: &TestApp) -> uuid::Uuid {
    let (manager, _) = app.user(Role::Manager).await;
    let rows = vec![
        json!({"name": "Alice Archer", "kind": "individual", "email": "alice@example.com", "phone": "+4930111111",
               "lifecycle_stage": "stable", "relationship_level": "proactive", "tags": ["vip", "newsletter"],
               "account_manager_id": manager, "region_type": "urban", "source": "webshop",
               "qualification": {"money": true, "authority": true, "need": true},
               "consent": {"email": {"granted": true}, "sms": {"granted": true}},
               "attributes": {"plan": "gold", "seats": 5, "beta": true}}),
        json!({"name": "bob Builder", "kind": "individual", "email": "bob@example.com",
               "lifecycle_stage": "commitment", "relationship_level": "partnership", "tags": ["vip"],
               "account_manager_id": manager, "region_type": "rural", "source": "referral",
               "qualification": {"money": false, "authority": false, "need": true},
               "consent": {"email": {"granted": true}}, "attributes": {"plan": "silver", "seats": "5"}}),
        json!({"name": "Carol Corp", "kind": "organization", "organization_name": "Carol Holdings GmbH",
               "phone": "+4989123456", "lifecycle_stage": "prospect", "tags": ["newsletter"],
               "region_type": "urban", "source": "webshop",
               "qualification": {"money": true, "authority": false, "need": true}}),
        json!({"name": "Dave Dunn", "lifecycle_stage": "dissolution", "reason_code": "price", "relationship_level": "reactive",
               "source": "fair", "attributes": {"plan": "gold"}}),
        json!({"name": "Eve Early", "email": "eve@example.org", "lifecycle_stage": "churned",
               "reason_code": "moved_away"}),
    ];
    for row in rows {
        create(app, row).await;
    }
    manager
}

#[actix_web::test]
async fn every_filter_selects_exactly_its_customers() {
    let app = TestApp::spawn().await;
    let manager = dataset(&app).await;
    let all = of(&[
        "Alice Archer",
        "bob Builder",
        "Carol Corp",
        "Dave Dunn",
        "Eve Early",
    ]);
    assert_eq!(set(&app, "").await, all);
    let cases: Vec<(String, Vec<&str>)> = vec![
        ("kind=organization".into(), vec!["Carol Corp"]),
        (
            "kind=individual".into(),
            vec!["Alice Archer", "bob Builder", "Dave Dunn", "Eve Early"],
        ),
        ("lifecycle_stage=stable".into(), vec!["Alice Archer"]),
        (
            "lifecycle_stage=stable,commitment,churned".into(),
            vec!["Alice Archer", "bob Builder", "Eve Early"],
        ),
        (
            "relationship_level=basic".into(),
            vec!["Carol Corp", "Eve Early"],
        ),
        ("relationship_level=partnership".into(), vec!["bob Builder"]),
        ("tags=vip".into(), vec!["Alice Archer", "bob Builder"]),
        ("tags=vip,newsletter".into(), vec!["Alice Archer"]),
        ("tags=VIP".into(), vec!["Alice Archer", "bob Builder"]),
        (
            format!("account_manager_id={manager}"),
            vec!["Alice Archer", "bob Builder"],
        ),
        (
            "account_manager_id=none".into(),
            vec!["Carol Corp", "Dave Dunn", "Eve Early"],
        ),
        (
            "region_type=urban".into(),
            vec!["Alice Archer", "Carol Corp"],
        ),
        ("region_type=rural".into(), vec!["bob Builder"]),
        ("source=webshop".into(), vec!["Alice Archer", "Carol Corp"]),
        ("prospect_grade=ideal".into(), vec!["Alice Archer"]),
        ("prospect_grade=reachable".into(), vec!["Carol Corp"]),
        ("prospect_grade=not_a_prospect".into(), vec!["bob Builder"]),
        (
            "consent_email=true".into(),
            vec!["Alice Archer", "bob Builder"],
        ),
        ("consent_sms=true".into(), vec!["Alice Archer"]),
        (
            "consent_sms=false".into(),
            vec!["bob Builder", "Carol Corp", "Dave Dunn", "Eve Early"],
        ),
        (
            "has_email=true".into(),
            vec!["Alice Archer", "bob Builder", "Eve Early"],
        ),
        ("has_email=false".into(), vec!["Carol Corp", "Dave Dunn"]),
        ("has_phone=true".into(), vec!["Alice Archer", "Carol Corp"]),
        (
            "has_phone=false".into(),
            vec!["bob Builder", "Dave Dunn", "Eve Early"],
        ),
        (
            "attributes.plan=gold".into(),
            vec!["Alice Archer", "Dave Dunn"],
        ),
        (
            "attributes.plan=gold&attributes.seats=5".into(),
            vec!["Alice Archer"],
        ),
        (
            "attributes.seats=5".into(),
            vec!["Alice Archer", "bob Builder"],
        ),
        ("attributes.beta=true".into(), vec!["Alice Archer"]),
        ("attributes.plan=platinum".into(), vec![]),
        (
            "kind=individual&tags=vip&source=referral".into(),
            vec!["bob Builder"],
        ),
        (
            "created_after=2000-01-01T00:00:00Z".into(),
            all.iter().map(String::as_str).collect(),
        ),
        ("created_before=2000-01-01T00:00:00Z".into(), vec![]),
        ("updated_after=2999-01-01T00:00:00Z".into(), vec![]),
        (
            "updated_before=2999-01-01T00:00:00Z".into(),
            all.iter().map(String::as_str).collect(),
        ),
    ];
    for (query, expected) in cases {
        assert_eq!(set(&app, &query).await, of(&expected), "{query}");
    }
}

#[actix_web::test]
async fn sorts_and_time_ranges() {
    let app = TestApp::spawn().await;
    dataset(&app).await;
    let created = [
        "Alice Archer",
        "bob Builder",
        "Carol Corp",
        "Dave Dunn",
        "Eve Early",
    ];
    assert_eq!(names(&app, "sort=created_at").await, created);
    let mut newest = created.to_vec();
    newest.reverse();
    assert_eq!(names(&app, "").await, newest, "newest first by default");
    assert_eq!(names(&app, "sort=-created_at").await, newest);
    // Case-insensitive by name.
    assert_eq!(names(&app, "sort=name").await, created);
    assert_eq!(names(&app, "sort=-name").await, newest);

    // Touch Carol: she becomes the most recently updated.
    let carol = app
        .get_ok("/v1/customers?kind=organization", &app.token(Role::Agent))
        .await;
    let id = carol["data"][0]["id"].as_str().unwrap().to_owned();
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            &app.token(Role::Agent),
            &json!({"source": "fair"}),
        )
        .await;
    let touched = expect_json(res, StatusCode::OK).await;
    assert_eq!(names(&app, "sort=-updated_at").await[0], "Carol Corp");
    assert_eq!(
        names(&app, "sort=updated_at").await.last().unwrap(),
        "Carol Corp"
    );
    let since = touched["updated_at"].as_str().unwrap().replace('+', "%2B");
    assert_eq!(
        set(&app, &format!("updated_after={since}")).await,
        of(&["Carol Corp"])
    );
    // Oldest first, `updated_after` is served only when an index of its own leads the list.
    let token = app.token(Role::Agent);
    let page = app
        .get_ok(
            &format!("/v1/customers?updated_after={since}&sort=-updated_at"),
            &token,
        )
        .await;
    assert_eq!(page["data"][0]["name"], "Carol Corp");
    let res = app
        .get(&format!(
            "/v1/customers?updated_after={since}&sort=created_at"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let problem = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`-created_at`, `updated_at` or `-updated_at`"),
        "{problem}"
    );
}

#[actix_web::test]
async fn several_stages_list_in_every_order_as_the_whole_list_does() {
    let app = TestApp::spawn().await;
    // Stages interleaved in creation, update and name order; names in mixed case.
    let people = [
        ("mia Stone", "stable"),
        ("Ben Ash", "commitment"),
        ("Zoe Park", "exploration"),
        ("ada Lane", "stable"),
        ("Kim Rowe", "prospect"),
        ("Lea Berg", "commitment"),
        ("owen Hart", "exploration"),
        ("Cid Moss", "stable"),
    ];
    let mut ids = Vec::new();
    for (name, stage) in people {
        let created = create(&app, json!({"name": name, "lifecycle_stage": stage})).await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let agent = app.token(Role::Agent);
    for i in [3, 0, 5] {
        let res = app
            .send(
                Method::PATCH,
                &format!("/v1/customers/{}", ids[i]),
                &agent,
                &json!({"source": "fair"}),
            )
            .await;
        expect_json(res, StatusCode::OK).await;
    }
    let stages = ["stable", "commitment", "exploration"];
    let in_stages: BTreeSet<&str> = people
        .iter()
        .filter(|(_, stage)| stages.contains(stage))
        .map(|(name, _)| *name)
        .collect();
    for sort in SORTS {
        let whole: Vec<String> = names(&app, &format!("sort={sort}"))
            .await
            .into_iter()
            .filter(|name| in_stages.contains(name.as_str()))
            .collect();
        assert_eq!(whole.len(), 7);
        let listed = names(
            &app,
            &format!("lifecycle_stage={}&sort={sort}", stages.join(",")),
        )
        .await;
        assert_eq!(listed, whole, "sort={sort}");
        // Two stages, and one, agree too.
        let two: Vec<&String> = whole
            .iter()
            .filter(|name| !["Zoe Park", "owen Hart"].contains(&name.as_str()))
            .collect();
        let listed = names(
            &app,
            &format!("lifecycle_stage=commitment,stable&sort={sort}"),
        )
        .await;
        assert_eq!(listed.iter().collect::<Vec<_>>(), two, "sort={sort}");
    }
}

/// Rows of `customer_tags` that differ from the live customers' tags as the customers hold
/// them (either way).
async fn tag_rows_out_of_step(app: &TestApp) -> i64 {
    app.count(
        "((SELECT customer_id, tag, created_at, updated_at, name_key FROM customer_tags \
           EXCEPT SELECT DISTINCT c.id, t, c.created_at, c.updated_at, lower(c.name) \
                  FROM customers c, unnest(c.tags) t WHERE c.deleted_at IS NULL) \
          UNION ALL \
          (SELECT DISTINCT c.id, t, c.created_at, c.updated_at, lower(c.name) \
           FROM customers c, unnest(c.tags) t WHERE c.deleted_at IS NULL \
           EXCEPT SELECT customer_id, tag, created_at, updated_at, name_key FROM customer_tags)) d",
    )
    .await
}

#[actix_web::test]
async fn a_tag_lists_in_every_order_as_the_whole_list_does_through_every_write() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    let mut ids = std::collections::BTreeMap::new();
    for (name, tags) in [
        ("mia Stone", json!(["vip"])),
        ("Ben Ash", json!(["vip", "newsletter"])),
        ("Zoe Park", json!([])),
        ("ada Lane", json!(["newsletter"])),
        ("Kim Rowe", json!(["vip", "vip"])),
        ("Lea Berg", json!(["wholesale", "vip"])),
    ] {
        let created = create(&app, json!({"name": name, "tags": tags})).await;
        ids.insert(name, created["id"].as_str().unwrap().to_owned());
    }
    // Imported set-wise.
    crate::imports::csv(
        &app,
        "",
        "name,tags\nCid Moss,vip;newsletter\nowen Hart,wholesale\n",
    )
    .await;
    let patch = async |name: &str, body: Value| {
        let res = app
            .send(
                Method::PATCH,
                &format!("/v1/customers/{}", ids[name]),
                &agent,
                &body,
            )
            .await;
        expect_json(res, StatusCode::OK).await;
    };
    patch("Zoe Park", json!({"tags": ["vip"]})).await; // given
    patch("mia Stone", json!({"tags": ["newsletter"]})).await; // taken
    patch("Kim Rowe", json!({"name": "aaron Rowe"})).await; // renamed: first by name
    patch("Ben Ash", json!({"source": "fair"})).await; // updated: newest by update
    let res = app
        .send(
            Method::DELETE,
            &format!("/v1/customers/{}", ids["Lea Berg"]),
            &app.token(Role::Admin),
            &json!({}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(tag_rows_out_of_step(&app).await, 0);

    let vip = ["Ben Ash", "aaron Rowe", "Cid Moss", "Zoe Park"];
    for sort in SORTS {
        let whole = names(&app, &format!("sort={sort}")).await;
        let expected: Vec<&String> = whole.iter().filter(|n| vip.contains(&n.as_str())).collect();
        assert_eq!(expected.len(), 4, "sort={sort}: {whole:?}");
        // Led by the tag; with a stage, the stage's index leads and the tag is a condition
        // (all are prospects here).
        for filter in ["tags=vip", "lifecycle_stage=prospect&tags=vip"] {
            let listed = names(&app, &format!("{filter}&sort={sort}")).await;
            assert_eq!(
                listed.iter().collect::<Vec<_>>(),
                expected,
                "{filter}&sort={sort}"
            );
        }
        let none = names(
            &app,
            &format!("lifecycle_stage=acquaintance&tags=vip&sort={sort}"),
        )
        .await;
        assert!(none.is_empty(), "sort={sort}: {none:?}");
        let both: Vec<&String> = expected
            .iter()
            .copied()
            .filter(|n| ["Ben Ash", "Cid Moss"].contains(&n.as_str()))
            .collect();
        let listed = names(&app, &format!("tags=vip,newsletter&sort={sort}")).await;
        assert_eq!(
            listed.iter().collect::<Vec<_>>(),
            both,
            "tags=vip,newsletter&sort={sort}"
        );
    }
    // Deleted customers are listed from the customers themselves.
    let admin = app.token(Role::Admin);
    let page = app
        .get_ok("/v1/customers?tags=vip&deleted=only", &admin)
        .await;
    assert_eq!(page["data"][0]["name"], "Lea Berg");

    // Restored, the customer is listed again.
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{}/restore", ids["Lea Berg"]),
            &admin,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(tag_rows_out_of_step(&app).await, 0);
    assert!(set(&app, "tags=vip&sort=name").await.contains("Lea Berg"));
}

#[actix_web::test]
async fn cursors_stay_stable_while_rows_are_inserted() {
    let app = TestApp::spawn().await;
    for i in 0..7 {
        create(&app, json!({"name": format!("Before {i}")})).await;
    }
    let token = app.token(Role::Agent);
    for sort in ["created_at", "-created_at", "name", "-name", "updated_at"] {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        let mut inserted = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/customers?sort={sort}&limit=3&cursor={c}"),
                None => format!("/v1/customers?sort={sort}&limit=3"),
            };
            let page = app.get_ok(&path, &token).await;
            seen.extend(
                page["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["name"].as_str().unwrap().to_owned()),
            );
            // Someone inserts while we page.
            create(&app, json!({"name": format!("During {sort} {inserted}")})).await;
            inserted += 1;
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{sort}: a row was served twice: {seen:?}"
        );
        for i in 0..7 {
            assert!(
                seen.contains(&format!("Before {i}")),
                "{sort}: Before {i} was skipped"
            );
        }
    }
    // A cursor belongs to its sort.
    let page = app.get_ok("/v1/customers?sort=name&limit=1", &token).await;
    let cursor = page["next_cursor"].as_str().unwrap();
    let res = app
        .get(&format!("/v1/customers?sort=created_at&cursor={cursor}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let p = expect_problem(res, StatusCode::BAD_REQUEST, "invalid_query").await;
    assert_eq!(fields(&p), ["cursor"]);
}

#[actix_web::test]
async fn q_finds_customers_despite_typos() {
    let app = TestApp::spawn().await;
    dataset(&app).await;
    create(
        &app,
        json!({"name": "Ada Lovelace", "email": "countess@example.com"}),
    )
    .await;
    create(&app, json!({"name": "Adam Lovell"})).await;
    let token = app.token(Role::Viewer);
    let first = |q: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let page = app.get_ok(&format!("/v1/customers?q={q}"), &token).await;
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        first("lovelace").await.first().map(String::as_str),
        Some("Ada Lovelace")
    );
    assert_eq!(
        first("Ada%20Lovlace").await.first().map(String::as_str),
        Some("Ada Lovelace")
    );
    assert_eq!(
        first("Lvoelace").await.first().map(String::as_str),
        Some("Ada Lovelace"),
        "two letters swapped"
    );
    assert_eq!(first("countess").await, ["Ada Lovelace"]);
    assert_eq!(first("holdings").await, ["Carol Corp"], "organization name");
    assert_eq!(first("%2B4989").await, ["Carol Corp"], "phone fragment");
    assert_eq!(first("early").await, ["Eve Early"]);
    assert!(first("zzzzqqq").await.is_empty());
    // Relevance pages have cursors too.
    let page = app.get_ok("/v1/customers?q=love&limit=1", &token).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"].as_str().unwrap();
    let next = app
        .get_ok(
            &format!("/v1/customers?q=love&limit=1&cursor={cursor}"),
            &token,
        )
        .await;
    assert_ne!(next["data"][0]["id"], page["data"][0]["id"]);
    // Ties (same name, same distance) page by id: each exactly once, even when there are more
    // than one fetch window (32 rows) holds.
    for _ in 0..40 {
        create(&app, json!({"name": "Tilda Twin"})).await;
    }
    let mut seen = BTreeSet::new();
    let mut served = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers?q=tilda+twin&limit=7&cursor={c}"),
            None => "/v1/customers?q=tilda+twin&limit=7".to_owned(),
        };
        let page = app.get_ok(&path, &token).await;
        for c in page["data"].as_array().unwrap() {
            if c["name"] == "Tilda Twin" {
                served += 1;
                seen.insert(c["id"].as_str().unwrap().to_owned());
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!((served, seen.len()), (40, 40));
    // Explicit sorts still apply with q.
    let page = app.get_ok("/v1/customers?q=lov&sort=name", &token).await;
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada Lovelace", "Adam Lovell"]);
}

#[actix_web::test]
async fn bad_list_parameters_are_400_naming_them() {
    let app = TestApp::spawn().await;
    let token = app.token(Role::Viewer);
    app.expect_bad_queries(
        "/v1/customers",
        &token,
        &[
            ("colour=red", "colour"),
            ("kind=robot", "kind"),
            ("lifecycle_stage=stable,friend", "lifecycle_stage"),
            ("relationship_level=x", "relationship_level"),
            ("tags=a,,b", "tags"),
            ("account_manager_id=bob", "account_manager_id"),
            ("prospect_grade=great", "prospect_grade"),
            ("consent_email=maybe", "consent_email"),
            ("created_after=yesterday", "created_after"),
            ("has_phone=1", "has_phone"),
            ("q=a", "q"),
            ("sort=age", "sort"),
            ("region_type=rural&sort=name", "sort"),
            ("consent_sms=true&sort=-updated_at", "sort"),
            ("created_before=2026-01-01T00:00:00Z&sort=-name", "sort"),
            ("updated_after=2026-01-01T00:00:00Z&sort=created_at", "sort"),
            (
                "lifecycle_stage=stable&updated_after=2026-01-01T00:00:00Z&sort=created_at",
                "sort",
            ),
            ("sort=relevance", "sort"),
            ("deleted=all", "deleted"),
            ("attributes.bad%20key=1", "attributes.bad key"),
            ("limit=500", "limit"),
            ("cursor=nonsense", "cursor"),
        ],
    )
    .await;
    let res = app.get("/v1/customers").send().await.unwrap();
    expect_problem(res, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let _: Value = app.get_ok("/v1/customers", &token).await;
}

/// The names `q` finds, best first (one page of 50).
async fn found(app: &TestApp, q: &str) -> Vec<String> {
    let page = app
        .get_ok(&format!("/v1/customers?q={q}"), &app.token(Role::Manager))
        .await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[actix_web::test]
async fn search_follows_every_write_and_ranks_best_first() {
    let app = TestApp::spawn().await;
    let agent = app.token(Role::Agent);
    // Ranked by the sum of the words' distances, then id: exact words before near ones;
    // `smyth` is too far from `smith` to match.
    for name in ["Mary Smithson", "Marty Smith", "Mary Smith", "Mary Smyth"] {
        create(&app, json!({"name": name})).await;
    }
    assert_eq!(
        found(&app, "mary+smith").await,
        ["Mary Smith", "Mary Smithson", "Marty Smith"]
    );
    assert_eq!(
        found(&app, "smiht").await[0],
        "Marty Smith",
        "a typo, ties by id"
    );
    assert_eq!(
        found(&app, "smi").await.len(),
        4,
        "the beginning of a word, as one types"
    );

    // A rename, a new organisation name and a new email are searched at once; the old words
    // no longer find the customer.
    let c = create(
        &app,
        json!({"name": "Grace Hopper", "email": "admiral@navy.example"}),
    )
    .await;
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());
    let res = app
        .patch(&path)
        .bearer_auth(&agent)
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(
            json!({"name": "Grace Brewster", "organization_name": "Cobol Works",
                   "email": "compiler@navy.example"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    assert_eq!(found(&app, "brewster").await, ["Grace Brewster"]);
    assert_eq!(found(&app, "cobol").await, ["Grace Brewster"]);
    assert_eq!(found(&app, "compiler").await, ["Grace Brewster"]);
    assert!(found(&app, "hopper").await.is_empty());
    assert!(found(&app, "admiral").await.is_empty());

    // Erasure forgets the words with the personal data.
    let res = app
        .post(&format!("{path}/erase"))
        .bearer_auth(app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    assert!(found(&app, "brewster").await.is_empty());

    // An import (one statement for many rows) is searchable as soon as it is written.
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(app.token(Role::Manager))
        .header("Content-Type", "text/csv")
        .body("name,email\nKatherine Johnson,kj@nasa.example\nDorothy Vaughan,\n")
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::CREATED).await;
    assert_eq!(found(&app, "jonson").await, ["Katherine Johnson"]);
    assert_eq!(found(&app, "dorothy+vaughan").await, ["Dorothy Vaughan"]);
    // Numbers are words that match exactly.
    create(&app, json!({"name": "Agent 007 Bond"})).await;
    assert_eq!(found(&app, "007").await, ["Agent 007 Bond"]);
    assert!(found(&app, "0077").await.is_empty());
}

#[actix_web::test]
async fn the_word_typed_ranks_first_whether_or_not_its_customers_fill_the_page() {
    let app = TestApp::spawn().await;
    // `ababab` has every trigram of `abab`: by trigrams alone the two are equally near, and
    // by id `Ababab` (older) would come first. The word typed comes first all the same,
    // whether its customers fill the page (read without the vocabulary) or not.
    for name in ["Zoe Ababab", "Yan Abab", "Xia Abab", "Wei Ababa"] {
        create(&app, json!({"name": name})).await;
    }
    let expected = ["Yan Abab", "Xia Abab", "Zoe Ababab", "Wei Ababa"];
    assert_eq!(found(&app, "abab").await, expected, "one page, not filled");
    assert_eq!(names(&app, "q=abab").await, expected, "pages of two");
    let page = app
        .get_ok("/v1/customers?q=abab&limit=1", &app.token(Role::Manager))
        .await;
    assert_eq!(page["data"][0]["name"], "Yan Abab", "a page the word fills");
    // A word nobody holds as typed reads its near words, as before.
    assert_eq!(found(&app, "ababx").await.len(), 4);
}

#[actix_web::test]
async fn an_exact_email_or_phone_comes_first() {
    let app = TestApp::spawn().await;
    // The partial matches are older (smaller ids): by id alone they would come first.
    for (name, email, phone) in [
        ("Longer Address", "ada@example.com.au", "+493012345678"),
        ("Another Longer", "mada@example.com", "+4930123456789"),
        ("Exact Person", "ada@example.com", "+49301234567"),
    ] {
        create(&app, json!({"name": name, "email": email, "phone": phone})).await;
    }
    assert_eq!(
        found(&app, "ada@example.com").await,
        ["Exact Person", "Longer Address", "Another Longer"]
    );
    assert_eq!(
        found(&app, "%2B49301234567").await,
        ["Exact Person", "Longer Address", "Another Longer"]
    );
    // Pages of one: the exact match, then the others in id order, each once.
    let token = app.token(Role::Manager);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers?q=ada@example.com&limit=1&cursor={c}"),
            None => "/v1/customers?q=ada@example.com&limit=1".to_owned(),
        };
        let page = app.get_ok(&path, &token).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["Exact Person", "Longer Address", "Another Longer"]);
}

#[actix_web::test]
async fn full_names_rank_the_same_however_many_near_words_they_have() {
    let app = TestApp::spawn().await;
    // Three words near `mary` and three near `smith`.
    for name in [
        "Marty Smithe",
        "Mary Smith",
        "Maryann Smiths",
        "Marty Smith",
        "Mary Smithe",
        "Maryann Smith",
    ] {
        create(&app, json!({"name": name})).await;
    }
    // By the sum of the words' distances; `Mary Smith` (both exact) first.
    let all = found(&app, "mary+smith").await;
    assert_eq!(all.len(), 6);
    assert_eq!(all[0], "Mary Smith");
    // Page by page (two at a time) gives the same order, each customer once.
    assert_eq!(names(&app, "q=mary+smith").await, all);
    // Under another sort, the same customers match.
    let mut by_name = names(&app, "q=mary+smith&sort=name").await;
    let mut expected = all.clone();
    expected.sort_by_key(|n| n.to_lowercase());
    by_name.sort_by_key(|n| n.to_lowercase());
    assert_eq!(by_name, expected);

    // The housekeeping forgets words no customer holds any more.
    let c = create(&app, json!({"name": "Quentin Zyxwvut"})).await;
    let vocabulary = async || -> Vec<String> {
        #[derive(diesel::QueryableByName)]
        struct Word {
            #[diesel(sql_type = diesel::sql_types::Text)]
            word: String,
        }
        let mut conn = app.db.connect().await;
        let words: Vec<Word> = diesel_async::RunQueryDsl::load(
            diesel::sql_query(
                "SELECT word FROM search_vocabulary \
                 WHERE word IN ('zyxwvut', 'mary', 'quentin', 'blake') ORDER BY word",
            ),
            &mut conn,
        )
        .await
        .unwrap();
        words.into_iter().map(|w| w.word).collect()
    };
    assert_eq!(vocabulary().await, ["mary", "quentin", "zyxwvut"]);
    let path = format!("/v1/customers/{}", c["id"].as_str().unwrap());
    let res = app
        .patch(&path)
        .bearer_auth(app.token(Role::Agent))
        .header("If-Match", "\"1\"")
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"name": "Quentin Blake"}).to_string())
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    assert!(found(&app, "zyxwvut").await.is_empty());
    rapport::customer_query::forget_unused_words(&mut app.db.connect().await)
        .await
        .unwrap();
    assert_eq!(vocabulary().await, ["blake", "mary", "quentin"]);
}

/// Deleted customers are listed in every order, across pages (each order has its own index
/// of the deleted rows: migration `2026-12-10-000030`).
#[actix_web::test]
async fn deleted_customers_list_in_every_sort_across_pages() {
    let app = TestApp::spawn().await;
    dataset(&app).await;
    let manager = app.token(Role::Manager);
    let page = app.get_ok("/v1/customers?limit=50", &manager).await;
    let id = |name: &str| {
        page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .unwrap()
    };
    // Deleted in this order, so that their last changes run opposite to their names.
    for name in ["Eve Early", "Carol Corp", "Alice Archer"] {
        let res = app
            .delete(&format!("/v1/customers/{}", id(name)), &manager, None)
            .await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT);
    }
    let by_name = ["Alice Archer", "Carol Corp", "Eve Early"];
    let by_change = ["Eve Early", "Carol Corp", "Alice Archer"];
    let reversed = |names: &[&str]| names.iter().rev().map(|n| (*n).to_owned()).collect();
    let forward = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect();
    let cases: [(&str, Vec<String>); 7] = [
        ("", reversed(&by_name)),
        ("created_at", forward(&by_name)),
        ("-created_at", reversed(&by_name)),
        ("updated_at", forward(&by_change)),
        ("-updated_at", reversed(&by_change)),
        ("name", forward(&by_name)),
        ("-name", reversed(&by_name)),
    ];
    for (sort, expected) in cases {
        let query = if sort.is_empty() {
            "deleted=only".to_owned()
        } else {
            format!("deleted=only&sort={sort}")
        };
        assert_eq!(names(&app, &query).await, expected, "{query}");
    }
}
