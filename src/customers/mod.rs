//! Customers: the customer record, its lifecycle history, soft deletion. Creation, update and
//! upsert are written once here and shared by the single, upsert and batch endpoints.

pub mod figures;
pub mod json;
pub mod matching;
mod routes;
pub mod rules;
pub mod store;

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use uuid::Uuid;

use crate::auth::{Actor, CustomerAccess, Principal, Scope};
use crate::domain::{ChurnCause, Email, Phone};
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, ErrorCode};
use crate::http::etag::IfMatch;
use crate::journal::{self, Change};
use json::{
    BatchAction, BatchItem, BatchResult, Consent, ConsentState, Customer, CustomerInput,
    LifecycleStage,
};
use rules::Applied;
use store::{CustomerDraft, CustomerRecord};

pub use routes::configure;

/// The API view of a record; `reveal_pii` shows the ID number in full.
pub fn view(record: CustomerRecord, reveal_pii: bool) -> Customer {
    let d = record.draft;
    let today = Utc::now().date_naive();
    Customer {
        id: record.id,
        kind: d.kind,
        name: d.name,
        organization_name: d.organization_name,
        email: d.email.map(Email::into_inner),
        phone: d.phone.map(Phone::into_inner),
        address: d.address,
        region_type: d.region_type,
        age: d.birth_date.and_then(|b| rules::age(b, today)),
        birth_date: d.birth_date,
        gender: d.gender,
        occupation: d.occupation,
        income_band: d.income_band,
        national_id: d
            .national_id
            .map(|id| if reveal_pii { id } else { rules::mask(&id) }),
        preferred_channel: d.preferred_channel,
        consent: Consent {
            email: ConsentState {
                granted: d.consent_email,
                at: d.consent_email_at,
            },
            sms: ConsentState {
                granted: d.consent_sms,
                at: d.consent_sms_at,
            },
        },
        tags: d.tags,
        attributes: d.attributes,
        source: d.source,
        external_id: d.external_id,
        account_manager_id: d.account_manager_id,
        lifecycle_stage: d.lifecycle_stage,
        relationship_level: d.relationship_level,
        qualification: d.qualification,
        prospect_grade: record.prospect_grade,
        credit: d.credit,
        buyer_type: d.buyer_type,
        organization_type: d.organization_type,
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
        deleted_at: record.deleted_at,
        erased_at: record.erased_at,
        parent_id: d.parent_id,
        referred_by_id: d.referred_by_id,
        influential: d.influential,
        analytics: None,
        matched_via: None,
    }
}

/// The API view of a record for this caller: the ID number in full only with `pii:read`.
pub fn view_for(principal: &Principal, record: CustomerRecord) -> Customer {
    view(record, principal.can(Scope::PiiRead))
}

/// What the audit log and events keep of a customer: the view with sensitive data masked
/// (an event's reader may lack `pii:read`).
pub fn audited(record: &CustomerRecord) -> Customer {
    view(record.clone(), false)
}

/// The events of an update from `before` to `after`: `customer.updated`, and
/// `customer.lifecycle_changed` when the stage moved.
pub fn updated(before: &CustomerRecord, after: &CustomerRecord) -> Change {
    moved(before, after, store::StageReason::default())
}

/// As [`updated`], the `customer.lifecycle_changed` event also telling why the stage moved:
/// its data is the customer with `lifecycle_change` (`reason`, `reason_code`).
pub fn moved(
    before: &CustomerRecord,
    after: &CustomerRecord,
    reason: store::StageReason<'_>,
) -> Change {
    let shown = audited(after);
    let change = Change::updated(
        EventType::CustomerUpdated,
        after.id,
        &audited(before),
        &shown,
    );
    if after.draft.lifecycle_stage == before.draft.lifecycle_stage {
        return change;
    }
    let mut data = serde_json::to_value(&shown).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(fields) = &mut data {
        fields.insert(
            "lifecycle_change".to_owned(),
            serde_json::to_value(crate::events::LifecycleChangeNote {
                reason: reason.text.map(str::to_owned),
                reason_code: reason.code,
            })
            .unwrap_or(serde_json::Value::Null),
        );
    }
    change.and(
        NewEvent::new(EventType::CustomerLifecycleChanged, after.id, &data)
            .previous(serde_json::json!({ "lifecycle_stage": before.draft.lifecycle_stage })),
    )
}

/// A customer's creation, written down: audited field by field and announced.
pub fn created(record: &CustomerRecord) -> Change {
    Change::created(EventType::CustomerCreated, record.id, &audited(record))
}

fn invalid(errors: Vec<crate::http::FieldError>) -> ApiError {
    ApiError::validation(errors)
}

