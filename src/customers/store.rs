//! Customer queries. Every function takes a connection, so handlers compose them in one
//! transaction.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use diesel::sql_types::{Array, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use uuid::Uuid;

use super::json::{
    Address, BuyerType, Credit, CustomerKind, Gender, IncomeBand, LifecycleStage, OrganizationType,
    ProspectGrade, Qualification, RegionType, RelationshipLevel,
};
use crate::auth::Actor;
use crate::db::functions::lower;
use crate::db::schema::{customer_lifecycle_events, customers, interactions};
use crate::db::{NullableTexts, Prepare};
use crate::domain::{Channel, ChurnCause, Email, Phone};

/// A customer row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = customers)]
pub struct CustomerRecord {
    pub id: Uuid,
    #[diesel(embed)]
    pub draft: CustomerDraft,
    pub prospect_grade: Option<ProspectGrade>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    pub deleted_at: Option<DateTime<Utc>>,
    pub erased_at: Option<DateTime<Utc>>,
}

/// Everything about a customer that a write sets (the rest is derived or bookkeeping).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = customers, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct CustomerDraft {
    pub kind: CustomerKind,
    pub name: String,
    pub organization_name: Option<String>,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub address: Option<Address>,
    pub region_type: Option<RegionType>,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<Gender>,
    pub occupation: Option<String>,
    pub income_band: Option<IncomeBand>,
    pub national_id: Option<String>,
    pub preferred_channel: Option<Channel>,
    pub consent_email: bool,
    pub consent_email_at: Option<DateTime<Utc>>,
    pub consent_sms: bool,
    pub consent_sms_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = NullableTexts, serialize_as = NullableTexts)]
    pub tags: Vec<String>,
    pub attributes: Value,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub account_manager_id: Option<Uuid>,
    pub lifecycle_stage: LifecycleStage,
    pub relationship_level: RelationshipLevel,
    pub qualification: Option<Qualification>,
    pub parent_id: Option<Uuid>,
    pub referred_by_id: Option<Uuid>,
    pub influential: bool,
    pub credit: Option<Credit>,
    pub buyer_type: Option<BuyerType>,
    pub organization_type: Option<OrganizationType>,
}

