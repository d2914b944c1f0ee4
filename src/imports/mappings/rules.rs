//! How a mapping turns another system's row into a resource's fields: the rules checked
//! once (against the resource's columns, then against a file's header), then applied row by
//! row. Pure: no database, no HTTP.
//!
//! Applying a rule borrows the row's text wherever it can: one source with no value map and
//! no date format is read as the cell it is, and the only allocations are those of the
//! JSON value written (as without a mapping).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::{Map, Value};

use super::json::{Blank, FieldRule, MappingSpec};
use crate::http::tabular::{self, Column};

/// Most rules in a mapping (no resource has more fields).
pub const MAX_FIELDS: usize = 64;
/// Most sources one rule joins.
pub const MAX_SOURCES: usize = 8;
/// Most entries of a value map.
pub const MAX_VALUES: usize = 500;
/// Most ignored columns.
pub const MAX_IGNORED: usize = 256;
/// Most unmapped columns an import names.
pub const MAX_UNMAPPED: usize = 50;

/// Whether a field holds a date or a point in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Temporal {
    Date,
    Time,
}

fn temporal(path: &str) -> Option<Temporal> {
    if path.ends_with("_date") {
        Some(Temporal::Date)
    } else if path.ends_with("_at") || path.ends_with(".at") {
        Some(Temporal::Time)
    } else {
        None
    }
}

/// How a source writes dates.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DateFormat {
    Rfc3339,
    Unix,
    UnixMs,
    Pattern(String),
}

impl DateFormat {
    fn parse(text: &str) -> Result<Self, String> {
        match text {
            "rfc3339" => Ok(Self::Rfc3339),
            "unix" => Ok(Self::Unix),
            "unix_ms" => Ok(Self::UnixMs),
            pattern => {
                let items = chrono::format::StrftimeItems::new(pattern);
                let broken = items
                    .clone()
                    .any(|item| matches!(item, chrono::format::Item::Error));
                if pattern.trim().is_empty() || broken || !pattern.contains('%') {
                    return Err(format!(
                        "`{pattern}` is not a date format: use a strftime pattern such as \
                         `%m/%d/%Y`, or `rfc3339`, `unix`, `unix_ms`"
                    ));
                }
                Ok(Self::Pattern(pattern.to_owned()))
            }
        }
    }

    /// The point in time `text` names, read as this format (UTC when it has no offset).
    fn read(&self, text: &str) -> Option<DateTime<Utc>> {
        match self {
            Self::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.with_timezone(&Utc))
                .or_else(|| {
                    NaiveDate::parse_from_str(text, "%Y-%m-%d")
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc())
                }),
            Self::Unix => text
                .parse::<i64>()
                .ok()
                .and_then(|s| Utc.timestamp_opt(s, 0).single()),
            Self::UnixMs => text
                .parse::<i64>()
                .ok()
                .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
            Self::Pattern(pattern) => DateTime::parse_from_str(text, pattern)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(text, pattern)
                        .ok()
                        .map(|t| t.and_utc())
                })
                .or_else(|| {
                    NaiveDate::parse_from_str(text, pattern)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .map(|t| t.and_utc())
                }),
        }
    }

    fn describe(&self) -> &str {
        match self {
            Self::Rfc3339 => "rfc3339",
            Self::Unix => "unix",
            Self::UnixMs => "unix_ms",
            Self::Pattern(p) => p,
        }
    }
}

/// One field's rule, checked.
#[derive(Debug, Clone)]
struct Target {
    column: Column,
    sources: Vec<String>,
    join: String,
    values: HashMap<String, String>,
    /// The value map's keys in lower case, for a value not matched exactly.
    values_folded: HashMap<String, String>,
    prefix: Option<String>,
    date: Option<(DateFormat, Temporal)>,
    default: Option<String>,
    blank: Blank,
    /// The file may lack its sources.
    optional: bool,
}

impl Target {
    /// A column of the file named as the field it fills.
    fn identity(column: Column, source: &str) -> Self {
        Target {
            column,
            sources: vec![source.to_owned()],
            join: String::new(),
            values: HashMap::new(),
            values_folded: HashMap::new(),
            prefix: None,
            date: None,
            default: None,
            blank: Blank::Keep,
            optional: false,
        }
    }
}

/// A mapping checked against a resource's columns.
#[derive(Debug, Clone)]
pub struct Mapping {
    targets: Vec<Target>,
    ignore: BTreeSet<String>,
    /// The resource's columns an import sets.
    columns: Vec<Column>,
}

