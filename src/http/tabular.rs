//! The one flat (CSV) shape of every resource, shared by exports and imports, so that an
//! exported file imports again as it is.
//!
//! A resource lists its [`Column`]s: the JSON field's path (nested objects joined by dots,
//! `address.city`), how its cell reads and writes ([`Kind`]), and whether an import may set
//! it. A cell holds text as it is; `true`/`false`; a whole number; a list of strings joined by
//! `;`; or JSON text (free objects such as `attributes`, line items). An empty cell is
//! `null` on export; on import see [`row_object`]. Read-only columns (ids, times, derived figures) are written by exports and skipped
//! by imports; any other column an import does not know is refused by name.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Bool,
    Int,
    Float,
    /// Strings joined by `;`.
    List,
    /// JSON text.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub path: &'static str,
    pub kind: Kind,
    /// Whether an import sets it (read-only columns are exported and skipped on import).
    pub writable: bool,
}

/// A column an import sets.
pub const fn w(path: &'static str, kind: Kind) -> Column {
    Column {
        path,
        kind,
        writable: true,
    }
}

/// A read-only column.
pub const fn r(path: &'static str, kind: Kind) -> Column {
    Column {
        path,
        kind,
        writable: false,
    }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// The cells of one object, in column order.
pub fn cells(columns: &[Column], value: &Value) -> Vec<String> {
    columns
        .iter()
        .map(|c| match lookup(value, c.path) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Array(items)) if c.kind == Kind::List => items
                .iter()
                .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(";"),
            Some(other) => other.to_string(),
        })
        .collect()
}

/// The header row.
pub fn header(columns: &[Column]) -> Vec<&'static str> {
    columns.iter().map(|c| c.path).collect()
}

/// Most columns a file's header may have, ignored ones included: no resource has 64 fields,
/// and a header of a hundred thousand columns was answered, and kept, column by column
/// (4.7 MB).
pub const MAX_COLUMNS: usize = 256;
/// Most problems of a header named in one answer; the others are counted.
const MAX_NAMED: usize = 20;

/// Refuses a header of more than [`MAX_COLUMNS`] columns, in one message.
pub fn check_width(columns: usize) -> Result<(), String> {
    if columns > MAX_COLUMNS {
        return Err(format!(
            "the header has {columns} columns; at most {MAX_COLUMNS} are read"
        ));
    }
    Ok(())
}

/// How an import reads a file's header: for each column of the file, the resource's column
/// it fills (`None`: read-only, skipped). Unknown and repeated names are errors, each
/// naming the column (the first [`MAX_NAMED`], then how many more).
pub fn map_header(
    columns: &[Column],
    names: &[String],
) -> Result<Vec<Option<Column>>, Vec<String>> {
    check_width(names.len()).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mapped = names
        .iter()
        .map(|name| {
            let name = name.trim();
            if !seen.insert(name.to_owned()) {
                errors.push(format!("column `{name}` appears twice"));
                return None;
            }
            match columns.iter().find(|c| c.path == name) {
                Some(c) if c.writable => Some(*c),
                Some(_) => None,
                None => {
                    errors.push(format!("column `{name}` is not a field of this resource"));
                    None
                }
            }
        })
        .collect();
    if errors.is_empty() {
        return Ok(mapped);
    }
    if errors.len() > MAX_NAMED {
        let more = errors.len() - MAX_NAMED;
        errors.truncate(MAX_NAMED);
        errors.push(format!("and {more} more"));
    }
    Err(errors)
}

/// One cell as JSON, by its column's kind; an error message names what was expected.
pub fn parse_cell(kind: Kind, cell: &str) -> Result<Value, String> {
    if cell.is_empty() {
        return Ok(Value::Null);
    }
    match kind {
        Kind::Text => Ok(Value::String(cell.to_owned())),
        Kind::Bool => match cell.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err("must be true or false".to_owned()),
        },
        Kind::Int => cell
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be a whole number".to_owned()),
        Kind::Float => cell
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| "must be a number".to_owned()),
        Kind::List => Ok(Value::Array(
            cell.split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        )),
        Kind::Json => serde_json::from_str(cell).map_err(|_| "must be JSON".to_owned()),
    }
}

