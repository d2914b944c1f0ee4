//! Slows down password and secret guessing.
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
//!
//! **The books.** Each instance keeps them in memory. With `RAPPORT_RATE_LIMIT_SHARED=true`
//! the failures, the failed accounts per address and the known account–address pairs are
//! also kept in PostgreSQL (`db::login_throttle`, UNLOGGED tables, keys as sha256 hashes:
//! no email or address is stored), so that every instance behind the load balancer enforces
//! one allowance: an attempt reads the shared books before its check (one statement) and
//! records its outcome after (one more). The checks in flight stay per instance, in memory:
//! a burst spread over `n` instances at once gets at most `n ×` [`ACCOUNT_FREE`] checks
//! before the shared waits apply; every failure is counted in the shared books, so the
//! waits that follow are as long as that many failures make them. When the shared books
//! cannot be read (the database is away, slow or the tables are missing), the instance
//! decides from its own books, which it keeps in every case: it fails open to per
//! instance, it never refuses every sign-in. Without the setting the throttle never touches
//! the database. Either way one function, [`decide`], applies the rules to what the books
//! say.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::db::DbPool;
use crate::db::login_throttle as shared_books;

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
/// The longest a read or a record of the shared books may take before the instance goes
/// on with its own books.
const SHARED_TIMEOUT: Duration = Duration::from_secs(1);
/// How often an instance deletes the shared books' rows past their window (after a record).
const FORGET_EVERY: Duration = Duration::from_secs(60);

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

/// What the books say of one attempt, whichever books: the only input of [`decide`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Standing {
    /// The account's failures within the window, and the time since the last.
    failures: u32,
    since_failure: Option<Duration>,
    /// Checks of the account in flight (on this instance).
    in_flight: u32,
    /// The address's standing; `None` when the account is known at the address.
    address: Option<AddressStanding>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct AddressStanding {
    /// Other accounts that failed from the address within the window.
    others_failed: u32,
    /// Since the last failure from the address.
    since_failure: Option<Duration>,
    /// Checks from the address in flight (on this instance) at accounts it is not known for.
    in_flight: u32,
}

/// What the shared books say, read before the attempt is decided.
#[derive(Clone, Copy, Debug)]
struct Shared {
    failures: u32,
    since_failure: Option<Duration>,
    others_failed: u32,
    since_address_failure: Option<Duration>,
    known: bool,
}

/// The checks in flight on this instance when a check was held, before it.
#[derive(Clone, Copy, Debug)]
struct Held {
    account_in_flight: u32,
    address_in_flight: u32,
}

pub struct LoginThrottle {
    books: Mutex<Books>,
    /// Whether the books are shared through the database (`RAPPORT_RATE_LIMIT_SHARED`).
    shared: bool,
    /// Whether the last exchange with the shared books went through (for the log).
    reachable: AtomicBool,
    /// When this instance last deleted the shared books' stale rows.
    forgotten: Mutex<Option<Instant>>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(false)
    }
}

/// The wait owed after `count` counted attempts with `free` allowed, `since` the last.
fn owed(count: u32, free: u32, since: Option<Duration>) -> Duration {
    if count < free {
        return Duration::ZERO;
    }
    let doublings = (count - free).min(20);
    let wait = Duration::from_secs(1u64 << doublings).min(MAX_WAIT);
    match since {
        Some(since) => wait.saturating_sub(since),
        None => Duration::ZERO,
    }
}

/// At least a second, so that `Retry-After` (whole seconds) is never `0`.
fn at_least_a_second(wait: Duration) -> Duration {
    wait.max(Duration::from_secs(1))
}

