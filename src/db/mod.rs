//! The database: the connection pool, startup preparation (create the database, run the
//! embedded migrations, with bounded retries) and the generated `schema`.

pub mod login_throttle;
mod merged;
mod migrations;
pub mod partitions;
mod pooler;
pub mod rate_limits;
pub mod replicas;
pub mod schema;
mod statements;
mod statistics;

use std::time::{Duration, Instant};

use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::config::{DatabaseSettings, DatabaseUrl, Pooler};

pub use merged::MergedPages;
pub use migrations::{MIGRATIONS, embedded_versions, migrate};
pub use pooler::check_pooled_session;
pub use statements::{
    Access, Fixed, MAX_PREPARED_TEXTS, Prepare, Prepared, StatementCounts, StatementStats,
    counting, planned_once,
};
pub use statistics::analyze_outgrown;

pub type DbPool = Pool<AsyncPgConnection>;
pub type DbConn = Object<AsyncPgConnection>;

/// Builds the pool requests use. Connections are opened lazily; a checkout costs no round
/// trip (`RecyclingMethod::Fast`: a dead connection fails its first query and is then
/// discarded). Every connection counts its statements into `stats`, and runs each statement
/// under the request `statement_timeout`: set on the session it opens, or, behind a
/// transaction-mode pooler (where a session is shared by every client), by the server's
/// defaults for the pooled sessions, which startup checks ([`check_pooled_session`]).
pub fn pool(
    settings: &DatabaseSettings,
    stats: std::sync::Arc<StatementStats>,
) -> Result<DbPool, String> {
    let session = match settings.pooler {
        Pooler::None => Some(Session::new(
            settings.statement_timeout,
            settings.idle_in_transaction_timeout,
        )),
        Pooler::Transaction => None,
    };
    build_pool(
        settings,
        &settings.url,
        stats,
        session,
        settings.pool_size,
        RecyclingMethod::Fast,
    )
}

/// Builds one pool per read replica (`RAPPORT_READ_DATABASE_URLS`), each as large as the
/// request pool and under the same limits, named by its URL without the password. A
/// replica's connection is checked with a round trip at checkout
/// (`RecyclingMethod::Verified`): a replica that stopped fails there, is marked down, and the
/// primary serves the read, instead of the read failing on a dead connection.
pub fn replica_pools(
    settings: &DatabaseSettings,
    stats: std::sync::Arc<StatementStats>,
) -> Result<Vec<replicas::Replica>, String> {
    let session = Session::new(
        settings.statement_timeout,
        settings.idle_in_transaction_timeout,
    );
    settings
        .read_urls
        .iter()
        .map(|url| {
            build_pool(
                settings,
                url,
                stats.clone(),
                Some(session),
                settings.pool_size,
                RecyclingMethod::Verified,
            )
            .map(|pool| replicas::Replica::new(url.to_string(), pool))
        })
        .collect()
}

/// Most connections the background jobs hold at once: the loyalty pass, the import worker
/// and the analytics computation take up to two each, webhooks and upkeep one.
pub const JOB_POOL_SIZE: usize = 8;

/// Builds the pool background jobs use: their own connections, so that their long
/// `statement_timeout` never leaks into a request's session (nor a request's short one into
/// a job), and so that a burst of requests cannot starve them. Past a transaction-mode
/// pooler (`session_url`): their limits are set on sessions of their own.
pub fn job_pool(
    settings: &DatabaseSettings,
    stats: std::sync::Arc<StatementStats>,
) -> Result<DbPool, String> {
    let session = Session::new(
        settings.job_statement_timeout,
        settings.idle_in_transaction_timeout,
    );
    build_pool(
        settings,
        settings.session_url(),
        stats,
        Some(session),
        JOB_POOL_SIZE,
        RecyclingMethod::Fast,
    )
}

