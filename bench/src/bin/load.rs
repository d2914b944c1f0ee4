//! A closed-loop HTTP load generator: `--concurrency` keep-alive connections send requests
//! back to back for `--duration` seconds; prints requests per second and latency percentiles
//! as one JSON line.
//!
//!     load --base http://127.0.0.1:8080 --token $TOKEN --scenario get --data bench/data
//!
//! Scenarios: `get` (GET /v1/customers/{id}, random sampled ids), `list` (a filtered, sorted
//! page), `search` (q= with a typo in a real customer's name), `search_common` (the most
//! common surname, misspelt), `timeline` (a customer's timeline, first page), `complaints`
//! (the unresolved complaints by age or severity).
//!
//! Survey scenarios (`--survey <id>`): `survey_results` (the survey's results over the last
//! 365 days), `survey_results_month`, `survey_results_tier` and `survey_results_stage` (the
//! same grouped by month, by loyalty tier, by lifecycle stage), `survey_detractors` (its responses with NPS 0-6, first page),
//! `customers_detractors` (customers whose latest NPS is a detractor's, first page), and
//! `survey_respond` (a response from a random live customer with random answers; the survey
//! must allow several responses per customer).
//!
//! Writes: `purchase` (a sale of a sampled customer) and `create` (a new customer with an
//! email, a phone, a tag and consent). `path` sends one fixed GET (`--path /v1/...`); a
//! `{id}` in it is replaced, request by request, by a random line of `--ids <file>` (an
//! organization's contacts, a person's organizations, a name to search).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

struct Args {
    base: String,
    token: String,
    scenario: String,
    data: String,
    concurrency: usize,
    duration: Duration,
    survey: String,
    path: String,
    ids: String,
}

