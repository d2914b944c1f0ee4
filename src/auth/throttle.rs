//! Slows down password and secret guessing, in memory, per instance.
//!
//! **Per account** (an email or client id, whether or not it exists, so that answers never
//! tell which do): the first [`ACCOUNT_FREE`] failures are free; after that each further
//! attempt must wait twice as long as the last (1 s, 2 s, 4 s … up to fifteen minutes), and is
//! answered `429` with `Retry-After` until then. An attempt is counted *before* its slow
//! password check, as in flight: failures plus checks in flight never exceed the free
//! allowance, so a burst of concurrent guesses gets at most that many checks and the rest
//! `429`; once waits apply, one check at a time. A success clears the account.
//!
//! **Per address** (spraying one password over many accounts): an address is throttled only
//! by the number of *different* accounts that failed from it, so many failures at one account
//! never lock out its neighbours. Past [`ADDRESS_FREE`] failed accounts, attempts from the
//! address at accounts that have not signed in successfully from it wait the same doubling
//! way. Accounts that have signed in from the address within [`KNOWN_FOR`] are never held up
//! by the address: another user's failures cannot refuse their right password.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Quiet time after which an account's or address's failures are forgotten.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// The longest wait.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Failed checks (and checks in flight) one account gets before waits begin.
pub const ACCOUNT_FREE: u32 = 5;
/// Different accounts that may fail from one address before the address must wait.
pub const ADDRESS_FREE: u32 = 10;
/// How long a successful sign-in vouches for its account at its address.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Entries kept before stale ones are swept.
const SWEEP_AT: usize = 100_000;

#[derive(Default)]
struct Account {
    failures: u32,
    in_flight: u32,
    last: Option<Instant>,
}

#[derive(Default)]
struct Address {
    /// Accounts that failed from here, and when last.
    failed: HashMap<String, Instant>,
    /// Checks in flight from here at accounts it is not known for.
    in_flight: u32,
    last: Option<Instant>,
}

#[derive(Default)]
struct Books {
    accounts: HashMap<String, Account>,
    addresses: HashMap<String, Address>,
    /// (account, address) pairs with a recent success.
    known: HashMap<(String, String), Instant>,
}

#[derive(Default)]
pub struct LoginThrottle {
    books: Mutex<Books>,
}

/// The wait owed after `count` counted attempts with `free` allowed, measured from `last`.
fn owed(count: u32, free: u32, last: Option<Instant>) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(20);
    let wait = Duration::from_secs(1u64 << doublings).min(MAX_WAIT);
    match last {
        Some(last) => wait.saturating_sub(last.elapsed()),
        None => Duration::ZERO,
    }
}

/// At least a second, so that `Retry-After` (whole seconds) is never `0`.
fn at_least_a_second(wait: Duration) -> Duration {
    wait.max(Duration::from_secs(1))
}

fn account_key(id: &str) -> String {
    id.trim().to_lowercase()
}

impl LoginThrottle {
    /// Reserves a check of `account`'s credentials from `address`, or `Err(retry_after)`.
    /// Report the outcome on the returned [`Attempt`]; dropping it unreported (an error
    /// before the check finished) releases the reservation without counting a failure.
    pub fn begin(&self, account: &str, address: &str) -> Result<Attempt<'_>, Duration> {
        let account = account_key(account);
        let address = address.to_owned();
        let Ok(mut books) = self.books.lock() else {
            return Ok(Attempt::unrecorded(self, account, address));
        };
        let books = &mut *books;
        if books.accounts.len() + books.addresses.len() + books.known.len() > SWEEP_AT {
            sweep(books);
        }

        let acc = books.accounts.entry(account.clone()).or_default();
        if acc.in_flight == 0 && acc.last.is_some_and(|l| l.elapsed() > WINDOW) {
            *acc = Account::default();
        }
        if acc.in_flight > 0 && acc.failures + acc.in_flight >= ACCOUNT_FREE {
            // The checks in flight may all fail: no further check until they are answered.
            let next = owed(acc.failures + acc.in_flight, ACCOUNT_FREE, acc.last);
            return Err(at_least_a_second(next));
        }
        let wait = owed(acc.failures, ACCOUNT_FREE, acc.last);
        if !wait.is_zero() {
            return Err(at_least_a_second(wait));
        }