/// The rules: whether an attempt may be checked now, or how long it must wait.
fn decide(standing: &Standing) -> Result<(), Duration> {
    let Standing {
        failures,
        since_failure,
        in_flight,
        address,
    } = *standing;
    if in_flight > 0 && failures + in_flight >= ACCOUNT_FREE {
        // The checks in flight may all fail: no further check until they are answered.
        let next = owed(failures + in_flight, ACCOUNT_FREE, since_failure);
        return Err(at_least_a_second(next));
    }
    let wait = owed(failures, ACCOUNT_FREE, since_failure);
    if !wait.is_zero() {
        return Err(at_least_a_second(wait));
    }
    if let Some(address) = address {
        let counted = address.others_failed.saturating_add(address.in_flight);
        if counted >= ADDRESS_FREE {
            let wait = owed(counted, ADDRESS_FREE, address.since_failure);
            if address.in_flight > 0 || !wait.is_zero() {
                return Err(at_least_a_second(wait));
            }
        }
    }
    Ok(())
}

fn account_key(id: &str) -> String {
    id.trim().to_lowercase()
}

/// The key the shared books know a normalised account or an address by: its sha256, hex.
fn hashed(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn since_ms(ms: Option<i64>) -> Option<Duration> {
    ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

impl LoginThrottle {
    /// A throttle whose books are `shared` through the database, or kept in memory only.
    pub fn new(shared: bool) -> Self {
        Self {
            books: Mutex::default(),
            shared,
            reachable: AtomicBool::new(true),
            forgotten: Mutex::new(None),
        }
    }

    /// Reserves a check of `account`'s credentials from `address`, or `Err(retry_after)`.
    /// Report the outcome on the returned [`Attempt`]; dropping it unreported (an error
    /// before the check finished) releases the reservation without counting a failure.
    /// `pool` is used only when the books are shared.
    pub async fn begin<'a>(
        &'a self,
        pool: &'a DbPool,
        account: &str,
        address: &str,
    ) -> Result<Attempt<'a>, Duration> {
        let account = account_key(account);
        let address = address.to_owned();
        if !self.shared {
            return self.reserve(account, address);
        }
        // Held as in flight *before* the shared books are read, and judged with the checks
        // that were in flight here then: each of those has either recorded its outcome
        // before the read (and the read sees it) or is counted as in flight, so no check on
        // this instance slips in between a read and a record. Dropped when refused (or
        // when this future is), which releases it.
        let (mut attempt, held) = self.hold(account, address);
        let shared = self
            .read_shared(pool, &attempt.account, &attempt.address)
            .await;
        self.judge(&mut attempt, held, shared)?;
        // Recorded in the shared books only when they answered: otherwise the database
        // costs no second wait.
        attempt.pool = shared.is_some().then_some(pool);
        Ok(attempt)
    }

    /// The shared books' standing of `account` at `address`; `None` when they cannot be
    /// read, and the instance decides from its own.
    async fn read_shared(&self, pool: &DbPool, account: &str, address: &str) -> Option<Shared> {
        let read = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            shared_books::standing(
                &mut conn,
                &hashed(account),
                &hashed(address),
                millis(WINDOW),
                millis(KNOWN_FOR),
            )
            .await
            .map_err(|e| e.to_string())
        };
        let standing = match tokio::time::timeout(SHARED_TIMEOUT, read).await {
            Ok(Ok(standing)) => standing,
            Ok(Err(err)) => return self.unreachable(&err),
            Err(_) => return self.unreachable("the database did not answer in time"),
        };
        self.reached();
        Some(Shared {
            failures: standing
                .failures
                .and_then(|f| u32::try_from(f).ok())
                .unwrap_or(0),
            since_failure: since_ms(standing.since_failure_ms),
            others_failed: u32::try_from(standing.address_failed_others).unwrap_or(u32::MAX),
            since_address_failure: since_ms(standing.since_address_failure_ms),
            known: standing.known,
        })
    }

    fn unreachable<T>(&self, reason: &str) -> Option<T> {
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                reason,
                "cannot share the sign-in throttle; this instance throttles on its own until the database answers"
            );
        }
        None
    }

    fn reached(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("the sign-in throttle is shared across instances again");
        }
    }

    /// The in-memory throttle: decides from this instance's books and reserves the check,
    /// in one critical section.
    fn reserve(&self, account: String, address: String) -> Result<Attempt<'_>, Duration> {
        let Ok(mut books) = self.books.lock() else {
            return Ok(Attempt::unrecorded(self, account, address));
        };
        let books = &mut *books;
        tidy(books, &account);
        let standing = local_standing(books, &account, &address, 0);
        decide(&standing)?;
        let address_reserved = standing.address.is_some();
        if address_reserved && let Some(addr) = books.addresses.get_mut(&address) {
            addr.in_flight += 1;
        }
        if let Some(acc) = books.accounts.get_mut(&account) {
            acc.in_flight += 1;
        }
        Ok(Attempt::new(self, account, address, address_reserved))
    }

    /// Counts a check as in flight (at the account and the address) before it is judged;
    /// returns it with the checks that were in flight here before it.
    fn hold(&self, account: String, address: String) -> (Attempt<'_>, Option<Held>) {
        let Ok(mut books) = self.books.lock() else {
            return (Attempt::unrecorded(self, account, address), None);
        };
        let books = &mut *books;
        tidy(books, &account);
        let acc = books.accounts.entry(account.clone()).or_default();
        let account_in_flight = acc.in_flight;
        acc.in_flight += 1;
        let addr = books.addresses.entry(address.clone()).or_default();
        let address_in_flight = addr.in_flight;
        addr.in_flight += 1;
        let held = Held {
            account_in_flight,
            address_in_flight,
        };
        (Attempt::new(self, account, address, true), Some(held))
    }

    /// Judges a held check by the shared books' standing, or by this instance's books when
    /// they could not be read. An account known at the address gives back its hold there.
    fn judge(
        &self,
        attempt: &mut Attempt<'_>,
        held: Option<Held>,
        shared: Option<Shared>,
    ) -> Result<(), Duration> {
        let (Some(held), Ok(mut books)) = (held, self.books.lock()) else {
            return Ok(());
        };
        let books = &mut *books;
        let standing = match shared {
            Some(shared) => Standing {
                failures: shared.failures,
                since_failure: shared.since_failure,
                in_flight: held.account_in_flight,
                address: (!shared.known).then_some(AddressStanding {
                    others_failed: shared.others_failed,
                    since_failure: shared.since_address_failure,
                    in_flight: held.address_in_flight,
                }),
            },
            // Everything here is as of now: this check's own hold left out.
            None => local_standing(books, &attempt.account, &attempt.address, 1),
        };
        if standing.address.is_none() {
            attempt.address_reserved = false;
            release_address(books, &attempt.address);
        }
        decide(&standing)
    }

    /// Records the outcome in the shared books; now and then deletes their stale rows on
    /// the same connection.
    async fn record_shared(&self, pool: &DbPool, attempt: &Attempt<'_>, succeeded: bool) {
        let forget = self.forgotten.lock().is_ok_and(|mut at| {
            let due = at.is_none_or(|at| at.elapsed() >= FORGET_EVERY);
            if due {
                *at = Some(Instant::now());
            }
            due
        });
        let record = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            let (account, address) = (hashed(&attempt.account), hashed(&attempt.address));
            if succeeded {
                shared_books::record_success(&mut conn, &account, &address).await
            } else {
                shared_books::record_failure(&mut conn, &account, &address, millis(WINDOW)).await
            }
            .map_err(|e| e.to_string())?;
            if forget {
                match shared_books::forget_stale(&mut conn, millis(WINDOW), millis(KNOWN_FOR)).await
                {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(forgotten = n, "forgot stale sign-in throttle rows"),
                    Err(err) => {
                        tracing::debug!(error = %err, "could not forget stale sign-in throttle rows");
                    }
                }
            }
            Ok::<_, String>(())
        };
        match tokio::time::timeout(SHARED_TIMEOUT, record).await {
            Ok(Ok(())) => self.reached(),
            Ok(Err(err)) => {
                self.unreachable::<()>(&err);
            }
            Err(_) => {
                self.unreachable::<()>("the database did not answer in time");
            }
        }
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

