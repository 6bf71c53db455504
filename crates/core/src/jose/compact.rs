//! Compact JWS parsing: the R-IDT-1 pre-pass (size, shape, encoding, strict JSON).
//!
//! Nothing here trusts the token: it only turns text into a header and claims object that the
//! verifier ([`super::verify_jws`]) and the claim checks then judge.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use super::json::parse_strict_object;
use super::{JoseError, Segment};

/// A parsed (not yet verified) compact JWS.
///
/// `header` and `claims` are public for reading; [`super::verify_jws`] judges `header`, so do
/// not modify it between parsing and verification.
#[derive(Clone)]
pub struct CompactJws {
    /// The JOSE header (strictly parsed: no duplicate members, depth ≤ 32).
    pub header: Map<String, Value>,
    /// The payload as a JSON object (same strictness).
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
    signature_b64: String,
}

impl CompactJws {
    /// `BASE64URL(header) '.' BASE64URL(payload)`, exactly as received (RFC 7515 §5.2).
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The signature segment as received (base64url, unpadded).
    pub fn signature_b64(&self) -> &str {
        &self.signature_b64
    }

    /// A header parameter if it is a JSON string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }
}

/// Debug shows the header and only the claim *names*: claims may carry personal data.
impl fmt::Debug for CompactJws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompactJws")
            .field("header", &self.header)
            .field("claim_names", &self.claims.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Parse a compact JWS (R-IDT-1).
///
/// Refuses: more than `max_len` bytes; anything but three segments (five, i.e. JWE, gets its
/// own error); padding, whitespace or any non-base64url character; header or payload that is
/// not a UTF-8 JSON object, has a duplicate member name at any depth or nests deeper than 32.
pub fn parse_compact(token: &str, max_len: usize) -> Result<CompactJws, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::TooLarge);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [h64, p64, s64] = parts.as_slice() else {
        return Err(if parts.len() == 5 {
            JoseError::Jwe
        } else {
            JoseError::Segments
        });
    };
    let header_bytes = decode_segment(h64, Segment::Header)?;
    let payload_bytes = decode_segment(p64, Segment::Payload)?;
    let signature = decode_segment(s64, Segment::Signature)?;
    let header =
        parse_strict_object(&header_bytes).map_err(|e| JoseError::Json(Segment::Header, e))?;
    let claims =
        parse_strict_object(&payload_bytes).map_err(|e| JoseError::Json(Segment::Payload, e))?;
    Ok(CompactJws {
        header,
        claims,
        signing_input: format!("{h64}.{p64}"),
        signature,
        signature_b64: (*s64).to_owned(),
    })
}