pub async fn insert(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &CustomerDraft,
) -> QueryResult<CustomerRecord> {
    diesel::insert_into(customers::table)
        .values((customers::id.eq(id), draft.clone()))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

pub async fn get(mut conn: &AsyncPgConnection, id: Uuid) -> QueryResult<Option<CustomerRecord>> {
    customers::table
        .find(id)
        .select(CustomerRecord::as_select())
        .fixed()
        .get_result(&mut conn)
        .await
        .optional()
}

/// Reads a customer and keeps it from being updated or deleted until the transaction ends
/// (while others may read and share-lock it too).
pub async fn lock_shared(
    mut conn: &AsyncPgConnection,
    id: Uuid,
) -> QueryResult<Option<CustomerRecord>> {
    customers::table
        .find(id)
        .select(CustomerRecord::as_select())
        .for_share()
        .fixed()
        .get_result(&mut conn)
        .await
        .optional()
}

/// Reads a customer and locks the row until the transaction ends.
pub async fn lock(mut conn: &AsyncPgConnection, id: Uuid) -> QueryResult<Option<CustomerRecord>> {
    customers::table
        .find(id)
        .select(CustomerRecord::as_select())
        .for_update()
        .fixed()
        .get_result(&mut conn)
        .await
        .optional()
}

pub async fn get_by_external_id(
    conn: &mut AsyncPgConnection,
    external_id: &str,
    for_update: bool,
) -> QueryResult<Option<CustomerRecord>> {
    let query = customers::table
        .filter(customers::external_id.eq(external_id))
        .select(CustomerRecord::as_select());
    if for_update {
        query.for_update().first(conn).await.optional()
    } else {
        query.first(conn).await.optional()
    }
}

pub async fn update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    draft: &CustomerDraft,
) -> QueryResult<CustomerRecord> {
    diesel::update(customers::table.find(id))
        .set((
            draft.clone(),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(now),
        ))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

/// Soft-deletes (`Some(now)`) or restores (`None`) a customer.
pub async fn set_deleted(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    deleted_at: Option<DateTime<Utc>>,
) -> QueryResult<CustomerRecord> {
    diesel::update(customers::table.find(id))
        .set((
            customers::deleted_at.eq(deleted_at),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(now),
        ))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

/// Hides a deleted customer's live interactions with it (`deleted_at` = the customer's), so
/// they leave every list, work list and statistic; `restore` brings back exactly those. The
/// interactions hang off the customer, and its deletion reaches them as a cascade would: the
/// statement is the customer's, the interactions area only sees deleted rows.
pub async fn interactions_follow_deletion(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    deleted_at: DateTime<Utc>,
    restore: bool,
) -> QueryResult<usize> {
    let of_customer = interactions::customer_id.eq(customer_id);
    let changed = (
        interactions::version.eq(interactions::version + 1),
        interactions::updated_at.eq(now),
    );
    if restore {
        diesel::update(interactions::table.filter(of_customer))
            .filter(interactions::deleted_at.eq(deleted_at))
            .set((interactions::deleted_at.eq(None::<DateTime<Utc>>), changed))
            .execute(conn)
            .await
    } else {
        diesel::update(interactions::table.filter(of_customer))
            .filter(interactions::deleted_at.is_null())
            .set((interactions::deleted_at.eq(deleted_at), changed))
            .execute(conn)
            .await
    }
}

/// Replaces the personal data with an anonymous shell, keeping what aggregates need
/// (id, kind, stage, level, manager, source, times).
pub async fn erase(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<CustomerRecord> {
    let shell = {
        let mut draft = get(conn, id)
            .await?
            .ok_or(diesel::result::Error::NotFound)?
            .draft;
        draft.name = "Erased customer".to_owned();
        draft.organization_name = None;
        draft.email = None;
        draft.phone = None;
        draft.address = None;
        draft.birth_date = None;
        draft.gender = None;
        draft.occupation = None;
        draft.income_band = None;
        draft.national_id = None;
        draft.preferred_channel = None;
        draft.consent_email = false;
        draft.consent_sms = false;
        draft.tags = Vec::new();
        draft.attributes = Value::Object(serde_json::Map::new());
        draft.external_id = None;
        draft.qualification = None;
        draft.credit = None;
        // How a person buys is about the person; an organisation's type is not personal.
        draft.buyer_type = None;
        draft
    };
    diesel::update(customers::table.find(id))
        .set((
            shell,
            customers::erased_at.eq(now),
            customers::deleted_at.eq(
                diesel::dsl::sql::<diesel::sql_types::Nullable<Timestamptz>>(
                    "coalesce(customers.deleted_at, now())",
                ),
            ),
            customers::version.eq(customers::version + 1),
            customers::updated_at.eq(now),
        ))
        .returning(CustomerRecord::as_returning())
        .get_result(conn)
        .await
}

// ---- lifecycle history ----------------------------------------------------------------

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = customer_lifecycle_events)]
pub struct LifecycleRecord {
    pub id: Uuid,
    pub from_stage: Option<LifecycleStage>,
    pub to_stage: LifecycleStage,
    pub changed_at: DateTime<Utc>,
    pub actor_type: String,
    pub actor_id: String,
    pub reason: Option<String>,
    pub reason_code: Option<ChurnCause>,
}

/// Why a stage changed: the free text and, for a move into a loss stage, the code.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageReason<'a> {
    pub text: Option<&'a str>,
    pub code: Option<ChurnCause>,
}

pub async fn record_stage_change(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    from: Option<LifecycleStage>,
    to: LifecycleStage,
    actor: &Actor,
    reason: StageReason<'_>,
) -> QueryResult<()> {
    diesel::insert_into(customer_lifecycle_events::table)
        .values((
            customer_lifecycle_events::id.eq(Uuid::now_v7()),
            customer_lifecycle_events::customer_id.eq(customer_id),
            customer_lifecycle_events::from_stage.eq(from.map(LifecycleStage::as_str)),
            customer_lifecycle_events::to_stage.eq(to.as_str()),
            customer_lifecycle_events::actor_type.eq(actor.kind()),
            customer_lifecycle_events::actor_id.eq(actor.id()),
            customer_lifecycle_events::reason.eq(reason.text),
            customer_lifecycle_events::reason_code.eq(reason.code),
        ))
        .execute(conn)
        .await
        .map(drop)
}

