//! History tables partitioned by month (issue 24): `events`, `audit_events`, the webhook
//! deliveries and the points ledger.
//!
//! Their ids are UUIDv7, whose first 48 bits are the Unix time in milliseconds, so a UTC
//! month's rows are one range of ids: each table is partitioned by RANGE (id), named
//! `<table>_YYYY_MM`, and keeps `id` as its whole primary key. The rows from before the
//! partitioning are one partition, `<table>_before`. The SQL functions are in migration
//! `2026-12-05-000052_partition_events`. A webhook delivery's id carries its event's
//! millisecond rather than its own (migration `2026-12-06-000010`), and an attempt's its
//! delivery's, so a month of deliveries and their attempts is the deliveries of a month of
//! events, and goes with it (`events::prune`).

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Integer, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// The tables partitioned by month.
pub const MONTHLY: &[&str] = &[
    "events",
    "audit_events",
    "webhook_deliveries",
    "webhook_attempts",
    "loyalty_ledger",
];

/// How many months ahead of the current one each table has its partitions made.
pub const MONTHS_AHEAD: i32 = 3;

/// Makes the partitions of every [`MONTHLY`] table from the month of `at` to
/// [`MONTHS_AHEAD`] months after it, those missing; returns how many it made. The service
/// calls it at startup and every hour, so a month's partition exists long before its first
/// row. Months that exist or are covered are skipped without any lock; a month that is due
/// waits at most 500 ms for its table's lock (behind a long transaction), then is left for
/// the next call, so the table's readers and writers never queue behind it (migration
/// `2026-12-06-000051`).
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

/// A new UUIDv7 in the same millisecond as `of`: the id of a row kept in the month of
/// another (a webhook delivery's in its event's, an attempt's in its delivery's), so that
/// the two are in partitions of the same month and go together. The SQL twin is
/// `uuid_v7_beside` (migration `2026-12-06-000010`).
pub fn beside(of: Uuid) -> Uuid {
    let mut bytes = *Uuid::now_v7().as_bytes();
    bytes[..6].copy_from_slice(&of.as_bytes()[..6]);
    Uuid::from_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_beside_another_is_a_uuid_v7_in_its_millisecond() {
        let of = Uuid::parse_str("01900000-1234-7abc-8def-0123456789ab").unwrap();
        let first = beside(of);
        let second = beside(of);
        assert_eq!(first.as_bytes()[..6], of.as_bytes()[..6]);
        assert_eq!(first.get_version_num(), 7);
        assert_eq!(first.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(first, second, "each is an id of its own");
        assert_ne!(first, of);
    }
}
