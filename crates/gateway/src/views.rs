//! The in-memory views every request reads instead of the database: revoked sessions and
//! cached users. The store's change feed keeps them current on every replica (within a second
//! of a change anywhere); a cached user is also re-read after [`USER_TTL`] as a backstop.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};

use portcullis_core::authz::NoRoleRefused;
use portcullis_store::{Change, User};

use crate::proxy::headers::IdentityHeaders;

/// Longest time a cached user is trusted without re-reading it (the feed normally evicts a
/// changed user within a second; this bounds the damage if the feed is down).
pub const USER_TTL: i64 = 60;
/// Bound on cached users; beyond it the cache starts over (entries reload on demand).
const USER_CACHE_MAX: usize = 100_000;
/// Expired entries of the revocation view are dropped at most this often.
const PRUNE_EVERY: i64 = 60;

/// Revoked session ids until their absolute expiry.
#[derive(Default)]
pub struct RevocationView {
    inner: RwLock<Revoked>,
}

#[derive(Default)]
struct Revoked {
    ids: HashMap<String, i64>,
    pruned_at: i64,
}

impl RevocationView {
    pub fn revoke(&self, sid: &str, expires_at: i64, now: i64) {
        if let Ok(mut r) = self.inner.write() {
            if now - r.pruned_at >= PRUNE_EVERY {
                r.ids.retain(|_, exp| *exp >= now);
                r.pruned_at = now;
            }
            r.ids.insert(sid.to_string(), expires_at);
        }
    }

    /// Fails closed: a poisoned lock counts as revoked.
    pub fn is_revoked(&self, sid: &str) -> bool {
        self.inner
            .read()
            .map(|r| r.ids.contains_key(sid))
            .unwrap_or(true)
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|r| r.ids.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A user's roles as the role map gives them for their groups (or why they have none).
pub type Roles = Result<Vec<String>, NoRoleRefused>;

/// A cached user with their roles, mapped once when the user is read rather than on every
/// request (the roles change only when the user does, and a change evicts the entry).
#[derive(Clone, Debug)]
pub struct Member {
    pub user: Arc<User>,
    pub roles: Arc<Roles>,
    /// The identity headers sent to the app for this user, encoded on the first proxied
    /// request and then reused by every request until the entry is evicted.
    pub identity: Arc<OnceLock<IdentityHeaders>>,
}

/// Signed-in users by internal id, with the time each was read.
#[derive(Default)]
pub struct UserCache {
    users: RwLock<HashMap<String, (Member, i64)>>,
}

impl UserCache {
    /// The cached user, if read less than [`USER_TTL`] ago.
    pub fn get(&self, id: &str, now: i64) -> Option<Member> {
        let m = self.users.read().ok()?;
        let (u, at) = m.get(id)?;
        (now - at < USER_TTL).then(|| u.clone())
    }

    /// Cache `user` with `roles` (computed by the caller from the configured role map).
    pub fn put(&self, user: User, roles: Roles, now: i64) -> Member {
        let member = Member {
            user: Arc::new(user),
            roles: Arc::new(roles),
            identity: Arc::default(),
        };
        if let Ok(mut m) = self.users.write() {
            if m.len() >= USER_CACHE_MAX {
                m.clear();
            }
            m.insert(member.user.id.clone(), (member.clone(), now));
        }
        member
    }

    pub fn evict(&self, id: &str) {
        if let Ok(mut m) = self.users.write() {
            m.remove(id);
        }
    }
}

/// Both views, and how a change from the feed lands in them.
#[derive(Default)]
pub struct Views {
    pub revoked: RevocationView,
    pub users: UserCache,
    /// API tokens: cached records, revoked ids, failure counters.
    pub tokens: crate::tokens::TokenCache,
}

impl Views {
    pub fn apply(&self, change: &Change, now: i64) {
        match change {
            Change::SessionRevoked { id, expires_at } => self.revoked.revoke(id, *expires_at, now),
            Change::User { id } => self.users.evict(id),
            Change::ApiTokenRevoked { id } => self.tokens.revoke(id, now),
            // A newer replica's change: nothing here to apply (see `Change::Unknown`).
            Change::Unknown { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn user(id: &str) -> User {
        User {
            id: id.into(),
            profile: portcullis_core::claims::MappedUser {
                issuer: "i".into(),
                subject: "s".into(),
                user_id: "u".into(),
                email: None,
                name: None,
                given_name: None,
                family_name: None,
                picture: None,
                provider: None,
                username: None,
                groups: vec![],
            },
            first_login: 0,
            last_login: 0,
            active: true,
            admin_disabled: false,
            idp_deactivated: false,
        }
    }

    #[test]
    fn r_us_2_cached_users_expire_and_are_evicted_by_changes() {
        let v = Views::default();
        v.users.put(user("u1"), Ok(vec![]), 1000);
        assert!(v.users.get("u1", 1000 + USER_TTL - 1).is_some());
        assert!(
            v.users.get("u1", 1000 + USER_TTL).is_none(),
            "re-read after the TTL"
        );
        v.users.put(user("u1"), Ok(vec![]), 2000);
        v.apply(&Change::User { id: "u1".into() }, 2001);
        assert!(
            v.users.get("u1", 2001).is_none(),
            "a state change evicts at once"
        );
    }

    #[test]
    fn revocations_apply_idempotently_and_expire() {
        let v = Views::default();
        let c = Change::SessionRevoked {
            id: "s1".into(),
            expires_at: 500,
        };
        v.apply(&c, 100);
        v.apply(&c, 100);
        assert!(v.revoked.is_revoked("s1"));
        assert_eq!(v.revoked.len(), 1);
        v.revoked.revoke("s2", 10_000, 100 + PRUNE_EVERY + 500);
        assert!(
            !v.revoked.is_revoked("s1"),
            "pruned after its absolute expiry"
        );
        assert!(v.revoked.is_revoked("s2"));
    }
}