/// Sweeps the books when they are large, and forgets `account`'s failures once quiet for
/// the window.
fn tidy(books: &mut Books, account: &str) {
    if books.accounts.len() + books.addresses.len() + books.known.len() > SWEEP_AT {
        sweep(books);
    }
    if let Some(acc) = books.accounts.get_mut(account)
        && acc.in_flight == 0
        && acc.last.is_some_and(|l| l.elapsed() > WINDOW)
    {
        *acc = Account::default();
    }
}

/// What this instance's books say of `account` at `address`, leaving out `held` checks of
/// the caller's own from the counts in flight.
fn local_standing(books: &mut Books, account: &str, address: &str, held: u32) -> Standing {
    let acc = books.accounts.entry(account.to_owned()).or_default();
    let mut standing = Standing {
        failures: acc.failures,
        since_failure: acc.last.map(|l| l.elapsed()),
        in_flight: acc.in_flight.saturating_sub(held),
        address: None,
    };
    let known = books
        .known
        .get(&(account.to_owned(), address.to_owned()))
        .is_some_and(|at| at.elapsed() < KNOWN_FOR);
    if !known {
        let addr = books.addresses.entry(address.to_owned()).or_default();
        addr.failed.retain(|_, at| at.elapsed() <= WINDOW);
        let failed = u32::try_from(addr.failed.len()).unwrap_or(u32::MAX);
        // An account already failing from here is the account bucket's business: count
        // only others, so one account's failures never hold up the address.
        standing.address = Some(AddressStanding {
            others_failed: failed - u32::from(addr.failed.contains_key(account)),
            since_failure: addr.last.map(|l| l.elapsed()),
            in_flight: addr.in_flight.saturating_sub(held),
        });
    }
    standing
}

