//! Browser security settings beyond the session itself: DPoP-bound sessions (seed 000's tier 3,
//! R-DP) and the extra frontend origins allowed to call through CORS (R-CSRF-6).

use super::raw::RawSettings;
use super::validate::Problem;

/// Tier 3: sessions bound to a browser key (RFC 9449).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopSettings {
    /// On by default. Off: sessions carry no `cnf.jkt` and no proof is asked for (an app whose
    /// frontend cannot load the browser client; a stolen cookie pair is then enough).
    pub enabled: bool,
    /// Path prefixes of proxied requests that must carry a proof (default `/api/`). Never `/`:
    /// page navigations cannot carry one. Portcullis's own session API always needs one.
    pub paths: Vec<String>,
    /// Require server nonces (RFC 9449 §8): proofs must echo a recent `DPoP-Nonce`.
    pub nonce: bool,
}

impl Default for DpopSettings {
    fn default() -> Self {
        DpopSettings {
            enabled: true,
            paths: vec!["/api/".to_string()],
            nonce: false,
        }
    }
}

impl DpopSettings {
    /// Whether a proxied request to `path` must carry a proof (when its session is bound).
    pub fn covers(&self, path: &str) -> bool {
        self.enabled && self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// Browser-facing settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserSettings {
    pub dpop: DpopSettings,
    /// Frontend origins besides the public one (e.g. `https://app.example.com`) that may call
    /// through Portcullis with credentials; serialised as `scheme://host[:port]`.
    pub cors_origins: Vec<String>,
    /// Sign-out also ends the IdP session through its `end_session_endpoint` (OpenID
    /// RP-Initiated Logout 1.0) when the IdP offers one. On by default: otherwise Back or a
    /// new visit signs the person straight in again through the IdP's live session.
    pub idp_logout: bool,
}

fn flag(name: &str, v: &Option<String>, default: bool, problems: &mut Vec<Problem>) -> bool {
    match v.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => default,
        Some("true" | "1" | "yes" | "on") => true,
        Some("false" | "0" | "no" | "off") => false,
        Some(other) => {
            problems.push(Problem::new(format!(
                "{name} must be true or false, got `{other}`"
            )));
            default
        }
    }
}

pub(super) fn check(
    raw: &RawSettings,
    insecure: bool,
    problems: &mut Vec<Problem>,
) -> BrowserSettings {
    let d = DpopSettings::default();
    let enabled = flag("PORTCULLIS_DPOP", &raw.dpop, d.enabled, problems);
    let nonce = flag("PORTCULLIS_DPOP_NONCE", &raw.dpop_nonce, d.nonce, problems);
    let paths = match &raw.dpop_paths {
        None => d.paths,
        Some(list) if list.len() == 1 && list[0].eq_ignore_ascii_case("none") => Vec::new(),
        Some(list) => {
            for p in list {
                if !p.starts_with('/') || p.contains(['?', '#', ' ']) {
                    problems.push(Problem::new(format!(
                        "PORTCULLIS_DPOP_PATHS: `{p}` is not a path prefix (it must start with /)"
                    )));
                } else if p == "/" {
                    problems.push(Problem::new(
                        "PORTCULLIS_DPOP_PATHS: `/` would demand proofs on page navigations, which browsers cannot send; list the API prefixes (e.g. /api/)",
                    ));
                }
            }
            list.clone()
        }
    };
    let mut cors_origins = Vec::new();
    for o in raw.cors_origins.iter().flatten() {
        if let Some(origin) = origin(o, insecure, problems)
            && !cors_origins.contains(&origin)
        {
            cors_origins.push(origin);
        }
    }
    BrowserSettings {
        dpop: DpopSettings {
            enabled,
            paths,
            nonce,
        },
        cors_origins,
        idp_logout: flag("PORTCULLIS_IDP_LOGOUT", &raw.idp_logout, true, problems),
    }
}

