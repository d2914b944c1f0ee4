use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::json::{Contact, ContactInput, ContactPatch, ContactsQuery};
use super::store::{ContactRecord, Side};
use crate::auth::{Held, Principal, Scope, ownership};
use crate::http::error::{ApiError, Problem};
use crate::http::etag::{IfMatch, IfMatchHeader};
use crate::http::json::Json;
use crate::http::pagination::{self, Page};
use crate::http::query;
use crate::http::response;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_contacts)
        .service(link_contact)
        .service(get_contact)
        .service(update_contact)
        .service(unlink_contact)
        .service(list_organizations);
}

const PROBLEM: &str = "application/problem+json";

/// The name of the lists' one order (by link id: the order the links were made), which
/// cursors carry.
const ORDER: &str = "linked";

fn location(record: &ContactRecord) -> String {
    format!(
        "/v1/customers/{}/contacts/{}",
        record.organization_id, record.person_id
    )
}

fn one(record: ContactRecord) -> HttpResponse {
    let contact = super::view(record);
    response::versioned(contact.version, &contact)
}

async fn page(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    side: Side,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let query: ContactsQuery = query::parse(req.query_string())?;
    let page = pagination::request::<Uuid>(query.limit, query.cursor.as_deref(), ORDER)?;
    let mut conn = state.pool.get().await?;
    let rows = super::list(
        &mut conn,
        principal.access,
        side,
        query.current,
        page.after,
        page.fetch(),
    )
    .await?;
    let rows = rows.into_iter().map(super::view).collect();
    Ok(HttpResponse::Ok().json(pagination::page(rows, &page, ORDER, |c: &Contact| c.id)))
}

/// List an organization's contacts.
///
/// The people linked to the organization, current and past, in the order they were linked;
/// `current=true` keeps the current ones, `current=false` the past ones. People deleted (or
/// not reached, with owned-only access) are left out. An individual customer has none.
#[utoipa::path(
    tag = "Contacts",
    params(("id" = Uuid, Path, description = "Organization customer id"), ContactsQuery),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "A page of contacts", body = Page<Contact>),
        (status = 404, description = "No such live customer", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/contacts")]
async fn list_contacts(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    page(&state, &principal, &req, Side::Organization(*id)).await
}

/// List a person's organizations.
///
/// The links of an individual customer to the organizations they work at (a person may be
/// at several), current and past, in the order they were linked; `current` filters as on
/// the contacts list. Organizations deleted (or not reached) are left out.
#[utoipa::path(
    tag = "Contacts",
    params(("id" = Uuid, Path, description = "Individual customer id"), ContactsQuery),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "A page of the person's links", body = Page<Contact>),
        (status = 404, description = "No such live customer", body = Problem,
            content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/organizations")]
async fn list_organizations(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    page(&state, &principal, &req, Side::Person(*id)).await
}

/// Link a person to an organization.
///
/// Either `person_id` (an existing live individual customer) or `person` (a new one, created
/// with every rule of `POST /v1/customers`; its errors are named `person.…`). The path's
/// customer must be an organization and the person an individual other than it (`422`).
/// A person already linked is `409` on `person_id` (change that link instead); a second
/// current primary contact is `409` on `primary`. Writes `contact.linked`.
#[utoipa::path(
    tag = "Contacts",
    params(("id" = Uuid, Path, description = "Organization customer id")),
    request_body = ContactInput,
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 201, description = "The new link", body = Contact,
            headers(("Location" = String, description = "URL of the new link"),
                    ("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 404, description = "No such live customer", body = Problem,
            content_type = PROBLEM),
        (status = 409, description = "The person is already linked, another current contact \
            is primary (`errors` names the field), the organization's personal data was \
            erased, or the new person's email or external id is in use",
            body = Problem, content_type = PROBLEM),
    )
)]
#[post("/customers/{id}/contacts")]
async fn link_contact(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<Uuid>,
    input: Json<ContactInput>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let mut conn = state.pool.get().await?;
    ownership::check(&mut conn, principal.access, Held::Customer(*id)).await?;
    let record = super::link(
        &mut conn,
        &principal.actor,
        principal.access,
        *id,
        input.into_inner(),
    )
    .await?;
    let url = location(&record);
    let contact = super::view(record);
    Ok(response::created(&url, contact.version, &contact))
}

/// Get a person's link to an organization.
#[utoipa::path(
    tag = "Contacts",
    params(("id" = Uuid, Path, description = "Organization customer id"),
        ("person_id" = Uuid, Path, description = "Individual customer id of the person")),
    security(("bearer" = ["customers:read"])),
    responses(
        (status = 200, description = "The link", body = Contact,
            headers(("ETag" = String, description = "Version tag for `If-Match`"))),
        (status = 404, description = "No such live customer, or the person is not linked",
            body = Problem, content_type = PROBLEM),
    )
)]
#[get("/customers/{id}/contacts/{person_id}")]
async fn get_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersRead)?;
    let (organization_id, person_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let record = super::get(&mut conn, principal.access, organization_id, person_id).await?;
    Ok(one(record))
}

/// Update a link.
///
/// A JSON merge patch: absent fields stay, `null` clears. Setting `ended_at` records that
/// the person left: the link stays, as a past contact (`current: false`); clearing it makes
/// it current again. A second current primary contact is `409` on `primary`. Writes
/// `contact.updated` when something changed.
#[utoipa::path(
    tag = "Contacts",
    params(("id" = Uuid, Path, description = "Organization customer id"),
        ("person_id" = Uuid, Path, description = "Individual customer id of the person"),
        IfMatchHeader),
    request_body(content = ContactPatch, content_type = "application/merge-patch+json",
        description = "Fields to change (also accepted as application/json)"),
    security(("bearer" = ["customers:write"])),
    responses(
        (status = 200, description = "The updated link", body = Contact,
            headers(("ETag" = String, description = "The new version tag"))),
        (status = 404, description = "No such live customer, or the person is not linked",
            body = Problem, content_type = PROBLEM),
        (status = 409, description = "Another current contact is primary (`errors` names \
            `primary`)", body = Problem, content_type = PROBLEM),
    )
)]
#[patch("/customers/{id}/contacts/{person_id}")]
async fn update_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
    input: Json<ContactPatch>,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersWrite)?;
    let (organization_id, person_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    let record = super::update(
        &mut conn,
        &principal.actor,
        principal.access,
        organization_id,
        person_id,
        &if_match,
        input.into_inner(),
    )
    .await?;
    Ok(one(record))
}

/// Remove a link.
///
/// For a link recorded by mistake: it is gone (the audit log keeps what it held). Someone
/// who left is recorded by setting `ended_at` instead, and stays as a past contact. Writes
/// `contact.unlinked`.
#[utoipa::path(
    tag = "Contacts",
    params(("id" = Uuid, Path, description = "Organization customer id"),
        ("person_id" = Uuid, Path, description = "Individual customer id of the person"),
        IfMatchHeader),
    security(("bearer" = ["customers:delete"])),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such live customer, or the person is not linked",
            body = Problem, content_type = PROBLEM),
    )
)]
#[delete("/customers/{id}/contacts/{person_id}")]
async fn unlink_contact(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(Uuid, Uuid)>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    principal.require(Scope::CustomersDelete)?;
    let (organization_id, person_id) = path.into_inner();
    let mut conn = state.pool.get().await?;
    super::unlink(
        &mut conn,
        &principal.actor,
        principal.access,
        organization_id,
        person_id,
        &if_match,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
