//! Tier 3 at the gateway (R-DP): check a request's DPoP proof against the request and the
//! session's key, and refuse replays.
//!
//! The stateless checks are `core`'s ([`check_proof`]). Replay detection needs memory: every
//! replica keeps the `(jkt, jti)` pairs it has seen for [`REPLAY_TTL`] (a replay sent to the
//! same replica is refused without a round trip), and on PostgreSQL — the only store several
//! replicas share — each pair is also inserted, set-if-absent, into the shared table, so a
//! proof replayed to another replica is refused too (RFC 9449 §11.1). On SQLite there is one
//! process, and the in-memory set is the whole cache.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::http::{HeaderMap, Method, Uri};
use portcullis_core::session::SessionKeys;
use portcullis_core::session::dpop::{
    CheckedProof, DpopError, Expected, NonceKeys, REPLAY_TTL, check_proof, expected_htu,
};
use portcullis_store::{Store, StoreError};

use crate::error::WebError;

/// Most `(jkt, jti)` pairs remembered at once, here and in the shared table: at 180 s each,
/// room for about 5 500 proof-checked requests per second. Beyond it proofs are refused with
/// 503 rather than remembered partially (a replay must never pass because memory was full).
pub const MAX_REMEMBERED: usize = 1_000_000;

/// DPoP for one gateway: settings, nonce keys, replay cache.
pub struct DpopGuard {
    public_url: url::Url,
    nonces: Option<NonceKeys>,
    seen: Mutex<Seen>,
    /// The shared replay table, when replicas share the store (PostgreSQL).
    shared: Option<Store>,
}

/// A replay key's digest ([`CheckedProof::replay_digest`]): fixed size, so remembering a proof
/// allocates nothing per entry.
type Digest = [u8; 32];

/// The in-memory replay set; entries expire in insertion order (all live [`REPLAY_TTL`]).
#[derive(Default)]
struct Seen {
    keys: HashMap<Digest, i64>,
    order: VecDeque<(i64, Digest)>,
}

impl Seen {
    fn prune(&mut self, now: i64) {
        while let Some((exp, _)) = self.order.front() {
            if *exp > now {
                break;
            }
            if let Some((exp, key)) = self.order.pop_front()
                && self.keys.get(&key) == Some(&exp)
            {
                self.keys.remove(&key);
            }
        }
    }

    /// `Ok(true)` the first time `key` is seen within its lifetime.
    fn insert(&mut self, key: Digest, now: i64) -> Result<bool, WebError> {
        self.prune(now);
        if self.keys.contains_key(&key) {
            return Ok(false);
        }
        if self.keys.len() >= MAX_REMEMBERED {
            return Err(WebError::Busy("DPoP replay cache"));
        }
        let exp = now + REPLAY_TTL;
        self.keys.insert(key, exp);
        self.order.push_back((exp, key));
        Ok(true)
    }
}

impl DpopGuard {
    /// Proofs remembered in memory now (the replay-cache metric; read when scraped).
    pub fn remembered(&self) -> usize {
        self.seen.lock().map_or(0, |s| s.keys.len())
    }

    pub fn new(public_url: url::Url, keys: &SessionKeys, nonce: bool, store: &Store) -> Self {
        DpopGuard {
            public_url,
            nonces: nonce.then(|| NonceKeys::new(keys)),
            seen: Mutex::default(),
            shared: (store.kind() == "postgres").then(|| store.clone()),
        }
    }

    /// The nonce to advertise in `DPoP-Nonce`, when server nonces are on.
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(now))
    }

    /// Every check of R-DP for one request: the proof itself (checks 1–9, 12), the key it
    /// is bound to (check 11, when `bound_jkt` is given) and replay (check 10). Returns the
    /// proof's key thumbprint.
    pub async fn verify(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        bound_jkt: Option<&str>,
        now: i64,
    ) -> Result<CheckedProof, WebError> {
        let values: Vec<&[u8]> = headers
            .get_all("dpop")
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        let htu = expected_htu(&self.public_url, uri.path())
            .ok_or(WebError::InvalidDpop("request path cannot be an htu"))?;
        let expected = Expected {
            method: method.as_str(),
            htu: &htu,
            now,
            nonce: self.nonces.as_ref(),
        };
        let proof = check_proof(&values, &expected).map_err(|e| self.refusal(e, now))?;
        // R-DP check 11, in constant time.
        if let Some(jkt) = bound_jkt
            && !proof.matches_jkt(jkt)
        {
            return Err(WebError::InvalidDpop("proof signed by another key"));
        }
        self.first_use(&proof, now).await?;
        Ok(proof)
    }

    fn refusal(&self, e: DpopError, now: i64) -> WebError {
        tracing::info!(error = %e, "DPoP proof refused");
        match self.current_nonce(now) {
            Some(nonce) if e.is_nonce() => WebError::UseDpopNonce(nonce),
            _ => WebError::InvalidDpop("proof refused"),
        }
    }

    /// R-DP check 10: `(jkt, jti)` not seen before, here or on another replica.
    async fn first_use(&self, proof: &CheckedProof, now: i64) -> Result<(), WebError> {
        let fresh = match self.seen.lock() {
            Ok(mut seen) => seen.insert(proof.replay_digest(), now)?,
            Err(_) => return Err(WebError::Internal("replay cache poisoned".into())),
        };
        if !fresh {
            return Err(WebError::InvalidDpop("proof replayed"));
        }
        if let Some(store) = &self.shared {
            let limit = MAX_REMEMBERED as i64;
            match store
                .proofs
                .remember_proof(&proof.replay_key(), now + REPLAY_TTL, now, limit)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Err(WebError::InvalidDpop("proof replayed")),
                Err(StoreError::Full(what)) => return Err(WebError::Busy(what)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn seen_refuses_a_key_until_it_expires() {
        let mut s = Seen::default();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(s.insert(a, 100).unwrap());
        assert!(!s.insert(a, 100 + REPLAY_TTL - 1).unwrap());
        assert!(s.insert(b, 150).unwrap());
        // "a" expired, "b" did not.
        assert!(s.insert(a, 100 + REPLAY_TTL).unwrap());
        assert!(!s.insert(b, 100 + REPLAY_TTL).unwrap());
        assert_eq!(s.keys.len(), 2);
        s.prune(10_000);
        assert!(s.keys.is_empty() && s.order.is_empty());
    }
}
