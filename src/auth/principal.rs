//! The authenticated caller of a request, and the extractor that establishes it.
//!
//! A user's role and activity, and a client's scopes and revocation, are read from the
//! database (cached for a second, and forgotten at once on this instance when changed), not
//! trusted from the token. A token also carries its subject's credentials version: once a
//! password, role, scope or activity change has bumped the stored one, older tokens are
//! refused (`401`), and a token signed out of is refused by its `jti`. A service token is
//! accepted only while its `jti` is recorded and not revoked (cached the same way).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::jwt::{Claims, SubjectKind};
use super::ownership::CustomerAccess;
use super::scopes::{Role, Scope, Scopes};
use super::{revoked, store};
use crate::domain::RateLimit;
use crate::http::caller::Caller;
use crate::http::error::ApiError;
use crate::state::AppState;

/// Who is acting: recorded as the actor of audit events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    User(Uuid),
    Client(Uuid),
    /// A service token from `rapport token`, or the CLI itself.
    Service(String),
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::User(_) => "user",
            Self::Client(_) => "api_client",
            Self::Service(_) => "service",
        }
    }

    pub fn id(&self) -> String {
        match self {
            Self::User(id) | Self::Client(id) => id.to_string(),
            Self::Service(name) => name.clone(),
        }
    }

    /// A key unique across kinds (idempotency keys are scoped by it).
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind(), self.id())
    }

    /// The actor a [`key`](Self::key) names.
    pub fn from_key(key: &str) -> Option<Self> {
        match key.split_once(':')? {
            ("user", id) => Uuid::parse_str(id).ok().map(Self::User),
            ("api_client", id) => Uuid::parse_str(id).ok().map(Self::Client),
            ("service", name) if !name.is_empty() => Some(Self::Service(name.to_owned())),
            _ => None,
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    /// The role of a staff user or service token; `None` for integration clients.
    pub role: Option<Role>,
    pub scopes: Scopes,
    /// The token's `jti`, by which it alone can be revoked (sign-out).
    pub token_id: String,
    pub token_expires_at: DateTime<Utc>,
    /// The caller's own request limit (an API client's); `None` takes `RAPPORT_RATE_LIMIT`.
    pub rate_limit: Option<RateLimit>,
    /// Which customers the caller reaches: a staff user's `access`; everyone else `All`.
    pub access: CustomerAccess,
}

impl Principal {
    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// `403` unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if scope.spans_all_customers() {
            self.access.require_all(&format!("what `{scope}` opens"))?;
        }
        if self.can(scope) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the `{scope}` permission, which your {} does not have",
                match self.role {
                    Some(role) => format!("role ({role})"),
                    None => "client's scopes".to_owned(),
                }
            )))
        }
    }
}

/// What the database says about a user or client right now.
#[derive(Debug, Clone, Copy)]
struct Access {
    active: bool,
    role: Option<Role>,
    scopes: Scopes,
    credentials_version: i64,
    /// A client's own request limit; `None` takes the default.
    rate_limit: Option<RateLimit>,
    customers: CustomerAccess,
}

/// What a token is checked against: the subject's access (none for service tokens, or
/// when the user or client is gone) and its tokens revoked one by one.
#[derive(Debug, Clone, Default)]
struct Standing {
    access: Option<Access>,
    revoked: Vec<String>,
}

/// What the record of a service token says (`None` in the cache: not recorded).
#[derive(Debug, Clone)]
struct ServiceRecord {
    subject: String,
    role: String,
    revoked: bool,
}

/// Short-lived memory of each subject's [`Standing`] and each service token's record, so
/// that a request costs no extra query. Changes made on this instance forget the entry at
/// once; changes made elsewhere (another instance, the CLI, SQL) arrive by notification
/// (`changes::listen`), and are in force within the TTL (`RAPPORT_ACCESS_CACHE_TTL`) should
/// notifications be lost.
///
/// Every forget moves `generation` on, and a lookup keeps what it read only when no forget
/// came while it read: a read that saw the row before a change is never cached after it.
pub struct AccessCache {
    ttl: Duration,
    generation: AtomicU64,
    listening: AtomicBool,
    entries: Mutex<HashMap<Actor, (Standing, Instant)>>,
    tokens: Mutex<HashMap<String, (Option<ServiceRecord>, Instant)>>,
}