/// A field error: the field (`mapping.fields.name.from`) and what is wrong.
pub type Problem = (String, String);

fn bounded(problems: &mut Vec<Problem>, field: String, text: &str, max: usize) {
    if text.chars().count() > max {
        problems.push((field, format!("must be at most {max} characters")));
    }
}

/// Checks a mapping against the columns of the resource it imports into; every problem is
/// named, with its place in the mapping.
pub fn check(spec: &MappingSpec, columns: &[Column]) -> Result<Mapping, Vec<Problem>> {
    let mut problems: Vec<Problem> = Vec::new();
    let writable: Vec<Column> = columns.iter().copied().filter(|c| c.writable).collect();
    if spec.fields.len() > MAX_FIELDS {
        problems.push((
            "mapping.fields".to_owned(),
            format!("must have at most {MAX_FIELDS} fields"),
        ));
    }
    if spec.ignore.len() > MAX_IGNORED {
        problems.push((
            "mapping.ignore".to_owned(),
            format!("must have at most {MAX_IGNORED} columns"),
        ));
    }
    let ignore: BTreeSet<String> = spec.ignore.iter().map(|c| c.trim().to_owned()).collect();
    for (i, name) in spec.ignore.iter().enumerate() {
        let at = format!("mapping.ignore[{i}]");
        if name.trim().is_empty() {
            problems.push((at.clone(), "must not be empty".to_owned()));
        }
        bounded(&mut problems, at, name, 200);
    }
    let mut targets = Vec::with_capacity(spec.fields.len());
    for (path, rule) in &spec.fields {
        let at = format!("mapping.fields.{path}");
        let Some(column) = writable.iter().find(|c| c.path == path.trim()).copied() else {
            let known: Vec<&str> = writable.iter().map(|c| c.path).collect();
            problems.push((
                at,
                format!(
                    "`{path}` is not a field an import sets; the fields are: {}",
                    known.join(", ")
                ),
            ));
            continue;
        };
        if let Some(target) = check_rule(&at, column, rule, &ignore, &mut problems) {
            targets.push(target);
        }
    }
    if problems.is_empty() {
        Ok(Mapping {
            targets,
            ignore,
            columns: writable,
        })
    } else {
        Err(problems)
    }
}

fn check_rule(
    at: &str,
    column: Column,
    rule: &FieldRule,
    ignore: &BTreeSet<String>,
    problems: &mut Vec<Problem>,
) -> Option<Target> {
    let before = problems.len();
    if rule.from.len() > MAX_SOURCES {
        problems.push((
            format!("{at}.from"),
            format!("must name at most {MAX_SOURCES} columns"),
        ));
    }
    if rule.from.is_empty() && rule.default.is_none() {
        problems.push((
            format!("{at}.from"),
            "is required (or a `default`, for a field that is always the same)".to_owned(),
        ));
    }
    let mut sources = Vec::with_capacity(rule.from.len());
    for (i, source) in rule.from.iter().enumerate() {
        let here = format!("{at}.from[{i}]");
        let source = source.trim();
        if source.is_empty() {
            problems.push((here.clone(), "must not be empty".to_owned()));
        } else if ignore.contains(source) {
            problems.push((
                here.clone(),
                format!("`{source}` is also in `ignore`: a column is read or ignored"),
            ));
        }
        bounded(problems, here, source, 200);
        sources.push(source.to_owned());
    }
    if let Some(prefix) = &rule.prefix {
        bounded(problems, format!("{at}.prefix"), prefix, 50);
    }
    if let Some(join) = &rule.join {
        bounded(problems, format!("{at}.join"), join, 10);
    }
    if rule.values.len() > MAX_VALUES {
        problems.push((
            format!("{at}.values"),
            format!("must have at most {MAX_VALUES} entries"),
        ));
    }
    for (from, to) in &rule.values {
        bounded(problems, format!("{at}.values.{from}"), from, 200);
        bounded(problems, format!("{at}.values.{from}"), to, 1000);
    }
    let date = match &rule.date_format {
        None => None,
        Some(format) => match (temporal(column.path), DateFormat::parse(format)) {
            (None, _) => {
                problems.push((
                    format!("{at}.date_format"),
                    format!("`{}` is not a date or time field", column.path),
                ));
                None
            }
            (Some(_), Err(message)) => {
                problems.push((format!("{at}.date_format"), message));
                None
            }
            (Some(kind), Ok(format)) => Some((format, kind)),
        },
    };
    if let Some(default) = &rule.default {
        bounded(problems, format!("{at}.default"), default, 1000);
        if let Err(message) = tabular::parse_cell(column.kind, default) {
            problems.push((format!("{at}.default"), message));
        }
    }
    if problems.len() > before {
        return None;
    }
    Some(Target {
        column,
        sources,
        join: rule.join.clone().unwrap_or_else(|| " ".to_owned()),
        values_folded: rule
            .values
            .iter()
            .map(|(k, v)| (k.trim().to_lowercase(), v.clone()))
            .collect(),
        values: rule
            .values
            .iter()
            .map(|(k, v)| (k.trim().to_owned(), v.clone()))
            .collect(),
        prefix: rule.prefix.clone().filter(|p| !p.is_empty()),
        date,
        default: rule.default.clone(),
        blank: rule.blank.unwrap_or(Blank::Keep),
        optional: rule.optional.unwrap_or(false),
    })
}

