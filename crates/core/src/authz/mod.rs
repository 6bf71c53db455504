//! Authorization: IdP groups → roles ([`RoleMap`]) and path policies ([`Policies`]) over the
//! normalized request path (R-HD-5). Pure decisions; the gateway applies them.
//!
//! Both are opt-in: with no role configured nobody is refused for lack of a role, and with no
//! policy every signed-in user reaches every path.

mod path;
mod policy;
mod roles;

pub use path::normalize_path;
pub use policy::{Decision, Policies, Policy, PolicyError};
pub use roles::{NoRole, NoRoleRefused, RoleMap};

/// The validated authorization settings (`Config.authz`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthzSettings {
    pub roles: RoleMap,
    pub no_role: NoRole,
    pub policies: Policies,
    /// Roles that may use the admin page and API besides [`PLATFORM_ADMIN`], which always
    /// may (`adminRoles`; default none).
    pub admin_roles: Vec<String>,
}

/// Seed 001's highest role: always an administrator of Portcullis itself.
pub const PLATFORM_ADMIN: &str = "platformAdmin";

impl AuthzSettings {
    /// The roles of a person with `groups` at sign-in, or the refusal [`NoRole::Deny`] asks for.
    pub fn roles_of(&self, groups: &[String]) -> Result<Vec<String>, NoRoleRefused> {
        self.roles.resolve(groups, &self.no_role)
    }

    /// Whether a person holding `user_roles` may use the admin page and API.
    pub fn may_administer(&self, user_roles: &[String]) -> bool {
        user_roles
            .iter()
            .any(|r| r == PLATFORM_ADMIN || self.admin_roles.contains(r))
    }

    /// Whether a request may pass (see [`Policies::decide`]).
    pub fn decide(&self, method: &str, raw_path: &str, user_roles: &[String]) -> Decision {
        self.policies.decide(method, raw_path, user_roles)
    }
}
