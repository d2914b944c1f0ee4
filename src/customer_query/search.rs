//! `q`: what a person typed, found fast however common or short its words are.
//!
//! Each typed word stands for the vocabulary words nearest to it (`search_vocabulary`, by
//! trigrams: typos, beginnings of words; a number stands for itself), and a customer matches
//! when it holds one of them for every typed word. By relevance, a customer's distance is the
//! sum over the typed words of 1 − strict word similarity of its nearest word, then its id.
//!
//! - One word: each near word's customers are read in id order (`customer_search_words`),
//!   nearest word first, and the page stops when it is full: a common word reads one page,
//!   not its 14 000 customers. The typed word itself ranks strictly first (distance 0, any
//!   other word at least a hair more), so when its own customers fill the page, the
//!   vocabulary is not read at all.
//! - Several words: the customers holding a near word of each are an intersection inside the
//!   GIN index of `customers.search_words`; only they are read and ranked.
//! - Phone digits and email fragments are substrings of the phone or the email; customers
//!   whose phone or email is exactly what was typed come first.

use std::sync::{Mutex, PoisonError};

use diesel::dsl::{AsSelect, sql};
use diesel::expression::SqlLiteral;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Float4, Integer, Json, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use crate::customers::store::CustomerRecord;
use crate::db::Prepare;
use crate::db::schema::customers;

/// A customer query that filters may still be added to.
pub(super) type Boxed<'a> = customers::BoxedQuery<'a, Pg>;

/// One condition on a customer.
pub(super) type BoxedCondition = Box<dyn BoxableExpression<customers::table, Pg, SqlType = Bool>>;

/// A row of a page: the customer, its distance from `q` and its name key.
pub(super) type Row = (CustomerRecord, f32, String);

/// The columns of a [`Row`].
pub(super) type RowColumns = (
    AsSelect<CustomerRecord, Pg>,
    SqlLiteral<Float4>,
    SqlLiteral<Text>,
);

/// A page's query: its rows' columns selected.
pub(super) type Page<'a> = customers::BoxedQuery<'a, Pg, diesel::dsl::SqlTypeOf<RowColumns>>;

/// The columns of a [`Row`], its distance computed by `distance` (SQL). The name key is
/// `name_key` in the output, for an order over merged pages.
pub(super) fn row_columns(distance: &'static str) -> RowColumns {
    (
        CustomerRecord::as_select(),
        sql::<Float4>(distance),
        sql::<Text>("lower(customers.name) AS name_key"),
    )
}

/// What `q` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Search {
    /// Words (lower case), each of which must be found in the customer's text, closely
    /// (trigram word similarity, tolerating typos and matching word beginnings as one
    /// types).
    Words(Vec<String>),
    /// Digits of a phone number, matched as a substring.
    Phone(String),
    /// Part of an email (holds `@`), matched as a substring.
    Email(String),
}

impl Search {
    /// Reads what a person typed: a phone number (digits only, at least four), an email or
    /// part of one (has `@`), or words (up to five, of at least two letters or digits).
    pub fn parse(q: &str) -> Result<Search, &'static str> {
        let q = q.trim().to_lowercase();
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        let phone_like = digits.len() >= 4
            && q.chars()
                .all(|c| c.is_ascii_digit() || " +-()./".contains(c));
        if phone_like {
            return Ok(Search::Phone(digits));
        }
        if q.contains('@') {
            return if q.chars().count() >= 3 {
                Ok(Search::Email(q))
            } else {
                Err("must hold at least 3 characters of an email")
            };
        }
        let words: Vec<String> = q
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 2)
            .take(5)
            .map(str::to_owned)
            .collect();
        if words.is_empty() {
            return Err("must hold a word of at least 2 letters or digits");
        }
        Ok(Search::Words(words))
    }
}

/// How many vocabulary words a typed word stands for, by the number of typed words.
const NEAR_WORDS: [i64; 5] = [16, 8, 6, 5, 4];

fn near_words(typed: usize) -> i64 {
    NEAR_WORDS[typed.clamp(1, NEAR_WORDS.len()) - 1]
}

