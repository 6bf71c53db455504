//! The audit trail: every sign-in, refused sign-in, logout and back-channel logout is written
//! to the store's audit table and as one structured log line (who, what, when, from where,
//! outcome). Writing never delays or fails the request: one background writer inserts the
//! rows in the order they were recorded (their ids follow the order of events), and a store
//! error is logged.
//!
//! Growth is bounded: anonymous clients can only cause rows through paths that are themselves
//! rate limited (a refused sign-in needs a transaction this browser started; back-channel
//! logout requests are limited per address), and rows older than [`RETENTION_SECS`] are pruned.
//! The queue to the writer is bounded too ([`QUEUE`]): should the database fall that far
//! behind, further events are only logged (the log line is always written), never queued
//! without limit.

use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_store::{AuditEvent, Store};
use tokio::sync::mpsc;

/// How long audit events are kept.
pub const RETENTION_SECS: i64 = 90 * 24 * 3600;
/// Prune once per this many recorded events (cheap: an indexed range delete).
const PRUNE_EVERY: u64 = 1024;
/// Events waiting for the writer, at most.
pub const QUEUE: usize = 10_000;

/// Records audit events for one gateway.
pub struct Audit {
    queue: mpsc::Sender<(AuditEvent, bool)>,
    recorded: AtomicU64,
}

/// One event, as the gateway describes it.
pub struct Entry<'a> {
    pub action: &'static str,
    pub outcome: &'static str,
    pub actor: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub ip: Option<std::net::IpAddr>,
    pub detail: Option<String>,
}

impl Audit {
    /// Start the writer (on the current Tokio runtime).
    pub fn new(store: Store) -> Audit {
        let (queue, mut events) = mpsc::channel::<(AuditEvent, bool)>(QUEUE);
        tokio::spawn(async move {
            while let Some((event, prune)) = events.recv().await {
                if let Err(err) = store.audit.record_audit(&event).await {
                    tracing::error!(error = %err, action = %event.action, "audit event not stored");
                }
                if prune && let Err(err) = store.audit.prune_audit(event.at - RETENTION_SECS).await
                {
                    tracing::warn!(error = %err, "audit pruning failed");
                }
            }
        });
        Audit {
            queue,
            recorded: AtomicU64::new(0),
        }
    }

    /// Log the event and store it in the background.
    pub fn record(&self, now: i64, e: Entry<'_>) {
        tracing::info!(
            audit = true,
            event = e.action,
            outcome = e.outcome,
            actor = e.actor.unwrap_or("-"),
            subject = e.subject.unwrap_or("-"),
            ip = %e.ip.map(|i| i.to_string()).unwrap_or_else(|| "-".into()),
            detail = e.detail.as_deref().unwrap_or("-"),
            "audit"
        );
        let event = AuditEvent {
            at: now,
            action: e.action.to_string(),
            outcome: e.outcome.to_string(),
            actor: e.actor.map(str::to_owned),
            subject: e.subject.map(str::to_owned),
            ip: e.ip.map(|i| i.to_string()),
            detail: e.detail,
        };
        let prune = self
            .recorded
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY);
        match self.queue.try_send((event, prune)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full((ev, _))) => tracing::error!(
                action = %ev.action,
                "audit event not stored: the writer is behind (the event is in the log line above)"
            ),
            Err(mpsc::error::TrySendError::Closed((ev, _))) => tracing::error!(
                action = %ev.action,
                "audit event not stored: the writer has stopped (the event is in the log line above)"
            ),
        }
    }
}
