//! The counting behind request limits: a token bucket per caller, of `quota` requests
//! refilled evenly over the window (the middleware and headers are in `rate_limit`).
//!
//! Each bucket also counts what it admitted since it last agreed with the other instances,
//! for `shared_limits` to hand on ([`Limiter::take_unshared`]) and to set the bucket to what
//! all of them agreed ([`Limiter::agree`]). Nothing here waits on anything but its own lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

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
    /// May fall below zero once the instances agree that together they admitted more.
    tokens: f64,
    at: Instant,
    quota: u32,
    window: Duration,
    /// Requests admitted here since the count was last taken for the shared bucket.
    unshared: u32,
}

impl Bucket {
    fn new(quota: u32, window: Duration, now: Instant) -> Self {
        Self {
            tokens: f64::from(quota),
            at: now,
            quota,
            window,
            unshared: 0,
        }
    }
}

/// What one caller was admitted on this instance since the last count, under its limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Unshared {
    pub caller: String,
    pub admitted: u32,
    pub quota: u32,
    pub window: Duration,
}

/// Each caller's bucket, on this instance.
#[derive(Debug)]
pub struct Limiter {
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Whether the counts are handed on to shared buckets (`RAPPORT_RATE_LIMIT_SHARED`).
    sharing: bool,
    /// Whether the last exchange with the shared buckets went through (shared mode only).
    shared: AtomicBool,
    /// Woken when a bucket knows too little of the shared one: it is new here, it admitted a
    /// quarter of its quota since the last count was taken, or it is down to its last
    /// quarter.
    hurry: Notify,
}

impl Default for Limiter {
    /// Counting on this instance alone.
    fn default() -> Self {
        Self::new(false)
    }
}

fn ceil_secs(secs: f64) -> u64 {
    // Guard against 0.999999 of float noise becoming a second more or less.
    (secs - 1e-9).ceil().max(0.0) as u64
}

impl Limiter {
    /// With `sharing`, each bucket keeps what it admitted for [`take_unshared`](Self::take_unshared).
    pub fn new(sharing: bool) -> Self {
        Self {
            buckets: Mutex::default(),
            sharing,
            shared: AtomicBool::new(true),
            hurry: Notify::new(),
        }
    }

    /// Counts one request of `caller` under `quota` per `window`, as of `now`.
    pub fn check(&self, caller: &str, quota: u32, window: Duration, now: Instant) -> Verdict {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() > 100_000 {
            // Forget callers whose buckets have refilled: they are as good as new.
            // (A bucket in debt takes longer than its window to refill.)
            buckets.retain(|_, b| {
                b.unshared > 0 || b.tokens < 0.0 || now.saturating_duration_since(b.at) < b.window
            });
        }
        let capacity = f64::from(quota);
        let mut fresh = false;
        let bucket = buckets.entry(caller.to_owned()).or_insert_with(|| {
            fresh = true;
            Bucket::new(quota, window, now)
        });
        if bucket.quota != quota || bucket.window != window {
            // The caller's limit changed: start it afresh under the new one.
            *bucket = Bucket::new(quota, window, now);
            fresh = true;
        }
        let rate = capacity / window.as_secs_f64();
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        if allowed && self.sharing {
            bucket.unshared = bucket.unshared.saturating_add(1);
            // The bucket knows too little of the shared one: it is new here, it admitted a
            // quarter of the quota since the last flush, or it is down to its last quarter
            // (where what the other instances admitted matters most).
            if fresh
                || u64::from(bucket.unshared) * 4 >= u64::from(quota)
                || bucket.tokens * 4.0 < capacity
            {
                // No round trip here: the flusher goes sooner.
                self.hurry.notify_one();
            }
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

    /// Takes what each caller was admitted here since the last take (callers in key order,
    /// so that instances updating the same shared buckets lock them in the same order).
    pub fn take_unshared(&self) -> Vec<Unshared> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken: Vec<Unshared> = buckets
            .iter_mut()
            .filter(|(_, b)| b.unshared > 0)
            .map(|(caller, b)| Unshared {
                caller: caller.clone(),
                admitted: std::mem::take(&mut b.unshared),
                quota: b.quota,
                window: b.window,
            })
            .collect();
        drop(buckets);
        taken.sort_unstable_by(|a, b| a.caller.cmp(&b.caller));
        taken
    }

    /// Sets each caller's bucket to the shared one's `tokens` as of `now`, less what this
    /// instance admitted since its count was taken (that goes with the next count). A
    /// bucket whose limit changed meanwhile is left alone.
    pub fn agree(&self, sent: &[Unshared], shared: &[(String, f64)], now: Instant) {
        let limits: HashMap<&str, (u32, Duration)> = sent
            .iter()
            .map(|u| (u.caller.as_str(), (u.quota, u.window)))
            .collect();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        for (caller, tokens) in shared {
            let Some(bucket) = buckets.get_mut(caller) else {
                continue;
            };
            if limits.get(caller.as_str()) != Some(&(bucket.quota, bucket.window)) {
                continue;
            }
            bucket.tokens = (tokens - f64::from(bucket.unshared)).min(f64::from(bucket.quota));
            bucket.at = now;
        }
    }

    /// Records whether the last exchange with the shared buckets went through; false while
    /// this instance counts on its own (the database is unreachable).
    pub fn set_shared(&self, shared: bool) {
        self.shared.store(shared, Ordering::SeqCst);
    }

    pub fn shared(&self) -> bool {
        self.shared.load(Ordering::SeqCst)
    }

    /// Returns once a bucket has asked for an early flush (at once if one did meanwhile).
    pub async fn hurried(&self) {
        self.hurry.notified().await;
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

    #[test]
    fn admitted_requests_are_taken_once_and_the_agreed_count_holds() {
        assert!(Limiter::default().take_unshared().is_empty());
        let limiter = Limiter::new(true);
        let w = Duration::from_secs(60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("b", 10, w, t0).allowed);
        }
        assert!(limiter.check("a", 10, w, t0).allowed);
        let taken = limiter.take_unshared();
        let counts: Vec<(&str, u32)> = taken
            .iter()
            .map(|u| (u.caller.as_str(), u.admitted))
            .collect();
        assert_eq!(counts, [("a", 1), ("b", 3)]);
        assert!(limiter.take_unshared().is_empty());
        // One more here while the others' counts travel: the agreed 1 left becomes 0.
        assert!(limiter.check("b", 10, w, t0).allowed);
        limiter.agree(&taken, &[("b".to_owned(), 1.0)], t0);
        let v = limiter.check("b", 10, w, t0);
        assert!(!v.allowed);
        assert_eq!(v.retry_after, 6);
        // In debt: refused until it is refilled.
        limiter.agree(&taken, &[("a".to_owned(), -5.0)], t0);
        let v = limiter.check("a", 10, w, t0 + Duration::from_secs(30));
        assert!(!v.allowed);
        assert_eq!((v.remaining, v.retry_after), (0, 6));
        assert_eq!(limiter.take_unshared().len(), 1);
    }
}