/// The vocabulary words nearest to the typed word `q.w` (at most `$limit`, the bind between
/// the two halves), by strict word distance; a typed number stands for itself (numbers are
/// matched exactly: trigrams of digits say nothing).
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
///
/// The array of near words is known only when the statement runs, so the planner guesses
/// how many customers hold one. For a single typed word, an overlap with `search_words` was
/// guessed unselective: the planner walked a million customers in the list's order and
/// checked each (10 to 16 s for a rare name). A semi-join with the table of customers' words
/// is read by word instead (3.4 ms). For several words, the overlaps are guessed selective
/// together and intersected in the GIN index of `search_words`, which beats probing the
/// words of each customer of the first word (`mary smith`: 170 ms against 600 ms under load).
pub(super) fn holds_a_word_near(word: &str, typed: usize) -> BoxedCondition {
    let near = |head: &'static str, tail: &'static str| {
        sql::<Bool>(head)
            .bind::<Text, _>(word.to_owned())
            .sql(concat!(
                "::text AS w) AS q CROSS JOIN LATERAL (",
                near_words_of_q_w!()
            ))
            .bind::<BigInt, _>(near_words(typed))
            .sql(near_end!())
            .sql(tail)
    };
    if typed == 1 {
        Box::new(near(
            "EXISTS (SELECT 1 FROM customer_search_words sw \
             WHERE sw.customer_id = customers.id AND sw.word = ANY(ARRAY(\
             SELECT n.word FROM (SELECT ",
            ") AS n)))",
        ))
    } else {
        Box::new(near(
            "customers.search_words && ARRAY(SELECT n.word FROM (SELECT ",
            ") AS n)",
        ))
    }
}

/// A vocabulary word near a typed word.
#[derive(Debug, Clone, QueryableByName, Serialize)]
struct Near {
    /// Which typed word (1-based).
    #[diesel(sql_type = Integer)]
    position: i32,
    #[diesel(sql_type = Text)]
    word: String,
    #[diesel(sql_type = Float4)]
    distance: f32,
}

/// The near words of a request's typed words once read, so that every query of the request
/// that searches (`include=organizations` ranks the organizations' people by the same words
/// after reading the page) reads the vocabulary once: the lookup is most of a short word's
/// search. One per list request (a field of its filter), never shared between requests, so
/// that a word written since is seen by the next request.
#[derive(Debug, Default)]
pub struct NearWords(Mutex<Known>);

/// What a request knows of its typed words' near words.
#[derive(Debug, Default, Clone)]
enum Known {
    /// Nothing yet.
    #[default]
    Nothing,
    /// Every page so far was filled by the customers holding the one typed word itself
    /// ([`exact_page`]): every customer found so far is at distance 0, so distances of 0
    /// are all a ranking of them needs.
    TypedWordOnly,
    /// The near words, read from the vocabulary.
    Near(Vec<Near>),
}

impl NearWords {
    fn get(&self) -> Known {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, known: Known) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = known;
    }
}

