//! The counting behind request limits: a token bucket per caller, of `quota` requests
//! refilled evenly over the window (the middleware and headers are in `rate_limit`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

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

#[cfg(test)]
mod tests {
    use super::*;

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
