//! Path policies: which roles may use which path prefixes (and methods) of the upstream.
//!
//! Matching, in order:
//! - The path is read as [`normalize_path`] gives it, plus the other readings an upstream might
//!   act on (see [`super::path`]); each reading is matched both as written and case-folded,
//!   because an upstream that folds case must not offer a way around a policy. The request is
//!   allowed only if every one of these matches allows it: an extra reading can add a denial,
//!   never an allowance.
//! - Per match, the longest prefix wins. A prefix matches at segment boundaries only: `/admin`
//!   (or `/admin/`) matches `/admin` and `/admin/…`, never `/administrator`; `/` matches all.
//! - Among the policies for that prefix, those listing the method (exact, case-sensitive) win
//!   over those without a method list. If the prefix has policies but none applies to the
//!   method (e.g. `get` or `PURGE` where only `GET` is listed) the request is denied: deny by
//!   default where a policy matches. Falling back to a shorter prefix would let a method
//!   choose a weaker policy.
//!   (The proxy already answers methods outside its allowed list, lower-case ones included,
//!   with 405 before authentication; this rule keeps the decision safe on its own.)
//! - Allowed if the user holds any role of the chosen policies. No policy matching at all →
//!   [`Decision::NoPolicy`]: any signed-in user.

use std::collections::BTreeSet;

use super::path::{normalize_path, readings};

/// Why a policy could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("path `{0}` must start with /")]
    NotAbsolute(String),
    #[error("path `{0}` must be a plain path (no query, fragment or control characters)")]
    NotAPath(String),
    #[error("the roles list is empty; name at least one role")]
    NoRoles,
    #[error("the methods list is empty; leave `methods` out to cover every method")]
    NoMethods,
    #[error("method `{0}` is not an HTTP method token")]
    BadMethod(String),
}

/// One policy: requests under `prefix` (with one of `methods`, or any method when `None`) need
/// one of `roles`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    prefix: String,
    methods: Option<Vec<String>>,
    roles: Vec<String>,
    /// The normalized prefix without its trailing `/` (`""` for the root), as written and
    /// case-folded: what paths are compared with.
    key: String,
    folded_key: String,
}

impl Policy {
    /// A policy for `prefix` (normalized like a request path, so `/a//b/./` means `/a/b/`).
    pub fn new(
        prefix: &str,
        methods: Option<Vec<String>>,
        roles: Vec<String>,
    ) -> Result<Policy, PolicyError> {
        if !prefix.starts_with('/') {
            return Err(PolicyError::NotAbsolute(prefix.to_string()));
        }
        if prefix.contains(['?', '#']) {
            return Err(PolicyError::NotAPath(prefix.to_string()));
        }
        let normalized =
            normalize_path(prefix).ok_or_else(|| PolicyError::NotAPath(prefix.to_string()))?;
        if roles.is_empty() {
            return Err(PolicyError::NoRoles);
        }
        if let Some(list) = &methods {
            if list.is_empty() {
                return Err(PolicyError::NoMethods);
            }
            if let Some(bad) = list.iter().find(|m| !crate::config::is_token(m)) {
                return Err(PolicyError::BadMethod(bad.clone()));
            }
        }
        let key = normalized.trim_end_matches('/').to_string();
        let folded_key = fold(&key);
        Ok(Policy {
            prefix: normalized,
            methods,
            roles,
            key,
            folded_key,
        })
    }

    /// The normalized prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The methods it applies to; `None` = every method.
    pub fn methods(&self) -> Option<&[String]> {
        self.methods.as_deref()
    }

    /// The roles that may pass it.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    fn key(&self, folded: bool) -> &str {
        if folded { &self.folded_key } else { &self.key }
    }

    fn lists(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_some_and(|m| m.iter().any(|x| x == method))
    }
}

/// The outcome of [`Policies::decide`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A policy matched and the user holds one of its roles.
    Allow,
    /// No policy covers the path: any signed-in user may pass.
    NoPolicy,
    /// Refused. `needed`: the roles guarding what was asked for, sorted, for the refusal page;
    /// empty when no role could pass (the method is not allowed there).
    Deny { needed: Vec<String> },
}

