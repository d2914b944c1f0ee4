//! Prometheus metrics: requests by route and status, latency histogram, pool state, webhook
//! attempts by outcome.
//! Routes are labelled by their pattern (`/v1/users/{id}`), so the label set stays bounded.

use std::sync::Arc;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::db::{DbPool, StatementStats};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool_max: IntGauge,
    pool_open: IntGauge,
    pool_idle: IntGauge,
    pool_waiting: IntGauge,
    db_statements: IntCounter,
    db_prepared: IntCounter,
    /// Serialises the catch-up of the two counters above with the pool's atomics.
    rendering: std::sync::Mutex<()>,
    webhook_attempts: IntCounterVec,
    survey_counts_folded: IntCounter,
    survey_folds_failed: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route and status",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer HTTP requests, by route",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["method", "route"],
        )?;
        let gauge = |name: &str, help: &str| IntGauge::new(name, help);
        let pool_max = gauge(
            "db_pool_max_connections",
            "Most connections the pool may open",
        )?;
        let pool_open = gauge("db_pool_connections", "Connections currently open")?;
        let pool_idle = gauge("db_pool_idle_connections", "Open connections not in use")?;
        let pool_waiting = gauge(
            "db_pool_waiting_requests",
            "Requests waiting for a connection",
        )?;
        let counter = |name: &str, help: &str| IntCounter::new(name, help);
        let db_statements = counter(
            "db_statements_total",
            "Statements sent to PostgreSQL by the pool's connections (transaction control \
             excluded)",
        )?;
        let db_prepared = counter(
            "db_statements_prepared_total",
            "Statements parsed and kept prepared by a connection; flat once every connection \
             has served each kind of request",
        )?;
        let webhook_attempts = IntCounterVec::new(
            Opts::new(
                "webhook_attempts_total",
                "Webhook requests sent, by outcome: succeeded, retrying (failed, will be \
                 retried) or failed (given up)",
            ),
            &["outcome"],
        )?;
        let survey_counts_folded = counter(
            "survey_counts_folded_total",
            "Counts appended by survey responses that this instance folded into the results' \
             roll-up",
        )?;
        let survey_folds_failed = counter(
            "survey_folds_failed_total",
            "Folds of the appended survey counts that failed on this instance (the results \
             still count them, reading more rows until a fold succeeds)",
        )?;
        registry.register(Box::new(webhook_attempts.clone()))?;
        registry.register(Box::new(survey_counts_folded.clone()))?;
        registry.register(Box::new(survey_folds_failed.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(db_statements.clone()))?;
        registry.register(Box::new(db_prepared.clone()))?;
        for g in [&pool_max, &pool_open, &pool_idle, &pool_waiting] {
            registry.register(Box::new(g.clone()))?;
        }
        Ok(Self {
            registry,
            requests,
            latency,
            pool_max,
            pool_open,
            pool_idle,
            pool_waiting,
            db_statements,
            db_prepared,
            rendering: std::sync::Mutex::new(()),
            webhook_attempts,
            survey_counts_folded,
            survey_folds_failed,
        })
    }

    /// Counts a fold of the appended survey counts: the rows it folded, or its failure.
    pub fn survey_fold(&self, folded: Option<usize>) {
        match folded {
            Some(rows) => self
                .survey_counts_folded
                .inc_by(u64::try_from(rows).unwrap_or(u64::MAX)),
            None => self.survey_folds_failed.inc(),
        }
    }

    /// Counts one webhook attempt by outcome (`succeeded`, `retrying`, `failed`).
    pub fn webhook_attempt(&self, outcome: &str) {
        self.webhook_attempts.with_label_values(&[outcome]).inc();
    }

    fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The text exposition, with the pool's state read now.
    pub fn render(&self, pool: &DbPool, statements: &StatementStats) -> String {
        let status = pool.status();
        let to_i64 = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.pool_max.set(to_i64(status.max_size));
        self.pool_open.set(to_i64(status.size));
        self.pool_idle.set(to_i64(status.available));
        self.pool_waiting.set(to_i64(status.waiting));
        {
            let _one_at_a_time = self.rendering.lock();
            let counts = statements.counts();
            let catch_up = |counter: &IntCounter, now: u64| {
                counter.inc_by(now.saturating_sub(counter.get()));
            };
            catch_up(&self.db_statements, counts.statements);
            catch_up(&self.db_prepared, counts.prepared);
        }
        let mut out = Vec::new();
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// Times and counts every request.
pub async fn middleware(
    metrics: Arc<Metrics>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let seconds = start.elapsed().as_secs_f64();
    let status = res.status().as_u16();
    metrics.observe(method, &route, status, seconds);
    // The access log: at debug, so the default level costs nothing on the hot path.
    tracing::debug!(method, route = %route, status, ms = seconds * 1000.0, "request");
    Ok(res)
}
