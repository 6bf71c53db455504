//! Per-client-address rate limits (fixed one-minute windows), bounded in memory: anonymous
//! clients can make the gateway do work (start sign-ins, guess tokens), never unboundedly.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Addresses tracked at once; beyond it, entries of past windows are dropped first, and an
/// address that still finds no room is not tracked (the global caps still hold).
const MAX_TRACKED: usize = 50_000;
const WINDOW: i64 = 60;

/// At most `per_minute` events per key and minute: a client address by default, or another
/// key (a signed-in person guessing device codes).
pub struct RateLimiter<K = IpAddr> {
    per_minute: u32,
    seen: Mutex<HashMap<K, (i64, u32)>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_minute: u32) -> RateLimiter<K> {
        RateLimiter {
            per_minute,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Count one event for `ip` (the key) at `now`; `Err(retry_after_secs)` when over the limit.
    pub fn check(&self, ip: K, now: i64) -> Result<(), u64> {
        let window = now - now.rem_euclid(WINDOW);
        // A poisoned lock only loses counts; never a reason to refuse service.
        let Ok(mut seen) = self.seen.lock() else {
            return Ok(());
        };
        if seen.len() >= MAX_TRACKED && !seen.contains_key(&ip) {
            seen.retain(|_, (w, _)| *w == window);
            if seen.len() >= MAX_TRACKED {
                return Ok(());
            }
        }
        let entry = seen.entry(ip).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if entry.1 >= self.per_minute {
            return Err((window + WINDOW - now).max(1) as u64);
        }
        entry.1 += 1;
        Ok(())
    }

    /// Whether `ip` has used up this minute's budget, without counting an event:
    /// `Some(retry_after_secs)` when it has (for budgets of failures, counted by
    /// [`RateLimiter::check`] only when one happens).
    pub fn exceeded(&self, ip: &K, now: i64) -> Option<u64> {
        let window = now - now.rem_euclid(WINDOW);
        let seen = self.seen.lock().ok()?;
        let (w, n) = seen.get(ip)?;
        (*w == window && *n >= self.per_minute).then(|| (window + WINDOW - now).max(1) as u64)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn limits_per_address_and_window() {
        let l: RateLimiter = RateLimiter::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert!(l.check(a, 120).is_ok());
        }
        assert_eq!(l.check(a, 130), Err(50));
        assert!(
            l.check(b, 130).is_ok(),
            "another address has its own budget"
        );
        assert!(l.check(a, 180).is_ok(), "a new minute");
    }
}
