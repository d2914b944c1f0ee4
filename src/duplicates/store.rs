//! SQL of duplicate finding, merging and unmerging. Every function takes a connection; the
//! service (`mod.rs`) holds the transaction. The long statements live in `.sql` files.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{
    Array, BigInt, Bool, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Actor;
use crate::customers::json::DuplicateReason;
use crate::customers::store::CustomerRecord;
use crate::db::schema::customers;

/// One likely duplicate pair as `list.sql` reads it.
#[derive(Debug, QueryableByName)]
pub struct PairRow {
    #[diesel(sql_type = BigInt)]
    pub score: i64,
    #[diesel(sql_type = Array<Text>)]
    pub reasons: Vec<String>,
    #[diesel(sql_type = SqlUuid)]
    pub a_id: Uuid,
    #[diesel(sql_type = Text)]
    pub a_kind: String,
    #[diesel(sql_type = Text)]
    pub a_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub a_email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub a_phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub a_external_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub a_created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub a_updated_at: DateTime<Utc>,
    #[diesel(sql_type = SqlUuid)]
    pub b_id: Uuid,
    #[diesel(sql_type = Text)]
    pub b_kind: String,
    #[diesel(sql_type = Text)]
    pub b_name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub b_email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub b_phone: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub b_external_id: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    pub b_created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub b_updated_at: DateTime<Utc>,
}

/// What a page of the list asks for.
pub struct ListRequest {
    pub owner: Option<Uuid>,
    pub reason: Option<DuplicateReason>,
    pub after: Option<(i64, Uuid, Uuid)>,
    pub fetch: i64,
}

/// A page of likely duplicate pairs, best first (`list.sql`, reading the candidates kept on
/// write by the triggers of migration 2026-12-05-000030).
pub async fn list(conn: &mut AsyncPgConnection, request: ListRequest) -> QueryResult<Vec<PairRow>> {
    // The index's order is (100 − score, a, b); the first page starts below every pair.
    let (rank, a, b) = match request.after {
        Some((score, a, b)) => (100 - score.clamp(-1, 101) as i32, a, b),
        None => (-1, Uuid::nil(), Uuid::nil()),
    };
    diesel::sql_query(list_sql(request.reason))
        .bind::<Nullable<SqlUuid>, _>(request.owner)
        .bind::<Nullable<Text>, _>(request.reason.map(DuplicateReason::as_str))
        .bind::<Integer, _>(rank)
        .bind::<SqlUuid, _>(a)
        .bind::<SqlUuid, _>(b)
        .bind::<BigInt, _>(request.fetch)
        .load(conn)
        .await
}

/// The condition on the reason in `list.sql`, as written there.
const ANY_REASON: &str = "($2::text IS NULL OR $2 = ANY (p.reasons))";

/// `list.sql` for a page of one reason, or of all: with a reason, its name is written into
/// the statement (from the enum, never from the request's text), which the planner needs to
/// read the reason's partial index. One text per reason, each prepared once per connection.
fn list_sql(reason: Option<DuplicateReason>) -> &'static str {
    static TEXTS: LazyLock<Vec<(DuplicateReason, String)>> = LazyLock::new(|| {
        DuplicateReason::ALL
            .iter()
            .map(|r| {
                let only = format!("($2::text = '{0}' AND '{0}' = ANY (p.reasons))", r.as_str());
                (*r, include_str!("list.sql").replace(ANY_REASON, &only))
            })
            .collect()
    });
    reason
        .and_then(|r| TEXTS.iter().find(|(t, _)| *t == r))
        .map_or(include_str!("list.sql"), |(_, text)| text.as_str())
}

#[derive(QueryableByName)]
struct At {
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
}

