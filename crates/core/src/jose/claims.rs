//! JWT claim checks shared by every token kind (RFC 7519 §4.1; R-IDT-8..15, R-UI-2, R-BCL,
//! R-SJ-2).
//!
//! They report a neutral [`ClaimError`]; each token kind maps it to its own error type
//! (`IdTokenError`, `UserInfoError`, `SessionError`, …) so the caller's messages stay in its
//! own terms while the rules stay in one place.

use serde_json::{Map, Number, Value};

/// R-IDT-11..13: clock-skew leeway for IdP-issued tokens.
pub const CLOCK_LEEWAY_SECS: i64 = 60;
/// R-IDT-15: maximum `sub` length (Core §2).
pub const SUB_MAX_LEN: usize = 255;
/// R-IDT-11: NumericDate values must lie in [0, 2^53].
pub const NUMERIC_DATE_MAX: u64 = 1 << 53;

/// Why a claim was refused. Messages name the claim or rule, never its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    #[error("claim {claim} is missing")]
    Missing { claim: &'static str },
    #[error("claim {claim} has the wrong JSON type")]
    ClaimType { claim: &'static str },
    #[error("claim {claim} is out of range")]
    OutOfRange { claim: &'static str },
    #[error("issuer mismatch")]
    Issuer,
    #[error("audience not accepted")]
    Audience,
    #[error("azp is not this client")]
    Azp,
    #[error("token expired")]
    Expired,
    #[error("iat outside the accepted window")]
    IssuedAt,
    #[error("not yet valid (nbf)")]
    NotYetValid,
    #[error("sub is not 1-255 printable ASCII characters")]
    Subject,
}

/// A required string claim: absent → `Missing`, any other JSON type → `ClaimType`.
pub fn required_str<'c>(
    c: &'c Map<String, Value>,
    claim: &'static str,
) -> Result<&'c str, ClaimError> {
    optional_str(c, claim)?.ok_or(ClaimError::Missing { claim })
}

/// An optional string claim; present with another JSON type → `ClaimType`.
pub fn optional_str<'c>(
    c: &'c Map<String, Value>,
    claim: &'static str,
) -> Result<Option<&'c str>, ClaimError> {
    match c.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ClaimError::ClaimType { claim }),
    }
}

/// R-IDT-8: `iss` byte-for-byte equal to the expected issuer (no normalisation, so a
/// trailing-slash difference is a mismatch).
pub fn check_issuer(c: &Map<String, Value>, issuer: &str) -> Result<String, ClaimError> {
    let iss = required_str(c, "iss")?;
    if iss.as_bytes() == issuer.as_bytes() {
        Ok(iss.to_owned())
    } else {
        Err(ClaimError::Issuer)
    }
}

/// R-IDT-9: `aud` is a string or an array of strings that contains `client_id`; every other
/// member must be a configured trusted audience.
pub fn check_audience(
    c: &Map<String, Value>,
    client_id: &str,
    extra: &[String],
) -> Result<(), ClaimError> {
    check_audience_as(c, client_id, None, extra)
}

/// [`check_audience`] where the client is also known at the issuer by `alias` (ADFS names a
/// client `microsoft:identityserver:<client-id>`): either value counts as the client's own
/// audience (OIDC Core 3.1.3.7 step 3: the client must be an audience). An `extra` audience
/// alone still does not.
pub fn check_audience_as(
    c: &Map<String, Value>,
    client_id: &str,
    alias: Option<&str>,
    extra: &[String],
) -> Result<(), ClaimError> {
    const CLAIM: &str = "aud";
    let is_client = |a: &str| a == client_id || alias == Some(a);
    match c.get(CLAIM) {
        None => Err(ClaimError::Missing { claim: CLAIM }),
        Some(Value::String(a)) if is_client(a) => Ok(()),
        Some(Value::String(_)) => Err(ClaimError::Audience),
        Some(Value::Array(items)) => check_audience_array(items, &is_client, extra),
        Some(_) => Err(ClaimError::ClaimType { claim: CLAIM }),
    }
}

