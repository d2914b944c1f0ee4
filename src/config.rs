//! Typed settings from the environment. Each variable is listed in [`VARIABLES`] (the source of
//! the table in docs/configuration.md and `.env.example`); an invalid value stops startup with one line naming it.
//! Secrets are wrapped so that they never reach a log line or `Debug` output.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub use crate::domain::{parse_duration, show_duration};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};

use crate::domain::RateLimit;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// The database URL; its password is hidden from `Debug` and `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(url::Url);

impl DatabaseUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text)
            .map_err(|e| format!("not a URL ({e}); expected postgres://user@host:port/database"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err("must start with postgres:// or postgresql://".to_owned());
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("must name a host".to_owned());
        }
        let db = url.path().trim_start_matches('/');
        if db.is_empty() || db.contains('/') {
            return Err("must name one database, as in postgres://host/rapport".to_owned());
        }
        Ok(Self(url))
    }

    /// The full URL, password included, for connecting.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    pub fn database_name(&self) -> String {
        let name = self.0.path().trim_start_matches('/');
        percent_decode(name)
    }

    /// The same server's maintenance database, to create ours from.
    pub fn maintenance(&self) -> Self {
        let mut url = self.0.clone();
        url.set_path("/postgres");
        Self(url)
    }

    /// The same server with another database, for tests that clone databases.
    pub fn with_database(&self, name: &str) -> Self {
        let mut url = self.0.clone();
        url.set_path(&format!("/{name}"));
        Self(url)
    }

    pub fn host(&self) -> String {
        self.0.host_str().unwrap_or_default().to_owned()
    }

    pub fn port(&self) -> u16 {
        self.0.port().unwrap_or(5432)
    }
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        f.write_str(shown.as_str())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// Addresses of reverse proxies whose `X-Forwarded-For` is believed: single IPs or CIDR
/// ranges. Empty (the default): the peer address is the client's, the header is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses a comma-separated list such as `10.0.0.0/8, 192.0.2.7, ::1`.
    pub fn parse(list: &str) -> Result<Self, String> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (ip, prefix) = item.split_once('/').unwrap_or((item, ""));
                let ip: IpAddr = ip.trim().parse().map_err(|_| {
                    format!("{item:?} is not an IP address or CIDR range such as 10.0.0.0/8")
                })?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix.trim() {
                    "" => max,
                    p => p
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| format!("{item:?} has a prefix length over {max}"))?,
                };
                Ok((ip, prefix))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is one of the trusted proxies (an IPv4-mapped IPv6 address counts as
    /// its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|(net, prefix)| match (net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                u32::from(*net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                u128::from(*net) & mask == u128::from(ip) & mask
            }
            _ => false,
        })
    }
}

/// What stands between the request pool and PostgreSQL (`RAPPORT_DB_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooler {
    /// Direct connections, or a session-mode pooler: each connection sets its own limits.
    None,
    /// A transaction-mode pooler: a session is not the client's to set (see
    /// `db::check_pooled_session`).
    Transaction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HS256 key; when absent the key ring kept (sealed) in the database signs.
    pub secret: Option<Secret>,
    /// Keys that signed before `secret` and still verify (rotation of a configured key).
    pub previous_secrets: Vec<Secret>,
    pub issuer: String,
    pub audience: String,
    /// Lifetime of tokens issued by `POST /v1/auth/token` (and `rapport token` by default).
    pub token_ttl: Duration,
}

/// The server key that seals secrets kept in the database (webhook secrets, signing keys).
#[derive(Debug, Clone)]
pub struct SecretKeySettings {
    /// 32 bytes, base64; seals. When absent, the key file holds it (generated when missing).
    pub key: Option<Secret>,
    /// Keys that sealed before `key`: they still open, never seal.
    pub previous: Vec<Secret>,
    /// Where the key is kept when `key` is not set.
    pub file: PathBuf,
}

/// The 32 bytes of a server key given as base64 (standard or URL-safe, padded or not).
pub fn decode_secret_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim().trim_end_matches('=');
    let padded = match text.len() % 4 {
        2 => format!("{text}=="),
        3 => format!("{text}="),
        _ => text.to_owned(),
    };
    let bytes = STANDARD
        .decode(&padded)
        .or_else(|_| URL_SAFE.decode(&padded))
        .ok()?;
    bytes.try_into().ok()
}

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: DatabaseUrl,
    /// For sessions a transaction-mode pooler cannot keep (LISTEN; with
    /// [`Pooler::Transaction`] also migrations, jobs and startup); `url` when unset.
    pub direct_url: Option<DatabaseUrl>,
    /// Whether `url` goes through a transaction-mode pooler.
    pub pooler: Pooler,
    /// Streaming replicas of the primary that reads may be served from (lists, search,
    /// exports, the timeline, analytics, the event feed); none by default.
    pub read_urls: Vec<DatabaseUrl>,
    /// A replica further behind the primary than this serves no reads until it catches up.
    pub replica_max_lag: Duration,
    pub pool_size: usize,
    /// How long a request waits for a free connection before it is answered `503`.
    pub pool_wait_timeout: Duration,
    /// How long opening one connection may take.
    pub connect_timeout: Duration,
    /// How long startup keeps retrying an unreachable server before giving up.
    pub startup_timeout: Duration,
    /// How long one statement of a request may run before PostgreSQL cancels it (the
    /// request is then answered `503`): a lock held too long or a runaway plan must not hold
    /// a connection and a client's socket for ever.
    pub statement_timeout: Duration,
    /// The same for background jobs (loyalty pass, analytics, imports, webhooks, upkeep),
    /// whose statements walk whole tables.
    pub job_statement_timeout: Duration,
    /// How long a session may sit idle inside an open transaction before PostgreSQL ends it,
    /// releasing its locks and its snapshot (a client that stalls mid-stream, a stuck task).
    pub idle_in_transaction_timeout: Duration,
}