pub async fn lifecycle(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<LifecycleRecord>> {
    customer_lifecycle_events::table
        .filter(customer_lifecycle_events::customer_id.eq(customer_id))
        .order((
            customer_lifecycle_events::changed_at.asc(),
            customer_lifecycle_events::id.asc(),
        ))
        .select(LifecycleRecord::as_select())
        .load(conn)
        .await
}

/// Lifecycle entries by id, in no particular order (the timeline's loader).
pub async fn lifecycle_by_ids(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<LifecycleRecord>> {
    customer_lifecycle_events::table
        .filter(customer_lifecycle_events::id.eq_any(ids))
        .select(LifecycleRecord::as_select())
        .load(&mut conn)
        .await
}

diesel::alias!(customer_lifecycle_events as later_loss: LaterLoss);

/// The stages a customer is lost in, as stored.
const LOSS_STAGES: [&str; 2] = ["dissolution", "churned"];

/// The customers whose latest move into `dissolution` or `churned` had one of `codes`, as a
/// subquery: the coded entries by code (their partial index), each kept when no later loss
/// move of its customer follows (the loss moves' partial index).
pub fn lost_with(
    codes: &[ChurnCause],
) -> customer_lifecycle_events::BoxedQuery<'static, diesel::pg::Pg, SqlUuid> {
    use customer_lifecycle_events as e;
    let later = later_loss.field(e::changed_at);
    let later_moves = later_loss
        .filter(later_loss.field(e::customer_id).eq(e::customer_id))
        .filter(later_loss.field(e::to_stage).eq_any(LOSS_STAGES))
        .filter(
            later.gt(e::changed_at).or(later
                .eq(e::changed_at)
                .and(later_loss.field(e::id).gt(e::id))),
        );
    let codes: Vec<&'static str> = codes.iter().map(|c| c.as_str()).collect();
    e::table
        .filter(e::reason_code.eq_any(codes))
        .filter(e::to_stage.eq_any(LOSS_STAGES))
        .filter(diesel::dsl::not(diesel::dsl::exists(later_moves)))
        .select(e::customer_id)
        .into_boxed()
}

/// Forgets the free-text reasons of an erased customer's stage changes.
pub async fn erase_lifecycle_reasons(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<()> {
    diesel::update(
        customer_lifecycle_events::table
            .filter(customer_lifecycle_events::customer_id.eq(customer_id)),
    )
    .set(customer_lifecycle_events::reason.eq(None::<String>))
    .execute(conn)
    .await
    .map(drop)
}

#[derive(QueryableByName)]
struct Live {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// The ids among these that are no live customer the caller reaches (owned-only access: one
/// managed by someone else counts as missing); the live ones are locked against deletion
/// until the transaction ends.
pub async fn not_live(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    owner: Option<Uuid>,
) -> QueryResult<Vec<Uuid>> {
    let live: Vec<Live> = diesel::sql_query(format!(
        "SELECT id FROM customers WHERE id = ANY($1) AND deleted_at IS NULL \
         AND erased_at IS NULL AND {} FOR SHARE",
        crate::auth::ownership::sql_condition("id", 2)
    ))
    .bind::<Array<SqlUuid>, _>(ids)
    .bind::<Nullable<SqlUuid>, _>(owner)
    .prepared()
    .load(conn)
    .await?;
    let live: std::collections::HashSet<Uuid> = live.into_iter().map(|l| l.id).collect();
    Ok(ids
        .iter()
        .copied()
        .filter(|id| !live.contains(id))
        .collect())
}

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

/// Live customers among `ids` in one of the stages `from`, locked, in id order.
pub async fn lock_in_stages(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    from: &[LifecycleStage],
) -> QueryResult<Vec<CustomerRecord>> {
    customers::table
        .filter(customers::id.eq_any(ids))
        .filter(customers::deleted_at.is_null())
        .filter(customers::lifecycle_stage.eq_any(from.to_vec()))
        .order(customers::id)
        .select(CustomerRecord::as_select())
        .for_update()
        .load(conn)
        .await
}

/// Moves the customers of `before` named in `moves` into `to`, each with its reason, with
/// their lifecycle entries (all with `code`): one statement. A customer already in `to`
/// stays. Returns the ids it moved.
pub async fn move_stages(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    moves: &[(Uuid, String)],
    before: &[CustomerRecord],
    to: LifecycleStage,
    code: Option<ChurnCause>,
) -> QueryResult<HashSet<Uuid>> {
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
                             (id, customer_id, from_stage, to_stage, actor_type, actor_id, reason,
                              reason_code)
                         SELECT uuid_v7(), u.id, b.stage, $2, $3, $4, i.reason, $7
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
    .bind::<Nullable<Text>, _>(code.map(ChurnCause::as_str))
    .prepared()
    .load(conn)
    .await?;
    Ok(written.into_iter().map(|w| w.id).collect())
}

/// The columns a customer's draft fills, as named in the table.
const COLUMNS: [&str; 31] = [
    "kind",
    "name",
    "organization_name",
    "email",
    "phone",
    "address",
    "region_type",
    "birth_date",
    "gender",
    "occupation",
    "income_band",
    "national_id",
    "preferred_channel",
    "consent_email",
    "consent_email_at",
    "consent_sms",
    "consent_sms_at",
    "tags",
    "attributes",
    "source",
    "external_id",
    "account_manager_id",
    "lifecycle_stage",
    "relationship_level",
    "qualification",
    "parent_id",
    "referred_by_id",
    "influential",
    "credit",
    "buyer_type",
    "organization_type",
];

/// A draft as one JSON object keyed by column (read back with `jsonb_populate_recordset`).
fn draft_json(id: Uuid, version: i64, d: &CustomerDraft, reason: StageReason<'_>) -> Value {
    json!({
        "id": id, "version": version, "kind": d.kind, "name": d.name,
        "organization_name": d.organization_name, "email": d.email, "phone": d.phone,
        "address": d.address, "region_type": d.region_type, "birth_date": d.birth_date,
        "gender": d.gender, "occupation": d.occupation, "income_band": d.income_band,
        "national_id": d.national_id, "preferred_channel": d.preferred_channel,
        "consent_email": d.consent_email, "consent_email_at": d.consent_email_at,
        "consent_sms": d.consent_sms, "consent_sms_at": d.consent_sms_at, "tags": d.tags,
        "attributes": d.attributes, "source": d.source, "external_id": d.external_id,
        "account_manager_id": d.account_manager_id, "lifecycle_stage": d.lifecycle_stage,
        "relationship_level": d.relationship_level, "qualification": d.qualification,
        "parent_id": d.parent_id, "referred_by_id": d.referred_by_id,
        "influential": d.influential, "credit": d.credit,
        "buyer_type": d.buyer_type, "organization_type": d.organization_type,
        "lifecycle_reason": reason.text, "reason_code": reason.code,
    })
}

/// A draft a set-wise write takes: the customer's id, and the reason of its stage entry.
pub struct NewDraft<'a> {
    pub id: Uuid,
    pub draft: &'a CustomerDraft,
    pub reason: StageReason<'a>,
}

/// The customers whose external id is one of `externals` or whose email is one of `emails`
/// (lower case).
pub async fn by_keys(
    conn: &mut AsyncPgConnection,
    externals: &[String],
    emails: &[String],
) -> QueryResult<Vec<CustomerRecord>> {
    customers::table
        .filter(
            customers::external_id
                .eq_any(externals)
                .or(lower(customers::email.assume_not_null()).eq_any(emails)),
        )
        .select(CustomerRecord::as_select())
        .load(conn)
        .await
}

/// Inserts new customers, each with its first lifecycle entry, in one statement. A draft
/// whose email or external id is taken (by a customer or an earlier draft) is skipped.
/// Returns the ids written.
pub async fn insert_many(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    drafts: &[NewDraft<'_>],
) -> QueryResult<HashSet<Uuid>> {
    let data = Value::Array(
        drafts
            .iter()
            .map(|d| draft_json(d.id, 1, d.draft, d.reason))
            .collect(),
    );
    let columns = COLUMNS.join(", ");
    let written: Vec<Written> = diesel::sql_query(format!(
        "WITH input AS (SELECT * FROM jsonb_populate_recordset(NULL::customers, $1)),
              reasons AS (SELECT (e->>'id')::uuid AS id, e->>'lifecycle_reason' AS reason,
                                 e->>'reason_code' AS reason_code
                          FROM jsonb_array_elements($1) e),
              inserted AS (INSERT INTO customers (id, {columns})
                           SELECT id, {columns} FROM input
                           ON CONFLICT DO NOTHING
                           RETURNING id, lifecycle_stage),
              staged AS (INSERT INTO customer_lifecycle_events
                             (id, customer_id, from_stage, to_stage, actor_type, actor_id, reason,
                              reason_code)
                         SELECT uuid_v7(), i.id, NULL, i.lifecycle_stage, $2, $3, r.reason,
                                r.reason_code
                         FROM inserted i JOIN reasons r USING (id))
         SELECT id FROM inserted"
    ))
    .bind::<Jsonb, _>(data)
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id())
    .prepared()
    .load(conn)
    .await?;
    Ok(written.into_iter().map(|w| w.id).collect())
}

/// Which of `emails` (lower case) a customer holds.
pub async fn emails_taken(
    conn: &mut AsyncPgConnection,
    emails: &[String],
) -> QueryResult<HashSet<String>> {
    let taken: Vec<String> = customers::table
        .filter(lower(customers::email.assume_not_null()).eq_any(emails))
        .select(lower(customers::email.assume_not_null()))
        .load(conn)
        .await?;
    Ok(taken.into_iter().collect())
}

/// The customers holding one of `emails` (lower case) or `externals`: id, email, external id.
pub async fn key_holders(
    conn: &mut AsyncPgConnection,
    emails: &[String],
    externals: &[String],
) -> QueryResult<Vec<(Uuid, Option<String>, Option<String>)>> {
    customers::table
        .filter(
            lower(customers::email.assume_not_null())
                .eq_any(emails)
                .or(customers::external_id.eq_any(externals)),
        )
        .select((customers::id, customers::email, customers::external_id))
        .load(conn)
        .await
}

/// Writes each draft over its customer, with a lifecycle entry when the stage moves, in one
/// statement; only customers unchanged since `before` was read are written (no lost
/// update). Returns the ids written. A key another writer took meanwhile aborts the
/// statement: run it in a savepoint to go on.
pub async fn update_many(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    changed: &[(&CustomerRecord, NewDraft<'_>)],
) -> QueryResult<HashSet<Uuid>> {
    let data = Value::Array(
        changed
            .iter()
            .map(|(before, d)| {
                let mut v = draft_json(before.id, before.version, d.draft, d.reason);
                v["from_stage"] = json!(before.draft.lifecycle_stage);
                v
            })
            .collect(),
    );
    let set = COLUMNS
        .iter()
        .map(|c| format!("{c} = i.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let written: Vec<Written> = diesel::sql_query(format!(
        "WITH input AS (SELECT * FROM jsonb_populate_recordset(NULL::customers, $1)),
              extra AS (SELECT (e->>'id')::uuid AS id, e->>'from_stage' AS from_stage,
                               e->>'lifecycle_reason' AS reason, e->>'reason_code' AS reason_code
                        FROM jsonb_array_elements($1) e),
              updated AS (UPDATE customers c SET {set}, version = c.version + 1, updated_at = now()
                          FROM input i
                          WHERE c.id = i.id AND c.version = i.version AND c.deleted_at IS NULL
                          RETURNING c.id, c.lifecycle_stage),
              staged AS (INSERT INTO customer_lifecycle_events
                             (id, customer_id, from_stage, to_stage, actor_type, actor_id, reason,
                              reason_code)
                         SELECT uuid_v7(), u.id, x.from_stage, u.lifecycle_stage, $2, $3, x.reason,
                                x.reason_code
                         FROM updated u JOIN extra x USING (id)
                         WHERE u.lifecycle_stage IS DISTINCT FROM x.from_stage)
         SELECT id FROM updated"
    ))
    .bind::<Jsonb, _>(data)
    .bind::<Text, _>(actor.kind())
    .bind::<Text, _>(actor.id())
    .load(conn)
    .await?;
    Ok(written.into_iter().map(|w| w.id).collect())
}

/// Whether the customer's latest stage is the one it was created in: its latest lifecycle
/// entry is its first (`from_stage` null), so nobody has moved it since.
pub async fn stage_unchanged_since_creation(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<bool> {
    let moved = customer_lifecycle_events::table
        .filter(customer_lifecycle_events::customer_id.eq(customer_id))
        .filter(customer_lifecycle_events::from_stage.is_not_null());
    diesel::select(diesel::dsl::not(diesel::dsl::exists(moved)))
        .get_result(conn)
        .await
}

/// The `decision_maker` role among a link's buying roles.
const DECIDES: &str = "'decision_maker' = ANY (contacts.buying_roles)";

/// Whether the organization has a current contact, a live person, with the `decision_maker`
/// buying role (its derived MAN authority): a deleted person's link stops counting until
/// they are restored. Reads the contacts' table; contacts_organization_person_key serves it.
pub async fn has_current_decision_maker(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
) -> QueryResult<bool> {
    use crate::db::schema::contacts;
    diesel::select(diesel::dsl::exists(
        contacts::table
            .filter(contacts::organization_id.eq(organization_id))
            .filter(contacts::ended_at.is_null())
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(DECIDES))
            .filter(
                contacts::person_id.eq_any(
                    customers::table
                        .filter(customers::deleted_at.is_null())
                        .select(customers::id),
                ),
            )
            .select(contacts::id),
    ))
    .get_result(conn)
    .await
}

/// The organizations where the person is a current contact with the `decision_maker` role,
/// in id order (the order their rows are locked in): those whose derived authority follows
/// the person's deletion or restoration.
pub async fn decided_by(conn: &mut AsyncPgConnection, person_id: Uuid) -> QueryResult<Vec<Uuid>> {
    use crate::db::schema::contacts;
    contacts::table
        .filter(contacts::person_id.eq(person_id))
        .filter(contacts::ended_at.is_null())
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(DECIDES))
        .select(contacts::organization_id)
        .order(contacts::organization_id.asc())
        .load(conn)
        .await
}

// ---- groups (subsidiaries) ----------------------------------------------------------------

/// The lock every change of an organization's parent takes until its transaction ends, so
/// that two concurrent changes cannot each pass the cycle check and close a cycle together.
const GROUPS_LOCK: i64 = 0x5261_7070_6f72_7447; // "RapporTG"

/// Serialises changes of `parent_id` (see [`GROUPS_LOCK`]).
pub async fn lock_groups(conn: &mut AsyncPgConnection) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
        .bind::<diesel::sql_types::BigInt, _>(GROUPS_LOCK)
        .prepared()
        .execute(conn)
        .await
        .map(|_| ())
}

#[derive(QueryableByName)]
struct Ancestors {
    #[diesel(sql_type = Array<SqlUuid>)]
    ids: Vec<Uuid>,
}

/// `id` and its parents upwards, `id` first (at most 64: the walk stops at a repeat, which
/// only a cycle written before the checks existed could make).
pub async fn ancestors(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Vec<Uuid>> {
    let found: Ancestors = diesel::sql_query(
        "WITH RECURSIVE up(id, parent_id, path) AS (
             SELECT id, parent_id, ARRAY[id] FROM customers WHERE id = $1
             UNION ALL
             SELECT c.id, c.parent_id, up.path || c.id
             FROM up JOIN customers c ON c.id = up.parent_id
             WHERE cardinality(up.path) < 64 AND NOT c.id = ANY(up.path))
         SELECT coalesce((SELECT path FROM up ORDER BY cardinality(path) DESC LIMIT 1),
                         '{}'::uuid[]) AS ids",
    )
    .bind::<SqlUuid, _>(id)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(found.ids)
}

#[derive(QueryableByName)]
struct Height {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    levels: i32,
}

/// The levels of `id`'s tree: 1 for an organization without subsidiaries (counted up to
/// `limit` + 1 levels: enough to tell it is too deep).
pub async fn levels_below(conn: &mut AsyncPgConnection, id: Uuid, limit: i32) -> QueryResult<i32> {
    let found: Height = diesel::sql_query(
        "WITH RECURSIVE down(id, depth) AS (
             SELECT $1::uuid, 1
             UNION ALL
             SELECT c.id, down.depth + 1
             FROM down JOIN customers c ON c.parent_id = down.id
             WHERE down.depth <= $2)
         SELECT max(depth) AS levels FROM down",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<diesel::sql_types::Integer, _>(limit)
    .prepared()
    .get_result(conn)
    .await?;
    Ok(found.levels)
}

/// Whether any customer (deleted ones too) has `id` as its parent.
pub async fn has_subsidiaries(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        customers::table.filter(customers::parent_id.eq(id)),
    ))
    .get_result(conn)
    .await
}