fn check_audience_array(
    items: &[Value],
    is_client: &dyn Fn(&str) -> bool,
    extra: &[String],
) -> Result<(), ClaimError> {
    let mut has_client = false;
    for item in items {
        let a = item
            .as_str()
            .ok_or(ClaimError::ClaimType { claim: "aud" })?;
        if is_client(a) {
            has_client = true;
        } else if !extra.iter().any(|e| e == a) {
            return Err(ClaimError::Audience);
        }
    }
    if has_client {
        Ok(())
    } else {
        Err(ClaimError::Audience)
    }
}

/// R-IDT-10: `azp`, if present, is our `client_id`.
pub fn check_azp(c: &Map<String, Value>, client_id: &str) -> Result<(), ClaimError> {
    match optional_str(c, "azp")? {
        Some(azp) if azp != client_id => Err(ClaimError::Azp),
        _ => Ok(()),
    }
}

/// R-IDT-11: NumericDate claim. Absent → `None`; present, it MUST be a JSON number in
/// [0, 2^53] (floored). Strings, booleans and null are errors, never "absent"
/// (CVE-2026-25537).
pub fn numeric_date(
    c: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, ClaimError> {
    match c.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => numeric_value(n)
            .map(Some)
            .ok_or(ClaimError::OutOfRange { claim }),
        Some(_) => Err(ClaimError::ClaimType { claim }),
    }
}

/// A required NumericDate claim.
pub fn required_numeric_date(
    c: &Map<String, Value>,
    claim: &'static str,
) -> Result<i64, ClaimError> {
    numeric_date(c, claim)?.ok_or(ClaimError::Missing { claim })
}

/// A required NumericDate that must be a JSON *integer* in [0, 2^53]: the stricter form the
/// gateway uses for its own tokens (R-SJ-2), which never carry fractions. A fraction or any
/// other type is `ClaimType`, a negative or too large integer `OutOfRange`.
pub fn required_integer_date(
    c: &Map<String, Value>,
    claim: &'static str,
) -> Result<i64, ClaimError> {
    let n = match c.get(claim) {
        None => return Err(ClaimError::Missing { claim }),
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n,
        Some(_) => return Err(ClaimError::ClaimType { claim }),
    };
    n.as_u64()
        .filter(|u| *u <= NUMERIC_DATE_MAX)
        .and_then(|u| i64::try_from(u).ok())
        .ok_or(ClaimError::OutOfRange { claim })
}

fn numeric_value(n: &Number) -> Option<i64> {
    if let Some(u) = n.as_u64() {
        return (u <= NUMERIC_DATE_MAX)
            .then(|| i64::try_from(u).ok())
            .flatten();
    }
    if n.is_i64() {
        return None; // negative integer
    }
    let f = n.as_f64()?;
    // `as` is exact here: the range check bounds f to [0, 2^53].
    (0.0..=NUMERIC_DATE_MAX as f64)
        .contains(&f)
        .then(|| f.floor() as i64)
}

/// R-IDT-11: `exp` required; refused when now > exp + leeway.
pub fn check_exp(c: &Map<String, Value>, now: i64) -> Result<i64, ClaimError> {
    let exp = required_numeric_date(c, "exp")?;
    if now > exp.saturating_add(CLOCK_LEEWAY_SECS) {
        return Err(ClaimError::Expired);
    }
    Ok(exp)
}

/// R-IDT-12: `iat` required; refused if more than the leeway in the future or older than
/// `max_age` seconds (600 for ID tokens; R-BCL uses 300).
pub fn check_iat(c: &Map<String, Value>, now: i64, max_age: i64) -> Result<i64, ClaimError> {
    let iat = required_numeric_date(c, "iat")?;
    if iat > now.saturating_add(CLOCK_LEEWAY_SECS) || now.saturating_sub(iat) > max_age {
        return Err(ClaimError::IssuedAt);
    }
    Ok(iat)
}

