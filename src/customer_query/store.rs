//! The customer list's queries: every filter of `GET /v1/customers` (the customer's own
//! fields, `q`, the latest survey scores, the analytics figures) as one statement, in each of
//! its orders. Shared by the list, the export and bulk actions on what the list selects.

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::json::CustomerSort;
use super::search::{self, Boxed, BoxedCondition, Page, Row, Search};
use crate::customers::json::{
    BuyerType, CreditGrade, CustomerKind, DeletedFilter, LifecycleStage, OrganizationType,
    ProspectGrade, RegionType, RelationshipLevel,
};
use crate::customers::store::CustomerRecord;
use crate::db::schema::customers;
use crate::db::{MergedPages, Prepare};
use crate::domain::ChurnCause;

/// The position of the last row served, in the list's order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorKey {
    Time(DateTime<Utc>, Uuid),
    Distance(f32, Uuid),
    Text(String, Uuid),
}

/// A validated list request.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub kind: Option<CustomerKind>,
    pub lifecycle_stages: Vec<LifecycleStage>,
    pub relationship_level: Option<RelationshipLevel>,
    pub buyer_types: Vec<BuyerType>,
    pub organization_types: Vec<OrganizationType>,
    pub tags: Vec<String>,
    /// `Some(None)`: customers without an account manager.
    pub account_manager_id: Option<Option<Uuid>>,
    /// Owned-only access: only customers this user manages, whatever else is asked (set from
    /// the caller, never from the query).
    pub owner: Option<Uuid>,
    pub region_type: Option<RegionType>,
    pub source: Option<String>,
    pub prospect_grade: Option<ProspectGrade>,
    pub consent_email: Option<bool>,
    pub consent_sms: Option<bool>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    pub has_email: Option<bool>,
    pub has_phone: Option<bool>,
    /// Each entry: the attribute equals one of the values.
    pub attributes: Vec<Vec<Value>>,
    pub q: Option<Search>,
    /// The vocabulary words near `q`'s, read once for the request.
    pub near_words: search::NearWords,
    pub deleted: Option<DeletedFilter>,
    /// By the latest survey scores.
    pub satisfaction: crate::surveys::store::SatisfactionFilter,
    /// By the last analytics computation's figures.
    pub analytics: crate::analytics::store::Filter,
    /// Customers whose latest move into `dissolution` or `churned` had one of these codes.
    pub churn_reasons: Vec<ChurnCause>,
    /// Customers of one of these key-customer classes.
    pub key_classes: Vec<crate::customers::figures::KeyClass>,
    /// Customers with one of these credit grades.
    pub credit_grades: Vec<CreditGrade>,
}

impl ListFilter {
    /// Why no index serves this filter in `sort` order: the filters that have an index in
    /// creation order only. Listed by last change or by name, they would walk that order's
    /// index and test row after row (a rare value reads most of the table), so such a list is
    /// refused unless another filter leads to the page: a stage, an account manager, a kind
    /// (indexed in every order), tags, attributes, `q`, scores or deleted customers (each its
    /// own index: the planner reads the smaller side), or a time range in that order.
    ///
    /// One filter is refused in first-created order: `updated_after`. Recent changes are rare
    /// among the oldest customers, so that walk reads most of the table before it fills a
    /// page (12 s at a million customers), whichever other index leads it in that order.
    pub fn unserved_by(&self, sort: CustomerSort) -> Option<Unserved> {
        if matches!(sort, CustomerSort::CreatedAt) {
            return (self.updated_after.is_some() && !self.has_own_index()).then(|| Unserved {
                filters: vec!["updated_after"],
                instead: "sort by `-created_at`, `updated_at` or `-updated_at`",
            });
        }
        let by_update = matches!(sort, CustomerSort::UpdatedAt | CustomerSort::UpdatedAtDesc);
        let by_name = matches!(sort, CustomerSort::Name | CustomerSort::NameDesc);
        if !by_update && !by_name {
            return None;
        }
        let led = !self.lifecycle_stages.is_empty()
            || self.account_manager_id.is_some()
            || self.owner.is_some()
            || self.kind.is_some()
            || self.has_own_index()
            || (by_update
                && (self.updated_after.is_some()
                    || self.updated_before.is_some()
                    || self.created_after.is_some()));
        if led {
            return None;
        }
        let filters: Vec<&'static str> = [
            ("relationship_level", self.relationship_level.is_some()),
            ("buyer_type", !self.buyer_types.is_empty()),
            ("organization_type", !self.organization_types.is_empty()),
            ("region_type", self.region_type.is_some()),
            ("source", self.source.is_some()),
            ("prospect_grade", self.prospect_grade.is_some()),
            ("consent_email", self.consent_email.is_some()),
            ("consent_sms", self.consent_sms.is_some()),
            ("has_email", self.has_email.is_some()),
            ("has_phone", self.has_phone.is_some()),
            ("created_after", by_name && self.created_after.is_some()),
            ("created_before", self.created_before.is_some()),
            ("updated_after", by_name && self.updated_after.is_some()),
            ("updated_before", by_name && self.updated_before.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect();
        (!filters.is_empty()).then_some(Unserved {
            filters,
            instead: "sort by `created_at` or `-created_at`, or filter by `lifecycle_stage`, \
                      `account_manager_id` or `kind` too",
        })
    }

    /// Whether a filter with an index of its own (tags, attributes, `q`, scores, deleted
    /// customers) selects: the planner reads the smaller side, in any order.
    fn has_own_index(&self) -> bool {
        !self.tags.is_empty()
            || !self.attributes.is_empty()
            || self.q.is_some()
            || !self.satisfaction.is_empty()
            || !self.analytics.is_empty()
            || !self.churn_reasons.is_empty()
            || !self.key_classes.is_empty()
            || !self.credit_grades.is_empty()
            || self.deleted == Some(DeletedFilter::Only)
    }
}

/// Filters no index serves in a sort, and what serves them instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unserved {
    pub filters: Vec<&'static str>,
    pub instead: &'static str,
}

