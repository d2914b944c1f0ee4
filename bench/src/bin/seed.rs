//! Fills a migrated Rapport database with realistic customers (and their first lifecycle
//! entries), by binary COPY over a plain tokio-postgres connection.
//!
//! The secondary indexes of the loaded tables are dropped before the load and rebuilt after
//! it (from their own definitions, read from pg_indexes): one sorted build per index is far
//! cheaper than maintaining fifteen indexes row by row. Both times are reported.
//!
//!     seed --database-url postgres://postgres@127.0.0.1/rapport_bench --customers 1000000 --out bench/data

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

const ORG_SUFFIX: &[&str] = &["GmbH", "AG", "KG", "Ltd", "SARL", "BV", "& Co.", "Handels GmbH"];
const CITIES: &[(&str, &str, &str)] = &[
    ("Berlin", "10115", "DE"), ("Hamburg", "20095", "DE"), ("München", "80331", "DE"),
    ("Köln", "50667", "DE"), ("Frankfurt am Main", "60311", "DE"), ("Leipzig", "04109", "DE"),
    ("Wien", "1010", "AT"), ("Graz", "8010", "AT"), ("Zürich", "8001", "CH"),
    ("Basel", "4051", "CH"), ("Paris", "75001", "FR"), ("Lyon", "69001", "FR"),
    ("Amsterdam", "1012", "NL"), ("Rotterdam", "3011", "NL"), ("New York", "10001", "US"),
];
const STREETS: &[&str] = &["Hauptstraße", "Bahnhofstraße", "Gartenweg", "Lindenallee", "Marktplatz", "Schulstraße"];
const TAGS: &[(&str, f64)] = &[
    ("newsletter", 0.30), ("vip", 0.03), ("b2b", 0.10), ("wholesale", 0.04), ("student", 0.06),
    ("loyal", 0.12), ("returns", 0.05), ("events", 0.08), ("eco", 0.07), ("premium", 0.04),
];
const SOURCES: &[(&str, f64)] = &[
    ("webshop", 0.40), ("store", 0.25), ("referral", 0.15), ("fair", 0.05), ("import", 0.15),
];
const STAGES: &[(&str, f64)] = &[
    ("prospect", 0.15), ("acquaintance", 0.15), ("exploration", 0.15), ("stable", 0.30),
    ("commitment", 0.15), ("dissolution", 0.06), ("churned", 0.04),
];
const LEVELS: &[(&str, f64)] = &[
    ("basic", 0.40), ("reactive", 0.25), ("accountable", 0.15), ("proactive", 0.15),
    ("partnership", 0.05),
];
const CHANNELS: &[&str] = &["phone", "sms", "email", "visit", "in_store", "web", "chat", "social", "mail"];
const GENDERS: &[&str] = &["female", "male", "non_binary", "undisclosed"];
const INCOMES: &[&str] = &["low", "lower_middle", "middle", "upper_middle", "high"];
const PLANS: &[&str] = &["bronze", "silver", "gold", "platinum"];
/// Interaction kinds and how often each occurs.
const KINDS: &[(&str, f64)] = &[
    ("inquiry", 0.25), ("purchase", 0.2), ("service", 0.15), ("note", 0.1), ("feedback", 0.08),
    ("promotion", 0.08), ("callback", 0.06), ("meeting", 0.05), ("complaint", 0.03),
];
const SUBJECTS: &[&str] = &[
    "Question about delivery times", "Order status", "Invoice copy requested", "Product advice",
    "Opening hours", "Damaged parcel", "Address change", "Warranty claim", "Loyalty points",
    "Annual review", "Newsletter feedback", "Return of goods", "Price match request",
];
const NOTES: &[&str] = &[
    "Customer asked for the express option and a call before delivery.",
    "Explained the return policy; customer will send the item back this week.",
    "Interested in the premium range; send a catalogue.",
    "Unhappy with the waiting time on the phone; apologised.",
    "Wants to be contacted by email only from now on.",
];
const SEVERITIES: &[(&str, f64)] = &[("low", 0.4), ("medium", 0.35), ("high", 0.2), ("critical", 0.05)];