async fn check_manager(
    conn: &mut AsyncPgConnection,
    draft: &CustomerDraft,
    before: Option<&CustomerDraft>,
) -> Result<(), ApiError> {
    let Some(manager) = draft.account_manager_id else {
        return Ok(());
    };
    if before.is_some_and(|b| b.account_manager_id == Some(manager)) {
        return Ok(());
    }
    crate::users::check_active(conn, "account_manager_id", manager).await
}

/// A customer `field` names, as a write may link to it: live and visible to the caller,
/// `422` on `field` otherwise (a customer the caller may not see is as absent as a missing
/// one).
async fn linked(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    field: &str,
    id: Uuid,
) -> Result<CustomerRecord, ApiError> {
    store::get(conn, id)
        .await?
        .filter(|r| r.deleted_at.is_none() && access.allows(r.draft.account_manager_id))
        .ok_or_else(|| ApiError::invalid_field(field, format!("names no customer ({id})")))
}

/// Checks the customers a draft links to when they change: its parent (a live organization
/// the caller can see, closing no cycle, keeping the group within
/// [`rules::MAX_GROUP_LEVELS`]), its referrer (a live customer the caller can see, not
/// itself), and that an organization with subsidiaries stays one. `id` is `None` for a
/// customer being created.
async fn check_links(
    conn: &mut AsyncPgConnection,
    access: CustomerAccess,
    id: Option<Uuid>,
    draft: &CustomerDraft,
    before: Option<&CustomerDraft>,
) -> Result<(), ApiError> {
    let parent_changed = before.map_or(draft.parent_id.is_some(), |b| {
        b.parent_id != draft.parent_id
    });
    let became_individual = before.is_some_and(|b| {
        b.kind == json::CustomerKind::Organization && draft.kind != json::CustomerKind::Organization
    });
    // A parent taken away closes no cycle: only a new parent, or a kind that may strand
    // subsidiaries, waits for the groups' lock.
    if (parent_changed && draft.parent_id.is_some()) || became_individual {
        store::lock_groups(conn).await?;
    }
    if let (true, Some(id)) = (became_individual, id)
        && store::has_subsidiaries(conn, id).await?
    {
        return Err(ApiError::invalid_field(
            "kind",
            "an organization with subsidiaries stays an organization: move them first",
        ));
    }
    if let (true, Some(parent)) = (parent_changed, draft.parent_id) {
        if Some(parent) == id {
            return Err(ApiError::invalid_field(
                "parent_id",
                format!(
                    "would make a cycle: {}",
                    rules::cycle_text(&[parent, parent])
                ),
            ));
        }
        let record = linked(conn, access, "parent_id", parent).await?;
        if record.draft.kind != json::CustomerKind::Organization {
            return Err(ApiError::invalid_field(
                "parent_id",
                "must be an organization (it names an individual)",
            ));
        }
        let ancestors = store::ancestors(conn, parent).await?;
        if let Some(cycle) = id.and_then(|id| rules::cycle(id, &ancestors)) {
            return Err(ApiError::invalid_field(
                "parent_id",
                format!("would make a cycle: {}", rules::cycle_text(&cycle)),
            ));
        }
        let limit = rules::MAX_GROUP_LEVELS as i32;
        let below = match id {
            Some(id) => store::levels_below(conn, id, limit).await?,
            None => 1,
        };
        if ancestors.len() + below as usize > rules::MAX_GROUP_LEVELS {
            return Err(ApiError::invalid_field(
                "parent_id",
                format!(
                    "a group has at most {limit} levels; this one would have {}",
                    ancestors.len() + below as usize
                ),
            ));
        }
    }
    if let Some(referrer) = draft
        .referred_by_id
        .filter(|_| before.is_none_or(|b| b.referred_by_id != draft.referred_by_id))
    {
        if Some(referrer) == id {
            return Err(ApiError::invalid_field(
                "referred_by_id",
                "cannot be the customer itself",
            ));
        }
        linked(conn, access, "referred_by_id", referrer).await?;
    }
    Ok(())
}

