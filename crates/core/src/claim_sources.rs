//! Groups that do not fit in the token ("groups overage", Microsoft Entra ID): instead of
//! `groups` the ID token carries `_claim_names: {groups: "src1"}` and
//! `_claim_sources: {src1: {endpoint}}` (OIDC Core §5.6.2 distributed claims), or just
//! `hasgroups: true`. Signing in with the groups that happen to be there would silently give
//! a partial (often empty) role set, so the gateway fetches them or applies the configured
//! outcome. The endpoint comes from the token: it is fetched only on an allowed origin (SSRF).

use serde_json::{Map, Value};

use crate::claims::lookup;

/// The origin of Microsoft Graph, where Entra ID's `_claim_sources` point.
pub const GRAPH_ORIGIN: &str = "https://graph.microsoft.com";
/// A groups answer larger than this is refused (Entra caps a user's groups far below it).
pub const MAX_SOURCE_BYTES: usize = 1024 * 1024;

/// What the claims say about the groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overage {
    /// No overage: the groups (or their absence) are as the claims say.
    None,
    /// A distributed groups claim at this endpoint.
    Source(String),
    /// Overage signalled (`hasgroups`, or `_claim_names` without a usable source) and no
    /// endpoint to fetch from.
    NoSource,
}

/// What to do when the groups cannot be fetched (`OIDC_GROUPS_OVERAGE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverageOutcome {
    /// Refuse the sign-in (default): a partial role set is never granted silently.
    #[default]
    Deny,
    /// Sign in without groups (logged at warn).
    NoGroups,
}

impl OverageOutcome {
    pub fn parse(s: &str) -> Option<OverageOutcome> {
        match s.trim().to_ascii_lowercase().as_str() {
            "deny" => Some(OverageOutcome::Deny),
            "no-groups" | "no_groups" => Some(OverageOutcome::NoGroups),
            _ => None,
        }
    }
}

/// The validated overage settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverageSettings {
    pub outcome: OverageOutcome,
    /// Origins (`scheme://host[:port]`) a claim source may be fetched from; `None` = the
    /// issuer's origin and [`GRAPH_ORIGIN`].
    pub source_origins: Option<Vec<String>>,
}