/// Names drawn as often as they occur among people: US Census 1990 frequencies (public
/// domain; bench/names/), so that searches meet realistic numbers of namesakes.
struct Weighted {
    names: Vec<String>,
    cumulative: Vec<f64>,
}

impl Weighted {
    fn load(path: &str) -> Self {
        let text = std::fs::read_to_string(path).expect("bench/names (run from the repository root)");
        let mut names = Vec::new();
        let mut cumulative = Vec::new();
        let mut total = 0.0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let Some((name, percent)) = line.split_once('\t') else { continue };
            total += percent.trim().parse::<f64>().expect("frequency");
            names.push(name.to_owned());
            cumulative.push(total);
        }
        let cumulative = cumulative.into_iter().map(|c| c / total).collect();
        Weighted { names, cumulative }
    }

    fn draw(&self, rng: &mut SmallRng) -> &str {
        let x: f64 = rng.random();
        let i = self.cumulative.partition_point(|c| *c < x);
        &self.names[i.min(self.names.len() - 1)]
    }
}

fn pick<'a>(rng: &mut SmallRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn weighted<'a>(rng: &mut SmallRng, items: &[(&'a str, f64)]) -> &'a str {
    let mut x: f64 = rng.random();
    for (item, weight) in items {
        if x < *weight {
            return item;
        }
        x -= weight;
    }
    items[items.len() - 1].0
}

fn chance(rng: &mut SmallRng, p: f64) -> bool {
    rng.random::<f64>() < p
}

fn v7(at: DateTime<Utc>, rng: &mut SmallRng) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    let random: u128 = rng.random();
    let bits = (u128::from(ms) << 80) | (0x7u128 << 76) | (random & ((1u128 << 76) - 1));
    let bits = (bits & !(0b11u128 << 62)) | (0b10u128 << 62);
    Uuid::from_u128(bits)
}

struct Args {
    url: String,
    customers: usize,
    /// Interactions and purchases per customer (10 and 20 unless told): fewer keep a million
    /// customers within a small disk (at 10 and 20 the bench database takes 30 GB).
    interactions: usize,
    purchases: usize,
    out: String,
    seed: u64,
}

fn args() -> Args {
    let mut a = Args {
        url: "postgres://postgres@127.0.0.1:5432/rapport_bench".into(),
        customers: 1_000_000,
        interactions: 10,
        purchases: 20,
        out: "bench/data".into(),
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--database-url" => a.url = value,
            "--customers" => a.customers = value.parse().expect("--customers N"),
            "--interactions" => a.interactions = value.parse().expect("--interactions N"),
            "--purchases" => a.purchases = value.parse().expect("--purchases N"),
            "--out" => a.out = value,
            "--seed" => a.seed = value.parse().expect("--seed N"),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

/// Drops the secondary indexes of `tables`, returning their definitions to rebuild them.
async fn drop_indexes(client: &Client, tables: &[&str]) -> Vec<String> {
    let rows = client
        .query(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i \
             WHERE i.schemaname = 'public' AND i.tablename = ANY($1) \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            &[&tables],
        )
        .await
        .expect("read index definitions");
    let mut defs = Vec::new();
    for row in rows {
        let name: String = row.get(0);
        // A partitioned table's index reads `ON ONLY`, which would make it again for the
        // parent alone, invalid and on no partition: made over the partitions instead.
        defs.push(row.get::<_, String>(1).replacen(" ON ONLY ", " ON ", 1));
        client
            .batch_execute(&format!("DROP INDEX \"{name}\""))
            .await
            .expect("drop index");
    }
    defs
}

#[tokio::main]
async fn main() {
    let a = args();
    let (client, connection) = tokio_postgres::connect(&a.url, NoTls).await.expect("connect");
    tokio::spawn(connection);
    let mut rng = SmallRng::seed_from_u64(a.seed);
    let surnames = Weighted::load("bench/names/surnames.tsv");
    let first_names = Weighted::load("bench/names/first_names.tsv");
    let now = Utc::now();
    client
        .batch_execute("SET maintenance_work_mem = '512MB'; SET max_parallel_maintenance_workers = 2")
        .await
        .expect("session settings");

    // Account managers: fifty staff users.
    let mut managers = Vec::new();
    for i in 0..50 {
        let id = v7(now - Duration::days(1200), &mut rng);
        client
            .execute(
                "INSERT INTO users (id, email, name, role) VALUES ($1, $2, $3, 'agent') \
                 ON CONFLICT DO NOTHING",
                &[&id, &format!("manager{i}@rapport.example"), &format!("Manager {i}")],
            )
            .await
            .expect("insert manager");
        managers.push(id);
    }

    let tables = [
        "customers", "customer_lifecycle_events", "customer_tags", "interactions", "purchases",
        "loyalty_accounts", "loyalty_lots", "loyalty_ledger",
    ];
    let definitions = drop_indexes(&client, &tables).await;
    // The duplicate candidates are kept by a statement trigger that reads each written key's
    // group through the indexes just dropped: off for the load, backfilled after the rebuild.
    client
        .batch_execute("ALTER TABLE customers DISABLE TRIGGER customers_duplicates_inserted")
        .await
        .expect("duplicates trigger off");

    let started = Instant::now();
    let sink = client
        .copy_in(
            "COPY customers (id, kind, name, organization_name, email, phone, address, region_type, \
             birth_date, gender, occupation, income_band, national_id, preferred_channel, \
             consent_email, consent_email_at, consent_sms, consent_sms_at, tags, attributes, source, \
             external_id, account_manager_id, lifecycle_stage, relationship_level, qualification, \
             created_at, updated_at, deleted_at) FROM STDIN BINARY",
        )
        .await
        .expect("copy customers");
    let types = [
        Type::UUID, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::JSONB,
        Type::TEXT, Type::DATE, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT,
        Type::BOOL, Type::TIMESTAMPTZ, Type::BOOL, Type::TIMESTAMPTZ, Type::TEXT_ARRAY,
        Type::JSONB, Type::TEXT, Type::TEXT, Type::UUID, Type::TEXT, Type::TEXT, Type::JSONB,
        Type::TIMESTAMPTZ, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    let span_secs = 3 * 365 * 86_400;
    let mut lifecycle = Vec::with_capacity(a.customers);
    let mut sample_ids = Vec::new();
    let mut sample_names = Vec::new();
    for n in 0..a.customers {
        let created = now - Duration::seconds(rng.random_range(0..span_secs));
        let id = v7(created, &mut rng);
        let organization = chance(&mut rng, 0.10);
        let (first, last) = (first_names.draw(&mut rng), surnames.draw(&mut rng));
        let name = if organization {
            format!("{last} {}", pick(&mut rng, ORG_SUFFIX))
        } else {
            format!("{first} {last}")
        };
        let ascii = |s: &str| {
            s.to_lowercase()
                .replace('ü', "ue").replace('ö', "oe").replace('ä', "ae").replace('é', "e")
                .replace('í', "i").replace([' ', '&', '.'], "")
        };
        let email = chance(&mut rng, 0.85)
            .then(|| format!("{}.{}.{n}@example.com", ascii(first), ascii(last)));
        let phone = chance(&mut rng, 0.70).then(|| format!("+4930{:08}", rng.random_range(10_000_000..99_999_999)));
        let address = chance(&mut rng, 0.80).then(|| {
            let (city, postal, country) = CITIES[rng.random_range(0..CITIES.len())];
            json!({"line1": format!("{} {}", pick(&mut rng, STREETS), rng.random_range(1..200)),
                   "line2": null, "city": city, "region": null, "postal_code": postal, "country": country})
        });
        let region = if chance(&mut rng, 0.95) {
            Some(if chance(&mut rng, 0.72) { "urban" } else { "rural" })
        } else {
            None
        };
        let birth = (!organization && chance(&mut rng, 0.8)).then(|| {
            NaiveDate::from_ymd_opt(rng.random_range(1940..2007), rng.random_range(1..13), rng.random_range(1..29))
                .unwrap_or_default()
        });
        let gender = (!organization && chance(&mut rng, 0.7)).then(|| pick(&mut rng, GENDERS));
        let occupation = chance(&mut rng, 0.4).then(|| pick(&mut rng, &["Engineer", "Teacher", "Nurse", "Designer", "Farmer", "Retailer"]).to_owned());
        let income = chance(&mut rng, 0.5).then(|| pick(&mut rng, INCOMES));
        let national_id = chance(&mut rng, 0.3).then(|| format!("T{:08}", rng.random_range(0..99_999_999)));
        let channel = chance(&mut rng, 0.7).then(|| pick(&mut rng, CHANNELS));
        let consent_email = chance(&mut rng, 0.4);
        let consent_email_at = consent_email.then_some(created);
        let consent_sms = chance(&mut rng, 0.2);
        let consent_sms_at = consent_sms.then_some(created);
        let tags: Vec<String> = TAGS
            .iter()
            .filter(|(_, p)| chance(&mut rng, *p))
            .map(|(t, _)| (*t).to_owned())
            .collect();
        let attributes = json!({
            "segment": if organization { "b2b" } else { "b2c" },
            "plan": pick(&mut rng, PLANS),
            "seats": rng.random_range(1..50),
        });
        let source = weighted(&mut rng, SOURCES);
        let external_id = chance(&mut rng, 0.6).then(|| format!("shop-{n}"));
        let manager = chance(&mut rng, 0.5).then(|| managers[rng.random_range(0..managers.len())]);
        let stage = weighted(&mut rng, STAGES);
        let level = weighted(&mut rng, LEVELS);
        let qualification: Option<Value> = chance(&mut rng, 0.3).then(|| {
            json!({"money": chance(&mut rng, 0.6), "authority": chance(&mut rng, 0.5), "need": chance(&mut rng, 0.7)})
        });
        let updated = (created + Duration::seconds(rng.random_range(0..30 * 86_400))).min(now);
        let deleted = chance(&mut rng, 0.01).then_some(updated);
        let row: [&(dyn ToSql + Sync); 29] = [
            &id, &if organization { "organization" } else { "individual" }, &name,
            &organization.then(|| format!("{name} Holding")), &email, &phone, &address, &region,
            &birth, &gender, &occupation, &income, &national_id, &channel,
            &consent_email, &consent_email_at, &consent_sms, &consent_sms_at, &tags, &attributes,
            &source, &external_id, &manager, &stage, &level, &qualification,
            &created, &updated, &deleted,
        ];
        writer.as_mut().write(&row).await.expect("write customer");
        lifecycle.push((v7(created, &mut rng), id, stage, created));
        if n % 100 == 0 && sample_ids.len() < 20_000 {
            sample_ids.push(id.to_string());
            sample_names.push(name);
        }
    }
    let written = writer.finish().await.expect("finish customers");

    let sink = client
        .copy_in(
            "COPY customer_lifecycle_events (id, customer_id, from_stage, to_stage, changed_at, \
             actor_type, actor_id, reason) FROM STDIN BINARY",
        )
        .await
        .expect("copy lifecycle");
    let types = [
        Type::UUID, Type::UUID, Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ, Type::TEXT, Type::TEXT,
        Type::TEXT,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for (id, customer, stage, at) in &lifecycle {
        let row: [&(dyn ToSql + Sync); 8] = [
            id, customer, &None::<String>, stage, at, &"service", &"seed", &None::<String>,
        ];
        writer.as_mut().write(&row).await.expect("write lifecycle");
    }
    writer.finish().await.expect("finish lifecycle");
    let interactions = copy_interactions(&client, &lifecycle, a.interactions, &managers, now, &mut rng).await;
    let purchases = copy_purchases(&client, &lifecycle, a.purchases, now, &mut rng).await;
    let copied = started.elapsed();
    let started = Instant::now();
    let ledger = derive_loyalty(&client).await;
    let derived = started.elapsed();

    // Rebuild on two connections at once (GiST builds use one core each), longest first.
    let started = Instant::now();
    let mut queues: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    let mut sorted = definitions.clone();
    sorted.sort_by_key(|d| !(d.contains("gist") || d.contains("gin")));
    for (i, definition) in sorted.into_iter().enumerate() {
        queues[i % 2].push(definition);
    }
    let builders = queues.into_iter().map(|queue| {
        let url = a.url.clone();
        tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&url, NoTls).await.expect("connect");
            tokio::spawn(connection);
            client
                .batch_execute("SET maintenance_work_mem = '512MB'")
                .await
                .expect("session settings");
            for definition in queue {
                client.batch_execute(&definition).await.expect("rebuild index");
            }
        })
    });
    for builder in builders.collect::<Vec<_>>() {
        builder.await.expect("index builder");
    }
    client
        .batch_execute("ALTER TABLE customers ENABLE TRIGGER customers_duplicates_inserted")
        .await
        .expect("duplicates trigger on");
    client
        .batch_execute(include_str!("../../duplicates_backfill.sql"))
        .await
        .expect("duplicate candidates");
    client
        // VACUUM too: otherwise autovacuum visits the fresh rows during the measurements.
        .batch_execute(
            "VACUUM (ANALYZE) customers, customer_lifecycle_events, customer_search_words, \
             customer_tags, search_vocabulary, interactions, users, purchases, loyalty_accounts, \
             loyalty_lots, loyalty_ledger, loyalty_program, loyalty_tiers, customer_duplicate_pairs, \
             customer_duplicate_links",
        )
        .await
        .expect("vacuum");
    let indexed = started.elapsed();

    std::fs::create_dir_all(&a.out).expect("out dir");
    std::fs::write(format!("{}/customer_ids.txt", a.out), sample_ids.join("\n")).expect("ids");
    std::fs::write(format!("{}/customer_names.txt", a.out), sample_names.join("\n")).expect("names");
    std::fs::write(format!("{}/common_surname.txt", a.out), &surnames.names[0]).expect("surname");
    println!(
        "{{\"customers\": {written}, \"lifecycle_events\": {}, \"interactions\": {interactions}, \"purchases\": {purchases}, \"ledger_entries\": {ledger}, \"copy_seconds\": {:.1}, \"rows_per_second\": {:.0}, \"ledger_seconds\": {:.1}, \"index_seconds\": {:.1}, \"indexes\": {}}}",
        lifecycle.len(),
        copied.as_secs_f64(),
        (written as f64 + lifecycle.len() as f64 + interactions as f64 + purchases as f64)
            / copied.as_secs_f64(),
        derived.as_secs_f64(),
        indexed.as_secs_f64(),
        definitions.len()
    );
}

/// `per_customer` interactions per customer between its creation and now: mostly past contacts, 3 %
/// complaints (most resolved, many closed), some follow-ups (half still pending).
async fn copy_interactions(
    client: &Client,
    customers: &[(Uuid, Uuid, &str, DateTime<Utc>)],
    per_customer: usize,
    staff: &[Uuid],
    now: DateTime<Utc>,
    rng: &mut SmallRng,
) -> u64 {
    let sink = client
        .copy_in(
            "COPY interactions (id, customer_id, channel, direction, kind, subject, notes, \
             occurred_at, duration_seconds, staff_id, outcome, due_at, severity, status, \
             resolution, in_progress_at, resolved_at, closed_at, assignee_id, created_at, \
             updated_at) FROM STDIN BINARY",
        )
        .await
        .expect("copy interactions");
    let types = [
        Type::UUID, Type::UUID, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT,
        Type::TIMESTAMPTZ, Type::INT4, Type::UUID, Type::TEXT, Type::TIMESTAMPTZ, Type::TEXT,
        Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ,
        Type::UUID, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for (_, customer, _, created) in customers {
        let span = (now - *created).num_seconds().max(60);
        for _ in 0..per_customer {
            let at = *created + Duration::seconds(rng.random_range(0..span));
            let kind = weighted(rng, KINDS);
            let complaint = kind == "complaint";
            let mut occurred = Some(at);
            let mut due = None;
            if !complaint && chance(rng, 0.05) {
                // A follow-up: due a few days after; pending when that is still ahead or
                // recent enough to be open.
                let due_at = at + Duration::days(rng.random_range(1..8));
                due = Some(due_at);
                occurred = (due_at < now - Duration::days(3) || chance(rng, 0.5))
                    .then(|| due_at.min(now));
            }
            let staff_id = staff[rng.random_range(0..staff.len())];
            let assignee = (complaint || due.is_some()).then(|| staff[rng.random_range(0..staff.len())]);
            let (mut status, mut severity, mut resolution) = (None, None, None);
            let (mut started, mut resolved, mut closed) = (None, None, None);
            if complaint {
                severity = Some(weighted(rng, SEVERITIES));
                let age = (now - at).num_hours();
                let resolve_after = Duration::hours(rng.random_range(1..240));
                if age > 240 || chance(rng, 0.5) {
                    started = Some(at + Duration::hours(1)).filter(|t| *t < now);
                    resolved = Some(at + resolve_after).filter(|t| *t < now);
                }
                if resolved.is_some() {
                    resolution = Some("Replaced the item and apologised.");
                    closed = resolved
                        .map(|t| t + Duration::days(7))
                        .filter(|t| *t < now && chance(rng, 0.7));
                }
                status = Some(match (started, resolved, closed) {
                    (_, _, Some(_)) => "closed",
                    (_, Some(_), None) => "resolved",
                    (Some(_), None, None) => "in_progress",
                    _ => "open",
                });
            }
            let subject = pick(rng, SUBJECTS);
            let notes = chance(rng, 0.3).then(|| pick(rng, NOTES));
            let outcome = occurred.is_some().then_some("done");
            let channel = pick(rng, CHANNELS);
            let direction = if chance(rng, 0.6) { "inbound" } else { "outbound" };
            let duration = occurred.map(|_| rng.random_range(30..1800));
            let updated = [Some(at), occurred, resolved, closed].into_iter().flatten().max().unwrap_or(at);
            let id = v7(at, rng);
            let row: [&(dyn ToSql + Sync); 21] = [
                &id, customer, &channel, &direction, &kind, &subject, &notes, &occurred, &duration,
                &staff_id, &outcome, &due, &severity, &status, &resolution, &started, &resolved,
                &closed, &assignee, &at, &updated,
            ];
            writer.as_mut().write(&row).await.expect("write interaction");
        }
    }
    writer.finish().await.expect("finish interactions")
}

/// `per_customer` purchases per customer between its creation and now, 5 % of them in dollars
/// (which earn no points), 60 % with a cost.
async fn copy_purchases(
    client: &Client,
    customers: &[(Uuid, Uuid, &str, DateTime<Utc>)],
    per_customer: usize,
    now: DateTime<Utc>,
    rng: &mut SmallRng,
) -> u64 {
    let sink = client
        .copy_in(
            "COPY purchases (id, customer_id, currency, amount, cost, occurred_at, channel, \
             created_at, updated_at) FROM STDIN BINARY",
        )
        .await
        .expect("copy purchases");
    let types = [
        Type::UUID, Type::UUID, Type::TEXT, Type::INT8, Type::INT8, Type::TIMESTAMPTZ,
        Type::TEXT, Type::TIMESTAMPTZ, Type::TIMESTAMPTZ,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for (_, customer, _, created) in customers {
        let span = (now - *created).num_seconds().max(60);
        for _ in 0..per_customer {
            let at = *created + Duration::seconds(rng.random_range(0..span));
            let currency = if chance(rng, 0.05) { "USD" } else { "EUR" };
            let amount: i64 = rng.random_range(500..30_000);
            let cost = chance(rng, 0.6).then(|| amount * rng.random_range(30..80) / 100);
            let channel = if chance(rng, 0.5) { "in_store" } else { "web" };
            let id = v7(at, rng);
            let row: [&(dyn ToSql + Sync); 9] =
                [&id, customer, &currency, &amount, &cost, &at, &channel, &at, &at];
            writer.as_mut().write(&row).await.expect("write purchase");
        }
    }
    writer.finish().await.expect("finish purchases")
}

/// The loyalty programme of the bench, and each purchase's points earned into the ledger,
/// set-wise in SQL with the service's own formulas (`loyalty_points`, `loyalty_expiry`): as
/// if every purchase had been posted before the tiers existed (at 100 %). Members get their
/// tiers from the first evaluation pass, which the bench measures. Ledger entries written.
async fn derive_loyalty(client: &Client) -> u64 {
    // Consistent by construction: no foreign-key checks row by row while loading.
    client
        .batch_execute("SET session_replication_role = replica")
        .await
        .expect("session settings");
    client
        .batch_execute(
            "UPDATE loyalty_program SET currency = 'EUR', earn_points = 1, earn_per_amount = 100,
                 rounding = 'down', expiry = 'after_days', expiry_days = 365,
                 qualification_basis = 'points_earned', qualification_months = 12,
                 downgrade = 'grace_period', grace_days = 30;
             DELETE FROM loyalty_tiers;
             INSERT INTO loyalty_tiers (key, name, position, threshold, multiplier_percent, benefits)
             VALUES ('standard', 'Standard', 0, 0, 100, '{}'),
                    ('silver', 'Silver', 1, 1000, 125, '{free delivery}'),
                    ('gold', 'Gold', 2, 3000, 150, '{free delivery,birthday voucher}'),
                    ('platinum', 'Platinum', 3, 8000, 200, '{free delivery,birthday voucher,concierge}');
             INSERT INTO loyalty_accounts (customer_id, created_at, updated_at)
             SELECT customer_id, min(occurred_at), min(occurred_at) FROM purchases
             WHERE currency = 'EUR' GROUP BY customer_id;
             INSERT INTO loyalty_lots (id, customer_id, earned_at, expires_at, points, remaining)
             SELECT p.id, p.customer_id, p.occurred_at,
                    loyalty_expiry('after_days', 365, p.occurred_at), x.points, x.points
             FROM purchases p
             CROSS JOIN LATERAL (SELECT loyalty_points(p.amount, 1, 100, 100, 'down') AS points) x
             WHERE p.currency = 'EUR' AND x.points > 0;",
        )
        .await
        .expect("programme, accounts and lots");
    let entries = client
        .execute(
            "INSERT INTO loyalty_ledger (id, customer_id, posting_id, kind, points, lot_id,
                 expires_at, purchase_id, qualifying_at, occurred_at, created_at, actor_type,
                 actor_id)
             SELECT id, customer_id, id, 'earn', points, id, expires_at, id, earned_at,
                    earned_at, earned_at, 'service', 'seed'
             FROM loyalty_lots ORDER BY earned_at",
            &[],
        )
        .await
        .expect("ledger");
    client
        .batch_execute(
            "UPDATE loyalty_accounts a SET balance = s.points
             FROM (SELECT customer_id, sum(remaining) AS points FROM loyalty_lots
                   GROUP BY customer_id) s
             WHERE a.customer_id = s.customer_id",
        )
        .await
        .expect("balances");
    client
        .batch_execute("RESET session_replication_role")
        .await
        .expect("session settings");
    entries
}