/// One listed row with the values its cursor is made of.
pub struct Listed {
    pub record: CustomerRecord,
    /// How far the row is from `q` (1 − word similarity); 0 without `q`.
    pub distance: f32,
    pub name_key: String,
}

impl Listed {
    pub fn cursor(&self, sort: CustomerSort) -> CursorKey {
        let id = self.record.id;
        match sort {
            CustomerSort::CreatedAt | CustomerSort::CreatedAtDesc => {
                CursorKey::Time(self.record.created_at, id)
            }
            CustomerSort::UpdatedAt | CustomerSort::UpdatedAtDesc => {
                CursorKey::Time(self.record.updated_at, id)
            }
            CustomerSort::Name | CustomerSort::NameDesc => {
                CursorKey::Text(self.name_key.clone(), id)
            }
            CustomerSort::Relevance => CursorKey::Distance(self.distance, id),
        }
    }
}

/// The customers every filter but `q` selects.
fn filtered(filter: &ListFilter) -> Boxed<'_> {
    filtered_in(filter, &filter.lifecycle_stages, false)
}

/// The customers every filter but `q` selects, in `stages` (any stage when empty) rather than
/// the filter's own; without the tag's condition when a [`TagLed`] page reads that tag's
/// rows (a single tag leads).
fn filtered_in<'a>(filter: &'a ListFilter, stages: &[LifecycleStage], tag_led: bool) -> Boxed<'a> {
    let mut query = customers::table.into_boxed();
    query = match filter.deleted.unwrap_or(DeletedFilter::Exclude) {
        DeletedFilter::Exclude => query.filter(customers::deleted_at.is_null()),
        DeletedFilter::Only => query.filter(customers::deleted_at.is_not_null()),
        DeletedFilter::Include => query,
    };
    if let Some(kind) = filter.kind {
        query = query.filter(customers::kind.eq(kind));
    }
    if !stages.is_empty() {
        query = crate::filter_one_of!(query, customers::lifecycle_stage, stages.to_vec());
    }
    if let Some(level) = filter.relationship_level {
        query = query.filter(customers::relationship_level.eq(level));
    }
    if !filter.buyer_types.is_empty() {
        query = crate::filter_one_of!(query, customers::buyer_type, filter.buyer_types.clone());
    }
    if !filter.organization_types.is_empty() {
        query = crate::filter_one_of!(
            query,
            customers::organization_type,
            filter.organization_types.clone()
        );
    }
    let tags = if tag_led {
        filter.tags.get(1..).unwrap_or_default()
    } else {
        filter.tags.as_slice()
    };
    if !tags.is_empty() {
        let tags: Vec<Option<String>> = tags.iter().cloned().map(Some).collect();
        query = query.filter(customers::tags.contains(tags));
    }
    if let Some(owner) = filter.owner {
        query = query.filter(customers::account_manager_id.eq(owner));
    }
    match filter.account_manager_id {
        Some(Some(id)) => query = query.filter(customers::account_manager_id.eq(id)),
        Some(None) => query = query.filter(customers::account_manager_id.is_null()),
        None => {}
    }
    if let Some(region) = filter.region_type {
        query = query.filter(customers::region_type.eq(region));
    }
    if let Some(source) = &filter.source {
        query = query.filter(customers::source.eq(source));
    }
    if let Some(grade) = filter.prospect_grade {
        query = query.filter(customers::prospect_grade.eq(grade));
    }
    if !filter.credit_grades.is_empty() {
        // Read from customers_credit_grade_idx (graded customers only).
        let grades: Vec<String> = filter
            .credit_grades
            .iter()
            .map(ToString::to_string)
            .collect();
        query = query.filter(customers::credit.retrieve_as_text("grade").eq_any(grades));
    }
    if let Some(consent) = filter.consent_email {
        query = query.filter(customers::consent_email.eq(consent));
    }
    if let Some(consent) = filter.consent_sms {
        query = query.filter(customers::consent_sms.eq(consent));
    }
    // updated_at >= created_at (a CHECK holds it), so each bound implies one on the other
    // time: the planner can then walk either index from the right place.
    if let Some(t) = filter.created_after {
        query = query.filter(customers::created_at.ge(t));
        query = query.filter(customers::updated_at.ge(t));
    }
    if let Some(t) = filter.created_before {
        query = query.filter(customers::created_at.lt(t));
    }
    if let Some(t) = filter.updated_after {
        query = query.filter(customers::updated_at.ge(t));
    }
    if let Some(t) = filter.updated_before {
        // The bound on updated_at is a subquery's: the planner, which takes the two bounds for
        // independent, would count a twentieth of the rows an old date selects and read them
        // all to sort them, rather than walk creation order from the date (at a million
        // customers, before 2024: 752 ms → 58 ms, both from a cold cache).
        query = query.filter(
            sql::<Bool>("customers.updated_at < (SELECT ")
                .bind::<Timestamptz, _>(t)
                .sql(")"),
        );
        query = query.filter(customers::created_at.lt(t));
    }
    match filter.has_email {
        Some(true) => query = query.filter(customers::email.is_not_null()),
        Some(false) => query = query.filter(customers::email.is_null()),
        None => {}
    }
    match filter.has_phone {
        Some(true) => query = query.filter(customers::phone.is_not_null()),
        Some(false) => query = query.filter(customers::phone.is_null()),
        None => {}
    }
    if filter.satisfaction.has_scores() {
        query = query.filter(customers::id.eq_any(filter.satisfaction.customer_ids()));
    }
    if let Some(ids) = filter.satisfaction.dissatisfied_ids() {
        query = query.filter(customers::id.eq_any(ids));
    }
    if !filter.analytics.is_empty() {
        query = query.filter(customers::id.eq_any(filter.analytics.customer_ids()));
    }
    if !filter.churn_reasons.is_empty() {
        query = query.filter(
            customers::id.eq_any(crate::customers::store::lost_with(&filter.churn_reasons)),
        );
    }
    if !filter.key_classes.is_empty() {
        query = query.filter(sql::<Bool>(&crate::analytics::store::key_class_condition(
            "customers.id",
            &filter.key_classes,
        )));
    }
    for alternatives in &filter.attributes {
        let mut any: Option<BoxedCondition> = None;
        for value in alternatives {
            let one = Box::new(customers::attributes.contains(value.clone()));
            any = Some(match any {
                None => one,
                Some(prev) => Box::new(prev.or(one)),
            });
        }
        if let Some(any) = any {
            query = query.filter(any);
        }
    }
    query
}

