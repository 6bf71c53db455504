//! Cookie names, attributes and parsing (R-CK).
//!
//! Parsed by hand rather than with a jar type: R-CK-1 needs to see a gateway cookie name that
//! appears twice (cookie tossing), which jars silently collapse.

/// Names of the gateway's cookies. With `Secure` available (https, or http on loopback) they
/// carry the `__Host-` prefix; otherwise (insecure flag, non-loopback http) they do not, since
/// browsers refuse `__Host-` cookies without `Secure` (R-CK-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookieNames {
    pub session: &'static str,
    /// R-FP: the fingerprint whose hash the session JWT carries.
    pub fp: &'static str,
    /// R-CSRF: the double-submit token, readable by the page (the vendor's name, which
    /// frontends already read; no prefix in either mode).
    pub csrf: &'static str,
    pub tx: &'static str,
    pub secure: bool,
}

impl CookieNames {
    pub fn new(secure: bool) -> Self {
        if secure {
            CookieNames {
                session: "__Host-session",
                fp: "__Host-fp",
                csrf: "csrf_token",
                tx: "__Host-oidc_tx",
                secure,
            }
        } else {
            CookieNames {
                session: "portcullis_session",
                fp: "portcullis_fp",
                csrf: "csrf_token",
                tx: "portcullis_oidc_tx",
                secure,
            }
        }
    }

    /// Every cookie name the gateway owns (stripped before proxying, R-HD-4).
    pub fn all(&self) -> [&'static str; 4] {
        [self.session, self.fp, self.csrf, self.tx]
    }

    /// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, no Domain; Secure when available.
    pub fn set(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
    }

    /// A cookie the page's scripts may read (not HttpOnly): only the CSRF token.
    pub fn set_readable(&self, name: &str, value: &str, max_age: i64) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{name}={value}; Path=/; Max-Age={max_age}; SameSite=Lax{secure}")
    }

    /// The deletion cookie: same Name/Path/Secure, `Max-Age=0` (R-CK-2).
    pub fn clear(&self, name: &str) -> String {
        self.set(name, "", 0)
    }
}

/// A gateway cookie sent more than once (R-CK-1).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cookie `{0}` was sent more than once")]
pub struct DuplicateCookie(pub String);

/// The gateway cookies found on a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cookies {
    pub session: Option<String>,
    pub fp: Option<String>,
    pub csrf: Option<String>,
    pub tx: Option<String>,
}

impl Cookies {
    /// Parse every `Cookie` header. Only exact gateway names count: unprefixed look-alikes
    /// such as `session` are ignored (R-CK-1).
    pub fn parse<'a>(
        headers: impl Iterator<Item = &'a str>,
        names: &CookieNames,
    ) -> Result<Cookies, DuplicateCookie> {
        let mut out = Cookies::default();
        for header in headers {
            for pair in header.split(';') {
                let Some((k, v)) = pair.split_once('=') else {
                    continue;
                };
                let (k, v) = (k.trim(), v.trim());
                let slot = if k == names.session {
                    &mut out.session
                } else if k == names.fp {
                    &mut out.fp
                } else if k == names.csrf {
                    &mut out.csrf
                } else if k == names.tx {
                    &mut out.tx
                } else {
                    continue;
                };
                if slot.is_some() {
                    return Err(DuplicateCookie(k.to_string()));
                }
                *slot = Some(v.trim_matches('"').to_string());
            }
        }
        Ok(out)
    }

    /// A `Cookie` header value with the gateway's cookies removed (R-HD-4), or `None` if
    /// nothing is left.
    pub fn strip(header: &str, names: &CookieNames) -> Option<String> {
        let kept: Vec<&str> = header
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter(|p| {
                let k = p.split_once('=').map(|(k, _)| k.trim()).unwrap_or(p);
                !names.all().contains(&k)
            })
            .collect();
        (!kept.is_empty()).then(|| kept.join("; "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn r_ck_attributes() {
        let n = CookieNames::new(true);
        assert_eq!(
            n.set(n.session, "v", 1800),
            "__Host-session=v; Path=/; Max-Age=1800; HttpOnly; SameSite=Lax; Secure"
        );
        assert!(n.clear(n.tx).contains("Max-Age=0"));
        let insecure = CookieNames::new(false);
        assert!(!insecure.set(insecure.session, "v", 1).contains("Secure"));
        assert!(!insecure.session.starts_with("__Host-"));
    }

    #[test]
    fn r_ck_1_duplicate_gateway_cookie_rejected_lookalikes_ignored() {
        let n = CookieNames::new(true);
        let c = Cookies::parse(
            ["session=evil; __Host-session=good; other=1"].into_iter(),
            &n,
        )
        .unwrap();
        assert_eq!(c.session.as_deref(), Some("good"));
        assert_eq!(
            Cookies::parse(["__Host-session=a", "__Host-session=b"].into_iter(), &n),
            Err(DuplicateCookie("__Host-session".into()))
        );
        assert!(Cookies::parse(["garbage;;==;=x; ;"].into_iter(), &n).is_ok());
    }

    proptest::proptest! {
        /// R-RS-5: any Cookie header bytes parse without panicking; strip never re-adds ours.
        #[test]
        fn cookie_parsing_never_panics(h in ".{0,256}") {
            let n = CookieNames::new(true);
            let _ = Cookies::parse([h.as_str()].into_iter(), &n);
            if let Some(rest) = Cookies::strip(&h, &n) {
                let again = Cookies::parse([rest.as_str()].into_iter(), &n);
                proptest::prop_assert!(again.is_ok_and(|c| c.session.is_none() && c.fp.is_none() && c.csrf.is_none() && c.tx.is_none()));
            }
        }
    }

    #[test]
    fn r_hd_4_strip_gateway_cookies() {
        let n = CookieNames::new(true);
        assert_eq!(
            Cookies::strip(
                "a=1; __Host-session=x; __Host-fp=z; csrf_token=c; __Host-oidc_tx=y; b=2",
                &n
            )
            .as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(Cookies::strip("__Host-session=x", &n), None);
    }
}
