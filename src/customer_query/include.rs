//! `GET /v1/customers?q=…&include=organizations`: a search that also finds the organizations
//! of the people it finds (those where a found person is a current contact).
//!
//! The list is the search's own ranking (distance, then id) with organizations slotted in: an
//! organization stands right after the best ranked person through whom it is found, or at
//! its own rank when it matches `q` itself and ranks better so; it is listed once, at the
//! first of those places. Its key is (distance, that person's id, its own id), so a page may
//! end between a person and their organizations and the next one goes on from there: paging
//! stays keyset, deterministic and stable under inserts, whatever the page size.
//!
//! A page reads the search page by page; for each page it reads the found people's current
//! organizations, those organizations' other current contacts, and which of those the search
//! finds and how well (one lookup by id): an organization found through a better ranked
//! person (on an earlier page or this one) is left where that person put it.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use diesel_async::AsyncPgConnection;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::json::CustomerSort;
use super::store::{self, CursorKey, ListFilter};
use crate::auth::Principal;
use crate::customers::json::{Customer, CustomerKind};
use crate::customers::view_for;
use crate::http::error::ApiError;
use crate::http::query::invalid;

/// The ordering name cursors of such a list carry (they fit no other list).
pub const ORDER: &str = "relevance+organizations";

/// Where a row stands: its distance from `q`, the id of the customer found (the row itself,
/// or the person through whom an organization was found), and the organization's id for a
/// row found through a person. Compared in that order, a missing organization first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HitKey(pub f32, pub Uuid, pub Option<Uuid>);

impl HitKey {
    fn order(&self, other: &HitKey) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then(self.1.cmp(&other.1))
            .then(self.2.cmp(&other.2))
    }
}

/// A row of the answer before its record is read: the customer, and the person it was found
/// through.
struct Hit {
    id: Uuid,
    via: Option<Uuid>,
    key: HitKey,
}

/// A customer the search found, as the walk sees it.
struct Found {
    id: Uuid,
    distance: f32,
    organization: bool,
    /// Whether it is listed itself (the row a cursor points at was listed on the page before).
    listed: bool,
}

/// The best place of each of `organizations`: its own rank, when the search finds it, or the
/// rank of its best ranked current contact the search finds; those with neither are left out.
async fn best_places(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    organizations: &[Uuid],
) -> Result<HashMap<Uuid, HitKey>, ApiError> {
    let people =
        crate::contacts::store::current_people_at(conn, organizations, filter.owner).await?;
    let mut ids: Vec<Uuid> = organizations.to_vec();
    ids.extend(people.iter().map(|(_, person)| *person));
    ids.sort_unstable();
    ids.dedup();
    let distances: HashMap<Uuid, f32> = store::distances_of(conn, filter, &ids)
        .await?
        .into_iter()
        .collect();
    let mut best: HashMap<Uuid, HitKey> = HashMap::new();
    let mut offer = |organization: Uuid, key: HitKey| {
        best.entry(organization)
            .and_modify(|b| {
                if key.order(b) == Ordering::Less {
                    *b = key;
                }
            })
            .or_insert(key);
    };
    for organization in organizations {
        if let Some(d) = distances.get(organization) {
            offer(*organization, HitKey(*d, *organization, None));
        }
    }
    for (organization, person) in people {
        if let Some(d) = distances.get(&person) {
            offer(organization, HitKey(*d, person, Some(organization)));
        }
    }
    Ok(best)
}

