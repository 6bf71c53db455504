//! `portcullis.identityProviders`: identity providers besides the one of the environment
//! contract. Each is checked like the top level (its problems prefixed with where it is in
//! the list) and must be told apart from the others at every step: by id (the chooser and
//! `/api/login?idp=`), by callback path (a mix-up defence, RFC 9700 §4.4.2: every IdP answers
//! on its own redirect URI), by issuer (sessions, offline re-checks and back-channel logouts
//! are matched to their IdP by it), and by email domain (routing).

use super::raw::RawSettings;
use super::validate::{Ctx, check_oidc, email_domains, is_reserved_path};
use super::{AdditionalIdp, IdpLabel, OidcConfig};
use crate::authz::RoleMap;

/// Longest IdP id (it appears in URLs and metric labels).
const MAX_ID_LEN: usize = 32;

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// Check every listed IdP; the returned list holds those without problems (the others'
/// problems are in `ctx`, which fails validation).
pub(super) fn check(
    raw: &RawSettings,
    public_url: &Option<url::Url>,
    primary: Option<&OidcConfig>,
    primary_label: &IdpLabel,
    ctx: &mut Ctx,
) -> Vec<AdditionalIdp> {
    let mut out = Vec::new();
    if raw.identity_providers.is_empty() {
        return out;
    }
    // (what, owner id) of everything that must be unique.
    let mut ids = vec![primary_label.id.clone()];
    let mut domains: Vec<(String, String)> = primary_label
        .email_domains
        .iter()
        .map(|d| (d.clone(), primary_label.id.clone()))
        .collect();
    let mut issuers: Vec<(String, String)> = primary
        .and_then(OidcConfig::expected_issuer)
        .map(|i| (i, primary_label.id.clone()))
        .into_iter()
        .collect();
    let mut paths: Vec<(String, String)> = primary
        .map(|o| (o.redirect_url.path().to_string(), primary_label.id.clone()))
        .into_iter()
        .collect();
    let base_path = primary
        .map(|o| o.redirect_url.path().trim_end_matches('/').to_string())
        .unwrap_or_else(|| "/api/callback".into());

    for (i, entry) in raw.identity_providers.iter().enumerate() {
        let mut sub = Ctx {
            problems: Vec::new(),
            warnings: Vec::new(),
            insecure: ctx.insecure,
        };
        let id = match entry.id.as_deref() {
            None => {
                sub.problem("`id` is required (e.g. id: partner)");
                None
            }
            Some(id) if !valid_id(id) => {
                sub.problem(format!(
                    "id `{id}` must be 1–{MAX_ID_LEN} lower-case letters, digits or dashes"
                ));
                None
            }
            Some(id) if ids.iter().any(|x| x == id) => {
                sub.problem(format!(
                    "id `{id}` is used twice (`default` is the top-level IdP)"
                ));
                None
            }
            Some(id) => {
                ids.push(id.to_string());
                Some(id.to_string())
            }
        };
        let owner = id.clone().unwrap_or_else(|| format!("#{i}"));
        let domains_here = email_domains("emailDomains", entry.email_domains.as_ref(), &mut sub);
        for d in &domains_here {
            match domains.iter().find(|(x, _)| x == d) {
                Some((_, other)) => sub.problem(format!(
                    "email domain `{d}` is already routed to IdP `{other}`"
                )),
                None => domains.push((d.clone(), owner.clone())),
            }
        }
        let redirect = redirect_url(
            &entry.settings,
            public_url,
            &base_path,
            id.as_deref(),
            &mut sub,
        );
        if let Some(r) = &redirect {
            let p = r.path().to_string();
            match paths.iter().find(|(x, _)| *x == p) {
                Some((_, other)) => sub.problem(format!(
                    "redirectUri path `{p}` is already IdP `{other}`'s: every IdP needs its own callback"
                )),
                None => paths.push((p, owner.clone())),
            }
        }
        let oidc = check_oidc(&entry.settings, redirect, &mut sub);
        if let Some(o) = &oidc {
            match o.expected_issuer() {
                None => sub.problem(
                    "set discoveryUri (or issuer): sessions and back-channel logouts are matched to their IdP by its issuer",
                ),
                Some(iss) => match issuers.iter().find(|(x, _)| *x == iss) {
                    Some((_, other)) => sub.problem(format!(
                        "issuer `{iss}` is also IdP `{other}`'s: one issuer, one entry"
                    )),
                    None => issuers.push((iss, owner.clone())),
                },
            }
        }
        let roles = entry.roles.as_ref().map(|r| {
            for (role, groups) in r {
                if role.trim().is_empty() {
                    sub.problem("a role name is empty");
                }
                if groups.iter().any(|g| g.trim().is_empty()) {
                    sub.problem(format!("role `{role}` lists an empty group name"));
                }
            }
            RoleMap::new(r)
        });
        let at = format!("identityProviders[{i}] ({owner})");
        let clean = sub.problems.is_empty();
        for p in sub.problems {
            ctx.problem(format!("{at}: {p}"));
        }
        ctx.warnings
            .extend(sub.warnings.into_iter().map(|w| format!("{at}: {w}")));
        if let (true, Some(id), Some(oidc)) = (clean, id, oidc) {
            out.push(AdditionalIdp {
                label: IdpLabel {
                    name: entry.name.clone().unwrap_or_else(|| id.clone()),
                    id,
                    email_domains: domains_here,
                },
                oidc,
                roles,
            });
        }
    }
    out
}

/// The entry's `redirectUri`, else the top-level callback path followed by `/<id>`; on the
/// public origin, without query, not one of Portcullis's own paths.
fn redirect_url(
    raw: &RawSettings,
    public_url: &Option<url::Url>,
    base_path: &str,
    id: Option<&str>,
    ctx: &mut Ctx,
) -> Option<url::Url> {
    let public = public_url.as_ref()?;
    let url = match &raw.redirect_url {
        Some(v) => match url::Url::parse(v) {
            Ok(u) => u,
            Err(e) => {
                ctx.problem(format!("redirectUri is not a valid URL ({e}): {v}"));
                return None;
            }
        },
        None => public.join(&format!("{base_path}/{}", id?)).ok()?,
    };
    if url.origin() != public.origin() {
        ctx.problem(format!(
            "redirectUri `{url}` must have the same origin as the public URL `{public}`"
        ));
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() {
        ctx.problem("redirectUri must not contain a query or fragment");
        return None;
    }
    if is_reserved_path(url.path()) {
        ctx.problem(format!(
            "redirectUri path `{}` collides with a Portcullis endpoint",
            url.path()
        ));
        return None;
    }
    Some(url)
}