/// A source's value in one row.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Missing,
    Text(&'a str),
    Json(&'a Value),
}

impl<'a> Source<'a> {
    /// The value as text (borrowed when it is text).
    fn text(self) -> Cow<'a, str> {
        match self {
            Source::Missing | Source::Json(Value::Null) => Cow::Borrowed(""),
            Source::Text(text) => Cow::Borrowed(text.trim()),
            Source::Json(Value::String(text)) => Cow::Borrowed(text.trim()),
            Source::Json(other) => Cow::Owned(other.to_string()),
        }
    }
}

/// Fills one field from its sources: `Ok(None)` leaves it out.
fn fill<'a>(
    target: &Target,
    mut sources: impl Iterator<Item = Source<'a>>,
) -> Result<Option<Value>, String> {
    let first = sources.next().unwrap_or(Source::Missing);
    let text: Cow<'a, str> = if target.sources.len() <= 1 {
        // A JSON value other than text goes through as it is (a number, a list, an
        // object), unless it is to be looked up or read as a date.
        if let Source::Json(value) = first
            && !matches!(value, Value::String(_) | Value::Null)
            && target.values.is_empty()
            && target.date.is_none()
        {
            return Ok(Some(value.clone()));
        }
        first.text()
    } else {
        let mut joined = String::new();
        for source in std::iter::once(first).chain(sources) {
            let part = source.text();
            if part.is_empty() {
                continue;
            }
            if !joined.is_empty() {
                joined.push_str(&target.join);
            }
            joined.push_str(&part);
        }
        Cow::Owned(joined)
    };
    let mapped = if target.values.is_empty() {
        None
    } else {
        target
            .values
            .get(text.as_ref())
            .or_else(|| target.values_folded.get(&text.to_lowercase()))
    };
    let text: Cow<'_, str> = match mapped {
        Some(mapped) => Cow::Borrowed(mapped.as_str()),
        None => text,
    };
    // Empty, or mapped to nothing: a blank.
    if text.is_empty() {
        return match (&target.default, target.blank) {
            (Some(default), _) => tabular::parse_cell(target.column.kind, default).map(Some),
            (None, Blank::Keep) => Ok(None),
            (None, Blank::Clear) => Ok(Some(Value::Null)),
        };
    }
    let text: Cow<'_, str> = match &target.prefix {
        Some(prefix) => Cow::Owned(format!("{prefix}{text}")),
        None => text,
    };
    let text: Cow<'_, str> = match &target.date {
        None => text,
        Some((format, kind)) => {
            let at = format.read(&text).ok_or_else(|| {
                format!(
                    "`{text}` does not match the date format `{}`",
                    format.describe()
                )
            })?;
            Cow::Owned(match kind {
                Temporal::Date => at.date_naive().format("%Y-%m-%d").to_string(),
                Temporal::Time => at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            })
        }
    };
    tabular::parse_cell(target.column.kind, &text)
        .map(Some)
        .map_err(|message| match target.sources.as_slice() {
            [one] if one != target.column.path => format!("{message} (from `{one}`: `{text}`)"),
            _ => message,
        })
}

/// A mapping fitted to one CSV file's header: which cells each field reads.
#[derive(Debug, Clone)]
pub struct CsvPlan {
    /// Each field, with the cell of each of its sources (`None`: an optional source the
    /// file lacks).
    fields: Vec<(Target, Vec<Option<usize>>)>,
    unmapped: Vec<String>,
}

