//! Owned-only access: two managers limited to the customers they manage, a customer of each
//! and one of nobody, with everything that hangs off them. On every path that reaches a
//! customer, the other manager's customer (and what hangs off it) is invisible or `404`, the
//! caller's own works, and a user with access to all sees everything.

use rapport::auth::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, expect_json, expect_problem, fields};

/// One customer and what hangs off it.
struct Book {
    customer: String,

    external_id: String,
    interaction: String,
    follow_up: String,
    purchase: String,
    response: String,
    opportunity: String,
}

struct World {
    app: TestApp,
    /// Manager limited to their own customers, and their token.
    a_id: Uuid,
    a: String,
    b: String,
    /// A manager who reaches every customer.
    all: String,
    survey: String,
    own: Book,
    other: Book,
    nobodys: Book,
}

async fn created(res: reqwest::Response) -> Value {
    expect_json(res, StatusCode::CREATED).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

async fn book(
    app: &TestApp,
    survey: &str,
    tag: &str,
    manager: Option<Uuid>,
    deal_owner: Uuid,
) -> Book {
    let admin = app.token(Role::Admin);
    let name = format!("Customer {tag}");
    let external_id = format!("ext-{tag}");
    let customer = created(
        app.send(
            Method::POST,
            "/v1/customers",
            &admin,
            &json!({"name": name, "external_id": external_id, "account_manager_id": manager,
                    "lifecycle_stage": "stable", "email": format!("{tag}@example.com")}),
        )
        .await,
    )
    .await;
    let c = id(&customer);
    let interaction = created(
        app.send(
            Method::POST,
            &format!("/v1/customers/{c}/interactions"),
            &admin,
            &json!({"channel": "phone", "direction": "inbound", "kind": "complaint",
                    "severity": "high", "subject": format!("Complaint {tag}"),
                    "occurred_at": "2026-11-20T10:00:00Z"}),
        )
        .await,
    )
    .await;
    let follow_up = created(
        app.send(
            Method::POST,
            &format!("/v1/customers/{c}/interactions"),
            &admin,
            &json!({"channel": "phone", "direction": "outbound", "kind": "note",
                    "subject": format!("Call back {tag}"), "due_at": "2030-01-01T10:00:00Z"}),
        )
        .await,
    )
    .await;
    let occurred = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let purchase = created(
        app.send(
            Method::POST,
            &format!("/v1/customers/{c}/purchases"),
            &admin,
            &json!({"external_ref": format!("till-{tag}"), "amount": 4990, "currency": "EUR",
                    "occurred_at": occurred}),
        )
        .await,
    )
    .await;
    let res = app
        .post(&format!("/v1/customers/{c}/points"))
        .bearer_auth(&admin)
        .header("Idempotency-Key", Uuid::now_v7().to_string())
        .json(&json!({"kind": "adjust", "points": 50, "reason": "welcome"}))
        .send()
        .await
        .unwrap();
    created(res).await;
    let response = created(
        app.send(
            Method::POST,
            &format!("/v1/surveys/{survey}/responses"),
            &admin,
            &json!({"customer_id": c, "answers": {"recommend": 3}}),
        )
        .await,
    )
    .await;
    let close = (chrono::Utc::now() + chrono::Duration::days(20))
        .date_naive()
        .to_string();
    let opportunity = created(
        app.send(
            Method::POST,
            "/v1/opportunities",
            &admin,
            &json!({"customer_id": c, "title": format!("Deal {tag}"), "amount": 1000,
                    "currency": "EUR", "expected_close_date": close, "owner_id": deal_owner}),
        )
        .await,
    )
    .await;
    Book {
        customer: c,
        external_id,
        interaction: id(&interaction),
        follow_up: id(&follow_up),
        purchase: id(&purchase),
        response: id(&response),
        opportunity: id(&opportunity),
    }
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let (a_id, a) = app.user_with_access(Role::Manager, "owned").await;
    let (b_id, b) = app.user_with_access(Role::Manager, "owned").await;
    let (all_id, all) = app.user_with_access(Role::Manager, "all").await;
    let survey = crate::surveys::active_survey(&app, json!({})).await;
    let own = book(&app, &survey, "own", Some(a_id), all_id).await;
    let other = book(&app, &survey, "other", Some(b_id), all_id).await;
    let nobodys = book(&app, &survey, "nobody", None, all_id).await;
    World {
        app,
        a_id,
        a,
        b,
        all,
        survey,
        own,
        other,
        nobodys,
    }
}

/// The ids of a list page's `data`, under `key`.
fn listed(page: &Value, key: &str) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| item[key].as_str().expect(key).to_owned())
        .collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