/// The subsidiaries of an organization the caller can see, down to `depth` levels (1 to
/// 10), depth first, at most 1000 (see [`json::Subsidiaries`]).
pub async fn subsidiaries(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    id: Uuid,
    depth: i32,
) -> Result<json::Subsidiaries, ApiError> {
    const LIMIT: i64 = 1000;
    let record = visible(principal, store::get(conn, id).await?)?;
    if record.draft.kind != json::CustomerKind::Organization {
        return Err(ApiError::invalid_field(
            "id",
            "is an individual: only organizations have subsidiaries",
        ));
    }
    let ancestors = store::ancestors(conn, id).await?;
    let mut rows =
        store::subsidiaries(conn, id, depth, principal.access.owner(), LIMIT + 1).await?;
    let truncated = rows.len() as i64 > LIMIT;
    rows.truncate(LIMIT as usize);
    Ok(json::Subsidiaries {
        id,
        parent_id: record.draft.parent_id,
        root_id: ancestors.last().copied().unwrap_or(id),
        data: rows
            .into_iter()
            .map(|r| json::Subsidiary {
                id: r.id,
                parent_id: r.parent_id,
                name: r.name,
                external_id: r.external_id,
                depth: r.depth,
            })
            .collect(),
        truncated,
    })
}

/// Inserts an applied creation, with its first lifecycle entry and audit, in `conn`'s
/// transaction.
async fn insert(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    mut applied: Applied,
) -> Result<CustomerRecord, ApiError> {
    if let Some(me) = access.owner() {
        match applied.draft.account_manager_id {
            None => applied.draft.account_manager_id = Some(me),
            Some(manager) if manager != me => return Err(gives_away()),
            Some(_) => {}
        }
    }
    check_manager(conn, &applied.draft, None).await?;
    check_links(conn, access, None, &applied.draft, None).await?;
    // A new organization has no contacts yet: a derived authority starts false.
    if let Some(q) = applied.draft.qualification.as_mut()
        && q.authority_source == json::AuthoritySource::Derived
    {
        q.authority = false;
    }
    let record = store::insert(conn, Uuid::now_v7(), &applied.draft).await?;
    store::record_stage_change(
        conn,
        record.id,
        None,
        record.draft.lifecycle_stage,
        actor,
        store::StageReason {
            text: applied.lifecycle_reason.as_deref(),
            code: applied.reason_code,
        },
    )
    .await?;
    journal::record(conn, actor, created(&record)).await?;
    Ok(record)
}

/// Applies changes to a locked, live record, in `conn`'s transaction. Nothing is written when
/// nothing changes.
async fn change(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    before: CustomerRecord,
    if_match: &IfMatch,
    input: CustomerInput,
) -> Result<CustomerRecord, ApiError> {
    if !access.allows(before.draft.account_manager_id) {
        return Err(ApiError::not_found("customer"));
    }
    if_match.check(before.version)?;
    let mut applied = rules::apply(input, &before.draft, false, Utc::now()).map_err(invalid)?;
    if let Some(q) = applied.draft.qualification.as_mut()
        && q.authority_source == json::AuthoritySource::Derived
    {
        q.authority = store::has_current_decision_maker(conn, before.id).await?;
    }
    if applied.draft == before.draft {
        return Ok(before);
    }
    if !access.allows(applied.draft.account_manager_id) {
        return Err(gives_away());
    }
    check_manager(conn, &applied.draft, Some(&before.draft)).await?;
    check_links(
        conn,
        access,
        Some(before.id),
        &applied.draft,
        Some(&before.draft),
    )
    .await?;
    let after = store::update(conn, before.id, &applied.draft).await?;
    if after.draft.lifecycle_stage != before.draft.lifecycle_stage {
        store::record_stage_change(
            conn,
            after.id,
            Some(before.draft.lifecycle_stage),
            after.draft.lifecycle_stage,
            actor,
            store::StageReason {
                text: applied.lifecycle_reason.as_deref(),
                code: applied.reason_code,
            },
        )
        .await?;
    }
    let reason = store::StageReason {
        text: applied.lifecycle_reason.as_deref(),
        code: applied.reason_code,
    };
    journal::record(conn, actor, moved(&before, &after, reason)).await?;
    Ok(after)
}

/// `403` for a caller limited to their own customers who would make someone else (or nobody)
/// the account manager: they would lose the customer.
fn gives_away() -> ApiError {
    ApiError::forbidden(
        "your access is limited to the customers you manage: `account_manager_id` must stay \
         your own id",
    )
}

/// The customer as the caller may see it: deleted customers only with `customers:delete`,
/// customers managed by others not by a caller limited to their own (owned-only access),
/// otherwise (and when there is none) `404`.
pub fn visible(
    principal: &Principal,
    record: Option<CustomerRecord>,
) -> Result<CustomerRecord, ApiError> {
    record
        .filter(|r| r.deleted_at.is_none() || principal.can(Scope::CustomersDelete))
        .filter(|r| principal.access.allows(r.draft.account_manager_id))
        .ok_or_else(|| ApiError::not_found("customer"))
}

