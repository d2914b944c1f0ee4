//! Contacts: people at organizations (DOMAIN.md section 9). An individual customer is linked
//! to an organization customer with a title, buying roles, the primary flag and when the link
//! began and ended. Writes are composed here, once, for the routes; other areas ask here
//! whether someone is (or was) a contact of an organization.

pub mod json;
mod routes;
pub mod rules;
pub mod store;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::{Actor, CustomerAccess};
use crate::customers::json::CustomerKind;
use crate::customers::store::CustomerRecord;
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, ErrorCode, FieldError};
use crate::http::etag::IfMatch;
use crate::http::patch::Patch;
use crate::journal::{self, Change};
use json::{Contact, ContactInput, ContactPatch};
use store::{ContactRecord, Side};

pub use routes::configure;

/// The API view of a link.
pub fn view(record: ContactRecord) -> Contact {
    let d = record.draft;
    Contact {
        id: record.id,
        organization_id: record.organization_id,
        person_id: record.person_id,
        buying_roles: rules::roles_of(&d),
        title: d.title,
        primary: d.is_primary,
        current: d.ended_at.is_none(),
        started_at: d.started_at,
        ended_at: d.ended_at,
        note: d.note,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
    }
}

/// What the audit log keeps of a removed link: every field it had, as `{"field": {"from": v}}`.
fn removed(shown: &Contact) -> Value {
    let fields = match serde_json::to_value(shown) {
        Ok(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    let changes: Map<String, Value> = fields
        .into_iter()
        .filter(|(k, _)| !["id", "created_at", "updated_at", "version"].contains(&k.as_str()))
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k, json!({ "from": v })))
        .collect();
    Value::Object(changes)
}

/// A live customer the caller reaches, or `404` naming `what`.
async fn reachable(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    id: Uuid,
    what: &str,
) -> Result<CustomerRecord, ApiError> {
    crate::customers::store::get(conn, id)
        .await?
        .filter(|c| c.deleted_at.is_none() && access.allows(c.draft.account_manager_id))
        .ok_or_else(|| ApiError::not_found(what))
}

/// The organization of a write: live, reached by the caller (`404` otherwise), not erased
/// (`409`), an organization (`422` on `organization_id`); locked against deletion until the
/// transaction ends.
async fn lock_organization(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    id: Uuid,
) -> Result<CustomerRecord, ApiError> {
    let organization = crate::customers::lock_live_for_update(conn, id).await?;
    if !access.allows(organization.draft.account_manager_id) {
        return Err(ApiError::not_found("customer"));
    }
    if organization.draft.kind != CustomerKind::Organization {
        return Err(ApiError::invalid_field(
            "organization_id",
            "must be an organization customer: an individual has no contacts",
        ));
    }
    Ok(organization)
}

/// `422` on `person_id`: what a person that cannot be linked is answered (missing, deleted,
/// erased and unreachable alike, so nothing is learnt of customers the caller may not see).
fn no_live_person() -> ApiError {
    ApiError::invalid_field("person_id", "must be the id of a live individual customer")
}

/// An existing person to link, locked against deletion until the transaction ends.
async fn lock_person(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    organization_id: Uuid,
    id: Uuid,
) -> Result<CustomerRecord, ApiError> {
    if id == organization_id {
        return Err(ApiError::invalid_field(
            "person_id",
            "cannot be the organization itself: a customer is not its own contact",
        ));
    }
    let person = crate::customers::lock_live(conn, id)
        .await
        .map_err(|err| match err.code() {
            ErrorCode::NotFound | ErrorCode::Conflict => no_live_person(),
            _ => err,
        })?;
    if !access.allows(person.draft.account_manager_id) {
        return Err(no_live_person());
    }
    if let Err((field, message)) = rules::kinds(CustomerKind::Organization, person.draft.kind) {
        return Err(ApiError::invalid_field(field, message));
    }
    Ok(person)
}

/// The errors of the inline person, named under `person.`.
fn under_person(err: ApiError) -> ApiError {
    if err.errors().is_empty() {
        return err;
    }
    let errors = err
        .errors()
        .iter()
        .map(|e| FieldError::new(format!("person.{}", e.field), e.message.clone()))
        .collect();
    err.with_errors(errors)
}