/// The customers a filter selects, `q` included as a condition (for lists in another order
/// than relevance, bulk actions and exports).
fn matching(filter: &ListFilter) -> Boxed<'_> {
    matching_in(filter, &filter.lifecycle_stages, false)
}

/// [`matching`], in `stages` rather than the filter's own (see [`filtered_in`]).
fn matching_in<'a>(filter: &'a ListFilter, stages: &[LifecycleStage], tag_led: bool) -> Boxed<'a> {
    let mut query = filtered_in(filter, stages, tag_led);
    match &filter.q {
        Some(Search::Words(words)) => {
            for word in words {
                query = query.filter(search::holds_a_word_near(word, words.len()));
            }
        }
        Some(other) => {
            if let Some((_, partial)) = search::exact_and_partial(other) {
                query = query.filter(partial);
            }
        }
        None => {}
    }
    query
}

/// The ids of the customers a filter selects, after `after` in id order, at most `limit`.
pub async fn ids_after(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    after: Uuid,
    limit: i64,
) -> QueryResult<Vec<Uuid>> {
    matching(filter)
        .filter(customers::id.gt(after))
        .order(customers::id.asc())
        .select(customers::id)
        .limit(limit)
        .prepared()
        .load(conn)
        .await
}

/// A page of customers in the requested order, after `after`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    sort: CustomerSort,
    after: Option<CursorKey>,
    fetch: i64,
) -> QueryResult<Vec<Listed>> {
    let rows = match (&filter.q, sort) {
        (Some(Search::Words(words)), CustomerSort::Relevance) => {
            let after = match after {
                None => None,
                Some(CursorKey::Distance(d, id)) => Some((d, id)),
                Some(_) => return Err(diesel::result::Error::NotFound),
            };
            search::by_words(
                conn,
                || filtered(filter),
                (words, &filter.near_words),
                after,
                fetch,
            )
            .await?
        }
        (Some(search), CustomerSort::Relevance) => {
            exact_first(conn, filter, search, after.as_ref(), fetch).await?
        }
        _ => load(conn, filter, sort, after, fetch).await?,
    };
    Ok(rows
        .into_iter()
        .map(|(record, distance, name_key)| Listed {
            record,
            distance,
            name_key,
        })
        .collect())
}

