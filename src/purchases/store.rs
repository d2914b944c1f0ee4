//! Purchase queries.

use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;
use uuid::Uuid;

use super::json::PurchaseSort;
use crate::auth::Actor;
use crate::db::Prepare;
use crate::db::schema::{purchase_refunds, purchases};
use crate::domain::Channel;

/// A purchase row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = purchases)]
pub struct PurchaseRecord {
    pub id: Uuid,
    pub customer_id: Uuid,
    #[diesel(embed)]
    pub draft: PurchaseDraft,
    pub refunded: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// What recording a purchase sets.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = purchases, treat_none_as_default_value = false)]
pub struct PurchaseDraft {
    pub external_ref: Option<String>,
    pub currency: String,
    pub amount: i64,
    pub cost: Option<i64>,
    pub occurred_at: DateTime<Utc>,
    pub channel: Option<Channel>,
    pub items: Value,
    pub opportunity_id: Option<Uuid>,
}

/// Inserts a purchase; `None` when its `external_ref` is already recorded.
pub async fn insert(
    mut conn: &AsyncPgConnection,
    id: Uuid,
    customer_id: Uuid,
    draft: &PurchaseDraft,
) -> QueryResult<Option<PurchaseRecord>> {
    diesel::insert_into(purchases::table)
        .values((
            purchases::id.eq(id),
            purchases::customer_id.eq(customer_id),
            draft.clone(),
        ))
        .on_conflict_do_nothing()
        .returning(PurchaseRecord::as_returning())
        .get_result(&mut conn)
        .await
        .optional()
}

/// Whether the customer has a purchase other than `except` (refunded ones count: they were
/// bought).
pub async fn bought_before(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
    except: Uuid,
) -> QueryResult<bool> {
    let others = purchases::table
        .filter(purchases::customer_id.eq(customer_id))
        .filter(purchases::id.ne(except));
    diesel::select(diesel::dsl::exists(others))
        .get_result(conn)
        .await
}

pub async fn get(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<PurchaseRecord>> {
    purchases::table
        .find(id)
        .select(PurchaseRecord::as_select())
        .first(conn)
        .await
        .optional()
}

pub async fn by_external_ref(
    conn: &mut AsyncPgConnection,
    external_ref: &str,
) -> QueryResult<Option<PurchaseRecord>> {
    purchases::table
        .filter(purchases::external_ref.eq(external_ref))
        .select(PurchaseRecord::as_select())
        .first(conn)
        .await
        .optional()
}

/// Reads a purchase and locks it until the transaction ends.
pub async fn lock(conn: &mut AsyncPgConnection, id: Uuid) -> QueryResult<Option<PurchaseRecord>> {
    purchases::table
        .find(id)
        .select(PurchaseRecord::as_select())
        .for_update()
        .first(conn)
        .await
        .optional()
}

/// Records a refund and adds it to the purchase's refunded total.
pub async fn refund(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    amount: i64,
    reason: Option<&str>,
    actor: &Actor,
) -> QueryResult<PurchaseRecord> {
    diesel::insert_into(purchase_refunds::table)
        .values((
            purchase_refunds::id.eq(Uuid::now_v7()),
            purchase_refunds::purchase_id.eq(id),
            purchase_refunds::amount.eq(amount),
            purchase_refunds::reason.eq(reason),
            purchase_refunds::actor_type.eq(actor.kind()),
            purchase_refunds::actor_id.eq(actor.id()),
        ))
        .execute(conn)
        .await?;
    diesel::update(purchases::table.find(id))
        .set((
            purchases::refunded.eq(purchases::refunded + amount),
            purchases::version.eq(purchases::version + 1),
            purchases::updated_at.eq(now),
        ))
        .returning(PurchaseRecord::as_returning())
        .get_result(conn)
        .await
}

/// Purchases by id, in no particular order (the timeline's loader).
pub async fn by_ids(
    mut conn: &AsyncPgConnection,
    ids: &[Uuid],
) -> QueryResult<Vec<PurchaseRecord>> {
    purchases::table
        .filter(purchases::id.eq_any(ids))
        .select(PurchaseRecord::as_select())
        .load(&mut conn)
        .await
}

/// Every purchase of a customer, oldest first (for a data-subject export).
pub async fn of_customer(
    conn: &mut AsyncPgConnection,
    customer_id: Uuid,
) -> QueryResult<Vec<PurchaseRecord>> {
    purchases::table
        .filter(purchases::customer_id.eq(customer_id))
        .order((purchases::occurred_at.asc(), purchases::id.asc()))
        .select(PurchaseRecord::as_select())
        .load(conn)
        .await
}

/// Filters of a purchase list.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub customer_id: Option<Uuid>,
    pub currency: Option<String>,
    pub channel: Option<Channel>,
    pub occurred_after: Option<DateTime<Utc>>,
    pub occurred_before: Option<DateTime<Utc>>,
    /// Owned-only access: only purchases of customers this user manages.
    pub owner: Option<Uuid>,
}

pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    sort: PurchaseSort,
    after: Option<(DateTime<Utc>, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<PurchaseRecord>> {
    let mut query: purchases::BoxedQuery<'_, Pg> = purchases::table.into_boxed();
    if let Some(owner) = filter.owner {
        query =
            query.filter(purchases::customer_id.eq_any(crate::auth::ownership::owned_ids(owner)));
    }
    if let Some(id) = filter.customer_id {
        query = query.filter(purchases::customer_id.eq(id));
    }
    if let Some(currency) = &filter.currency {
        query = query.filter(purchases::currency.eq(currency.clone()));
    }
    if let Some(channel) = filter.channel {
        query = query.filter(purchases::channel.eq(channel));
    }
    if let Some(t) = filter.occurred_after {
        query = query.filter(purchases::occurred_at.ge(t));
    }
    if let Some(t) = filter.occurred_before {
        query = query.filter(purchases::occurred_at.lt(t));
    }
    let descending = sort == PurchaseSort::OccurredAtDesc;
    if let Some((t, id)) = after {
        let cmp = if descending { "<" } else { ">" };
        query = query.filter(crate::db::after_key(
            "purchases.occurred_at",
            "purchases.id",
            cmp,
            t,
            id,
        ));
    }
    query = if descending {
        query.order((purchases::occurred_at.desc(), purchases::id.desc()))
    } else {
        query.order((purchases::occurred_at.asc(), purchases::id.asc()))
    };
    query
        .select(PurchaseRecord::as_select())
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// A customer's figures in one currency, straight from their purchases (served by
/// purchases_customer_idx; always current, nothing to keep in step).
#[derive(Debug, QueryableByName)]
pub struct ValueRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub currency: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub purchases: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sales: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub refunded: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    pub profit: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub with_cost: i64,
    #[diesel(sql_type = Timestamptz)]
    pub first_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    pub last_at: DateTime<Utc>,
}

pub async fn value(
    conn: &mut AsyncPgConnection,
    customer_ids: &[Uuid],
) -> QueryResult<Vec<ValueRow>> {
    diesel::sql_query(
        "SELECT currency, count(*) AS purchases,
                sum(amount - refunded)::bigint AS sales,
                sum(refunded)::bigint AS refunded,
                sum(amount - refunded - cost) FILTER (WHERE cost IS NOT NULL)::bigint AS profit,
                count(cost) AS with_cost,
                min(occurred_at) AS first_at, max(occurred_at) AS last_at
         FROM purchases WHERE customer_id = ANY($1)
         GROUP BY currency ORDER BY count(*) DESC, currency",
    )
    .bind::<diesel::sql_types::Array<SqlUuid>, _>(customer_ids.to_vec())
    .prepared()
    .load(conn)
    .await
}