/// Strict base64url: the `URL_SAFE_NO_PAD` engine rejects `=`, whitespace, `+`/`/` and
/// non-canonical trailing bits, so each token has exactly one accepted spelling.
fn decode_segment(seg: &str, which: Segment) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(seg)
        .map_err(|_| JoseError::Base64(which))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::jose::JsonError;
    use crate::jose::test_support::b64;

    const MAX: usize = 64 * 1024;

    fn tok(h: &str, p: &str) -> String {
        format!(
            "{}.{}.{}",
            b64(h.as_bytes()),
            b64(p.as_bytes()),
            b64(b"sig")
        )
    }

    /// R-IDT-1: a well-formed token parses and keeps the signing input verbatim.
    #[test]
    fn r_idt_1_parses_well_formed() {
        let t = tok(r#"{"alg":"RS256"}"#, r#"{"sub":"a"}"#);
        let jws = parse_compact(&t, MAX).unwrap();
        assert_eq!(jws.header_str("alg"), Some("RS256"));
        assert_eq!(jws.claims["sub"], "a");
        assert_eq!(jws.signature(), b"sig");
        assert_eq!(jws.signature_b64(), b64(b"sig"));
        assert!(t.as_bytes().starts_with(jws.signing_input()));
        // Debug does not show claim values.
        assert!(!format!("{jws:?}").contains("\"a\""));
    }

    /// R-IDT-1: the size cap is enforced before anything else.
    #[test]
    fn r_idt_1_too_large() {
        let t = tok(
            r#"{"alg":"RS256"}"#,
            &format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX)),
        );
        assert_eq!(parse_compact(&t, MAX).unwrap_err(), JoseError::TooLarge);
        assert_eq!(parse_compact("a.b.c", 4).unwrap_err(), JoseError::TooLarge);
    }

    /// R-IDT-1: exactly three segments; five is JWE; 1, 2, 4, 6 are malformed.
    #[test]
    fn r_idt_1_segment_count() {
        let t = tok(r#"{"alg":"RS256"}"#, "{}");
        assert_eq!(
            parse_compact(&format!("{t}.x"), MAX).unwrap_err(),
            JoseError::Segments
        );
        assert_eq!(
            parse_compact(&format!("{t}.x.y"), MAX).unwrap_err(),
            JoseError::Jwe
        );
        assert_eq!(
            parse_compact(&format!("{t}.x.y.z"), MAX).unwrap_err(),
            JoseError::Segments
        );
        assert_eq!(parse_compact("abc", MAX).unwrap_err(), JoseError::Segments);
        assert_eq!(
            parse_compact("abc.def", MAX).unwrap_err(),
            JoseError::Segments
        );
        assert_eq!(parse_compact("", MAX).unwrap_err(), JoseError::Segments);
    }

    /// R-IDT-1: padding, whitespace and standard-alphabet characters are refused.
    #[test]
    fn r_idt_1_base64_strict() {
        // `{"alg":"RS256"}` is 15 bytes -> 20 chars, no padding needed; use 16 bytes to get '='.
        let h = r#"{"alg":"RS256" }"#;
        let padded = base64::engine::general_purpose::URL_SAFE.encode(h);
        assert!(padded.ends_with('='));
        let p = b64(b"{}");
        let s = b64(b"sig");
        for bad in [
            format!("{padded}.{p}.{s}"),
            format!(" {}.{p}.{s}", b64(h.as_bytes())),
            format!("{}.{p}.{s}\n", b64(h.as_bytes())),
            format!("{}.{p} .{s}", b64(h.as_bytes())),
            format!("{}.{p}.{s}=", b64(h.as_bytes())),
            format!("{}.{p}.a+b/", b64(h.as_bytes())),
        ] {
            assert!(
                matches!(parse_compact(&bad, MAX), Err(JoseError::Base64(_))),
                "{bad:?}"
            );
        }
        // Non-canonical trailing bits: "e30" is "{}", "e31" decodes to the same bytes.
        assert_eq!(
            parse_compact(&format!("{}.e31.{s}", b64(h.as_bytes())), MAX).unwrap_err(),
            JoseError::Base64(Segment::Payload)
        );
    }

    /// R-IDT-1: header and payload must be JSON objects.
    #[test]
    fn r_idt_1_header_payload_must_be_objects() {
        assert_eq!(
            parse_compact(&tok("[]", "{}"), MAX).unwrap_err(),
            JoseError::Json(Segment::Header, JsonError::NotObject)
        );
        assert_eq!(
            parse_compact(&tok(r#"{"alg":"RS256"}"#, "\"x\""), MAX).unwrap_err(),
            JoseError::Json(Segment::Payload, JsonError::NotObject)
        );
        assert_eq!(
            parse_compact(&tok(r#"{"alg":"RS256"}"#, "not json"), MAX).unwrap_err(),
            JoseError::Json(Segment::Payload, JsonError::Invalid)
        );
        assert_eq!(
            parse_compact(&tok("", "{}"), MAX).unwrap_err(),
            JoseError::Json(Segment::Header, JsonError::Invalid)
        );
    }

    /// R-IDT-1: duplicate member names in the header are rejected.
    #[test]
    fn r_idt_1_duplicate_member_in_header() {
        let t = tok(r#"{"alg":"RS256","alg":"none"}"#, "{}");
        assert_eq!(
            parse_compact(&t, MAX).unwrap_err(),
            JoseError::Json(Segment::Header, JsonError::DuplicateMember)
        );
    }

    /// R-IDT-1: duplicate member names in the payload are rejected, nested too.
    #[test]
    fn r_idt_1_duplicate_member_in_payload_nested() {
        for p in [
            r#"{"sub":"alice","sub":"admin"}"#,
            r#"{"sub":"a","x":{"groups":["u"],"groups":["admin"]}}"#,
        ] {
            assert_eq!(
                parse_compact(&tok(r#"{"alg":"RS256"}"#, p), MAX).unwrap_err(),
                JoseError::Json(Segment::Payload, JsonError::DuplicateMember)
            );
        }
    }

    /// R-IDT-1: nesting deeper than 32 is rejected.
    #[test]
    fn r_idt_1_depth_over_32_rejected() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
        assert_eq!(
            parse_compact(&tok(r#"{"alg":"RS256"}"#, &deep), MAX).unwrap_err(),
            JoseError::Json(Segment::Payload, JsonError::TooDeep)
        );
    }

    proptest::proptest! {
        /// R-IDT-1 / R-RS: the parser never panics, whatever the input.
        #[test]
        fn r_idt_1_parse_compact_never_panics(s in "\\PC*") {
            let _ = parse_compact(&s, MAX);
        }

        /// Same, biased towards token-shaped input.
        #[test]
        fn r_idt_1_parse_compact_never_panics_tokenish(s in "[A-Za-z0-9_=+/ .-]{0,200}") {
            let _ = parse_compact(&s, MAX);
        }

        /// Same, with valid base64url segments carrying arbitrary bytes.
        #[test]
        fn r_idt_1_parse_compact_never_panics_b64(
            h in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            p in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let _ = parse_compact(&format!("{}.{}.", b64(&h), b64(&p)), MAX);
        }
    }
}