fn args() -> Args {
    let mut a = Args {
        base: "http://127.0.0.1:8080".into(),
        token: String::new(),
        scenario: "get".into(),
        data: "bench/data".into(),
        concurrency: 16,
        duration: Duration::from_secs(15),
        survey: String::new(),
        path: String::new(),
        ids: String::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--base" => a.base = value,
            "--token" => a.token = value,
            "--scenario" => a.scenario = value,
            "--data" => a.data = value,
            "--concurrency" => a.concurrency = value.parse().expect("--concurrency N"),
            "--duration" => a.duration = Duration::from_secs(value.parse().expect("--duration S")),
            "--survey" => a.survey = value,
            "--path" => a.path = value,
            "--ids" => a.ids = value,
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// What an agent types for a customer: the full name, or only the surname, with two
/// neighbouring letters of the surname swapped (a typical typo).
fn typo(name: &str, rng: &mut SmallRng) -> String {
    let mut words: Vec<String> = name.split_whitespace().map(str::to_owned).collect();
    let Some(last) = words.last_mut() else {
        return name.to_owned();
    };
    let mut chars: Vec<char> = last.chars().collect();
    if chars.len() > 3 {
        let i = rng.random_range(1..chars.len() - 2);
        chars.swap(i, i + 1);
    }
    *last = chars.into_iter().collect();
    if rng.random_bool(0.5) {
        words.join(" ")
    } else {
        words.last().cloned().unwrap_or_default()
    }
}

fn path(scenario: &str, ids: &[String], names: &[String], survey: &Survey, fixed: &str, rng: &mut SmallRng) -> String {
    let s = &survey.id;
    let year = &survey.year;
    match scenario {
        "get" => format!("/v1/customers/{}", ids[rng.random_range(0..ids.len())]),
        "list" => {
            let stages = ["stable", "commitment", "exploration", "acquaintance"];
            format!(
                "/v1/customers?lifecycle_stage={}&tags=newsletter&sort=-updated_at&limit=50",
                stages[rng.random_range(0..stages.len())]
            )
        }
        "search" => {
            let q = typo(&names[rng.random_range(0..names.len())], rng);
            format!("/v1/customers?q={}&limit=20", encode(&q))
        }
        // The worst case: only the most common surname, misspelt.
        "search_common" => {
            let q = typo(&names[0], rng);
            format!("/v1/customers?q={}&limit=20", encode(q.split(' ').next_back().unwrap_or_default()))
        }
        // A customer's timeline: the first page, newest first, all item types.
        "timeline" => format!(
            "/v1/customers/{}/timeline?limit=20",
            ids[rng.random_range(0..ids.len())]
        ),
        // The unresolved complaints, by age or by severity.
        "complaints" => {
            let sort = if rng.random_bool(0.5) { "oldest" } else { "severity" };
            format!("/v1/complaints?sort={sort}&limit=50")
        }
        "purchase" => format!(
            "/v1/customers/{}/purchases",
            ids[rng.random_range(0..ids.len())]
        ),
        // A new customer, as a web form or an integration creates one.
        "create" => "/v1/customers".to_owned(),
        // One fixed GET (`--path`): a list with a filter and a sort; `{id}`, a sampled line.
        "path" if fixed.contains("{id}") && !ids.is_empty() => {
            fixed.replace("{id}", &encode(&ids[rng.random_range(0..ids.len())]))
        }
        "path" => fixed.to_owned(),
        "survey_results" => format!("/v1/surveys/{s}/results?{year}"),
        "survey_results_month" => format!("/v1/surveys/{s}/results?{year}&group_by=month"),
        "survey_results_tier" => format!("/v1/surveys/{s}/results?{year}&group_by=tier"),
        "survey_results_stage" => {
            format!("/v1/surveys/{s}/results?{year}&group_by=lifecycle_stage")
        }
        "survey_detractors" => format!("/v1/surveys/{s}/responses?nps_max=6&limit=50"),
        "customers_detractors" => "/v1/customers?nps_category=detractor&limit=50".to_owned(),
        "survey_respond" => format!("/v1/surveys/{s}/responses"),
        other => panic!("unknown scenario {other}"),
    }
}

/// `text` as a query string value (`&` in "Quinn & Co." would end the parameter).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The survey a survey scenario addresses, and the last 365 days as `from=…&to=…`.
struct Survey {
    id: String,
    year: String,
}

/// A value drawn with the given weights (any scale), as the index of its weight.
fn draw(rng: &mut SmallRng, weights: &[u32]) -> usize {
    let mut x = rng.random_range(0..weights.iter().sum::<u32>());
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len() - 1
}

/// A response to bench/surveys/survey.json from `customer`: every question type, answered
/// with the skewed distributions of bench/surveys/responses.sql (without the segment mood).
fn response_body(customer: &str, rng: &mut SmallRng) -> String {
    let mut answers = serde_json::Map::new();
    let mut put = |key: &str, value: serde_json::Value| {
        answers.insert(key.to_owned(), value);
    };
    put("recommend", json!(draw(rng, &[2, 1, 1, 2, 2, 5, 6, 12, 20, 22, 27])));
    put("satisfaction", json!(1 + draw(rng, &[4, 6, 15, 40, 35])));
    if rng.random_bool(0.8) {
        put("effort", json!(1 + draw(rng, &[3, 5, 8, 14, 25, 25, 20])));
    }
    if rng.random_bool(0.9) {
        put("delivery", json!(1 + draw(rng, &[3, 7, 20, 40, 30])));
    }
    if rng.random_bool(0.95) {
        let channels = ["webshop", "store", "phone", "marketplace"];
        put("channel", json!(channels[draw(rng, &[45, 30, 10, 15])]));
    }
    if rng.random_bool(0.7) {
        let reasons = [
            ("price", 0.55), ("quality", 0.45), ("delivery speed", 0.35), ("advice", 0.15),
            ("range", 0.20), ("returns", 0.10),
        ];
        let mut named: Vec<&str> = reasons
            .iter()
            .filter(|(_, p)| rng.random_bool(*p))
            .map(|(r, _)| *r)
            .collect();
        if named.is_empty() {
            named.push("quality");
        }
        put("reasons", json!(named));
    }
    if rng.random_bool(0.12) {
        put("comment", json!("  Quick delivery, friendly staff.  "));
    }
    let mut attribute = |key: &str, answered: f64, e: &[u32], p: &[u32]| {
        if rng.random_bool(answered) {
            let (e, p) = (1 + draw(rng, e), 1 + draw(rng, p));
            put(key, json!({"expectation": e, "performance": p}));
        }
    };
    attribute("checkout", 0.85, &[1, 2, 7, 30, 60], &[4, 5, 11, 30, 50]);
    attribute("advice", 0.75, &[2, 4, 10, 24, 30, 20, 10], &[4, 6, 12, 20, 24, 20, 14]);
    attribute("surprise", 0.8, &[20, 35, 30, 10, 5], &[8, 17, 30, 25, 20]);
    json!({"customer_id": customer, "answers": answers}).to_string()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let a = args();
    let read = |file: &str| -> Vec<String> {
        std::fs::read_to_string(format!("{}/{file}", a.data))
            .expect("bench data (run the seed first)")
            .lines()
            .map(str::to_owned)
            .collect()
    };
    // Each scenario reads the bench data it needs: sampled customers (live ones only for
    // survey responses, as the service refuses deleted customers), or names to search.
    let ids = Arc::new(match a.scenario.as_str() {
        "path" if !a.ids.is_empty() => std::fs::read_to_string(&a.ids)
            .expect("--ids file")
            .lines()
            .map(str::to_owned)
            .collect(),
        "get" | "timeline" | "purchase" => read("customer_ids.txt"),
        "survey_respond" => read("live_customer_ids.txt"),
        _ => Vec::new(),
    });
    let names = Arc::new(match a.scenario.as_str() {
        "search_common" => read("common_surname.txt"),
        "search" | "create" => read("customer_names.txt"),
        _ => Vec::new(),
    });
    let today = chrono::Utc::now().date_naive();
    let survey = Arc::new(Survey {
        id: a.survey.clone(),
        year: format!("from={}&to={today}", today - chrono::Duration::days(365)),
    });
    if a.scenario.starts_with("survey_") {
        assert!(!survey.id.is_empty(), "--survey <id> is needed for {}", a.scenario);
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .expect("client");
    let deadline = Instant::now() + a.duration;
    let mut tasks = Vec::new();
    for worker in 0..a.concurrency {
        let (client, ids, names, survey) = (client.clone(), ids.clone(), names.clone(), survey.clone());
        let (base, token, scenario) = (a.base.clone(), a.token.clone(), a.scenario.clone());
        let fixed = a.path.clone();
        tasks.push(tokio::spawn(async move {
            // The same requests run after run, but for writes that must be new (a customer's
            // email): those draw from the clock too.
            let mut rng = SmallRng::seed_from_u64(worker as u64);
            let mut fresh = SmallRng::seed_from_u64(
                worker as u64 ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64),
            );
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let url = format!("{base}{}", path(&scenario, &ids, &names, &survey, &fixed, &mut rng));
                let request = if scenario == "survey_respond" {
                    // A customer's answers, recorded now: counted into today's roll-up.
                    let customer = &ids[rng.random_range(0..ids.len())];
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(response_body(customer, &mut rng))
                } else if scenario == "create" {
                    // A sampled customer's name; a unique email each time.
                    let n: u64 = fresh.random();
                    let name = &names[rng.random_range(0..names.len())];
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(format!(
                            "{{\"name\": \"{name}\", \"email\": \"bench.{n}@example.org\", \
                              \"phone\": \"+4930{:08}\", \"lifecycle_stage\": \"prospect\", \
                              \"tags\": [\"newsletter\"], \"consent\": {{\"email\": {{\"granted\": true}}}}}}",
                            n % 100_000_000
                        ))
                } else if scenario == "purchase" {
                    // A till's sale: recorded, its points earned, the tier checked.
                    let amount: u32 = rng.random_range(500..30_000);
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(format!("{{\"amount\": {amount}, \"currency\": \"EUR\", \"channel\": \"in_store\"}}"))
                } else {
                    client.get(&url)
                };
                let started = Instant::now();
                let ok = match request.bearer_auth(&token).send().await {
                    Ok(res) => {
                        let ok = res.status().is_success();
                        ok && res.bytes().await.is_ok()
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(started.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let started = Instant::now();
    let mut all = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (latencies, e) = task.await.expect("worker");
        all.extend(latencies);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64().max(a.duration.as_secs_f64());
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all[i] as f64 / 1000.0
    };
    println!(
        "{{\"scenario\": \"{}\", \"requests\": {}, \"errors\": {errors}, \"rps\": {:.0}, \"p50_ms\": {:.2}, \"p99_ms\": {:.2}}}",
        a.scenario,
        all.len(),
        all.len() as f64 / seconds,
        pct(0.50),
        pct(0.99)
    );
}
