//! The customer query: `GET /v1/customers` and `GET /v1/customers/{id}` as they read every
//! area (the latest survey scores, the analytics figures), the list's filters and `q`. The
//! customers export and bulk points (`points.rs`, `POST /v1/loyalty/points/bulk`) select
//! customers with the same filter. It may read any
//! area; customers, below every area that locks a customer, reads none of them.

mod include;
pub mod json;
mod points;
mod routes;
mod search;
pub mod store;

use diesel_async::AsyncPgConnection;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::{Principal, Scope};
use crate::customers::json::{Customer, DeletedFilter, LifecycleStage};
use crate::customers::rules::{clean_tags, valid_attribute_key};
use crate::customers::{view_for, visible};
use crate::http::error::ApiError;
use crate::http::query::{self, bounds, comma_list, invalid};
use json::{CustomerSort, CustomersQuery};
use search::Search;
use store::{CursorKey, ListFilter};

pub use routes::configure;
pub use search::forget_unused_words;

/// The filter and order a `GET /v1/customers` query asks for, checked: shared by the list,
/// bulk actions on what it lists, and the export.
pub fn list_filter(
    principal: &Principal,
    query: CustomersQuery,
    attributes: Vec<(String, String)>,
) -> Result<(ListFilter, CustomerSort), ApiError> {
    let lifecycle_stages: Vec<LifecycleStage> =
        query::comma_list("lifecycle_stage", query.lifecycle_stage.as_deref())?;
    let tags = match &query.tags {
        None => Vec::new(),
        Some(list) => clean_tags(list.split(',').map(str::to_owned).collect())
            .map_err(|e| invalid("tags", e))?,
    };
    let account_manager_id = match query.account_manager_id.as_deref() {
        None => None,
        Some("none") => Some(None),
        Some(id) => Some(Some(Uuid::parse_str(id).map_err(|_| {
            invalid("account_manager_id", "must be a user id or `none`")
        })?)),
    };
    let q = query::search_text("q", query.q.as_deref(), 200)?
        .map(|q| Search::parse(q).map_err(|e| invalid("q", e)))
        .transpose()?;
    let mut attribute_filters = Vec::with_capacity(attributes.len());
    for (key, value) in attributes {
        if !valid_attribute_key(&key) {
            return Err(invalid(
                &format!("attributes.{key}"),
                "names no valid attribute key (letters, digits, `_` or `-`)",
            ));
        }
        let mut alternatives = vec![serde_json::json!({ key.clone(): value.clone() })];
        if let Ok(typed @ (Value::Number(_) | Value::Bool(_))) =
            serde_json::from_str::<Value>(&value)
        {
            alternatives.push(serde_json::json!({ key: typed }));
        }
        attribute_filters.push(alternatives);
    }
    let deleted = DeletedFilter::checked(
        query.deleted,
        principal,
        Scope::CustomersDelete,
        "customers",
    )?;
    let sort = match (query.sort, &q) {
        (Some(CustomerSort::Relevance), None) => {
            return Err(invalid("sort", "`relevance` goes with `q`"));
        }
        (Some(sort), _) => sort,
        (None, Some(_)) => CustomerSort::Relevance,
        (None, None) => CustomerSort::CreatedAtDesc,
    };
    let filter = ListFilter {
        kind: query.kind,
        lifecycle_stages,
        relationship_level: query.relationship_level,
        buyer_types: comma_list("buyer_type", query.buyer_type.as_deref())?,
        organization_types: comma_list("organization_type", query.organization_type.as_deref())?,
        tags,
        account_manager_id,
        owner: principal.access.owner(),
        region_type: query.region_type,
        source: query.source,
        prospect_grade: query.prospect_grade,
        consent_email: query.consent_email,
        consent_sms: query.consent_sms,
        created_after: query.created_after,
        created_before: query.created_before,
        updated_after: query.updated_after,
        updated_before: query.updated_before,
        has_email: query.has_email,
        has_phone: query.has_phone,
        attributes: attribute_filters,
        q,
        near_words: Default::default(),
        deleted: Some(deleted),
        satisfaction: crate::surveys::store::SatisfactionFilter {
            nps: bounds(
                "latest_nps",
                query.latest_nps_min,
                query.latest_nps_max,
                (0, 10),
            )?,
            csat: bounds(
                "latest_csat",
                query.latest_csat_min,
                query.latest_csat_max,
                (1, 5),
            )?,
            nps_categories: comma_list("nps_category", query.nps_category.as_deref())?,
            dissatisfied_with: match query.dissatisfied_with {
                Some(key) if !crate::surveys::rules::valid_key(&key) => {
                    return Err(invalid(
                        "dissatisfied_with",
                        "must be a question key: 1 to 40 lower case letters, digits or `_`, \
                         starting with a letter",
                    ));
                }
                key => key,
            },
        },
        churn_reasons: comma_list("churn_reason", query.churn_reason.as_deref())?,
        key_classes: comma_list("key_class", query.key_class.as_deref())?,
        credit_grades: comma_list("credit_grade", query.credit_grade.as_deref())?,
        analytics: crate::analytics::store::Filter {
            value_tiers: comma_list("value_tier", query.value_tier.as_deref())?,
            value_classes: comma_list("value_class", query.value_class.as_deref())?,
            recency: scores("rfm_recency", query.rfm_recency.as_deref())?,
            frequency: scores("rfm_frequency", query.rfm_frequency.as_deref())?,
            monetary: scores("rfm_monetary", query.rfm_monetary.as_deref())?,
            churn_score_min: match query.churn_score_min {
                Some(min) if !(0..=100).contains(&min) => {
                    return Err(invalid("churn_score_min", "must be from 0 to 100"));
                }
                min => min,
            },
            below_recommended: match query.relationship_below_recommended {
                Some(false) => {
                    return Err(invalid(
                        "relationship_below_recommended",
                        "takes only `true` (leave it out to list every customer)",
                    ));
                }
                given => given == Some(true),
            },
            loyalty_quadrants: comma_list("loyalty_quadrant", query.loyalty_quadrant.as_deref())?,
        },
    };
    if let Some(unserved) = filter.unserved_by(sort) {
        return Err(invalid(
            "sort",
            format!(
                "`{}` is not served with {} (no index in that order): {}",
                sort.as_str(),
                unserved.filters.join(", "),
                unserved.instead
            ),
        ));
    }
    Ok((filter, sort))
}

