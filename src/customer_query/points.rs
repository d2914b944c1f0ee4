//! Points for many customers in one call: a list of ids or a customer filter, all or
//! nothing, a chunk of customers per statement.

use chrono::Utc;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::json;
use uuid::Uuid;

use super::store::{self as customers, ListFilter};
use crate::auth::Principal;
use crate::domain::required_text;
use crate::http::error::{ApiError, FieldError};
use crate::http::validation::Checks;
use crate::journal::{self, Change};
use crate::loyalty::json::{BulkInput, BulkReport, EntryKind};
use crate::loyalty::ledger::{self, Debit, Postings};

/// Most ids in one request.
pub const MAX_IDS: usize = 10_000;
/// Customers per statement.
const CHUNK: usize = 5000;

enum Selection {
    Ids(Vec<Uuid>),
    Filter(Box<ListFilter>),
}

fn validate(principal: &Principal, input: BulkInput) -> Result<(Selection, String), ApiError> {
    let mut checks = Checks::new();
    checks.check("points", crate::loyalty::adjustment(input.points));
    let reason = checks.check("reason", required_text(&input.reason, 500));
    let selection = match (input.customer_ids, input.filter) {
        (Some(ids), None) if ids.is_empty() || ids.len() > MAX_IDS => {
            checks.fail("customer_ids", format!("must hold 1 to {MAX_IDS} ids"));
            None
        }
        (Some(mut ids), None) => {
            ids.sort_unstable();
            ids.dedup();
            Some(Selection::Ids(ids))
        }
        (None, Some(filter)) => match super::filter_from_query(principal, "filter", &filter) {
            Ok(filter) => Some(Selection::Filter(Box::new(filter))),
            Err(err) => {
                for e in err.errors() {
                    checks.fail(&e.field, e.message.clone());
                }
                None
            }
        },
        _ => {
            checks.fail("customer_ids", "give either `customer_ids` or `filter`");
            None
        }
    };
    let value = selection.zip(reason);
    checks.done(value)
}

/// Moves `points` for each selected customer: awards open a lot each; takes spend lots
/// oldest expiring first and fail the whole request (`409`, naming customers) when any
/// customer holds too few.
/// The audit entry of (a chunk of) a bulk posting.
fn audited(points_each: i64, part: &BulkReport, reason: &str) -> Change {
    Change::audited(
        "loyalty.points_bulk",
        "loyalty_program",
        "points",
        json!({"points_each": points_each, "customers": part.customers,
               "points": part.points, "reason": reason}),
    )
}

pub async fn award(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    input: BulkInput,
) -> Result<BulkReport, ApiError> {
    let points = input.points;
    let (selection, reason) = validate(principal, input)?;
    let actor = &principal.actor;
    conn.transaction(async |conn| {
        let mut report = BulkReport {
            customers: 0,
            points: 0,
            entries: 0,
        };
        let mut after = Uuid::nil();
        let mut offset = 0;
        loop {
            let ids = match &selection {
                Selection::Ids(all) => {
                    let chunk = &all[offset..(offset + CHUNK).min(all.len())];
                    offset += chunk.len();
                    let missing =
                        crate::customers::store::not_live(conn, chunk, principal.access.owner())
                            .await?;
                    if !missing.is_empty() {
                        return Err(ApiError::validation(
                            missing
                                .iter()
                                .take(20)
                                .map(|id| {
                                    FieldError::new(
                                        "customer_ids",
                                        format!("{id} is no live customer"),
                                    )
                                })
                                .collect(),
                        ));
                    }
                    chunk.to_vec()
                }
                Selection::Filter(filter) => {
                    customers::ids_after(conn, filter, after, CHUNK as i64).await?
                }
            };
            let Some(&last) = ids.last() else { break };
            after = last;
            let now = Utc::now();
            let (balances, mut changes) =
                crate::loyalty::members::open_accounts(conn, &ids, now).await?;
            if points < 0 {
                let short: Vec<FieldError> = balances
                    .iter()
                    .filter(|b| b.balance < -points)
                    .take(20)
                    .map(|b| {
                        FieldError::new(
                            "points",
                            format!("customer {} holds only {} points", b.customer_id, b.balance),
                        )
                    })
                    .collect();
                if !short.is_empty() {
                    return Err(ApiError::conflict(
                        "some customers hold too few points; nothing was taken",
                    )
                    .with_errors(short));
                }
            }
            let posting_ids: Vec<Uuid> = ids.iter().map(|_| Uuid::now_v7()).collect();
            let amounts = vec![points.abs(); ids.len()];
            let postings = Postings {
                customer_ids: &ids,
                posting_ids: &posting_ids,
                points: &amounts,
                reason: Some(&reason),
            };
            let entries = if points > 0 {
                ledger::credit(conn, actor, &postings).await?
            } else {
                let debit = Debit {
                    kind: EntryKind::Adjust,
                    purchase: None,
                };
                ledger::debit(conn, actor, &postings, debit).await?
            };
            let part = BulkReport {
                customers: i64::try_from(ids.len()).unwrap_or(i64::MAX),
                points: entries.iter().map(|e| e.points).sum::<i64>(),
                entries: i64::try_from(entries.len()).unwrap_or(i64::MAX),
            };
            changes.entries.extend(entries);
            // Each chunk is written down with its own events, so that memory stays that of
            // one chunk whatever the selection's size.
            let events = changes.events(conn, now).await?;
            journal::record(conn, actor, audited(points, &part, &reason).and_all(events)).await?;
            report.customers += part.customers;
            report.points += part.points;
            report.entries += part.entries;
        }
        if report.customers == 0 {
            journal::record(conn, actor, audited(points, &report, &reason)).await?;
        }
        Ok(report)
    })
    .await
}