impl Mapping {
    /// Fits the mapping to a CSV header (its names trimmed): every source must be one of
    /// its columns, each missing one named. A source matches the column of its very name,
    /// else one that differs only in case (exports change the case of their headers: a
    /// Salesforce Data Loader export writes `FIRSTNAME`); a rule reads a column once, however
    /// many of its sources match it. Columns named as fields the mapping does not fill are
    /// read as those fields; the others (not ignored, in any case, and not starting with
    /// `_`) are unmapped, and named.
    pub fn plan_csv(&self, names: &[String]) -> Result<CsvPlan, Vec<String>> {
        let mut missing = Vec::new();
        let mut fields = Vec::with_capacity(self.targets.len());
        let mut used = BTreeSet::new();
        let folded: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        let find = |source: &str| {
            names.iter().position(|n| n == source).or_else(|| {
                let source = source.to_lowercase();
                folded.iter().position(|n| *n == source)
            })
        };
        for target in &self.targets {
            let mut slots = Vec::with_capacity(target.sources.len());
            for source in &target.sources {
                match find(source) {
                    Some(at) if slots.contains(&Some(at)) => slots.push(None),
                    Some(at) => {
                        slots.push(Some(at));
                        used.insert(at);
                    }
                    None if target.optional => slots.push(None),
                    None => missing.push(format!(
                        "column `{source}` (for `{}`) is not in the file's header",
                        target.column.path
                    )),
                }
            }
            fields.push((target.clone(), slots));
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        let ignored: BTreeSet<String> = self.ignore.iter().map(|n| n.to_lowercase()).collect();
        let mut unmapped = Vec::new();
        for (at, name) in names.iter().enumerate() {
            if used.contains(&at) || ignored.contains(&folded[at]) || name.starts_with('_') {
                continue;
            }
            let filled = self.targets.iter().any(|t| t.column.path == name);
            match self.columns.iter().find(|c| c.path == name) {
                Some(column) if !filled => {
                    fields.push((Target::identity(*column, name), vec![Some(at)]));
                }
                _ if unmapped.len() < MAX_UNMAPPED => unmapped.push(name.clone()),
                _ => {}
            }
        }
        Ok(CsvPlan { fields, unmapped })
    }

    /// One NDJSON object as the resource's fields. Keys of the object that no rule reads
    /// pass through when they are fields (or objects of fields) the mapping does not fill;
    /// the others are added to `unmapped` (up to [`MAX_UNMAPPED`]).
    pub fn ndjson_row(
        &self,
        object: &Map<String, Value>,
        unmapped: &mut BTreeSet<String>,
    ) -> Result<Map<String, Value>, Vec<Problem>> {
        let mut out = Map::new();
        let mut problems = Vec::new();
        for target in &self.targets {
            let sources = target.sources.iter().map(|path| lookup(object, path));
            match fill(target, sources) {
                Ok(Some(value)) => tabular::insert(&mut out, target.column.path, value),
                Ok(None) => {}
                Err(message) => problems.push((target.column.path.to_owned(), message)),
            }
        }
        for (key, value) in object {
            if key.starts_with('_') || self.ignore.contains(key) || self.reads(key) {
                continue;
            }
            let field = self.columns.iter().any(|c| {
                c.path == key
                    || c.path
                        .strip_prefix(key.as_str())
                        .is_some_and(|r| r.starts_with('.'))
            });
            let filled = self.targets.iter().any(|t| {
                t.column.path == key || t.column.path.split('.').next() == Some(key.as_str())
            });
            if field && !filled {
                out.insert(key.clone(), value.clone());
            } else if unmapped.len() < MAX_UNMAPPED {
                unmapped.insert(key.clone());
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }

    /// Whether some rule reads the top-level key `key` (itself or inside it).
    fn reads(&self, key: &str) -> bool {
        self.targets.iter().any(|t| {
            t.sources
                .iter()
                .any(|s| s == key || s.split('.').next() == Some(key))
        })
    }
}

/// The value at `path` of an NDJSON object: the key itself (a flat `name.firstName`), else
/// the dotted path into nested objects.
fn lookup<'a>(object: &'a Map<String, Value>, path: &str) -> Source<'a> {
    if let Some(value) = object.get(path) {
        return Source::Json(value);
    }
    let mut parts = path.split('.');
    let Some(first) = parts.next() else {
        return Source::Missing;
    };
    let found = parts.try_fold(object.get(first), |value, key| {
        Some(value.and_then(|v| v.get(key)))
    });
    match found.flatten() {
        Some(value) => Source::Json(value),
        None => Source::Missing,
    }
}

impl CsvPlan {
    /// The columns of the file the import leaves unused.
    pub fn unmapped(&self) -> &[String] {
        &self.unmapped
    }

