use actix_web::{HttpRequest, HttpResponse, get, web};
use chrono::{DateTime, Utc};
use diesel::QueryResult;
use diesel_async::AsyncPgConnection;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::{Filters, Format, Source, refuse_paging, respond};
use crate::auth::{Principal, Scope};
use crate::customer_query::json::{CustomerSort, CustomersQuery};
use crate::customers::json::Customer;
use crate::http::error::PROBLEM_JSON as PROBLEM;
use crate::http::error::{ApiError, Problem};
use crate::http::query;
use crate::http::tabular::{Column, header};
use crate::interactions::json::{Interaction, InteractionSort, InteractionsQuery};
use crate::purchases::json::{Purchase, PurchaseSort, PurchasesQuery};
use crate::state::AppState;
use crate::surveys::json::{ResponseSort, ResponsesQuery, SurveyResponse};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(export_customers)
        .service(export_interactions)
        .service(export_purchases)
        .service(export_survey_responses)
        .service(export_contacts);
}

/// The header row: what an export without matching rows holds (the OpenAPI example).
fn header_row(columns: &[Column]) -> String {
    let mut out = String::new();
    crate::http::tabular::write_record(&mut out, header(columns));
    out
}

struct Customers {
    filter: crate::customer_query::store::ListFilter,
    sort: CustomerSort,
    reveal_pii: bool,
}

impl Source for Customers {
    type Key = crate::customer_query::store::CursorKey;
    type Item = Customer;
    const COLUMNS: &'static [Column] = crate::customers::json::COLUMNS;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<Self::Key>,
        limit: i64,
    ) -> QueryResult<Vec<(Customer, Self::Key)>> {
        let rows =
            crate::customer_query::store::list(conn, &self.filter, self.sort, after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let key = row.cursor(self.sort);
                (crate::customers::view(row.record, self.reveal_pii), key)
            })
            .collect())
    }
}

/// Export customers as CSV or NDJSON.
///
/// Every customer `GET /v1/customers` would list for the same filters, in its order, in one
/// download (no `limit`, no `cursor`: a `400` naming them). The format follows `Accept`:
/// `text/csv` (the default, also for `*/*` or no `Accept`) or `application/x-ndjson` (each
/// line the list's `Customer` object); any other is `406`. CSV follows RFC 4180 (UTF-8
/// without BOM, CRLF, a header row of the columns a customer import reads): nested fields
/// are columns of their own (`address.city`), `tags` are joined by `;`, `attributes` is JSON
/// text, an empty cell is `null`. The ID number is masked unless the caller has `pii:read`.
///
/// Values are written as stored, so that the file imports back unchanged: a cell may begin
/// with `=`, `+`, `-` or `@`, which spreadsheet programs can take for a formula; open
/// untrusted exports as text (import, not double-click).
///
/// The rows are read a batch at a time while the file streams, so an export of millions
/// takes as little memory as one of ten, and is not a snapshot: a customer changed while it
/// runs may show as before or after. A failure after the first rows were sent cuts the
/// download short (the response then ends without its final chunk).
#[utoipa::path(
    tag = "Exports",
    params(
        Filters<CustomersQuery>,
        ("attributes.{key}" = Option<String>, Query,
            description = "Custom attribute `key` equals this value (a string; a number or \
                           boolean written as JSON also matches that JSON value)",
            example = "gold"),
    ),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "The customers: CSV rows, or one `Customer` per line",
            content(
                (String = "text/csv", example = json!(header_row(crate::customers::json::COLUMNS))),
                (Customer = "application/x-ndjson"),
            ),
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"customers-<UTC time>.csv\"` (or `.ndjson`), \
                               the time as `20261120T093000Z`"))),
        (status = 406, description = "`Accept` allows neither `text/csv` nor \
            `application/x-ndjson`", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/exports/customers")]
async fn export_customers(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let (query, attributes) =
        query::parse_with_prefixed::<CustomersQuery>(req.query_string(), "attributes.")?;
    refuse_paging(query.limit, query.cursor.as_deref())?;
    let (filter, sort) = crate::customer_query::list_filter(&principal, query, attributes)?;
    let format = Format::negotiate(req.headers())?;
    let source = Customers {
        filter,
        sort,
        reveal_pii: principal.can(Scope::PiiRead),
    };
    respond(&state, &req, format, "customers", source).await
}

struct Interactions {
    filter: crate::interactions::store::ListFilter,
    sort: InteractionSort,
    now: DateTime<Utc>,
}

impl Source for Interactions {
    type Key = crate::interactions::store::CursorKey;
    type Item = Interaction;
    const COLUMNS: &'static [Column] = crate::interactions::json::COLUMNS;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<Self::Key>,
        limit: i64,
    ) -> QueryResult<Vec<(Interaction, Self::Key)>> {
        let rows =
            crate::interactions::store::list(conn, &self.filter, self.sort, after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let key = Self::Key::Time(r.timeline_at, r.id);
                (crate::interactions::view(r, self.now), key)
            })
            .collect())
    }
}

