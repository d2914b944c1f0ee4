//! Duplicates (issue 23): finding customers that look like one, marking pairs that are
//! not, merging duplicates into a survivor (everything that hangs off a customer moves, the
//! merged records become tombstones) and undoing a merge within a window.
//!
//! The rules that find candidates are the customers area's (`customers::matching`, and the
//! keys' indexes of the migration), so that `POST /v1/customers?on_duplicate=` and this list
//! agree. A merge touches every area that hangs off a customer, so it lives up here.

pub mod json;
mod routes;
pub mod rules;
mod store;

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::customers::json::{CustomerKind, DuplicateReason};
use crate::customers::matching;
use crate::customers::store::CustomerRecord;
use crate::events::{EventType, NewEvent};
use crate::http::error::{ApiError, FieldError};
use crate::http::etag::IfMatch;
use crate::http::pagination::{Page, PageRequest};
use crate::journal::{self, Change};
use json::{
    DuplicateCustomer, DuplicatePair, KeptCounts, MergeInput, MergeReport, MergeSummary,
    NotDuplicate, UnmergeReport,
};

pub use routes::configure;

/// The name of the list's one order, which its cursors carry.
pub const ORDER: &str = "score";

/// A cursor of the list: the last pair's score and ids.
pub type Cursor = (i64, Uuid, Uuid);

fn customer(
    id: Uuid,
    kind: &str,
    name: String,
    email: Option<String>,
    phone: Option<String>,
    external_id: Option<String>,
    (created_at, updated_at): (DateTime<Utc>, DateTime<Utc>),
) -> DuplicateCustomer {
    DuplicateCustomer {
        id,
        kind: kind.parse().unwrap_or(CustomerKind::Individual),
        name,
        email,
        phone,
        external_id,
        created_at,
        updated_at,
    }
}

/// A page of likely duplicate pairs the caller may see, best first.
pub async fn list(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    reason: Option<DuplicateReason>,
    page: &PageRequest<Cursor>,
) -> Result<Page<DuplicatePair>, ApiError> {
    let rows = store::list(
        conn,
        store::ListRequest {
            owner: principal.access.owner(),
            reason,
            after: page.after,
            fetch: page.fetch(),
        },
    )
    .await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let key = (r.score, r.a_id, r.b_id);
            let pair = DuplicatePair {
                score: r.score,
                reasons: r.reasons.iter().filter_map(|x| x.parse().ok()).collect(),
                customers: vec![
                    customer(
                        r.a_id,
                        &r.a_kind,
                        r.a_name,
                        r.a_email,
                        r.a_phone,
                        r.a_external_id,
                        (r.a_created_at, r.a_updated_at),
                    ),
                    customer(
                        r.b_id,
                        &r.b_kind,
                        r.b_name,
                        r.b_email,
                        r.b_phone,
                        r.b_external_id,
                        (r.b_created_at, r.b_updated_at),
                    ),
                ],
            };
            (pair, key)
        })
        .collect();
    Ok(crate::http::pagination::page_keyed(rows, page, ORDER))
}

