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
/// follows), by strict word distance; a typed number stands for itself (numbers are matched
/// exactly: trigrams of digits say nothing).
macro_rules! near_words_of_q_w {
    () => {
        "(SELECT v.word, (v.word <->>> q.w)::real AS distance FROM search_vocabulary v \
         WHERE v.word %> q.w ORDER BY v.word <->>> q.w LIMIT "
    };
}
macro_rules! near_end {
    () => {
        ") UNION ALL (SELECT q.w, 0::real WHERE q.w !~ '[^0-9]')"
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
#[derive(Debug, Clone, QueryableByName)]
struct Near {
    /// Which typed word (1-based).
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = Text)]
    word: String,
    #[diesel(sql_type = Float4)]
    distance: f32,
    /// How many customers hold it, counted up to 100 (with several typed words only).
    #[diesel(sql_type = Nullable<Integer>)]
    customers: Option<i32>,
}

/// The near words of every typed word, nearest first.
async fn near(conn: &mut AsyncPgConnection, words: &[String]) -> QueryResult<Vec<Vec<Near>>> {
    let rows: Vec<Near> = diesel::sql_query(concat!(
        "SELECT q.i::int4 AS position, n.word, n.distance, \
                CASE WHEN cardinality($1) > 1 THEN (SELECT count(*)::int4 FROM \
                    (SELECT 1 FROM customer_search_words cw WHERE cw.word = n.word LIMIT 100) AS c) \
                END AS customers \
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

/// Every combination of near words, best (smallest sum of distances) first.
fn combinations(near: &[Vec<Near>]) -> Vec<Combination> {
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
    let score = |picks: &[usize]| -> f32 {
        picks
            .iter()
            .zip(near)
            .map(|(&i, list)| list[i].distance)
            .sum()
    };
    let start = vec![0; near.len()];
    let mut heap = BinaryHeap::from([Next(score(&start), start.clone())]);
    let mut queued: HashSet<Vec<usize>> = HashSet::from([start]);
    let mut out = Vec::new();
    while let Some(Next(total, picks)) = heap.pop() {
        let chosen: Vec<&Near> = picks.iter().zip(near).map(|(&i, list)| &list[i]).collect();
        let anchor = chosen
            .iter()
            .min_by_key(|n| n.customers.unwrap_or(0))
            .map(|n| n.word.clone())
            .unwrap_or_default();
        let words: BTreeSet<String> = chosen.iter().map(|n| n.word.clone()).collect();
        let better: BTreeSet<String> = picks
            .iter()
            .zip(near)
            .flat_map(|(&i, list)| list[..i].iter().map(|n| n.word.clone()))
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

/// A page of customers by relevance to typed words: `inner` is the customers query (filters,
/// order by id, limit) of one combination, read best combination first.
struct ByCombination<Q> {
    combinations: serde_json::Value,
    inner: Q,
    fetch: i64,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for ByCombination<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT page.* FROM (SELECT c.* FROM json_to_recordset(");
        out.push_bind_param::<Json, _>(&self.combinations)?;
        out.push_sql(
            ") AS c (position int4, score real, anchor text, words text[], better text[], n int4) \
             ORDER BY c.score, c.position) AS combination CROSS JOIN LATERAL (",
        );
        self.inner.walk_ast(out.reborrow())?;
        out.push_sql(") AS page ORDER BY combination.score, page.id LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.fetch)?;
        Ok(())
    }
}

impl<Q> QueryId for ByCombination<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for ByCombination<Q> {
    type SqlType = Q::SqlType;
}

/// What a search by relevance reads for one combination: the customer holds its rarest word
/// (read in id order), all its words, and no nearer one.
fn in_combination(typed: usize) -> Vec<BoxedCondition> {
    let mut conditions: Vec<BoxedCondition> = vec![
        Box::new(sql::<Bool>(
            "customers.id IN (SELECT cw.customer_id FROM customer_search_words cw \
             WHERE cw.word = combination.anchor)",
        )),
        Box::new(sql::<Bool>(
            "NOT EXISTS (SELECT 1 FROM customer_search_words cw \
             WHERE cw.customer_id = customers.id AND cw.word = ANY (combination.better))",
        )),
    ];
    if typed > 1 {
        conditions.push(Box::new(sql::<Bool>(
            "(SELECT count(*) FROM customer_search_words cw \
              WHERE cw.customer_id = customers.id AND cw.word = ANY (combination.words)) \
             = combination.n",
        )));
    }
    conditions
}

/// A page of customers by relevance to the typed words, after `after`: `base` is the
/// customers query with every other filter. Rows: (record, distance, lower(name)).
pub(super) async fn by_words(
    conn: &mut AsyncPgConnection,
    base: super::store::Boxed<'_>,
    words: &[String],
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<(super::store::CustomerRecord, f32, String)>> {
    use crate::db::schema::customers;
    let near = near(conn, words).await?;
    let combinations = combinations(&near);
    if combinations.is_empty() {
        return Ok(Vec::new());
    }
    let mut inner = base;
    for condition in in_combination(words.len()) {
        inner = inner.filter(condition);
    }
    if let Some((distance, id)) = after {
        inner = inner.filter(
            sql::<Bool>("(combination.score > ")
                .bind::<Float4, _>(distance)
                .sql(" OR (combination.score = ")
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
            sql::<Float4>("combination.score"),
            sql::<Text>("lower(customers.name)"),
        ))
        .limit(fetch);
    let combinations = serde_json::to_value(&combinations)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    ByCombination {
        combinations,
        inner,
        fetch,
    }
    .prepared()
    .load(conn)
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
