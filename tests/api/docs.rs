//! The documentation says what the code does: every setting, error code and permission.

use rapport::auth::{Role, Scope};
use rapport::config::VARIABLES;
use rapport::http::ErrorCode;

fn read(file: &str) -> String {
    std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn every_setting_is_documented_with_its_default() {
    let readme = read("README.md");
    let example = read(".env.example");
    for var in VARIABLES {
        let default = if var.default.starts_with('(') {
            var.default.to_owned()
        } else {
            format!("`{}`", var.default)
        };
        let row = format!("| `{}` | {} | {} |", var.name, default, var.meaning);
        assert!(readme.contains(&row), "README lacks the row: {row}");
        assert!(
            example.contains(&format!("# {}=", var.name)),
            ".env.example lacks {}",
            var.name
        );
    }
}

#[test]
fn every_error_code_is_documented() {
    let readme = read("README.md");
    for code in ErrorCode::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
        assert!(
            readme.contains(&row),
            "README lacks the error code row starting {row}"
        );
    }
}

#[test]
fn every_permission_is_in_the_roles_table() {
    let readme = read("README.md");
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
            readme.contains(&row),
            "README lacks the permission row: {row}"
        );
    }
}
