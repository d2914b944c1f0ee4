//! Docs that cannot rot: every shell example in README.md and docs/*.md runs here against a
//! real server, and every curl in it must answer the status the docs say it does.
//!
//! The rules, stated for writers in docs/contributing.md ("Examples that run"):
//! - A fenced block tagged `sh` runs. Anything else is shown only: `console` for commands that
//!   cannot run here (`cargo run`, `docker compose`, a placeholder), `text`, `yaml`, …
//!   `bash`, `shell` and `zsh` are refused so that the choice is always visible.
//! - Each file's `sh` blocks run in order, in one `bash -euo pipefail` session of their own,
//!   in an empty directory, against a freshly spawned app with a database of its own. The
//!   session starts as the README's first steps leave a reader: `RAPPORT` is the base URL,
//!   `TOKEN` an admin token from `rapport token --role admin`, and the `rapport` binary is on
//!   the `PATH` (configured for the app's database). `HOOK_URL` is a webhook receiver this test
//!   runs (answering `204`), which the app may reach though its address is private. The
//!   sample exports of `tests/fixtures/imports/` are at that path, as at the repository's root.
//! - Every curl command carries its expected status in a comment at the end of the command:
//!   `# → 201`. A curl without one fails the test, so no new example escapes.
//! - Curls run in the order they are written (no loops around them): the n-th curl run is
//!   checked against the n-th expectation of the file.
//!
//! `DOC_EXAMPLES=docs/imports.md` runs one file's examples; `DOC_TRACE=1` prints each command
//! as it runs (`cargo test --test api doc_examples -- --nocapture`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use tokio::process::Command;

use crate::helpers::{TEST_SECRET_KEY, TestApp};

/// How many files run at once.
const PARALLEL_FILES: usize = 3;

/// How long the app and the CLI wait for a database connection.
const PATIENCE: &str = "15s";

/// How long one file's examples may take in all.
const FILE_TIMEOUT: Duration = Duration::from_secs(90);

/// A fenced code block of a Markdown file.
#[derive(Debug)]
pub struct Block {
    /// The line (1-based) of the opening fence.
    pub line: usize,
    pub lang: String,
    pub text: String,
}

/// The fenced blocks of a Markdown file, their indentation (inside list items) removed.
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String, String)> = None;
    for (number, line) in markdown.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(lang) = trimmed.strip_prefix("```") {
                    open = Some((number + 1, indent, lang.trim().to_owned(), String::new()));
                }
            }
            Some((start, fence_indent, lang, text)) => {
                if trimmed.starts_with("```") {
                    out.push(Block {
                        line: *start,
                        lang: std::mem::take(lang),
                        text: std::mem::take(text),
                    });
                    open = None;
                } else {
                    let cut = indent.min(*fence_indent);
                    text.push_str(&line[cut..]);
                    text.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "a code block is never closed");
    out
}

/// What a shell block holds: the lines (1-based, in the block) of its curl commands and of its
/// expectations, `# → 201` comments.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    pub curls: Vec<usize>,
    pub expectations: Vec<(usize, u16)>,
}

#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// Shell code; `true` inside `$(…)` or `(…)`.
    Code(bool),
    Single,
    Double,
}

