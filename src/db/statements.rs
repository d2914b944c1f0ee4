//! Statements prepared once per connection, and the counts that prove it.

use std::any::TypeId;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::pg::{Pg, PgQueryBuilder};
use diesel::query_builder::{AstPass, Query, QueryBuilder, QueryFragment, QueryId};

/// How many distinct statement texts outside diesel's static query ids (boxed queries,
/// hand-written SQL) may be kept prepared. Each connection prepares a text once and keeps it
/// for its lifetime, so this bounds every connection's cache, whatever combinations of
/// filters callers send; texts past it are prepared, run and closed each time.
pub const MAX_PREPARED_TEXTS: usize = 512;

/// The texts admitted to the connections' statement caches (by hash), process-wide.
static ADMITTED: LazyLock<Mutex<HashSet<u64>>> = LazyLock::new(Default::default);

fn admit(sql: &str) -> bool {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(sql);
    let Ok(mut admitted) = ADMITTED.lock() else {
        return false;
    };
    if admitted.contains(&hash) {
        return true;
    }
    if admitted.len() >= MAX_PREPARED_TEXTS {
        return false;
    }
    admitted.insert(hash)
}

/// A statement prepared once per connection and reused, whatever it is built from.
///
/// Diesel reuses a prepared statement only for a query it can vouch for: raw SQL fragments
/// (`sql::<T>(…)`) and `sql_query` are parsed and planned again on every call, and a boxed
/// query (filters chosen at run time) is kept by its text with no bound on how many texts a
/// connection keeps. Wrapped, a query is kept by its text up to [`MAX_PREPARED_TEXTS`] texts
/// in all, then run unkept. Wrap only queries whose text depends on which filters are given,
/// never on the values (those are binds).
///
/// The text is written once per call: the admission check writes it, and the connection
/// is handed that same text rather than walking the query again.
#[derive(Debug, Clone)]
pub struct Prepared<Q>(pub Q, OnceLock<String>);

impl<Q: QueryFragment<Pg>> Prepared<Q> {
    fn text(&self) -> diesel::QueryResult<&str> {
        if let Some(text) = self.1.get() {
            return Ok(text);
        }
        let text = text_of(&self.0)?;
        Ok(self.1.get_or_init(|| text))
    }
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn to_sql(&self, out: &mut PgQueryBuilder, _: &Pg) -> diesel::QueryResult<()> {
        out.push_sql(self.text()?);
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _: &Pg) -> diesel::QueryResult<bool> {
        Ok(admit(self.text()?))
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// A query's SQL text, written by walking it.
fn text_of<Q: QueryFragment<Pg>>(query: &Q) -> diesel::QueryResult<String> {
    let mut sql = PgQueryBuilder::default();
    query.to_sql(&mut sql, &Pg)?;
    Ok(sql.finish())
}

/// A statement whose text is fixed by its type: a query of a fixed shape (raw SQL fragments
/// included, as long as they are constants), whose values are all binds.
///
/// Diesel-async writes a query's text on every call, even when the connection holds it
/// prepared already, by walking the query: for a read of a whole customer that is ninety
/// quoted identifiers, a sixth of the service's time in a read by id. Wrapped, the text is
/// written once per process and kept by type, and the statement is kept prepared by type
/// (no hashing of its text per call). Never wrap a boxed query, an `IN` list, or a query
/// whose text depends on its values (an insert of optional fields writes `DEFAULT` for a
/// missing one): use [`Prepared`] for those.
#[derive(Debug, Clone)]
pub struct Fixed<Q>(pub Q);

/// The texts of the [`Fixed`] queries, by type: one per query type the program holds.
static FIXED_TEXTS: LazyLock<RwLock<HashMap<TypeId, Arc<str>>>> = LazyLock::new(Default::default);

fn fixed_text<Q: QueryFragment<Pg> + 'static>(query: &Q) -> diesel::QueryResult<Arc<str>> {
    let key = TypeId::of::<Q>();
    if let Some(text) = FIXED_TEXTS.read().ok().and_then(|t| t.get(&key).cloned()) {
        return Ok(text);
    }
    let text: Arc<str> = text_of(query)?.into();
    if let Ok(mut texts) = FIXED_TEXTS.write() {
        return Ok(texts.entry(key).or_insert(text).clone());
    }
    Ok(text)
}

impl<Q: QueryFragment<Pg> + 'static> QueryFragment<Pg> for Fixed<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn to_sql(&self, out: &mut PgQueryBuilder, _: &Pg) -> diesel::QueryResult<()> {
        out.push_sql(&fixed_text(&self.0)?);
        Ok(())
    }

    fn is_safe_to_cache_prepared(&self, _: &Pg) -> diesel::QueryResult<bool> {
        Ok(true)
    }
}

impl<Q: 'static> QueryId for Fixed<Q> {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q: Query> Query for Fixed<Q> {
    type SqlType = Q::SqlType;
}

/// `.prepared()` and `.fixed()` on any query: see [`Prepared`] and [`Fixed`].
pub trait Prepare: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self, OnceLock::new())
    }

    fn fixed(self) -> Fixed<Self> {
        Fixed(self)
    }
}