impl OverageSettings {
    /// The origins allowed for an IdP with this issuer.
    pub fn allowed_origins(&self, issuer: &str) -> Vec<String> {
        match &self.source_origins {
            Some(o) => o.clone(),
            None => {
                let mut v = vec![GRAPH_ORIGIN.to_string()];
                if let Some(o) = origin_of(issuer) {
                    v.push(o);
                }
                v
            }
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL, or `None`.
pub fn origin_of(u: &str) -> Option<String> {
    let u = url::Url::parse(u).ok()?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return None;
    }
    Some(u.origin().ascii_serialization())
}

fn truthy(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Whether `claims` carry the groups (at any of the comma-separated `groups_key` paths) or
/// signal an overage instead.
pub fn detect(claims: &Map<String, Value>, groups_key: &str) -> Overage {
    let keys: Vec<&str> = groups_key
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .collect();
    if keys.iter().any(|k| lookup(claims, k).is_some()) {
        return Overage::None;
    }
    let names = claims.get("_claim_names").and_then(Value::as_object);
    // Only a claim Portcullis reads: with roles taken from another claim (Entra app roles in
    // `roles`), a groups overage changes nothing.
    let named = keys
        .iter()
        .find_map(|k| names.and_then(|n| n.get(*k)).and_then(Value::as_str));
    if let Some(src) = named {
        let endpoint = claims
            .get("_claim_sources")
            .and_then(Value::as_object)
            .and_then(|s| s.get(src))
            .and_then(Value::as_object)
            .and_then(|s| s.get("endpoint"))
            .and_then(Value::as_str);
        return match endpoint {
            Some(e) => Overage::Source(e.to_string()),
            None => Overage::NoSource,
        };
    }
    if keys.contains(&"groups") && truthy(claims.get("hasgroups")) {
        return Overage::NoSource;
    }
    Overage::None
}

/// Whether `endpoint` may be fetched: an http(s) URL without credentials whose origin is one
/// of `allowed` (exact, after normalisation; no prefix or suffix matching).
pub fn source_allowed(endpoint: &str, allowed: &[String]) -> bool {
    let Ok(u) = url::Url::parse(endpoint) else {
        return false;
    };
    if !u.username().is_empty() || u.password().is_some() {
        return false;
    }
    let Some(origin) = origin_of(endpoint) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|a| origin_of(a))
        .any(|a| a == origin)
}

/// The groups of a claim source's answer: Graph's `{"value": [...]}` or `{"groups": [...]}`,
/// strings only. `None` when the answer has neither.
pub fn parse_source(body: &[u8]) -> Option<Vec<Value>> {
    if body.len() > MAX_SOURCE_BYTES {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let list = v
        .get("value")
        .or_else(|| v.get("groups"))
        .and_then(Value::as_array)?;
    Some(list.iter().filter(|g| g.is_string()).cloned().collect())
}

/// Put fetched groups where claim mapping reads them: the first configured key, as an exact
/// top-level name (which [`lookup`] tries first, even for a dotted key).
pub fn insert_groups(claims: &mut Map<String, Value>, groups_key: &str, groups: Vec<Value>) {
    let key = groups_key
        .split(',')
        .map(str::trim)
        .find(|k| !k.is_empty())
        .unwrap_or("groups");
    claims.insert(key.to_string(), Value::Array(groups));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn groups_present_is_no_overage() {
        let c = obj(json!({"groups": [], "hasgroups": true}));
        assert_eq!(detect(&c, "groups"), Overage::None);
        assert_eq!(detect(&obj(json!({})), "groups"), Overage::None);
        assert_eq!(
            detect(&obj(json!({"hasgroups": false})), "groups"),
            Overage::None
        );
    }

    #[test]
    fn distributed_groups_name_their_endpoint() {
        let c = obj(json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/v1.0/users/x/getMemberObjects"}}
        }));
        assert_eq!(
            detect(&c, "groups"),
            Overage::Source("https://graph.microsoft.com/v1.0/users/x/getMemberObjects".into())
        );
        // Names a source that is not there, or has no endpoint (an aggregated `JWT`).
        let c = obj(json!({"_claim_names": {"groups": "src9"}, "_claim_sources": {}}));
        assert_eq!(detect(&c, "groups"), Overage::NoSource);
        let c =
            obj(json!({"_claim_names": {"groups": "s"}, "_claim_sources": {"s": {"JWT": "x"}}}));
        assert_eq!(detect(&c, "groups"), Overage::NoSource);
    }

    /// Roles read from another claim: the groups overage does not concern them.
    #[test]
    fn overage_of_an_unused_claim_is_ignored() {
        let c = obj(json!({
            "hasgroups": true,
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.microsoft.com/x"}}
        }));
        assert_eq!(detect(&c, "roles"), Overage::None);
        assert_eq!(
            detect(&c, "roles,groups"),
            Overage::Source("https://graph.microsoft.com/x".into())
        );
    }

    #[test]
    fn hasgroups_without_source_is_overage() {
        assert_eq!(
            detect(&obj(json!({"hasgroups": true})), "groups"),
            Overage::NoSource
        );
        assert_eq!(
            detect(&obj(json!({"hasgroups": "true"})), "groups"),
            Overage::NoSource
        );
    }

    #[test]
    fn only_allowed_origins_are_fetched() {
        let s = OverageSettings::default();
        let allowed = s.allowed_origins("https://login.microsoftonline.com/t/v2.0");
        assert!(source_allowed(
            "https://graph.microsoft.com/v1.0/x",
            &allowed
        ));
        assert!(source_allowed(
            "https://login.microsoftonline.com/other",
            &allowed
        ));
        for bad in [
            "https://graph.microsoft.com.evil.example/x",
            "http://graph.microsoft.com/x",
            "https://graph.microsoft.com:8443/x",
            "https://user:pw@graph.microsoft.com/x",
            "https://169.254.169.254/latest/meta-data",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(!source_allowed(bad, &allowed), "{bad}");
        }
        let s = OverageSettings {
            outcome: OverageOutcome::Deny,
            source_origins: Some(vec!["https://groups.corp.example/".into()]),
        };
        let allowed = s.allowed_origins("https://login.microsoftonline.com/t/v2.0");
        assert!(source_allowed("https://groups.corp.example/a", &allowed));
        assert!(!source_allowed("https://graph.microsoft.com/a", &allowed));
    }

    #[test]
    fn source_answers_are_parsed_strictly() {
        assert_eq!(
            parse_source(br#"{"value":["g1","g2",3]}"#),
            Some(vec![json!("g1"), json!("g2")])
        );
        assert_eq!(parse_source(br#"{"groups":["g"]}"#), Some(vec![json!("g")]));
        assert_eq!(parse_source(br#"{"value":"g"}"#), None);
        assert_eq!(parse_source(b"<html>"), None);
    }

    #[test]
    fn outcome_parses() {
        assert_eq!(OverageOutcome::parse("deny"), Some(OverageOutcome::Deny));
        assert_eq!(
            OverageOutcome::parse("No-Groups"),
            Some(OverageOutcome::NoGroups)
        );
        assert_eq!(OverageOutcome::parse("allow"), None);
    }
}
