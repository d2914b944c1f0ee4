//! Sending events: the signed request, what an answer means for the delivery (retry with
//! backoff, give up, disable the webhook), and the background worker that drives it all.
//!
//! Safe with several instances: the fan-out locks each webhook it works on (`SKIP LOCKED`),
//! and each delivery is leased by the worker that sends it, so a worker that stops
//! mid-request loses it to another once the lease runs out. A receiver may then see the same
//! event twice; it carries the same `webhook-id` both times.

use std::time::{Duration, Instant};

use actix_web::web;
use chrono::{DateTime, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::json::DeliveryStatus;
use super::store::{self, Claimed, Outcome};
use super::{signature, target};
use crate::auth::Actor;
use crate::config::WebhookSettings;
use crate::events::Event;
use crate::state::AppState;

/// Events matched per webhook and transaction by the fan-out.
const FAN_OUT_BATCH: i64 = 1000;
/// Webhooks one worker sends to at once (each its own run, one request at a time).
const PARALLEL: i64 = 32;
/// Deliveries of one webhook a worker takes at once, to send one after the other.
const RUN: i64 = 100;
/// Retries back off to at most this many times the first delay.
const MAX_BACKOFF_FACTOR: u32 = 120;

/// The HTTP client that sends webhooks.
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

/// What came back from one request.
#[derive(Debug, Clone)]
pub struct Sent {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

impl Sent {
    /// Whether the receiver acknowledged (any 2xx).
    pub fn succeeded(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Sender {
    pub fn new(settings: &WebhookSettings) -> Result<Self, String> {
        // rustls needs one process-wide crypto provider; a second install is a no-op error.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(target::GuardedResolver::shared(settings.allow_private))
            .build()
            .map_err(|e| format!("cannot build the webhook client: {e}"))?;
        Ok(Self {
            client,
            allow_private: settings.allow_private,
        })
    }

    /// POSTs one event, signed with each secret given.
    pub async fn send(
        &self,
        url: &str,
        secrets: &[&str],
        event: &Event,
        delivery: Uuid,
        attempt: i32,
    ) -> Sent {
        let attempted_at = Utc::now();
        let started = Instant::now();
        let result = self.post(url, secrets, event, delivery, attempt).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        match result {
            Ok(status) => {
                let mut sent = Sent {
                    attempted_at,
                    status_code: Some(i32::from(status)),
                    latency_ms,
                    error: None,
                };
                if !sent.succeeded() {
                    sent.error = Some(format!("HTTP {status}"));
                }
                sent
            }
            Err(error) => Sent {
                attempted_at,
                status_code: None,
                latency_ms,
                error: Some(error),
            },
        }
    }

    async fn post(
        &self,
        url: &str,
        secrets: &[&str],
        event: &Event,
        delivery: Uuid,
        attempt: i32,
    ) -> Result<u16, String> {
        let parsed = target::parse(url)?;
        target::check(&parsed, self.allow_private).await?;
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let id = event.id.to_string();
        let timestamp = Utc::now().timestamp();
        let mut headers = HeaderMap::new();
        let mut put = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        };
        put("webhook-id", id.clone());
        put("webhook-timestamp", timestamp.to_string());
        put(
            "webhook-signature",
            signature::header(secrets, &id, timestamp, &body),
        );
        put("rapport-event-type", event.type_.clone());
        put("rapport-delivery-id", delivery.to_string());
        put("rapport-attempt", attempt.to_string());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static("Rapport-Webhooks/1"));
        let mut response = self
            .client
            .post(parsed)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        // Read (and drop) a short answer so the connection can be reused; stop at 64 KiB.
        let mut read = 0;
        while let Ok(Some(chunk)) = response.chunk().await {
            read += chunk.len();
            if read > 64 * 1024 {
                break;
            }
        }
        Ok(response.status().as_u16())
    }
}

/// A short, safe description of a transport error (no internal detail beyond the kind).
fn describe(err: reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(&err);
        while let Some(inner) = source {
            // The guarded resolver's refusal is worth showing; other causes stay generic.
            if inner.to_string().contains("no public address") {
                return inner.to_string();
            }
            source = inner.source();
        }
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// The delay before retry number `failures` (1 for the first retry): the base doubled per
/// failure, capped at 120 times the base, then spread by ±20 % (`spread` in 0..1) so that
/// receivers coming back are not hit by every queue at once.
pub fn backoff(base: Duration, failures: u32, spread: f64) -> Duration {
    let factor = 2_u32
        .saturating_pow(failures.saturating_sub(1))
        .min(MAX_BACKOFF_FACTOR);
    base.saturating_mul(factor)
        .mul_f64(0.8 + 0.4 * spread.clamp(0.0, 1.0))
}

/// What an attempt means: the delivery's next state, and a reason to disable the webhook.
/// A delivery is given up (and its webhook disabled) at the first failure that comes
/// `retry_for` or more after its first attempt, so retries always span the whole window.
pub fn judge(
    sent: &Sent,
    first_attempt_at: DateTime<Utc>,
    attempts: i32,
    settings: &WebhookSettings,
    spread: f64,
) -> (Outcome, Option<String>) {
    let outcome = |status, next_attempt_at| Outcome {
        attempted_at: sent.attempted_at,
        status_code: sent.status_code,
        latency_ms: sent.latency_ms,
        error: sent.error.clone(),
        status,
        next_attempt_at,
    };
    if sent.succeeded() {
        return (outcome(DeliveryStatus::Succeeded, None), None);
    }
    let last = sent.error.clone().unwrap_or_default();
    if sent.status_code == Some(410) {
        return (
            outcome(DeliveryStatus::Failed, None),
            Some("the receiver answered 410 Gone".to_owned()),
        );
    }
    let window = chrono::Duration::from_std(settings.retry_for).unwrap_or(chrono::Duration::MAX);
    if sent.attempted_at - first_attempt_at >= window {
        let reason = format!(
            "no successful delivery for {} ({attempts} attempts); last attempt: {last}",
            crate::config::show_duration(settings.retry_for)
        );
        return (outcome(DeliveryStatus::Failed, None), Some(reason));
    }
    let delay = backoff(
        settings.retry_base,
        u32::try_from(attempts).unwrap_or(1),
        spread,
    );
    (
        outcome(DeliveryStatus::Pending, Some(Utc::now() + delay)),
        None,
    )
}

fn spread() -> f64 {
    let mut bytes = [0_u8; 4];
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

/// The worker: matches new events to webhooks, then sends what is due, until the service
/// stops. Each webhook's run is its own task, so a slow receiver holds back only its own
/// webhook; at most `PARALLEL` runs are under way. When the service starts stopping, it
/// claims no more; the runs under way finish the delivery they are sending and record
/// their results, which hands back the deliveries they did not send (another instance
/// sends them at once). A run aborted meanwhile leaves its deliveries to the end of their
/// lease.
pub async fn schedule(state: web::Data<AppState>) {
    let mut runs: JoinSet<()> = JoinSet::new();
    loop {
        while runs.try_join_next().is_some() {}
        if state.draining.started() {
            while runs.join_next().await.is_some() {}
            return;
        }
        let free = PARALLEL.saturating_sub(i64::try_from(runs.len()).unwrap_or(PARALLEL));
        let busy = match tick(&state, free, &mut runs).await {
            Ok(busy) => busy,
            Err(err) => {
                tracing::warn!(error = %err, "webhook worker could not run");
                false
            }
        };
        if !busy {
            // Idle, or every slot taken: wait for the interval or for a run to end.
            let interval = state.draining.sleep(state.settings.webhooks.interval);
            if runs.is_empty() {
                interval.await;
            } else {
                tokio::select! {
                    _ = interval => {}
                    _ = runs.join_next() => {}
                }
            }
        }
    }
}

/// One round: fan out, then start runs in up to `free` slots. True when there may be more to
/// do at once.
async fn tick(
    state: &web::Data<AppState>,
    free: i64,
    runs: &mut JoinSet<()>,
) -> Result<bool, String> {
    let mut conn = state.jobs.get().await.map_err(|e| e.to_string())?;
    let full = fan_out(&mut conn).await.map_err(|e| e.to_string())?;
    if free == 0 {
        return Ok(false);
    }
    let timeout = state.settings.webhooks.timeout;
    let lease = timeout.as_secs_f64() * 2.0 + 1.0;
    let token = Uuid::now_v7();
    let claimed = store::claim(&mut conn, free, RUN, lease, token)
        .await
        .map_err(|e| e.to_string())?;
    drop(conn);
    let busy = !claimed.is_empty();
    let mut grouped: Vec<Vec<Claimed>> = Vec::new();
    for c in claimed {
        match grouped.last_mut() {
            Some(run) if run[0].webhook_id == c.webhook_id => run.push(c),
            _ => grouped.push(vec![c]),
        }
    }
    for run in grouped {
        let state = state.clone();
        runs.spawn_local(async move { deliver(&state, token, run).await });
    }
    Ok(full || busy)
}

/// One fan-out batch per webhook that is behind; true when some webhook has more waiting.
async fn fan_out(conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
    conn.transaction(async |conn| {
        let mut full = false;
        for webhook in store::lock_behind(conn).await? {
            full |= store::fan_out(conn, webhook, FAN_OUT_BATCH).await? == FAN_OUT_BATCH;
        }
        Ok(full)
    })
    .await
}

/// Sends one webhook's run of deliveries in order, stopping at the first failure (the rest
/// wait behind it) or once `timeout` has passed (so the run ends within its lease), then
/// records them all in one transaction.
async fn deliver(state: &AppState, token: Uuid, run: Vec<Claimed>) {
    let settings = &state.settings.webhooks;
    let started = Instant::now();
    let ids: Vec<Uuid> = run.iter().map(|c| c.id).collect();
    let webhook = run[0].webhook_id;
    let mut results = Vec::with_capacity(run.len());
    let mut disable = None;
    for claimed in &run {
        // A stopping service sends no more: what it has not sent goes back unleased.
        if started.elapsed() >= settings.timeout || state.draining.started() {
            break;
        }
        let opened = std::iter::once(&claimed.secret)
            .chain(claimed.previous_secret.as_ref())
            .map(|stored| super::signature::open(&state.secrets, webhook, stored))
            .collect::<Result<Vec<String>, _>>();
        let owned = match opened {
            Ok(secrets) => secrets,
            Err(err) => {
                // Left leased: retried once the lease ends, after the keys are fixed.
                tracing::error!(webhook = %webhook, error = %err, "cannot open the webhook's secret");
                break;
            }
        };
        let secrets: Vec<&str> = owned.iter().map(String::as_str).collect();
        let attempt = claimed.attempts + 1;
        let sent = state
            .webhooks
            .send(
                &claimed.url,
                &secrets,
                &claimed.event(),
                claimed.id,
                attempt,
            )
            .await;
        let first = claimed.first_attempt_at.unwrap_or(sent.attempted_at);
        let (outcome, reason) = judge(&sent, first, attempt, settings, spread());
        state.metrics.webhook_attempt(match outcome.status {
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Pending => "retrying",
            DeliveryStatus::Failed => "failed",
        });
        tracing::debug!(
            delivery = %claimed.id,
            webhook = %webhook,
            status = ?sent.status_code,
            latency_ms = sent.latency_ms,
            "webhook attempt"
        );
        let succeeded = outcome.status == DeliveryStatus::Succeeded;
        results.push((claimed.id, outcome));
        if !succeeded {
            disable = reason.map(|r| (claimed.id, r));
            break;
        }
    }
    let result = async {
        let mut conn = state.jobs.get().await.map_err(|e| e.to_string())?;
        conn.transaction(async |conn| {
            let recorded = store::record(conn, token, &ids, &results).await?;
            if let Some((delivery, reason)) = disable
                && recorded.contains(&delivery)
            {
                let actor = Actor::Service("webhooks".to_owned());
                super::disable(conn, webhook, &reason, &actor).await?;
            }
            Ok::<_, diesel::result::Error>(())
        })
        .await
        .map_err(|e| e.to_string())
    }
    .await;
    if let Err(err) = result {
        tracing::warn!(webhook = %webhook, error = %err, "could not record webhook attempts");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(30),
            retry_for: Duration::from_secs(86_400),
            allow_private: false,
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_cap_and_spreads_by_a_fifth() {
        let base = Duration::from_secs(30);
        let middle: Vec<u64> = (1..=10).map(|n| backoff(base, n, 0.5).as_secs()).collect();
        assert_eq!(middle, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(base, 1, 0.0), Duration::from_secs(24));
        assert_eq!(backoff(base, 1, 1.0), Duration::from_secs(36));
        assert_eq!(backoff(base, 40, 0.5), Duration::from_secs(3600));
    }

    #[test]
    fn retries_span_the_whole_window_before_giving_up() {
        // Walk the schedule: the delivery is given up only once 24 hours of retries passed.
        let settings = settings();
        let mut elapsed = chrono::Duration::zero();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let now = Utc::now();
            let sent = Sent {
                attempted_at: now,
                status_code: Some(500),
                latency_ms: 5,
                error: Some("HTTP 500".to_owned()),
            };
            let (outcome, disable) = judge(&sent, now - elapsed, attempts, &settings, 0.5);
            if outcome.status == DeliveryStatus::Failed {
                assert!(
                    elapsed >= chrono::Duration::hours(24),
                    "gave up after {elapsed}"
                );
                assert!(
                    elapsed < chrono::Duration::hours(25),
                    "gave up after {elapsed}"
                );
                assert!(disable.is_some_and(|r| r.contains("HTTP 500")));
                break;
            }
            elapsed +=
                chrono::Duration::from_std(backoff(settings.retry_base, attempts as u32, 0.5))
                    .unwrap_or_default();
            assert!(attempts < 100);
        }
        assert!(attempts > 25, "{attempts} attempts");
    }

    #[test]
    fn success_and_gone_are_final() {
        let settings = settings();
        let sent = |code| Sent {
            attempted_at: Utc::now(),
            status_code: Some(code),
            latency_ms: 1,
            error: None,
        };
        let (ok, none) = judge(&sent(204), Utc::now(), 1, &settings, 0.5);
        assert_eq!(ok.status, DeliveryStatus::Succeeded);
        assert!(none.is_none());
        let (gone, reason) = judge(&sent(410), Utc::now(), 1, &settings, 0.5);
        assert_eq!(gone.status, DeliveryStatus::Failed);
        assert!(reason.is_some());
        let (retry, none) = judge(&sent(503), Utc::now(), 1, &settings, 0.5);
        assert_eq!(retry.status, DeliveryStatus::Pending);
        assert!(none.is_none());
    }
}