impl<Q: QueryFragment<Pg>> Prepare for Q {}

/// What the connections of a pool asked PostgreSQL to do, counted by diesel's
/// instrumentation: `/metrics` shows it, and a test proves with it that the hot requests
/// prepare nothing once a connection has served them.
#[derive(Debug, Default)]
pub struct StatementStats {
    statements: AtomicU64,
    transaction_control: AtomicU64,
    prepared: AtomicU64,
}

/// A snapshot of [`StatementStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementCounts {
    /// Statements sent by the service's code (transaction control excluded).
    pub statements: u64,
    /// Statements parsed and kept in a connection's cache (each one once per connection).
    pub prepared: u64,
}

impl StatementStats {
    pub fn counts(&self) -> StatementCounts {
        let all = self.statements.load(Relaxed);
        let control = self.transaction_control.load(Relaxed);
        StatementCounts {
            statements: all.saturating_sub(control),
            prepared: self.prepared.load(Relaxed),
        }
    }
}

struct Counting(Arc<StatementStats>);

/// The instrumentation that counts a connection's statements into `stats`.
pub fn counting(stats: Arc<StatementStats>) -> impl Instrumentation {
    Counting(stats)
}

impl Instrumentation for Counting {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        use InstrumentationEvent as E;
        let counter = match event {
            E::StartQuery { .. } => &self.0.statements,
            E::CacheQuery { .. } => &self.0.prepared,
            // Each is one BEGIN, COMMIT, ROLLBACK or SAVEPOINT statement sent as well.
            E::BeginTransaction { .. }
            | E::CommitTransaction { .. }
            | E::RollbackTransaction { .. } => &self.0.transaction_control,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Runs `f` in a transaction whose statements are planned once per connection (`SET LOCAL
/// plan_cache_mode = force_generic_plan`, sent with the `BEGIN` in one round trip), for
/// transactions whose statements find their rows by key, so that no plan depends on the
/// values. PostgreSQL otherwise plans a prepared statement again for each call's values (a
/// custom plan) as long as the generic plan does not look cheaper, which for statements
/// taking arrays it never does: the loyalty statements of a purchase spent 1 to 8 ms each in
/// planning under load. Committed when `f` succeeds, rolled back when it fails, and a
/// savepoint inside a transaction already open, as `AsyncConnection::transaction` does.
pub async fn planned_once<R, E, F>(
    conn: &mut diesel_async::AsyncPgConnection,
    access: Access,
    f: F,
) -> Result<R, E>
where
    F: AsyncFnOnce(&mut diesel_async::AsyncPgConnection) -> Result<R, E>,
    E: From<diesel::result::Error>,
{
    use diesel_async::{AnsiTransactionManager as Manager, RunQueryDsl, TransactionManager};
    let nested = Manager::transaction_manager_status_mut(conn)
        .transaction_depth()?
        .is_some();
    let outcome = if nested {
        // A savepoint in the caller's transaction (whose access it keeps), then the setting.
        Manager::begin_transaction(conn).await?;
        match diesel::sql_query(PLANNED_ONCE)
            .prepared()
            .execute(conn)
            .await
        {
            Ok(_) => f(conn).await,
            Err(failed) => Err(failed.into()),
        }
    } else {
        let begin = match access {
            Access::ReadWrite => format!("BEGIN; {PLANNED_ONCE}"),
            Access::ReadOnly => format!("BEGIN READ ONLY; {PLANNED_ONCE}"),
        };
        Manager::begin_transaction_sql(conn, &begin).await?;
        f(conn).await
    };
    match outcome {
        Ok(value) => {
            Manager::commit_transaction(conn).await?;
            Ok(value)
        }
        Err(failed) => match Manager::rollback_transaction(conn).await {
            // A broken transaction manager says less than what broke it.
            Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(failed),
            Err(rollback) => Err(rollback.into()),
        },
    }
}

const PLANNED_ONCE: &str = "SET LOCAL plan_cache_mode = force_generic_plan";

/// Whether a transaction of [`planned_once`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
}

#[cfg(test)]
mod tests {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    use super::*;
    use crate::db::schema::customers;

    fn shown<Q: QueryFragment<Pg>>(query: &Q) -> String {
        diesel::debug_query::<Pg, _>(query).to_string()
    }

    #[test]
    fn wrapped_queries_send_the_text_and_binds_of_the_query_they_wrap() {
        let id = uuid::Uuid::now_v7();
        let query = || {
            customers::table
                .find(id)
                .filter(customers::name.eq("Anna"))
                .select((customers::id, diesel::dsl::sql::<Text>("'fixed'")))
        };
        let plain = shown(&query());
        assert!(
            plain.contains(&id.to_string()) && plain.contains("Anna"),
            "{plain}"
        );
        assert_eq!(shown(&query().prepared()), plain);
        // Written once, then taken from what was kept: the same either way.
        assert_eq!(shown(&query().fixed()), plain);
        assert_eq!(shown(&query().fixed()), plain);
        // Another type keeps its own text.
        let other = customers::table.find(id).select(customers::name);
        assert_eq!(shown(&other.fixed()), shown(&other));
        assert_ne!(shown(&other.fixed()), plain);
    }
}
