//! Planner statistics after bulk writes. Autovacuum may be off, or come late: a table whose
//! statistics still describe it as it was before a bulk load gets plans for that table (after
//! an import of 200 000 customers into an empty database, a filtered list was estimated at one
//! row and sorted forty thousand).

use diesel::QueryableByName;
use diesel::sql_types::{Double, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct Tuples {
    #[diesel(sql_type = Double)]
    tuples: f64,
}

/// Whether `changed` rows outgrow what the planner knows of a table of `tuples` rows: the
/// threshold autovacuum analyzes at by default (50 rows and a tenth of the table).
pub fn outgrown(tuples: f64, changed: i64) -> bool {
    changed as f64 > 50.0 + 0.1 * tuples.max(0.0)
}

/// Analyzes `tables` (the first one the main table of the write, the others written with
/// it) when the `changed` rows of the first outgrow its statistics; whether it did.
pub async fn analyze_outgrown(
    conn: &mut AsyncPgConnection,
    tables: &[&'static str],
    changed: i64,
) -> diesel::QueryResult<bool> {
    let Some(main) = tables.first() else {
        return Ok(false);
    };
    // reltuples as of the last VACUUM or ANALYZE (-1: never): what the planner goes by.
    let known: Tuples = diesel::sql_query(
        "SELECT reltuples::float8 AS tuples FROM pg_class WHERE oid = $1::regclass",
    )
    .bind::<Text, _>(*main)
    .get_result(conn)
    .await?;
    if !outgrown(known.tuples, changed) {
        return Ok(false);
    }
    let names: Vec<String> = tables.iter().map(|t| super::quote_ident(t)).collect();
    diesel::sql_query(format!("ANALYZE {}", names.join(", ")))
        .execute(conn)
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::outgrown;

    #[test]
    fn a_tenth_of_the_table_and_fifty_rows_outgrow_its_statistics() {
        assert!(outgrown(-1.0, 51), "a table never analyzed");
        assert!(!outgrown(-1.0, 50));
        assert!(outgrown(200_000.0, 20_051));
        assert!(!outgrown(200_000.0, 20_050));
    }
}