/// A customer that can be written about (its interactions, purchases): `404` when there is
/// none or it is deleted, `409` when its personal data was erased. Locks the row against
/// deletion and erasure until the transaction ends.
pub async fn lock_live(conn: &mut AsyncPgConnection, id: Uuid) -> Result<CustomerRecord, ApiError> {
    live(store::lock_shared(conn, id).await?)
}

/// A customer a purchase is recorded for, as [`lock_live`]; a prospect is locked for update
/// instead, since its first purchase may move it ([`on_purchase`]): concurrent purchases of
/// one prospect then take turns, and the second sees the first. `peek`: the customer read
/// unlocked before, in the same transaction (`store::get`), which picks the lock.
pub async fn lock_buyer(
    conn: &AsyncPgConnection,
    id: Uuid,
    peek: Option<&CustomerRecord>,
) -> Result<CustomerRecord, ApiError> {
    if peek.is_some_and(|r| r.draft.lifecycle_stage == LifecycleStage::Prospect) {
        // Locked, it may have moved on; whoever moved it into `prospect` since did so by
        // hand, which `on_purchase` respects.
        live(store::lock(conn, id).await?)
    } else {
        live(store::lock_shared(conn, id).await?)
    }
}

fn live(record: Option<CustomerRecord>) -> Result<CustomerRecord, ApiError> {
    let record = record.ok_or_else(|| ApiError::not_found("customer"))?;
    if record.erased_at.is_some() {
        return Err(gone(&record).unwrap_or_else(|| ApiError::not_found("customer")));
    }
    if record.deleted_at.is_some() {
        return Err(ApiError::not_found("customer"));
    }
    Ok(record)
}

/// Moves a prospect to `acquaintance` on its first purchase, unless the stage was set by
/// hand since it became a prospect ([`rules::moves_on_purchase`]). Call in the purchase's
/// transaction, with `customer` from [`lock_buyer`] and `first_purchase` whether the
/// customer had no purchase before this one (which need not be asked, and may be `false`,
/// where [`may_move_on_purchase`] says no). The change to write down (the update, its
/// lifecycle entry's event), when it moved.
pub async fn on_purchase(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    customer: &CustomerRecord,
    first_purchase: bool,
    purchase_id: Uuid,
) -> Result<Option<Change>, ApiError> {
    let stage = customer.draft.lifecycle_stage;
    // The history is read only when it can decide.
    if !rules::moves_on_purchase(stage, first_purchase, true) {
        return Ok(None);
    }
    let since_creation = store::stage_unchanged_since_creation(conn, customer.id).await?;
    if !rules::moves_on_purchase(stage, first_purchase, since_creation) {
        return Ok(None);
    }
    let mut draft = customer.draft.clone();
    draft.lifecycle_stage = LifecycleStage::Acquaintance;
    let after = store::update(conn, customer.id, &draft).await?;
    let text = format!("first purchase {purchase_id}");
    let reason = store::StageReason {
        text: Some(&text),
        code: None,
    };
    store::record_stage_change(
        conn,
        after.id,
        Some(stage),
        after.draft.lifecycle_stage,
        actor,
        reason,
    )
    .await?;
    Ok(Some(moved(customer, &after, reason)))
}

/// Whether a purchase could move this customer on (see [`on_purchase`]): when it cannot,
/// whether the purchase is its first need not be asked.
pub fn may_move_on_purchase(customer: &CustomerRecord) -> bool {
    rules::moves_on_purchase(customer.draft.lifecycle_stage, true, true)
}

/// Every lifecycle stage in order, with the course's name and management focus.
pub fn stages() -> Vec<json::LifecycleStageGuide> {
    let texts = |list: &[&str]| list.iter().map(|t| (*t).to_owned()).collect();
    rules::STAGE_GUIDE
        .iter()
        .zip(1u8..)
        .map(|(guide, position)| json::LifecycleStageGuide {
            key: guide.stage,
            position,
            course_name: guide.course_name.map(str::to_owned),
            description: guide.description.to_owned(),
            focus: texts(guide.focus),
            course_focus: guide.course_focus.map(texts),
        })
        .collect()
}

/// One lifecycle history entry as the API shows it.
pub fn lifecycle_change(r: store::LifecycleRecord) -> json::LifecycleChange {
    json::LifecycleChange {
        id: r.id,
        from: r.from_stage,
        to: r.to_stage,
        changed_at: r.changed_at,
        actor_type: r.actor_type,
        actor_id: r.actor_id,
        reason: r.reason,
        reason_code: r.reason_code,
    }
}

