//! The code keeps the layering `docs/architecture.md` writes down. These tests read `src/` as
//! text (comments left out) and name every file that breaks a rule, so a change that tangles
//! the house fails the build instead of waiting for a reviewer:
//! - an area uses only areas of its own layer of the diagram or of a layer below, and no two
//!   areas use each other;
//! - nothing outside a `routes.rs` names a `routes` item;
//! - `routes.rs` holds HTTP only: no SQL, no transaction, no journal entry;
//! - `rules.rs` is pure: no database, no `async`, no HTTP framework;
//! - `json.rs` holds wire types: no database access, no `async`;
//! - no file holds both SQL and orchestration (a transaction or a journal entry): SQL lives in
//!   store files, transactions in the services that call them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source file of `src/`: its path from `src/`, its area, and its code without comments.
struct Source {
    path: String,
    area: String,
    code: String,
}

fn sources() -> Vec<Source> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let path = file
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let area = path
                .split('/')
                .next()
                .unwrap()
                .trim_end_matches(".rs")
                .to_owned();
            let code = std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .map(|line| match line.trim_start() {
                    l if l.starts_with("//") => "",
                    _ => line,
                })
                .collect::<Vec<_>>()
                .join("\n");
            // Unit tests may build whatever they need.
            let code = match code.find("#[cfg(test)]") {
                Some(at) => code[..at].to_owned(),
                None => code,
            };
            Source { path, area, code }
        })
        .collect()
}

/// The layer of each area named in the architecture diagram: 0 for the subgraph drawn
/// first (the entry points), counting down to the ground.
fn layers() -> BTreeMap<String, usize> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md"))
            .unwrap();
    let diagram = crate::doc_examples::blocks(&text)
        .into_iter()
        .find(|b| b.lang == "mermaid")
        .expect("docs/architecture.md has a mermaid diagram")
        .text;
    let mut layers = BTreeMap::new();
    let mut layer = None;
    for line in diagram.lines().map(str::trim) {
        if line.starts_with("subgraph ") {
            layer = Some(layer.map_or(0, |l| l + 1));
        } else if line == "end" || line.starts_with("direction") || line.contains("-->") {
            continue;
        } else if let (Some(l), Some(word)) = (layer, line.split(['[', ' ']).next())
            && !word.is_empty()
        {
            layers.insert(word.to_owned(), l);
        }
    }
    // `cli` stands for the command line, which `main.rs` runs.
    if let Some(&l) = layers.get("cli") {
        layers.insert("main".to_owned(), l);
    }
    layers
}

/// The areas `code` names as `crate::area` (or `rapport::area` in the binary).
fn uses<'a>(code: &str, areas: &'a BTreeMap<String, usize>) -> BTreeSet<&'a str> {
    let mut used = BTreeSet::new();
    for prefix in ["crate::", "rapport::"] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if let Some((area, _)) = areas.get_key_value(&name) {
                used.insert(area.as_str());
            } else if name.is_empty() && rest.starts_with('{') {
                // `use crate::{a, b::c}`
                let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
                for part in group.split(',') {
                    let name = part.trim().split("::").next().unwrap_or("");
                    if let Some((area, _)) = areas.get_key_value(name) {
                        used.insert(area.as_str());
                    }
                }
            }
        }
    }
    used
}