/// Export interactions as CSV or NDJSON.
///
/// Every interaction `GET /v1/interactions` would list for the same filters, in its order,
/// in one download (no `limit`, no `cursor`: a `400` naming them). The format follows
/// `Accept`: `text/csv` (the default, also for `*/*` or no `Accept`) or
/// `application/x-ndjson` (each line the list's `Interaction` object); any other is `406`.
/// CSV follows RFC 4180 (UTF-8 without BOM, CRLF, a header row; notes with line breaks are
/// quoted): `next_statuses` are joined by `;`, an empty cell is `null`. The follow-up state
/// and complaint age are as of the start of the export.
///
/// Values are written as stored, so that the file imports back unchanged: a cell may begin
/// with `=`, `+`, `-` or `@`, which spreadsheet programs can take for a formula; open
/// untrusted exports as text (import, not double-click).
///
/// The rows are read a batch at a time while the file streams (constant memory; not a
/// snapshot). A failure after the first rows were sent cuts the download short.
#[utoipa::path(
    tag = "Exports",
    params(Filters<InteractionsQuery>),
    security(("bearer" = ["interactions:read"])),
    responses(
        (status = 200, description = "The interactions: CSV rows, or one `Interaction` per line",
            content(
                (String = "text/csv",
                    example = json!(header_row(crate::interactions::json::COLUMNS))),
                (Interaction = "application/x-ndjson"),
            ),
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"interactions-<UTC time>.csv\"` (or \
                               `.ndjson`), the time as `20261120T093000Z`"))),
        (status = 406, description = "`Accept` allows neither `text/csv` nor \
            `application/x-ndjson`", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/exports/interactions")]
async fn export_interactions(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::InteractionsRead)?;
    let query: InteractionsQuery = query::parse(req.query_string())?;
    refuse_paging(query.limit, query.cursor.as_deref())?;
    let (filter, sort) = crate::interactions::list_filter(&principal, &query, None)?;
    let format = Format::negotiate(req.headers())?;
    let source = Interactions {
        filter,
        sort,
        now: Utc::now(),
    };
    respond(&state, &req, format, "interactions", source).await
}

struct Purchases {
    filter: crate::purchases::store::ListFilter,
    sort: PurchaseSort,
}

impl Source for Purchases {
    type Key = (DateTime<Utc>, Uuid);
    type Item = Purchase;
    const COLUMNS: &'static [Column] = crate::purchases::json::COLUMNS;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<Self::Key>,
        limit: i64,
    ) -> QueryResult<Vec<(Purchase, Self::Key)>> {
        let rows =
            crate::purchases::store::list(conn, &self.filter, self.sort, after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let purchase = crate::purchases::view(r);
                let key = (purchase.occurred_at, purchase.id);
                (purchase, key)
            })
            .collect())
    }
}

