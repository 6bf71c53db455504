//! Request ids: every request gets one, in `X-Request-Id` towards the upstream and in the
//! response, and as the `request_id` field of the `request` span that all of the request's
//! log lines carry.
//!
//! By default the id is always Portcullis's own: a client-sent `X-Request-Id` is replaced, so
//! nobody can plant an id that makes their request look like another one in the logs or in
//! the app's. With `PORTCULLIS_TRUST_REQUEST_ID=true` (a load balancer in front that sets
//! one) a single, well-formed client id — 1 to [`MAX_REQUEST_ID_LEN`] characters of
//! `A-Z a-z 0-9 - _ . :` — is kept; anything else is still replaced.
//!
//! A fresh id is 32 hex digits: a random 64-bit prefix chosen at start-up (distinct per
//! replica) and a 64-bit counter. No random number per request, and unique across restarts
//! and replicas with overwhelming probability.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_core::config::MAX_REQUEST_ID_LEN;

/// `X-Request-Id`.
pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Makes the ids of one gateway.
#[derive(Debug)]
pub struct IdSource {
    prefix: u64,
    counter: AtomicU64,
    trust_client: bool,
}

impl IdSource {
    pub fn new(trust_client: bool) -> IdSource {
        IdSource {
            prefix: uuid::Uuid::new_v4().as_u64_pair().0,
            counter: AtomicU64::new(0),
            trust_client,
        }
    }

    /// The id for a request with these headers.
    pub fn id_for(&self, headers: &HeaderMap) -> HeaderValue {
        if self.trust_client {
            let mut sent = headers.get_all(&HEADER).iter();
            if let (Some(v), None) = (sent.next(), sent.next())
                && well_formed(v.as_bytes())
            {
                return v.clone();
            }
        }
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Written by hand, not with `format!`: this runs on every request.
        let mut id = [0u8; 32];
        for (i, d) in id.iter_mut().enumerate() {
            let word = if i < 16 { self.prefix } else { n };
            let nibble = (word >> (4 * (15 - i % 16))) & 0xf;
            *d = b"0123456789abcdef"[nibble as usize];
        }
        // 32 hex digits are always a valid header value; the fallback is never taken.
        HeaderValue::from_bytes(&id).unwrap_or(HeaderValue::from_static("0"))
    }
}

/// 1 to [`MAX_REQUEST_ID_LEN`] characters of `A-Z a-z 0-9 - _ . :`: nothing that could
/// split a log line, a header or a CSV cell.
pub fn well_formed(v: &[u8]) -> bool {
    !v.is_empty()
        && v.len() <= MAX_REQUEST_ID_LEN
        && v.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(HEADER, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn fresh_ids_are_distinct_and_32_hex_digits() {
        let s = IdSource::new(false);
        let a = s.id_for(&HeaderMap::new());
        let b = s.id_for(&HeaderMap::new());
        assert_ne!(a, b);
        for v in [&a, &b] {
            assert_eq!(v.len(), 32);
            assert!(v.as_bytes().iter().all(u8::is_ascii_hexdigit));
        }
        // The replica's prefix, then the counter, in lower-case hex.
        let want = |n: u64| format!("{:016x}{n:016x}", s.prefix);
        assert_eq!(a.to_str().unwrap(), want(0));
        assert_eq!(b.to_str().unwrap(), want(1));
        s.counter.store(0xfedc_ba98_7654_3210, Ordering::Relaxed);
        assert_eq!(
            s.id_for(&HeaderMap::new()).to_str().unwrap(),
            want(0xfedc_ba98_7654_3210)
        );
    }

    #[test]
    fn client_ids_are_ignored_unless_trusted() {
        let sent = headers(&["lb-1234.abc"]);
        assert_ne!(IdSource::new(false).id_for(&sent), "lb-1234.abc");
        assert_eq!(IdSource::new(true).id_for(&sent), "lb-1234.abc");
    }

    #[test]
    fn malformed_or_repeated_client_ids_are_replaced_even_when_trusted() {
        let s = IdSource::new(true);
        let long: &'static str = Box::leak("a".repeat(MAX_REQUEST_ID_LEN + 1).into_boxed_str());
        for sent in [
            headers(&["has space"]),
            headers(&["a/b"]),
            headers(&["x\"y"]),
            headers(&[long]),
            headers(&[""]),
            headers(&["one", "two"]),
        ] {
            let id = s.id_for(&sent);
            assert_eq!(id.len(), 32, "{sent:?}");
        }
        assert!(well_formed(&[b'a'; MAX_REQUEST_ID_LEN]));
    }
}