/// Finds the curl commands and the expectation comments of a shell block, knowing enough of
/// the shell's quoting to skip quoted text, comments and heredoc bodies.
pub fn scan(text: &str) -> Scan {
    let chars: Vec<char> = text.chars().collect();
    let mut scan = Scan::default();
    let mut stack = vec![Ctx::Code(false)];
    let mut line = 1;
    // The next word is in a command's place (so `curl` there is the command).
    let mut command_place = true;
    // Where the current word began (a `#` only starts a comment there).
    let mut word_start = true;
    let mut heredocs: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let top = *stack.last().unwrap_or(&Ctx::Code(false));
        match top {
            Ctx::Single => match c {
                '\'' => {
                    stack.pop();
                }
                '\n' => line += 1,
                _ => {}
            },
            Ctx::Double => match c {
                '\\' => {
                    if next == Some('\n') {
                        line += 1;
                    }
                    i += 1;
                }
                '"' => {
                    stack.pop();
                }
                '\n' => line += 1,
                '$' if next == Some('(') => {
                    stack.push(Ctx::Code(true));
                    command_place = true;
                    word_start = true;
                    i += 1;
                }
                _ => {}
            },
            Ctx::Code(nested) => match c {
                '\\' => {
                    if next == Some('\n') {
                        line += 1;
                        word_start = true;
                    } else {
                        command_place = false;
                        word_start = false;
                    }
                    i += 1;
                }
                '\'' => {
                    stack.push(Ctx::Single);
                    command_place = false;
                    word_start = false;
                }
                '"' => {
                    stack.push(Ctx::Double);
                    command_place = false;
                    word_start = false;
                }
                '$' if next == Some('(') => {
                    stack.push(Ctx::Code(true));
                    command_place = true;
                    word_start = true;
                    i += 1;
                }
                '(' | '{' | ';' | '|' | '&' => {
                    if c == '(' {
                        stack.push(Ctx::Code(true));
                    }
                    command_place = true;
                    word_start = true;
                }
                ')' => {
                    if nested {
                        stack.pop();
                    }
                    command_place = false;
                    word_start = true;
                }
                '#' if word_start => {
                    let end = chars[i..]
                        .iter()
                        .position(|&ch| ch == '\n')
                        .map_or(chars.len(), |p| i + p);
                    let comment: String = chars[i + 1..end].iter().collect();
                    if let Some(status) = expectation(&comment) {
                        scan.expectations.push((line, status));
                    }
                    i = end;
                    continue;
                }
                '<' if next == Some('<') && chars.get(i + 2) == Some(&'<') => {
                    // A here-string, `<<<word`: the word follows on the line.
                    i += 3;
                    command_place = false;
                    word_start = true;
                    continue;
                }
                '<' if next == Some('<') => {
                    let mut j = i + 2;
                    if chars.get(j) == Some(&'-') {
                        j += 1;
                    }
                    while chars.get(j) == Some(&' ') {
                        j += 1;
                    }
                    let quoted = matches!(chars.get(j), Some('\'' | '"'));
                    if quoted {
                        j += 1;
                    }
                    let word: String = chars[j..]
                        .iter()
                        .take_while(|ch| ch.is_alphanumeric() || **ch == '_')
                        .collect();
                    j += word.chars().count();
                    if quoted {
                        j += 1;
                    }
                    heredocs.push(word);
                    i = j;
                    command_place = false;
                    word_start = true;
                    continue;
                }
                '\n' => {
                    line += 1;
                    command_place = true;
                    word_start = true;
                    // Heredoc bodies follow the line that opened them.
                    for end in std::mem::take(&mut heredocs) {
                        loop {
                            let rest = chars.get(i + 1..).unwrap_or_default();
                            let len = rest.iter().position(|&ch| ch == '\n');
                            let body_line: String =
                                rest[..len.unwrap_or(rest.len())].iter().collect();
                            i += len.map_or(rest.len(), |l| l + 1);
                            line += 1;
                            if body_line.trim() == end || len.is_none() {
                                break;
                            }
                        }
                    }
                }
                ' ' | '\t' => word_start = true,
                _ => {
                    if command_place && word_start {
                        let word: String = chars[i..]
                            .iter()
                            .take_while(|ch| !ch.is_whitespace() && !"|;&()<>".contains(**ch))
                            .collect();
                        if word == "curl" {
                            scan.curls.push(line);
                        }
                        // `X=value cmd`: the command is still to come.
                        if !word.contains('=') {
                            command_place = false;
                        }
                    }
                    word_start = false;
                }
            },
        }
        i += 1;
    }
    scan
}

