//! Builds the application from `Settings`: prepares the database, loads the signing key,
//! assembles the middleware stack and binds the listener. `main` and the tests share it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::{Method, header};
use actix_web::middleware::{Condition, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::AccessCache;
use crate::auth::jwt::{self, JwtKeys};
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::http::consistency::CONSISTENCY_TOKEN;
use crate::http::error::{ApiError, ErrorCode};
use crate::http::fallback::{self, RouteTable};
use crate::http::idempotency::IDEMPOTENCY_KEY;
use crate::http::input;
use crate::http::json::BodyLimit;
use crate::http::metrics::{self, Metrics};
use crate::http::rate_limit::{RATELIMIT, RATELIMIT_POLICY};
use crate::http::request_id::{self, X_REQUEST_ID};
use crate::http::response::REPLAYED;
use crate::secrets::SecretBox;
use crate::state::AppState;
use crate::{db, openapi};

pub struct Application {
    port: u16,
    server: Server,
    /// The `RAPPORT_METRICS_BIND` listener's port and server, when configured.
    metrics: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Prepares everything and binds the listener; the error is one line for `main`.
    pub async fn build(settings: Settings) -> Result<Self, String> {
        db::prepare(&settings.database).await?;
        if settings.database.pooler == crate::config::Pooler::Transaction {
            db::check_pooled_session(&settings.database).await?;
        }
        let secrets = Arc::new(SecretBox::from_settings(&settings.secret_key)?);
        let jwt = {
            let url = settings.database.session_url();
            let mut conn = db::connect(url, settings.database.connect_timeout)
                .await
                .map_err(|e| format!("cannot connect to {url}: {e}"))?;
            // Seal what is still in clear, and stop here if a stored secret does not open.
            let counts = crate::secrets::stored::pass(&mut conn, &secrets, false).await?;
            if counts.sealed > 0 {
                tracing::info!(
                    sealed = counts.sealed,
                    "sealed stored secrets kept in clear"
                );
            }
            JwtKeys::load(&settings.jwt, secrets.clone(), &mut conn).await?
        };
        let statements = Arc::new(db::StatementStats::default());
        let pool = db::pool(&settings.database, statements.clone())?;
        let jobs = db::job_pool(&settings.database, statements.clone())?;
        let replicas = db::replica_pools(&settings.database, statements.clone())?;
        let replicas = (!replicas.is_empty()).then(|| {
            Arc::new(db::replicas::Replicas::new(
                replicas,
                settings.database.replica_max_lag,
            ))
        });
        let metrics = Arc::new(Metrics::new().map_err(|e| format!("metrics: {e}"))?);
        let webhooks = crate::webhooks::Sender::new(&settings.webhooks)?;
        let state = web::Data::new(AppState {
            jwt,
            secrets,
            access: AccessCache::new(settings.access_cache_ttl),
            throttle: LoginThrottle::new(settings.rate_limit_shared),
            rate_limits: crate::http::limiter::Limiter::new(settings.rate_limit_shared),
            uploads: crate::http::in_flight::InFlight::new(
                "uploads",
                settings.imports.uploads_per_caller,
            ),
            metrics,
            pool,
            replicas,
            jobs,
            statements,
            webhooks,
            settings,
            draining: crate::state::Drain::default(),
        });
        // Load the phone number metadata now rather than in the first request that needs it.
        let _ = crate::domain::normalise_phone("+493012345678", None);
        let spec = openapi::spec();
        let mut table = RouteTable::from_openapi(&spec);
        if state.settings.metrics_bind.is_some() {
            table = table.without(crate::ops::METRICS_PATH);
        }
        let routes = web::Data::new(table);

        let settings = &state.settings;
        let metrics_server = match settings.metrics_bind {
            Some(addr) => Some(metrics_server(addr, state.clone())?),
            None => None,
        };
        let listener = TcpListener::bind(settings.bind)
            .map_err(|e| format!("cannot listen on {}: {e}", settings.bind))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("cannot read the bound address: {e}"))?
            .port();
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            let state = app_state.clone();
            let metrics = state.metrics.clone();
            let cors_origins = state.settings.cors_origins.clone();
            let body_limit = BodyLimit(state.settings.body_limit);
            let table = routes.clone();
            let (app, _) = App::new()
                .into_utoipa_app()
                .app_data(state)
                .app_data(routes.clone())
                .app_data(body_limit)
                .app_data(web::PathConfig::default().error_handler(|_, req| {
                    ApiError::new(
                        ErrorCode::InvalidPath,
                        format!("{} has a malformed id; ids are UUIDs", req.path()),
                    )
                    .into()
                }))
                .configure(crate::routes)
                .split_for_parts();
            app.service(
                SwaggerUi::new("/docs/{_:.*}")
                    .external_url_unchecked("/openapi.json", spec.clone()),
            )
            .service(web::resource("/docs").route(web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/docs/"))
                    .finish()
            })))
            .default_service(web::to(fallback::unmatched))
            .wrap(from_fn(crate::http::write_position::middleware))
            .wrap(from_fn(crate::http::rate_limit::middleware))
            .wrap(from_fn(crate::auth::identify))
            .wrap(from_fn(move |req, next| {
                fallback::methods(table.clone(), req, next)
            }))
            .wrap(Condition::new(
                !cors_origins.is_empty(),
                cors(&cors_origins),
            ))
            .wrap(from_fn(input::middleware))
            .wrap(from_fn(fallback::problems_only))
            .wrap(from_fn(move |req, next| {
                metrics::middleware(metrics.clone(), req, next)
            }))
            .wrap(from_fn(request_id::middleware))
        })
        .listen(listener)
        .map_err(|e| format!("cannot serve: {e}"))?
        .workers(settings.workers)
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        // Signals are ours (`drain_on_signal`): actix would close the listener at once.
        .disable_signals()
        .run();
        Ok(Self {
            port,
            server,
            metrics: metrics_server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on without a token, when `RAPPORT_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(port, _)| *port)
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or SIGINT, with the background tasks alongside. A signal starts
    /// the drain (see [`drain_on_signal`]); in-flight requests finish before this returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let drain = actix_web::rt::spawn(drain_on_signal(self.state.clone(), self.server.handle()));
        let housekeeping = actix_web::rt::spawn(housekeeping(self.state.clone()));
        let changes = actix_web::rt::spawn(crate::auth::changes::listen(self.state.clone()));
        let keys = actix_web::rt::spawn(refresh_keys(self.state.clone()));
        let replicas = actix_web::rt::spawn(follow_replicas(self.state.clone()));
        // Stopped only once the listener has closed: the drain's requests count too.
        let stop_sharing = Arc::new(crate::state::Drain::default());
        let mut limits = actix_web::rt::spawn(crate::http::shared_limits::share(
            self.state.clone(),
            stop_sharing.clone(),
        ));
        let loyalty = actix_web::rt::spawn(crate::loyalty::pass::schedule(
            self.state.jobs.clone(),
            self.state.settings.loyalty_interval,
        ));
        let surveys = actix_web::rt::spawn(crate::surveys::fold_counts(self.state.clone()));
        let mut imports = actix_web::rt::spawn(crate::imports::schedule(self.state.clone()));
        let mut webhooks = actix_web::rt::spawn(crate::webhooks::schedule(self.state.clone()));
        let analytics = actix_web::rt::spawn(crate::analytics::schedule(
            self.state.clone(),
            self.state.settings.analytics_interval,
        ));
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, actix_web::rt::spawn(server))
        });
        let result = self.server.await;
        // The last requests' counts go to the shared buckets before the process ends.
        stop_sharing.start();
        if tokio::time::timeout(Duration::from_secs(2), &mut limits)
            .await
            .is_err()
        {
            tracing::warn!("stopping: the last request counts were not shared in time");
        }
        // The jobs saw the drain start with the signal and hand back what they hold after
        // the unit of work under way: wait for them, up to the shutdown timeout.
        self.state.draining.start();
        let handed_back = async {
            let _ = (&mut imports).await;
            let _ = (&mut webhooks).await;
        };
        if tokio::time::timeout(self.state.settings.shutdown_timeout, handed_back)
            .await
            .is_err()
        {
            tracing::warn!("stopping: background jobs did not end in time; their leases run out");
        }
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        drain.abort();
        analytics.abort();
        keys.abort();
        replicas.abort();
        webhooks.abort();
        housekeeping.abort();
        changes.abort();
        limits.abort();
        loyalty.abort();
        surveys.abort();
        imports.abort();
        result
    }
}

/// Watches the read replicas (when configured): which are up, how far each has replayed,
/// and how far behind the primary it is.
async fn follow_replicas(state: web::Data<AppState>) {
    let Some(replicas) = state.replicas.clone() else {
        return;
    };
    loop {
        replicas.poll(&state.pool).await;
        // Also while draining: the reads still served then choose by it.
        tokio::time::sleep(db::replicas::POLL).await;
    }
}

/// Waits for SIGTERM or SIGINT, then drains: `/readyz` answers `503` at once while the
/// listener keeps serving for `RAPPORT_SHUTDOWN_DRAIN`, long enough for a load balancer to
/// see it and send no more; then the listener closes and in-flight requests finish (up to
/// `RAPPORT_SHUTDOWN_TIMEOUT`). A second signal cuts the drain short.
async fn drain_on_signal(state: web::Data<AppState>, server: ServerHandle) {
    let Ok(mut signals) = Signals::new() else {
        tracing::warn!("cannot listen for SIGTERM; the service stops only when killed");
        return;
    };
    signals.next().await;
    state.draining.start();
    let drain = state.settings.shutdown_drain;
    tracing::info!(drain_secs = drain.as_secs_f64(), "stopping: draining");
    tokio::select! {
        () = tokio::time::sleep(drain) => {}
        () = signals.next() => tracing::info!("second signal: the drain is cut short"),
    }
    tracing::info!("stopping: the listener closes, in-flight requests finish");
    server.stop(true).await;
}

/// SIGTERM (what orchestrators send) and SIGINT (Ctrl-C), whichever comes.
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

/// The listener of `RAPPORT_METRICS_BIND`: `/metrics` only, without a token, for a scraper
/// on a network the operator trusts. One worker: a scrape every few seconds needs no more.
fn metrics_server(
    addr: std::net::SocketAddr,
    state: web::Data<AppState>,
) -> Result<(u16, Server), String> {
    let listener =
        TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr} for metrics: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound metrics address: {e}"))?
        .port();
    let shutdown = state.settings.shutdown_timeout.as_secs();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .default_service(web::to(crate::ops::metrics_only))
            .wrap(from_fn(request_id::middleware))
    })
    .listen(listener)
    .map_err(|e| format!("cannot serve metrics: {e}"))?
    .workers(1)
    .shutdown_timeout(shutdown)
    .disable_signals()
    .run();
    Ok((port, server))
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
            IDEMPOTENCY_KEY,
            X_REQUEST_ID,
            CONSISTENCY_TOKEN,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            X_REQUEST_ID,
            CONSISTENCY_TOKEN,
            REPLAYED,
            RATELIMIT,
            RATELIMIT_POLICY,
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin().send_wildcard()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Reloads the signing keys every [`jwt::REFRESH`], so that every instance signs with the
/// newest key soon after a rotation and stops accepting a retired one.
async fn refresh_keys(state: web::Data<AppState>) {
    if !state.jwt.from_database() {
        return;
    }
    let mut tick = tokio::time::interval(jwt::REFRESH);
    tick.tick().await;
    loop {
        tick.tick().await;
        crate::auth::changes::reload_keys(&state).await;
    }
}

/// Periodic upkeep, at startup and then hourly: drops idempotency keys past their 24 hours,
/// makes the coming months' partitions of the history tables, drops events past their retention (whole
/// months at a time), and forgets search words no customer holds any more.
async fn housekeeping(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match state.jobs.get().await {
            Ok(mut conn) => {
                match crate::http::idempotency::purge_expired(&mut conn).await {
                    Ok(0) => {}
                    Ok(purged) => tracing::debug!(purged, "purged expired idempotency keys"),
                    Err(err) => tracing::warn!(error = %err, "could not purge idempotency keys"),
                }
                match crate::customer_query::forget_unused_words(&mut conn).await {
                    Ok(0) => {}
                    Ok(forgotten) => tracing::debug!(forgotten, "forgot unused search words"),
                    Err(err) => {
                        tracing::warn!(error = %err, "could not forget unused search words");
                    }
                }
                match crate::db::partitions::make_ahead(&mut conn, chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(made) => tracing::info!(made, "made the coming months' history partitions"),
                    Err(err) => tracing::warn!(error = %err, "could not make history partitions"),
                }
                let retention = state.settings.event_retention;
                match crate::events::prune(&mut conn, retention, chrono::Utc::now()).await {
                    Ok(0) => {}
                    Ok(pruned) => tracing::debug!(pruned, "pruned old events"),
                    Err(err) => tracing::warn!(error = %err, "could not prune events"),
                }
            }
            Err(err) => tracing::warn!(error = %err, "housekeeping found no connection"),
        }
    }
}
