//! The signed identity assertion: an ES256 JWT about the signed-in person, in the configured
//! header of every proxied request and of the forward-auth answer, for apps that do not trust
//! plain identity headers; and the JWKS its keys are published in
//! ([`JWKS_PATH`]).
//!
//! Keys: one P-256 key per rotation period, derived from `JWT_SIGNING_SECRET` with HKDF under
//! its own label and the period number, so every replica signs with the same key without
//! sharing state. Derived at start-up and when the period changes, never per request. The
//! JWKS holds the previous, current and next period's keys: an assertion signed just before a
//! rotation still verifies, and apps can fetch the next key before it is used.
//!
//! Cost: a signature costs tens of µs, so a signed assertion is cached per (user, roles,
//! audience) in a bounded, sharded map and handed out again while more than half its lifetime
//! is left. With the feature off nothing here runs (`AppState::assertion` is `None`).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::assertion::{self as core, AssertionClaims, KEY_LABEL};
use portcullis_core::config::{Config, Secret};
use portcullis_core::jose::{Jwk, jwk_thumbprint_sha256};
use portcullis_core::session::keys::derive_secret_bytes;
use portcullis_store::User;

use crate::auth::Authed;
use crate::error::WebError;
use crate::state::AppState;

/// Where the public keys are served.
pub const JWKS_PATH: &str = "/.portcullis/jwks.json";

/// The order `n` of the P-256 group, big-endian (SEC 2 §2.4.2). A private scalar must be in
/// `[1, n-1]`.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Derivation attempts per period. A 32-byte HKDF output is out of range with probability
/// about 2^-32, so a second attempt is already never needed in practice.
const MAX_ATTEMPTS: u32 = 8;

/// Cache shape: 16 shards of at most 1024 entries (16k people signed in at once on one
/// replica before entries are dropped early; dropping only costs a new signature).
const SHARDS: usize = 16;
const SHARD_CAP: usize = 1024;

/// Why an assertion could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("no P-256 signing key could be derived for period {0}")]
    Derive(i64),
    #[error("signing the assertion failed")]
    Sign,
    #[error(transparent)]
    Claims(#[from] core::AssertionError),
}

/// One period's key pair and its public JWK.
struct PeriodKey {
    period: i64,
    kid: String,
    pair: EcdsaKeyPair,
    jwk: serde_json::Value,
}

/// A private scalar for `period`: HKDF output under `label`, with a counter for the (never
/// seen) case of zero or a value not below the group order. Deterministic per secret.
fn scalar(secret: &str, label: &[u8], period: i64) -> Option<[u8; 32]> {
    let p = period.to_be_bytes();
    (0..MAX_ATTEMPTS).find_map(|counter| {
        let c = counter.to_be_bytes();
        let d = derive_secret_bytes(secret, &[label, &p, &c]);
        // Byte arrays compare lexicographically, i.e. as big-endian numbers.
        (d != [0u8; 32] && d < P256_ORDER).then_some(d)
    })
}

impl PeriodKey {
    fn derive(secret: &str, label: &[u8], period: i64) -> Result<PeriodKey, AssertionError> {
        let fail = || AssertionError::Derive(period);
        let d = scalar(secret, label, period).ok_or_else(fail)?;
        let public = agreement::PrivateKey::from_private_key(&ECDH_P256, &d)
            .map_err(|_| fail())?
            .compute_public_key()
            .map_err(|_| fail())?;
        let point = public.as_ref();
        // Uncompressed SEC1 point: 0x04 || x || y.
        let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
            return Err(fail());
        };
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &d,
            point,
        )
        .map_err(|_| fail())?;
        let (x, y) = (URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y));
        let base = serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y});
        // kid: the RFC 7638 thumbprint, unique per key whatever the deployment.
        let kid = Jwk::parse(&base)
            .map(|j| jwk_thumbprint_sha256(&j))
            .map_err(|_| fail())?;
        let jwk = serde_json::json!({
            "kty": "EC", "crv": "P-256", "x": x, "y": y,
            "use": "sig", "alg": core::ALG, "kid": kid,
        });
        Ok(PeriodKey {
            period,
            kid,
            pair,
            jwk,
        })
    }
}