/// One subsidiary found below an organization.
#[derive(Debug, QueryableByName)]
pub struct SubsidiaryRow {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub parent_id: Uuid,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub external_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub depth: i32,
}

/// The live subsidiaries of `id` down to `depth` levels, depth first, at most `limit` of
/// them; with `owner`, only those this user manages (a subsidiary they do not manage hides
/// the tree below it too). Each level is one probe of `customers_parent_idx` per parent.
pub async fn subsidiaries(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    depth: i32,
    owner: Option<Uuid>,
    limit: i64,
) -> QueryResult<Vec<SubsidiaryRow>> {
    diesel::sql_query(
        "WITH RECURSIVE tree(id, parent_id, name, external_id, depth, path) AS (
             SELECT c.id, c.parent_id, c.name, c.external_id, 1, ARRAY[c.id]
             FROM customers c
             WHERE c.parent_id = $1 AND c.deleted_at IS NULL
               AND ($3::uuid IS NULL OR c.account_manager_id = $3::uuid)
             UNION ALL
             SELECT c.id, c.parent_id, c.name, c.external_id, t.depth + 1, t.path || c.id
             FROM tree t JOIN customers c ON c.parent_id = t.id
             WHERE t.depth < $2 AND c.deleted_at IS NULL AND NOT c.id = ANY(t.path)
               AND ($3::uuid IS NULL OR c.account_manager_id = $3::uuid))
         SELECT id, parent_id, name, external_id, depth FROM tree ORDER BY path LIMIT $4",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<diesel::sql_types::Integer, _>(depth)
    .bind::<Nullable<SqlUuid>, _>(owner)
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .prepared()
    .load(conn)
    .await
}

