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

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

struct Args {
    base: String,
    token: String,
    scenario: String,
    data: String,
    concurrency: usize,
    duration: Duration,
}

fn args() -> Args {
    let mut a = Args {
        base: "http://127.0.0.1:8080".into(),
        token: String::new(),
        scenario: "get".into(),
        data: "bench/data".into(),
        concurrency: 16,
        duration: Duration::from_secs(15),
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

fn path(scenario: &str, ids: &[String], names: &[String], rng: &mut SmallRng) -> String {
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
            let q: String = q.chars().map(|c| if c == ' ' { '+' } else { c }).collect();
            format!("/v1/customers?q={q}&limit=20")
        }
        // The worst case: only the most common surname, misspelt.
        "search_common" => {
            let q = typo(&names[0], rng);
            format!("/v1/customers?q={}&limit=20", q.split(' ').next_back().unwrap_or_default())
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
        other => panic!("unknown scenario {other}"),
    }
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
    let ids = Arc::new(read("customer_ids.txt"));
    let names = Arc::new(if a.scenario == "search_common" {
        read("common_surname.txt")
    } else {
        read("customer_names.txt")
    });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.concurrency)
        .build()
        .expect("client");
    let deadline = Instant::now() + a.duration;
    let mut tasks = Vec::new();
    for worker in 0..a.concurrency {
        let (client, ids, names) = (client.clone(), ids.clone(), names.clone());
        let (base, token, scenario) = (a.base.clone(), a.token.clone(), a.scenario.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(worker as u64);
            let mut latencies = Vec::with_capacity(100_000);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let url = format!("{base}{}", path(&scenario, &ids, &names, &mut rng));
                let request = if scenario == "purchase" {
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
