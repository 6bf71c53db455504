//! Group → role mapping (seed 001): each role lists the IdP groups that grant it — the four
//! standard roles `guest`, `powerUser`, `admin`, `platformAdmin` and any custom role.
//!
//! Roles are opt-in: with no role configured at all, everyone signed in gets no roles and is
//! not refused (a gateway that only authenticates). Once any role is configured, a person whose
//! groups grant none of them gets what [`NoRole`] says.

use std::collections::BTreeMap;

/// Role name → the groups (exact, case-sensitive) that grant it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoleMap {
    roles: BTreeMap<String, Vec<String>>,
}

/// What happens to a person whose groups map to no role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NoRole {
    /// Refused, with a page naming the groups that would grant access (the default: a person
    /// the operator has not placed in any role was most likely not meant to get in).
    #[default]
    Deny,
    /// Signed in with this (configured) role.
    Default(String),
}

/// A sign-in refused because no group of the person grants a role and [`NoRole::Deny`] is set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("none of your groups grants a role here")]
pub struct NoRoleRefused {
    /// For the refusal page: each role and the groups that grant it.
    pub granting: Vec<(String, Vec<String>)>,
}

impl RoleMap {
    /// Built from the configured role lists (`Config.roles`).
    pub fn new(roles: &BTreeMap<String, Vec<String>>) -> Self {
        RoleMap {
            roles: roles.clone(),
        }
    }

    /// No role configured: roles are off, nobody is refused for lack of one.
    pub fn is_empty(&self) -> bool {
        self.roles.is_empty()
    }

    /// Whether `role` is configured (possibly with no group granting it).
    pub fn contains(&self, role: &str) -> bool {
        self.roles.contains_key(role)
    }

    /// The configured role names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// The roles `groups` grant, sorted and deduplicated. Group names match exactly and
    /// case-sensitively: IdPs treat `Admins` and `admins` as different groups, so must we.
    pub fn roles_for(&self, groups: &[String]) -> Vec<String> {
        // BTreeMap iteration is sorted and keys are unique: the result needs no sort or dedup.
        self.roles
            .iter()
            .filter(|(_, granting)| granting.iter().any(|g| groups.contains(g)))
            .map(|(role, _)| role.clone())
            .collect()
    }

    /// Each role that some group grants, with those groups (deduplicated, in configured order),
    /// sorted by role: what a refusal page shows. Roles no group grants are left out.
    pub fn granting_groups(&self) -> Vec<(String, Vec<String>)> {
        self.roles
            .iter()
            .filter_map(|(role, groups)| {
                let mut unique: Vec<String> = Vec::with_capacity(groups.len());
                for g in groups {
                    if !unique.contains(g) {
                        unique.push(g.clone());
                    }
                }
                (!unique.is_empty()).then(|| (role.clone(), unique))
            })
            .collect()
    }

    /// The roles of a person with `groups`, applying `no_role` when none is granted. With no
    /// roles configured, always `Ok` with no roles (roles are opt-in).
    pub fn resolve(
        &self,
        groups: &[String],
        no_role: &NoRole,
    ) -> Result<Vec<String>, NoRoleRefused> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let roles = self.roles_for(groups);
        if !roles.is_empty() {
            return Ok(roles);
        }
        match no_role {
            NoRole::Default(role) => Ok(vec![role.clone()]),
            NoRole::Deny => Err(NoRoleRefused {
                granting: self.granting_groups(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn groups(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    /// seed 001's `authentication.yaml` example mapping.
    fn seed_001() -> RoleMap {
        let mut m = BTreeMap::new();
        for (role, group) in [
            ("guest", "oidc-guest-role-for-stackstate"),
            ("powerUser", "oidc-power-user-role-for-stackstate"),
            ("admin", "oidc-admin-role-for-stackstate"),
            ("platformAdmin", "oidc-platform-admin-role-for-stackstate"),
        ] {
            m.insert(role.to_string(), groups(&[group]));
        }
        RoleMap::new(&m)
    }

    #[test]
    fn seed_001_groups_map_to_the_standard_roles() {
        let m = seed_001();
        assert_eq!(
            m.roles_for(&groups(&["oidc-admin-role-for-stackstate"])),
            ["admin"]
        );
        assert_eq!(
            m.roles_for(&groups(&[
                "oidc-platform-admin-role-for-stackstate",
                "unrelated",
                "oidc-guest-role-for-stackstate",
                "oidc-guest-role-for-stackstate",
            ])),
            ["guest", "platformAdmin"]
        );
        assert!(m.roles_for(&groups(&["unrelated"])).is_empty());
    }

    #[test]
    fn group_match_is_exact_and_case_sensitive() {
        let m = seed_001();
        for g in [
            "OIDC-ADMIN-ROLE-FOR-STACKSTATE",
            "oidc-admin-role-for-stackstate ",
            "oidc-admin-role",
            "oidc-admin-role-for-stackstate-x",
        ] {
            assert!(m.roles_for(&groups(&[g])).is_empty(), "{g}");
        }
    }

    #[test]
    fn several_groups_grant_one_role_and_one_group_several_roles() {
        let mut c = BTreeMap::new();
        c.insert("admin".to_string(), groups(&["g1", "g2", "g1"]));
        c.insert("auditor".to_string(), groups(&["g2"]));
        c.insert("unused".to_string(), vec![]);
        let m = RoleMap::new(&c);
        assert_eq!(m.roles_for(&groups(&["g1"])), ["admin"]);
        assert_eq!(m.roles_for(&groups(&["g2"])), ["admin", "auditor"]);
        assert_eq!(
            m.granting_groups(),
            [
                ("admin".to_string(), groups(&["g1", "g2"])),
                ("auditor".to_string(), groups(&["g2"]))
            ]
        );
    }

    #[test]
    fn no_role_deny_refuses_and_names_the_granting_groups() {
        let m = seed_001();
        let err = m.resolve(&groups(&["other"]), &NoRole::Deny).unwrap_err();
        assert_eq!(err.granting.len(), 4);
        assert!(err.granting.contains(&(
            "admin".to_string(),
            groups(&["oidc-admin-role-for-stackstate"])
        )));
        assert_eq!(
            m.resolve(&groups(&["oidc-guest-role-for-stackstate"]), &NoRole::Deny),
            Ok(vec!["guest".to_string()])
        );
    }

    #[test]
    fn no_role_default_grants_that_role_only_when_nothing_else_does() {
        let m = seed_001();
        let d = NoRole::Default("guest".into());
        assert_eq!(m.resolve(&[], &d), Ok(vec!["guest".to_string()]));
        assert_eq!(
            m.resolve(&groups(&["oidc-admin-role-for-stackstate"]), &d),
            Ok(vec!["admin".to_string()])
        );
    }

    #[test]
    fn roles_are_opt_in_nobody_refused_when_none_configured() {
        let m = RoleMap::default();
        assert!(m.is_empty());
        assert_eq!(m.resolve(&groups(&["anything"]), &NoRole::Deny), Ok(vec![]));
        assert!(m.granting_groups().is_empty());
    }
}