/// Gives back one check's hold at `address`.
fn release_address(books: &mut Books, address: &str) {
    if let Some(addr) = books.addresses.get_mut(address) {
        addr.in_flight = addr.in_flight.saturating_sub(1);
        if addr.in_flight == 0 && addr.failed.is_empty() {
            books.addresses.remove(address);
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
    /// The pool to record the outcome through, when the books are shared.
    pool: Option<&'a DbPool>,
    account: String,
    address: String,
    address_reserved: bool,
    recorded: bool,
}

impl<'a> Attempt<'a> {
    fn new(
        throttle: &'a LoginThrottle,
        account: String,
        address: String,
        address_reserved: bool,
    ) -> Self {
        Self {
            throttle,
            pool: None,
            account,
            address,
            address_reserved,
            recorded: true,
        }
    }

    fn unrecorded(throttle: &'a LoginThrottle, account: String, address: String) -> Self {
        Self {
            throttle,
            pool: None,
            account,
            address,
            address_reserved: false,
            recorded: false,
        }
    }

    /// The credentials were wrong (or named no active account).
    pub async fn failed(self) {
        self.report(false).await;
    }

    /// The credentials were right: clears the account, vouches for it at this address.
    pub async fn succeeded(self) {
        self.report(true).await;
    }

    /// Records the outcome: in the shared books first, while the check still counts as in
    /// flight here (so that no check on this instance slips in between), then here.
    async fn report(mut self, succeeded: bool) {
        if !self.recorded {
            return;
        }
        if let Some(pool) = self.pool {
            self.throttle.record_shared(pool, &self, succeeded).await;
        }
        self.recorded = false;
        self.throttle.settle(&self, Some(succeeded));
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
    use futures_util::FutureExt;

    use super::*;

    const HERE: &str = "192.0.2.1";

    impl LoginThrottle {
        /// `begin` on this instance's books (no database).
        fn check(&self, account: &str, address: &str) -> Result<Attempt<'_>, Duration> {
            self.reserve(account_key(account), address.to_owned())
        }

        /// `begin` with shared books that said `shared` (`None`: could not be read).
        fn check_shared(&self, shared: Option<Shared>) -> Result<Attempt<'_>, Duration> {
            let (mut attempt, held) = self.hold(account_key("a@example.com"), HERE.to_owned());
            self.judge(&mut attempt, held, shared)?;
            Ok(attempt)
        }
    }

    impl Attempt<'_> {
        /// Reports without a database: nothing to wait for.
        fn now(self, succeeded: bool) {
            assert!(self.report(succeeded).now_or_never().is_some());
        }
    }

    fn fail(throttle: &LoginThrottle, account: &str, address: &str) {
        if let Ok(attempt) = throttle.check(account, address) {
            attempt.now(false);
        }
    }

    #[test]
    fn waits_start_after_the_free_failures_and_double() {
        let throttle = LoginThrottle::default();
        for _ in 0..5 {
            assert!(throttle.check("A@example.com", HERE).is_ok());
            fail(&throttle, "A@example.com", HERE);
        }
        let first = throttle
            .check("a@example.com", HERE)
            .err()
            .unwrap_or_default();
        assert!(first > Duration::from_millis(500) && first <= Duration::from_secs(1));
    }

    #[test]
    fn checks_in_flight_count_before_they_finish() {
        let throttle = LoginThrottle::default();
        let reserved: Vec<_> = (0..30)
            .filter_map(|_| throttle.check("a@example.com", HERE).ok())
            .collect();
        assert_eq!(reserved.len(), ACCOUNT_FREE as usize);
        for attempt in reserved {
            attempt.now(false);
        }
        assert!(throttle.check("a@example.com", HERE).is_err());
    }

    #[test]
    fn an_unreported_attempt_is_released_without_counting() {
        let throttle = LoginThrottle::default();
        for _ in 0..10 {
            drop(throttle.check("a@example.com", HERE));
        }
        assert!(throttle.check("a@example.com", HERE).is_ok());
    }

    #[test]
    fn one_accounts_failures_do_not_hold_up_its_neighbours() {
        let throttle = LoginThrottle::default();
        for _ in 0..50 {
            fail(&throttle, "victim@example.com", HERE);
        }
        assert!(throttle.check("victim@example.com", HERE).is_err());
        assert!(throttle.check("colleague@example.com", HERE).is_ok());
    }

    #[test]
    fn spraying_slows_the_address_but_not_accounts_known_there() {
        let throttle = LoginThrottle::default();
        if let Ok(attempt) = throttle.check("regular@example.com", HERE) {
            attempt.now(true);
        }
        for i in 0..ADDRESS_FREE {
            fail(&throttle, &format!("user{i}@example.com"), HERE);
        }
        assert!(throttle.check("another@example.com", HERE).is_err());
        assert!(throttle.check("another@example.com", "192.0.2.2").is_ok());
        assert!(throttle.check("regular@example.com", HERE).is_ok());
    }

    fn shared(failures: u32, since_failure: Option<Duration>) -> Shared {
        Shared {
            failures,
            since_failure,
            others_failed: 0,
            since_address_failure: None,
            known: false,
        }
    }

    #[test]
    fn the_rules_read_only_the_standing() {
        let secs = Duration::from_secs;
        let fresh = Standing::default();
        assert_eq!(decide(&fresh), Ok(()));
        let failing = |failures, since| Standing {
            failures,
            since_failure: Some(since),
            ..fresh
        };
        assert_eq!(decide(&failing(4, secs(0))), Ok(()));
        assert_eq!(decide(&failing(5, secs(0))), Err(secs(1)));
        // Never under a second, so that `Retry-After` is never 0.
        assert_eq!(
            decide(&failing(5, Duration::from_millis(400))),
            Err(secs(1))
        );
        assert_eq!(
            decide(&failing(6, Duration::from_millis(400))),
            Err(Duration::from_millis(1600))
        );
        assert_eq!(decide(&failing(5, secs(1))), Ok(()));
        assert_eq!(decide(&failing(7, secs(1))), Err(secs(3)));
        assert_eq!(decide(&failing(40, secs(0))), Err(MAX_WAIT));
        // Checks in flight fill the free allowance: the next waits at least a second.
        let busy = Standing {
            in_flight: 2,
            ..failing(3, secs(100))
        };
        assert_eq!(decide(&busy), Err(secs(1)));
        // The address: past its free accounts, unless the account is known there.
        let sprayed = AddressStanding {
            others_failed: ADDRESS_FREE,
            since_failure: Some(Duration::ZERO),
            in_flight: 0,
        };
        let from = |address| Standing { address, ..fresh };
        assert_eq!(decide(&from(Some(sprayed))), Err(secs(1)));
        assert_eq!(decide(&from(None)), Ok(()));
        let quiet = AddressStanding {
            since_failure: Some(secs(2)),
            ..sprayed
        };
        assert_eq!(decide(&from(Some(quiet))), Ok(()));
        let one_short = AddressStanding {
            others_failed: ADDRESS_FREE - 1,
            ..sprayed
        };
        assert_eq!(decide(&from(Some(one_short))), Ok(()));
        let with_one_in_flight = AddressStanding {
            in_flight: 1,
            ..one_short
        };
        assert_eq!(decide(&from(Some(with_one_in_flight))), Err(secs(1)));
    }

    #[test]
    fn shared_books_decide_with_this_instances_checks_in_flight() {
        let throttle = LoginThrottle::default();
        // Failures elsewhere hold up a fresh instance.
        let elsewhere = shared(ACCOUNT_FREE, Some(Duration::ZERO));
        assert!(throttle.check_shared(Some(elsewhere)).is_err());
        // A success elsewhere cleared what this instance counted itself.
        for _ in 0..ACCOUNT_FREE {
            fail(&throttle, "a@example.com", HERE);
        }
        assert!(throttle.check("a@example.com", HERE).is_err());
        let cleared = shared(0, None);
        let reserved: Vec<_> = (0..10)
            .filter_map(|_| throttle.check_shared(Some(cleared)).ok())
            .collect();
        // ...but its own checks in flight still count.
        assert_eq!(reserved.len(), ACCOUNT_FREE as usize);
        drop(reserved);
        // Known elsewhere at this address: the address does not hold it up.
        let sprayed = Shared {
            others_failed: ADDRESS_FREE,
            since_address_failure: Some(Duration::ZERO),
            ..cleared
        };
        assert!(throttle.check_shared(Some(sprayed)).is_err());
        let known = Shared {
            known: true,
            ..sprayed
        };
        let attempt = throttle.check_shared(Some(known));
        assert!(attempt.is_ok());
        drop(attempt);
        // Refused or released, nothing stays in flight.
        let books = throttle.books.lock().unwrap();
        assert!(books.accounts.values().all(|a| a.in_flight == 0));
        assert!(books.addresses.values().all(|a| a.in_flight == 0));
    }

    #[test]
    fn a_check_counts_the_checks_in_flight_when_it_was_held() {
        let throttle = LoginThrottle::default();
        let cleared = shared(0, None);
        let five: Vec<_> = (0..ACCOUNT_FREE)
            .filter_map(|_| throttle.check_shared(Some(cleared)).ok())
            .collect();
        assert_eq!(five.len(), ACCOUNT_FREE as usize);
        // A sixth is held, then reads the shared books before the five record their
        // failures; they are answered before it is judged: it still counts them.
        let (mut sixth, held) = throttle.hold(account_key("a@example.com"), HERE.to_owned());
        for attempt in five {
            attempt.now(false);
        }
        assert!(throttle.judge(&mut sixth, held, Some(cleared)).is_err());
    }

    #[test]
    fn without_the_shared_books_a_held_check_is_judged_here() {
        let throttle = LoginThrottle::default();
        for _ in 0..ACCOUNT_FREE {
            let attempt = throttle.check_shared(None);
            assert!(attempt.is_ok());
            if let Ok(attempt) = attempt {
                attempt.now(false);
            }
        }
        assert!(throttle.check_shared(None).is_err());
    }

    #[test]
    fn shared_keys_are_hashes_of_the_normalised_key() {
        let key = hashed(&account_key(" A@Example.com "));
        assert_eq!(key, hashed("a@example.com"));
        assert_eq!(key.len(), 64);
        assert!(
            key.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(key, hashed("b@example.com"));
    }
}
