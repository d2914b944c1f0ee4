//! Statements prepared once per connection, and the counts that prove it.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};

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
#[derive(Debug, Clone)]
pub struct Prepared<Q>(pub Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, backend: &Pg) -> diesel::QueryResult<bool> {
        use diesel::query_builder::QueryBuilder;
        let mut sql = diesel::pg::PgQueryBuilder::default();
        self.0.to_sql(&mut sql, backend)?;
        Ok(admit(&sql.finish()))
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

/// `.prepared()` on any query: see [`Prepared`].
pub trait Prepare: Sized {
    fn prepared(self) -> Prepared<Self> {
        Prepared(self)
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

/// Plans each statement of the current transaction once per connection (`SET LOCAL
/// plan_cache_mode = force_generic_plan`), for transactions whose statements find their rows
/// by key, so that no plan depends on the values. PostgreSQL otherwise plans a prepared
/// statement again for each call's values (a custom plan) as long as the generic plan does
/// not look cheaper, which for statements taking arrays it never does: the loyalty
/// statements of a purchase spent 1 to 8 ms each in planning under load.
pub async fn plan_once(conn: &mut diesel_async::AsyncPgConnection) -> diesel::QueryResult<()> {
    use diesel_async::RunQueryDsl;
    diesel::sql_query("SET LOCAL plan_cache_mode = force_generic_plan")
        .prepared()
        .execute(conn)
        .await
        .map(drop)
}