impl DatabaseSettings {
    /// Where work that needs a session of its own connects (migrations under their lock,
    /// background jobs with their own limits, startup's one-off connections): past a
    /// transaction-mode pooler when there is one, else `url`.
    pub fn session_url(&self) -> &DatabaseUrl {
        match (self.pooler, &self.direct_url) {
            (Pooler::Transaction, Some(direct)) => direct,
            _ => &self.url,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    /// Where `/metrics` is served without a token instead of on `bind` with `metrics:read`.
    pub metrics_bind: Option<SocketAddr>,
    pub jwt: JwtSettings,
    /// The server key sealing secrets at rest.
    pub secret_key: SecretKeySettings,
    pub body_limit: usize,
    /// Origins allowed to call the API from a browser; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client (for the sign-in throttle).
    pub trusted_proxies: TrustedProxies,
    pub log_filter: String,
    pub log_format: LogFormat,
    pub workers: usize,
    /// How long the listener keeps accepting after SIGTERM, `/readyz` answering `503`.
    pub shutdown_drain: Duration,
    /// How long a caller's standing is trusted from memory (see `auth::changes`).
    pub access_cache_ttl: Duration,
    pub shutdown_timeout: Duration,
    /// How often the loyalty evaluation pass runs.
    pub loyalty_interval: Duration,
    /// How often the customer value analytics are recomputed.
    pub analytics_interval: Duration,
    /// How often the counts survey responses append are folded into the roll-up.
    pub survey_fold_interval: Duration,
    pub imports: ImportSettings,
    pub webhooks: WebhookSettings,
    /// How long events are kept (for the feed, replays and disabled webhooks catching up).
    pub event_retention: Duration,
    /// How long a running request holds its `Idempotency-Key` without renewing it; it renews
    /// every third of it, so a retry takes the key over only from an instance that died.
    pub idempotency_lease: Duration,
    /// How long a merge of duplicate customers can be undone (`POST .../unmerge`).
    pub merge_undo_window: Duration,
    /// Requests per window each user, API client or service token may send (per instance,
    /// unless `rate_limit_shared`), unless a client has its own.
    pub rate_limit: RateLimit,
    /// Whether the instances count each caller's requests against one limit, agreed through
    /// the database (see `http::shared_limits`), rather than each against its own; and
    /// whether they keep the sign-in throttle's books there (see `auth::throttle`).
    pub rate_limit_shared: bool,
}

/// How imports run, and the limits that keep a hostile upload from hurting anyone else.
#[derive(Debug, Clone)]
pub struct ImportSettings {
    /// How often the worker looks for queued (or abandoned) imports.
    pub interval: Duration,
    /// Rows an import writes per transaction, at most.
    pub batch: usize,
    /// Bytes of rows' text an import holds per transaction, at most: a batch is written once it
    /// reaches either bound, so memory stays flat whatever the rows hold.
    pub batch_bytes: usize,
    /// The largest file, as sent and once inflated.
    pub max_bytes: u64,
    /// The most a compressed body may inflate, as a ratio to its compressed size.
    pub max_ratio: u64,
    /// How long an upload may send nothing before it is cut off.
    pub idle_timeout: Duration,
    /// Uploads one caller may have in flight at once; past it, a 429.
    pub uploads_per_caller: usize,
    /// How long the same file from the same caller answers with its first import.
    pub dedup_window: Duration,
    /// Runs a job is given before it fails for good (a reason not tied to one row).
    pub max_attempts: i32,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// How often the worker looks for events to match and deliveries due, when idle.
    pub interval: Duration,
    /// How long one delivery request may take.
    pub timeout: Duration,
    /// The first retry's delay; each further retry doubles it (up to 120 times).
    pub retry_base: Duration,
    /// How long a delivery is retried before it fails and the webhook is disabled.
    pub retry_for: Duration,
    /// Whether webhooks may point at loopback, private and link-local addresses.
    pub allow_private: bool,
}

/// An invalid setting: names the variable, says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub var: &'static str,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.var, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// One documented variable: name, default, meaning.
pub struct Variable {
    pub name: &'static str,
    pub default: &'static str,
    pub meaning: &'static str,
}

/// Every variable Rapport reads. The table in docs/configuration.md and `.env.example` are checked against it.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "DATABASE_URL",
        default: "postgres://postgres@127.0.0.1:5432/rapport",
        meaning: "PostgreSQL to use; the database is created on start when missing and the role may",
    },
    Variable {
        name: "RAPPORT_DIRECT_DATABASE_URL",
        default: "(DATABASE_URL)",
        meaning: "a direct connection to the primary, past any transaction-mode pooler, for what needs a session: the LISTEN that tells every instance of changes to tokens, users, clients and signing keys; with RAPPORT_DB_POOLER=transaction also migrations, background jobs and startup",
    },
    Variable {
        name: "RAPPORT_DB_POOLER",
        default: "none",
        meaning: "transaction when DATABASE_URL goes through a transaction-mode pooler (PgBouncer 1.21+ with max_prepared_statements): request connections then set nothing on their session, the server's defaults must hold the request limits (startup checks them), and RAPPORT_DIRECT_DATABASE_URL is required",
    },
    Variable {
        name: "RAPPORT_READ_DATABASE_URLS",
        default: "(none)",
        meaning: "streaming replicas of the primary, comma-separated, that lists, search, exports, the timeline, analytics and the event feed may read from; a read carrying a write's Rapport-Consistency-Token goes only to a replica that has replayed that write",
    },
    Variable {
        name: "RAPPORT_REPLICA_MAX_LAG",
        default: "5s",
        meaning: "how far behind the primary a replica may be and still serve reads; a replica further behind, or failing, is skipped until it catches up",
    },
    Variable {
        name: "RAPPORT_BIND",
        default: "127.0.0.1:8080",
        meaning: "address and port to listen on",
    },
    Variable {
        name: "RAPPORT_METRICS_BIND",
        default: "(none)",
        meaning: "address and port to serve /metrics on without a token (and not on RAPPORT_BIND); unset, /metrics needs metrics:read",
    },
    Variable {
        name: "RAPPORT_JWT_SECRET",
        default: "(a key ring kept sealed in the database)",
        meaning: "HS256 signing key, at least 32 characters; unset, keys are generated, kept sealed in the database and rotated with `rapport keys rotate`",
    },
    Variable {
        name: "RAPPORT_JWT_PREVIOUS_SECRETS",
        default: "(none)",
        meaning: "comma-separated former RAPPORT_JWT_SECRET values that still verify (not sign) tokens, during a rotation",
    },
    Variable {
        name: "RAPPORT_SECRET_KEY",
        default: "(read from RAPPORT_SECRET_KEY_FILE)",
        meaning: "server key sealing webhook secrets and signing keys in the database: 32 bytes in base64 (openssl rand -base64 32); set it in production",
    },
    Variable {
        name: "RAPPORT_SECRET_KEY_PREVIOUS",
        default: "(none)",
        meaning: "comma-separated former RAPPORT_SECRET_KEY values that still open (never seal) stored secrets, until `rapport secrets reseal`",
    },
    Variable {
        name: "RAPPORT_SECRET_KEY_FILE",
        default: "./rapport-secret.key",
        meaning: "file holding the server key when RAPPORT_SECRET_KEY is unset; generated (mode 0600) when missing",
    },
    Variable {
        name: "RAPPORT_JWT_ISSUER",
        default: "rapport",
        meaning: "`iss` of issued tokens, checked on every request",
    },
    Variable {
        name: "RAPPORT_JWT_AUDIENCE",
        default: "rapport-api",
        meaning: "`aud` of issued tokens, checked on every request",
    },
    Variable {
        name: "RAPPORT_TOKEN_TTL",
        default: "30m",
        meaning: "lifetime of issued tokens (30s, 15m, 12h, 7d)",
    },
    Variable {
        name: "RAPPORT_DB_POOL_SIZE",
        default: "16",
        meaning: "most database connections held open",
    },
    Variable {
        name: "RAPPORT_DB_POOL_WAIT_TIMEOUT",
        default: "2s",
        meaning: "how long a request waits for a free connection before a 503",
    },
    Variable {
        name: "RAPPORT_DB_CONNECT_TIMEOUT",
        default: "3s",
        meaning: "how long opening one database connection may take",
    },
    Variable {
        name: "RAPPORT_DB_STARTUP_TIMEOUT",
        default: "30s",
        meaning: "how long startup retries an unreachable database before exiting",
    },
    Variable {
        name: "RAPPORT_DB_STATEMENT_TIMEOUT",
        default: "30s",
        meaning: "longest a request's SQL statement may run before it is cancelled and answered 503",
    },
    Variable {
        name: "RAPPORT_DB_JOB_STATEMENT_TIMEOUT",
        default: "30m",
        meaning: "longest a background job's SQL statement may run (loyalty, analytics, imports, webhooks)",
    },
    Variable {
        name: "RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT",
        default: "60s",
        meaning: "how long a session may sit idle in an open transaction before the database ends it",
    },
    Variable {
        name: "RAPPORT_BODY_LIMIT",
        default: "1MiB",
        meaning: "largest JSON request body (bytes, or with KiB/MiB); larger is a 413",
    },
    Variable {
        name: "RAPPORT_TRUSTED_PROXIES",
        default: "(none)",
        meaning: "comma-separated IPs or CIDR ranges of reverse proxies whose X-Forwarded-For is believed",
    },
    Variable {
        name: "RAPPORT_CORS_ORIGINS",
        default: "(none)",
        meaning: "comma-separated browser origins allowed to call the API, or *",
    },
    Variable {
        name: "RAPPORT_LOG",
        default: "info",
        meaning: "log filter (tracing EnvFilter syntax, e.g. info,rapport=debug)",
    },
    Variable {
        name: "RAPPORT_LOG_FORMAT",
        default: "pretty",
        meaning: "log line format: pretty or json",
    },
    Variable {
        name: "RAPPORT_WORKERS",
        default: "(number of cores)",
        meaning: "HTTP worker threads",
    },
    Variable {
        name: "RAPPORT_ACCESS_CACHE_TTL",
        default: "1s",
        meaning: "how long an instance trusts what it read of a caller's standing (user, client, revoked tokens); changes reach every instance at once by notification, and within this time if notifications are lost",
    },
    Variable {
        name: "RAPPORT_SHUTDOWN_DRAIN",
        default: "5s",
        meaning: "how long the service keeps accepting requests after SIGTERM, with `/readyz` answering `503`, so that load balancers take it out first",
    },
    Variable {
        name: "RAPPORT_SHUTDOWN_TIMEOUT",
        default: "30s",
        meaning: "how long in-flight requests may take to finish after the drain",
    },
    Variable {
        name: "RAPPORT_LOYALTY_INTERVAL",
        default: "1h",
        meaning: "how often the loyalty pass expires points and runs tier downgrades",
    },
    Variable {
        name: "RAPPORT_ANALYTICS_INTERVAL",
        default: "1h",
        meaning: "how often value tiers, the value matrix, RFM scores and churn risk are recomputed",
    },
    Variable {
        name: "RAPPORT_SURVEY_FOLD_INTERVAL",
        default: "1s",
        meaning: "how often the counts survey responses append are folded into the results' roll-up (100ms to 1h)",
    },
    Variable {
        name: "RAPPORT_IMPORT_INTERVAL",
        default: "5s",
        meaning: "how often the import worker looks for queued imports and resumes abandoned ones",
    },
    Variable {
        name: "RAPPORT_IMPORT_BATCH",
        default: "5000",
        meaning: "rows an import writes per transaction at most (1 to 100000)",
    },
    Variable {
        name: "RAPPORT_IMPORT_BATCH_BYTES",
        default: "2MiB",
        meaning: "bytes of rows an import holds per transaction at most: with the row count, what bounds its memory",
    },
    Variable {
        name: "RAPPORT_IMPORT_MAX_BYTES",
        default: "2GiB",
        meaning: "largest import file, as sent and once inflated; larger is a 413",
    },
    Variable {
        name: "RAPPORT_IMPORT_MAX_RATIO",
        default: "100",
        meaning: "how many times its compressed size a gzip body may inflate to; more is a 413",
    },
    Variable {
        name: "RAPPORT_UPLOAD_IDLE_TIMEOUT",
        default: "30s",
        meaning: "how long an upload may send nothing before it is cut off with a 408",
    },
    Variable {
        name: "RAPPORT_IMPORT_UPLOADS_PER_CALLER",
        default: "4",
        meaning: "uploads one user or API client may have in flight at once; more is a 429",
    },
    Variable {
        name: "RAPPORT_IMPORT_DEDUP_WINDOW",
        default: "24h",
        meaning: "how long the same file from the same caller answers with its first import",
    },
    Variable {
        name: "RAPPORT_IMPORT_MAX_ATTEMPTS",
        default: "5",
        meaning: "runs an import job is given before it fails for a reason not tied to one row",
    },
    Variable {
        name: "RAPPORT_WEBHOOK_INTERVAL",
        default: "1s",
        meaning: "how often the idle webhook worker looks for new events and due retries",
    },
    Variable {
        name: "RAPPORT_WEBHOOK_TIMEOUT",
        default: "10s",
        meaning: "how long one webhook request may take before it counts as failed",
    },
    Variable {
        name: "RAPPORT_WEBHOOK_RETRY_BASE",
        default: "30s",
        meaning: "first retry delay; doubled per failure up to 120 times it, with 20 % jitter",
    },
    Variable {
        name: "RAPPORT_WEBHOOK_RETRY_FOR",
        default: "24h",
        meaning: "how long a failing delivery is retried before the webhook is disabled",
    },
    Variable {
        name: "RAPPORT_WEBHOOK_ALLOW_PRIVATE",
        default: "false",
        meaning: "let webhooks reach loopback, private and link-local addresses (true/false)",
    },
    Variable {
        name: "RAPPORT_EVENT_RETENTION",
        default: "30d",
        meaning: "how long events are kept for the feed, replays and paused webhooks",
    },
    Variable {
        name: "RAPPORT_IDEMPOTENCY_LEASE",
        default: "30s",
        meaning: "how long a running request's Idempotency-Key outlives its instance before a retry may take it over",
    },
    Variable {
        name: "RAPPORT_MERGE_UNDO_WINDOW",
        default: "7d",
        meaning: "how long a merge of duplicate customers can be undone (`POST /v1/customers/{id}/unmerge`), while nothing new was written to what it moved",
    },
    Variable {
        name: "RAPPORT_RATE_LIMIT",
        default: "600/60s",
        meaning: "requests per window one user, API client or service token may send to one instance (to all of them with RAPPORT_RATE_LIMIT_SHARED), unless a client has its own; `off` or `0` disables",
    },
    Variable {
        name: "RAPPORT_RATE_LIMIT_SHARED",
        default: "false",
        meaning: "count each caller's requests against one limit across all instances of the database (true/false), agreed through PostgreSQL several times a second without a round trip per request, and keep the sign-in throttle's books in PostgreSQL so that all instances enforce one allowance (two statements per sign-in attempt); false: each instance counts on its own",
    },
];

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass their own values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let read = |name: &'static str, default: &str| get(name).unwrap_or(default.to_owned());
        let fail = |var: &'static str, message: String| ConfigError { var, message };

        let url = read("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rapport");
        let url = DatabaseUrl::parse(url.trim()).map_err(|m| fail("DATABASE_URL", m))?;
        let direct_url = match get("RAPPORT_DIRECT_DATABASE_URL") {
            None => None,
            Some(text) => Some(
                DatabaseUrl::parse(text.trim())
                    .map_err(|m| fail("RAPPORT_DIRECT_DATABASE_URL", m))?,
            ),
        };

        let pooler = match read("RAPPORT_DB_POOLER", "none").trim() {
            "none" => Pooler::None,
            "transaction" if direct_url.is_some() => Pooler::Transaction,
            "transaction" => {
                return Err(fail(
                    "RAPPORT_DB_POOLER",
                    "transaction needs RAPPORT_DIRECT_DATABASE_URL: migrations, background \
                     jobs and LISTEN need sessions of their own, past the pooler"
                        .to_owned(),
                ));
            }
            other => {
                return Err(fail(
                    "RAPPORT_DB_POOLER",
                    format!("expected none or transaction, got {other:?}"),
                ));
            }
        };

        let read_urls = get("RAPPORT_READ_DATABASE_URLS")
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(DatabaseUrl::parse)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
            .map_err(|m| fail("RAPPORT_READ_DATABASE_URLS", m))?
            .unwrap_or_default();

        let bind = read("RAPPORT_BIND", "127.0.0.1:8080");
        let bind = bind.trim().parse::<SocketAddr>().map_err(|_| {
            fail(
                "RAPPORT_BIND",
                format!("expected an address and port such as 127.0.0.1:8080, got {bind:?}"),
            )
        })?;

        let metrics_bind = match get("RAPPORT_METRICS_BIND") {
            None => None,
            Some(text) => Some(text.trim().parse::<SocketAddr>().map_err(|_| {
                fail(
                    "RAPPORT_METRICS_BIND",
                    format!("expected an address and port such as 127.0.0.1:9100, got {text:?}"),
                )
            })?),
        };
        if metrics_bind.is_some_and(|m| m == bind && m.port() != 0) {
            return Err(fail(
                "RAPPORT_METRICS_BIND",
                format!("must differ from RAPPORT_BIND ({bind})"),
            ));
        }

        let secret = match get("RAPPORT_JWT_SECRET") {
            Some(secret) if secret.len() < 32 => {
                return Err(fail(
                    "RAPPORT_JWT_SECRET",
                    format!(
                        "must be at least 32 characters, got {} (try: openssl rand -base64 48)",
                        secret.len()
                    ),
                ));
            }
            other => other.map(Secret::new),
        };
        let previous_secrets = match get("RAPPORT_JWT_PREVIOUS_SECRETS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    if s.len() < 32 {
                        Err(fail(
                            "RAPPORT_JWT_PREVIOUS_SECRETS",
                            "each must be at least 32 characters, as RAPPORT_JWT_SECRET".to_owned(),
                        ))
                    } else {
                        Ok(Secret::new(s))
                    }
                })
                .collect::<Result<_, _>>()?,
        };
        if !previous_secrets.is_empty() && secret.is_none() {
            return Err(fail(
                "RAPPORT_JWT_PREVIOUS_SECRETS",
                "needs RAPPORT_JWT_SECRET; without it the key ring in the database rotates \
                 (rapport keys rotate)"
                    .to_owned(),
            ));
        }
        let server_key = |name: &'static str, text: &str| {
            decode_secret_key(text)
                .map(|_| Secret::new(text.trim()))
                .ok_or_else(|| {
                    fail(
                        name,
                        "expected 32 bytes in base64 (try: openssl rand -base64 32)".to_owned(),
                    )
                })
        };
        let secret_key = SecretKeySettings {
            key: match get("RAPPORT_SECRET_KEY") {
                None => None,
                Some(text) => Some(server_key("RAPPORT_SECRET_KEY", &text)?),
            },
            previous: match get("RAPPORT_SECRET_KEY_PREVIOUS") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| server_key("RAPPORT_SECRET_KEY_PREVIOUS", s))
                    .collect::<Result<_, _>>()?,
            },
            file: PathBuf::from(read("RAPPORT_SECRET_KEY_FILE", "./rapport-secret.key")),
        };

        let duration = |name: &'static str, default: &str, min: Duration, max: Duration| {
            let text = read(name, default);
            parse_duration(&text)
                .filter(|d| *d >= min && *d <= max)
                .ok_or_else(|| {
                    fail(
                        name,
                        format!(
                            "expected a duration from {} to {} such as 30s, 15m, 12h or 7d, got {text:?}",
                            show_duration(min),
                            show_duration(max)
                        ),
                    )
                })
        };
        let number = |name: &'static str, default: usize, min: usize, max: usize| match get(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    fail(
                        name,
                        format!("expected a whole number from {min} to {max}, got {text:?}"),
                    )
                }),
        };

        let second = Duration::from_secs(1);
        let token_ttl = duration(
            "RAPPORT_TOKEN_TTL",
            "30m",
            Duration::from_secs(30),
            Duration::from_secs(30 * 86_400),
        )?;
        let pool_size = number("RAPPORT_DB_POOL_SIZE", 16, 1, 1000)?;
        let pool_wait_timeout = duration(
            "RAPPORT_DB_POOL_WAIT_TIMEOUT",
            "2s",
            Duration::from_millis(1),
            Duration::from_secs(60),
        )?;
        let connect_timeout = duration(
            "RAPPORT_DB_CONNECT_TIMEOUT",
            "3s",
            Duration::from_millis(100),
            Duration::from_secs(60),
        )?;
        let startup_timeout = duration(
            "RAPPORT_DB_STARTUP_TIMEOUT",
            "30s",
            Duration::ZERO,
            Duration::from_secs(3600),
        )?;
        let statement_timeout = duration(
            "RAPPORT_DB_STATEMENT_TIMEOUT",
            "30s",
            Duration::from_millis(1),
            Duration::from_secs(86_400),
        )?;
        let job_statement_timeout = duration(
            "RAPPORT_DB_JOB_STATEMENT_TIMEOUT",
            "30m",
            Duration::from_millis(1),
            Duration::from_secs(7 * 86_400),
        )?;
        let idle_in_transaction_timeout = duration(
            "RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT",
            "60s",
            Duration::from_millis(1),
            Duration::from_secs(86_400),
        )?;

        let body_limit_text = read("RAPPORT_BODY_LIMIT", "1MiB");
        let body_limit = parse_size(&body_limit_text)
            .filter(|n| (1024..=1024 * 1024 * 1024).contains(n))
            .ok_or_else(|| {
                fail(
                    "RAPPORT_BODY_LIMIT",
                    format!(
                        "expected a size from 1KiB to 1GiB such as 1MiB, got {body_limit_text:?}"
                    ),
                )
            })?;

        let trusted_proxies = TrustedProxies::parse(&read("RAPPORT_TRUSTED_PROXIES", ""))
            .map_err(|m| fail("RAPPORT_TRUSTED_PROXIES", m))?;

        let cors_origins = match get("RAPPORT_CORS_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|origin| {
                    if origin == "*" || valid_origin(origin) {
                        Ok(origin.trim_end_matches('/').to_owned())
                    } else {
                        Err(fail(
                            "RAPPORT_CORS_ORIGINS",
                            format!("{origin:?} is not an origin such as https://app.example.com"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        };

        let log_filter = read("RAPPORT_LOG", "info");
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            return Err(fail(
                "RAPPORT_LOG",
                format!("{log_filter:?} is not a filter such as info or info,rapport=debug"),
            ));
        }
        let log_format = match read("RAPPORT_LOG_FORMAT", "pretty").trim() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(fail(
                    "RAPPORT_LOG_FORMAT",
                    format!("expected pretty or json, got {other:?}"),
                ));
            }
        };

        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let workers = number("RAPPORT_WORKERS", cores, 1, 1024)?;
        let shutdown_drain =
            duration("RAPPORT_SHUTDOWN_DRAIN", "5s", Duration::ZERO, 600 * second)?;
        let replica_max_lag = duration(
            "RAPPORT_REPLICA_MAX_LAG",
            "5s",
            Duration::ZERO,
            3600 * second,
        )?;
        let access_cache_ttl = duration(
            "RAPPORT_ACCESS_CACHE_TTL",
            "1s",
            Duration::ZERO,
            3600 * second,
        )?;
        let shutdown_timeout = duration(
            "RAPPORT_SHUTDOWN_TIMEOUT",
            "30s",
            Duration::ZERO,
            600 * second,
        )?;
        let loyalty_interval = duration(
            "RAPPORT_LOYALTY_INTERVAL",
            "1h",
            Duration::from_secs(10),
            Duration::from_secs(7 * 86_400),
        )?;
        let analytics_interval = duration(
            "RAPPORT_ANALYTICS_INTERVAL",
            "1h",
            Duration::from_secs(10),
            Duration::from_secs(7 * 86_400),
        )?;
        let survey_fold_interval = duration(
            "RAPPORT_SURVEY_FOLD_INTERVAL",
            "1s",
            Duration::from_millis(100),
            3600 * second,
        )?;
        let size = |name: &'static str, default: &str, min: usize, max: usize| {
            let text = read(name, default);
            parse_size(&text)
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    fail(
                        name,
                        format!(
                            "expected a size from {min} to {max} bytes, such as 8MiB or 2GiB, \
                             got {text:?}"
                        ),
                    )
                })
        };
        let imports = ImportSettings {
            interval: duration(
                "RAPPORT_IMPORT_INTERVAL",
                "5s",
                Duration::from_secs(1),
                Duration::from_secs(86_400),
            )?,
            batch: number("RAPPORT_IMPORT_BATCH", 5000, 1, 100_000)?,
            batch_bytes: size("RAPPORT_IMPORT_BATCH_BYTES", "2MiB", 64 * 1024, 1 << 30)?,
            max_bytes: size("RAPPORT_IMPORT_MAX_BYTES", "2GiB", 1024, 1 << 40)? as u64,
            max_ratio: number("RAPPORT_IMPORT_MAX_RATIO", 100, 2, 100_000)? as u64,
            idle_timeout: duration(
                "RAPPORT_UPLOAD_IDLE_TIMEOUT",
                "30s",
                Duration::from_millis(100),
                Duration::from_secs(3600),
            )?,
            uploads_per_caller: number("RAPPORT_IMPORT_UPLOADS_PER_CALLER", 4, 1, 1000)?,
            dedup_window: duration(
                "RAPPORT_IMPORT_DEDUP_WINDOW",
                "24h",
                Duration::from_secs(0),
                Duration::from_secs(3650 * 86_400),
            )?,
            max_attempts: number("RAPPORT_IMPORT_MAX_ATTEMPTS", 5, 1, 1000)? as i32,
        };
        let webhooks = WebhookSettings {
            interval: duration(
                "RAPPORT_WEBHOOK_INTERVAL",
                "1s",
                Duration::from_millis(10),
                Duration::from_secs(3600),
            )?,
            timeout: duration(
                "RAPPORT_WEBHOOK_TIMEOUT",
                "10s",
                Duration::from_millis(100),
                Duration::from_secs(120),
            )?,
            retry_base: duration(
                "RAPPORT_WEBHOOK_RETRY_BASE",
                "30s",
                Duration::from_millis(10),
                Duration::from_secs(3600),
            )?,
            retry_for: duration(
                "RAPPORT_WEBHOOK_RETRY_FOR",
                "24h",
                Duration::from_millis(100),
                Duration::from_secs(30 * 86_400),
            )?,
            allow_private: match read("RAPPORT_WEBHOOK_ALLOW_PRIVATE", "false").trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                other => {
                    return Err(fail(
                        "RAPPORT_WEBHOOK_ALLOW_PRIVATE",
                        format!("expected true or false, got {other:?}"),
                    ));
                }
            },
        };
        let event_retention = duration(
            "RAPPORT_EVENT_RETENTION",
            "30d",
            Duration::from_secs(3600),
            Duration::from_secs(3650 * 86_400),
        )?;
        let idempotency_lease = duration(
            "RAPPORT_IDEMPOTENCY_LEASE",
            "30s",
            Duration::from_millis(100),
            Duration::from_secs(3600),
        )?;
        let merge_undo_window = duration(
            "RAPPORT_MERGE_UNDO_WINDOW",
            "7d",
            Duration::from_secs(1),
            Duration::from_secs(365 * 86_400),
        )?;
        let rate_limit_text = read("RAPPORT_RATE_LIMIT", "600/60s");
        let rate_limit = RateLimit::parse(&rate_limit_text).ok_or_else(|| {
            fail(
                "RAPPORT_RATE_LIMIT",
                format!(
                    "expected requests per window from 1s to 1d such as 600/60s, or off, \
                     got {rate_limit_text:?}"
                ),
            )
        })?;
        let rate_limit_shared = match read("RAPPORT_RATE_LIMIT_SHARED", "false").trim() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            other => {
                return Err(fail(
                    "RAPPORT_RATE_LIMIT_SHARED",
                    format!("expected true or false, got {other:?}"),
                ));
            }
        };

        Ok(Settings {
            database: DatabaseSettings {
                url,
                direct_url,
                pooler,
                read_urls,
                replica_max_lag,
                pool_size,
                pool_wait_timeout,
                connect_timeout,
                startup_timeout,
                statement_timeout,
                job_statement_timeout,
                idle_in_transaction_timeout,
            },
            bind,
            metrics_bind,
            jwt: JwtSettings {
                secret,
                previous_secrets,
                issuer: read("RAPPORT_JWT_ISSUER", "rapport"),
                audience: read("RAPPORT_JWT_AUDIENCE", "rapport-api"),
                token_ttl,
            },
            secret_key,
            body_limit,
            cors_origins,
            trusted_proxies,
            log_filter,
            log_format,
            workers,
            shutdown_drain,
            access_cache_ttl,
            shutdown_timeout,
            loyalty_interval,
            analytics_interval,
            survey_fold_interval,
            imports,
            webhooks,
            event_retention,
            idempotency_lease,
            merge_undo_window,
            rate_limit,
            rate_limit_shared,
        })
    }
}

