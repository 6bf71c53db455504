//! Following the change log: each replica reads the changes written after its cursor and
//! applies them once, woken at once by a notification (PostgreSQL `NOTIFY`, or a write in this
//! process) and at the latest after [`POLL`].
//!
//! On PostgreSQL, sequence numbers are taken before commit, so a later number can become
//! visible before an earlier one. The cursor therefore only moves past a gap after
//! [`GAP_WAIT`] (a rolled-back transaction leaves a gap for ever); changes seen above the
//! cursor are remembered so none is applied twice.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::time::Clock;
use tokio::time::Instant;

use crate::{Change, ChangeEvent, ChangeLog};

/// Longest time between two catch-up queries when no notification arrives.
pub const POLL: Duration = Duration::from_millis(500);
/// How long a hole in the sequence is waited for before it is skipped.
pub const GAP_WAIT: Duration = Duration::from_secs(10);
/// Changes are kept this long (longer than any session's absolute lifetime).
pub const RETENTION_SECS: i64 = 2 * 24 * 3600;
const BATCH: i64 = 1000;
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The position of one follower in the log.
#[derive(Debug)]
pub struct Cursor {
    /// Every change with `seq <= applied_to` has been applied (or skipped as a hole).
    applied_to: i64,
    /// Changes applied above `applied_to`.
    above: BTreeSet<i64>,
    /// Since when the first hole above `applied_to` has been waited for.
    gap_since: Option<Instant>,
}

impl Cursor {
    /// A cursor that has seen everything up to `seq`.
    pub fn after(seq: i64) -> Cursor {
        Cursor {
            applied_to: seq,
            above: BTreeSet::new(),
            gap_since: None,
        }
    }

    pub fn position(&self) -> i64 {
        self.applied_to
    }

    /// The events not applied yet, in order; records them as applied.
    pub fn take_new(&mut self, events: Vec<ChangeEvent>, now: Instant) -> Vec<ChangeEvent> {
        let fresh: Vec<ChangeEvent> = events
            .into_iter()
            .filter(|e| e.seq > self.applied_to && self.above.insert(e.seq))
            .collect();
        self.advance(now);
        fresh
    }

    fn advance(&mut self, now: Instant) {
        loop {
            while self.above.remove(&(self.applied_to + 1)) {
                self.applied_to += 1;
            }
            let Some(&next) = self.above.first() else {
                self.gap_since = None;
                return;
            };
            // A hole at applied_to + 1 .. next - 1.
            let since = *self.gap_since.get_or_insert(now);
            if now.duration_since(since) < GAP_WAIT {
                return;
            }
            self.applied_to = next - 1;
            self.gap_since = None;
        }
    }
}

/// Follow `log` from `cursor`, calling `apply` for every new change, until the task is
/// aborted. Prunes changes older than [`RETENTION_SECS`] once an hour.
pub fn follow(
    log: Arc<dyn ChangeLog>,
    clock: Arc<dyn Clock>,
    mut cursor: Cursor,
    apply: impl Fn(&Change) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let wake = log.wake();
        let mut last_prune: Option<Instant> = None;
        let mut failing = false;
        loop {
            // Registered before the query, so a write during it still wakes us.
            let notified = wake.notified();
            let mut full = false;
            match log.changes_since(cursor.position(), BATCH).await {
                Ok(events) => {
                    if failing {
                        tracing::info!("change feed: the database answers again");
                        failing = false;
                    }
                    full = events.len() as i64 == BATCH;
                    for e in cursor.take_new(events, Instant::now()) {
                        apply(&e.change);
                    }
                }
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "change feed: cannot read changes; retrying");
                    failing = true;
                }
                Err(_) => {}
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(Instant::now());
                if let Err(e) = log.prune_changes(clock.now() - RETENTION_SECS).await {
                    tracing::warn!(error = %e, "change feed: pruning old changes failed");
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64) -> ChangeEvent {
        ChangeEvent {
            seq,
            at: 0,
            change: Change::User {
                id: seq.to_string(),
            },
        }
    }

    fn seqs(v: &[ChangeEvent]) -> Vec<i64> {
        v.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn applies_each_change_once_and_waits_for_holes() {
        let t0 = Instant::now();
        let mut c = Cursor::after(0);
        assert_eq!(seqs(&c.take_new(vec![ev(1), ev(2), ev(4)], t0)), [1, 2, 4]);
        assert_eq!(c.position(), 2, "3 is not visible yet");
        // 3 commits late; 4 is read again and not re-applied.
        assert_eq!(seqs(&c.take_new(vec![ev(3), ev(4)], t0)), [3]);
        assert_eq!(c.position(), 4);
        assert!(c.take_new(vec![ev(4)], t0).is_empty());
    }

    #[test]
    fn a_hole_that_never_fills_is_skipped_after_the_wait() {
        let t0 = Instant::now();
        let mut c = Cursor::after(10);
        assert_eq!(seqs(&c.take_new(vec![ev(12)], t0)), [12]);
        assert_eq!(c.position(), 10);
        c.take_new(vec![ev(12)], t0 + GAP_WAIT / 2);
        assert_eq!(c.position(), 10);
        c.take_new(vec![], t0 + GAP_WAIT);
        assert_eq!(c.position(), 12, "rolled-back 11 skipped");
    }
}
