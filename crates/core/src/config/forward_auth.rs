//! Forward-auth settings: the proxies whose `X-Original-*`/`X-Forwarded-Method`/`-Uri` headers
//! are believed (`PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES`, YAML
//! `portcullis.forwardAuthTrustedProxies`). Default none: forward-auth answers nobody until
//! the operator names their proxy.

use super::raw::RawSettings;
use super::validate::Problem;
use crate::forward_auth::{Cidr, TrustedProxies};

const NAME: &str = "PORTCULLIS_FORWARD_AUTH_TRUSTED_PROXIES";

/// The validated forward-auth settings (`Config.forward_auth`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ForwardAuthSettings {
    pub trusted_proxies: TrustedProxies,
}

/// Validate the settings, pushing one problem per bad entry.
pub(super) fn check(
    raw: &RawSettings,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> ForwardAuthSettings {
    let mut list: Vec<Cidr> = Vec::new();
    for entry in raw.forward_auth_trusted_proxies.iter().flatten() {
        match entry.parse::<Cidr>() {
            Ok(c) => {
                if c.is_everything() {
                    // Anyone who can reach Portcullis could then state which request they
                    // make; only sensible when nothing but the proxy can reach it.
                    warnings.push(format!(
                        "{NAME}: `{entry}` trusts every address; forward-auth then believes any client that reaches Portcullis directly"
                    ));
                }
                if !list.contains(&c) {
                    list.push(c);
                }
            }
            Err(e) => problems.push(Problem::new(format!("{NAME}: {e}"))),
        }
    }
    ForwardAuthSettings {
        trusted_proxies: TrustedProxies::new(list),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn run(list: &[&str]) -> (ForwardAuthSettings, Vec<String>, Vec<String>) {
        let raw = RawSettings {
            forward_auth_trusted_proxies: Some(list.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        let (mut p, mut w) = (Vec::new(), Vec::new());
        let s = check(&raw, &mut p, &mut w);
        (s, p.into_iter().map(|p| p.0).collect(), w)
    }

    #[test]
    fn default_trusts_nobody() {
        let (mut p, mut w) = (Vec::new(), Vec::new());
        let s = check(&RawSettings::default(), &mut p, &mut w);
        assert!(s.trusted_proxies.is_empty() && p.is_empty() && w.is_empty());
    }

    #[test]
    fn entries_are_validated_one_problem_each() {
        let (s, p, w) = run(&["10.0.0.0/8", "192.0.2.7", "10.0.0.0/8", "fd00::/8"]);
        assert!(p.is_empty() && w.is_empty(), "{p:?} {w:?}");
        assert_eq!(s.trusted_proxies.iter().count(), 3);
        let (_, p, _) = run(&["nginx.internal", "10.0.0.1/8", "10.0.0.0/40"]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with(NAME) && p[0].contains("`nginx.internal` is not an IP address"));
        assert!(
            p[1].contains("write the network address, e.g. `10.0.0.0/8`"),
            "{}",
            p[1]
        );
        assert!(p[2].contains("prefix length"), "{}", p[2]);
        let (_, p, w) = run(&["0.0.0.0/0"]);
        assert!(
            p.is_empty() && w[0].contains("trusts every address"),
            "{w:?}"
        );
    }

    #[test]
    fn env_and_yaml_both_set_it() {
        let raw =
            super::super::from_env(&|k| (k == NAME).then(|| "10.0.0.5, fd00::/8".to_string()));
        assert_eq!(
            raw.forward_auth_trusted_proxies,
            Some(vec!["10.0.0.5".to_string(), "fd00::/8".to_string()])
        );
        let raw = super::super::parse_file(
            "f.yaml",
            "portcullis:\n  forwardAuthTrustedProxies: [\"127.0.0.1\"]\n",
        )
        .unwrap();
        assert_eq!(
            raw.forward_auth_trusted_proxies,
            Some(vec!["127.0.0.1".to_string()])
        );
    }
}