/// `→ 201` (what follows `#`), the status a curl must answer.
fn expectation(comment: &str) -> Option<u16> {
    let rest = comment.trim_start().strip_prefix('→')?.trim_start();
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = rest[digits.len()..].chars().next();
    if digits.len() == 3 && after.is_none_or(|c| !c.is_alphanumeric()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// One expected status, where the docs state it.
#[derive(Debug, Clone)]
pub struct Expected {
    pub status: u16,
    /// `docs/imports.md:42`, the line of the curl.
    pub at: String,
}

/// What a Markdown file gives to run.
#[derive(Debug, Default)]
pub struct Examples {
    /// Each `sh` block, with the line of its fence.
    pub blocks: Vec<(usize, String)>,
    /// Every curl's expected status, in order.
    pub expected: Vec<Expected>,
}

/// The runnable examples of a Markdown file. Errors name what breaks the rules.
pub fn examples(file: &str, markdown: &str) -> Result<Examples, Vec<String>> {
    let mut runnable = Vec::new();
    let mut expected = Vec::new();
    let mut errors = Vec::new();
    for block in blocks(markdown) {
        let at = |line: usize| format!("{file}:{}", block.line + line);
        match block.lang.as_str() {
            "sh" => {}
            "bash" | "shell" | "zsh" => {
                errors.push(format!(
                    "{}: tag the block `sh` (it runs in the tests) or `console` (shown only)",
                    at(0)
                ));
                continue;
            }
            _ => continue,
        }
        let scan = scan(&block.text);
        if scan.curls.len() != scan.expectations.len() {
            errors.push(format!(
                "{}: the block has {} curl command(s) at lines {:?} and {} `# → <status>` \
                 comment(s): give every curl its expected status at the end of its command",
                at(0),
                scan.curls.len(),
                scan.curls.iter().map(|&l| at(l)).collect::<Vec<_>>(),
                scan.expectations.len(),
            ));
            continue;
        }
        for (k, (&curl, &(line, status))) in scan.curls.iter().zip(&scan.expectations).enumerate() {
            let next_curl = scan.curls.get(k + 1).copied().unwrap_or(usize::MAX);
            if line < curl || line > next_curl {
                errors.push(format!(
                    "{}: this curl's `# → <status>` is not at the end of its command",
                    at(curl)
                ));
            }
            expected.push(Expected {
                status,
                at: at(curl),
            });
        }
        runnable.push((block.line, block.text));
    }
    if errors.is_empty() {
        Ok(Examples {
            blocks: runnable,
            expected,
        })
    } else {
        Err(errors)
    }
}

/// README.md and every docs/*.md, as paths relative to the repository.
pub fn markdown_files() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec!["README.md".to_owned()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// Wraps curl so that each call records its status, answers `97` when the status is not the
/// expected one (naming both, with the start of the body), and otherwise behaves as curl.
const PRELUDE: &str = r#"
curl() {
    local n expected status=000 rc=0 headers body own_output=1 arg line
    local -a seen wanted
    # Builtins only: a fork per step would cost seconds on a busy machine.
    mapfile -t seen < "$DOC_STATUSES"
    mapfile -t wanted < "$DOC_EXPECTED"
    n=$(( ${#seen[@]} + 1 ))
    expected=${wanted[n - 1]:-}
    headers="$DOC_SCRATCH/headers-$n" body="$DOC_SCRATCH/body-$n"
    for arg in "$@"; do
        case $arg in -o|--output|-O|--remote-name) own_output=0 ;; esac
    done
    if (( own_output )); then
        command curl --dump-header "$headers" --output "$body" "$@" || rc=$?
    else
        : > "$body"
        command curl --dump-header "$headers" "$@" || rc=$?
    fi
    # The last status line: a `100 Continue` may come first.
    while IFS=$' \r' read -r line; do
        [[ $line == HTTP/* ]] && { status=${line#* }; status=${status%% *}; }
    done < "$headers" 2>/dev/null || true
    echo "$status" >> "$DOC_STATUSES"
    (( own_output )) && cat "$body"
    if [[ -z $expected ]]; then
        echo "curl #$n has no expected status (more curls ran than the docs show)" >&2
        rc=97
    elif [[ $status != "${expected%% *}" ]]; then
        {
            echo "${expected#* }: expected ${expected%% *}, got $status"
            body=$(< "$body")
            echo "${body:0:2000}"
        } >&2
        rc=97
    fi
    return $rc
}
trap 'echo "stopped in ${BASH_SOURCE[0]##*/} line $LINENO: $BASH_COMMAND" >&2' ERR
TOKEN=$(rapport token --role admin)
"#;

/// A webhook receiver: answers every request `204` once it has read it. Its URL.
async fn receiver() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as many bytes as it announces.
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while seen.len() < head_end + length {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{address}/hooks")
}

/// Runs one file's examples against an app of its own; the failure, if any.
async fn run_file(file: String, hook_url: String) -> Result<usize, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let markdown = std::fs::read_to_string(root.join(&file)).map_err(|e| format!("{file}: {e}"))?;
    let Examples {
        blocks: runnable,
        expected,
    } = examples(&file, &markdown).map_err(|e| e.join("\n"))?;
    if runnable.is_empty() {
        return Ok(0);
    }
    // The app as a reader runs it: the signing keys in the database, not configured.
    let app = TestApp::spawn_with(&[
        ("RAPPORT_JWT_SECRET", ""),
        ("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "true"),
        // Patience on a busy machine, where a connection may take seconds.
        ("RAPPORT_DB_CONNECT_TIMEOUT", PATIENCE),
        ("RAPPORT_DB_POOL_WAIT_TIMEOUT", PATIENCE),
    ])
    .await;
    let dir = std::env::temp_dir().join(format!("rapport-doc-{}", uuid::Uuid::now_v7().simple()));
    let scripts = dir.join(".examples");
    std::fs::create_dir_all(&scripts).map_err(|e| e.to_string())?;
    // The sample exports, where a reader at the repository's root finds them.
    let samples = Path::new("tests/fixtures/imports");
    std::fs::create_dir_all(dir.join(samples)).map_err(|e| e.to_string())?;
    for entry in std::fs::read_dir(root.join(samples)).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if let Some(name) = path.file_name() {
            std::fs::copy(&path, dir.join(samples).join(name)).map_err(|e| e.to_string())?;
        }
    }
    let statuses = scripts.join("statuses");
    let expected_file = scripts.join("expected");
    std::fs::write(&statuses, "").map_err(|e| e.to_string())?;
    let listed: String = expected
        .iter()
        .map(|e| format!("{} {}\n", e.status, e.at))
        .collect();
    std::fs::write(&expected_file, listed).map_err(|e| e.to_string())?;
    let mut main = format!("set -euo pipefail\n{PRELUDE}\n");
    // `DOC_TRACE=1` prints every command as it runs, with the time.
    let trace = std::env::var("DOC_TRACE").is_ok();
    if trace {
        main.push_str("PS4='+ $EPOCHREALTIME '; set -x\n");
    }
    let stem = file.replace('/', "-");
    for (line, text) in &runnable {
        // Named after where it comes from, so bash's own messages point there.
        let name = format!("{stem}-line-{line}.sh");
        std::fs::write(scripts.join(&name), text).map_err(|e| e.to_string())?;
        main.push_str(&format!("source .examples/{name}\n"));
    }
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rapport"));
    let bin_dir = bin.parent().expect("the binary's folder");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = Command::new("bash")
        .args(["-c", &main])
        .env_clear()
        .env("PATH", path)
        .env("HOME", &dir)
        .env("LANG", "C.UTF-8")
        .env("RAPPORT", &app.address)
        .env("HOOK_URL", &hook_url)
        .env("DATABASE_URL", app.db.url.expose())
        .env("RAPPORT_SECRET_KEY", TEST_SECRET_KEY)
        .env("RAPPORT_LOG", "warn")
        .env("RAPPORT_DB_CONNECT_TIMEOUT", PATIENCE)
        .env("DOC_STATUSES", &statuses)
        .env("DOC_EXPECTED", &expected_file)
        .env("DOC_SCRATCH", &scripts)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(FILE_TIMEOUT, run)
        .await
        .map_err(|_| format!("{file}: the examples took longer than {FILE_TIMEOUT:?}"))?
        .map_err(|e| format!("{file}: bash: {e}"))?;
    if trace {
        eprintln!("{file}:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let ran: Vec<String> = std::fs::read_to_string(&statuses)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let lines: Vec<&str> = stderr.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        return Err(format!(
            "{file}: the examples stopped ({}) after {} of {} curls:\n{}",
            out.status,
            ran.len(),
            expected.len(),
            tail.join("\n")
        ));
    }
    for (k, want) in expected.iter().enumerate() {
        match ran.get(k) {
            Some(got) if *got == want.status.to_string() => {}
            Some(got) => {
                return Err(format!("{}: expected {}, got {got}", want.at, want.status));
            }
            None => return Err(format!("{}: this curl never ran", want.at)),
        }
    }
    if ran.len() > expected.len() {
        return Err(format!(
            "{file}: {} curls ran, the docs show {}",
            ran.len(),
            expected.len()
        ));
    }
    Ok(expected.len())
}

#[actix_web::test]
async fn every_example_in_the_docs_answers_as_documented() {
    let hook_url = receiver().await;
    // `DOC_EXAMPLES=docs/imports.md` runs one file's examples only.
    let only = std::env::var("DOC_EXAMPLES").ok();
    let files: Vec<String> = markdown_files()
        .into_iter()
        .filter(|f| only.as_ref().is_none_or(|o| o == f))
        .collect();
    // A few files at a time: each has an app, a database and a shell of its own.
    let results: Vec<_> = stream::iter(files)
        .map(|file| run_file(file, hook_url.clone()))
        .buffer_unordered(PARALLEL_FILES)
        .collect()
        .await;
    let mut failures = Vec::new();
    let mut total = 0;
    for result in results {
        match result {
            Ok(n) => total += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
    assert!(total > 0, "no example ran");
}

#[test]
fn a_curl_without_an_expected_status_is_refused() {
    let markdown = "```sh\ncurl -s \"$RAPPORT/readyz\"\n```\n";
    let errors = examples("x.md", markdown).unwrap_err();
    assert!(errors[0].contains("x.md:1"), "{errors:?}");

    let markdown = "```bash\necho hi\n```\n";
    assert!(examples("x.md", markdown).is_err());

    let markdown = "```console\n$ cargo run --release\n```\n";
    let found = examples("x.md", markdown).unwrap();
    assert!(found.blocks.is_empty() && found.expected.is_empty());
}

#[test]
fn the_scan_knows_quotes_comments_and_heredocs() {
    let block = r#"# curl in a comment is no command
C=$(curl -s "$RAPPORT/v1/customers" \
  -H 'x: # not a comment' -d '{"note": "curl
   spans lines"}' | jq -r .id)  # → 201
cat > a.csv <<'CSV'
curl,name
CSV
gzip -c a.csv | curl -s --data-binary @- "$RAPPORT/x"  # → 202 queued
echo "$(curl -s "$RAPPORT/healthz")"  # → 200
jq . <<<"$X"
"#;
    let scan = scan(block);
    assert_eq!(scan.curls, [2, 8, 9]);
    assert_eq!(scan.expectations, [(4, 201), (8, 202), (9, 200)]);
}