fn valid_origin(origin: &str) -> bool {
    url::Url::parse(origin).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.path() == "/"
    })
}

/// `1048576`, `512KiB`, `1MiB`, `1GiB` (also KB/MB/GB, taken as powers of 1024).
pub fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        "g" | "gb" | "gib" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply() {
        let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database.url.database_name(), "rapport");
        assert_eq!(s.body_limit, 1024 * 1024);
        assert_eq!(s.jwt.token_ttl, Duration::from_secs(1800));
        assert!(s.jwt.secret.is_none());
        assert_eq!(s.database.statement_timeout, Duration::from_secs(30));
        assert_eq!(s.database.job_statement_timeout, Duration::from_secs(1800));
        assert_eq!(
            s.database.idle_in_transaction_timeout,
            Duration::from_secs(60)
        );
        assert_eq!(s.idempotency_lease, Duration::from_secs(30));
        assert_eq!(
            s.rate_limit,
            RateLimit::Every {
                quota: 600,
                window: Duration::from_secs(60)
            }
        );
        assert!(!s.rate_limit_shared);
        let s =
            settings(&[("RAPPORT_RATE_LIMIT_SHARED", "true")]).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.rate_limit_shared);
    }

    #[test]
    fn session_timeouts_parse() {
        let s = settings(&[
            ("RAPPORT_DB_STATEMENT_TIMEOUT", "250ms"),
            ("RAPPORT_DB_JOB_STATEMENT_TIMEOUT", "2h"),
            ("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "5m"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.database.statement_timeout, Duration::from_millis(250));
        assert_eq!(s.database.job_statement_timeout, Duration::from_secs(7200));
        assert_eq!(
            s.database.idle_in_transaction_timeout,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let cases = [
            ("RAPPORT_DB_POOL_SIZE", "lots"),
            ("RAPPORT_DB_POOL_SIZE", "0"),
            ("RAPPORT_BIND", "localhost"),
            ("RAPPORT_JWT_SECRET", "short"),
            ("RAPPORT_TOKEN_TTL", "forever"),
            ("RAPPORT_DB_STATEMENT_TIMEOUT", "0"),
            ("RAPPORT_DB_STATEMENT_TIMEOUT", "soon"),
            ("RAPPORT_DB_STATEMENT_TIMEOUT", "2d"),
            ("RAPPORT_DB_JOB_STATEMENT_TIMEOUT", "-1s"),
            ("RAPPORT_DB_JOB_STATEMENT_TIMEOUT", "30w"),
            ("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "0ms"),
            ("RAPPORT_DB_IDLE_IN_TRANSACTION_TIMEOUT", "1 minute"),
            ("RAPPORT_IDEMPOTENCY_LEASE", "10ms"),
            ("RAPPORT_IDEMPOTENCY_LEASE", "2h"),
            ("RAPPORT_RATE_LIMIT", "600"),
            ("RAPPORT_RATE_LIMIT", "600/0s"),
            ("RAPPORT_RATE_LIMIT_SHARED", "maybe"),
            ("RAPPORT_BODY_LIMIT", "12 parsecs"),
            ("RAPPORT_LOG_FORMAT", "xml"),
            ("RAPPORT_DB_POOLER", "session"),
            // A transaction-mode pooler needs a direct URL for what needs a session.
            ("RAPPORT_DB_POOLER", "transaction"),
            ("RAPPORT_CORS_ORIGINS", "not an origin"),
            ("RAPPORT_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("RAPPORT_TRUSTED_PROXIES", "proxy.internal"),
            ("RAPPORT_SECRET_KEY", "too-short"),
            ("RAPPORT_SECRET_KEY_PREVIOUS", "AAAA"),
            ("RAPPORT_JWT_PREVIOUS_SECRETS", "short"),
            ("DATABASE_URL", "mysql://x/y"),
            ("DATABASE_URL", "postgres://host/"),
        ];
        for (var, value) in cases {
            let err = settings(&[(var, value)]).err();
            assert_eq!(err.as_ref().map(|e| e.var), Some(var), "{var}={value}");
            let line = err.map(|e| e.to_string()).unwrap_or_default();
            assert!(line.starts_with(&format!("invalid {var}: ")));
            assert!(!line.contains('\n'));
        }
    }

    #[test]
    fn server_keys_decode_from_base64() {
        let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
        assert_eq!(
            decode_secret_key(key),
            Some(*b"0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            decode_secret_key("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"),
            Some(*b"0123456789abcdef0123456789abcdef")
        );
        assert_eq!(decode_secret_key("MDEy"), None);
        let s = settings(&[("RAPPORT_SECRET_KEY", key)]).unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{s:?}").contains(key));
    }

    #[test]
    fn secrets_never_print() {
        let s = settings(&[
            ("RAPPORT_JWT_SECRET", "a-very-long-secret-value-that-is-32+"),
            ("DATABASE_URL", "postgres://app:hunter2@db:5432/rapport"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("a-very-long-secret"));
        assert!(!shown.contains("hunter2"));
        assert!(s.database.url.expose().contains("hunter2"));
    }

    #[test]
    fn trusted_proxies_match_addresses_and_ranges() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7 ,2001:db8::/32").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(proxies.contains(ip("10.200.3.4")));
        assert!(proxies.contains(ip("192.0.2.7")));
        assert!(proxies.contains(ip("::ffff:192.0.2.7")));
        assert!(!proxies.contains(ip("192.0.2.8")));
        assert!(proxies.contains(ip("2001:db8::1")));
        assert!(!proxies.contains(ip("2001:db9::1")));
        assert!(TrustedProxies::parse("").unwrap().is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
    }

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_size("512KiB"), Some(512 * 1024));
        assert_eq!(parse_size("2MB"), Some(2 * 1024 * 1024));
        assert_eq!(parse_size("1 parsec"), None);
    }
}