/// The configured policies. With none, every request is [`Decision::NoPolicy`] (policies are
/// opt-in, like roles).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policies {
    list: Vec<Policy>,
}

/// What one reading of the path, matched one way, says.
enum Verdict {
    Allow,
    NoPolicy,
    Deny(Vec<String>),
}

impl Policies {
    pub fn new(list: Vec<Policy>) -> Self {
        Policies { list }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Policy> {
        self.list.iter()
    }

    /// Every role any policy names, sorted.
    pub fn all_roles(&self) -> Vec<String> {
        let set: BTreeSet<&String> = self.list.iter().flat_map(|p| &p.roles).collect();
        set.into_iter().cloned().collect()
    }

    /// Decide a request from its method and raw request-target path (query allowed; it is
    /// ignored). A path that cannot be judged (not UTF-8 after decoding, control characters)
    /// is denied, naming every policy role.
    pub fn decide(&self, method: &str, raw_path: &str, user_roles: &[String]) -> Decision {
        if self.list.is_empty() {
            return Decision::NoPolicy;
        }
        let Some(paths) = readings(raw_path) else {
            return Decision::Deny {
                needed: self.all_roles(),
            };
        };
        let mut allowed = false;
        let mut denied: Option<BTreeSet<String>> = None;
        for path in &paths {
            let folded_path = fold(path);
            for (p, folded) in [(path.as_str(), false), (folded_path.as_str(), true)] {
                match self.judge(method, p, folded, user_roles) {
                    Verdict::Allow => allowed = true,
                    Verdict::NoPolicy => {}
                    Verdict::Deny(needed) => denied.get_or_insert_default().extend(needed),
                }
            }
        }
        match (denied, allowed) {
            (Some(needed), _) => Decision::Deny {
                needed: needed.into_iter().collect(),
            },
            (None, true) => Decision::Allow,
            (None, false) => Decision::NoPolicy,
        }
    }

    fn judge(&self, method: &str, path: &str, folded: bool, user_roles: &[String]) -> Verdict {
        let matching: Vec<&Policy> = self
            .list
            .iter()
            .filter(|p| under(p.key(folded), path))
            .collect();
        // Matching keys are prefixes of the same path, so equal length means equal key.
        let Some(longest) = matching.iter().map(|p| p.key(folded).len()).max() else {
            return Verdict::NoPolicy;
        };
        let group = matching
            .into_iter()
            .filter(|p| p.key(folded).len() == longest);
        let (listing, any_method): (Vec<&Policy>, Vec<&Policy>) =
            group.partition(|p| p.methods.is_some());
        let listing: Vec<&Policy> = listing.into_iter().filter(|p| p.lists(method)).collect();
        let chosen = if listing.is_empty() {
            any_method
        } else {
            listing
        };
        let needed: BTreeSet<&String> = chosen.iter().flat_map(|p| &p.roles).collect();
        if needed.iter().any(|r| user_roles.contains(r)) {
            Verdict::Allow
        } else {
            Verdict::Deny(needed.into_iter().cloned().collect())
        }
    }
}

/// Whether `path` is `key` or below it, at a segment boundary (`""` is the root).
fn under(key: &str, path: &str) -> bool {
    path.strip_prefix(key)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Case folding for matching: upper then lower case, so that characters an upstream might fold
/// into ASCII (`ſ` → `S`, `ı` → `I`, the Kelvin sign → `k`) compare equal to their ASCII form.
fn fold(s: &str) -> String {
    s.to_uppercase().to_lowercase()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| s.to_string()).collect()
    }

    fn policy(prefix: &str, methods: Option<&[&str]>, r: &[&str]) -> Policy {
        Policy::new(prefix, methods.map(roles), roles(r)).unwrap()
    }

    fn admin_only() -> Policies {
        Policies::new(vec![policy("/admin", None, &["admin"])])
    }

    fn deny(needed: &[&str]) -> Decision {
        Decision::Deny {
            needed: roles(needed),
        }
    }

