use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use chrono::Utc;
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{
    BatchAction, BatchRequest, BatchResponse, BatchResult, Customer, CustomerExport, CustomerInput,
    CustomerSort, CustomersQuery, DeletedFilter, LifecycleChange, LifecycleHistory, LifecycleStage,
};
use super::rules::{clean_tags, valid_attribute_key};
use super::store::{self, CursorKey, ListFilter};
use super::visible;
use crate::audit;
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::{self as body, Json};
use crate::http::pagination::{self, Page};
use crate::http::query::{self, bounds, comma_list, invalid};
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_customer)
        .service(batch_customers)
        .service(list_customers)
        .service(get_customer_by_external_id)
        .service(upsert_customer_by_external_id)
        .service(get_customer)
        .service(update_customer)
        .service(delete_customer)
        .service(restore_customer)
        .service(customer_lifecycle)
        .service(export_customer)
        .service(erase_customer);
}

const PROBLEM: &str = "application/problem+json";

fn show(principal: &Principal, record: store::CustomerRecord) -> Customer {
    super::view(record, principal.can(Scope::PiiRead))
}

fn location(id: Uuid) -> String {
    format!("/v1/customers/{id}")
}

/// Create a customer.
///
/// `name` is required; everything else is optional (see `CustomerInput`). The email and
/// external id must not be in use by another customer (`409` naming the field). The first
/// lifecycle stage is recorded in the history, with `lifecycle_reason` if given.
///
/// With owned-only access (`access: owned`) the caller becomes the account manager; naming
/// anyone else is `403` (they would lose the customer).
#[utoipa::path(
    tag = "Customers",
    request_body = CustomerInput,
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 201, description = "The new customer", body = Customer,
            headers(("Location" = String, description = "URL of the new customer"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 409, description = "The email or external id is in use (`errors` names it)",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers")]
async fn create_customer(
    state: web::Data<AppState>,
    principal: Principal,
    input: Json<CustomerInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let record = super::create(
        &mut conn,
        &principal.actor,
        principal.access,
        input.into_inner(),
    )
    .await?;
    let customer = show(&principal, record);
    Ok(response::created(
        &location(customer.id),
        customer.version,
        &customer,
    ))
}

/// Create or upsert up to 100 customers.
///
/// Each item is applied on its own, as `POST /v1/customers` (`create`) or
/// `PUT /v1/customers/by-external-id/{external_id}` (`upsert`, with the item's `external_id`)
/// would: valid items are applied even when others fail. The answer lists, in request order,
/// each item's status and the customer or the problem. Send an `Idempotency-Key` to make a
/// retry of the whole batch safe.
///
/// With owned-only access each item follows the single endpoints' rules: another's customer is
/// a `409` on `external_id`, naming another account manager a `403`.
#[utoipa::path(
    tag = "Customers",
    request_body = BatchRequest,
    security(("bearer" = ["customers:write"])),
    responses((status = 200, description = "Per-item outcomes", body = BatchResponse))
)]
#[post("/customers/batch")]
async fn batch_customers(
    state: web::Data<AppState>,
    principal: Principal,
    batch: Json<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let items = batch.into_inner().items;
    if items.is_empty() || items.len() > 100 {
        return Err(ApiError::invalid_field("items", "must hold 1 to 100 items"));
    }
    let mut conn = state.pool.get().await?;
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let outcome = batch_item(&mut conn, &principal, item.action, item.customer).await;
        results.push(match outcome {
            Ok((record, created)) => BatchResult {
                index,
                status: if created { 201 } else { 200 },
                customer: Some(show(&principal, record)),
                problem: None,
            },
            Err(err) => BatchResult {
                index,
                status: err.code().status().as_u16(),
                customer: None,
                problem: Some(err.problem()),
            },
        });
    }
    Ok(HttpResponse::Ok().json(BatchResponse { results }))
}