    /// One CSV row as the resource's fields; every problem as (field, message).
    pub fn row(&self, cells: &[String]) -> Result<Map<String, Value>, Vec<Problem>> {
        let mut out = Map::new();
        let mut problems = Vec::new();
        for (target, slots) in &self.fields {
            let sources = slots
                .iter()
                .map(|at| match at.and_then(|at| cells.get(at)) {
                    Some(cell) => Source::Text(cell),
                    None => Source::Missing,
                });
            match fill(target, sources) {
                Ok(Some(value)) => tabular::insert(&mut out, target.column.path, value),
                Ok(None) => {}
                Err(message) => problems.push((target.column.path.to_owned(), message)),
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// Applies a JSON merge patch (RFC 7396) to `target`.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(object) = target {
        for (key, value) in changes {
            if value.is_null() {
                object.remove(key);
            } else {
                merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// A saved mapping's name: 1 to 100 characters.
pub fn name(text: &str) -> Result<String, String> {
    crate::domain::required_text(text, 100)
}

/// A description: at most 2000 characters; blank is none.
pub fn description(text: Option<&str>) -> Result<Option<String>, String> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) if text.chars().count() > 2000 => {
            Err("must be at most 2000 characters".to_owned())
        }
        Some(text) => Ok(Some(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tabular::{Kind, r, w};
    use serde_json::json;

    const COLUMNS: &[Column] = &[
        r("id", Kind::Text),
        w("name", Kind::Text),
        w("email", Kind::Text),
        w("birth_date", Kind::Text),
        w("address.city", Kind::Text),
        w("lifecycle_stage", Kind::Text),
        w("tags", Kind::List),
        w("consent.email.granted", Kind::Bool),
        w("consent.email.at", Kind::Text),
    ];

    fn spec(value: Value) -> MappingSpec {
        serde_json::from_value(value).unwrap()
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn cells(list: &[&str]) -> Vec<String> {
        names(list)
    }

    #[test]
    fn bad_targets_formats_and_defaults_are_named() {
        let problems = check(
            &spec(json!({"fields": {
                "shoe_size": {"from": "Shoe"},
                "id": {"from": "Record ID"},
                "name": {"from": "Name", "date_format": "%Y"},
                "birth_date": {"from": "Born", "date_format": "yesterday"},
                "tags": {},
                "consent.email.granted": {"from": "Opt-in", "default": "perhaps"},
                "email": {"from": "Mail"}
            }, "ignore": ["Mail"]})),
            COLUMNS,
        )
        .unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "mapping.fields.birth_date.date_format",
                "mapping.fields.consent.email.granted.default",
                "mapping.fields.email.from[0]",
                "mapping.fields.id",
                "mapping.fields.name.date_format",
                "mapping.fields.shoe_size",
                "mapping.fields.tags.from",
            ]
        );
    }

    #[test]
    fn csv_rows_join_map_dates_and_blanks() {
        let mapping = check(
            &spec(json!({"fields": {
                "name": {"from": ["First Name", "Last Name"]},
                "lifecycle_stage": {"from": "Stage", "values": {"Lead": "prospect"}, "default": "stable"},
                "birth_date": {"from": "Born", "date_format": "%m/%d/%Y", "blank": "clear"},
                "consent.email.at": {"from": "Opted", "date_format": "%Y-%m-%d %H:%M"},
                "tags": {"from": "Tags", "blank": "keep"}
            }, "ignore": ["Record ID"]})),
            COLUMNS,
        )
        .unwrap();
        let header = names(&[
            "Record ID",
            "First Name",
            "Last Name",
            "Stage",
            "Born",
            "Opted",
            "Tags",
            "email",
            "Fax",
            "_line",
        ]);
        let plan = mapping.plan_csv(&header).unwrap();
        assert_eq!(plan.unmapped(), ["Fax"]);
        let row = plan
            .row(&cells(&[
                "1",
                "Ada",
                "Lovelace",
                "LEAD",
                "12/10/1815",
                "2024-01-15 10:23",
                "",
                "a@x.io",
                "1",
                "",
            ]))
            .unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"name": "Ada Lovelace", "lifecycle_stage": "prospect",
                   "birth_date": "1815-12-10", "consent": {"email": {"at": "2024-01-15T10:23:00Z"}},
                   "email": "a@x.io"})
        );
        let row = plan
            .row(&cells(&["2", "", "Hopper", "", "", "", "x", "", "", ""]))
            .unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"name": "Hopper", "lifecycle_stage": "stable", "birth_date": null,
                   "tags": ["x"]})
        );
        let problems = plan
            .row(&cells(&[
                "3",
                "A",
                "B",
                "",
                "1815-12-10",
                "",
                "",
                "",
                "",
                "",
            ]))
            .unwrap_err();
        assert_eq!(problems[0].0, "birth_date");
        assert!(problems[0].1.contains("%m/%d/%Y"), "{problems:?}");
        // A source the header lacks is named.
        let missing = mapping
            .plan_csv(&names(&["First Name", "Stage"]))
            .unwrap_err();
        assert!(
            missing.iter().any(|m| m.contains("`Last Name`")),
            "{missing:?}"
        );
    }