/// Those of `ids` that are live customers (only those `owner` manages, when given).
pub async fn live_among(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
    owner: Option<Uuid>,
) -> QueryResult<Vec<Uuid>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = customers::table
        .filter(customers::id.eq_any(ids))
        .filter(customers::deleted_at.is_null())
        .select(customers::id)
        .into_boxed();
    if let Some(owner) = owner {
        query = query.filter(customers::account_manager_id.eq(owner));
    }
    query.load(conn).await
}

/// The customer a merged customer was merged into, when it is a tombstone.
pub async fn tombstone(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<Uuid>> {
    use crate::db::schema::customer_tombstones as t;
    t::table
        .find(id)
        .select(t::survivor_id)
        .first(conn)
        .await
        .optional()
}

/// One reason a live customer matches a customer about to be written (the `i`-th).
#[derive(Debug, QueryableByName)]
pub struct Match {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub i: i32,
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    #[diesel(sql_type = Text)]
    pub reason: String,
    #[diesel(sql_type = Text)]
    pub kind: String,
}

/// How the duplicate rules compare: the least similarity of two names at one address, and
/// the most live customers a key may have for it to count.
#[derive(Debug, Clone, Copy)]
pub struct MatchRules {
    pub name_similarity: f64,
    pub key_holders_at_most: i64,
}

/// The live customers each of `drafts` matches by the duplicate rules (`matches.sql`, one
/// statement), one row per reason, leaving out `itself` and, for an owned-only caller,
/// customers of other managers.
pub async fn matches(
    conn: &mut AsyncPgConnection,
    drafts: &[&CustomerDraft],
    itself: Option<Uuid>,
    owner: Option<Uuid>,
    rules: MatchRules,
) -> QueryResult<Vec<Match>> {
    use diesel::sql_types::{BigInt, Double, Nullable as N};
    diesel::sql_query(include_str!("matches.sql"))
        .bind::<Jsonb, _>(match_keys(drafts))
        .bind::<N<SqlUuid>, _>(itself)
        .bind::<N<SqlUuid>, _>(owner)
        .bind::<Double, _>(rules.name_similarity)
        .bind::<BigInt, _>(rules.key_holders_at_most)
        .load(conn)
        .await
}

/// The fields the duplicate rules read of each draft, as the JSON array `matches.sql` and
/// `batch_matches.sql` take (`i` the draft's index; `matches.sql` reads no `kind`, it
/// answers each stored customer's).
fn match_keys(drafts: &[&CustomerDraft]) -> Value {
    Value::Array(
        drafts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                json!({
                    "i": i,
                    "kind": d.kind.as_str(),
                    "email": d.email.as_ref().map(Email::as_str),
                    "phone": d.phone.as_ref().map(Phone::as_str),
                    "address": d.address.as_ref().and_then(|a| serde_json::to_value(a).ok()),
                    "name": d.name,
                    "attributes": d.attributes,
                    "external_id": d.external_id,
                })
            })
            .collect(),
    )
}