impl AccessCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            entries: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Whether changes made elsewhere arrive by notification (reported by `/readyz`); a
    /// listener that starts forgets everything first (it may have missed changes meanwhile).
    pub fn set_listening(&self, listening: bool) {
        if listening {
            self.forget_all();
        }
        self.listening.store(listening, Ordering::SeqCst);
    }

    pub fn listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// Forgets every entry.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.clear();
        }
    }

    /// Call after revoking a service token.
    pub fn forget_token(&self, jti: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut tokens) = self.tokens.lock() {
            tokens.remove(jti);
        }
    }

    async fn service_token(
        &self,
        state: &AppState,
        jti: &str,
    ) -> Result<Option<ServiceRecord>, ApiError> {
        let cached = self.tokens.lock().ok().and_then(|tokens| {
            tokens
                .get(jti)
                .filter(|(_, at)| at.elapsed() < self.ttl)
                .map(|(record, _)| record.clone())
        });
        if let Some(record) = cached {
            return Ok(record);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let mut conn = state.pool.get().await?;
        let record = store::service_token_access(&mut conn, jti)
            .await?
            .map(|row| ServiceRecord {
                subject: row.subject,
                role: row.role,
                revoked: row.revoked_at.is_some(),
            });
        if self.generation.load(Ordering::SeqCst) != generation {
            return Ok(record);
        }
        if let Ok(mut tokens) = self.tokens.lock() {
            if tokens.len() > 10_000 {
                let ttl = self.ttl;
                tokens.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            tokens.insert(jti.to_owned(), (record.clone(), Instant::now()));
        }
        Ok(record)
    }

    fn cached(&self, actor: &Actor) -> Option<Standing> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(actor)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(standing, _)| standing.clone())
    }

    /// Keeps `standing`, read since `generation`, unless something was forgotten meanwhile.
    fn remember(&self, actor: Actor, standing: Standing, generation: u64) {
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            entries.insert(actor, (standing, Instant::now()));
        }
    }

    /// Call after changing a user's password, role or activity, a client's scopes or
    /// revocation, or revoking one of the actor's tokens.
    pub fn forget(&self, actor: &Actor) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(actor);
        }
    }

    async fn lookup(&self, state: &AppState, actor: &Actor) -> Result<Standing, ApiError> {
        if let Some(standing) = self.cached(actor) {
            return Ok(standing);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let mut conn = state.pool.get().await?;
        let access = match actor {
            Actor::User(id) => store::user_access(&mut conn, *id).await?.map(|a| Access {
                active: a.active,
                role: Some(a.role),
                scopes: a.role.scopes(),
                credentials_version: a.credentials_version,
                rate_limit: None,
                customers: CustomerAccess::of_user(*id, a.access),
            }),
            Actor::Client(id) => store::client_access(&mut conn, *id).await?.map(|c| {
                let rate_limit = c.rate_limit.as_deref().and_then(|text| {
                    let parsed = RateLimit::parse(text);
                    if parsed.is_none() {
                        tracing::warn!(client = %id, rate_limit = text, "unreadable rate limit; using the default");
                    }
                    parsed
                });
                Access {
                    active: c.revoked_at.is_none(),
                    role: None,
                    scopes: Scopes::from_stored(c.scopes),
                    credentials_version: c.credentials_version,
                    rate_limit,
                    customers: CustomerAccess::All,
                }
            }),
            Actor::Service(_) => None,
        };
        let revoked = revoked::of_subject(&mut conn, &actor.key()).await?;
        let standing = Standing { access, revoked };
        self.remember(actor.clone(), standing.clone(), generation);
        Ok(standing)
    }
}

fn bearer(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthenticated("send a token as `Authorization: Bearer <token>`");
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?
        .to_str()
        .map_err(|_| missing())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

async fn resolve(state: &AppState, claims: Claims) -> Result<Principal, ApiError> {
    let token_expires_at = DateTime::from_timestamp(claims.exp, 0).unwrap_or_default();
    let invalid = || ApiError::unauthenticated("the token is not valid for this service");
    let inactive = || ApiError::unauthenticated("the token's account is no longer active");
    let revoked = || ApiError::unauthenticated("the token has been revoked; request a new one");
    let id = match claims.kind {
        SubjectKind::Service => {
            // Recorded by `rapport token`, not revoked, and for the subject and role it claims.
            let record = state.access.service_token(state, &claims.jti).await?;
            let role = claims.role.ok_or_else(invalid)?;
            match record {
                Some(r) if r.revoked => return Err(revoked()),
                Some(r) if r.subject == claims.sub && r.role == role.as_str() => {}
                _ => return Err(invalid()),
            }
            return Ok(Principal {
                actor: Actor::Service(claims.sub),
                role: Some(role),
                scopes: role.scopes(),
                rate_limit: None,
                access: CustomerAccess::All,
                token_id: claims.jti,
                token_expires_at,
            });
        }
        SubjectKind::User | SubjectKind::Client => {
            Uuid::parse_str(&claims.sub).map_err(|_| invalid())?
        }
    };
    let actor = match claims.kind {
        SubjectKind::User => Actor::User(id),
        _ => Actor::Client(id),
    };
    let standing = state.access.lookup(state, &actor).await?;
    if standing.revoked.contains(&claims.jti) {
        return Err(revoked());
    }
    let access = standing.access.ok_or_else(inactive)?;
    if !access.active {
        return Err(inactive());
    }
    if claims.cv != Some(access.credentials_version) {
        return Err(revoked());
    }
    Ok(Principal {
        actor,
        role: access.role,
        scopes: access.scopes,
        rate_limit: access.rate_limit,
        access: access.customers,
        token_id: claims.jti,
        token_expires_at,
    })
}

/// Authenticates the request once (the result is kept in the request's extensions, so
/// middleware and extractor share it).
pub async fn authenticate(req: &HttpRequest) -> Result<Principal, ApiError> {
    if let Some(principal) = req.extensions().get::<Principal>() {
        return Ok(principal.clone());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::internal("application state missing"))?;
    let token = bearer(req)?;
    let claims = state
        .jwt
        .verify_fresh(token, &state.pool)
        .await
        .map_err(|err| ApiError::unauthenticated(err.message()))?;
    let principal = resolve(state, claims).await?;
    req.extensions_mut().insert(principal.clone());
    Ok(principal)
}

/// Identifies the caller of every request that carries a token, before the edge's own
/// middlewares run: they count rate limits and keep idempotency keys per [`Caller`]. A
/// request whose token fails carries none; its handler answers it.
pub async fn identify(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.headers().contains_key(header::AUTHORIZATION)
        && let Ok(principal) = authenticate(req.request()).await
    {
        req.extensions_mut().insert(Caller {
            key: principal.actor.key(),
            rate_limit: principal.rate_limit,
        });
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}