    const CONFUSION: &[&str] = &[
        "/admin",
        "/admin/",
        "/admin/..;/admin",
        "/x/..;/admin/",
        "/%61dmin",
        "/ADMIN",
        "/Admin/x",
        "//admin",
        "/./admin",
        "/a/../admin",
        "/admin%2Fsecret",
        "/admin\\x",
        "/admin%5Cx",
        "/%2e%2e/admin",
        "/x/%2e%2e/admin",
        "/%2E%2E/%2e/admin",
        "/admin;jsessionid=1",
        "/admin?x=y",
        "/admin#frag",
        "/%252e%252e/admin",
        "/x/%252e%252e/admin",
        "/%2561dmin",
        "/admin%252Fsecret",
        "/public%3F/../admin",
        "/adm%C4%B1n",
    ];

    #[test]
    fn r_hd_5_path_confusion_payloads_denied() {
        let p = admin_only();
        let user = roles(&["guest"]);
        let admin = roles(&["admin"]);
        for raw in CONFUSION {
            assert_eq!(p.decide("GET", raw, &user), deny(&["admin"]), "{raw}");
            assert_eq!(p.decide("GET", raw, &admin), Decision::Allow, "{raw}");
        }
    }

    #[test]
    fn r_hd_5_prefix_matches_at_segment_boundaries() {
        let p = admin_only();
        let user = roles(&["guest"]);
        for raw in [
            "/administrator",
            "/admins/x",
            "/",
            "/public/admin",
            "/x/admin",
        ] {
            assert_eq!(p.decide("GET", raw, &user), Decision::NoPolicy, "{raw}");
        }
        // A prefix written with a trailing slash is the same prefix.
        let p = Policies::new(vec![policy("/admin/", None, &["admin"])]);
        assert_eq!(p.decide("GET", "/admin", &user), deny(&["admin"]));
        assert_eq!(p.decide("GET", "/admin/x", &user), deny(&["admin"]));
        assert_eq!(p.decide("GET", "/administrator", &user), Decision::NoPolicy);
    }

    /// `/%252e%252e/admin` decodes once to `/%2e%2e/admin`, which is not under `/admin`; an
    /// upstream that decodes again reaches `/admin`, so that reading is judged too.
    #[test]
    fn r_hd_5_double_encoding_judged_as_the_upstream_might_decode_it() {
        let p = admin_only();
        assert_eq!(
            normalize_path("/%252e%252e/admin").unwrap(),
            "/%2e%2e/admin"
        );
        assert_eq!(
            p.decide("GET", "/%252e%252e/admin", &roles(&["guest"])),
            deny(&["admin"])
        );
        // A literal percent in an ordinary path is unaffected.
        assert_eq!(
            p.decide("GET", "/reports/100%25", &roles(&["guest"])),
            Decision::NoPolicy
        );
    }

    #[test]
    fn r_hd_5_undecodable_path_denied_naming_every_role() {
        let p = Policies::new(vec![
            policy("/admin", None, &["admin"]),
            policy("/ops", None, &["platformAdmin"]),
        ]);
        for raw in ["/%ff", "/admin%00", "/public%0d%0a"] {
            assert_eq!(
                p.decide("GET", raw, &roles(&["admin", "platformAdmin"])),
                deny(&["admin", "platformAdmin"]),
                "{raw}"
            );
        }
    }

    #[test]
    fn r_hd_5_upstream_case_folding_is_no_way_around_a_more_specific_policy() {
        // `/public` is open to guests, the rest needs admin. `/PUBLIC` could be a different
        // resource (under `/`) on a case-sensitive upstream: it needs both.
        let p = Policies::new(vec![
            policy("/", None, &["admin"]),
            policy("/public", None, &["guest"]),
        ]);
        assert_eq!(
            p.decide("GET", "/public/x", &roles(&["guest"])),
            Decision::Allow
        );
        assert_eq!(
            p.decide("GET", "/PUBLIC/x", &roles(&["guest"])),
            deny(&["admin"])
        );
        assert_eq!(
            p.decide("GET", "/other", &roles(&["guest"])),
            deny(&["admin"])
        );
        assert_eq!(
            p.decide("GET", "/other", &roles(&["admin"])),
            Decision::Allow
        );
    }

    #[test]
    fn r_hd_5_path_params_kept_as_a_segment_judged_too() {
        // Tomcat reads `/x/..;/public` as `/public`; a plain upstream as a name under `/x`.
        let p = Policies::new(vec![policy("/x", None, &["admin"])]);
        assert_eq!(
            p.decide("GET", "/x/..;/public", &roles(&["guest"])),
            deny(&["admin"])
        );
    }

