//! Time: the one place that reads the wall clock, as unix seconds, behind an injectable
//! [`Clock`] so refresh windows, lifetimes, cooldowns and `iat` windows are testable without
//! sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Current unix time in whole seconds (0 if the clock is before 1970, which never happens in
/// practice but must not panic).
pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A source of "now" in unix seconds. The gateway holds one (`Arc<dyn Clock>`) and never
/// reads the wall clock itself.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> i64;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        now_unix()
    }
}

/// A clock that tests set and advance by hand. Starts at the real time unless set.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: i64) -> Arc<ManualClock> {
        Arc::new(ManualClock(AtomicI64::new(start)))
    }

    /// Starting at the current wall-clock time.
    pub fn at_now() -> Arc<ManualClock> {
        Self::new(now_unix())
    }

    pub fn set(&self, t: i64) {
        self.0.store(t, Ordering::SeqCst);
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now(), 1000);
        c.advance(5);
        assert_eq!(c.now(), 1005);
        c.set(7);
        assert_eq!(c.now(), 7);
        assert!(SystemClock.now() > 1_700_000_000);
    }
}