/// Sets `value` at a dotted path of `object`, making the objects on the way.
pub fn insert(object: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            object.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let inner = object
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                insert(inner, rest, value);
            }
        }
    }
}

/// One row of an import as the JSON object the single-object endpoint takes. An empty
/// top-level cell is `null` (it clears the field on update); empty cells of nested fields
/// and of list and JSON columns leave the field out (a CSV cannot tell "no address" from "no
/// city", nor "no tags" from "leave the tags"). Errors: (column, message).
pub fn row_object(
    mapped: &[Option<Column>],
    row: &[String],
) -> Result<Map<String, Value>, Vec<(String, String)>> {
    let mut object = Map::new();
    let mut errors = Vec::new();
    for (column, cell) in mapped.iter().zip(row) {
        let Some(column) = column else { continue };
        match parse_cell(column.kind, cell) {
            Ok(Value::Null)
                if column.path.contains('.') || matches!(column.kind, Kind::List | Kind::Json) => {}
            Ok(value) => insert(&mut object, column.path, value),
            Err(message) => errors.push((column.path.to_owned(), message)),
        }
    }
    if errors.is_empty() {
        Ok(object)
    } else {
        Err(errors)
    }
}

/// Appends one CSV record (RFC 4180) and its CRLF.
pub fn write_record<T: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = T>) {
    write_fields(out, fields);
    out.push_str("\r\n");
}

/// Appends the fields of one CSV record, separated by commas, without a line end.
pub fn write_fields<T: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = T>) {
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_field(out, field.as_ref());
    }
}

/// One CSV field, quoted when it holds a separator, a quote or a line break, or starts or
/// ends with a space (which some readers trim), its quotes doubled. The value is never
/// changed otherwise, so the file imports back as it was.
pub fn write_field(out: &mut String, field: &str) {
    let quote = field.contains([',', '"', '\r', '\n'])
        || field.starts_with([' ', '\t'])
        || field.ends_with([' ', '\t']);
    if quote {
        out.push('"');
        out.push_str(&field.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const COLUMNS: &[Column] = &[
        r("id", Kind::Text),
        w("name", Kind::Text),
        w("address.city", Kind::Text),
        w("consent.email.granted", Kind::Bool),
        w("tags", Kind::List),
        w("attributes", Kind::Json),
        w("amount", Kind::Int),
    ];

    #[test]
    fn objects_flatten_and_read_back() {
        let value = json!({"id": "x", "name": "Ada", "address": {"city": "Berlin"},
                           "consent": {"email": {"granted": true}}, "tags": ["a", "b"],
                           "attributes": {"k": 1}, "amount": 5});
        let row = cells(COLUMNS, &value);
        assert_eq!(row, ["x", "Ada", "Berlin", "true", "a;b", "{\"k\":1}", "5"]);
        let names: Vec<String> = header(COLUMNS).iter().map(ToString::to_string).collect();
        let mapped = map_header(COLUMNS, &names).unwrap();
        let back = row_object(&mapped, &row).unwrap();
        let mut expected = value.as_object().unwrap().clone();
        expected.remove("id");
        assert_eq!(back, expected);
    }

    #[test]
    fn unknown_columns_and_bad_cells_are_named() {
        let names = vec!["name".to_owned(), "colour".to_owned(), "name".to_owned()];
        let errors = map_header(COLUMNS, &names).unwrap_err();
        assert!(errors[0].contains("`colour`") && errors[1].contains("twice"));
        let mapped = vec![Some(COLUMNS[6]), Some(COLUMNS[3])];
        let errors = row_object(&mapped, &["x".into(), "maybe".into()]).unwrap_err();
        assert_eq!(errors[0].0, "amount");
        assert_eq!(errors[1].0, "consent.email.granted");
        // Empty nested cells are left out; empty top-level cells are null.
        let mapped = vec![Some(COLUMNS[1]), Some(COLUMNS[2])];
        let object = row_object(&mapped, &[String::new(), String::new()]).unwrap();
        assert_eq!(Value::Object(object), json!({"name": null}));
    }
}