/// Marks two live customers the caller may see as not duplicates; `true` when newly marked.
pub async fn not_duplicate(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    ids: &[Uuid],
) -> Result<(NotDuplicate, bool), ApiError> {
    let (a, b) = rules::pair(ids).map_err(|e| ApiError::validation(vec![e]))?;
    conn.transaction(async |conn| {
        let found = store::customers(conn, &[a, b]).await?;
        let mut errors = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let seen = found.iter().any(|r| {
                r.id == *id
                    && r.deleted_at.is_none()
                    && principal.access.allows(r.draft.account_manager_id)
            });
            if !seen {
                errors.push(FieldError::new(
                    format!("customer_ids[{i}]"),
                    "is no live customer you can see",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let (marked_at, new) = store::mark_not_duplicate(conn, a, b, &principal.actor).await?;
        let shown = NotDuplicate {
            customer_ids: vec![a, b],
            marked_at,
        };
        if new {
            let change = Change::audited(
                "customer.marked_not_duplicate",
                "customer",
                a,
                json!({ "customer_ids": [a, b] }),
            );
            journal::record(conn, &principal.actor, change).await?;
        }
        Ok((shown, new))
    })
    .await
}

/// Why a customer cannot take part in a merge, if it cannot.
fn unfit(
    record: &CustomerRecord,
    tombstone: bool,
    survivor: &CustomerRecord,
    field: &str,
) -> Option<ApiError> {
    let id = record.id;
    if record.erased_at.is_some() {
        return Some(ApiError::conflict(format!(
            "customer {id} was erased; it cannot be merged"
        )));
    }
    if tombstone {
        return Some(ApiError::conflict(format!(
            "customer {id} was merged already; merge into the customer it points to"
        )));
    }
    if record.deleted_at.is_some() {
        return Some(ApiError::conflict(format!(
            "customer {id} is deleted; restore it first"
        )));
    }
    if record.draft.kind != survivor.draft.kind {
        return Some(ApiError::invalid_field(
            field,
            format!(
                "is an {} and the survivor an {}: customers of different kinds are not merged",
                record.draft.kind, survivor.draft.kind
            ),
        ));
    }
    None
}

/// Merges `input.merge_ids` into `survivor_id` in one transaction: every row that hangs off
/// them moves to the survivor (recorded, so that [`unmerge`] can move it back), the fields
/// follow `input.fields`, and the merged customers become tombstones that point to it.
pub async fn merge(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    survivor_id: Uuid,
    if_match: &IfMatch,
    input: MergeInput,
    window: Duration,
) -> Result<MergeReport, ApiError> {
    let others = rules::merged(survivor_id, &input.merge_ids).map_err(ApiError::validation)?;
    matching::check_choices(&input.fields).map_err(ApiError::validation)?;
    let actor = &principal.actor;
    let access = principal.access;
    conn.transaction(async |conn| {
        let mut everyone = others.clone();
        everyone.push(survivor_id);
        let locked = store::lock_customers(conn, &everyone).await?;
        let tombstones = store::tombstones_among(conn, &everyone).await?;
        let find = |id: Uuid| {
            locked
                .iter()
                .find(|r| r.id == id && access.allows(r.draft.account_manager_id))
        };
        let survivor = find(survivor_id)
            .filter(|r| r.deleted_at.is_none() || tombstones.contains(&r.id))
            .ok_or_else(|| ApiError::not_found("customer"))?
            .clone();
        if let Some(err) = unfit(
            &survivor,
            tombstones.contains(&survivor_id),
            &survivor,
            "id",
        ) {
            return Err(err);
        }
        if_match.check(survivor.version)?;
        let mut merged: Vec<CustomerRecord> = Vec::with_capacity(others.len());
        let mut missing = Vec::new();
        for (i, id) in others.iter().enumerate() {
            let field = format!("merge_ids[{i}]");
            match find(*id) {
                None => missing.push(FieldError::new(field, "is no customer you can see")),
                Some(record) => {
                    if let Some(err) = unfit(record, tombstones.contains(id), &survivor, &field) {
                        return Err(err);
                    }
                    merged.push(record.clone());
                }
            }
        }
        if !missing.is_empty() {
            return Err(ApiError::validation(missing));
        }

        let merge_id = Uuid::now_v7();
        let before = store::snapshot(conn, &everyone).await?;
        let derived = store::derived(conn, survivor_id).await?;
        let merged_at = store::insert_merge(
            conn,
            merge_id,
            survivor_id,
            &others,
            &before,
            &derived,
            actor,
        )
        .await?;

        // Loyalty first: the survivor's account must exist before its lots and entries move.
        let opened = store::open_account(conn, survivor_id, &others).await?;
        let points = store::move_balances(conn, merge_id, survivor_id, &others).await?;
        let mut moved: Vec<(&str, i64)> = Vec::new();
        for simple in store::SIMPLE_MOVES {
            let n = store::move_rows(conn, merge_id, *simple, survivor_id, &others).await?;
            moved.push((simple.0, n));
        }
        let responses = store::move_responses(conn, merge_id, survivor_id, &others).await?;
        moved.push(("survey_response", responses));
        let renamed =
            store::rename_opportunity_contacts(conn, merge_id, survivor_id, &others).await?;
        moved.push(("opportunity_contact", renamed));
        let links = store::move_contacts(conn, merge_id, survivor_id, &others).await?;
        store::rederive_answers(conn, survivor_id, &others).await?;
        // The summed points may reach a higher tier: moved up now, as a purchase would be.
        let (raised, tier_events) = crate::loyalty::members::after_merge(conn, survivor_id).await?;
        let raised_ids: Vec<Uuid> = raised.iter().map(|c| c.id).collect();
        store::record_tier_raises(conn, merge_id, survivor_id, &raised_ids).await?;
        // The analytics figures of everyone involved were computed from rows that moved:
        // forgotten (read as not computed) until the next computation.
        crate::analytics::store::forget(conn, &everyone).await?;

        // The fields, then the tombstones (which give up the unique keys the survivor takes).
        let sides: Vec<matching::Side<'_>> = std::iter::once(&survivor)
            .chain(merged.iter())
            .map(|r| matching::Side {
                draft: &r.draft,
                updated_at: r.updated_at,
            })
            .collect();
        let draft = matching::combine(&sides, &input.fields);
        let taken_email = draft
            .email
            .as_ref()
            .filter(|e| {
                survivor
                    .draft
                    .email
                    .as_ref()
                    .map(crate::domain::Email::lowercase)
                    != Some(e.lowercase())
            })
            .map(|e| e.as_str().to_owned());
        let taken_external_id = draft
            .external_id
            .clone()
            .filter(|e| survivor.draft.external_id.as_ref() != Some(e));
        store::bury(
            conn,
            merge_id,
            survivor_id,
            &others,
            merged_at,
            taken_email.as_deref(),
            taken_external_id.as_deref(),
        )
        .await?;
        crate::customers::store::update(conn, survivor_id, &draft).await?;
        if survivor.draft.kind == CustomerKind::Organization {
            crate::customers::rederive_authority(conn, actor, survivor_id).await?;
        }
        let after = crate::customers::store::get(conn, survivor_id)
            .await?
            .ok_or_else(|| ApiError::not_found("customer"))?;

        let kept = KeptCounts {
            survey_responses: store::still_held(
                conn,
                "survey_responses",
                &["customer_id"],
                &others,
            )
            .await?,
            contact_links: store::still_held(
                conn,
                "contacts",
                &["organization_id", "person_id"],
                &others,
            )
            .await?,
            lifecycle_changes: store::lifecycle_changes(conn, &others).await?,
        };
        let summary = MergeSummary {
            merge_id,
            survivor_id,
            merged_ids: others.clone(),
            moved: rules::counts(&moved, points, links),
            kept,
            tags_added: rules::tags_added(&survivor.draft.tags, &after.draft.tags),
            attributes_added: rules::attributes_added(
                &survivor.draft.attributes,
                &after.draft.attributes,
            ),
            tier_raised_to: raised.last().and_then(|c| c.to_tier.clone()),
            merged_at,
            unmerge_until: merged_at
                + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero()),
        };
        let report = serde_json::to_value(&summary).map_err(ApiError::internal)?;
        store::finish_merge(conn, merge_id, after.version, opened, &report).await?;

        let mut changes = vec![
            crate::customers::updated(&survivor, &after),
            Change::announced(
                NewEvent::new(EventType::CustomerMerged, merge_id, &summary),
                report.clone(),
            )
            .and_all(tier_events),
        ];
        for record in &merged {
            changes.push(Change::audited(
                "customer.merged_into",
                "customer",
                record.id,
                json!({ "merged_into": survivor_id, "merge_id": merge_id }),
            ));
        }
        journal::record_all(conn, actor, changes).await?;
        Ok(MergeReport {
            summary,
            survivor: crate::customers::view_for(principal, after),
        })
    })
    .await
}

/// Undoes a merge of `survivor_id` (`merge_id`, or its latest) within `window` of it, when
/// nothing new was written to what it moved nor to the survivor since: the rows move back,
/// the survivor and the merged customers are as they were before it (each a new version).
pub async fn unmerge(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    survivor_id: Uuid,
    merge_id: Option<Uuid>,
    window: Duration,
) -> Result<UnmergeReport, ApiError> {
    let actor = &principal.actor;
    conn.transaction(async |conn| {
        let survivor = crate::customers::store::lock(conn, survivor_id)
            .await?
            .filter(|r| r.deleted_at.is_none())
            .filter(|r| principal.access.allows(r.draft.account_manager_id))
            .ok_or_else(|| ApiError::not_found("customer"))?;
        let merge = store::lock_merge(conn, survivor_id, merge_id)
            .await?
            .ok_or_else(|| ApiError::not_found("merge"))?;
        if let Some(at) = merge.unmerged_at {
            return Err(ApiError::conflict(format!(
                "merge {} was undone already, at {}",
                merge.id,
                at.to_rfc3339()
            )));
        }
        let until = merge.merged_at
            + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero());
        if Utc::now() > until {
            return Err(ApiError::conflict(format!(
                "merge {} can no longer be undone: its window closed at {} \
                 (RAPPORT_MERGE_UNDO_WINDOW)",
                merge.id,
                until.to_rfc3339()
            )));
        }
        if survivor.version != merge.survivor_version {
            return Err(ApiError::conflict(format!(
                "customer {survivor_id} changed since merge {} (version {} then, {} now); \
                 undoing it would lose that change",
                merge.id, merge.survivor_version, survivor.version
            )));
        }
        let written = store::written_since(conn, &merge).await?;
        if !written.is_empty() {
            let what: Vec<String> = written
                .iter()
                .map(|w| format!("{} {}", w.n, w.what.replace('_', " ")))
                .collect();
            return Err(ApiError::conflict(format!(
                "merge {} cannot be undone: written since it: {}",
                merge.id,
                what.join(", ")
            )));
        }
        let tombs = store::lock_customers(conn, &merge.merged_ids).await?;
        if let Some(erased) = tombs.iter().find(|r| r.erased_at.is_some()) {
            return Err(ApiError::conflict(format!(
                "customer {} was erased since the merge; it cannot come back",
                erased.id
            )));
        }

        let mut moved: Vec<(&str, i64)> = Vec::new();
        let responses = store::move_rows_back(
            conn,
            merge.id,
            ("survey_response", "survey_responses", "customer_id"),
        )
        .await?;
        moved.push(("survey_response", responses));
        for simple in store::SIMPLE_MOVES.iter().rev() {
            let n = store::move_rows_back(conn, merge.id, *simple).await?;
            moved.push((simple.0, n));
        }
        let renamed = store::rename_opportunity_contacts_back(conn, merge.id, survivor_id).await?;
        moved.push(("opportunity_contact", renamed));
        let links = store::move_contacts_back(conn, merge.id).await?;
        store::undo_tier_raises(conn, merge.id, survivor_id, &merge.survivor_derived).await?;
        let points = store::move_balances_back(conn, merge.id, survivor_id).await?;
        if merge.opened_account {
            store::close_account(conn, survivor_id).await?;
        }
        store::restore_derived(conn, survivor_id, &merge.survivor_derived).await?;
        store::restore_customers(conn, &merge).await?;
        store::close_merge(conn, merge.id).await?;
        let mut everyone = merge.merged_ids.clone();
        everyone.push(survivor_id);
        crate::analytics::store::forget(conn, &everyone).await?;

        let after = store::customers(conn, &everyone).await?;
        let mut changes = Vec::new();
        let mut restored = Vec::new();
        let mut survivor_after = None;
        for record in after {
            if record.id == survivor_id {
                changes.push(crate::customers::updated(&survivor, &record));
                survivor_after = Some(record);
            } else if let Some(tomb) = tombs.iter().find(|t| t.id == record.id) {
                changes.push(Change::updated(
                    EventType::CustomerRestored,
                    record.id,
                    &crate::customers::audited(tomb),
                    &crate::customers::audited(&record),
                ));
                restored.push(crate::customers::view_for(principal, record));
            }
        }
        let moved_back = rules::counts(&moved, points, links);
        let mut data = merge.report.clone();
        if let serde_json::Value::Object(fields) = &mut data {
            fields.insert(
                "moved_back".to_owned(),
                serde_json::to_value(&moved_back).unwrap_or_default(),
            );
        }
        changes.push(Change::announced(
            NewEvent::new(EventType::CustomerUnmerged, merge.id, &data),
            json!({ "merge_id": merge.id, "moved_back": moved_back }),
        ));
        journal::record_all(conn, actor, changes).await?;
        let survivor_after = survivor_after.ok_or_else(|| ApiError::not_found("customer"))?;
        Ok(UnmergeReport {
            merge_id: merge.id,
            survivor: crate::customers::view_for(principal, survivor_after),
            restored,
            moved_back,
        })
    })
    .await
}