/// One `PORTCULLIS_CORS_ORIGINS` entry: an exact origin, never a wildcard or a URL with a path.
fn origin(o: &str, insecure: bool, problems: &mut Vec<Problem>) -> Option<String> {
    let mut bad = |why: &str| {
        problems.push(Problem::new(format!(
            "PORTCULLIS_CORS_ORIGINS: `{o}` {why}"
        )));
        None
    };
    if o.contains('*') {
        return bad(
            "is a wildcard; list each frontend origin (credentials are never shared with `*`)",
        );
    }
    let Ok(u) = url::Url::parse(o) else {
        return bad("is not an origin such as https://app.example.com");
    };
    if !matches!(u.scheme(), "https" | "http") || u.host().is_none() {
        return bad("is not an origin such as https://app.example.com");
    }
    if !(u.path() == "/"
        && u.query().is_none()
        && u.fragment().is_none()
        && u.username().is_empty())
        || o.trim_end_matches('/').len() < o.len().saturating_sub(1)
    {
        return bad("has a path; an origin is scheme://host[:port] only");
    }
    if u.scheme() == "http" && !insecure && !super::is_loopback_url(&u) {
        return bad("is plain http; use https (or set OIDC_ALLOW_INSECURE_HTTP for a test setup)");
    }
    Some(u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(f: impl FnOnce(&mut RawSettings)) -> (BrowserSettings, Vec<String>) {
        let mut raw = RawSettings::default();
        f(&mut raw);
        let mut problems = Vec::new();
        let s = check(&raw, false, &mut problems);
        (s, problems.into_iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn defaults_bind_sessions_and_cover_api_paths() {
        let (s, p) = run(|_| {});
        assert!(p.is_empty());
        assert!(s.dpop.enabled && !s.dpop.nonce);
        assert!(s.dpop.covers("/api/reports"));
        assert!(!s.dpop.covers("/reports"));
        assert!(!s.dpop.covers("/apix"));
        assert!(s.cors_origins.is_empty());
    }

    #[test]
    fn dpop_off_covers_nothing() {
        let (s, p) = run(|r| r.dpop = Some("false".into()));
        assert!(p.is_empty());
        assert!(!s.dpop.covers("/api/x"));
    }

    #[test]
    fn dpop_paths_are_prefixes_never_root() {
        let (s, p) = run(|r| r.dpop_paths = Some(vec!["/graphql".into(), "/v1/".into()]));
        assert!(p.is_empty());
        assert!(s.dpop.covers("/graphql") && s.dpop.covers("/v1/x") && !s.dpop.covers("/api/x"));
        let (_, p) = run(|r| r.dpop_paths = Some(vec!["/".into()]));
        assert!(p[0].contains("page navigations"), "{p:?}");
        let (_, p) = run(|r| r.dpop_paths = Some(vec!["api".into()]));
        assert!(p[0].contains("must start with /"), "{p:?}");
        let (s, p) = run(|r| r.dpop_paths = Some(vec!["none".into()]));
        assert!(p.is_empty() && s.dpop.paths.is_empty());
        let (_, p) = run(|r| r.dpop = Some("maybe".into()));
        assert!(
            p[0].contains("PORTCULLIS_DPOP must be true or false"),
            "{p:?}"
        );
    }

    #[test]
    fn r_csrf_6_cors_origins_are_exact_origins() {
        let (s, p) = run(|r| {
            r.cors_origins = Some(vec![
                "https://App.Example.com".into(),
                "https://app.example.com/".into(),
                "http://localhost:5173".into(),
            ])
        });
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            s.cors_origins,
            ["https://app.example.com", "http://localhost:5173"]
        );
        for bad in [
            "*",
            "https://*.example.com",
            "https://app.example.com/path",
            "app.example.com",
            "http://app.example.com",
            "ftp://app.example.com",
            "null",
        ] {
            let (_, p) = run(|r| r.cors_origins = Some(vec![bad.into()]));
            assert_eq!(p.len(), 1, "{bad}: {p:?}");
            assert!(p[0].starts_with("PORTCULLIS_CORS_ORIGINS"), "{p:?}");
        }
    }

    #[test]
    fn yaml_keys_reach_the_settings() {
        let raw = crate::config::parse_file(
            "t.yaml",
            "portcullis:\n  dpop: false\n  dpopPaths: [/v1/, /graphql]\n  dpopNonce: true\n  corsOrigins: [https://app.example.com]\n",
        )
        .unwrap();
        let mut problems = Vec::new();
        let s = check(&raw, false, &mut problems);
        assert!(problems.is_empty());
        assert!(!s.dpop.enabled && s.dpop.nonce);
        assert_eq!(s.dpop.paths, ["/v1/", "/graphql"]);
        assert_eq!(s.cors_origins, ["https://app.example.com"]);
    }
}