fn fail_unless_empty(broken: &[String], rule: &str) {
    assert!(
        broken.is_empty(),
        "{rule} (docs/architecture.md):\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn areas_use_only_their_own_layer_or_the_layers_below() {
    let layers = layers();
    let mut edges: BTreeSet<(String, String)> = BTreeSet::new();
    let mut broken = Vec::new();
    for file in sources() {
        let Some(&own) = layers.get(&file.area) else {
            continue;
        };
        for used in uses(&file.code, &layers) {
            if used == file.area {
                continue;
            }
            edges.insert((file.area.clone(), used.to_owned()));
            if layers[used] < own {
                broken.push(format!("{} uses `{used}`, a layer above it", file.path));
            }
        }
    }
    for (from, to) in &edges {
        if from < to && edges.contains(&(to.clone(), from.clone())) {
            broken.push(format!("`{from}` and `{to}` use each other"));
        }
    }
    broken.sort();
    broken.dedup();
    fail_unless_empty(
        &broken,
        "An area uses an area above it, or two areas use each other",
    );
    assert!(layers.len() > 25, "the diagram names only {layers:?}");
}

#[test]
fn nothing_outside_routes_names_a_routes_item() {
    let broken: Vec<String> = sources()
        .into_iter()
        .filter(|f| !f.path.ends_with("routes.rs"))
        .flat_map(|f| {
            f.code
                .lines()
                .filter(|l| l.contains("routes::"))
                .filter(|l| l.trim() != "pub use routes::configure;")
                .map(|l| format!("{}: {}", f.path, l.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    fail_unless_empty(&broken, "Only routes.rs files name routes items");
}

/// The files of a kind that contain any of `forbidden`, each with what it contains.
fn containing(kind: &str, forbidden: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|f| f.path.ends_with(kind))
        .filter_map(|f| {
            let found: Vec<&str> = forbidden
                .iter()
                .copied()
                .filter(|word| f.code.contains(word))
                .collect();
            (!found.is_empty()).then(|| format!("{}: {}", f.path, found.join(", ")))
        })
        .collect()
}

/// What marks SQL in Rust code.
const SQL: [&str; 7] = [
    "sql_query(",
    "db::schema",
    "diesel::insert_into",
    "diesel::update(",
    "diesel::delete(",
    "sql::<",
    ".sql\")",
];

/// What marks orchestration: a transaction opened, or a change written to the journal.
const ORCHESTRATION: [&str; 3] = [".transaction(", "build_transaction", "journal::record"];

#[test]
fn routes_hold_http_only() {
    let mut forbidden: Vec<&str> = SQL.iter().chain(&ORCHESTRATION).copied().collect();
    forbidden.push("RunQueryDsl");
    fail_unless_empty(
        &containing("routes.rs", &forbidden),
        "routes.rs holds HTTP only: SQL and transactions belong to the store and the service",
    );
}

#[test]
fn rules_are_pure() {
    let mut forbidden: Vec<&str> = SQL.to_vec();
    forbidden.extend(["AsyncPgConnection", "async fn", "actix_web", "journal::"]);
    fail_unless_empty(
        &containing("rules.rs", &forbidden),
        "rules.rs is pure: no database, no async, no HTTP framework",
    );
}

#[test]
fn wire_types_do_not_reach_the_database() {
    let mut forbidden: Vec<&str> = SQL.to_vec();
    forbidden.extend(["AsyncPgConnection", "async fn", "journal::"]);
    // `http/json.rs` is the JSON extractor, not an area's wire types.
    let broken: Vec<String> = containing("json.rs", &forbidden)
        .into_iter()
        .filter(|f| !f.starts_with("http/"))
        .collect();
    fail_unless_empty(&broken, "json.rs holds wire types only");
}

#[test]
fn no_file_holds_both_sql_and_orchestration() {
    let broken: Vec<String> = sources()
        .into_iter()
        // The pool, the migrations and the statement cache are the ground SQL stands on.
        .filter(|f| f.area != "db")
        .filter_map(|f| {
            let sql: Vec<&str> = SQL.into_iter().filter(|w| f.code.contains(w)).collect();
            let orchestration: Vec<&str> = ORCHESTRATION
                .into_iter()
                .filter(|w| f.code.contains(w))
                .collect();
            (!sql.is_empty() && !orchestration.is_empty()).then(|| {
                format!(
                    "{}: SQL ({}) beside {}",
                    f.path,
                    sql.join(", "),
                    orchestration.join(", ")
                )
            })
        })
        .collect();
    fail_unless_empty(
        &broken,
        "A file holds SQL (a store) or opens transactions and writes the journal (a service), not both",
    );
}