/// A phone or email search by relevance: exact matches first, then the others, each in id
/// order (distances 0 and 1).
async fn exact_first<'a>(
    conn: &mut AsyncPgConnection,
    filter: &'a ListFilter,
    search: &Search,
    after: Option<&CursorKey>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    let (among_exact, after_id) = exact_cursor(after);
    let page = |query: Boxed<'a>, distance: &'static str, after_id: Option<Uuid>, fetch: i64| {
        let query = match after_id {
            Some(id) => query.filter(customers::id.gt(id)),
            None => query,
        };
        query
            .order(customers::id.asc())
            .select(search::row_columns(distance))
            .limit(fetch)
            .prepared()
    };
    let mut rows: Vec<Row> = Vec::new();
    if among_exact && let Some((exact, _)) = search::exact_and_partial(search) {
        rows = page(filtered(filter).filter(exact), "0::real", after_id, fetch)
            .load(conn)
            .await?;
    }
    let left = fetch - i64::try_from(rows.len()).unwrap_or(fetch);
    if left > 0
        && let Some((exact, partial)) = search::exact_and_partial(search)
    {
        let others = filtered(filter)
            .filter(partial)
            .filter(diesel::dsl::not(exact));
        let after_id = if among_exact { None } else { after_id };
        rows.extend(page(others, "1::real", after_id, left).load(conn).await?);
    }
    Ok(rows)
}

/// A page in `sort` order (not relevance with `q`: [`list`] reads those).
async fn load(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    sort: CustomerSort,
    after: Option<CursorKey>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    let stages = &filter.lifecycle_stages;
    // One tag leads when the customers' own conditions are no better guide: not with `q`
    // (its own index), nor for deleted customers (`customer_tags` holds live ones), nor with
    // a lifecycle stage, whose index in the list's order leads instead: led by a common tag,
    // the page would test that tag's customers one by one for a rare stage
    // (`lifecycle_stage=stable&tags=newsletter` newest first at a million customers: p99
    // 190 ms led by the tag, 40-47 ms led by the stage). Several tags are an intersection in
    // the GIN index, which finds few customers to sort; led by one of them, the page would
    // test that tag's customers one by one for the others (`tags=vip,wholesale`: p99
    // 140-160 ms against 100-130).
    let tag = match filter.tags.as_slice() {
        [tag]
            if filter.q.is_none()
                && stages.is_empty()
                && filter.deleted.unwrap_or(DeletedFilter::Exclude) == DeletedFilter::Exclude =>
        {
            Some(tag)
        }
        _ => None,
    };
    let page = |stages: &[LifecycleStage]| -> QueryResult<PageQuery<'_>> {
        Ok(PageQuery(match (tag, tag_keys(sort)) {
            (Some(tag), Some(key)) => Box::new(TagLed {
                tag: tag.clone(),
                key,
                descending: is_descending(sort),
                after: after.clone(),
                customer: matching_in(filter, stages, true)
                    .filter(sql::<Bool>("customers.id = step.customer_id"))
                    .select(search::row_columns("0::real")),
                fetch,
            }),
            _ => Box::new(ordered_page(
                matching_in(filter, stages, false),
                sort,
                after.as_ref(),
                fetch,
            )?),
        }))
    };
    // Each stage leads an index in every order but relevance: several stages are read as one
    // index range each, merged (see `MergedPages`).
    if let (true, Some(order)) = (stages.len() > 1, merged_order(sort)) {
        let branches = stages
            .iter()
            .map(|stage| page(std::slice::from_ref(stage)))
            .collect::<QueryResult<Vec<_>>>()?;
        return MergedPages {
            branches,
            order,
            limit: fetch,
        }
        .prepared()
        .load(conn)
        .await;
    }
    page(stages)?.prepared().load(conn).await
}