/// The rows a run of found customers (in the search's order) makes: each one, unless it is an
/// organization found earlier through a person, followed by the organizations found through
/// it (in id order), after `after`.
async fn rows_of(
    conn: &mut AsyncPgConnection,
    filter: &ListFilter,
    found: &[Found],
    after: Option<HitKey>,
) -> Result<Vec<Hit>, ApiError> {
    let people: Vec<Uuid> = found.iter().map(|f| f.id).collect();
    let links =
        crate::contacts::store::current_organizations_of(conn, &people, filter.owner).await?;
    let mut candidates: Vec<Uuid> = links
        .iter()
        .map(|(_, organization)| *organization)
        .collect();
    candidates.extend(found.iter().filter(|f| f.organization).map(|f| f.id));
    candidates.sort_unstable();
    candidates.dedup();
    let best = best_places(conn, filter, &candidates).await?;
    let mut through: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (person, organization) in links {
        through.entry(person).or_default().push(organization);
    }
    let mut rows = Vec::new();
    for f in found {
        let own = HitKey(f.distance, f.id, None);
        let found_earlier = best.get(&f.id).is_some_and(|b| b.2.is_some());
        if f.listed && !found_earlier {
            rows.push(Hit {
                id: f.id,
                via: None,
                key: own,
            });
        }
        let mut organizations: Vec<Uuid> = through
            .remove(&f.id)
            .unwrap_or_default()
            .into_iter()
            .filter(|o| best.get(o).is_some_and(|b| b.1 == f.id && b.2 == Some(*o)))
            .collect();
        organizations.sort_unstable();
        organizations.dedup();
        rows.extend(organizations.into_iter().map(|o| Hit {
            id: o,
            via: Some(f.id),
            key: HitKey(f.distance, f.id, Some(o)),
        }));
    }
    if let Some(after) = after {
        rows.retain(|r| r.key.order(&after) == Ordering::Greater);
    }
    Ok(rows)
}

/// A page of the search with the organizations of the people it finds, after `after`, at most
/// `fetch` rows, each with its key.
pub async fn list(
    conn: &mut AsyncPgConnection,
    principal: &Principal,
    filter: &ListFilter,
    after: Option<HitKey>,
    fetch: i64,
) -> Result<Vec<(Customer, HitKey)>, ApiError> {
    let fetch = usize::try_from(fetch).unwrap_or(1).max(1);
    let mut hits: Vec<Hit> = Vec::new();
    let mut stream_after = None;
    if let Some(key @ HitKey(distance, id, _)) = after {
        // The rest of the organizations found through the row the last page ended at.
        let at = Found {
            id,
            distance,
            organization: false,
            listed: false,
        };
        hits = rows_of(conn, filter, &[at], Some(key)).await?;
        stream_after = Some(CursorKey::Distance(distance, id));
    }
    while hits.len() < fetch {
        let want = fetch - hits.len();
        let page = store::list(
            conn,
            filter,
            CustomerSort::Relevance,
            stream_after.clone(),
            i64::try_from(want).unwrap_or(i64::MAX),
        )
        .await
        .map_err(|err| match err {
            diesel::result::Error::NotFound => invalid("cursor", "does not fit this sort order"),
            other => ApiError::from(other),
        })?;
        let Some(last) = page.last() else {
            break;
        };
        stream_after = Some(last.cursor(CustomerSort::Relevance));
        let ended = page.len() < want;
        let found: Vec<Found> = page
            .iter()
            .map(|row| Found {
                id: row.record.id,
                distance: row.distance,
                organization: row.record.draft.kind == CustomerKind::Organization,
                listed: true,
            })
            .collect();
        hits.extend(rows_of(conn, filter, &found, None).await?);
        if ended {
            break;
        }
    }
    hits.truncate(fetch);
    let ids: HashSet<Uuid> = hits.iter().map(|h| h.id).collect();
    let records: HashMap<Uuid, crate::customers::store::CustomerRecord> =
        crate::customers::store::written_records(conn, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id, r))
            .collect();
    let mut rows = Vec::with_capacity(hits.len());
    for hit in hits {
        let Some(record) = records.get(&hit.id) else {
            continue;
        };
        let mut customer = view_for(principal, record.clone());
        customer.matched_via = hit.via;
        rows.push((customer, hit.key));
    }
    let (mut customers, keys): (Vec<Customer>, Vec<HitKey>) = rows.into_iter().unzip();
    super::with_analytics(conn, principal, &mut customers).await?;
    Ok(customers.into_iter().zip(keys).collect())
}
