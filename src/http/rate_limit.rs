//! Request limits per caller (user, API client or service token): a token bucket of `q`
//! requests refilled evenly over `w`, so a caller may burst up to `q` and then goes on at
//! `q` per `w`. Past it, `429 rate_limited` with `Retry-After`.
//!
//! Every response to an authenticated caller carries `RateLimit-Policy` and `RateLimit` in
//! the syntax of draft-ietf-httpapi-ratelimit-headers-10: `"default";q=600;w=60` and
//! `"default";r=599;t=1`, where `r` is what is left now and `t` the seconds until the bucket
//! is full again. Unauthenticated requests are not counted (sign-in has its own throttle).
//!
//! Counted per instance: behind a load balancer of `n` instances a caller may send up to `n`
//! times its limit.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use super::error::{ApiError, ErrorCode};
use crate::auth;
use crate::state::AppState;

pub const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
pub const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// A limit as configured: `600/60s`, or off (`off`, `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    Off,
    Every { quota: u32, window: Duration },
}

impl RateLimit {
    /// `600/60s` (a bare window is seconds), `off` or `0`.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text == "0" {
            return Some(Self::Off);
        }
        let (quota, window) = text.split_once('/')?;
        let quota: u32 = quota.trim().parse().ok().filter(|q| *q > 0)?;
        let window = crate::config::parse_duration(window).filter(|w| {
            w.subsec_nanos() == 0
                && *w >= Duration::from_secs(1)
                && *w <= Duration::from_secs(86_400)
        })?;
        Some(Self::Every { quota, window })
    }
}

impl std::fmt::Display for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Off => f.write_str("off"),
            Self::Every { quota, window } => {
                write!(f, "{quota}/{}", crate::config::show_duration(*window))
            }
        }
    }
}

/// What one request was told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Requests left now.
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// Seconds until the next request would be served (0 when allowed).
    pub retry_after: u64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    quota: u32,
    window: Duration,
}

/// Each caller's bucket, on this instance.
#[derive(Debug, Default)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

fn ceil_secs(secs: f64) -> u64 {
    // Guard against 0.999999 of float noise becoming a second more or less.
    (secs - 1e-9).ceil().max(0.0) as u64
}

impl Limiter {
    /// Counts one request of `caller` under `quota` per `window`, as of `now`.
    pub fn check(&self, caller: &str, quota: u32, window: Duration, now: Instant) -> Verdict {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > 100_000 {
            // Forget callers whose buckets have refilled: they are as good as new.
            buckets.retain(|_, b| now.saturating_duration_since(b.at) < b.window);
        }
        let capacity = f64::from(quota);
        let bucket = buckets.entry(caller.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
            quota,
            window,
        });
        if bucket.quota != quota || bucket.window != window {
            // The caller's limit changed: start it afresh under the new one.
            *bucket = Bucket {
                tokens: capacity,
                at: now,
                quota,
                window,
            };
        }
        let rate = capacity / window.as_secs_f64();
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let tokens = bucket.tokens;
        Verdict {
            allowed,
            remaining: (tokens + 1e-9).floor() as u32,
            reset: ceil_secs((capacity - tokens) / rate),
            retry_after: if allowed {
                0
            } else {
                ceil_secs((1.0 - tokens) / rate).max(1)
            },
        }
    }
}

/// Counts the request against its caller's limit and says so in the response headers.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let pass = |req, next: Next<_>| async move {
        next.call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body)
    };
    // Unauthenticated requests are not counted; their handlers answer them.
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return pass(req, next).await;
    }
    let Ok(principal) = auth::authenticate(req.request()).await else {
        return pass(req, next).await;
    };
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return pass(req, next).await;
    };
    let (policy, limit) = match principal.rate_limit {
        Some(own) => ("client", own),
        None => ("default", state.settings.rate_limit),
    };
    let RateLimit::Every { quota, window } = limit else {
        return pass(req, next).await;
    };
    let verdict = state
        .rate_limits
        .check(&principal.actor.key(), quota, window, Instant::now());
    let policy_value = format!("\"{policy}\";q={quota};w={}", window.as_secs());
    let current = format!("\"{policy}\";r={};t={}", verdict.remaining, verdict.reset);
    let mut res = if verdict.allowed {
        pass(req, next).await?
    } else {
        let err = ApiError::new(
            ErrorCode::RateLimited,
            format!(
                "you have sent more than {quota} requests in {}; send the next in {} seconds",
                crate::config::show_duration(window),
                verdict.retry_after
            ),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(verdict.retry_after));
        req.into_response(err.error_response())
    };
    let headers = res.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy_value) {
        headers.insert(RATELIMIT_POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&current) {
        headers.insert(RATELIMIT, value);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(RateLimit::parse("off"), Some(RateLimit::Off));
        assert_eq!(RateLimit::parse("0"), Some(RateLimit::Off));
        assert_eq!(
            RateLimit::parse("600/60s"),
            Some(RateLimit::Every {
                quota: 600,
                window: Duration::from_secs(60)
            })
        );
        assert_eq!(
            RateLimit::parse("5/10"),
            Some(RateLimit::Every {
                quota: 5,
                window: Duration::from_secs(10)
            })
        );
        for bad in [
            "",
            "600",
            "0/60s",
            "600/0s",
            "600/500ms",
            "x/60s",
            "600/2d",
            "5/1500ms",
        ] {
            assert_eq!(RateLimit::parse(bad), None, "{bad}");
        }
        assert_eq!(RateLimit::parse("600/1m").unwrap().to_string(), "600/1m");
    }

    #[test]
    fn a_bucket_empties_refills_and_is_per_caller() {
        let limiter = Limiter::default();
        let w = Duration::from_secs(10);
        let t0 = Instant::now();
        for left in (0..5).rev() {
            let v = limiter.check("a", 5, w, t0);
            assert!(v.allowed);
            assert_eq!(v.remaining, left);
        }
        let v = limiter.check("a", 5, w, t0);
        assert!(!v.allowed);
        assert_eq!((v.remaining, v.retry_after, v.reset), (0, 2, 10));
        assert!(limiter.check("b", 5, w, t0).allowed);
        let v = limiter.check("a", 5, w, t0 + Duration::from_secs(2));
        assert!(v.allowed);
        assert_eq!(v.remaining, 0);
        let v = limiter.check("a", 5, w, t0 + Duration::from_secs(20));
        assert_eq!((v.allowed, v.remaining, v.reset), (true, 4, 2));
    }
}