    #[test]
    fn csv_headers_match_in_any_case_and_a_rule_reads_a_column_once() {
        let mapping = check(
            &spec(json!({"fields": {
                "name": {"from": ["FirstName", "LastName"], "optional": true},
                "email": {"from": ["Emails / Primary Email", "emails.primaryEmail"],
                          "optional": true},
                "address.city": {"from": ["City", "city"], "optional": true}
            }, "ignore": ["CreatedDate"]})),
            COLUMNS,
        )
        .unwrap();
        // A Data Loader export: the same names in capitals.
        let plan = mapping
            .plan_csv(&names(&[
                "FIRSTNAME",
                "LASTNAME",
                "CITY",
                "CREATEDDATE",
                "FAX",
            ]))
            .unwrap();
        assert_eq!(plan.unmapped(), ["FAX"]);
        let row = plan
            .row(&cells(&["Ada", "Lovelace", "London", "2024-01-15", "1"]))
            .unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"name": "Ada Lovelace", "address": {"city": "London"}}),
            "`City` and `city` both match `CITY`: it is read once, not joined to itself"
        );
        // The exact name wins over one in another case.
        let plan = mapping
            .plan_csv(&names(&["emails.primaryemail", "emails.primaryEmail"]))
            .unwrap();
        assert_eq!(plan.unmapped(), ["emails.primaryemail"]);
        let row = plan.row(&cells(&["wrong@x.io", "ada@x.io"])).unwrap();
        assert_eq!(Value::Object(row), json!({"email": "ada@x.io"}));
    }

    #[test]
    fn ndjson_rows_read_dotted_paths_and_name_unknown_keys() {
        let mapping = check(
            &spec(json!({"fields": {
                "name": {"from": ["name.firstName", "name.lastName"]},
                "email": {"from": "emails.primaryEmail"},
                "address.city": {"from": "address.addressCity"}
            }, "ignore": ["id"]})),
            COLUMNS,
        )
        .unwrap();
        let object = json!({"id": "x", "name": {"firstName": "Ada", "lastName": "Lovelace"},
            "emails": {"primaryEmail": "ada@example.com"}, "address": {"addressCity": "London"},
            "tags": ["vip"], "position": 3})
        .as_object()
        .unwrap()
        .clone();
        let mut unmapped = BTreeSet::new();
        let row = mapping.ndjson_row(&object, &mut unmapped).unwrap();
        assert_eq!(
            Value::Object(row),
            json!({"address": {"city": "London"}, "email": "ada@example.com",
                   "name": "Ada Lovelace", "tags": ["vip"]})
        );
        assert_eq!(unmapped.into_iter().collect::<Vec<_>>(), ["position"]);
    }

    #[test]
    fn merge_patches_merge() {
        let mut value = json!({"fields": {"a": {"from": "A"}, "b": {"from": "B"}}});
        merge_patch(
            &mut value,
            &json!({"fields": {"a": null, "b": {"join": "-"}}}),
        );
        assert_eq!(value, json!({"fields": {"b": {"from": "B", "join": "-"}}}));
    }
}