/// A customer's lifecycle history, oldest first.
pub async fn lifecycle(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Vec<json::LifecycleChange>, ApiError> {
    Ok(store::lifecycle(conn, id)
        .await?
        .into_iter()
        .map(lifecycle_change)
        .collect())
}

/// Like [`lock_live`], with the row locked for update: for writes that may change the
/// customer itself further on (its derived authority), so that two of them queue rather
/// than deadlock.
pub async fn lock_live_for_update(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<CustomerRecord, ApiError> {
    let record = store::lock(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    if record.erased_at.is_some() {
        return Err(gone(&record).unwrap_or_else(|| ApiError::not_found("customer")));
    }
    if record.deleted_at.is_some() {
        return Err(ApiError::not_found("customer"));
    }
    Ok(record)
}

/// Brings an organization's derived MAN authority up to date with its contacts (nothing when
/// its authority is set by hand, or already right), audited and announced as any customer
/// update. Call in the transaction that changed its contacts, with the row locked for
/// update ([`lock_live_for_update`]).
pub async fn rederive_authority(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
) -> Result<(), ApiError> {
    let Some(before) = store::lock(conn, id).await? else {
        return Ok(());
    };
    let Some(q) = before
        .draft
        .qualification
        .filter(|q| q.authority_source == json::AuthoritySource::Derived)
    else {
        return Ok(());
    };
    let authority = store::has_current_decision_maker(conn, id).await?;
    if authority == q.authority {
        return Ok(());
    }
    let mut draft = before.draft.clone();
    draft.qualification = Some(json::Qualification { authority, ..q });
    let after = store::update(conn, id, &draft).await?;
    journal::record(conn, actor, updated(&before, &after)).await?;
    Ok(())
}

/// Brings the derived authority of the organizations where `person_id` is a current decision
/// maker up to date, after the person was deleted, restored or erased (a deleted person
/// decides nothing). In the transaction of that change.
pub async fn rederive_for_person(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    person_id: Uuid,
) -> Result<(), ApiError> {
    for organization in store::decided_by(conn, person_id).await? {
        rederive_authority(conn, actor, organization).await?;
    }
    Ok(())
}

/// Locks a customer (live or deleted) for the transaction and checks `If-Match` against it.
pub async fn lock_current(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<CustomerRecord, ApiError> {
    let record = store::lock(conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found("customer"))?;
    if_match.check(record.version)?;
    Ok(record)
}

fn gone(record: &CustomerRecord) -> Option<ApiError> {
    if record.erased_at.is_some() {
        Some(ApiError::conflict(
            "this customer's personal data was erased",
        ))
    } else if record.deleted_at.is_some() {
        Some(ApiError::conflict(
            "this customer is deleted; restore it first",
        ))
    } else {
        None
    }
}

/// Creates a customer. A caller limited to their own customers becomes its account manager
/// (naming anyone else is `403`).
pub async fn create(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    input: CustomerInput,
) -> Result<CustomerRecord, ApiError> {
    let applied =
        rules::apply(input, &CustomerDraft::blank(), true, Utc::now()).map_err(invalid)?;
    conn.transaction(async |conn| insert(conn, actor, access, applied).await)
        .await
}

/// Where a merged customer went, when `id` is one and the caller may see the survivor
/// (owned-only access: the survivor must be theirs).
pub async fn merged_into(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    id: Uuid,
) -> Result<Option<json::MergedCustomer>, ApiError> {
    let Some(survivor) = store::tombstone(conn, id).await? else {
        return Ok(None);
    };
    let record = store::get(conn, survivor).await?;
    if !record.is_some_and(|r| principal.access.allows(r.draft.account_manager_id)) {
        return Ok(None);
    }
    Ok(Some(json::MergedCustomer {
        id,
        merged_into: survivor,
        location: format!("/v1/customers/{survivor}"),
    }))
}

/// A customer the duplicate rules matched: its id and the reasons.
pub struct Matched {
    pub id: Uuid,
    pub reasons: Vec<json::DuplicateReason>,
}

impl Matched {
    pub fn score(&self) -> i64 {
        matching::score(&self.reasons)
    }

    /// `matches customer {id} (score {score}, by {reasons})`: what an answer or an import's
    /// error file says of the match.
    pub fn describe(&self) -> String {
        let reasons: Vec<&str> = self.reasons.iter().map(|r| r.as_str()).collect();
        format!(
            "matches customer {} (score {}, by {})",
            self.id,
            self.score(),
            reasons.join(", ")
        )
    }

    /// The fields that matched, one per reason.
    pub fn fields(&self) -> Vec<&'static str> {
        fields_of(&self.reasons)
    }
}

/// The field each reason of a match names, one per reason.
pub fn fields_of(reasons: &[json::DuplicateReason]) -> Vec<&'static str> {
    reasons
        .iter()
        .map(|r| match r {
            json::DuplicateReason::Email => "email",
            json::DuplicateReason::Phone => "phone",
            json::DuplicateReason::NameAddress => "name",
            json::DuplicateReason::ExternalId => "external_id",
        })
        .collect()
}

/// The live customers of the same kind `draft` matches by the duplicate rules, best first
/// (highest score, then oldest id). An owned-only caller matches only their own customers.
pub async fn find_matches(
    conn: &mut AsyncPgConnection,
    draft: &CustomerDraft,
    itself: Option<Uuid>,
    access: CustomerAccess,
) -> Result<Vec<Matched>, ApiError> {
    Ok(find_matches_many(conn, &[draft], itself, access)
        .await?
        .pop()
        .unwrap_or_default())
}

/// [`find_matches`] for each of `drafts` (a batch of an import), in one statement.
pub async fn find_matches_many(
    conn: &mut AsyncPgConnection,
    drafts: &[&CustomerDraft],
    itself: Option<Uuid>,
    access: CustomerAccess,
) -> Result<Vec<Vec<Matched>>, ApiError> {
    let mut all: Vec<Vec<Matched>> = drafts.iter().map(|_| Vec::new()).collect();
    if drafts.is_empty() {
        return Ok(all);
    }
    let rows = store::matches(conn, drafts, itself, access.owner(), matching::RULES).await?;
    for row in rows {
        let Some(draft) = usize::try_from(row.i).ok().and_then(|i| drafts.get(i)) else {
            continue;
        };
        if row.kind != draft.kind.as_str() {
            continue;
        }
        let Ok(reason) = row.reason.parse::<json::DuplicateReason>() else {
            continue;
        };
        let found = &mut all[row.i as usize];
        match found.last_mut() {
            Some(last) if last.id == row.id => {
                if !last.reasons.contains(&reason) {
                    last.reasons.push(reason);
                }
            }
            _ => found.push(Matched {
                id: row.id,
                reasons: vec![reason],
            }),
        }
    }
    for found in &mut all {
        for m in found.iter_mut() {
            m.reasons.sort();
        }
        found.sort_by(|a, b| b.score().cmp(&a.score()).then(a.id.cmp(&b.id)));
    }
    Ok(all)
}

/// An earlier draft of the same batch that a draft matches by the duplicate rules: its index
/// and the reasons.
pub struct MatchedEarlier {
    pub index: usize,
    pub reasons: Vec<json::DuplicateReason>,
}

impl MatchedEarlier {
    pub fn score(&self) -> i64 {
        matching::score(&self.reasons)
    }
}

/// For each of `drafts` (a batch of an import, in its order), the earlier drafts of the batch
/// of the same kind it matches by the duplicate rules, best first (highest score, then the
/// earliest): in one statement, by the same keys [`find_matches_many`] compares with the live
/// customers, so that two new rows of one file are held to the rules a new row and a stored
/// customer are.
pub async fn find_matches_within(
    conn: &mut AsyncPgConnection,
    drafts: &[&CustomerDraft],
) -> Result<Vec<Vec<MatchedEarlier>>, ApiError> {
    let mut all: Vec<Vec<MatchedEarlier>> = drafts.iter().map(|_| Vec::new()).collect();
    if drafts.len() < 2 {
        return Ok(all);
    }
    for row in store::batch_matches(conn, drafts, matching::RULES).await? {
        let (Ok(i), Ok(j)) = (usize::try_from(row.i), usize::try_from(row.j)) else {
            continue;
        };
        let (Some(later), Some(earlier)) = (drafts.get(i), drafts.get(j)) else {
            continue;
        };
        if later.kind != earlier.kind {
            continue;
        }
        let Ok(reason) = row.reason.parse::<json::DuplicateReason>() else {
            continue;
        };
        let found = &mut all[i];
        match found.last_mut() {
            Some(last) if last.index == j => {
                if !last.reasons.contains(&reason) {
                    last.reasons.push(reason);
                }
            }
            _ => found.push(MatchedEarlier {
                index: j,
                reasons: vec![reason],
            }),
        }
    }
    for found in &mut all {
        for m in found.iter_mut() {
            m.reasons.sort();
        }
        found.sort_by(|a, b| b.score().cmp(&a.score()).then(a.index.cmp(&b.index)));
    }
    Ok(all)
}

/// The `409` of `on_duplicate=fail`: names the matched customer (also in `Location`) and,
/// per reason, the field that matched.
fn matched_error(m: &Matched) -> ApiError {
    let errors = m
        .fields()
        .into_iter()
        .map(|field| crate::http::FieldError::new(field, format!("matches customer {}", m.id)))
        .collect();
    let location = format!("/v1/customers/{}", m.id);
    let mut err = ApiError::new(ErrorCode::Duplicate, m.describe()).with_errors(errors);
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(&location) {
        err = err.with_header(actix_web::http::header::LOCATION, value);
    }
    err
}

/// Creates a customer unless it matches a live one of the same kind by the duplicate rules;
/// on a match, `on_duplicate` decides (see [`json::OnDuplicate`]). `true` when created.
pub async fn create_checked(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    input: CustomerInput,
    on_duplicate: json::OnDuplicate,
) -> Result<(CustomerRecord, bool), ApiError> {
    let now = Utc::now();
    let applied = rules::apply(input, &CustomerDraft::blank(), true, now).map_err(invalid)?;
    conn.transaction(async |conn| {
        let found = find_matches(conn, &applied.draft, None, access).await?;
        let Some(best) = found.first() else {
            return Ok((insert(conn, actor, access, applied).await?, true));
        };
        match on_duplicate {
            json::OnDuplicate::Fail => Err(matched_error(best)),
            json::OnDuplicate::Skip => Ok((live(store::get(conn, best.id).await?)?, false)),
            json::OnDuplicate::Merge => {
                let before = live(store::lock(conn, best.id).await?)?;
                let sides = [
                    matching::Side {
                        draft: &before.draft,
                        updated_at: before.updated_at,
                    },
                    matching::Side {
                        draft: &applied.draft,
                        updated_at: now,
                    },
                ];
                let draft = matching::combine(&sides, &std::collections::HashMap::new());
                if draft == before.draft {
                    return Ok((before, false));
                }
                check_manager(conn, &draft, Some(&before.draft)).await?;
                let after = store::update(conn, before.id, &draft).await?;
                journal::record(conn, actor, updated(&before, &after)).await?;
                Ok((after, false))
            }
        }
    })
    .await
}

/// Updates a live customer (`404` for one the caller may not reach).
pub async fn update(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    id: Uuid,
    if_match: &IfMatch,
    input: CustomerInput,
) -> Result<CustomerRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = store::lock(conn, id)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .ok_or_else(|| ApiError::not_found("customer"))?;
        change(conn, actor, access, before, if_match, input).await
    })
    .await
}