/// One reason a customer about to be written (the `i`-th) matches an earlier one of the same
/// batch (the `j`-th).
#[derive(Debug, QueryableByName)]
pub struct BatchMatch {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub i: i32,
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub j: i32,
    #[diesel(sql_type = Text)]
    pub reason: String,
}

/// The earlier drafts of `drafts` each one matches by the duplicate rules
/// (`batch_matches.sql`, one statement, the keys computed by the functions the stored
/// customers' keys are), one row per reason, ordered by `i`, then `j`.
pub async fn batch_matches(
    conn: &mut AsyncPgConnection,
    drafts: &[&CustomerDraft],
    rules: MatchRules,
) -> QueryResult<Vec<BatchMatch>> {
    use diesel::sql_types::{BigInt, Double};
    diesel::sql_query(include_str!("batch_matches.sql"))
        .bind::<Jsonb, _>(match_keys(drafts))
        .bind::<Double, _>(rules.name_similarity)
        .bind::<BigInt, _>(rules.key_holders_at_most)
        .load(conn)
        .await
}

/// A customer of an imported batch whose parent or kind changes, for [`groups_of_batch`].
#[derive(Debug, Clone)]
pub struct GroupChange {
    /// The customer (a new one: any id of its own, which nothing can name yet).
    pub id: Uuid,
    pub parent_id: Option<Uuid>,
    pub kind: super::json::CustomerKind,
    /// Whether the row changes the parent (otherwise only the kind).
    pub parent_changed: bool,
}