async fn batch_item(
    conn: &mut crate::db::DbConn,
    principal: &Principal,
    action: BatchAction,
    customer: Value,
) -> Result<(store::CustomerRecord, bool), ApiError> {
    let bytes = serde_json::to_vec(&customer).map_err(ApiError::internal)?;
    let input: CustomerInput = body::parse(&bytes)?;
    match action {
        BatchAction::Create => super::create(conn, &principal.actor, principal.access, input)
            .await
            .map(|record| (record, true)),
        BatchAction::Upsert => {
            let external_id = match &input.external_id {
                crate::http::patch::Patch::Value(id) => id.clone(),
                _ => {
                    return Err(ApiError::invalid_field(
                        "external_id",
                        "is required to upsert",
                    ));
                }
            };
            super::upsert(
                conn,
                &principal.actor,
                principal.access,
                &external_id,
                &IfMatch::Absent,
                input,
            )
            .await
        }
    }
}

/// The filter and order a `GET /v1/customers` query asks for, checked: shared by the list,
/// bulk actions on what it lists, and the export.
pub(crate) fn list_filter(
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
        .map(|q| store::Search::parse(q).map_err(|e| invalid("q", e)))
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
        },
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

/// List customers.
///
/// Filters combine with AND; `q` searches names, organization names and the email's local
/// part word by word, tolerating typos and taking the beginning of a word (as one types); a
/// number of four digits or more searches phones, anything with `@` emails, an exact phone or
/// email first. Custom attributes filter as `attributes.<key>=<value>`. Deleted customers are
/// listed only on request, to managers.
///
/// Every filter in every sort is read from an index. Newest first (the default) every filter
/// is served; oldest first (`sort=created_at`) every filter but `updated_after`, unless one
/// with its own index leads (below). By `updated_at` or `name`, a list must also be led by a filter indexed in that
/// order: `lifecycle_stage`, `account_manager_id` or `kind`, or one with its own index (`tags`,
/// `attributes.*`, `q`, the score filters, `deleted=only`; by `updated_at` also
/// `updated_after`, `updated_before` or `created_after`). Otherwise `relationship_level`,
/// `region_type`, `source`, `prospect_grade`, `consent_email`, `consent_sms`, `has_email`,
/// `has_phone` and the other time bounds are refused with `400` naming the sorts that serve
/// them, rather than read row by row.
///
/// With owned-only access (`access: owned`), only the customers the caller manages are listed,
/// whatever the filters.
#[utoipa::path(
    tag = "Customers",
    params(
        CustomersQuery,
        ("attributes.{key}" = Option<String>, Query,
            description = "Custom attribute `key` equals this value (a string; a number or \
                           boolean written as JSON also matches that JSON value)",
            example = "gold"),
    ),
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "A page of customers", body = Page<Customer>))
)]
#[get("/customers")]
async fn list_customers(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let (query, attributes) =
        query::parse_with_prefixed::<CustomersQuery>(req.query_string(), "attributes.")?;
    let (limit, cursor) = (query.limit, query.cursor.clone());
    let (filter, sort) = list_filter(&principal, query, attributes)?;
    let page = pagination::request::<CursorKey>(limit, cursor.as_deref(), sort.as_str())?;
    let mut conn = state.pool.get().await?;
    let rows = store::list(&mut conn, &filter, sort, page.after.clone(), page.fetch())
        .await
        .map_err(|err| match err {
            diesel::result::Error::NotFound => invalid("cursor", "does not fit this sort order"),
            other => ApiError::from(other),
        })?;
    let (mut customers, keys): (Vec<Customer>, Vec<CursorKey>) = rows
        .into_iter()
        .map(|row| {
            let key = row.cursor(sort);
            (show(&principal, row.record), key)
        })
        .unzip();
    with_analytics(&mut conn, &principal, &mut customers).await?;
    let rows: Vec<(Customer, CursorKey)> = customers.into_iter().zip(keys).collect();
    let result = pagination::page_keyed(rows, &page, sort.as_str());
    Ok(HttpResponse::Ok().json(result))
}

/// Get a customer.
///
/// Deleted customers are visible to callers with `customers:delete` only; the ID number is
/// masked unless the caller has `pii:read`.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "The customer", body = Customer,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/customers/{id}")]
async fn get_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let mut conn = state.pool.get().await?;
    let customer = if principal.can(Scope::AnalyticsRead) {
        let (record, analytics) = crate::analytics::customer_with_figures(&mut conn, *id)
            .await?
            .unzip();
        Customer {
            analytics: analytics.flatten(),
            ..show(&principal, visible(&principal, record)?)
        }
    } else {
        show(
            &principal,
            visible(&principal, store::get(&mut conn, *id).await?)?,
        )
    };
    Ok(response::versioned(customer.version, &customer))
}