impl World {
    fn books(&self) -> [&Book; 3] {
        [&self.own, &self.other, &self.nobodys]
    }

    /// Asserts that a list shows `a` only their own customer's item and `all` every one.
    async fn list_splits(&self, path: &str, key: &str, item: impl Fn(&Book) -> &str) {
        let mine = listed(&self.app.get_ok(path, &self.a).await, key);
        assert_eq!(
            mine,
            [item(&self.own).to_owned()],
            "{path} as the owned user"
        );
        let every = sorted(listed(&self.app.get_ok(path, &self.all).await, key));
        let expected = sorted(self.books().iter().map(|b| item(b).to_owned()).collect());
        assert_eq!(every, expected, "{path} as a user with access to all");
    }

    /// Asserts `404 not_found` for `a` on a path of someone else's, `200` for `all`, and
    /// `200` for `a` on the same path of their own.
    async fn single_splits(&self, path: impl Fn(&Book) -> String) {
        for theirs in [&self.other, &self.nobodys] {
            let res = self
                .app
                .get(&path(theirs))
                .bearer_auth(&self.a)
                .send()
                .await
                .unwrap();
            expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
            self.app.get_ok(&path(theirs), &self.all).await;
        }
        self.app.get_ok(&path(&self.own), &self.a).await;
    }
}