/// `query`'s rows after `after` in `sort` order, at most `fetch`.
fn ordered_page<'a>(
    mut query: Boxed<'a>,
    sort: CustomerSort,
    after: Option<&CursorKey>,
    fetch: i64,
) -> QueryResult<Page<'a>> {
    let cmp = if is_descending(sort) { "<" } else { ">" };
    if let Some(after) = after {
        let keyset: BoxedCondition = match (sort, after) {
            (CustomerSort::CreatedAt | CustomerSort::CreatedAtDesc, CursorKey::Time(t, id)) => {
                crate::db::after_key("customers.created_at", "customers.id", cmp, *t, *id)
            }
            (CustomerSort::UpdatedAt | CustomerSort::UpdatedAtDesc, CursorKey::Time(t, id)) => {
                crate::db::after_key("customers.updated_at", "customers.id", cmp, *t, *id)
            }
            (CustomerSort::Name | CustomerSort::NameDesc, CursorKey::Text(name, id)) => Box::new(
                sql::<Bool>(&format!("(lower(customers.name), customers.id) {cmp} ("))
                    .bind::<Text, _>(name.clone())
                    .sql(", ")
                    .bind::<SqlUuid, _>(*id)
                    .sql(")"),
            ),
            _ => return Err(diesel::result::Error::NotFound),
        };
        query = query.filter(keyset);
    }
    query = match sort {
        CustomerSort::CreatedAt => query.order((customers::created_at.asc(), customers::id.asc())),
        CustomerSort::CreatedAtDesc => {
            query.order((customers::created_at.desc(), customers::id.desc()))
        }
        CustomerSort::UpdatedAt => query.order((customers::updated_at.asc(), customers::id.asc())),
        CustomerSort::UpdatedAtDesc => {
            query.order((customers::updated_at.desc(), customers::id.desc()))
        }
        CustomerSort::Name => query
            .order(sql::<Text>("lower(customers.name)").asc())
            .then_order_by(customers::id.asc()),
        CustomerSort::NameDesc => query
            .order(sql::<Text>("lower(customers.name)").desc())
            .then_order_by(customers::id.desc()),
        // Relevance goes with `q` (list() reads it); alone it would be id order.
        CustomerSort::Relevance => query.order(customers::id.asc()),
    };
    Ok(query.select(search::row_columns("0::real")).limit(fetch))
}

fn is_descending(sort: CustomerSort) -> bool {
    matches!(
        sort,
        CustomerSort::CreatedAtDesc | CustomerSort::UpdatedAtDesc | CustomerSort::NameDesc
    )
}

/// The column of `customer_tags` that holds the customer's key in `sort` (with the customer's
/// id after it); none for relevance (id order without `q`).
fn tag_keys(sort: CustomerSort) -> Option<&'static str> {
    Some(match sort {
        CustomerSort::CreatedAt | CustomerSort::CreatedAtDesc => "created_at",
        CustomerSort::UpdatedAt | CustomerSort::UpdatedAtDesc => "updated_at",
        CustomerSort::Name | CustomerSort::NameDesc => "name_key",
        CustomerSort::Relevance => return None,
    })
}

/// A page's statement, whichever way it reads (boxed: the ways differ in type).
struct PageQuery<'a>(Box<dyn QueryFragment<Pg> + Send + 'a>);

impl QueryFragment<Pg> for PageQuery<'_> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }
}

impl QueryId for PageQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for PageQuery<'_> {
    type SqlType = diesel::dsl::SqlTypeOf<search::RowColumns>;
}