/// Creates the customer with this external id, or updates it (fields absent from the input
/// stay as they are). `true` when created. A caller limited to their own customers whose
/// external id names a customer they do not reach gets `409` on `external_id`, as a create
/// with a taken external id would: it is in use, and stays another's.
pub async fn upsert(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    access: CustomerAccess,
    external_id: &str,
    if_match: &IfMatch,
    mut input: CustomerInput,
) -> Result<(CustomerRecord, bool), ApiError> {
    use crate::http::patch::Patch;
    match &input.external_id {
        Patch::Value(given) if given != external_id => {
            return Err(ApiError::invalid_field(
                "external_id",
                "differs from the external id in the path",
            ));
        }
        Patch::Null => {
            return Err(ApiError::invalid_field(
                "external_id",
                "cannot be cleared through its own upsert",
            ));
        }
        _ => input.external_id = Patch::Value(external_id.to_owned()),
    }
    // A concurrent upsert may insert the same external id between our look and our insert;
    // then the second attempt finds it and updates.
    for attempt in 0..2 {
        let this = input.clone();
        let outcome = conn
            .transaction(async |conn| {
                match store::get_by_external_id(conn, external_id, true).await? {
                    Some(before) => {
                        if !access.allows(before.draft.account_manager_id) {
                            return Err(ApiError::duplicate("external_id"));
                        }
                        if let Some(err) = gone(&before) {
                            return Err(err);
                        }
                        Ok((
                            change(conn, actor, access, before, if_match, this).await?,
                            false,
                        ))
                    }
                    None => {
                        let applied = rules::apply(this, &CustomerDraft::blank(), true, Utc::now())
                            .map_err(invalid)?;
                        Ok((insert(conn, actor, access, applied).await?, true))
                    }
                }
            })
            .await;
        match outcome {
            Err(err) if attempt == 0 && is_duplicate_of(&err, "external_id") => continue,
            other => return other,
        }
    }
    Err(ApiError::conflict(
        "a concurrent change conflicted with this one; retry",
    ))
}