/// A pool of connections to `url`, each starting with `session`'s settings (none: the
/// server's defaults).
fn build_pool(
    settings: &DatabaseSettings,
    url: &DatabaseUrl,
    stats: std::sync::Arc<StatementStats>,
    session: Option<Session>,
    max_size: usize,
    recycling: RecyclingMethod<AsyncPgConnection>,
) -> Result<DbPool, String> {
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = recycling;
    let connect_timeout = settings.connect_timeout;
    let setup = std::sync::Arc::new(session.map(|s| s.setup()).unwrap_or_default());
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        let stats = stats.clone();
        let setup = setup.clone();
        Box::pin(async move {
            let mut conn = connect_with_timeout(&url, connect_timeout, &setup).await?;
            conn.set_instrumentation(counting(stats));
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url.expose(), config);
    let built = Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(settings.pool_wait_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.connect_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .build();
    built.map_err(|err| format!("cannot build the connection pool: {err}"))
}

/// The limits a pooled session runs under.
#[derive(Debug, Clone, Copy)]
pub struct Session {
    /// PostgreSQL cancels a statement running longer (SQLSTATE 57014).
    pub statement_timeout: Duration,
    /// PostgreSQL ends a session idle this long inside a transaction (SQLSTATE 25P03).
    pub idle_in_transaction_timeout: Duration,
}

impl Session {
    pub fn new(statement_timeout: Duration, idle_in_transaction_timeout: Duration) -> Self {
        Self {
            statement_timeout,
            idle_in_transaction_timeout,
        }
    }

    /// Every setting of such a session, as `pg_settings` shows it: [`SESSION_SETTINGS`]
    /// and the two limits, in milliseconds.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let mut all: Vec<(&'static str, String)> = SESSION_SETTINGS
            .iter()
            .map(|(name, value)| (*name, (*value).to_owned()))
            .collect();
        all.push((
            "statement_timeout",
            millis(self.statement_timeout).to_string(),
        ));
        all.push((
            "idle_in_transaction_session_timeout",
            millis(self.idle_in_transaction_timeout).to_string(),
        ));
        all
    }

    /// The statements that set [`Session::settings`] on a session.
    pub fn setup(&self) -> String {
        set_statements(&self.settings())
    }
}

/// `SET name = value; …` for each setting.
fn set_statements<N: AsRef<str>, V: AsRef<str>>(settings: &[(N, V)]) -> String {
    settings
        .iter()
        .map(|(name, value)| format!("SET {} = {}", name.as_ref(), value.as_ref()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A duration as PostgreSQL's integer milliseconds (at least 1: 0 would mean no limit).
fn millis(d: Duration) -> u128 {
    d.as_millis().clamp(1, i32::MAX as u128)
}

/// Session settings every connection starts with (pooled ones add their [`Session`] limits;
/// the one-off connections of startup, the CLI and tests run without limits).
///
/// - A word of a customer search matches the customer's text when the word's trigrams are
///   found in it at least this much (pg_trgm word similarity): a typo or two in a name
///   ("Robret", "Smiht": 0.43, 0.5) or the beginning of a word ("Rob": 0.75) match.
/// - No JIT compilation: it pays off on long analytical scans, but a statement the planner
///   overestimates (a set-wise write over a handful of rows) would spend most of a second
///   compiling what runs in a millisecond (measured on the tier evaluation).
const SESSION_SETTINGS: [(&str, &str); 2] =
    [("pg_trgm.word_similarity_threshold", "0.4"), ("jit", "off")];

async fn connect_with_timeout(
    url: &str,
    timeout: Duration,
    setup: &str,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    use diesel_async::SimpleAsyncConnection;
    let connect = async {
        let mut conn = AsyncPgConnection::establish(url).await?;
        if !setup.is_empty() {
            conn.batch_execute(setup)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        }
        Ok(conn)
    };
    match tokio::time::timeout(timeout, connect).await {
        Ok(result) => result,
        Err(_) => Err(diesel::ConnectionError::BadConnection(format!(
            "no answer within {} ms",
            timeout.as_millis()
        ))),
    }
}

/// For the rest of the transaction under way, a statement waiting longer than `timeout` for
/// a lock fails ("canceling statement due to lock timeout") instead of waiting on: for work
/// that takes strong locks (detaching partitions) and would otherwise queue behind a long
/// transaction, with every reader and writer of the table queued behind it.
pub async fn wait_for_locks_at_most(
    conn: &mut AsyncPgConnection,
    timeout: Duration,
) -> diesel::QueryResult<()> {
    diesel::sql_query(format!("SET LOCAL lock_timeout = {}", millis(timeout)))
        .execute(conn)
        .await
        .map(drop)
}

/// Opens one connection outside the pool (startup, CLI, tests), with
/// [`SESSION_SETTINGS`]. Behind a transaction-mode pooler, pass `session_url`.
pub async fn connect(url: &DatabaseUrl, timeout: Duration) -> Result<AsyncPgConnection, String> {
    connect_with_timeout(url.expose(), timeout, &set_statements(&SESSION_SETTINGS))
        .await
        .map_err(|e| one_line(&e.to_string()))
}

pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Makes the database usable: waits for the server (up to `startup_timeout`), creates the
/// database when it is missing and the role may, and applies pending migrations.
/// The error is one line saying why, for `main` to print before exiting non-zero.
/// Behind a transaction-mode pooler all of it runs past the pooler (`session_url`): the
/// migrations hold a session-level lock.
pub async fn prepare(settings: &DatabaseSettings) -> Result<usize, String> {
    let url = settings.session_url();
    let mut retry = StartupRetry::new(settings.startup_timeout);
    loop {
        match connect(url, settings.connect_timeout).await {
            Ok(conn) => {
                drop(conn);
                return migrate(url).await;
            }
            Err(reason) if reason.contains("does not exist") && reason.contains("database") => {
                create_database(settings).await?;
            }
            Err(reason) if is_fatal(&reason) => {
                return Err(format!("cannot connect to {url}: {reason}"));
            }
            Err(reason) => {
                tracing::warn!(reason = %reason, "database not reachable yet");
                if !retry.wait().await {
                    return Err(format!(
                        "database unreachable at {url} after {}s: {reason}",
                        settings.startup_timeout.as_secs()
                    ));
                }
            }
        }
    }
}

/// Startup's patience with a server (or pooler) that does not answer yet: waits before each
/// new try, from 200 ms doubling to at most 3 s, for as long as `startup_timeout` allows.
struct StartupRetry {
    deadline: Instant,
    delay: Duration,
}

impl StartupRetry {
    fn new(startup_timeout: Duration) -> Self {
        Self {
            deadline: Instant::now() + startup_timeout,
            delay: Duration::from_millis(200),
        }
    }

    /// Waits for the next try; false, at once, when it would come past the deadline.
    async fn wait(&mut self) -> bool {
        if Instant::now() + self.delay > self.deadline {
            return false;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Duration::from_secs(3));
        true
    }
}

/// Failures that waiting will not cure.
fn is_fatal(reason: &str) -> bool {
    [
        "password authentication failed",
        "role",
        "no pg_hba.conf entry",
        "permission denied",
    ]
    .iter()
    .any(|sign| reason.contains(sign))
}

async fn create_database(settings: &DatabaseSettings) -> Result<(), String> {
    let url = settings.session_url();
    let name = url.database_name();
    let mut admin = connect(&url.maintenance(), settings.connect_timeout)
        .await
        .map_err(|e| format!("database {name:?} does not exist and the server's postgres database is unreachable to create it: {e}"))?;
    let sql = format!("CREATE DATABASE {}", quote_ident(&name));
    match diesel::sql_query(sql).execute(&mut admin).await {
        Ok(_) => {
            tracing::info!(database = %name, "created the database");
            Ok(())
        }
        Err(err) if err.to_string().contains("already exists") => Ok(()),
        Err(err) => Err(format!(
            "database {name:?} does not exist and could not be created: {}",
            one_line(&err.to_string())
        )),
    }
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether every embedded migration has been applied to the database behind `conn`.
pub async fn migrations_applied(conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
    use diesel::sql_types::Text;
    #[derive(diesel::QueryableByName)]
    struct Applied {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let applied: Vec<Applied> = diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
        .load(conn)
        .await?;
    let applied: std::collections::HashSet<String> =
        applied.into_iter().map(|a| a.version).collect();
    Ok(embedded_versions().iter().all(|v| applied.contains(v)))
}

/// A LIKE pattern matching `text` anywhere, with `%`, `_` and `\` taken literally.
pub fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

/// SQL functions the stores use.
pub mod functions {
    use diesel::sql_types::Text;

    diesel::define_sql_function! {
        /// `lower(text)`, matching the `lower(email)` unique indexes.
        fn lower(x: Text) -> Text;
    }
}

/// Stores a serde type as `jsonb`. The type must also derive `diesel::expression::AsExpression`
/// and `diesel::deserialize::FromSqlRow` with `#[diesel(sql_type = diesel::sql_types::Jsonb)]`.
#[macro_export]
macro_rules! jsonb_sql {
    ($ty:ty) => {
        impl diesel::serialize::ToSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for $ty {
            fn to_sql<'b>(
                &'b self,
                out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>,
            ) -> diesel::serialize::Result {
                let value = serde_json::to_value(self)?;
                <serde_json::Value as diesel::serialize::ToSql<
                    diesel::sql_types::Jsonb,
                    diesel::pg::Pg,
                >>::to_sql(&value, &mut out.reborrow())
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Jsonb, diesel::pg::Pg> for $ty {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let value = <serde_json::Value as diesel::deserialize::FromSql<
                    diesel::sql_types::Jsonb,
                    diesel::pg::Pg,
                >>::from_sql(value)?;
                Ok(serde_json::from_value(value)?)
            }
        }
    };
}

/// `text[]` as diesel sees it (elements may be NULL), for `Vec<String>` fields whose
/// elements never are (tags, benefits): `#[diesel(deserialize_as = NullableTexts,
/// serialize_as = NullableTexts)]`.
#[derive(Debug, Clone)]
pub struct NullableTexts(Vec<Option<String>>);

impl From<NullableTexts> for Vec<String> {
    fn from(texts: NullableTexts) -> Self {
        texts.0.into_iter().flatten().collect()
    }
}

impl From<Vec<String>> for NullableTexts {
    fn from(texts: Vec<String>) -> Self {
        NullableTexts(texts.into_iter().map(Some).collect())
    }
}

impl
    diesel::deserialize::Queryable<
        diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Text>>,
        diesel::pg::Pg,
    > for NullableTexts
{
    type Row = Vec<Option<String>>;

    fn build(row: Self::Row) -> diesel::deserialize::Result<Self> {
        Ok(NullableTexts(row))
    }
}

impl
    diesel::expression::AsExpression<
        diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Text>>,
    > for NullableTexts
{
    type Expression = <Vec<Option<String>> as diesel::expression::AsExpression<
        diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Text>>,
    >>::Expression;

    fn as_expression(self) -> Self::Expression {
        diesel::expression::AsExpression::<
            diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Text>>,
        >::as_expression(self.0)
    }
}

/// `uuid[]` as diesel sees it (elements may be NULL), for `Vec<Uuid>` fields whose elements
/// never are (an opportunity's contacts), as [`NullableTexts`] for `text[]`.
#[derive(Debug, Clone)]
pub struct NullableUuids(Vec<Option<uuid::Uuid>>);

impl From<NullableUuids> for Vec<uuid::Uuid> {
    fn from(ids: NullableUuids) -> Self {
        ids.0.into_iter().flatten().collect()
    }
}

impl From<Vec<uuid::Uuid>> for NullableUuids {
    fn from(ids: Vec<uuid::Uuid>) -> Self {
        NullableUuids(ids.into_iter().map(Some).collect())
    }
}

impl
    diesel::deserialize::Queryable<
        diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Uuid>>,
        diesel::pg::Pg,
    > for NullableUuids
{
    type Row = Vec<Option<uuid::Uuid>>;

    fn build(row: Self::Row) -> diesel::deserialize::Result<Self> {
        Ok(NullableUuids(row))
    }
}

impl
    diesel::expression::AsExpression<
        diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Uuid>>,
    > for NullableUuids
{
    type Expression = <Vec<Option<uuid::Uuid>> as diesel::expression::AsExpression<
        diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Uuid>>,
    >>::Expression;

    fn as_expression(self) -> Self::Expression {
        diesel::expression::AsExpression::<
            diesel::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Uuid>>,
        >::as_expression(self.0)
    }
}

/// `(time_column, id_column) <cmp> (t, id)`: the keyset condition of a list ordered by a time
/// and the id, which the `(time, id)` indexes serve. `cmp` is `>` ascending, `<` descending.
pub fn after_key<QS>(
    time_column: &str,
    id_column: &str,
    cmp: &str,
    t: chrono::DateTime<chrono::Utc>,
    id: uuid::Uuid,
) -> Box<dyn diesel::BoxableExpression<QS, diesel::pg::Pg, SqlType = diesel::sql_types::Bool>> {
    use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
    Box::new(
        diesel::dsl::sql::<Bool>(&format!("({time_column}, {id_column}) {cmp} ("))
            .bind::<Timestamptz, _>(t)
            .sql(", ")
            .bind::<SqlUuid, _>(id)
            .sql(")"),
    )
}

/// `query.filter(column = value)` for one value, `column = ANY(values)` for several.
/// PostgreSQL walks an index on `(column, sort key)` in order only for the first, so a
/// one-value filter (the usual case) must not be sent as an array.
#[macro_export]
macro_rules! filter_one_of {
    ($query:expr, $column:expr, $values:expr) => {{
        let mut values = $values;
        if values.len() == 1
            && let Some(value) = values.pop()
        {
            $query.filter($column.eq(value))
        } else {
            $query.filter($column.eq_any(values))
        }
    }};
}