/// A page led by a tag: `SELECT page.* FROM (<the tag's rows of customer_tags after the
/// cursor, in the list's order>) AS step CROSS JOIN LATERAL (<the customer of the row, if
/// every other filter keeps it>) AS page ORDER BY <step's order> LIMIT <fetch>`.
///
/// The GIN index on `customers.tags` finds a tag's customers in no order, so a page of
/// `tags=vip` newest first read and sorted every one of them. The tag's rows hold the
/// customer's keys in each order, so the page walks them in order and reads each customer by
/// id until the page is full. Written out, because the planner, asked to join the tag's rows
/// on both the key and the id, takes the two conditions for independent and expects one row.
struct TagLed<'a> {
    tag: String,
    /// The `customer_tags` column of the list's key.
    key: &'static str,
    descending: bool,
    after: Option<CursorKey>,
    /// The filter's query for the customer of `step.customer_id`, its page columns selected.
    customer: Page<'a>,
    fetch: i64,
}

impl QueryFragment<Pg> for TagLed<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let (cmp, direction) = if self.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        out.push_sql("SELECT page.* FROM (SELECT t.");
        out.push_sql(self.key);
        out.push_sql(" AS key, t.customer_id FROM customer_tags t WHERE t.tag = ");
        out.push_bind_param::<Text, _>(&self.tag)?;
        match &self.after {
            None => {}
            Some(CursorKey::Time(at, id)) => {
                out.push_sql(&format!(" AND (t.{}, t.customer_id) {cmp} (", self.key));
                out.push_bind_param::<Timestamptz, _>(at)?;
                out.push_sql(", ");
                out.push_bind_param::<SqlUuid, _>(id)?;
                out.push_sql(")");
            }
            Some(CursorKey::Text(name, id)) => {
                out.push_sql(&format!(" AND (t.{}, t.customer_id) {cmp} (", self.key));
                out.push_bind_param::<Text, _>(name)?;
                out.push_sql(", ");
                out.push_bind_param::<SqlUuid, _>(id)?;
                out.push_sql(")");
            }
            Some(CursorKey::Distance(..)) => return Err(diesel::result::Error::NotFound),
        }
        out.push_sql(&format!(
            " ORDER BY t.{key} {direction}, t.customer_id {direction}) AS step \
             CROSS JOIN LATERAL (",
            key = self.key
        ));
        QueryFragment::<Pg>::walk_ast(&self.customer, out.reborrow())?;
        out.push_sql(&format!(
            ") AS page ORDER BY step.key {direction}, step.customer_id {direction} LIMIT "
        ));
        out.push_bind_param::<BigInt, _>(&self.fetch)?;
        Ok(())
    }
}

/// The order of `sort` over merged pages' output columns; none for relevance (id order
/// without `q`), which no stage's index serves.
fn merged_order(sort: CustomerSort) -> Option<&'static str> {
    Some(match sort {
        CustomerSort::CreatedAt => "created_at, id",
        CustomerSort::CreatedAtDesc => "created_at DESC, id DESC",
        CustomerSort::UpdatedAt => "updated_at, id",
        CustomerSort::UpdatedAtDesc => "updated_at DESC, id DESC",
        CustomerSort::Name => "name_key, id",
        CustomerSort::NameDesc => "name_key DESC, id DESC",
        CustomerSort::Relevance => return None,
    })
}

/// Where a cursor of a phone or email search stands: among the exact matches (distance 0),
/// or among the others (1).
fn exact_cursor(after: Option<&CursorKey>) -> (bool, Option<Uuid>) {
    match after {
        None => (true, None),
        Some(CursorKey::Distance(d, id)) if *d < 0.5 => (true, Some(*id)),
        Some(CursorKey::Distance(_, id)) => (false, Some(*id)),
        Some(_) => (false, None),
    }
}

/// Which of `ids` the filter's search finds, with each one's distance as the relevance order
/// ranks it (every other filter applied too): the rank of the people through whom
/// `include=organizations` finds an organization. Empty without `q`.
pub async fn distances_of(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, f32)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    match &filter.q {
        None => Ok(Vec::new()),
        Some(Search::Words(words)) => {
            search::distances_by_words(conn, filtered(filter), (words, &filter.near_words), ids)
                .await
        }
        Some(other) => {
            let Some((exact, partial)) = search::exact_and_partial(other) else {
                return Ok(Vec::new());
            };
            let found: Vec<(Uuid, bool)> = filtered(filter)
                .filter(customers::id.eq_any(ids.to_vec()))
                .filter(partial)
                .select((customers::id, exact))
                .load(conn)
                .await?;
            // As `exact_first` ranks them: exact matches 0, the others 1.
            Ok(found
                .into_iter()
                .map(|(id, exact)| (id, if exact { 0.0 } else { 1.0 }))
                .collect())
        }
    }
}