/// `409` on `primary`: another current contact of the organization is its primary one.
fn second_primary() -> ApiError {
    ApiError::new(
        ErrorCode::Duplicate,
        "another current contact of this organization is its primary contact; unset that \
         one's `primary` first",
    )
    .with_errors(vec![FieldError::new(
        "primary",
        "another current contact of this organization is already primary",
    )])
}

/// Checks the one-primary rule for a link about to be written (`id`: the link itself, when
/// it exists).
async fn check_primary(
    conn: &mut AsyncPgConnection,
    organization_id: Uuid,
    id: Option<Uuid>,
    draft: &store::ContactDraft,
) -> Result<(), ApiError> {
    if draft.is_primary
        && draft.ended_at.is_none()
        && store::other_current_primary(conn, organization_id, id).await?
    {
        return Err(second_primary());
    }
    Ok(())
}

/// Links a person to an organization: an existing individual customer (`person_id`) or one
/// created here with every rule of `POST /v1/customers` (`person`), in one transaction.
pub async fn link(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    organization_id: Uuid,
    mut input: ContactInput,
) -> Result<ContactRecord, ApiError> {
    let mut errors = Vec::new();
    if let Err(error) = rules::person_choice(&input) {
        errors.push(error);
    }
    let draft = rules::new_link(&input, Utc::now());
    if let Err(more) = &draft {
        errors.extend(more.iter().cloned());
    }
    if let Some(person) = &input.person
        && matches!(person.kind, Patch::Value(CustomerKind::Organization))
    {
        errors.push(FieldError::new(
            "person.kind",
            "must be `individual`: an organization cannot be a contact",
        ));
    }
    let draft = match draft {
        Ok(draft) if errors.is_empty() => draft,
        _ => return Err(ApiError::validation(errors)),
    };
    conn.transaction(async |conn| {
        lock_organization(conn, access, organization_id).await?;
        let person_id = match (input.person_id, input.person.take()) {
            (Some(id), _) => lock_person(conn, access, organization_id, id).await?.id,
            (None, Some(person)) => {
                crate::customers::create(conn, actor, access, person)
                    .await
                    .map_err(under_person)?
                    .id
            }
            (None, None) => return Err(no_live_person()),
        };
        if store::get(conn, organization_id, person_id)
            .await?
            .is_some()
        {
            return Err(ApiError::new(
                ErrorCode::Duplicate,
                "this person is already a contact of this organization; change that link",
            )
            .with_errors(vec![FieldError::new(
                "person_id",
                "is already a contact of this organization",
            )]));
        }
        check_primary(conn, organization_id, None, &draft).await?;
        let record = store::insert(conn, organization_id, person_id, &draft).await?;
        let change = Change::created(EventType::ContactLinked, record.id, &view(record.clone()));
        journal::record(conn, actor, change).await?;
        crate::customers::rederive_authority(conn, actor, organization_id).await?;
        Ok(record)
    })
    .await
}

/// A person's link to an organization, as the caller may see it: both live and reached, and
/// linked (`404` otherwise).
pub async fn get(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    organization_id: Uuid,
    person_id: Uuid,
) -> Result<ContactRecord, ApiError> {
    reachable(conn, access, organization_id, "customer").await?;
    reachable(conn, access, person_id, "contact").await?;
    store::get(conn, organization_id, person_id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))
}