/// Adds the analytics to customers read by a caller who may see them (one query).
async fn with_analytics(
    conn: &mut diesel_async::AsyncPgConnection,
    principal: &Principal,
    customers: &mut [Customer],
) -> Result<(), ApiError> {
    if !principal.can(Scope::AnalyticsRead) {
        return Ok(());
    }
    let ids: Vec<Uuid> = customers.iter().map(|c| c.id).collect();
    let mut found = crate::analytics::for_customers(conn, &ids).await?;
    for customer in customers {
        customer.analytics = found.remove(&customer.id);
    }
    Ok(())
}

/// Get a customer by the integration's external id.
#[utoipa::path(
    tag = "Customers",
    params(("external_id" = String, Path, description = "The integration's id for the customer",
        example = "shop-000123")),
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "The customer", body = Customer,
        headers(("ETag" = String, description = "Version tag for `If-Match`"))))
)]
#[get("/customers/by-external-id/{external_id}")]
async fn get_customer_by_external_id(
    state: web::Data<AppState>,
    principal: Principal,
    external_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let mut conn = state.pool.get().await?;
    let record = visible(
        &principal,
        store::get_by_external_id(&mut conn, &external_id, false).await?,
    )?;
    let customer = show(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}

/// Create or update a customer by the integration's external id.
///
/// For integrations that keep their own ids: `201` when the customer is created, `200` when
/// it is updated. On update the body is a merge patch: fields absent stay as they are (so an
/// integration never wipes what staff entered). `If-Match` guards the update. A deleted
/// customer is `409` until restored.
///
/// With owned-only access, an external id of a customer the caller does not manage is `409` on
/// `external_id`, as creating it would be (uniqueness cannot be hidden); naming another
/// account manager is `403`.
#[utoipa::path(
    tag = "Customers",
    params(("external_id" = String, Path, description = "The integration's id for the customer",
        example = "shop-000123"),
        IfMatchHeader),
    request_body = CustomerInput,
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 200, description = "The updated customer", body = Customer,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 201, description = "The new customer", body = Customer,
            headers(("Location" = String, description = "URL of the new customer"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 409, description = "The email is in use, or the customer is deleted",
            body = Problem, content_type = PROBLEM),
    )
)]
#[put("/customers/by-external-id/{external_id}")]
async fn upsert_customer_by_external_id(
    state: web::Data<AppState>,
    principal: Principal,
    external_id: web::Path<String>,
    if_match: IfMatch,
    input: Json<CustomerInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let (record, created) = super::upsert(
        &mut conn,
        &principal.actor,
        principal.access,
        &external_id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    let customer = show(&principal, record);
    Ok(if created {
        response::created(&location(customer.id), customer.version, &customer)
    } else {
        response::versioned(customer.version, &customer)
    })
}

/// Update a customer.
///
/// A JSON merge patch (RFC 7396): absent fields stay, `null` clears, nested objects merge.
/// Send `If-Match` with the `ETag` you read to be sure nobody changed the customer since.
/// A change of `lifecycle_stage` is recorded in the history with `lifecycle_reason`.
///
/// With owned-only access, a customer the caller does not manage is `404`, and changing
/// `account_manager_id` away from the caller is `403`.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    request_body(content = CustomerInput, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 200, description = "The updated customer", body = Customer,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 409, description = "The email or external id is in use",
            body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/customers/{id}")]
async fn update_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    input: Json<CustomerInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    let record = super::update(
        &mut conn,
        &principal.actor,
        principal.access,
        *id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    let customer = show(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}

/// Delete a customer.
///
/// A soft delete: the customer leaves every list and lookup but can be restored by a
/// manager. Its interactions leave the interaction, complaint and follow-up lists and the
/// statistics with it, and come back when it is restored. Deleting a deleted customer
/// changes nothing.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    security(("bearer" = ["customers:delete"])),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/customers/{id}")]
async fn delete_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersDelete)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    super::delete(&mut conn, &principal.actor, *id, &if_match).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Restore a deleted customer.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    security(("bearer" = ["customers:delete"])),
    responses(
        (status = 200, description = "The restored customer", body = Customer),
        (status = 409, description = "The customer was erased", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/restore")]
async fn restore_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersDelete)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let record = super::restore(&mut conn, &principal.actor, *id, &if_match).await?;
    let customer = show(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}

/// The lifecycle history of a customer.
///
/// Every change of stage, oldest first: from, to, when, who, and why.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = ["customers:read"])),
    responses((status = 200, description = "The history", body = LifecycleHistory))
)]
#[get("/customers/{id}/lifecycle")]
async fn customer_lifecycle(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let mut conn = state.pool.get().await?;
    visible(&principal, store::get(&mut conn, *id).await?)?;
    let data = lifecycle(&mut conn, *id).await?;
    Ok(HttpResponse::Ok().json(LifecycleHistory { data }))
}