    #[test]
    fn longest_prefix_wins() {
        let p = Policies::new(vec![
            policy("/api", None, &["guest", "admin"]),
            policy("/api/admin", None, &["admin"]),
        ]);
        let guest = roles(&["guest"]);
        assert_eq!(p.decide("GET", "/api/reports", &guest), Decision::Allow);
        assert_eq!(p.decide("GET", "/api/admin/x", &guest), deny(&["admin"]));
        assert_eq!(
            p.decide("GET", "/api/admin/../reports", &guest),
            Decision::Allow
        );
        assert_eq!(
            p.decide("GET", "/api/admin/x", &roles(&["admin"])),
            Decision::Allow
        );
    }

    #[test]
    fn r_hd_5_methods_match_case_sensitively() {
        let p = Policies::new(vec![policy("/admin", Some(&["GET"]), &["guest"])]);
        let guest = roles(&["guest"]);
        assert_eq!(p.decide("GET", "/admin", &guest), Decision::Allow);
        // A policy exists for the prefix but none for the method: deny, for every role.
        for m in ["get", "Get", "POST", "PURGE", "FOO"] {
            assert_eq!(p.decide(m, "/admin", &guest), deny(&[]), "{m}");
        }
    }

    #[test]
    fn method_specific_policy_beats_the_catch_all_for_its_prefix() {
        let p = Policies::new(vec![
            policy("/docs", Some(&["GET", "HEAD"]), &["guest"]),
            policy("/docs", None, &["powerUser"]),
        ]);
        let guest = roles(&["guest"]);
        assert_eq!(p.decide("GET", "/docs/a", &guest), Decision::Allow);
        assert_eq!(p.decide("PUT", "/docs/a", &guest), deny(&["powerUser"]));
        assert_eq!(
            p.decide("PUT", "/docs/a", &roles(&["powerUser"])),
            Decision::Allow
        );
        assert_eq!(p.decide("get", "/docs/a", &guest), deny(&["powerUser"]));
    }

    #[test]
    fn a_method_never_falls_back_to_a_weaker_shorter_prefix() {
        let p = Policies::new(vec![
            policy("/", None, &["guest"]),
            policy("/admin", Some(&["GET"]), &["admin"]),
        ]);
        let guest = roles(&["guest"]);
        assert_eq!(p.decide("POST", "/admin", &guest), deny(&[]));
        assert_eq!(p.decide("post", "/admin", &roles(&["admin"])), deny(&[]));
        assert_eq!(p.decide("POST", "/other", &guest), Decision::Allow);
    }

    #[test]
    fn no_policies_means_no_policy_for_every_path() {
        let p = Policies::default();
        assert_eq!(p.decide("GET", "/admin", &[]), Decision::NoPolicy);
        assert_eq!(p.decide("GET", "/%ff", &[]), Decision::NoPolicy);
    }

    #[test]
    fn policy_construction_errors() {
        let r = roles(&["admin"]);
        assert_eq!(
            Policy::new("admin", None, r.clone()),
            Err(PolicyError::NotAbsolute("admin".into()))
        );
        assert!(matches!(
            Policy::new("/a?b", None, r.clone()),
            Err(PolicyError::NotAPath(_))
        ));
        assert!(matches!(
            Policy::new("/%ff", None, r.clone()),
            Err(PolicyError::NotAPath(_))
        ));
        assert_eq!(Policy::new("/a", None, vec![]), Err(PolicyError::NoRoles));
        assert_eq!(
            Policy::new("/a", Some(vec![]), r.clone()),
            Err(PolicyError::NoMethods)
        );
        assert_eq!(
            Policy::new("/a", Some(roles(&["GET POST"])), r.clone()),
            Err(PolicyError::BadMethod("GET POST".into()))
        );
        let p = Policy::new("/a//b/./", Some(roles(&["GET"])), r).unwrap();
        assert_eq!(p.prefix(), "/a/b/");
        assert_eq!(p.methods(), Some(&["GET".to_string()][..]));
        assert_eq!(p.roles(), ["admin"]);
    }
}