/// Export purchases as CSV or NDJSON.
///
/// Every purchase `GET /v1/purchases` would list for the same filters, in its order, in one
/// download (no `limit`, no `cursor`: a `400` naming them). The format follows `Accept`:
/// `text/csv` (the default, also for `*/*` or no `Accept`) or `application/x-ndjson` (each
/// line the list's `Purchase` object); any other is `406`. CSV follows RFC 4180 (UTF-8
/// without BOM, CRLF, a header row of the columns a purchase import reads): amounts are in
/// minor units, `items` is JSON text, an empty cell is `null`.
///
/// Values are written as stored, so that the file imports back unchanged: a cell may begin
/// with `=`, `+`, `-` or `@`, which spreadsheet programs can take for a formula; open
/// untrusted exports as text (import, not double-click).
///
/// The rows are read a batch at a time while the file streams (constant memory; not a
/// snapshot). A failure after the first rows were sent cuts the download short.
#[utoipa::path(
    tag = "Exports",
    params(Filters<PurchasesQuery>),
    security(("bearer" = ["purchases:read"])),
    responses(
        (status = 200, description = "The purchases: CSV rows, or one `Purchase` per line",
            content(
                (String = "text/csv",
                    example = json!(header_row(crate::purchases::json::COLUMNS))),
                (Purchase = "application/x-ndjson"),
            ),
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"purchases-<UTC time>.csv\"` (or \
                               `.ndjson`), the time as `20261120T093000Z`"))),
        (status = 406, description = "`Accept` allows neither `text/csv` nor \
            `application/x-ndjson`", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/exports/purchases")]
async fn export_purchases(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::PurchasesRead)?;
    let query: PurchasesQuery = query::parse(req.query_string())?;
    refuse_paging(query.limit, query.cursor.as_deref())?;
    let (filter, sort) = crate::purchases::list_filter(&principal, &query, None)?;
    let format = Format::negotiate(req.headers())?;
    respond(
        &state,
        &req,
        format,
        "purchases",
        Purchases { filter, sort },
    )
    .await
}

struct Responses {
    filter: crate::surveys::store::ResponseFilter,
    sort: ResponseSort,
}

impl Source for Responses {
    type Key = (DateTime<Utc>, Uuid);
    type Item = SurveyResponse;
    const COLUMNS: &'static [Column] = crate::surveys::json::RESPONSE_COLUMNS;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<Self::Key>,
        limit: i64,
    ) -> QueryResult<Vec<(SurveyResponse, Self::Key)>> {
        let rows =
            crate::surveys::store::list_responses(conn, &self.filter, self.sort, after, limit)
                .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let response = crate::surveys::response_view(r);
                let key = (response.submitted_at, response.id);
                (response, key)
            })
            .collect())
    }
}

