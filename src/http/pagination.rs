//! Cursor pagination: `?limit=50&cursor=…` in, `{"data": [...], "next_cursor": …}` out.
//!
//! A cursor is the sort key of the last row served (keyset pagination), so pages stay stable
//! while rows are inserted and cost the same at page 1 and page 10 000. It is opaque to clients
//! (base64url of JSON) and carries the name of the ordering it belongs to, so a cursor cannot be
//! replayed against another sort.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::ApiError;
use super::query::invalid;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items of this page, in the list's order.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    #[schema(example = "eyJvIjoiaWQiLCJrIjpbIjAxOTNiMGE2Il19")]
    pub next_cursor: Option<String>,
}

/// Validated paging parameters of a list request.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<K> {
    /// Rows wanted on this page.
    pub limit: u32,
    /// Sort key of the last row already served, if any.
    pub after: Option<K>,
}

impl<K> PageRequest<K> {
    /// How many rows to fetch: one more than the page, to know whether another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

#[derive(Serialize)]
struct Envelope<'a, K> {
    /// Name of the ordering the key belongs to.
    o: &'a str,
    /// The sort key of the last row served.
    k: &'a K,
}

#[derive(Deserialize)]
struct Opened<K> {
    o: String,
    k: K,
}

/// Checks `limit` and decodes `cursor` for the ordering named `order`.
pub fn request<K: DeserializeOwned>(
    limit: Option<u32>,
    cursor: Option<&str>,
    order: &str,
) -> Result<PageRequest<K>, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(invalid("limit", format!("must be from 1 to {MAX_LIMIT}")));
    }
    let after = match cursor {
        None => None,
        Some(cursor) => Some(decode(cursor, order)?),
    };
    Ok(PageRequest { limit, after })
}

fn decode<K: DeserializeOwned>(cursor: &str, order: &str) -> Result<K, ApiError> {
    let bad = || invalid("cursor", "is not a cursor this list gave out");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let envelope: Opened<K> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if envelope.o != order {
        return Err(invalid(
            "cursor",
            "belongs to another sort order; start again without a cursor",
        ));
    }
    Ok(envelope.k)
}

/// The cursor for the key `key` of the ordering `order` (for lists that always hand one out).
pub fn encode<K: Serialize>(key: &K, order: &str) -> String {
    let envelope = Envelope { o: order, k: key };
    // Serialising plain keys (strings, numbers, uuids, timestamps) cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&envelope).unwrap_or_default())
}

/// Turns `limit + 1` fetched rows, each with its sort key, into a page with a cursor when
/// more rows follow.
pub fn page_keyed<T: ToSchema, K: Serialize>(
    mut rows: Vec<(T, K)>,
    request: &PageRequest<impl Sized>,
    order: &str,
) -> Page<T> {
    let limit = request.limit as usize;
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|(_, key)| encode(key, order))
    } else {
        None
    };
    Page {
        data: rows.into_iter().map(|(row, _)| row).collect(),
        next_cursor,
    }
}

/// Like [`page_keyed`], with the key read off each row.
pub fn page<T: ToSchema, K: Serialize>(
    rows: Vec<T>,
    request: &PageRequest<impl Sized>,
    order: &str,
    key: impl Fn(&T) -> K,
) -> Page<T> {
    let rows = rows
        .into_iter()
        .map(|row| {
            let k = key(&row);
            (row, k)
        })
        .collect();
    page_keyed(rows, request, order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_order() {
        let cursor = encode(&(42_i64, "x".to_owned()), "name");
        let req: PageRequest<(i64, String)> =
            request(Some(10), Some(&cursor), "name").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(req.after, Some((42, "x".to_owned())));
        assert!(request::<(i64, String)>(None, Some(&cursor), "created").is_err());
        assert!(request::<(i64, String)>(None, Some("garbage!"), "name").is_err());
    }

    #[test]
    fn limit_is_bounded() {
        assert!(request::<i64>(Some(0), None, "id").is_err());
        assert!(request::<i64>(Some(201), None, "id").is_err());
        assert_eq!(
            request::<i64>(None, None, "id").map(|r| r.limit).ok(),
            Some(50)
        );
    }
}