/// R-IDT-13: `nbf`, if present, must not be more than the leeway in the future.
pub fn check_nbf(c: &Map<String, Value>, now: i64) -> Result<(), ClaimError> {
    match numeric_date(c, "nbf")? {
        Some(nbf) if nbf > now.saturating_add(CLOCK_LEEWAY_SECS) => Err(ClaimError::NotYetValid),
        _ => Ok(()),
    }
}

/// R-IDT-15: `sub` required, 1–255 characters of printable ASCII (0x21–0x7E).
pub fn check_sub(c: &Map<String, Value>) -> Result<String, ClaimError> {
    let sub = required_str(c, "sub")?;
    let ok =
        (1..=SUB_MAX_LEN).contains(&sub.len()) && sub.bytes().all(|b| (0x21..=0x7E).contains(&b));
    if ok {
        Ok(sub.to_owned())
    } else {
        Err(ClaimError::Subject)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// Strings: absent, wrong type, present.
    #[test]
    fn required_and_optional_str() {
        let c = obj(json!({"s": "x", "n": 1, "z": null}));
        assert_eq!(required_str(&c, "s"), Ok("x"));
        assert_eq!(
            required_str(&c, "a"),
            Err(ClaimError::Missing { claim: "a" })
        );
        assert_eq!(
            required_str(&c, "n"),
            Err(ClaimError::ClaimType { claim: "n" })
        );
        assert_eq!(
            optional_str(&c, "z"),
            Err(ClaimError::ClaimType { claim: "z" })
        );
        assert_eq!(optional_str(&c, "a"), Ok(None));
    }

    /// R-IDT-8: byte-for-byte issuer.
    #[test]
    fn r_idt_8_issuer() {
        let c = obj(json!({"iss": "https://i"}));
        assert_eq!(check_issuer(&c, "https://i"), Ok("https://i".to_owned()));
        assert_eq!(check_issuer(&c, "https://i/"), Err(ClaimError::Issuer));
        assert_eq!(
            check_issuer(&obj(json!({})), "https://i"),
            Err(ClaimError::Missing { claim: "iss" })
        );
    }

    /// R-IDT-9/10: audience and azp.
    #[test]
    fn r_idt_9_10_audience_and_azp() {
        let extra = vec!["api".to_owned()];
        let aud = |v: Value| check_audience(&obj(json!({ "aud": v })), "c", &extra);
        // ADFS: the client's alias counts as the client, only when configured.
        let alias =
            |v: Value, al: Option<&str>| check_audience_as(&obj(json!({ "aud": v })), "c", al, &[]);
        assert!(
            alias(
                json!("microsoft:identityserver:c"),
                Some("microsoft:identityserver:c")
            )
            .is_ok()
        );
        assert!(
            alias(
                json!(["microsoft:identityserver:c"]),
                Some("microsoft:identityserver:c")
            )
            .is_ok()
        );
        assert!(
            alias(
                json!(["c", "microsoft:identityserver:c"]),
                Some("microsoft:identityserver:c")
            )
            .is_ok()
        );
        assert_eq!(
            alias(json!("microsoft:identityserver:c"), None),
            Err(ClaimError::Audience)
        );
        assert_eq!(
            alias(
                json!(["microsoft:identityserver:c", "other"]),
                Some("microsoft:identityserver:c")
            ),
            Err(ClaimError::Audience)
        );
        assert_eq!(aud(json!("c")), Ok(()));
        assert_eq!(aud(json!(["c", "api"])), Ok(()));
        assert_eq!(aud(json!("api")), Err(ClaimError::Audience));
        assert_eq!(aud(json!(["c", "x"])), Err(ClaimError::Audience));
        assert_eq!(aud(json!([])), Err(ClaimError::Audience));
        assert_eq!(
            aud(json!(["c", 1])),
            Err(ClaimError::ClaimType { claim: "aud" })
        );
        assert_eq!(aud(json!(1)), Err(ClaimError::ClaimType { claim: "aud" }));
        assert_eq!(
            check_audience(&obj(json!({})), "c", &[]),
            Err(ClaimError::Missing { claim: "aud" })
        );
        assert_eq!(check_azp(&obj(json!({"azp": "c"})), "c"), Ok(()));
        assert_eq!(check_azp(&obj(json!({})), "c"), Ok(()));
        assert_eq!(
            check_azp(&obj(json!({"azp": "d"})), "c"),
            Err(ClaimError::Azp)
        );
    }

    /// R-IDT-11..13: dates, types, ranges and windows.
    #[test]
    fn r_idt_11_13_dates() {
        let c = |v: Value| obj(v);
        assert_eq!(check_exp(&c(json!({"exp": NOW - 60})), NOW), Ok(NOW - 60));
        assert_eq!(
            check_exp(&c(json!({"exp": NOW - 61})), NOW),
            Err(ClaimError::Expired)
        );
        assert_eq!(
            check_exp(&c(json!({"exp": "1"})), NOW),
            Err(ClaimError::ClaimType { claim: "exp" })
        );
        assert_eq!(
            check_exp(&c(json!({"exp": -1})), NOW),
            Err(ClaimError::OutOfRange { claim: "exp" })
        );
        assert_eq!(
            check_exp(&c(json!({})), NOW),
            Err(ClaimError::Missing { claim: "exp" })
        );
        assert_eq!(
            check_iat(&c(json!({"iat": NOW + 61})), NOW, 600),
            Err(ClaimError::IssuedAt)
        );
        assert_eq!(
            check_iat(&c(json!({"iat": NOW - 301})), NOW, 300),
            Err(ClaimError::IssuedAt)
        );
        assert_eq!(check_iat(&c(json!({"iat": NOW})), NOW, 300), Ok(NOW));
        assert_eq!(
            check_nbf(&c(json!({"nbf": NOW + 61})), NOW),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(check_nbf(&c(json!({})), NOW), Ok(()));
        assert_eq!(numeric_date(&c(json!({"d": 1.9})), "d"), Ok(Some(1)));
    }

    /// R-SJ-2: integer-only dates refuse fractions, strings, negatives and > 2^53.
    #[test]
    fn r_sj_2_integer_dates() {
        let d = |v: Value| required_integer_date(&obj(json!({ "d": v })), "d");
        assert_eq!(d(json!(NOW)), Ok(NOW));
        assert_eq!(d(json!(NUMERIC_DATE_MAX)), Ok(1 << 53));
        assert_eq!(d(json!(1.5)), Err(ClaimError::ClaimType { claim: "d" }));
        assert_eq!(d(json!("1")), Err(ClaimError::ClaimType { claim: "d" }));
        assert_eq!(d(json!(null)), Err(ClaimError::ClaimType { claim: "d" }));
        assert_eq!(d(json!(-1)), Err(ClaimError::OutOfRange { claim: "d" }));
        assert_eq!(
            d(json!(NUMERIC_DATE_MAX + 1)),
            Err(ClaimError::OutOfRange { claim: "d" })
        );
        assert_eq!(
            required_integer_date(&obj(json!({})), "d"),
            Err(ClaimError::Missing { claim: "d" })
        );
    }

    /// R-IDT-15: sub shape.
    #[test]
    fn r_idt_15_sub() {
        assert_eq!(check_sub(&obj(json!({"sub": "a"}))), Ok("a".to_owned()));
        for bad in ["", "a b", "é"] {
            assert_eq!(
                check_sub(&obj(json!({ "sub": bad }))),
                Err(ClaimError::Subject)
            );
        }
        assert_eq!(
            check_sub(&obj(json!({"sub": 1}))),
            Err(ClaimError::ClaimType { claim: "sub" })
        );
    }
}
