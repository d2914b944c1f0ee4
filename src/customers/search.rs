//! `q`: what a person typed, found fast however common or short its words are.
//!
//! Words are matched through each customer's words (`customer_search_words`, a word's
//! customers in id order) and the vocabulary of all words (`search_vocabulary`, with a
//! trigram index): each typed word stands for the vocabulary words nearest to it (typos,
//! beginnings of words), and a customer matches when it holds one of them for every typed
//! word. By relevance, a customer's distance is the sum over the typed words of
//! 1 − strict word similarity to its nearest word; the page is read best combination of near
//! words first, each combination's customers in id order, so a common word reads one page,
//! not all its matches.
//!
//! Phone digits and email fragments are substrings of the phone or the email; customers whose
//! phone or email is exactly what was typed come first.

use std::collections::{BTreeSet, BinaryHeap, HashSet};

use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{
    Array, BigInt, Bool, Float4, Integer, Json, Nullable, Text, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use super::store::{BoxedCondition, CursorKey, Search};
use crate::db::Prepare;

/// How many vocabulary words a typed word stands for, by the number of typed words: by
/// relevance every combination of them is read (at most 81), and the same words decide what
/// matches under any other sort.
const NEAR_WORDS: [i64; 5] = [16, 8, 4, 3, 2];

pub(super) fn near_words(typed: usize) -> i64 {
    NEAR_WORDS[typed.clamp(1, NEAR_WORDS.len()) - 1]
}

/// The vocabulary words nearest to the typed word `q.w` (at most `$limit`, the bind that
/// goes between the two halves), by strict word distance, with how many customers hold them;
/// a typed number stands for itself (numbers are matched exactly: trigrams of digits say
/// nothing).
macro_rules! near_words_of_q_w {
    () => {
        "(SELECT v.word, (v.word <->>> q.w)::real AS distance, v.customers \
         FROM search_vocabulary v WHERE v.word %> q.w ORDER BY v.word <->>> q.w LIMIT "
    };
}
macro_rules! near_end {
    () => {
        ") UNION ALL (SELECT q.w, 0::real, (SELECT count(*)::int4 FROM (SELECT 1 \
         FROM customer_search_words cw WHERE cw.word = q.w LIMIT 1000) AS c) \
         WHERE q.w !~ '[^0-9]')"
    };
}

/// The customer holds a word near `word`: the filter of a typed word for lists in another
/// order than relevance, bulk actions and exports.
pub(super) fn holds_a_word_near(word: &str, typed: usize) -> BoxedCondition {
    Box::new(
        sql::<Bool>(
            "customers.id IN (SELECT cw.customer_id FROM customer_search_words cw \
             WHERE cw.word IN (SELECT n.word FROM (SELECT ",
        )
        .bind::<Text, _>(word.to_owned())
        .sql(concat!(
            "::text AS w) AS q CROSS JOIN LATERAL (",
            near_words_of_q_w!()
        ))
        .bind::<BigInt, _>(near_words(typed))
        .sql(concat!(near_end!(), ") AS n))")),
    )
}

/// A vocabulary word near a typed word.
#[derive(Debug, Clone, QueryableByName, Serialize)]
struct Near {
    /// Which typed word (1-based).
    #[diesel(sql_type = Integer)]
    #[serde(rename = "i")]
    position: i32,
    #[diesel(sql_type = Text)]
    word: String,
    #[diesel(sql_type = Float4)]
    distance: f32,
    /// How many customers hold it, as last counted (none for a word added since).
    #[diesel(sql_type = Nullable<Integer>)]
    #[serde(skip)]
    customers: Option<i32>,
}

/// The near words of every typed word, nearest first.
async fn near(conn: &mut AsyncPgConnection, words: &[String]) -> QueryResult<Vec<Vec<Near>>> {
    let rows: Vec<Near> = diesel::sql_query(concat!(
        "SELECT q.i::int4 AS position, n.word, n.distance, n.customers \
         FROM unnest($1::text[]) WITH ORDINALITY AS q (w, i) CROSS JOIN LATERAL (",
        near_words_of_q_w!(),
        "$2",
        near_end!(),
        ") AS n"
    ))
    .bind::<Array<Text>, _>(words)
    .bind::<BigInt, _>(near_words(words.len()))
    .prepared()
    .load(conn)
    .await?;
    let mut by_word: Vec<Vec<Near>> = vec![Vec::new(); words.len()];
    for row in rows {
        let i = usize::try_from(row.position - 1).unwrap_or(usize::MAX);
        if let Some(list) = by_word.get_mut(i) {
            list.push(row);
        }
    }
    for list in &mut by_word {
        list.sort_by(|a, b| a.distance.total_cmp(&b.distance).then(a.word.cmp(&b.word)));
    }
    Ok(by_word)
}

/// One near word for each typed word: the customers holding all of them (and none nearer).
#[derive(Debug, Serialize)]
struct Combination {
    position: i32,
    /// The sum of the near words' distances: the distance of its customers.
    score: f32,
    /// Its rarest word: its customers are read from that word's.
    anchor: String,
    /// Its words, each once.
    words: Vec<String>,
    /// The words nearer to a typed word than the one chosen for it: a customer holding one
    /// of them belongs to a better combination.
    better: Vec<String>,
    n: i32,
}

/// The best combinations of near words (smallest sum of distances first), at least `at_least`
/// of them and every one tied with the last, or all there are.
fn combinations(near: &[Vec<Near>], at_least: usize) -> Vec<Combination> {
    #[derive(PartialEq)]
    struct Next(f32, Vec<usize>);
    impl Eq for Next {}
    impl PartialOrd for Next {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Next {
        // The heap is a max-heap: the smallest sum (then the smallest indices) comes out first.
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            other
                .0
                .total_cmp(&self.0)
                .then_with(|| other.1.cmp(&self.1))
        }
    }
    if near.is_empty() || near.iter().any(Vec::is_empty) {
        return Vec::new();
    }
    let pick = |picks: &[usize]| -> Vec<&Near> {
        picks
            .iter()
            .zip(near)
            .filter_map(|(&i, list)| list.get(i))
            .collect()
    };
    let score = |picks: &[usize]| -> f32 { pick(picks).iter().map(|n| n.distance).sum() };
    let start = vec![0; near.len()];
    let mut heap = BinaryHeap::from([Next(score(&start), start.clone())]);
    let mut queued: HashSet<Vec<usize>> = HashSet::from([start]);
    let mut out: Vec<Combination> = Vec::new();
    while let Some(Next(total, picks)) = heap.pop() {
        if out.len() >= at_least && out.last().is_some_and(|last| last.score < total) {
            break;
        }
        let chosen = pick(&picks);
        let anchor = chosen
            .iter()
            .min_by_key(|n| n.customers.unwrap_or(0))
            .map(|n| n.word.clone())
            .unwrap_or_default();
        let words: BTreeSet<String> = chosen.iter().map(|n| n.word.clone()).collect();
        let better: BTreeSet<String> = picks
            .iter()
            .zip(near)
            .flat_map(|(&i, list)| list.iter().take(i).map(|n| n.word.clone()))
            .filter(|w| !words.contains(w))
            .collect();
        out.push(Combination {
            position: i32::try_from(out.len()).unwrap_or(i32::MAX),
            score: total,
            anchor,
            n: i32::try_from(words.len()).unwrap_or(i32::MAX),
            words: words.into_iter().collect(),
            better: better.into_iter().collect(),
        });
        for k in 0..picks.len() {
            let mut next = picks.clone();
            next[k] += 1;
            if next[k] < near[k].len() && queued.insert(next.clone()) {
                heap.push(Next(score(&next), next));
            }
        }
    }
    out
}

/// A page of customers by relevance: `driver` lists what leads to them with a `score`
/// (combinations of near words, or the customers matching every typed word), and `inner` is
/// the customers query (every other filter, `limit`) that reads a driver row's customers.
struct Driven<Q> {
    driver: &'static str,
    json: serde_json::Value,
    inner: Q,
    fetch: i64,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Driven<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let (head, tail) = self.driver.split_once("$json").unwrap_or((self.driver, ""));
        out.push_sql("SELECT page.* FROM (");
        out.push_sql(head);
        out.push_bind_param::<Json, _>(&self.json)?;
        out.push_sql(tail);
        out.push_sql(") AS driver CROSS JOIN LATERAL (");
        self.inner.walk_ast(out.reborrow())?;
        out.push_sql(") AS page ORDER BY driver.score, page.id LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.fetch)?;
        Ok(())
    }
}

impl<Q> QueryId for Driven<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Driven<Q> {
    type SqlType = Q::SqlType;
}

/// Combinations of near words, best first: each reads its customers from its rarest word in
/// id order, and the page stops reading combinations once it is full.
const BY_COMBINATION: &str = "SELECT c.* FROM json_to_recordset($json) AS c \
     (position int4, score real, anchor text, words text[], better text[], n int4) \
     ORDER BY c.score, c.position";

/// The customers holding a near word of every typed word, with their distance: read from the
/// near words of the rarest typed word (`$json` holds the near words and which one that is).
const BY_MATCH: &str = "WITH input AS MATERIALIZED (SELECT $json::json AS j), \
     near AS MATERIALIZED (\
         SELECT n.* FROM input, json_to_recordset(input.j -> 'near') AS n (i int4, word text, distance real)), \
     setting AS MATERIALIZED (\
         SELECT (j ->> 'anchor')::int4 AS anchor, (j ->> 'others')::int4 AS others FROM input), \
     anchored AS (\
         SELECT cw.customer_id, min(n.distance) AS distance \
         FROM near n JOIN customer_search_words cw ON cw.word = n.word \
         WHERE n.i = (SELECT anchor FROM setting) GROUP BY cw.customer_id) \
     SELECT a.customer_id, a.distance + o.distance AS score \
     FROM anchored a CROSS JOIN LATERAL (\
         SELECT coalesce(sum(b.distance), 0) AS distance, count(*) AS words FROM (\
             SELECT min(n.distance) AS distance \
             FROM customer_search_words cw JOIN near n ON n.word = cw.word \
             WHERE cw.customer_id = a.customer_id AND n.i <> (SELECT anchor FROM setting) \
             GROUP BY n.i) AS b) AS o \
     WHERE o.words = (SELECT others FROM setting)";

/// How many combinations a search of several words reads before it reads every match instead:
/// the best ones fill the page when a name is common, and every match is few when not.
const COMBINATIONS_FIRST: usize = 8;

/// A page of customers by relevance to the typed words, after `after`: `base` builds the
/// customers query with every other filter. Rows: (record, distance, lower(name)).
pub(super) async fn by_words<'a>(
    conn: &mut AsyncPgConnection,
    base: impl Fn() -> super::store::Boxed<'a>,
    words: &[String],
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<super::store::Row>> {
    let near = near(conn, words).await?;
    let at_least = if words.len() == 1 {
        usize::MAX
    } else {
        COMBINATIONS_FIRST
    };
    let combinations = combinations(&near, at_least);
    if combinations.is_empty() {
        return Ok(Vec::new());
    }
    let complete = words.len() == 1 || combinations.len() < COMBINATIONS_FIRST;
    let rows = page(
        conn,
        BY_COMBINATION,
        to_json(&combinations)?,
        in_combination(base(), words.len()),
        after,
        fetch,
    )
    .await?;
    if complete || i64::try_from(rows.len()).unwrap_or(i64::MAX) >= fetch {
        return Ok(rows);
    }
    // Few customers in the best combinations: read every match, from the rarest typed word.
    let anchor = near
        .iter()
        .enumerate()
        .min_by_key(|(_, list)| {
            list.iter()
                .map(|n| i64::from(n.customers.unwrap_or(0)))
                .sum::<i64>()
        })
        .map_or(1, |(i, _)| i + 1);
    let matches = serde_json::json!({
        "near": near.iter().flatten().collect::<Vec<_>>(),
        "anchor": anchor,
        "others": words.len() - 1,
    });
    let inner = base().filter(sql::<Bool>("customers.id = driver.customer_id"));
    page(conn, BY_MATCH, matches, inner, after, fetch).await
}

/// A driver's input, for `$json`.
fn to_json(value: &impl Serialize) -> QueryResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
}