/// Export survey responses as CSV or NDJSON.
///
/// Every response `GET /v1/survey-responses` would list for the same filters (`nps_max=6`:
/// the detractors), in its order, in one download (no `limit`, no `cursor`: a `400` naming
/// them); an unknown `survey_id` is `404`. The format follows `Accept`: `text/csv` (the
/// default, also for `*/*` or no `Accept`) or `application/x-ndjson` (each line the list's
/// `SurveyResponse` object); any other is `406`. CSV follows RFC 4180 (UTF-8 without BOM,
/// CRLF, a header row): `answers` is JSON text, the segment is in `segment.*` columns, an
/// empty cell is `null`.
///
/// Values are written as stored: a text answer may begin with `=`, `+`, `-` or `@`, which
/// spreadsheet programs can take for a formula; open untrusted exports as text (import, not
/// double-click).
///
/// The rows are read a batch at a time while the file streams (constant memory; not a
/// snapshot). A failure after the first rows were sent cuts the download short.
#[utoipa::path(
    tag = "Exports",
    params(Filters<ResponsesQuery>),
    security(("bearer" = ["surveys:read"])),
    responses(
        (status = 200, description = "The responses: CSV rows, or one `SurveyResponse` per line",
            content(
                (String = "text/csv",
                    example = json!(header_row(crate::surveys::json::RESPONSE_COLUMNS))),
                (SurveyResponse = "application/x-ndjson"),
            ),
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"survey-responses-<UTC time>.csv\"` (or \
                               `.ndjson`), the time as `20261120T093000Z`"))),
        (status = 404, description = "No survey has the `survey_id`", body = Problem,
            content_type = PROBLEM),
        (status = 406, description = "`Accept` allows neither `text/csv` nor \
            `application/x-ndjson`", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/exports/survey-responses")]
async fn export_survey_responses(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::SurveysRead)?;
    let query: ResponsesQuery = query::parse(req.query_string())?;
    refuse_paging(query.limit, query.cursor.as_deref())?;
    let (filter, sort) = crate::surveys::response_filter(&principal, &query, None)?;
    let format = Format::negotiate(req.headers())?;
    if let Some(id) = filter.survey_id {
        state
            .read(&req, async |conn| crate::surveys::find(conn, id).await)
            .await?;
    }
    respond(
        &state,
        &req,
        format,
        "survey-responses",
        Responses { filter, sort },
    )
    .await
}

struct Contacts {
    owner: Option<Uuid>,
}

impl Source for Contacts {
    type Key = Uuid;
    type Item = crate::contacts::json::ContactRow;
    const COLUMNS: &'static [Column] = crate::contacts::json::COLUMNS;

    async fn batch(
        &self,
        conn: &mut AsyncPgConnection,
        after: Option<Self::Key>,
        limit: i64,
    ) -> QueryResult<Vec<(Self::Item, Self::Key)>> {
        let rows = crate::contacts::export_batch(conn, self.owner, after, limit).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let key = row.contact.id;
                (row, key)
            })
            .collect())
    }
}

/// Export contact links as CSV or NDJSON.
///
/// Every link of a person to an organization, current and past, in the order they were
/// made, each with the natural keys of both sides (`organization_external_id`,
/// `organization_email`, `person_external_id`, `person_email`), so that the file imports
/// again (`POST /v1/imports/contacts`) where the same customers are. Links of deleted
/// customers are left out; with owned-only access, the links whose organization and person
/// the caller both manages. The format follows `Accept`: `text/csv` (the default) or
/// `application/x-ndjson` (each line a `ContactRow`); any other is `406`. CSV follows RFC
/// 4180: `buying_roles` joined by `;`, an empty cell is `null`. The rows are read a batch at
/// a time while the file streams; a failure after the first rows were sent cuts it short.
#[utoipa::path(
    tag = "Exports",
    operation_id = "export_contacts",
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "The links: CSV rows, or one `ContactRow` per line",
            content(
                (String = "text/csv",
                    example = json!(header_row(crate::contacts::json::COLUMNS))),
                (crate::contacts::json::ContactRow = "application/x-ndjson"),
            ),
            headers(("Content-Disposition" = String,
                description = "`attachment; filename=\"contacts-<UTC time>.csv\"` (or \
                               `.ndjson`), the time as `20261120T093000Z`"))),
        (status = 400, description = "A query parameter was given (it takes none)",
            body = Problem, content_type = PROBLEM),
        (status = 401, description = "No valid token", body = Problem, content_type = PROBLEM),
        (status = 403, description = "Without `customers:read`", body = Problem,
            content_type = PROBLEM),
        (status = 406, description = "`Accept` allows neither `text/csv` nor \
            `application/x-ndjson`", body = Problem, content_type = PROBLEM),
    )
)]
#[get("/exports/contacts")]
async fn export_contacts(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let _: crate::customers::json::NoParameters = query::parse(req.query_string())?;
    let format = Format::negotiate(req.headers())?;
    let source = Contacts {
        owner: principal.access.owner(),
    };
    respond(&state, &req, format, "contacts", source).await
}