fn is_duplicate_of(err: &ApiError, field: &str) -> bool {
    err.code() == ErrorCode::Duplicate && err.errors().iter().any(|e| e.field == field)
}

/// Soft-deletes a customer, hiding its interactions with it (nothing happens to one already
/// deleted).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<(), ApiError> {
    conn.transaction(async |conn| {
        let before = lock_current(conn, id, if_match).await?;
        if before.deleted_at.is_some() {
            return Ok(());
        }
        let now = Utc::now();
        let after = store::set_deleted(conn, id, Some(now)).await?;
        // Read back: the stored time (microseconds) is what restore matches on.
        let deleted_at = after.deleted_at.unwrap_or(now);
        store::interactions_follow_deletion(conn, id, deleted_at, false).await?;
        let change = Change::updated(
            EventType::CustomerDeleted,
            id,
            &audited(&before),
            &audited(&after),
        );
        journal::record(conn, actor, change).await?;
        rederive_for_person(conn, actor, id).await?;
        Ok(())
    })
    .await
}

/// Restores a deleted customer (an erased one cannot come back), with the interactions that
/// were hidden with it.
pub async fn restore(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    id: Uuid,
    if_match: &IfMatch,
) -> Result<CustomerRecord, ApiError> {
    conn.transaction(async |conn| {
        let before = lock_current(conn, id, if_match).await?;
        if before.erased_at.is_some() {
            return Err(ApiError::conflict("an erased customer cannot be restored"));
        }
        if let Some(survivor) = store::tombstone(conn, id).await? {
            return Err(ApiError::conflict(format!(
                "this customer was merged into {survivor}; undo the merge with \
                 POST /v1/customers/{survivor}/unmerge instead"
            )));
        }
        let Some(deleted_at) = before.deleted_at else {
            return Ok(before);
        };
        let after = store::set_deleted(conn, id, None).await?;
        store::interactions_follow_deletion(conn, id, deleted_at, true).await?;
        let change = Change::updated(
            EventType::CustomerRestored,
            id,
            &audited(&before),
            &audited(&after),
        );
        journal::record(conn, actor, change).await?;
        rederive_for_person(conn, actor, id).await?;
        Ok(after)
    })
    .await
}