/// What a batch's changes would make of the groups, for one of its rows.
#[derive(Debug, Clone, QueryableByName)]
pub struct GroupVerdict {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// The cycle the row's new parent would close, its ids in order from the row back to it;
    /// empty when none.
    #[diesel(sql_type = Array<SqlUuid>)]
    pub cycle: Vec<Uuid>,
    /// The levels of the group through the row (its parents, itself and the deepest branch
    /// below it); 0 when its parent does not change, or on a cycle.
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pub levels: i32,
    /// `ok`, `missing` (no live customer the sender can see) or `individual`.
    #[diesel(sql_type = Text)]
    pub parent: String,
    /// A row that is no organization would keep subsidiaries.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    pub stranded: bool,
}

/// Checks a batch's changes of parents and kinds together, against the stored groups with the
/// batch's changes in place of the stored parents (`groups_of_batch.sql`): one statement for
/// the batch. Take [`lock_groups`] first, so that no other change of a parent comes between
/// the check and the write.
pub async fn groups_of_batch(
    conn: &mut AsyncPgConnection,
    changes: &[GroupChange],
    owner: Option<Uuid>,
) -> QueryResult<Vec<GroupVerdict>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = changes.iter().map(|c| c.id).collect();
    let parents: Vec<Option<Uuid>> = changes.iter().map(|c| c.parent_id).collect();
    let kinds: Vec<String> = changes.iter().map(|c| c.kind.as_str().to_owned()).collect();
    let changed: Vec<bool> = changes.iter().map(|c| c.parent_changed).collect();
    diesel::sql_query(include_str!("groups_of_batch.sql"))
        .bind::<Array<SqlUuid>, _>(ids)
        .bind::<Array<Nullable<SqlUuid>>, _>(parents)
        .bind::<Array<Text>, _>(kinds)
        .bind::<Array<diesel::sql_types::Bool>, _>(changed)
        .bind::<Nullable<SqlUuid>, _>(owner)
        .prepared()
        .load(conn)
        .await
}