/// Locks a link of a live organization for the transaction and checks `If-Match` against it.
async fn lock_link(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    organization_id: Uuid,
    person_id: Uuid,
    if_match: &IfMatch,
) -> Result<ContactRecord, ApiError> {
    crate::customers::lock_live_for_update(conn, organization_id).await?;
    reachable(conn, access, organization_id, "customer").await?;
    reachable(conn, access, person_id, "contact").await?;
    let record = store::lock(conn, organization_id, person_id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    if_match.check(record.version)?;
    Ok(record)
}

/// Applies a merge patch to a link. Nothing is written when nothing changes.
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    organization_id: Uuid,
    person_id: Uuid,
    if_match: &IfMatch,
    patch: ContactPatch,
) -> Result<ContactRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock_link(conn, access, organization_id, person_id, if_match).await?;
        let draft = rules::apply(patch, &before.draft, Utc::now()).map_err(ApiError::validation)?;
        if draft == before.draft {
            return Ok(before);
        }
        check_primary(conn, organization_id, Some(before.id), &draft).await?;
        let after = store::update(conn, before.id, &draft).await?;
        let (was, shown) = (view(before), view(after.clone()));
        let change = Change::updated(EventType::ContactUpdated, after.id, &was, &shown);
        journal::record(conn, actor, change).await?;
        crate::customers::rederive_authority(conn, actor, organization_id).await?;
        Ok(after)
    })
    .await
}

/// Removes a link recorded by mistake (someone who left is recorded with `ended_at`, and
/// stays as a past contact). The audit row keeps what the link held.
pub async fn unlink(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    organization_id: Uuid,
    person_id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        let before = lock_link(conn, access, organization_id, person_id, if_match).await?;
        store::delete(conn, before.id).await?;
        let shown = view(before);
        let event = NewEvent::new(EventType::ContactUnlinked, shown.id, &shown);
        journal::record(conn, actor, Change::announced(event, removed(&shown))).await?;
        crate::customers::rederive_authority(conn, actor, organization_id).await?;
        Ok(())
    })
    .await
}

/// A page of links from one side (an organization's contacts, a person's organizations),
/// whose path customer is live and reached (`404` otherwise).
pub async fn list(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    side: Side,
    current: Option<bool>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ContactRecord>, ApiError> {
    let (Side::Organization(id) | Side::Person(id)) = side;
    reachable(conn, access, id, "customer").await?;
    Ok(store::list(conn, side, current, access.owner(), after, limit).await?)
}

/// Checks that every one of `people` is a contact, current or past, of the organization: the
/// people an opportunity is worked with, the person an interaction was with. `422` on
/// `field` naming those who are not. A person the caller cannot see (owned-only access) is
/// answered exactly as a missing one, so nothing is learnt of who works where.
pub async fn check_people(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    organization_id: Uuid,
    field: &str,
    people: &[Uuid],
) -> Result<(), ApiError> {
    if people.is_empty() {
        return Ok(());
    }
    let linked = store::linked_people(conn, organization_id, people, access.owner()).await?;
    let strangers: Vec<String> = people
        .iter()
        .filter(|id| !linked.contains(id))
        .map(Uuid::to_string)
        .collect();
    if strangers.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid_field(
        field,
        format!(
            "must be contacts (current or past) of the customer organization; {} {}",
            if strangers.len() == 1 {
                "this is not one:"
            } else {
                "these are not:"
            },
            strangers.join(", ")
        ),
    ))
}

/// A batch of the contacts export: links after `after`, each with both sides' natural keys
/// (two queries per batch).
pub async fn export_batch(
    conn: &mut AsyncPgConnection,
    owner: Option<Uuid>,
    after: Option<Uuid>,
    limit: i64,
) -> diesel::QueryResult<Vec<json::ContactRow>> {
    let records = store::export_batch(conn, owner, after, limit).await?;
    let ids: Vec<Uuid> = records
        .iter()
        .flat_map(|r| [r.organization_id, r.person_id])
        .collect();
    let keys: std::collections::HashMap<Uuid, (Option<String>, Option<String>)> =
        store::keys_of(conn, &ids)
            .await?
            .into_iter()
            .map(|(id, external, email)| (id, (external, email)))
            .collect();
    Ok(records
        .into_iter()
        .map(|record| {
            let (organization_external_id, organization_email) = keys
                .get(&record.organization_id)
                .cloned()
                .unwrap_or_default();
            let (person_external_id, person_email) =
                keys.get(&record.person_id).cloned().unwrap_or_default();
            json::ContactRow {
                contact: view(record),
                organization_external_id,
                organization_email,
                person_external_id,
                person_email,
            }
        })
        .collect())
}