/// Applies up to 100 creates or upserts, each on its own as its single endpoint would: valid
/// items are applied even when others fail. The outcomes, in request order.
pub async fn batch(
    pool: &crate::db::DbPool,
    principal: &Principal,
    items: Vec<BatchItem>,
) -> Result<Vec<BatchResult>, ApiError> {
    // Checked before a connection is taken: a bad batch is a 400 even when the pool is busy.
    if items.is_empty() || items.len() > 100 {
        return Err(ApiError::invalid_field("items", "must hold 1 to 100 items"));
    }
    let conn = &mut *pool.get().await?;
    let mut results = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let outcome = batch_item(conn, principal, item.action, item.customer).await;
        results.push(match outcome {
            Ok((record, created)) => BatchResult {
                index,
                status: if created { 201 } else { 200 },
                customer: Some(view_for(principal, record)),
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
    Ok(results)
}

async fn batch_item(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    action: BatchAction,
    customer: serde_json::Value,
) -> Result<(CustomerRecord, bool), ApiError> {
    let bytes = serde_json::to_vec(&customer).map_err(ApiError::internal)?;
    let input: CustomerInput = crate::http::json::parse(&bytes)?;
    match action {
        BatchAction::Create => create(conn, &principal.actor, principal.access, input)
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
            upsert(
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

/// Moves live customers from one of the stages `from` into `to`, each with its reason (and
/// all with `code`), in the caller's transaction and set-wise: one statement updates them (a
/// customer no longer in one of `from` stays), records their stage changes and audit
/// entries; then their events. Returns the customers moved.
pub async fn move_stages(
    conn: &mut AsyncPgConnection,
    actor: &Actor,
    moves: &[(Uuid, String)],
    from: &[LifecycleStage],
    to: LifecycleStage,
    code: Option<ChurnCause>,
) -> diesel::QueryResult<usize> {
    if moves.is_empty() {
        return Ok(0);
    }
    let ids: Vec<Uuid> = moves.iter().map(|(id, _)| *id).collect();
    let before = store::lock_in_stages(conn, &ids, from).await?;
    let written = store::move_stages(conn, actor, moves, &before, to, code).await?;
    let after = store::written_records(conn, &written).await?;
    let pairs: Vec<(&CustomerRecord, &CustomerRecord)> = before
        .iter()
        .filter_map(|b| {
            after
                .binary_search_by_key(&b.id, |a| a.id)
                .ok()
                .map(|i| (b, &after[i]))
        })
        .collect();
    let reasons: std::collections::HashMap<Uuid, &str> = moves
        .iter()
        .map(|(id, text)| (*id, text.as_str()))
        .collect();
    let changes = pairs
        .iter()
        .map(|(b, a)| {
            let text = reasons.get(&a.id).copied();
            moved(b, a, store::StageReason { text, code })
        })
        .collect();
    journal::record_all(conn, actor, changes).await?;
    Ok(pairs.len())
}