        let known = books
            .known
            .get(&(account.clone(), address.clone()))
            .is_some_and(|at| at.elapsed() < KNOWN_FOR);
        let mut address_reserved = false;
        if !known {
            let addr = books.addresses.entry(address.clone()).or_default();
            addr.failed.retain(|_, at| at.elapsed() <= WINDOW);
            let failed = u32::try_from(addr.failed.len()).unwrap_or(u32::MAX);
            // An account already failing from here is the account bucket's business: count
            // only others, so one account's failures never hold up the address.
            let others = failed - u32::from(addr.failed.contains_key(&account));
            let counted = others.saturating_add(addr.in_flight);
            if counted >= ADDRESS_FREE {
                let wait = owed(counted, ADDRESS_FREE, addr.last);
                if addr.in_flight > 0 || !wait.is_zero() {
                    return Err(at_least_a_second(wait));
                }
            }
            addr.in_flight += 1;
            address_reserved = true;
        }
        if let Some(acc) = books.accounts.get_mut(&account) {
            acc.in_flight += 1;
        }
        Ok(Attempt {
            throttle: self,
            account,
            address,
            address_reserved,
            recorded: true,
        })
    }

    fn settle(&self, attempt: &Attempt<'_>, outcome: Option<bool>) {
        let Ok(mut books) = self.books.lock() else {
            return;
        };
        let now = Instant::now();
        if let Some(acc) = books.accounts.get_mut(&attempt.account) {
            acc.in_flight = acc.in_flight.saturating_sub(1);
            match outcome {
                Some(true) => {
                    acc.failures = 0;
                    acc.last = None;
                }
                Some(false) => {
                    acc.failures += 1;
                    acc.last = Some(now);
                }
                None => {}
            }
            if acc.in_flight == 0 && acc.failures == 0 {
                books.accounts.remove(&attempt.account);
            }
        }
        if let Some(addr) = books.addresses.get_mut(&attempt.address) {
            if attempt.address_reserved {
                addr.in_flight = addr.in_flight.saturating_sub(1);
            }
            match outcome {
                Some(true) => {
                    addr.failed.remove(&attempt.account);
                }
                Some(false) => {
                    addr.failed.insert(attempt.account.clone(), now);
                    addr.last = Some(now);
                }
                None => {}
            }
            if addr.in_flight == 0 && addr.failed.is_empty() {
                books.addresses.remove(&attempt.address);
            }
        } else if outcome == Some(false) {
            // Known at this address: still remembered as failing here.
            let addr = books.addresses.entry(attempt.address.clone()).or_default();
            addr.failed.insert(attempt.account.clone(), now);
            addr.last = Some(now);
        }
        if outcome == Some(true) {
            books
                .known
                .insert((attempt.account.clone(), attempt.address.clone()), now);
        }
    }
}

fn sweep(books: &mut Books) {
    books
        .accounts
        .retain(|_, a| a.in_flight > 0 || a.last.is_some_and(|l| l.elapsed() <= WINDOW));
    for addr in books.addresses.values_mut() {
        addr.failed.retain(|_, at| at.elapsed() <= WINDOW);
    }
    books
        .addresses
        .retain(|_, a| a.in_flight > 0 || !a.failed.is_empty());
    books.known.retain(|_, at| at.elapsed() < KNOWN_FOR);
    if books.known.len() > SWEEP_AT / 2 {
        // Bounded memory matters more than vouching for everyone.
        books.known.clear();
    }
}

/// A reserved credentials check; report how it went.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    account: String,
    address: String,
    address_reserved: bool,
    recorded: bool,
}

impl<'a> Attempt<'a> {
    fn unrecorded(throttle: &'a LoginThrottle, account: String, address: String) -> Self {
        Self {
            throttle,
            account,
            address,
            address_reserved: false,
            recorded: false,
        }
    }

    /// The credentials were wrong (or named no active account).
    pub fn failed(mut self) {
        if self.recorded {
            self.recorded = false;
            self.throttle.settle(&self, Some(false));
        }
    }

    /// The credentials were right: clears the account, vouches for it at this address.
    pub fn succeeded(mut self) {
        if self.recorded {
            self.recorded = false;
            self.throttle.settle(&self, Some(true));
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.recorded {
            self.recorded = false;
            self.throttle.settle(self, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: &str = "192.0.2.1";

    fn fail(throttle: &LoginThrottle, account: &str, address: &str) {
        if let Ok(attempt) = throttle.begin(account, address) {
            attempt.failed();
        }
    }

    #[test]
    fn waits_start_after_the_free_failures_and_double() {
        let throttle = LoginThrottle::default();
        for _ in 0..5 {
            assert!(throttle.begin("A@example.com", HERE).is_ok());
            fail(&throttle, "A@example.com", HERE);
        }
        let first = throttle
            .begin("a@example.com", HERE)
            .err()
            .unwrap_or_default();
        assert!(first > Duration::from_millis(500) && first <= Duration::from_secs(1));
    }

    #[test]
    fn checks_in_flight_count_before_they_finish() {
        let throttle = LoginThrottle::default();
        let reserved: Vec<_> = (0..30)
            .filter_map(|_| throttle.begin("a@example.com", HERE).ok())
            .collect();
        assert_eq!(reserved.len(), ACCOUNT_FREE as usize);
        for attempt in reserved {
            attempt.failed();
        }
        assert!(throttle.begin("a@example.com", HERE).is_err());
    }

    #[test]
    fn an_unreported_attempt_is_released_without_counting() {
        let throttle = LoginThrottle::default();
        for _ in 0..10 {
            drop(throttle.begin("a@example.com", HERE));
        }
        assert!(throttle.begin("a@example.com", HERE).is_ok());
    }

    #[test]
    fn one_accounts_failures_do_not_hold_up_its_neighbours() {
        let throttle = LoginThrottle::default();
        for _ in 0..50 {
            fail(&throttle, "victim@example.com", HERE);
        }
        assert!(throttle.begin("victim@example.com", HERE).is_err());
        assert!(throttle.begin("colleague@example.com", HERE).is_ok());
    }

    #[test]
    fn spraying_slows_the_address_but_not_accounts_known_there() {
        let throttle = LoginThrottle::default();
        if let Ok(attempt) = throttle.begin("regular@example.com", HERE) {
            attempt.succeeded();
        }
        for i in 0..ADDRESS_FREE {
            fail(&throttle, &format!("user{i}@example.com"), HERE);
        }
        assert!(throttle.begin("another@example.com", HERE).is_err());
        assert!(throttle.begin("another@example.com", "192.0.2.2").is_ok());
        assert!(throttle.begin("regular@example.com", HERE).is_ok());
    }
}