/// Marks a pair as not duplicate (again: nothing changes). When it was first marked.
pub async fn mark_not_duplicate(
    conn: &mut AsyncPgConnection,
    a: Uuid,
    b: Uuid,
    actor: &Actor,
) -> QueryResult<(DateTime<Utc>, bool)> {
    let inserted: Option<At> = diesel::sql_query(
        "INSERT INTO customer_not_duplicates (customer_a, customer_b, actor_type, actor_id) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING marked_at AS at",
    )
    .bind::<SqlUuid, _>(a)
    .bind::<SqlUuid, _>(b)
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id())
    .get_result(conn)
    .await
    .optional()?;
    if let Some(row) = inserted {
        return Ok((row.at, true));
    }
    let row: At = diesel::sql_query(
        "SELECT marked_at AS at FROM customer_not_duplicates \
         WHERE customer_a = $1 AND customer_b = $2",
    )
    .bind::<SqlUuid, _>(a)
    .bind::<SqlUuid, _>(b)
    .get_result(conn)
    .await?;
    Ok((row.at, false))
}

/// Locks these customers for update, in id order (so that two merges queue rather than
/// deadlock).
pub async fn lock_customers(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<CustomerRecord>> {
    customers::table
        .filter(customers::id.eq_any(ids))
        .order(customers::id)
        .select(CustomerRecord::as_select())
        .for_update()
        .load(conn)
        .await
}

/// Reads customers (in id order).
pub async fn customers(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<CustomerRecord>> {
    customers::table
        .filter(customers::id.eq_any(ids))
        .order(customers::id)
        .select(CustomerRecord::as_select())
        .load(conn)
        .await
}

#[derive(QueryableByName)]
struct Ids {
    #[diesel(sql_type = Array<SqlUuid>)]
    ids: Vec<Uuid>,
}

/// Which of these customers are tombstones already.
pub async fn tombstones_among(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<Uuid>> {
    let row: Ids = diesel::sql_query(
        "SELECT coalesce(array_agg(customer_id ORDER BY customer_id), '{}') AS ids \
         FROM customer_tombstones WHERE customer_id = ANY ($1)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .get_result(conn)
    .await?;
    Ok(row.ids)
}

#[derive(QueryableByName)]
struct Json {
    #[diesel(sql_type = Jsonb)]
    value: Value,
}

/// The customers' rows as they are, `{id: row}` (what an unmerge puts back).
pub async fn snapshot(conn: &mut AsyncPgConnection, ids: &[Uuid]) -> QueryResult<Value> {
    let row: Json = diesel::sql_query(
        "SELECT coalesce(jsonb_object_agg(c.id::text, to_jsonb(c) - 'search_words' - 'email_key' - 'address_key'), '{}') \
         AS value FROM customers c WHERE c.id = ANY ($1)",
    )
    .bind::<Array<SqlUuid>, _>(ids)
    .get_result(conn)
    .await?;
    Ok(row.value)
}

/// The survivor's derived satisfaction and attribute answers as they are.
pub async fn derived(conn: &mut AsyncPgConnection, survivor: Uuid) -> QueryResult<Value> {
    let row: Json = diesel::sql_query(
        "SELECT jsonb_build_object( \
           'satisfaction', (SELECT to_jsonb(s) FROM customer_satisfaction s \
                            WHERE s.customer_id = $1), \
           'attribute_answers', coalesce((SELECT jsonb_agg(to_jsonb(a)) \
                            FROM customer_attribute_answers a WHERE a.customer_id = $1), \
                            '[]'::jsonb), \
           'loyalty_account', (SELECT jsonb_build_object('tier_key', l.tier_key, \
                                 'tier_since', l.tier_since, 'below_since', l.below_since) \
                               FROM loyalty_accounts l WHERE l.customer_id = $1)) AS value",
    )
    .bind::<SqlUuid, _>(survivor)
    .get_result(conn)
    .await?;
    Ok(row.value)
}

/// A merge as recorded.
#[derive(Debug, Clone, QueryableByName)]
pub struct MergeRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub survivor_id: Uuid,
    #[diesel(sql_type = Array<SqlUuid>)]
    pub merged_ids: Vec<Uuid>,
    #[diesel(sql_type = Jsonb)]
    pub before: Value,
    #[diesel(sql_type = Jsonb)]
    pub survivor_derived: Value,
    #[diesel(sql_type = Bool)]
    pub opened_account: bool,
    #[diesel(sql_type = BigInt)]
    pub survivor_version: i64,
    #[diesel(sql_type = Jsonb)]
    pub report: Value,
    #[diesel(sql_type = Timestamptz)]
    pub merged_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub unmerged_at: Option<DateTime<Utc>>,
}

/// Records a merge's start (its moves reference it); [`finish_merge`] completes it. The
/// merge's time (the transaction's).
pub async fn insert_merge(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    survivor: Uuid,
    merged: &[Uuid],
    before: &Value,
    derived: &Value,
    actor: &Actor,
) -> QueryResult<DateTime<Utc>> {
    let row: At = diesel::sql_query(
        "INSERT INTO customer_merges (id, survivor_id, merged_ids, before, survivor_derived, \
           opened_account, survivor_version, report, merged_at, actor_type, actor_id) \
         VALUES ($1, $2, $3, $4, $5, false, 0, '{}', now(), $6, $7) RETURNING merged_at AS at",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<SqlUuid, _>(survivor)
    .bind::<Array<SqlUuid>, _>(merged)
    .bind::<Jsonb, _>(before)
    .bind::<Jsonb, _>(derived)
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id())
    .get_result(conn)
    .await?;
    Ok(row.at)
}

/// Completes a merge's record: the survivor's version it left, whether it opened the
/// survivor's loyalty account, and its report.
pub async fn finish_merge(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    survivor_version: i64,
    opened_account: bool,
    report: &Value,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE customer_merges SET survivor_version = $2, opened_account = $3, report = $4 \
         WHERE id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<BigInt, _>(survivor_version)
    .bind::<Bool, _>(opened_account)
    .bind::<Jsonb, _>(report)
    .execute(conn)
    .await?;
    Ok(())
}

/// The rows that hang off a customer by one column and move whole: (kind, table, column).
pub const SIMPLE_MOVES: &[(&str, &str, &str)] = &[
    ("interaction", "interactions", "customer_id"),
    ("interaction_contact", "interactions", "contact_id"),
    ("purchase", "purchases", "customer_id"),
    ("opportunity", "opportunities", "customer_id"),
    ("loyalty_lot", "loyalty_lots", "customer_id"),
    ("loyalty_ledger", "loyalty_ledger", "customer_id"),
    ("loyalty_tier_change", "loyalty_tier_changes", "customer_id"),
];

/// Moves every row of `table` whose `column` names one of `from` to `to`, recording each
/// under `kind`. How many moved. The rows keep their `updated_at` and `version`: a later
/// write shows as a newer `updated_at`, which an unmerge checks.
pub async fn move_rows(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    (kind, table, column): (&str, &str, &str),
    to: Uuid,
    from: &[Uuid],
) -> QueryResult<i64> {
    let sql = format!(
        "WITH o AS (SELECT id, {column} AS from_id FROM {table} WHERE {column} = ANY ($3) \
                    FOR UPDATE), \
              moved AS (UPDATE {table} t SET {column} = $2 FROM o WHERE t.id = o.id \
                        RETURNING t.id, o.from_id) \
         INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id) \
         SELECT $1, '{kind}', id, from_id FROM moved"
    );
    let n = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(merge)
        .bind::<SqlUuid, _>(to)
        .bind::<Array<SqlUuid>, _>(from)
        .execute(conn)
        .await?;
    Ok(n as i64)
}

/// Moves back what [`move_rows`] moved under `kind`.
pub async fn move_rows_back(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    (kind, table, column): (&str, &str, &str),
) -> QueryResult<i64> {
    let sql = format!(
        "UPDATE {table} t SET {column} = m.from_id FROM customer_merge_moves m \
         WHERE m.merge_id = $1 AND m.kind = '{kind}' AND t.id = m.row_id"
    );
    let n = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(merge)
        .execute(conn)
        .await?;
    Ok(n as i64)
}

/// Records the tier moves a merge's re-evaluation wrote for the survivor (kind
/// `loyalty_tier_raised`), so that an unmerge removes them.
pub async fn record_tier_raises(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    changes: &[Uuid],
) -> QueryResult<()> {
    diesel::sql_query(
        "INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id) \
         SELECT $1, 'loyalty_tier_raised', id, $2 FROM unnest($3::uuid[]) AS id",
    )
    .bind::<SqlUuid, _>(merge)
    .bind::<SqlUuid, _>(survivor)
    .bind::<Array<SqlUuid>, _>(changes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Undoes a merge's tier moves: deletes the moves it wrote and puts the survivor's tier back
/// as it was before the merge (`derived.loyalty_account`, when it had an account).
pub async fn undo_tier_raises(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    derived: &Value,
) -> QueryResult<()> {
    diesel::sql_query(
        "DELETE FROM loyalty_tier_changes t USING customer_merge_moves m \
         WHERE m.merge_id = $1 AND m.kind = 'loyalty_tier_raised' AND t.id = m.row_id",
    )
    .bind::<SqlUuid, _>(merge)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE loyalty_accounts l \
         SET tier_key = a.tier_key, tier_since = a.tier_since, below_since = a.below_since \
         FROM jsonb_to_record($2 -> 'loyalty_account') \
              AS a (tier_key text, tier_since timestamptz, below_since timestamptz) \
         WHERE l.customer_id = $1 AND jsonb_typeof($2 -> 'loyalty_account') = 'object'",
    )
    .bind::<SqlUuid, _>(survivor)
    .bind::<Jsonb, _>(derived)
    .execute(conn)
    .await?;
    Ok(())
}

/// Opens the survivor's loyalty account when it has none and a merged customer has one
/// (with the tier of the merged member holding the most points). Whether it opened one.
pub async fn open_account(
    conn: &mut AsyncPgConnection,
    survivor: Uuid,
    from: &[Uuid],
) -> QueryResult<bool> {
    let n = diesel::sql_query(
        "INSERT INTO loyalty_accounts (customer_id, balance, tier_key, tier_since) \
         SELECT $1, 0, tier_key, tier_since FROM loyalty_accounts \
         WHERE customer_id = ANY ($2) ORDER BY balance DESC, customer_id LIMIT 1 \
         ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind::<SqlUuid, _>(survivor)
    .bind::<Array<SqlUuid>, _>(from)
    .execute(conn)
    .await?;
    Ok(n > 0)
}

#[derive(QueryableByName)]
struct Sum {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Adds the merged members' balances to the survivor's and empties theirs, recording each.
/// The points moved.
pub async fn move_balances(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    from: &[Uuid],
) -> QueryResult<i64> {
    let row: Sum = diesel::sql_query(include_str!("move_balances.sql"))
        .bind::<SqlUuid, _>(merge)
        .bind::<SqlUuid, _>(survivor)
        .bind::<Array<SqlUuid>, _>(from)
        .get_result(conn)
        .await?;
    Ok(row.n)
}

/// Gives the merged members back the balances a merge moved. The points moved back.
pub async fn move_balances_back(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
) -> QueryResult<i64> {
    let row: Sum = diesel::sql_query(
        "WITH m AS (SELECT from_id, points FROM customer_merge_moves \
                    WHERE merge_id = $1 AND kind = 'loyalty_balance'), \
              back AS (UPDATE loyalty_accounts a SET balance = a.balance + m.points, \
                              updated_at = now() \
                       FROM m WHERE a.customer_id = m.from_id RETURNING m.points), \
              total AS (SELECT coalesce(sum(points), 0)::bigint AS n FROM back), \
              s AS (UPDATE loyalty_accounts SET balance = balance - (SELECT n FROM total), \
                           updated_at = now() WHERE customer_id = $2 RETURNING 1) \
         SELECT n FROM total",
    )
    .bind::<SqlUuid, _>(merge)
    .bind::<SqlUuid, _>(survivor)
    .get_result(conn)
    .await?;
    Ok(row.n)
}

/// Closes the loyalty account a merge opened (it holds nothing any more).
pub async fn close_account(conn: &mut AsyncPgConnection, survivor: Uuid) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM loyalty_accounts WHERE customer_id = $1")
        .bind::<SqlUuid, _>(survivor)
        .execute(conn)
        .await?;
    Ok(())
}

/// Moves the merged customers' survey responses, except where the one-response-per-customer
/// rule would break: the survivor keeps its own, and among the merged customers the latest
/// response moves. How many moved.
pub async fn move_responses(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    from: &[Uuid],
) -> QueryResult<i64> {
    let n = diesel::sql_query(include_str!("move_responses.sql"))
        .bind::<SqlUuid, _>(merge)
        .bind::<SqlUuid, _>(survivor)
        .bind::<Array<SqlUuid>, _>(from)
        .execute(conn)
        .await?;
    Ok(n as i64)
}

/// Moves the merged customers' contact links (as organization and as person), except a
/// link the survivor has already; a moved link stays primary only when the survivor had no
/// primary contact. How many moved.
pub async fn move_contacts(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    from: &[Uuid],
) -> QueryResult<i64> {
    let mut n = 0;
    for sql in [
        include_str!("move_organization_contacts.sql"),
        include_str!("move_person_contacts.sql"),
    ] {
        n += diesel::sql_query(sql)
            .bind::<SqlUuid, _>(merge)
            .bind::<SqlUuid, _>(survivor)
            .bind::<Array<SqlUuid>, _>(from)
            .execute(conn)
            .await?;
    }
    Ok(n as i64)
}

/// Moves back the contact links a merge moved, primary again where they were.
pub async fn move_contacts_back(conn: &mut AsyncPgConnection, merge: Uuid) -> QueryResult<i64> {
    let mut n = 0;
    for (kind, column) in [
        ("contact_organization", "organization_id"),
        ("contact_person", "person_id"),
    ] {
        n += diesel::sql_query(format!(
            "UPDATE contacts t SET {column} = m.from_id, \
                    is_primary = t.is_primary OR m.points IS NOT NULL \
             FROM customer_merge_moves m \
             WHERE m.merge_id = $1 AND m.kind = '{kind}' AND t.id = m.row_id"
        ))
        .bind::<SqlUuid, _>(merge)
        .execute(conn)
        .await?;
    }
    Ok(n as i64)
}

/// Names the survivor instead of each merged person in opportunities' contacts (once: a
/// merged person in an opportunity that names the survivor already is dropped). How many
/// opportunities changed.
pub async fn rename_opportunity_contacts(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    from: &[Uuid],
) -> QueryResult<i64> {
    let mut n = 0;
    for other in from {
        n += diesel::sql_query(
            "WITH o AS (SELECT id, $2 = ANY (contact_ids) AS had FROM opportunities \
                        WHERE contact_ids <> '{}' AND contact_ids @> ARRAY[$3] FOR UPDATE), \
                  moved AS (UPDATE opportunities t SET contact_ids = CASE WHEN o.had \
                                THEN array_remove(t.contact_ids, $3) \
                                ELSE array_replace(t.contact_ids, $3, $2) END \
                            FROM o WHERE t.id = o.id RETURNING t.id, o.had) \
             INSERT INTO customer_merge_moves (merge_id, kind, row_id, from_id) \
             SELECT $1, CASE WHEN had THEN 'opportunity_contact_removed' \
                             ELSE 'opportunity_contact' END, id, $3 FROM moved",
        )
        .bind::<SqlUuid, _>(merge)
        .bind::<SqlUuid, _>(survivor)
        .bind::<SqlUuid, _>(*other)
        .execute(conn)
        .await?;
    }
    Ok(n as i64)
}

/// Puts the merged people back into the opportunities' contacts.
pub async fn rename_opportunity_contacts_back(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
) -> QueryResult<i64> {
    let n = diesel::sql_query(
        "UPDATE opportunities t SET contact_ids = CASE m.kind \
             WHEN 'opportunity_contact' THEN array_replace(t.contact_ids, $2, m.from_id) \
             ELSE array_append(t.contact_ids, m.from_id) END \
         FROM customer_merge_moves m \
         WHERE m.merge_id = $1 AND m.kind IN ('opportunity_contact', \
               'opportunity_contact_removed') AND t.id = m.row_id",
    )
    .bind::<SqlUuid, _>(merge)
    .bind::<SqlUuid, _>(survivor)
    .execute(conn)
    .await?;
    Ok(n as i64)
}

/// Brings the survivor's derived answers up to date with the responses it now holds: per
/// question the latest attribute answer, and the latest NPS and CSAT.
pub async fn rederive_answers(
    conn: &mut AsyncPgConnection,
    survivor: Uuid,
    from: &[Uuid],
) -> QueryResult<()> {
    diesel::sql_query(include_str!("rederive_answers.sql"))
        .bind::<SqlUuid, _>(survivor)
        .bind::<Array<SqlUuid>, _>(from)
        .execute(conn)
        .await?;
    diesel::sql_query(include_str!("rederive_satisfaction.sql"))
        .bind::<SqlUuid, _>(survivor)
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts back the survivor's derived answers as a merge found them.
pub async fn restore_derived(
    conn: &mut AsyncPgConnection,
    survivor: Uuid,
    derived: &Value,
) -> QueryResult<()> {
    for sql in [
        "DELETE FROM customer_attribute_answers WHERE customer_id = $1",
        "DELETE FROM customer_satisfaction WHERE customer_id = $1",
    ] {
        diesel::sql_query(sql)
            .bind::<SqlUuid, _>(survivor)
            .execute(conn)
            .await?;
    }
    for sql in [
        "INSERT INTO customer_attribute_answers SELECT * FROM jsonb_populate_recordset( \
             NULL::customer_attribute_answers, $1 -> 'attribute_answers')",
        "INSERT INTO customer_satisfaction SELECT * FROM jsonb_populate_record( \
             NULL::customer_satisfaction, $1 -> 'satisfaction') \
         WHERE jsonb_typeof($1 -> 'satisfaction') = 'object'",
    ] {
        diesel::sql_query(sql)
            .bind::<Jsonb, _>(derived)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// Turns the merged customers into tombstones: deleted, pointing to the survivor. The
/// survivor's email and external id, when it takes them from one, are cleared there first
/// (they are unique).
pub async fn bury(
    conn: &mut AsyncPgConnection,
    merge: Uuid,
    survivor: Uuid,
    from: &[Uuid],
    at: DateTime<Utc>,
    taken_email: Option<&str>,
    taken_external_id: Option<&str>,
) -> QueryResult<()> {
    diesel::sql_query(
        "UPDATE customers SET deleted_at = $2, version = version + 1, updated_at = now(), \
             email = CASE WHEN $3::text IS NOT NULL AND lower(email) = lower($3) \
                          THEN NULL ELSE email END, \
             external_id = CASE WHEN external_id = $4 THEN NULL ELSE external_id END \
         WHERE id = ANY ($1)",
    )
    .bind::<Array<SqlUuid>, _>(from)
    .bind::<Timestamptz, _>(at)
    .bind::<Nullable<Text>, _>(taken_email)
    .bind::<Nullable<Text>, _>(taken_external_id)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "INSERT INTO customer_tombstones (customer_id, survivor_id, merge_id) \
         SELECT unnest($3::uuid[]), $2, $1",
    )
    .bind::<SqlUuid, _>(merge)
    .bind::<SqlUuid, _>(survivor)
    .bind::<Array<SqlUuid>, _>(from)
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts the survivor and then the merged customers back as the merge found them (each a
/// new version), and removes the tombstones.
pub async fn restore_customers(conn: &mut AsyncPgConnection, merge: &MergeRow) -> QueryResult<()> {
    diesel::sql_query("DELETE FROM customer_tombstones WHERE merge_id = $1")
        .bind::<SqlUuid, _>(merge.id)
        .execute(conn)
        .await?;
    // The survivor first: it gives back the email and external id it took.
    for ids in [vec![merge.survivor_id], merge.merged_ids.clone()] {
        diesel::sql_query(include_str!("restore_customers.sql"))
            .bind::<Array<SqlUuid>, _>(ids)
            .bind::<Jsonb, _>(&merge.before)
            .execute(conn)
            .await?;
    }
    Ok(())
}

/// How many lifecycle history entries the merged customers keep.
pub async fn lifecycle_changes(conn: &mut AsyncPgConnection, from: &[Uuid]) -> QueryResult<i64> {
    let row: Sum = diesel::sql_query(
        "SELECT count(*) AS n FROM customer_lifecycle_events WHERE customer_id = ANY ($1)",
    )
    .bind::<Array<SqlUuid>, _>(from)
    .get_result(conn)
    .await?;
    Ok(row.n)
}

/// The ids of the rows of `table` (survey responses, contacts) still held by these
/// customers, by `column`.
pub async fn still_held(
    conn: &mut AsyncPgConnection,
    table: &str,
    columns: &[&str],
    from: &[Uuid],
) -> QueryResult<Vec<Uuid>> {
    let held = columns
        .iter()
        .map(|c| format!("{c} = ANY ($1)"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let row: Ids = diesel::sql_query(format!(
        "SELECT coalesce(array_agg(id ORDER BY id), '{{}}') AS ids FROM {table} WHERE {held}"
    ))
    .bind::<Array<SqlUuid>, _>(from)
    .get_result(conn)
    .await?;
    Ok(row.ids)
}

/// The merge of this survivor to undo (`id`, or its latest), locked.
pub async fn lock_merge(
    conn: &mut AsyncPgConnection,
    survivor: Uuid,
    id: Option<Uuid>,
) -> QueryResult<Option<MergeRow>> {
    diesel::sql_query(
        "SELECT id, survivor_id, merged_ids, before, survivor_derived, opened_account, \
                survivor_version, report, merged_at, unmerged_at \
         FROM customer_merges WHERE survivor_id = $1 AND ($2::uuid IS NULL OR id = $2) \
         ORDER BY merged_at DESC, id DESC LIMIT 1 FOR UPDATE",
    )
    .bind::<SqlUuid, _>(survivor)
    .bind::<Nullable<SqlUuid>, _>(id)
    .get_result(conn)
    .await
    .optional()
}

/// What was written since the merge that an unmerge would undo or lose: (what, how many).
#[derive(Debug, QueryableByName)]
pub struct Since {
    #[diesel(sql_type = Text)]
    pub what: String,
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}

/// Everything written since the merge to the rows it moved, and to the survivor's points and
/// survey responses (which the merge summed and derived from); only non-zero counts.
pub async fn written_since(
    conn: &mut AsyncPgConnection,
    merge: &MergeRow,
) -> QueryResult<Vec<Since>> {
    diesel::sql_query(include_str!("written_since.sql"))
        .bind::<SqlUuid, _>(merge.id)
        .bind::<SqlUuid, _>(merge.survivor_id)
        .bind::<Timestamptz, _>(merge.merged_at)
        .load(conn)
        .await
}

/// Marks a merge undone.
pub async fn close_merge(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<()> {
    diesel::sql_query("UPDATE customer_merges SET unmerged_at = now() WHERE id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_list_statement() {
        assert!(include_str!("list.sql").contains(ANY_REASON));
        let all = list_sql(None);
        for r in DuplicateReason::ALL {
            let text = list_sql(Some(*r));
            assert!(!text.contains(ANY_REASON), "{r:?}");
            assert!(
                text.contains(&format!("'{0}' = ANY (p.reasons)", r.as_str())),
                "{r:?}"
            );
            assert_ne!(text, all);
        }
    }
}