#[actix_web::test]
async fn reads_of_customers_and_what_hangs_off_them_split_by_manager() {
    let w = world().await;

    // Lists and search.
    w.list_splits("/v1/customers", "id", |b| &b.customer).await;
    w.list_splits(
        "/v1/customers?lifecycle_stage=stable&sort=name",
        "id",
        |b| &b.customer,
    )
    .await;
    w.list_splits("/v1/customers?q=customer", "id", |b| &b.customer)
        .await;
    w.list_splits("/v1/customers?nps_category=detractor", "id", |b| {
        &b.customer
    })
    .await;
    // Asking for another's customers finds none.
    // Asking for another's customers by name, email, manager or id finds none.
    let b_id = w.app.get_ok("/v1/me", &w.b).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for query in [
        "q=other".to_owned(),
        "q=other@example.com".to_owned(),
        format!("account_manager_id={b_id}"),
        "account_manager_id=none".to_owned(),
    ] {
        let page = w.app.get_ok(&format!("/v1/customers?{query}"), &w.a).await;
        assert_eq!(listed(&page, "id"), Vec::<String>::new(), "{query}");
        let page = w
            .app
            .get_ok(&format!("/v1/customers?{query}"), &w.all)
            .await;
        assert_eq!(listed(&page, "id").len(), 1, "{query}");
    }
    let page = w
        .app
        .get_ok(
            &format!("/v1/interactions?customer_id={}", w.other.customer),
            &w.a,
        )
        .await;
    assert_eq!(listed(&page, "id"), Vec::<String>::new());
    w.list_splits("/v1/interactions?kind=complaint", "id", |b| &b.interaction)
        .await;
    w.list_splits("/v1/complaints", "id", |b| &b.interaction)
        .await;
    w.list_splits("/v1/follow-ups", "id", |b| &b.follow_up)
        .await;
    w.list_splits("/v1/purchases", "id", |b| &b.purchase).await;
    w.list_splits("/v1/survey-responses", "id", |b| &b.response)
        .await;
    w.list_splits(&format!("/v1/surveys/{}/responses", w.survey), "id", |b| {
        &b.response
    })
    .await;
    w.list_splits("/v1/opportunities", "id", |b| &b.opportunity)
        .await;

    // A customer's own lists: another's are empty, as a missing customer's are.
    for (path, key) in [("interactions", "id"), ("purchases", "id")] {
        let page = w
            .app
            .get_ok(&format!("/v1/customers/{}/{path}", w.other.customer), &w.a)
            .await;
        assert_eq!(listed(&page, key), Vec::<String>::new(), "{path}");
        let page = w
            .app
            .get_ok(&format!("/v1/customers/{}/{path}", w.own.customer), &w.a)
            .await;
        assert!(!listed(&page, key).is_empty(), "{path}");
    }

    // Single resources: 404 exactly like a missing one.
    w.single_splits(|b| format!("/v1/customers/{}", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/by-external-id/{}", b.external_id))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/lifecycle", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/export", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/timeline", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/value", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/loyalty", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/points", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/customers/{}/opportunities", b.customer))
        .await;
    w.single_splits(|b| format!("/v1/interactions/{}", b.interaction))
        .await;
    w.single_splits(|b| format!("/v1/interactions/{}/status-history", b.interaction))
        .await;
    w.single_splits(|b| format!("/v1/purchases/{}", b.purchase))
        .await;
    w.single_splits(|b| format!("/v1/survey-responses/{}", b.response))
        .await;
    w.single_splits(|b| format!("/v1/opportunities/{}", b.opportunity))
        .await;
    w.single_splits(|b| format!("/v1/opportunities/{}/history", b.opportunity))
        .await;

    // The answer for another's customer is the answer for a missing one, word for word.
    let missing = Uuid::now_v7();
    for (hidden, absent) in [
        (
            format!("/v1/customers/{}", w.other.customer),
            format!("/v1/customers/{missing}"),
        ),
        (
            format!("/v1/interactions/{}", w.other.interaction),
            format!("/v1/interactions/{missing}"),
        ),
        (
            format!("/v1/purchases/{}", w.other.purchase),
            format!("/v1/purchases/{missing}"),
        ),
        (
            format!("/v1/survey-responses/{}", w.other.response),
            format!("/v1/survey-responses/{missing}"),
        ),
        (
            format!("/v1/opportunities/{}", w.other.opportunity),
            format!("/v1/opportunities/{missing}"),
        ),
    ] {
        let res = w.app.get(&hidden).bearer_auth(&w.a).send().await.unwrap();
        let hidden = expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        let res = w.app.get(&absent).bearer_auth(&w.a).send().await.unwrap();
        let absent = expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
        assert_eq!(hidden["detail"], absent["detail"]);
    }
    // The other manager sees theirs.
    w.app
        .get_ok(&format!("/v1/customers/{}", w.other.customer), &w.b)
        .await;
}

