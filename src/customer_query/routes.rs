use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{CustomerSort, CustomersQuery, Include, ListOnly};
use super::store::CursorKey;
use crate::auth::{Principal, Scope};
use crate::customers::json::Customer;
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, ErrorCode, Problem};
use crate::http::idempotency::IDEMPOTENCY_KEY;
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query;
use crate::http::response;
use crate::loyalty::json::{BulkInput, BulkReport};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_customers)
        .service(get_customer)
        .service(bulk_points);
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
/// `attributes.*`, `q`, the score filters, `credit_grade`, `deleted=only`; by `updated_at` also
/// `updated_after`, `updated_before` or `created_after`). Otherwise `relationship_level`,
/// `region_type`, `source`, `prospect_grade`, `consent_email`, `consent_sms`, `has_email`,
/// `has_phone` and the other time bounds are refused with `400` naming the sorts that serve
/// them, rather than read row by row.
///
/// With owned-only access (`access: owned`), only the customers the caller manages are listed,
/// whatever the filters.
///
/// `include=organizations` with `q` also lists the organizations of the people found (see
/// `include`): searching a person's name finds where they work, each organization once, with
/// `matched_via` naming the person it was found through.
#[utoipa::path(
    tag = "Customers",
    params(
        CustomersQuery,
        ListOnly,
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
    let (list_only, rest) = split_list_only(req.query_string())?;
    let (query, attributes) = query::parse_with_prefixed::<CustomersQuery>(&rest, "attributes.")?;
    let (limit, cursor) = (query.limit, query.cursor.clone());
    let searched = query.q.is_some();
    let (filter, sort) = super::list_filter(&principal, query, attributes)?;
    if list_only.include == Some(Include::Organizations) {
        if !searched {
            return Err(query::invalid(
                "include",
                "`organizations` goes with `q`: it adds the organizations of the people a \
                 search finds",
            ));
        }
        if sort != CustomerSort::Relevance {
            return Err(query::invalid(
                "include",
                "`organizations` goes with `sort=relevance` (the default with `q`)",
            ));
        }
        let page = pagination::request::<super::include::HitKey>(
            limit,
            cursor.as_deref(),
            super::include::ORDER,
        )?;
        let rows = state
            .read(&req, async |conn| {
                super::include::list(conn, &principal, &filter, page.after, page.fetch()).await
            })
            .await?;
        let result = pagination::page_keyed(rows, &page, super::include::ORDER);
        return Ok(HttpResponse::Ok().json(result));
    }
    let page = pagination::request::<CursorKey>(limit, cursor.as_deref(), sort.as_str())?;
    let rows = state
        .read(&req, async |conn| {
            super::list(
                conn,
                &principal,
                &filter,
                sort,
                page.after.clone(),
                page.fetch(),
            )
            .await
        })
        .await?;
    let result = pagination::page_keyed(rows, &page, sort.as_str());
    Ok(HttpResponse::Ok().json(result))
}

/// Splits what only the list takes (`include`) off the query string, which the export and
/// bulk actions share: given once, with a known value.
fn split_list_only(query_string: &str) -> Result<(ListOnly, String), ApiError> {
    let mut mine = form_urlencoded::Serializer::new(String::new());
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(query_string.as_bytes()) {
        if name == "include" {
            mine.append_pair(&name, &value);
        } else {
            rest.append_pair(&name, &value);
        }
    }
    Ok((query::parse::<ListOnly>(&mine.finish())?, rest.finish()))
}

/// Get a customer.
///
/// Deleted customers are visible to callers with `customers:delete` only; the ID number is
/// masked unless the caller has `pii:read`. A customer merged into another (a tombstone)
/// answers `301` with the survivor in `Location` and `MergedCustomer` as the body.
#[utoipa::path(
    tag = "Customers",
    params(("id" = Uuid, Path, description = "Customer id")),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "The customer", body = Customer,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 301, description = "The customer was merged into another",
            body = crate::customers::json::MergedCustomer,
            headers(("Location" = String, description = "URL of the customer it was merged into"))),
    )
)]
#[get("/customers/{id}")]
async fn get_customer(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let mut conn = state.pool.get().await?;
    let outcome = super::get(&mut conn, &principal, *id).await;
    // Only a customer that is gone may be a tombstone: a live one costs no second look.
    if outcome.as_ref().map_or(true, |c| c.deleted_at.is_some())
        && let Some(moved) = crate::customers::merged_into(&mut conn, &principal, *id).await?
    {
        return Ok(response::moved(&moved.location, &moved));
    }
    let customer = outcome?;
    Ok(response::versioned(customer.version, &customer))
}

/// Award or take points for many customers.
///
/// The same points for each customer of `customer_ids` (up to 10 000) or of a `filter`
/// (a `GET /v1/customers` query string), with a reason on every entry; customers become
/// members as needed. All or nothing: taking points from a customer who holds too few is
/// a `409` naming them, and nothing is written. An `Idempotency-Key` is required, so that
/// a retried campaign never pays twice.
#[utoipa::path(
    tag = "Loyalty",
    operation_id = "bulk",
    request_body = BulkInput,
    security(("bearer" = ["loyalty:adjust"])),
    responses(
        (status = 200, description = "What was written", body = BulkReport),
        (status = 400, description = "No `Idempotency-Key`", body = Problem,
            content_type = PROBLEM),
        (status = 409, description = "Some customers hold too few points", body = Problem,
            content_type = PROBLEM),
    )
)]
#[post("/loyalty/points/bulk")]
async fn bulk_points(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    input: Json<BulkInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::LoyaltyAdjust)?;
    if !req.headers().contains_key(IDEMPOTENCY_KEY) {
        return Err(ApiError::new(
            ErrorCode::InvalidHeader,
            "send an Idempotency-Key header: a bulk award must never run twice",
        ));
    }
    let mut conn = state.pool.get().await?;
    let report = super::points::award(&mut conn, &principal, input.into_inner()).await?;
    Ok(HttpResponse::Ok().json(report))
}
