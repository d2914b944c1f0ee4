//! Slows down password and secret guessing: after a few failures for the same account (or
//! from the same address), each further attempt must wait twice as long as the last, up to
//! fifteen minutes, and is answered `429` with `Retry-After` until then. A success clears the
//! account's count. Kept in memory, per instance.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

/// What failures are counted against, and how many are free before waits begin.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    key: String,
    free: u32,
}

impl ThrottleKey {
    /// An account (email or client id): five free failures.
    pub fn account(id: &str) -> Self {
        Self {
            key: format!("account:{}", id.trim().to_lowercase()),
            free: 5,
        }
    }

    /// A client address: twenty free failures (an office shares one address).
    pub fn address(ip: &str) -> Self {
        Self {
            key: format!("address:{ip}"),
            free: 20,
        }
    }
}

struct Failures {
    count: u32,
    last: Instant,
}

#[derive(Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<String, Failures>>,
}

impl LoginThrottle {
    fn wait(count: u32, free: u32) -> Duration {
        if count < free {
            return Duration::ZERO;
        }
        let doublings = (count - free).min(20);
        Duration::from_secs(1u64 << doublings).min(MAX_WAIT)
    }

    /// `Err(retry_after)` while any of `keys` must still wait.
    pub fn check(&self, keys: &[ThrottleKey]) -> Result<(), Duration> {
        let Ok(entries) = self.entries.lock() else {
            return Ok(());
        };
        let longest = keys
            .iter()
            .filter_map(|k| {
                let f = entries.get(&k.key)?;
                if f.last.elapsed() > WINDOW {
                    return None;
                }
                Self::wait(f.count, k.free).checked_sub(f.last.elapsed())
            })
            .max();
        match longest {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    pub fn fail(&self, keys: &[ThrottleKey]) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() > 100_000 {
            entries.retain(|_, f| f.last.elapsed() <= WINDOW);
        }
        for k in keys {
            let f = entries.entry(k.key.clone()).or_insert(Failures {
                count: 0,
                last: Instant::now(),
            });
            if f.last.elapsed() > WINDOW {
                f.count = 0;
            }
            f.count += 1;
            f.last = Instant::now();
        }
    }

    pub fn succeed(&self, key: &ThrottleKey) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&key.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_failures_and_double() {
        let throttle = LoginThrottle::default();
        let keys = [ThrottleKey::account("A@example.com")];
        for _ in 0..4 {
            throttle.fail(&keys);
            assert!(throttle.check(&keys).is_ok());
        }
        throttle.fail(&keys);
        let first = throttle.check(&keys).err().unwrap_or_default();
        assert!(first > Duration::from_millis(500) && first <= Duration::from_secs(1));
        throttle.fail(&keys);
        let second = throttle.check(&keys).err().unwrap_or_default();
        assert!(second > Duration::from_secs(1) && second <= Duration::from_secs(2));
        throttle.succeed(&ThrottleKey::account("a@example.com"));
        assert!(throttle.check(&keys).is_ok());
    }
}