/// The keys of one period: previous, current, next, and the JWKS body publishing them.
struct KeyRing {
    period: i64,
    keys: [Arc<PeriodKey>; 3],
    /// During a signing-secret rotation (`JWT_SIGNING_SECRET_PREVIOUS`), the previous
    /// secret's keys of the same three periods: published, never used to sign, so replicas
    /// still on the old secret (a rolling update) keep producing verifiable assertions.
    retired: Vec<Arc<PeriodKey>>,
    jwks: bytes::Bytes,
}

impl KeyRing {
    fn current(&self) -> &PeriodKey {
        &self.keys[1]
    }
}

/// One cached assertion and what it was made from.
struct Entry {
    user: Arc<User>,
    roles: Vec<String>,
    audience: Box<str>,
    iat: i64,
    exp: i64,
    value: HeaderValue,
}

impl Entry {
    fn matches(&self, user: &Arc<User>, roles: &[String], audience: &str) -> bool {
        (Arc::ptr_eq(&self.user, user)
            || (self.user.id == user.id && self.user.profile == user.profile))
            && *self.audience == *audience
            && self.roles == roles
    }
}

/// Signed assertions by (user id, audience), each checked against its full inputs on a hit.
struct Cache {
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<u64, Entry>>>,
}

impl Cache {
    fn new() -> Cache {
        Cache {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn key(&self, user_id: &str, audience: &str) -> u64 {
        let mut h = self.hasher.build_hasher();
        user_id.hash(&mut h);
        audience.hash(&mut h);
        h.finish()
    }

    fn shard(&self, key: u64) -> Option<&Mutex<HashMap<u64, Entry>>> {
        self.shards.get((key as usize) % SHARDS)
    }

    fn get(
        &self,
        user: &Arc<User>,
        roles: &[String],
        audience: &str,
        now: i64,
    ) -> Option<HeaderValue> {
        let key = self.key(&user.id, audience);
        // A poisoned shard only means a panic elsewhere: treated as a miss.
        let shard = self.shard(key)?.lock().ok()?;
        let e = shard.get(&key)?;
        (e.matches(user, roles, audience) && core::reusable(e.iat, e.exp, now))
            .then(|| e.value.clone())
    }

    fn put(&self, entry: Entry, now: i64) {
        let key = self.key(&entry.user.id, &entry.audience);
        let Some(Ok(mut shard)) = self.shard(key).map(|s| s.lock()) else {
            return;
        };
        if shard.len() >= SHARD_CAP && !shard.contains_key(&key) {
            // Never unbounded: drop what can no longer be handed out, and if everything still
            // can, start the shard afresh (a miss only costs a signature).
            shard.retain(|_, e| core::reusable(e.iat, e.exp, now));
            if shard.len() >= SHARD_CAP {
                shard.clear();
            }
        }
        shard.insert(key, entry);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

/// The assertion signer of one gateway (`AppState::assertion`, `None` when off).
pub struct Assertions {
    header: HeaderName,
    issuer: String,
    /// `PORTCULLIS_ASSERTION_AUDIENCE`, overriding the others.
    audience: Option<Box<str>>,
    /// The upstream's origin, the audience of proxied requests.
    upstream_audience: Option<Box<str>>,
    lifetime: i64,
    rotation: i64,
    secret: Secret,
    /// `JWT_SIGNING_SECRET_PREVIOUS`: its keys are published too (verification only).
    previous: Option<Secret>,
    label: &'static [u8],
    ring: ArcSwap<KeyRing>,
    cache: Cache,
}

impl std::fmt::Debug for Assertions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertions")
            .field("header", &self.header)
            .field("lifetime", &self.lifetime)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl Assertions {
    /// The signer for `config`, with the keys of `now`'s period derived; `None` when the
    /// feature is off (or the configured name is somehow not a header name).
    pub fn new(config: &Config, now: i64) -> Result<Option<Assertions>, AssertionError> {
        let s = &config.assertion;
        let Some(header) = s
            .header
            .as_deref()
            .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok())
        else {
            return Ok(None);
        };
        Self::build(
            header,
            config.public_origin(),
            s.audience.as_deref(),
            config.upstream.as_ref(),
            (s.lifetime, s.rotation),
            (
                config.jwt_signing_secret.clone(),
                config.previous_jwt_signing_secret.clone(),
            ),
            KEY_LABEL,
            now,
        )
        .map(Some)
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        header: HeaderName,
        issuer: String,
        audience: Option<&str>,
        upstream: Option<&url::Url>,
        (lifetime, rotation): (i64, i64),
        (secret, previous): (Secret, Option<Secret>),
        label: &'static [u8],
        now: i64,
    ) -> Result<Assertions, AssertionError> {
        let period = core::period(now, rotation);
        let previous_secret = previous.as_ref().map(Secret::expose);
        let ring = ring(secret.expose(), previous_secret, label, period, None)?;
        Ok(Assertions {
            header,
            issuer,
            audience: audience.map(Into::into),
            upstream_audience: upstream.map(|u| u.origin().ascii_serialization().into()),
            lifetime,
            rotation,
            secret,
            previous,
            label,
            ring: ArcSwap::from_pointee(ring),
            cache: Cache::new(),
        })
    }

    /// The header the assertion travels in.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// The keys of `now`'s period; derived here only when the period changed.
    fn ring(&self, now: i64) -> Result<Arc<KeyRing>, AssertionError> {
        let current = self.ring.load_full();
        let period = core::period(now, self.rotation);
        if current.period == period {
            return Ok(current);
        }
        // Two requests at the boundary may both derive: the result is the same, and this
        // happens once per period.
        let next = Arc::new(ring(
            self.secret.expose(),
            self.previous.as_ref().map(Secret::expose),
            self.label,
            period,
            Some(&current),
        )?);
        tracing::info!(event = "assertion.rotated", period, kid = %next.current().kid, "identity assertion signing key rotated");
        self.ring.store(next.clone());
        Ok(next)
    }

    /// The assertion for `user` with `roles` towards `audience` at `now`: the cached one
    /// while it has more than half its lifetime left, else a freshly signed one.
    pub fn token(
        &self,
        user: &Arc<User>,
        roles: &[String],
        audience: &str,
        now: i64,
    ) -> Result<HeaderValue, AssertionError> {
        if let Some(v) = self.cache.get(user, roles, audience, now) {
            return Ok(v);
        }
        let ring = self.ring(now)?;
        let key = ring.current();
        let claims = AssertionClaims::new(
            &self.issuer,
            audience,
            &user.profile,
            roles,
            now,
            self.lifetime,
        );
        let input = core::signing_input(&key.kid, &claims)?;
        let sig = key
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .map_err(|_| AssertionError::Sign)?;
        let jws = core::compact(input, sig.as_ref());
        // base64url and dots only: always a valid header value.
        let value = HeaderValue::try_from(jws).map_err(|_| AssertionError::Sign)?;
        self.cache.put(
            Entry {
                user: user.clone(),
                roles: roles.to_vec(),
                audience: audience.into(),
                iat: claims.iat,
                exp: claims.exp,
                value: value.clone(),
            },
            now,
        );
        Ok(value)
    }

    /// The audience of a proxied request: the configured one, else the upstream's origin.
    fn proxy_audience(&self) -> Option<&str> {
        self.audience
            .as_deref()
            .or(self.upstream_audience.as_deref())
    }

    /// The audience of a forward-auth answer: the configured one, else the origin of the
    /// original request as the (trusted) proxy states it in `X-Forwarded-Proto`/`-Host`, else
    /// Portcullis's own origin. Not `Host`: in a proxy's sub-request it names Portcullis's
    /// upstream (nginx: the `upstream` block), and forward-auth deployments usually serve
    /// Portcullis on the app's own host. Believable because forward-auth answers trusted
    /// proxies only (R-HD-6); the value is a claim, never used to build a URL (R-CFG-6).
    fn forward_auth_audience(&self, h: &HeaderMap) -> String {
        if let Some(a) = &self.audience {
            return a.to_string();
        }
        let first = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let proto = first("x-forwarded-proto")
            .filter(|p| p.eq_ignore_ascii_case("http") || p.eq_ignore_ascii_case("https"));
        let own = url::Url::parse(&self.issuer).ok();
        let proto = proto
            .map(str::to_ascii_lowercase)
            .or_else(|| own.as_ref().map(|u| u.scheme().to_string()))
            .unwrap_or_else(|| "https".into());
        let host = first("x-forwarded-host");
        // Only a bare authority: anything else (a path, userinfo) falls back to our origin.
        let origin = host
            .filter(|h| !h.contains(['/', '@', '?', '#', '\\']))
            .and_then(|h| url::Url::parse(&format!("{proto}://{h}")).ok())
            .filter(|u| u.host().is_some())
            .map(|u| u.origin().ascii_serialization());
        origin.unwrap_or_else(|| self.issuer.clone())
    }
}

/// Build the ring of `period` (and the previous secret's keys, if any), reusing keys of
/// `old` that are still in it.
fn ring(
    secret: &str,
    previous: Option<&str>,
    label: &[u8],
    period: i64,
    old: Option<&KeyRing>,
) -> Result<KeyRing, AssertionError> {
    let periods = [period.saturating_sub(1), period, period.saturating_add(1)];
    let get = |secret: &str, p: i64, kept: Option<&[Arc<PeriodKey>]>| {
        if let Some(k) = kept.and_then(|ks| ks.iter().find(|k| k.period == p)) {
            return Ok(k.clone());
        }
        PeriodKey::derive(secret, label, p).map(Arc::new)
    };
    let [a, b, c] = periods;
    let kept = old.map(|o| &o.keys[..]);
    let keys = [
        get(secret, a, kept)?,
        get(secret, b, kept)?,
        get(secret, c, kept)?,
    ];
    let mut retired = Vec::new();
    if let Some(previous) = previous {
        let kept = old.map(|o| &o.retired[..]);
        for p in periods {
            retired.push(get(previous, p, kept)?);
        }
    }
    let body = serde_json::json!({
        "keys": keys.iter().chain(&retired).map(|k| &k.jwk).collect::<Vec<_>>(),
    });
    let jwks = serde_json::to_vec(&body).map_err(core::AssertionError::from)?;
    Ok(KeyRing {
        period,
        keys,
        retired,
        jwks: jwks.into(),
    })
}

/// Put the assertion on a proxied, signed-in request (after the header rules, which removed
/// any client copy). No work at all when the feature is off.
pub fn attach(
    state: &AppState,
    authed: Option<&Authed>,
    h: &mut HeaderMap,
) -> Result<(), WebError> {
    let (Some(asr), Some(a)) = (&state.assertion, authed) else {
        return Ok(());
    };
    let Some(audience) = asr.proxy_audience() else {
        return Ok(());
    };
    let roles = a.roles.as_deref().unwrap_or_default();
    let v = asr
        .token(&a.user, roles, audience, state.now())
        .map_err(internal)?;
    h.insert(asr.header.clone(), v);
    Ok(())
}

/// Put the assertion on a forward-auth answer, for the proxy to copy upstream.
pub fn attach_forward_auth(
    state: &AppState,
    a: &Authed,
    request: &HeaderMap,
    response: &mut HeaderMap,
) -> Result<(), WebError> {
    let Some(asr) = &state.assertion else {
        return Ok(());
    };
    let audience = asr.forward_auth_audience(request);
    let roles = a.roles.as_deref().unwrap_or_default();
    let v = asr
        .token(&a.user, roles, &audience, state.now())
        .map_err(internal)?;
    response.insert(asr.header.clone(), v);
    Ok(())
}

/// R-HD-7: a request whose assertion cannot be made is refused (500), never passed on without
/// it.
fn internal(e: AssertionError) -> WebError {
    WebError::Internal(e.to_string())
}

/// `GET /.portcullis/jwks.json`: the assertion keys (previous, current, next period). 404
/// when assertions are off, as for any unknown file under `/.portcullis/`.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let Some(asr) = &state.assertion else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let ring = match asr.ring(state.now()) {
        Ok(r) => r,
        Err(e) => return internal(e).into_response(),
    };
    let mut resp = (StatusCode::OK, ring.jwks.clone()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // A quarter period: a cached set always still holds the key in use and the next one.
    if let Ok(v) = HeaderValue::try_from(format!("public, max-age={}", asr.rotation / 4)) {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use portcullis_core::claims::MappedUser;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn signer(label: &'static [u8], now: i64) -> Assertions {
        Assertions::build(
            HeaderName::from_static("x-portcullis-assertion"),
            "https://gw.example".into(),
            None,
            Some(&url::Url::parse("http://app:8080/base/").unwrap()),
            (60, 3600),
            (Secret::new(SECRET), None),
            label,
            now,
        )
        .unwrap()
    }

    fn user(id: &str) -> Arc<User> {
        Arc::new(User {
            id: id.into(),
            profile: MappedUser {
                issuer: "https://idp".into(),
                subject: format!("sub-{id}"),
                user_id: id.into(),
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
        })
    }

    fn public_point(k: &PeriodKey) -> Vec<u8> {
        let b = |n: &str| URL_SAFE_NO_PAD.decode(k.jwk[n].as_str().unwrap()).unwrap();
        [vec![4u8], b("x"), b("y")].concat()
    }

    /// R-CFG-1 (HKDF key separation): same secret, label and period give the same key (every
    /// replica); another label, period or secret another key.
    #[test]
    fn r_cfg_1_key_derivation_is_deterministic_and_separated() {
        let a = PeriodKey::derive(SECRET, KEY_LABEL, 7).unwrap();
        let b = PeriodKey::derive(SECRET, KEY_LABEL, 7).unwrap();
        assert_eq!(a.jwk, b.jwk);
        assert_eq!(a.kid, b.kid);
        assert_eq!(a.kid.len(), 43);
        for other in [
            PeriodKey::derive(SECRET, b"another-label", 7).unwrap(),
            PeriodKey::derive(SECRET, KEY_LABEL, 8).unwrap(),
            PeriodKey::derive("0123456789abcdef0123456789abcdeX", KEY_LABEL, 7).unwrap(),
        ] {
            assert_ne!(a.jwk["x"], other.jwk["x"]);
            assert_ne!(a.kid, other.kid);
        }
        assert_eq!(a.jwk["crv"], "P-256");
        assert_eq!(a.jwk["use"], "sig");
        assert_eq!(a.jwk["alg"], "ES256");
    }

    /// A scalar is always in [1, n-1], and the key pair signs what its published point
    /// verifies.
    #[test]
    fn derived_keys_sign_and_verify() {
        for p in 0..20 {
            let d = scalar(SECRET, KEY_LABEL, p).unwrap();
            assert!(d != [0u8; 32] && d < P256_ORDER);
        }
        let k = PeriodKey::derive(SECRET, KEY_LABEL, 1).unwrap();
        let sig = k.pair.sign(&SystemRandom::new(), b"msg").unwrap();
        assert_eq!(sig.as_ref().len(), 64);
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_point(&k))
            .verify(b"msg", sig.as_ref())
            .unwrap();
    }

    /// The ring publishes previous, current and next; a new period reuses what it can.
    #[test]
    fn ring_rotates_with_the_period() {
        let s = signer(KEY_LABEL, 3600 * 10 + 5);
        let r10 = s.ring(3600 * 10 + 100).unwrap();
        assert_eq!(r10.period, 10);
        assert_eq!(r10.keys.each_ref().map(|k| k.period), [9, 10, 11]);
        let r11 = s.ring(3600 * 11).unwrap();
        assert_eq!(r11.keys.each_ref().map(|k| k.period), [10, 11, 12]);
        assert!(Arc::ptr_eq(&r10.keys[1], &r11.keys[0]));
        assert!(Arc::ptr_eq(&r10.keys[2], &r11.keys[1]));
        let body: serde_json::Value = serde_json::from_slice(&r11.jwks).unwrap();
        let kids: Vec<&str> = body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, r11.keys.each_ref().map(|k| k.kid.as_str()));
    }

    /// With a previous secret, its keys are published after the current ones, never used to
    /// sign; a replica still on the old secret signs with exactly those.
    #[test]
    fn previous_secret_keys_are_published_not_used() {
        let t = 3600 * 7 + 10;
        let old = signer(KEY_LABEL, t);
        let new = Assertions::build(
            HeaderName::from_static("x-portcullis-assertion"),
            "https://gw.example".into(),
            None,
            None,
            (60, 3600),
            (
                Secret::new("another-secret-0123456789abcdefghij"),
                Some(Secret::new(SECRET)),
            ),
            KEY_LABEL,
            t,
        )
        .unwrap();
        let (ro, rn) = (old.ring(t).unwrap(), new.ring(t).unwrap());
        let kids = |r: &KeyRing| -> Vec<String> {
            let body: serde_json::Value = serde_json::from_slice(&r.jwks).unwrap();
            body["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k["kid"].as_str().unwrap().to_string())
                .collect()
        };
        let (ko, kn) = (kids(&ro), kids(&rn));
        assert_eq!(kn.len(), 6);
        assert_eq!(kn[3..], ko[..], "the old secret's keys follow the new ones");
        assert_ne!(
            rn.current().kid,
            ro.current().kid,
            "signing uses the new secret"
        );
        // Rotating the period keeps the retired keys in step.
        let rn2 = new.ring(t + 3600).unwrap();
        assert_eq!(rn2.retired.len(), 3);
        assert!(Arc::ptr_eq(&rn.retired[1], &rn2.retired[0]));
        assert_eq!(kids(&rn2)[3..], kids(&old.ring(t + 3600).unwrap())[..]);
    }

    /// Reused while more than half the lifetime is left; another user, audience or role set
    /// gets its own.
    #[test]
    fn cache_reuses_within_half_the_lifetime() {
        let t = 3600 * 5;
        let s = signer(KEY_LABEL, t);
        let alice = user("alice");
        let roles = vec!["admin".to_string()];
        let a1 = s.token(&alice, &roles, "http://app:8080", t).unwrap();
        assert_eq!(
            s.token(&alice, &roles, "http://app:8080", t + 29).unwrap(),
            a1
        );
        let a2 = s.token(&alice, &roles, "http://app:8080", t + 30).unwrap();
        assert_ne!(a2, a1);
        assert_ne!(s.token(&alice, &[], "http://app:8080", t + 30).unwrap(), a2);
        assert_ne!(s.token(&alice, &roles, "http://other", t + 30).unwrap(), a2);
        let bob = user("bob");
        assert_ne!(
            s.token(&bob, &roles, "http://app:8080", t + 30).unwrap(),
            a2
        );
        // Same id, another profile (e.g. a changed email): not the cached one.
        let mut changed = (*alice).clone();
        changed.profile.email = Some("new@example.com".into());
        let changed = Arc::new(changed);
        let c = s.token(&changed, &[], "http://app:8080", t + 31).unwrap();
        assert_ne!(c, a2);
    }

    /// The cache never grows beyond its cap.
    #[test]
    fn cache_is_bounded() {
        let t = 3600 * 5;
        let s = signer(KEY_LABEL, t);
        for i in 0..(SHARDS * SHARD_CAP + 500) {
            s.token(&user(&format!("u{i}")), &[], "http://app", t)
                .unwrap();
        }
        assert!(s.cache.len() <= SHARDS * SHARD_CAP, "{}", s.cache.len());
    }

    /// The upstream's origin is the proxy audience; forward-auth takes the original
    /// request's origin from the proxy's headers, a configured audience overrides both.
    #[test]
    fn audiences() {
        let s = signer(KEY_LABEL, 0);
        assert_eq!(s.proxy_audience(), Some("http://app:8080"));
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        let cases = [
            (
                h(&[
                    ("x-forwarded-proto", "https"),
                    ("x-forwarded-host", "App.Example.com:443"),
                ]),
                "https://app.example.com",
            ),
            (
                h(&[("x-forwarded-host", "app.example.com:8443")]),
                "https://app.example.com:8443",
            ),
            (h(&[("host", "portcullis")]), "https://gw.example"),
            (
                h(&[
                    ("x-forwarded-proto", "http"),
                    ("x-forwarded-host", "a.example, b.example"),
                ]),
                "http://a.example",
            ),
            (h(&[("x-forwarded-host", "evil@x/y")]), "https://gw.example"),
            (
                h(&[
                    ("x-forwarded-proto", "gopher"),
                    ("x-forwarded-host", "a.example"),
                ]),
                "https://a.example",
            ),
            (h(&[]), "https://gw.example"),
        ];
        for (headers, want) in cases {
            assert_eq!(s.forward_auth_audience(&headers), want, "{headers:?}");
        }
        let mut o = signer(KEY_LABEL, 0);
        o.audience = Some("urn:app".into());
        assert_eq!(o.proxy_audience(), Some("urn:app"));
        assert_eq!(
            o.forward_auth_audience(&h(&[("host", "a.example")])),
            "urn:app"
        );
    }
}