#[actix_web::test]
async fn exports_and_analytics_count_only_the_callers_customers() {
    let w = world().await;
    for path in [
        "/v1/exports/customers",
        "/v1/exports/interactions",
        "/v1/exports/purchases",
        "/v1/exports/survey-responses",
    ] {
        let res = w
            .app
            .get(path)
            .bearer_auth(&w.a)
            .header("Accept", "application/x-ndjson")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let mine = res.text().await.unwrap();
        let res = w
            .app
            .get(path)
            .bearer_auth(&w.all)
            .header("Accept", "application/x-ndjson")
            .send()
            .await
            .unwrap();
        let every = res.text().await.unwrap();
        assert!(mine.contains(&w.own.customer), "{path}: {mine}");
        for theirs in [&w.other, &w.nobodys] {
            assert!(!mine.contains(&theirs.customer), "{path} leaks: {mine}");
            assert!(every.contains(&theirs.customer), "{path}: {every}");
        }
    }

    // Pareto ranking and its export: only the caller's customers are ranked.
    let mine = w.app.get_ok("/v1/analytics/pareto", &w.a).await;
    assert_eq!(
        listed(&mine, "customer_id"),
        std::slice::from_ref(&w.own.customer)
    );
    assert_eq!(mine["summary"]["customers"], 1, "{mine}");
    let every = w.app.get_ok("/v1/analytics/pareto", &w.all).await;
    assert_eq!(listed(&every, "customer_id").len(), 3);
    let res = w
        .app
        .get("/v1/exports/pareto")
        .bearer_auth(&w.a)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(body.contains(&w.own.customer), "{body}");
    assert!(!body.contains(&w.other.customer), "{body}");
    assert!(!body.contains(&w.nobodys.customer), "{body}");

    // Churn risk and segments, after a computation.
    let res = w
        .app
        .post("/v1/analytics/recompute")
        .bearer_auth(w.app.token(Role::Admin))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;
    w.list_splits("/v1/analytics/churn-risk?min_score=1", "customer_id", |b| {
        &b.customer
    })
    .await;
    let count = |segments: &Value| -> i64 {
        segments["lifecycle_stage"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["customers"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(
        count(&w.app.get_ok("/v1/analytics/segments", &w.a).await),
        1
    );
    assert_eq!(
        count(&w.app.get_ok("/v1/analytics/segments", &w.all).await),
        3
    );

    // The forecast: the caller's customers' opportunities only.
    let open = |forecast: &Value| forecast["currencies"][0]["open_count"].clone();
    let year = chrono::Utc::now().date_naive().format("%Y").to_string();
    let path = format!(
        "/v1/analytics/forecast?from={}&to={}",
        format_args!("{year}-01-01"),
        (chrono::Utc::now() + chrono::Duration::days(60)).date_naive()
    );
    assert_eq!(open(&w.app.get_ok(&path, &w.a).await), 1);
    assert_eq!(open(&w.app.get_ok(&path, &w.all).await), 3);

    // Complaint statistics: open complaints of the caller's customers.
    let open = |stats: &Value| -> i64 {
        stats["open"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["n"].as_i64().unwrap())
            .sum()
    };
    assert_eq!(open(&w.app.get_ok("/v1/complaints/stats", &w.a).await), 1);
    assert_eq!(open(&w.app.get_ok("/v1/complaints/stats", &w.all).await), 3);

    // Survey results are rolled up over every respondent: refused, saying why.
    let path = format!("/v1/surveys/{}/results", w.survey);
    let res = w.app.get(&path).bearer_auth(&w.a).send().await.unwrap();
    let p = expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(p["detail"].as_str().unwrap().contains("owned"), "{p}");
    w.app.get_ok(&path, &w.all).await;
}

#[actix_web::test]
async fn writes_reach_only_the_callers_customers_and_write_nothing_else() {
    let w = world().await;
    let app = &w.app;
    let writes_before = app.count("audit_events").await;
    let expect_404 = async |res: reqwest::Response| {
        expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    };
    for theirs in [&w.other, &w.nobodys] {
        let c = &theirs.customer;
        let body = json!({"name": "Taken"});
        expect_404(
            app.send(Method::PATCH, &format!("/v1/customers/{c}"), &w.a, &body)
                .await,
        )
        .await;
        expect_404(app.delete(&format!("/v1/customers/{c}"), &w.a, None).await).await;
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/customers/{c}/restore"),
                &w.a,
                &json!({}),
            )
            .await,
        )
        .await;
        let interaction = json!({"channel": "phone", "direction": "inbound", "kind": "note",
                                 "occurred_at": "2026-11-20T10:00:00Z"});
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/customers/{c}/interactions"),
                &w.a,
                &interaction,
            )
            .await,
        )
        .await;
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/customers/{c}/purchases"),
                &w.a,
                &json!({"external_ref": "x-1", "amount": 100, "currency": "EUR"}),
            )
            .await,
        )
        .await;
        let res = app
            .post(&format!("/v1/customers/{c}/points"))
            .bearer_auth(&w.a)
            .header("Idempotency-Key", Uuid::now_v7().to_string())
            .json(&json!({"kind": "adjust", "points": 5, "reason": "x"}))
            .send()
            .await
            .unwrap();
        expect_404(res).await;
        let i = &theirs.interaction;
        expect_404(
            app.send(
                Method::PATCH,
                &format!("/v1/interactions/{i}"),
                &w.a,
                &json!({"subject": "x"}),
            )
            .await,
        )
        .await;
        expect_404(
            app.delete(&format!("/v1/interactions/{i}"), &w.a, None)
                .await,
        )
        .await;
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/interactions/{i}/restore"),
                &w.a,
                &json!({}),
            )
            .await,
        )
        .await;
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/interactions/{i}/status"),
                &w.a,
                &json!({"status": "in_progress"}),
            )
            .await,
        )
        .await;
        let f = &theirs.follow_up;
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/interactions/{f}/complete"),
                &w.a,
                &json!({"occurred_at": "2026-11-21T10:00:00Z"}),
            )
            .await,
        )
        .await;
        let p = &theirs.purchase;
        expect_404(
            app.send(
                Method::POST,
                &format!("/v1/purchases/{p}/refund"),
                &w.a,
                &json!({"amount": 10, "reason": "x"}),
            )
            .await,
        )
        .await;
        let o = &theirs.opportunity;
        expect_404(
            app.send(
                Method::PATCH,
                &format!("/v1/opportunities/{o}"),
                &w.a,
                &json!({"title": "x"}),
            )
            .await,
        )
        .await;
        expect_404(
            app.delete(&format!("/v1/opportunities/{o}"), &w.a, None)
                .await,
        )
        .await;
        // Naming another's customer in a body is naming a missing one.
        let res = app
            .send(
                Method::POST,
                &format!("/v1/surveys/{}/responses", w.survey),
                &w.a,
                &json!({"customer_id": c, "answers": {"recommend": 9}}),
            )
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["customer_id"]);
        let res = app
            .send(
                Method::POST,
                "/v1/opportunities",
                &w.a,
                &json!({"customer_id": c, "title": "x", "amount": 1, "currency": "EUR",
                        "expected_close_date": "2030-01-01", "owner_id": w.a_id}),
            )
            .await;
        let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
        assert_eq!(fields(&p), ["customer_id"]);
        // An upsert onto another's external id: taken, as a create with it would be.
        let res = app
            .request(
                Method::PUT,
                &format!("/v1/customers/by-external-id/{}", theirs.external_id),
            )
            .bearer_auth(&w.a)
            .json(&json!({"name": "Mine now"}))
            .send()
            .await
            .unwrap();
        let p = expect_problem(res, StatusCode::CONFLICT, "duplicate").await;
        assert_eq!(fields(&p), ["external_id"]);
    }
    // Nothing of the above was written.
    assert_eq!(app.count("audit_events").await, writes_before);
    assert_eq!(app.count("customers").await, 3);
    assert_eq!(app.count("interactions").await, 6);
    assert_eq!(app.count("purchases").await, 3);
    assert_eq!(app.count("opportunities").await, 3);
    assert_eq!(app.count("survey_responses").await, 3);
    assert_eq!(app.count("customers WHERE name = 'Taken'").await, 0);

    // Their own customer: every write works.
    let c = &w.own.customer;
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/customers/{c}"),
            &w.a,
            &json!({"name": "Renamed"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let i = &w.own.interaction;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/interactions/{i}/status"),
            &w.a,
            &json!({"status": "in_progress"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{c}/interactions"),
            &w.a,
            &json!({"channel": "phone", "direction": "inbound", "kind": "note",
                    "occurred_at": "2026-11-20T10:00:00Z"}),
        )
        .await;
    created(res).await;
    let res = app
        .send(
            Method::POST,
            &format!("/v1/purchases/{}/refund", w.own.purchase),
            &w.a,
            &json!({"amount": 10, "reason": "scratch"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .send(
            Method::PATCH,
            &format!("/v1/opportunities/{}", w.own.opportunity),
            &w.a,
            &json!({"title": "Bigger deal"}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    let res = app
        .request(
            Method::PUT,
            &format!("/v1/customers/by-external-id/{}", w.own.external_id),
        )
        .bearer_auth(&w.a)
        .json(&json!({"occupation": "Engineer"}))
        .send()
        .await
        .unwrap();
    expect_json(res, StatusCode::OK).await;

    // Handing their customer to someone else (or to nobody) would lose it: 403.
    for manager in [json!(Uuid::now_v7()), Value::Null] {
        let res = app
            .send(
                Method::PATCH,
                &format!("/v1/customers/{c}"),
                &w.a,
                &json!({"account_manager_id": manager}),
            )
            .await;
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let res = app
        .send(
            Method::POST,
            "/v1/customers",
            &w.a,
            &json!({"name": "Given away", "account_manager_id": w.app.user(Role::Agent).await.0}),
        )
        .await;
    expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(app.count("customers WHERE name = 'Given away'").await, 0);

    // What they create is theirs.
    let new = created(
        app.send(
            Method::POST,
            "/v1/customers",
            &w.a,
            &json!({"name": "Fresh"}),
        )
        .await,
    )
    .await;
    assert_eq!(new["account_manager_id"], w.a_id.to_string());
    let res = app
        .request(Method::PUT, "/v1/customers/by-external-id/ext-fresh")
        .bearer_auth(&w.a)
        .json(&json!({"name": "Upserted"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created(res).await["account_manager_id"], w.a_id.to_string());

    // A batch answers per item.
    let res = app
        .send(Method::POST, "/v1/customers/batch", &w.a, &json!({"items": [
            {"action": "create", "customer": {"name": "Batched"}},
            {"action": "upsert", "customer": {"external_id": w.other.external_id, "name": "x"}},
            {"action": "create", "customer": {"name": "x", "account_manager_id": w.app.user(Role::Agent).await.0}},
        ]}))
        .await;
    let batch = expect_json(res, StatusCode::OK).await;
    let statuses: Vec<i64> = batch["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 409, 403]);

    // Their own customer's points, deletion and restoration.
    let res = app
        .post(&format!("/v1/customers/{c}/points"))
        .bearer_auth(&w.a)
        .header("Idempotency-Key", Uuid::now_v7().to_string())
        .json(&json!({"kind": "adjust", "points": 5, "reason": "thanks"}))
        .send()
        .await
        .unwrap();
    created(res).await;
    let res = app.delete(&format!("/v1/customers/{c}"), &w.a, None).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .send(
            Method::POST,
            &format!("/v1/customers/{c}/restore"),
            &w.a,
            &json!({}),
        )
        .await;
    expect_json(res, StatusCode::OK).await;
    assert_eq!(
        batch["results"][0]["customer"]["account_manager_id"],
        w.a_id.to_string()
    );
}

#[actix_web::test]
async fn bulk_points_and_imports_reach_only_the_callers_customers() {
    let w = world().await;
    let app = &w.app;
    let bulk = async |token: &str, body: Value| {
        app.post("/v1/loyalty/points/bulk")
            .bearer_auth(token)
            .header("Idempotency-Key", Uuid::now_v7().to_string())
            .json(&body)
            .send()
            .await
            .unwrap()
    };
    let ledger = app.count("loyalty_ledger").await;
    let res = bulk(
        &w.a,
        json!({"customer_ids": [w.own.customer, w.other.customer],
                               "points": 5, "reason": "bonus"}),
    )
    .await;
    let p = expect_problem(res, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert!(
        p["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&w.other.customer),
        "{p}"
    );
    assert_eq!(app.count("loyalty_ledger").await, ledger);
    let res = bulk(
        &w.a,
        json!({"filter": "lifecycle_stage=stable", "points": 5,
                               "reason": "bonus"}),
    )
    .await;
    assert_eq!(expect_json(res, StatusCode::OK).await["customers"], 1);
    let res = bulk(
        &w.all,
        json!({"filter": "lifecycle_stage=stable", "points": 5,
                                 "reason": "bonus"}),
    )
    .await;
    assert_eq!(expect_json(res, StatusCode::OK).await["customers"], 3);

    // Customers: a new row is the sender's, a row matching another's fails alone.
    let file = format!(
        "external_id,name,account_manager_id\n\
         ext-new,New one,\n\
         {},Not mine,\n\
         {},Mine renamed,{}\n\
         ext-away,Given away,{}\n",
        w.other.external_id,
        w.own.external_id,
        w.a_id,
        Uuid::nil()
    );
    let res = app
        .post("/v1/imports/customers?mode=upsert")
        .bearer_auth(&w.a)
        .header("Content-Type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    let report = created(res).await;
    assert_eq!(crate::imports::counts(&report), [4, 1, 1, 0, 2], "{report}");
    assert_eq!(
        crate::imports::errors(&report),
        [
            (3, "external_id".to_owned()),
            (5, "account_manager_id".to_owned())
        ]
    );
    assert_eq!(
        app.count(&format!(
            "customers WHERE external_id = 'ext-new' AND account_manager_id = '{}'",
            w.a_id
        ))
        .await,
        1
    );
    assert_eq!(app.count("customers WHERE name = 'Not mine'").await, 0);
    let own_import = report["id"].as_str().unwrap().to_owned();

    // Interactions: rows of another's customer fail as a missing customer's.
    let file = format!(
        "customer_id,channel,direction,kind,subject,occurred_at\n\
         {},phone,inbound,note,Mine,2026-11-01T10:00:00Z\n\
         {},phone,inbound,note,Theirs,2026-11-01T10:00:00Z\n",
        w.own.customer, w.other.customer
    );
    let res = app
        .post("/v1/imports/interactions")
        .bearer_auth(&w.a)
        .header("Content-Type", "text/csv")
        .body(file)
        .send()
        .await
        .unwrap();
    let report = created(res).await;
    assert_eq!(crate::imports::counts(&report), [2, 1, 0, 0, 1], "{report}");
    assert_eq!(
        crate::imports::errors(&report),
        [(3, "customer_id".to_owned())]
    );
    assert_eq!(app.count("interactions WHERE subject = 'Theirs'").await, 0);

    // Import jobs: the owned user sees their own only.
    let res = app
        .post("/v1/imports/customers")
        .bearer_auth(&w.all)
        .header("Content-Type", "text/csv")
        .body("name\nSomeone\n")
        .send()
        .await
        .unwrap();
    let others_import = created(res).await["id"].as_str().unwrap().to_owned();
    let mine = listed(&app.get_ok("/v1/imports", &w.a).await, "id");
    assert_eq!(mine.len(), 2);
    assert!(!mine.contains(&others_import));
    assert_eq!(
        listed(&app.get_ok("/v1/imports", &w.all).await, "id").len(),
        3
    );
    app.get_ok(&format!("/v1/imports/{own_import}"), &w.a).await;
    for path in [
        format!("/v1/imports/{others_import}"),
        format!("/v1/imports/{others_import}/errors.csv"),
        format!("/v1/imports/{others_import}/errors.ndjson"),
    ] {
        let res = app.get(&path).bearer_auth(&w.a).send().await.unwrap();
        expect_problem(res, StatusCode::NOT_FOUND, "not_found").await;
    }
    app.get_ok(&format!("/v1/imports/{others_import}"), &w.all)
        .await;
}

#[actix_web::test]
async fn feeds_spanning_every_customer_stay_admin_level() {
    let w = world().await;
    for path in ["/v1/events", "/v1/webhooks", "/v1/audit"] {
        let res = w.app.get(path).bearer_auth(&w.a).send().await.unwrap();
        expect_problem(res, StatusCode::FORBIDDEN, "forbidden").await;
    }
    let me = w.app.get_ok("/v1/me", &w.a).await;
    assert_eq!(me["access"], "owned");
    assert_eq!(w.app.get_ok("/v1/me", &w.all).await["access"], "all");
    let client = w.app.client_token("Shop", &["customers:read"]).await;
    assert_eq!(w.app.get_ok("/v1/me", &client).await["access"], "all");
    // Integration clients and service tokens reach every customer.
    let page = w.app.get_ok("/v1/customers", &client).await;
    assert_eq!(listed(&page, "id").len(), 3);
    let page = w
        .app
        .get_ok("/v1/customers", &w.app.token(Role::Agent))
        .await;
    assert_eq!(listed(&page, "id").len(), 3);
}
