//! Customers changed set-wise: one statement moves many customers' stages, with their
//! lifecycle entries, audit entries and events.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{Jsonb, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::json::LifecycleStage;
use super::store::CustomerRecord;
use crate::auth::Actor;
use crate::db::Prepare;
use crate::db::schema::customers;
use crate::journal;

/// The id of a customer a set-wise statement wrote.
#[derive(QueryableByName)]
pub struct Written {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
}

/// The customers a batch wrote, as written, in id order: one query (for their events).
pub async fn written_records(
    conn: &mut AsyncPgConnection,
    ids: &HashSet<Uuid>,
) -> QueryResult<Vec<CustomerRecord>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = ids.iter().copied().collect();
    customers::table
        .filter(customers::id.eq_any(&ids))
        .order(customers::id)
        .select(CustomerRecord::as_select())
        .load(conn)
        .await
}

/// Moves live customers from one of the stages `from` into `to`, each with its reason, in
/// the caller's transaction and set-wise: one statement updates them (a customer no longer
/// in one of `from` stays), records their stage changes and audit entries; then their events.
/// Returns the customers moved.
pub async fn move_stage(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    moves: &[(Uuid, String)],
    from: &[LifecycleStage],
    to: LifecycleStage,
) -> QueryResult<usize> {
    if moves.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = moves.iter().map(|(id, _)| *id).collect();
    let before: Vec<CustomerRecord> = customers::table
        .filter(customers::id.eq_any(&ids))
        .filter(customers::deleted_at.is_null())
        .filter(customers::lifecycle_stage.eq_any(from.to_vec()))
        .order(customers::id)
        .select(CustomerRecord::as_select())
        .for_update()
        .load(conn)
        .await?;
    let input = Value::Array(
        moves
            .iter()
            .map(|(id, reason)| json!({ "id": id, "reason": reason }))
            .collect(),
    );
    let written: Vec<Written> = diesel::sql_query(
        "WITH input AS (SELECT (e->>'id')::uuid AS id, e->>'reason' AS reason
                        FROM jsonb_array_elements($1) e),
              updated AS (UPDATE customers c SET lifecycle_stage = $2, version = c.version + 1,
                                 updated_at = now()
                          FROM input i
                          WHERE c.id = i.id AND c.id = ANY($5) AND c.lifecycle_stage <> $2
                          RETURNING c.id),
              staged AS (INSERT INTO customer_lifecycle_events
                             (id, customer_id, from_stage, to_stage, actor_type, actor_id, reason)
                         SELECT uuid_v7(), u.id, b.stage, $2, $3, $4, i.reason
                         FROM updated u JOIN input i USING (id)
                         JOIN unnest($5::uuid[], $6::text[]) AS b (id, stage) USING (id))
         SELECT id FROM updated",
    )
    .bind::<Jsonb, _>(input)
    .bind::<Text, _>(to.as_str())
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id())
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(before.iter().map(|b| b.id).collect::<Vec<_>>())
    .bind::<diesel::sql_types::Array<Text>, _>(
        before
            .iter()
            .map(|b| b.draft.lifecycle_stage.as_str().to_owned())
            .collect::<Vec<_>>(),
    )
    .prepared()
    .load(conn)
    .await?;
    let written: HashSet<Uuid> = written.into_iter().map(|w| w.id).collect();
    let after = written_records(conn, &written).await?;
    let pairs: Vec<(&CustomerRecord, &CustomerRecord)> = before
        .iter()
        .filter_map(|b| {
            after
                .binary_search_by_key(&b.id, |a| a.id)
                .ok()
                .map(|i| (b, &after[i]))
        })
        .collect();
    let changes = pairs.iter().map(|(b, a)| super::updated(b, a)).collect();
    journal::record_all(conn, actor, changes).await?;
    Ok(pairs.len())
}