/// One page read through `driver`.
async fn page(
    conn: &mut AsyncPgConnection,
    driver: &'static str,
    json: serde_json::Value,
    inner: super::store::Boxed<'_>,
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<super::store::Row>> {
    use crate::db::schema::customers;
    let mut inner = inner;
    if let Some((distance, id)) = after {
        inner = inner.filter(
            sql::<Bool>("(driver.score > ")
                .bind::<Float4, _>(distance)
                .sql(" OR (driver.score = ")
                .bind::<Float4, _>(distance)
                .sql(" AND customers.id > ")
                .bind::<SqlUuid, _>(id)
                .sql("))"),
        );
    }
    let inner = inner
        .order(customers::id.asc())
        .select((
            super::store::CustomerRecord::as_select(),
            sql::<Float4>("driver.score::real"),
            sql::<Text>("lower(customers.name)"),
        ))
        .limit(fetch);
    Driven {
        driver,
        json,
        inner,
        fetch,
    }
    .prepared()
    .load(conn)
    .await
}

/// What a search by relevance reads for one combination: the customer holds its rarest word
/// (read in id order), all its words, and no nearer one.
fn in_combination(base: super::store::Boxed<'_>, typed: usize) -> super::store::Boxed<'_> {
    let mut query = base
        .filter(sql::<Bool>(
            "customers.id IN (SELECT cw.customer_id FROM customer_search_words cw \
             WHERE cw.word = driver.anchor)",
        ))
        .filter(sql::<Bool>(
            "NOT EXISTS (SELECT 1 FROM customer_search_words cw \
             WHERE cw.customer_id = customers.id AND cw.word = ANY (driver.better))",
        ));
    if typed > 1 {
        query = query.filter(sql::<Bool>(
            "(SELECT count(*) FROM customer_search_words cw \
              WHERE cw.customer_id = customers.id AND cw.word = ANY (driver.words)) = driver.n",
        ));
    }
    query
}

/// Counts each vocabulary word's customers again and forgets the words no customer holds any
/// more (an erased customer's name among them). Writers of customers wait for it (a fraction of
/// a second): otherwise a word could be forgotten while a customer adding it commits.
pub async fn recount_words(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    use diesel_async::AsyncConnection;
    conn.transaction(async |conn| {
        diesel::sql_query("LOCK TABLE search_vocabulary IN SHARE ROW EXCLUSIVE MODE")
            .prepared()
            .execute(conn)
            .await?;
        diesel::sql_query(
            "UPDATE search_vocabulary v SET customers = c.customers \
             FROM (SELECT word, count(*)::int4 AS customers FROM customer_search_words \
                   WHERE word ~ '[^0-9]' GROUP BY word) AS c \
             WHERE v.word = c.word AND v.customers IS DISTINCT FROM c.customers",
        )
        .prepared()
        .execute(conn)
        .await?;
        diesel::sql_query(
            "DELETE FROM search_vocabulary v \
             WHERE NOT EXISTS (SELECT 1 FROM customer_search_words cw WHERE cw.word = v.word)",
        )
        .prepared()
        .execute(conn)
        .await
    })
    .await
}

/// The condition of an exact match of a phone or email search, and of a partial one.
pub(super) fn exact_and_partial(search: &Search) -> Option<(BoxedCondition, BoxedCondition)> {
    match search {
        Search::Phone(digits) => Some((
            Box::new(sql::<Bool>("customers.phone = ").bind::<Text, _>(format!("+{digits}"))),
            Box::new(
                sql::<Bool>("customers.phone LIKE ")
                    .bind::<Text, _>(crate::db::contains_pattern(digits)),
            ),
        )),
        Search::Email(fragment) => Some((
            Box::new(sql::<Bool>("lower(customers.email) = ").bind::<Text, _>(fragment.clone())),
            Box::new(
                sql::<Bool>("lower(customers.email) LIKE ")
                    .bind::<Text, _>(crate::db::contains_pattern(fragment)),
            ),
        )),
        Search::Words(_) => None,
    }
}

/// Where a cursor of a phone or email search stands: among the exact matches (distance 0),
/// or among the others (1).
pub(super) fn exact_cursor(after: Option<&CursorKey>) -> (bool, Option<Uuid>) {
    match after {
        None => (true, None),
        Some(CursorKey::Distance(d, id)) if *d < 0.5 => (true, Some(*id)),
        Some(CursorKey::Distance(_, id)) => (false, Some(*id)),
        Some(_) => (false, None),
    }
}
