//! How many requests of one kind each caller has in flight, bounded: past the bound a caller
//! waits its turn (`429`), so one integration cannot take every slot there is.
//!
//! Counted per instance: behind a load balancer of `n` instances a caller may have up to `n`
//! times the bound in flight.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::http::header::{self, HeaderValue};

use super::error::{ApiError, ErrorCode};

#[derive(Debug)]
pub struct InFlight {
    what: &'static str,
    per_caller: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

/// One request's place; given back when dropped, however the request ends.
#[derive(Debug)]
pub struct Slot {
    caller: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl InFlight {
    /// At most `per_caller` requests of `what` (e.g. "uploads") per caller.
    pub fn new(what: &'static str, per_caller: usize) -> Self {
        InFlight {
            what,
            per_caller,
            held: Arc::default(),
        }
    }

    /// A place for `caller`'s next request, or a `429` while it has all of its own.
    pub fn enter(&self, caller: &str) -> Result<Slot, ApiError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.entry(caller.to_owned()).or_default();
        if *count >= self.per_caller {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "you have {} {} in flight, the most one caller may; send this one when \
                     one of them has ended",
                    self.per_caller, self.what
                ),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from_static("5")));
        }
        *count += 1;
        Ok(Slot {
            caller: caller.to_owned(),
            held: self.held.clone(),
        })
    }

    /// Requests in flight for `caller`.
    pub fn held_by(&self, caller: &str) -> usize {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.get(caller).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.caller) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.caller);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_caller_has_its_own_places_given_back_on_drop() {
        let uploads = InFlight::new("uploads", 2);
        let a1 = uploads.enter("a").unwrap();
        let _a2 = uploads.enter("a").unwrap();
        let err = uploads.enter("a").unwrap_err();
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert!(err.to_string().contains("2 uploads"), "{err}");
        let _b = uploads.enter("b").unwrap();
        drop(a1);
        assert_eq!(uploads.held_by("a"), 1);
        let _a3 = uploads.enter("a").unwrap();
        assert_eq!(uploads.held_by("a"), 2);
        assert_eq!(uploads.held_by("c"), 0);
    }
}
