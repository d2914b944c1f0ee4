//! The documentation says what the code does: every setting, error code and permission, every
//! area of `src/`, and every link between the guides resolves. (That every example runs is
//! `doc_examples.rs`.)

use rapport::auth::{Role, Scope};
use rapport::config::VARIABLES;
use rapport::http::ErrorCode;

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_setting_is_documented_with_its_default() {
    let guide = read("docs/configuration.md");
    let example = read(".env.example");
    for var in VARIABLES {
        let default = if var.default.starts_with('(') {
            var.default.to_owned()
        } else {
            format!("`{}`", var.default)
        };
        let row = format!("| `{}` | {} | {} |", var.name, default, var.meaning);
        assert!(
            guide.contains(&row),
            "docs/configuration.md lacks the row: {row}"
        );
        assert!(
            example.contains(&format!("# {}=", var.name)),
            ".env.example lacks {}",
            var.name
        );
    }
}

#[test]
fn every_error_code_is_documented() {
    let guide = read("docs/api-conventions.md");
    for code in ErrorCode::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
        assert!(
            guide.contains(&row),
            "docs/api-conventions.md lacks the error code row starting {row}"
        );
    }
}

#[test]
fn every_permission_is_in_the_roles_table() {
    let guide = read("docs/security.md");
    for scope in Scope::all() {
        let mut row = format!("| `{scope}` |");
        for role in Role::ALL {
            row.push_str(if role.scopes().contains(scope) {
                " yes |"
            } else {
                " |"
            });
        }
        let clients = if scope.for_clients() {
            "may be given"
        } else {
            "never"
        };
        row.push_str(&format!(" {clients} |"));
        assert!(
            guide.contains(&row),
            "docs/security.md lacks the permission row: {row}"
        );
    }
}

/// The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
/// spaces as hyphens, a repeated heading numbered.
fn anchors(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let base: String = title
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let taken = seen.entry(base.clone()).or_insert(0);
        out.push(if *taken == 0 {
            base
        } else {
            format!("{base}-{taken}")
        });
        *taken += 1;
    }
    out
}

/// The targets of a Markdown file's inline links, with their lines, outside code.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (number, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code is no link: keep only what lies outside backticks.
        let prose: String = line
            .split('`')
            .enumerate()
            .map(|(i, part)| if i % 2 == 0 { part } else { " " })
            .collect();
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            out.push((number + 1, after[..end].to_owned()));
            rest = &after[end..];
        }
    }
    out
}

#[test]
fn every_link_between_the_docs_resolves() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in crate::doc_examples::markdown_files() {
        let text = read(&file);
        let dir = root.join(&file).parent().unwrap().to_path_buf();
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let resolved = if path.is_empty() {
                root.join(&file)
            } else {
                dir.join(path)
            };
            if !resolved.exists() {
                problems.push(format!("{file}:{line}: {target}: no such file"));
                continue;
            }
            if !anchor.is_empty() {
                let heads = if resolved.extension().is_some_and(|e| e == "md") {
                    anchors(&std::fs::read_to_string(&resolved).unwrap())
                } else {
                    Vec::new()
                };
                if !heads.iter().any(|h| h == anchor) {
                    problems.push(format!("{file}:{line}: {target}: no such heading"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
    assert!(checked > 20, "only {checked} links found");
}

#[test]
fn every_area_of_src_is_in_the_architecture_diagram() {
    let architecture = read("docs/architecture.md");
    let diagram = crate::doc_examples::blocks(&architecture)
        .into_iter()
        .find(|b| b.lang == "mermaid")
        .expect("docs/architecture.md has a mermaid diagram")
        .text;
    let words: Vec<&str> = diagram
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !words.contains(&name.as_str()) {
                missing.push(name);
            }
        }
    }
    missing.sort();
    assert!(
        missing.is_empty(),
        "docs/architecture.md's diagram does not name these areas of src/: {missing:?}"
    );
}

#[test]
fn github_anchors() {
    let heads =
        anchors("# A b\n## Tokens, keys and secrets\n```\n# no\n```\n## A\n## A\n## Rate limits\n");
    assert_eq!(
        heads,
        ["a-b", "tokens-keys-and-secrets", "a", "a-1", "rate-limits"]
    );
}
