//! Authorization settings: group → role lists (seed 001, already in `raw.roles`), what a person
//! with no role gets (`noRole`) and path policies. Turned into [`AuthzSettings`] here so the
//! gateway never sees a policy naming a role that does not exist.

use super::raw::RawSettings;
use super::validate::Problem;
use crate::authz::{AuthzSettings, NoRole, Policies, Policy, PolicyError, RoleMap};

const POLICIES: &str = "PORTCULLIS_POLICIES (policies)";

pub(super) fn check(
    raw: &RawSettings,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> AuthzSettings {
    let roles = RoleMap::new(&raw.roles);
    let configured = || {
        let names: Vec<&str> = roles.names().collect();
        if names.is_empty() {
            "no roles are configured".to_string()
        } else {
            format!("configured: {}", names.join(", "))
        }
    };

    let no_role = match raw.no_role.as_deref() {
        // `deny` is a keyword: a role literally named `deny` cannot be the default.
        None => NoRole::Deny,
        Some(v) if v.eq_ignore_ascii_case("deny") => NoRole::Deny,
        Some(role) if roles.contains(role) => NoRole::Default(role.to_string()),
        Some(role) => {
            problems.push(Problem::new(format!(
                "PORTCULLIS_NO_ROLE (noRole) `{role}` is not a configured role; use deny or a configured role ({})",
                configured()
            )));
            NoRole::Deny
        }
    };

    for (role, groups) in &raw.roles {
        if groups.is_empty() && no_role != NoRole::Default(role.clone()) {
            // Legal (a role only `noRole` hands out), but otherwise nobody can ever hold it.
            warnings.push(format!(
                "role `{role}` lists no groups: no one gets it at sign-in"
            ));
        }
    }

    let mut list = Vec::new();
    for (i, p) in raw.policies.iter().flatten().enumerate() {
        let at = format!("{POLICIES} entry {} (`{}`)", i + 1, p.path);
        let before = problems.len();
        for role in &p.roles {
            if !roles.contains(role) {
                problems.push(Problem::new(format!(
                    "{at}: role `{role}` is not configured ({})",
                    configured()
                )));
            }
        }
        for m in p.methods.iter().flatten() {
            if crate::config::is_token(m) && m.bytes().any(|b| b.is_ascii_lowercase()) {
                // Methods match case-sensitively and the proxy refuses lower-case ones, so
                // this entry can never apply to a request.
                warnings.push(format!(
                    "{at}: method `{m}` is matched case-sensitively; did you mean `{}`?",
                    m.to_ascii_uppercase()
                ));
            }
        }
        // Policy::new checks the rest; every bad method is reported, not just the first.
        for m in p.methods.iter().flatten() {
            if !crate::config::is_token(m) {
                problems.push(Problem::new(format!(
                    "{at}: {}",
                    PolicyError::BadMethod(m.clone())
                )));
            }
        }
        match Policy::new(&p.path, p.methods.clone(), p.roles.clone()) {
            Ok(policy) if problems.len() == before => list.push(policy),
            Ok(_) | Err(PolicyError::BadMethod(_)) => {}
            Err(e) => problems.push(Problem::new(format!("{at}: {e}"))),
        }
    }

    // Who may use the admin page and API: platformAdmin always, plus these.
    let mut admin_roles = Vec::new();
    for role in raw.admin_roles.iter().flatten() {
        if role == crate::authz::PLATFORM_ADMIN {
            continue;
        }
        if roles.contains(role) {
            if !admin_roles.contains(role) {
                admin_roles.push(role.clone());
            }
        } else {
            problems.push(Problem::new(format!(
                "PORTCULLIS_ADMIN_ROLES (adminRoles): role `{role}` is not configured ({})",
                configured()
            )));
        }
    }

    AuthzSettings {
        roles,
        no_role,
        policies: Policies::new(list),
        admin_roles,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::authz::Decision;
    use crate::config::raw::RawPolicy;

    fn run(f: impl FnOnce(&mut RawSettings)) -> (AuthzSettings, Vec<String>, Vec<String>) {
        let mut raw = RawSettings::default();
        f(&mut raw);
        let mut problems = Vec::new();
        let mut warnings = Vec::new();
        let s = check(&raw, &mut problems, &mut warnings);
        let p = problems.into_iter().map(|p| p.to_string()).collect();
        (s, p, warnings)
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn pol(path: &str, methods: Option<&[&str]>, roles: &[&str]) -> RawPolicy {
        RawPolicy {
            path: path.into(),
            methods: methods.map(strings),
            roles: strings(roles),
        }
    }

    fn with_admin(r: &mut RawSettings) {
        r.roles.insert("admin".into(), strings(&["g-admin"]));
        r.roles.insert("guest".into(), strings(&["g-guest"]));
    }

    #[test]
    fn defaults_are_opt_in() {
        let (s, p, w) = run(|_| {});
        assert!(p.is_empty() && w.is_empty());
        assert_eq!(s, AuthzSettings::default());
        assert_eq!(s.roles_of(&strings(&["x"])), Ok(vec![]));
        assert_eq!(s.decide("GET", "/admin", &[]), Decision::NoPolicy);
    }

    #[test]
    fn no_role_is_deny_or_a_configured_role() {
        let (s, p, _) = run(|r| {
            with_admin(r);
            r.no_role = Some("guest".into());
        });
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(s.no_role, NoRole::Default("guest".into()));
        let (s, p, _) = run(|r| {
            with_admin(r);
            r.no_role = Some("Deny".into());
        });
        assert!(p.is_empty());
        assert_eq!(s.no_role, NoRole::Deny);
        let (_, p, _) = run(|r| {
            with_admin(r);
            r.no_role = Some("visitor".into());
        });
        assert_eq!(
            p,
            [
                "PORTCULLIS_NO_ROLE (noRole) `visitor` is not a configured role; use deny or a configured role (configured: admin, guest)"
            ]
        );
        let (_, p, _) = run(|r| r.no_role = Some("guest".into()));
        assert!(p[0].ends_with("(no roles are configured)"), "{p:?}");
    }

    #[test]
    fn every_policy_problem_is_one_line() {
        let cases: &[(RawPolicy, &str)] = &[
            (
                pol("admin", None, &["admin"]),
                "PORTCULLIS_POLICIES (policies) entry 1 (`admin`): path `admin` must start with /",
            ),
            (
                pol("", None, &["admin"]),
                "PORTCULLIS_POLICIES (policies) entry 1 (``): path `` must start with /",
            ),
            (
                pol("/a?x=1", None, &["admin"]),
                "PORTCULLIS_POLICIES (policies) entry 1 (`/a?x=1`): path `/a?x=1` must be a plain path (no query, fragment or control characters)",
            ),
            (
                pol("/admin", None, &[]),
                "PORTCULLIS_POLICIES (policies) entry 1 (`/admin`): the roles list is empty; name at least one role",
            ),
            (
                pol("/admin", None, &["root"]),
                "PORTCULLIS_POLICIES (policies) entry 1 (`/admin`): role `root` is not configured (configured: admin, guest)",
            ),
            (
                pol("/admin", Some(&["GET", "GET POST"]), &["admin"]),
                "PORTCULLIS_POLICIES (policies) entry 1 (`/admin`): method `GET POST` is not an HTTP method token",
            ),
            (
                pol("/admin", Some(&[]), &["admin"]),
                "PORTCULLIS_POLICIES (policies) entry 1 (`/admin`): the methods list is empty; leave `methods` out to cover every method",
            ),
        ];
        for (policy, want) in cases {
            let (s, p, _) = run(|r| {
                with_admin(r);
                r.policies = Some(vec![policy.clone()]);
            });
            assert_eq!(p, [*want]);
            assert!(s.policies.is_empty());
        }
        // Several problems in one entry are each reported.
        let (_, p, _) = run(|r| {
            with_admin(r);
            r.policies = Some(vec![pol("/x", Some(&["A B", "(C)"]), &["nope", "admin"])]);
        });
        assert_eq!(p.len(), 3, "{p:?}");
    }

    #[test]
    fn role_without_groups_warns_unless_it_is_the_no_role_default() {
        let (_, p, w) = run(|r| {
            r.roles.insert("visitor".into(), vec![]);
        });
        assert!(p.is_empty());
        assert_eq!(
            w,
            ["role `visitor` lists no groups: no one gets it at sign-in"]
        );
        let (s, p, w) = run(|r| {
            r.roles.insert("visitor".into(), vec![]);
            r.no_role = Some("visitor".into());
        });
        assert!(p.is_empty() && w.is_empty(), "{p:?} {w:?}");
        assert_eq!(s.roles_of(&[]), Ok(vec!["visitor".to_string()]));
    }

    #[test]
    fn lower_case_method_warns() {
        let (s, p, w) = run(|r| {
            with_admin(r);
            r.policies = Some(vec![pol("/admin", Some(&["get"]), &["admin"])]);
        });
        assert!(p.is_empty());
        assert_eq!(s.policies.iter().count(), 1);
        assert!(w[0].contains("did you mean `GET`?"), "{w:?}");
    }

    #[test]
    fn valid_policies_reach_the_settings() {
        let (s, p, _) = run(|r| {
            with_admin(r);
            r.policies = Some(vec![
                pol("/admin/", Some(&["GET", "POST"]), &["admin"]),
                pol("/", None, &["guest", "admin"]),
            ]);
        });
        assert!(p.is_empty(), "{p:?}");
        let admin = s.roles_of(&strings(&["g-admin"])).unwrap();
        let guest = s.roles_of(&strings(&["g-guest"])).unwrap();
        assert_eq!(s.decide("POST", "/admin/x", &admin), Decision::Allow);
        assert!(matches!(
            s.decide("POST", "/admin/x", &guest),
            Decision::Deny { .. }
        ));
        assert!(matches!(
            s.decide("DELETE", "/admin/x", &admin),
            Decision::Deny { .. }
        ));
        assert_eq!(s.decide("GET", "/home", &guest), Decision::Allow);
        assert!(s.roles_of(&strings(&["nobody"])).is_err());
    }
}