/// The near words of the typed words, nearest first within each: read once per request
/// (`memo`, which holds them for these words).
async fn near(
    conn: &mut AsyncPgConnection,
    memo: &NearWords,
    words: &[String],
) -> QueryResult<Vec<Near>> {
    if let Known::Near(near) = memo.get() {
        return Ok(near);
    }
    let mut rows: Vec<Near> = diesel::sql_query(concat!(
        "SELECT q.i::int4 AS position, n.word, n.distance \
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
    for n in &mut rows {
        // The typed word itself ranks strictly first: another word whose trigrams are all
        // the typed word's (`abab` for `ababab`) is as near by trigrams, but only just behind.
        let typed = usize::try_from(n.position - 1)
            .ok()
            .and_then(|i| words.get(i));
        if n.distance <= 0.0 && typed != Some(&n.word) {
            n.distance = NEXT_TO_TYPED;
        }
    }
    rows.sort_by(|a, b| {
        (a.position, a.distance, &a.word)
            .partial_cmp(&(b.position, b.distance, &b.word))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    memo.set(Known::Near(rows.clone()));
    Ok(rows)
}

/// The least distance of a word other than the one typed.
const NEXT_TO_TYPED: f32 = 1e-6;

/// A one-word search's page when the customers holding the typed word itself fill it: they
/// rank before every other (distance 0, the others at least [`NEXT_TO_TYPED`]), in id order,
/// so the page is theirs and the vocabulary need not be read (a common word typed right: its
/// lookup is most of the search). `None` when they do not fill it.
async fn exact_page(
    conn: &mut AsyncPgConnection,
    base: Boxed<'_>,
    (word, memo): (&str, &NearWords),
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Option<Vec<Row>>> {
    if after.is_some_and(|(distance, _)| distance > 0.0) || matches!(memo.get(), Known::Near(_)) {
        return Ok(None);
    }
    // The word's customers after the cursor's, in id order (its index: (word, customer)).
    let holding = || {
        sql::<Bool>(
            "customers.id IN (SELECT cw.customer_id FROM customer_search_words cw \
             WHERE cw.word = ",
        )
        .bind::<Text, _>(word.to_owned())
    };
    let holders: BoxedCondition = match after {
        None => Box::new(holding().sql(")")),
        Some((_, id)) => Box::new(
            holding()
                .sql(" AND cw.customer_id > ")
                .bind::<SqlUuid, _>(id)
                .sql(")"),
        ),
    };
    let rows: Vec<Row> = base
        .filter(holders)
        .order(customers::id.asc())
        .select(row_columns("0::real"))
        .limit(fetch)
        .prepared()
        .load(conn)
        .await?;
    if i64::try_from(rows.len()).unwrap_or(i64::MAX) < fetch {
        return Ok(None);
    }
    memo.set(Known::TypedWordOnly);
    Ok(Some(rows))
}

/// A page of customers by relevance to the typed words, after `after`: `base` is the customers
/// query with every other filter.
pub(super) async fn by_words<'a>(
    conn: &mut AsyncPgConnection,
    base: impl Fn() -> Boxed<'a>,
    (words, memo): (&[String], &NearWords),
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    if let [word] = words
        && let Some(rows) = exact_page(conn, base(), (word, memo), after, fetch).await?
    {
        return Ok(rows);
    }
    let base = base();
    let near = near(conn, memo, words).await?;
    let typed = i32::try_from(words.len()).unwrap_or(i32::MAX);
    if (1..=typed).any(|i| !near.iter().any(|n| n.position == i)) {
        // A typed word near nothing: nobody holds all of them.
        return Ok(Vec::new());
    }
    if words.len() == 1 {
        one_word(conn, base, &near, after, fetch).await
    } else {
        several_words(conn, base, &near, words.len(), after, fetch).await
    }
}

/// One near word of a one-word search, with the nearer ones: its customers holding one of those
/// were listed with them.
#[derive(Debug, Serialize)]
struct Step<'a> {
    position: usize,
    word: &'a str,
    score: f32,
    better: Vec<&'a str>,
}

/// A one-word search: each near word's customers in id order, nearest word first; the page
/// stops reading near words when it is full.
async fn one_word(
    conn: &mut AsyncPgConnection,
    base: Boxed<'_>,
    near: &[Near],
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    let steps: Vec<Step<'_>> = near
        .iter()
        .enumerate()
        .map(|(position, n)| Step {
            position,
            word: &n.word,
            score: n.distance,
            better: near[..position].iter().map(|b| b.word.as_str()).collect(),
        })
        .collect();
    let json = serde_json::to_value(&steps)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let inner = keyset(
        base.filter(sql::<Bool>(
            "customers.id IN (SELECT cw.customer_id FROM customer_search_words cw \
             WHERE cw.word = step.word)",
        ))
        .filter(sql::<Bool>(
            "NOT EXISTS (SELECT 1 FROM customer_search_words cw \
             WHERE cw.customer_id = customers.id AND cw.word = ANY (step.better))",
        )),
        "step.score",
        after,
    )
    .order(customers::id.asc())
    .select(row_columns("step.score"))
    .limit(fetch);
    WordByWord { json, inner, fetch }
        .prepared()
        .load(conn)
        .await
}

/// `(score, id) > after`.
fn keyset<'a>(query: Boxed<'a>, score: &'static str, after: Option<(f32, Uuid)>) -> Boxed<'a> {
    let Some((distance, id)) = after else {
        return query;
    };
    query.filter(
        sql::<Bool>("(")
            .sql(score)
            .sql(" > ")
            .bind::<Float4, _>(distance)
            .sql(" OR (")
            .sql(score)
            .sql(" = ")
            .bind::<Float4, _>(distance)
            .sql(" AND customers.id > ")
            .bind::<SqlUuid, _>(id)
            .sql("))"),
    )
}

/// `SELECT page.* FROM <near words as step, nearest first> CROSS JOIN LATERAL (<inner>) AS page
/// ORDER BY step.score, page.id LIMIT <fetch>`: the page reads near word after near word (an
/// incremental sort by score) and stops when full.
struct WordByWord<Q> {
    json: serde_json::Value,
    inner: Q,
    fetch: i64,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for WordByWord<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("SELECT page.* FROM (SELECT s.* FROM json_to_recordset(");
        out.push_bind_param::<Json, _>(&self.json)?;
        out.push_sql(
            ") AS s (position int4, word text, score real, better text[]) \
             ORDER BY s.score, s.position) AS step CROSS JOIN LATERAL (",
        );
        self.inner.walk_ast(out.reborrow())?;
        out.push_sql(") AS page ORDER BY step.score, page.id LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.fetch)?;
        Ok(())
    }
}

impl<Q> QueryId for WordByWord<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for WordByWord<Q> {
    type SqlType = Q::SqlType;
}

/// A search of several words: the customers holding a near word of each (an intersection in
/// the words' index), ranked by the sum of their nearest words' distances.
async fn several_words(
    conn: &mut AsyncPgConnection,
    base: Boxed<'_>,
    near: &[Near],
    typed: usize,
    after: Option<(f32, Uuid)>,
    fetch: i64,
) -> QueryResult<Vec<Row>> {
    let mut query = base;
    for i in 1..=i32::try_from(typed).unwrap_or(i32::MAX) {
        let words: Vec<String> = near
            .iter()
            .filter(|n| n.position == i)
            .map(|n| n.word.clone())
            .collect();
        query =
            query.filter(sql::<Bool>("customers.search_words && ").bind::<Array<Text>, _>(words));
    }
    let score = || score_of(near);
    if let Some((distance, id)) = after {
        query = query.filter(
            score()
                .gt(distance)
                .or(score().eq(distance).and(customers::id.gt(id))),
        );
    }
    query
        .order((score().asc(), customers::id.asc()))
        .select((
            CustomerRecord::as_select(),
            score(),
            sql::<Text>("lower(customers.name)"),
        ))
        .limit(fetch)
        .prepared()
        .load(conn)
        .await
}

/// A customer's distance from the typed words: the sum over the typed words of the distance
/// of the nearest of its near words the customer holds (by relevance, the list's order).
fn score_of(near: &[Near]) -> Box<dyn BoxableExpression<customers::table, Pg, SqlType = Float4>> {
    let (positions, words, distances): (Vec<i32>, Vec<String>, Vec<f32>) = near
        .iter()
        .map(|n| (n.position, n.word.clone(), n.distance))
        .fold(
            (Vec::new(), Vec::new(), Vec::new()),
            |mut acc, (p, w, d)| {
                acc.0.push(p);
                acc.1.push(w);
                acc.2.push(d);
                acc
            },
        );
    // Each typed word's nearest word the customer holds.
    Box::new(
        sql::<Float4>(
            "(SELECT sum(b.distance)::real FROM (SELECT min(n.distance) AS distance \
             FROM unnest(",
        )
        .bind::<Array<Integer>, _>(positions)
        .sql(", ")
        .bind::<Array<Text>, _>(words)
        .sql(", ")
        .bind::<Array<Float4>, _>(distances)
        .sql(
            ") AS n (position, word, distance) \
             WHERE n.word = ANY (customers.search_words) GROUP BY n.position) AS b)",
        ),
    )
}

/// Which of `ids` a search by words finds (`base`: the customers query with every other
/// filter), each with its distance as the relevance order ranks it: one lookup by id. While
/// the typed word itself filled every page read ([`Known::TypedWordOnly`]), only those
/// holding it (distance 0): the customers found so far are all at 0, and no one farther
/// ranks before them.
pub(super) async fn distances_by_words(
    conn: &mut AsyncPgConnection,
    base: Boxed<'_>,
    (words, memo): (&[String], &NearWords),
    ids: &[Uuid],
) -> QueryResult<Vec<(Uuid, f32)>> {
    if let (Known::TypedWordOnly, [word]) = (memo.get(), words) {
        // Only customers at distance 0 found so far: ranking them needs no other distance,
        // and those of `ids` holding the word are read from the word's index first.
        return base
            .filter(
                sql::<Bool>(
                    "customers.id IN (SELECT cw.customer_id FROM customer_search_words cw \
                     WHERE cw.word = ",
                )
                .bind::<Text, _>(word.clone())
                .sql(" AND cw.customer_id = ANY (")
                .bind::<Array<SqlUuid>, _>(ids.to_vec())
                .sql("))"),
            )
            .select((customers::id, sql::<Float4>("0::real")))
            .prepared()
            .load(conn)
            .await;
    }
    let near = near(conn, memo, words).await?;
    let typed = i32::try_from(words.len()).unwrap_or(i32::MAX);
    if ids.is_empty() || (1..=typed).any(|i| !near.iter().any(|n| n.position == i)) {
        return Ok(Vec::new());
    }
    let mut query = base.filter(customers::id.eq_any(ids.to_vec()));
    for i in 1..=typed {
        let words: Vec<String> = near
            .iter()
            .filter(|n| n.position == i)
            .map(|n| n.word.clone())
            .collect();
        query =
            query.filter(sql::<Bool>("customers.search_words && ").bind::<Array<Text>, _>(words));
    }
    query
        .select((customers::id, score_of(&near)))
        .prepared()
        .load(conn)
        .await
}

/// Forgets the vocabulary words no customer holds any more (an erased customer's name among
/// them). Writers of customers wait for it (a fraction of a second): otherwise a word could be
/// forgotten while a customer adding it commits.
pub async fn forget_unused_words(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    #[derive(QueryableByName)]
    struct Forgotten {
        #[diesel(sql_type = BigInt)]
        forgotten: i64,
    }
    // One statement (see the migration): cancelled at any point, it leaves no transaction open.
    let row: Forgotten = diesel::sql_query("SELECT forget_unused_search_words() AS forgotten")
        .prepared()
        .get_result(conn)
        .await?;
    Ok(usize::try_from(row.forgotten).unwrap_or(0))
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

#[cfg(test)]
mod tests {
    use super::Search;

    #[test]
    fn search_reads_words_phones_and_emails() {
        let words = |list: &[&str]| {
            Ok(Search::Words(
                list.iter().map(|w| (*w).to_owned()).collect(),
            ))
        };
        assert_eq!(Search::parse("Ada  Lovlace"), words(&["ada", "lovlace"]));
        assert_eq!(Search::parse("O'Brien, J"), words(&["brien"]));
        assert_eq!(
            Search::parse("Müller-Lüdenscheidt"),
            words(&["müller", "lüdenscheidt"])
        );
        assert_eq!(
            Search::parse("+49 (30) 1234-56"),
            Ok(Search::Phone("4930123456".into()))
        );
        assert_eq!(
            Search::parse("ADA@example"),
            Ok(Search::Email("ada@example".into()))
        );
        assert!(Search::parse("a").is_err());
        assert!(Search::parse("@x").is_err());
        assert!(Search::parse("a b c d e f g h").is_err());
        assert_eq!(
            Search::parse("aa bb cc dd ee ff"),
            words(&["aa", "bb", "cc", "dd", "ee"])
        );
    }
}