async fn lifecycle(
    conn: &mut crate::db::DbConn,
    id: Uuid,
) -> Result<Vec<LifecycleChange>, ApiError> {
    Ok(store::lifecycle(conn, id)
        .await?
        .into_iter()
        .map(super::lifecycle_change)
        .collect())
}

/// Export everything held on a customer.
///
/// The data-subject access document: the record unmasked, its lifecycle history, every
/// interaction and purchase, the loyalty points ledger and tier history, every survey
/// response and sales opportunity, and the audit trail
/// of its changes, as one JSON document. Needs `pii:read`.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = ["pii:read"])),
    responses((status = 200, description = "Everything held on the customer", body = CustomerExport))
)]
#[get("/customers/{id}/export")]
async fn export_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    principal.require(Scope::PiiRead)?;
    let mut conn = state.pool.get().await?;
    let record = store::get(&mut conn, *id)
        .await?
        .filter(|r| principal.access.allows(r.draft.account_manager_id))
        .ok_or_else(|| ApiError::not_found("customer"))?;
    let export = CustomerExport {
        exported_at: Utc::now(),
        customer: super::view(record, true),
        lifecycle: lifecycle(&mut conn, *id).await?,
        interactions: crate::interactions::store::of_customer(&mut conn, *id)
            .await?
            .into_iter()
            .map(|r| crate::interactions::view(r, Utc::now()))
            .collect(),
        purchases: crate::purchases::store::of_customer(&mut conn, *id)
            .await?
            .into_iter()
            .map(crate::purchases::view)
            .collect(),
        points: crate::loyalty::ledger::of_customer(&mut conn, *id)
            .await?
            .into_iter()
            .map(crate::loyalty::members::entry_view)
            .collect(),
        tier_history: crate::loyalty::evaluation::history(&mut conn, *id)
            .await?
            .into_iter()
            .map(crate::loyalty::members::change_view)
            .collect(),
        survey_responses: crate::surveys::store::responses_of_customer(&mut conn, *id)
            .await?
            .into_iter()
            .map(crate::surveys::response_view)
            .collect(),
        opportunities: crate::pipeline::store::of_customer(&mut conn, *id)
            .await?
            .into_iter()
            .map(crate::pipeline::view)
            .collect(),
        audit: audit::trail(&mut conn, "customer", &id.to_string()).await?,
    };
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(export))
}

/// Erase a customer's personal data.
///
/// Irreversible: the record stays as an anonymous shell (so that aggregates stay true),
/// personal data and free text about the person are removed, past audit entries keep who
/// changed the record and when but no longer what, and the erasure itself is audited.
/// Admins only. Erasing an erased customer changes nothing.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id"), IfMatchHeader),
    security(("bearer" = ["customers:erase"])),
    responses((status = 200, description = "The anonymous shell", body = Customer))
)]
#[post("/customers/{id}/erase")]
async fn erase_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersErase)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let record = super::erase(&mut conn, &principal.actor, *id, &if_match).await?;
    let customer = show(&principal, record);
    Ok(response::versioned(customer.version, &customer))
}
