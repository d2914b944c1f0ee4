//! The authenticated caller of a request, and the extractor that establishes it.
//!
//! A user's role and activity, and a client's scopes and revocation, are read from the
//! database (cached for a few seconds, and forgotten at once on this instance when changed),
//! not trusted from the token: a deactivated user or a demoted admin loses access without
//! waiting for old tokens to expire.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::jwt::{Claims, SubjectKind};
use super::scopes::{Role, Scope, Scopes};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::{api_clients, users};

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
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    /// The role of a staff user or service token; `None` for integration clients.
    pub role: Option<Role>,
    pub scopes: Scopes,
    pub token_expires_at: DateTime<Utc>,
}

impl Principal {
    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }

    /// `403` unless the caller holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
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
}

/// Short-lived memory of [`Access`], so that a request costs no extra query.
pub struct AccessCache {
    ttl: Duration,
    entries: Mutex<HashMap<Actor, (Option<Access>, Instant)>>,
}

impl AccessCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, actor: &Actor) -> Option<Option<Access>> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(actor)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(access, _)| *access)
    }

    fn remember(&self, actor: Actor, access: Option<Access>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                let ttl = self.ttl;
                entries.retain(|_, (_, at)| at.elapsed() < ttl);
            }
            entries.insert(actor, (access, Instant::now()));
        }
    }

    /// Call after changing a user's role or activity, or revoking a client.
    pub fn forget(&self, actor: &Actor) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(actor);
        }
    }

    async fn lookup(&self, state: &AppState, actor: &Actor) -> Result<Option<Access>, ApiError> {
        if let Some(access) = self.cached(actor) {
            return Ok(access);
        }
        let mut conn = state.pool.get().await?;
        let access = match actor {
            Actor::User(id) => users::store::access(&mut conn, *id)
                .await?
                .map(|(active, role)| Access {
                    active,
                    role: Some(role),
                    scopes: role.scopes(),
                }),
            Actor::Client(id) => {
                api_clients::store::access(&mut conn, *id)
                    .await?
                    .map(|(active, scopes)| Access {
                        active,
                        role: None,
                        scopes,
                    })
            }
            Actor::Service(_) => None,
        };
        self.remember(actor.clone(), access);
        Ok(access)
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
    let revoked = || ApiError::unauthenticated("the token's account is no longer active");
    let (actor, role, scopes) = match claims.kind {
        SubjectKind::Service => {
            let role = claims.role.ok_or_else(invalid)?;
            (Actor::Service(claims.sub), Some(role), role.scopes())
        }
        SubjectKind::User | SubjectKind::Client => {
            let id = Uuid::parse_str(&claims.sub).map_err(|_| invalid())?;
            let actor = match claims.kind {
                SubjectKind::User => Actor::User(id),
                _ => Actor::Client(id),
            };
            let access = state
                .access
                .lookup(state, &actor)
                .await?
                .ok_or_else(revoked)?;
            if !access.active {
                return Err(revoked());
            }
            (actor, access.role, access.scopes)
        }
    };
    Ok(Principal {
        actor,
        role,
        scopes,
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
        .verify(token)
        .map_err(|err| ApiError::unauthenticated(err.message()))?;
    let principal = resolve(state, claims).await?;
    req.extensions_mut().insert(principal.clone());
    Ok(principal)
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}
