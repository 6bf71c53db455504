//! The audit trail: every sign-in, refused sign-in, logout and back-channel logout is written
//! to the store's audit table and as one structured log line (who, what, when, from where,
//! outcome). Writing never delays or fails the request: the row is inserted in the background
//! and a store error is logged.
//!
//! Growth is bounded: anonymous clients can only cause rows through paths that are themselves
//! rate limited (a refused sign-in needs a transaction this browser started; back-channel
//! logout requests are limited per address), and rows older than [`RETENTION_SECS`] are pruned.

use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_store::{AuditEvent, Store};

/// How long audit events are kept.
pub const RETENTION_SECS: i64 = 90 * 24 * 3600;
/// Prune once per this many recorded events (cheap: an indexed range delete).
const PRUNE_EVERY: u64 = 1024;

/// Records audit events for one gateway.
pub struct Audit {
    store: Store,
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
    pub fn new(store: Store) -> Audit {
        Audit {
            store,
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
        let store = self.store.clone();
        let prune = self
            .recorded
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(PRUNE_EVERY);
        tokio::spawn(async move {
            if let Err(err) = store.audit.record_audit(&event).await {
                tracing::error!(error = %err, action = %event.action, "audit event not stored");
            }
            if prune && let Err(err) = store.audit.prune_audit(now - RETENTION_SECS).await {
                tracing::warn!(error = %err, "audit pruning failed");
            }
        });
    }
}