/// RFM scores separated by commas, each 1 to 5.
fn scores(field: &str, raw: Option<&str>) -> Result<Vec<i16>, ApiError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(|s| match s.trim().parse::<i16>() {
            Ok(score) if (1..=5).contains(&score) => Ok(score),
            _ => Err(invalid(
                field,
                "must be scores from 1 to 5, separated by commas",
            )),
        })
        .collect()
}

/// The filter of a `GET /v1/customers` query string, for acting on the customers it lists
/// (a bulk award): live customers only, no paging or sort. Errors name `{field}.<param>`.
pub fn filter_from_query(
    principal: &Principal,
    field: &str,
    query_string: &str,
) -> Result<ListFilter, ApiError> {
    let prefixed = |err: ApiError| {
        if err.errors().is_empty() {
            return ApiError::invalid_field(field, err.problem().detail.unwrap_or_default());
        }
        let errors = err
            .errors()
            .iter()
            .map(|e| {
                crate::http::error::FieldError::new(format!("{field}.{}", e.field), &e.message)
            })
            .collect();
        ApiError::validation(errors)
    };
    let (query, attributes) =
        query::parse_with_prefixed::<CustomersQuery>(query_string, "attributes.")
            .map_err(prefixed)?;
    for (name, given) in [
        ("limit", query.limit.is_some()),
        ("cursor", query.cursor.is_some()),
        ("sort", query.sort.is_some()),
        ("deleted", query.deleted.is_some()),
    ] {
        if given {
            return Err(ApiError::invalid_field(
                &format!("{field}.{name}"),
                "does not apply here: the filter selects live customers",
            ));
        }
    }
    let (filter, _) = list_filter(principal, query, attributes).map_err(prefixed)?;
    Ok(filter)
}

/// A page of customers as `principal` may see them, each with its cursor key, after `after`
/// in `sort` order; with their figures for a caller with `analytics:read`.
pub async fn list(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    filter: &ListFilter,
    sort: CustomerSort,
    after: Option<CursorKey>,
    fetch: i64,
) -> Result<Vec<(Customer, CursorKey)>, ApiError> {
    let rows = store::list(conn, filter, sort, after, fetch)
        .await
        .map_err(|err| match err {
            diesel::result::Error::NotFound => invalid("cursor", "does not fit this sort order"),
            other => ApiError::from(other),
        })?;
    let (mut customers, keys): (Vec<Customer>, Vec<CursorKey>) = rows
        .into_iter()
        .map(|row| {
            let key = row.cursor(sort);
            (view_for(principal, row.record), key)
        })
        .unzip();
    with_analytics(conn, principal, &mut customers).await?;
    Ok(customers.into_iter().zip(keys).collect())
}

/// A customer as `principal` may see it (`404` otherwise), with its figures for a caller
/// with `analytics:read`.
pub async fn get(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    id: Uuid,
) -> Result<Customer, ApiError> {
    if principal.can(Scope::AnalyticsRead) {
        let (record, analytics) = crate::analytics::customer_with_figures(conn, id)
            .await?
            .unzip();
        Ok(Customer {
            analytics: analytics.flatten(),
            ..view_for(principal, visible(principal, record)?)
        })
    } else {
        let record = crate::customers::store::get(conn, id).await?;
        Ok(view_for(principal, visible(principal, record)?))
    }
}

/// Adds the analytics to customers read by a caller who may see them (one query).
async fn with_analytics(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    customers: &mut [Customer],
) -> Result<(), ApiError> {
    if !principal.can(Scope::AnalyticsRead) {
        return Ok(());
    }
    // Their credit grades are on the page already: the figures are read alone.
    let read: Vec<_> = customers
        .iter()
        .map(|c| (c.id, c.credit.as_ref().map(|credit| credit.grade)))
        .collect();
    let mut found = crate::analytics::for_customers(conn, &read).await?;
    for customer in customers {
        customer.analytics = found.remove(&customer.id);
    }
    Ok(())
}
