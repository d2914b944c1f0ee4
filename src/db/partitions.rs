//! History tables partitioned by month (issue 24): `events`, `audit_events`, the webhook
//! deliveries and the points ledger.
//!
//! Their ids are UUIDv7, whose first 48 bits are the Unix time in milliseconds, so a UTC
//! month's rows are one range of ids: each table is partitioned by RANGE (id), named
//! `<table>_YYYY_MM`, and keeps `id` as its whole primary key. The rows from before the
//! partitioning are one partition, `<table>_before`. The SQL functions are in migration
//! `2026-12-05-000052_partition_events`. A webhook delivery's id carries its event's
//! millisecond rather than its own (migration `2026-12-06-000010`), so a month of deliveries
//! is the deliveries of a month of events, and goes with it (`events::prune`).

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

/// The tables partitioned by month.
pub const MONTHLY: &[&str] = &[
    "events",
    "audit_events",
    "webhook_deliveries",
    "loyalty_ledger",
];

/// How many months ahead of the current one each table has its partitions made.
pub const MONTHS_AHEAD: i32 = 3;

/// Makes the partitions of every [`MONTHLY`] table from the month of `at` to
/// [`MONTHS_AHEAD`] months after it, those missing; returns how many it made. The service
/// calls it at startup and every hour, so a month's partition exists long before its first
/// row.
pub async fn make_ahead(conn: &mut AsyncPgConnection, at: DateTime<Utc>) -> QueryResult<i32> {
    #[derive(QueryableByName)]
    struct Made {
        #[diesel(sql_type = Integer)]
        made: i32,
    }
    let mut made = 0;
    for table in MONTHLY {
        let row: Made = diesel::sql_query("SELECT rapport_make_partitions($1, $2, $3) AS made")
            .bind::<Text, _>(*table)
            .bind::<Integer, _>(MONTHS_AHEAD)
            .bind::<Timestamptz, _>(at)
            .get_result(conn)
            .await?;
        made += row.made;
    }
    Ok(made)
}
