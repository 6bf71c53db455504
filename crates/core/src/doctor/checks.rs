//! The judgement functions, one per check (or small family of checks). Each takes facts the
//! CLI fetched and returns findings; none prints a secret (only lengths and estimates).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Finding, escape};
use crate::authz::AuthzSettings;
use crate::config::{ClaimKeys, ClientAuthMethod, Problem, is_loopback_url};
use crate::jose::{Jwks, JwsAlg};
use crate::oidc::discovery::WELL_KNOWN;

// ------------------------------------------------------------------------------------------
// Configuration and secrets
// ------------------------------------------------------------------------------------------

/// Placeholders printed in the vendor guides' examples: a deployment that still uses one has a
/// secret the whole internet knows.
pub const PLACEHOLDER_SECRETS: &[&str] = &[
    "your-secure-random-string-min-32-chars",
    "your-client-secret",
    "<secret-from-oidc-provider>",
    "(secret value)",
    "changeme",
    "secret",
];

/// R-CFG-1 (the same minimum `config::validate` enforces; repeated here because doctor also
/// judges a secret that failed validation).
pub const MIN_SECRET_LEN: usize = 32;

/// Below this estimated entropy a session-signing secret is reported as weak. Not 128: the
/// estimate of 32 random hex characters (128 real bits) is about 115, and that secret is fine.
pub const MIN_SECRET_BITS: f64 = 100.0;

/// The existing validation's problems and warnings, one finding each.
pub fn configuration(problems: &[Problem], warnings: &[String]) -> Vec<Finding> {
    let mut out: Vec<Finding> = problems
        .iter()
        .map(|p| {
            Finding::problem(
                "configuration",
                p.to_string(),
                "correct the setting named here (README, \"Configuration\"); `portcullis serve` refuses to start until it is fixed",
            )
        })
        .collect();
    out.extend(warnings.iter().map(|w| {
        Finding::warning(
            "configuration",
            w.clone(),
            "review this setting; `portcullis serve` starts but logs the same warning",
        )
    }));
    if out.is_empty() {
        out.push(Finding::ok(
            "configuration",
            "environment and file load and validate without problems",
        ));
    }
    out
}

/// A rough entropy estimate in bits: length × Shannon entropy of the character distribution.
/// It over-estimates structured text (it cannot see words), which is why placeholders are
/// checked separately; it is good at catching `aaaa…` and `abababab…`.
pub fn entropy_bits(s: &str) -> f64 {
    let mut counts: BTreeMap<char, usize> = BTreeMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let len = n as f64;
    let per_char: f64 = counts
        .values()
        .map(|&c| {
            let p = c as f64 / len;
            -p * p.log2()
        })
        .sum();
    per_char * len
}

fn is_placeholder(s: &str) -> bool {
    let t = s.trim();
    PLACEHOLDER_SECRETS
        .iter()
        .any(|p| t.eq_ignore_ascii_case(p))
        || t.to_ascii_lowercase().starts_with("your-")
}

/// `JWT_SIGNING_SECRET` (R-CFG-1): present, ≥ 32 characters, not a published placeholder,
/// not obviously low-entropy. Shows only the length and the estimate.
pub fn jwt_signing_secret(secret: Option<&str>) -> Finding {
    const C: &str = "jwt-signing-secret";
    const GEN: &str = "generate one with `openssl rand -base64 32` and set JWT_SIGNING_SECRET (changing it signs everyone out)";
    let Some(s) = secret else {
        return Finding::problem(C, "JWT_SIGNING_SECRET is not set", GEN);
    };
    let len = s.chars().count();
    if is_placeholder(s) {
        return Finding::problem(
            C,
            "JWT_SIGNING_SECRET is a placeholder from the vendor guide's example",
            GEN,
        );
    }
    if s.len() < MIN_SECRET_LEN {
        return Finding::problem(
            C,
            format!("JWT_SIGNING_SECRET is {len} characters; at least 32 are required"),
            GEN,
        );
    }
    let bits = entropy_bits(s);
    let distinct = s.chars().collect::<std::collections::BTreeSet<_>>().len();
    if bits < MIN_SECRET_BITS || distinct < 8 {
        return Finding::warning(
            C,
            format!(
                "JWT_SIGNING_SECRET looks low-entropy: {len} characters, {distinct} distinct, about {bits:.0} bits (estimate; want ≥ {MIN_SECRET_BITS:.0})"
            ),
            GEN,
        );
    }
    Finding::ok(
        C,
        format!("{len} characters, about {bits:.0} bits of entropy (estimate); value not shown"),
    )
}

/// `OIDC_CLIENT_SECRET`: present, not a placeholder, and not the session secret (key
/// separation: the IdP knows the client secret).
pub fn client_secret(secret: Option<&str>, jwt_secret: Option<&str>) -> Finding {
    const C: &str = "client-secret";
    let Some(s) = secret else {
        return Finding::problem(
            C,
            "OIDC_CLIENT_SECRET (secret) is not set",
            "copy the client secret from the IdP's registration of Portcullis into OIDC_CLIENT_SECRET",
        );
    };
    if is_placeholder(s) {
        return Finding::problem(
            C,
            "OIDC_CLIENT_SECRET is a placeholder from the vendor guide's example",
            "copy the real client secret from the IdP's registration of Portcullis",
        );
    }
    if jwt_secret == Some(s) {
        return Finding::warning(
            C,
            "OIDC_CLIENT_SECRET equals JWT_SIGNING_SECRET: whoever administers the IdP could forge sessions",
            "give JWT_SIGNING_SECRET its own value (`openssl rand -base64 32`)",
        );
    }
    Finding::ok(
        C,
        format!(
            "present ({} characters; value not shown)",
            s.chars().count()
        ),
    )
}

// ------------------------------------------------------------------------------------------
// Fetched documents
// ------------------------------------------------------------------------------------------

/// Why a fetch failed, as the CLI classified it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// DNS, connection refused, reset.
    Unreachable,
    Timeout,
    /// TLS handshake or certificate verification.
    Tls,
    /// The body exceeded the cap.
    TooLarge,
    Other,
}

/// A failed fetch: kind and the transport's own words (escaped when shown).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchFailure {
    pub kind: FailureKind,
    pub reason: String,
}

/// A completed HTTP exchange, body read under the cap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// A URL as shown: without a password in its userinfo (an upstream or IdP URL could carry one).
pub fn shown_url(u: &url::Url) -> String {
    let mut u = u.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

fn failure_fix(kind: &FailureKind, what: &str) -> String {
    match kind {
        FailureKind::Unreachable => format!(
            "check {what}: host name, port, DNS and firewalls between Portcullis and the IdP (discovery must be reachable from where Portcullis runs, not only from your browser)"
        ),
        FailureKind::Timeout => format!(
            "{what} did not answer within the timeout: check proxies and firewalls (Portcullis waits 5 s to connect, 10 s in all)"
        ),
        FailureKind::Tls => "see the `tls` check".into(),
        FailureKind::TooLarge => format!(
            "{what} answered more than Portcullis accepts: check the URL points at the document itself, not a portal page"
        ),
        FailureKind::Other => format!("check {what}"),
    }
}

/// Discovery (Disc §4): reachable, 200, a strict JSON object; then its issuer against the
/// discovery URL (R-CFG-2, byte for byte) and the https rule for every endpoint it lists
/// (R-CFG-3). Returns the document for the later checks.
pub fn discovery(
    url: &url::Url,
    fetched: &Result<Fetched, FetchFailure>,
    insecure: bool,
) -> (Vec<Finding>, Option<Map<String, Value>>) {
    const C: &str = "discovery";
    let raw_url = url;
    let url = &shown_url(url);
    let r = match fetched {
        Err(e) => {
            return (
                vec![Finding::problem(
                    C,
                    format!("{url}: {}", e.reason),
                    failure_fix(&e.kind, "OIDC_DISCOVERY_URL (discoveryUri)"),
                )],
                None,
            );
        }
        Ok(r) => r,
    };
    if r.status != 200 {
        let fix = if r.status == 404 {
            "the URL is wrong: it ends in /.well-known/openid-configuration and is the issuer plus that suffix (Okta: https://{domain}/.well-known/…, Entra: https://login.microsoftonline.com/{tenant}/v2.0/.well-known/…, Keycloak: https://{host}/realms/{realm}/.well-known/…)"
        } else {
            "the IdP refused or failed the request: check the URL and the IdP's health"
        };
        return (
            vec![Finding::problem(
                C,
                format!("{url} answered HTTP {}", r.status),
                fix,
            )],
            None,
        );
    }
    let doc = match crate::jose::json::parse_strict_object(&r.body) {
        Ok(d) => d,
        Err(e) => {
            return (
                vec![Finding::problem(
                    C,
                    format!(
                        "{url} answered 200 but not a JSON object ({e}; content type `{}`)",
                        escape(&r.content_type)
                    ),
                    "the URL must point at the discovery document itself (often a login or proxy page answers instead)",
                )],
                None,
            );
        }
    };
    let mut out = vec![Finding::ok(
        C,
        format!(
            "{url} answered 200 with a JSON document ({} bytes)",
            r.body.len()
        ),
    )];
    out.push(issuer(raw_url, doc.get("issuer")));
    out.push(endpoints_https(&doc, insecure));
    (out, Some(doc))
}

/// R-CFG-2: `issuer` must equal the discovery URL minus the well-known suffix, without
/// normalising slashes or case; names the classic causes.
pub fn issuer(discovery_url: &url::Url, issuer: Option<&Value>) -> Finding {
    const C: &str = "issuer";
    let expected = discovery_url
        .as_str()
        .strip_suffix(WELL_KNOWN)
        .unwrap_or(discovery_url.as_str());
    let Some(iss) = issuer.and_then(Value::as_str) else {
        return Finding::problem(
            C,
            "the discovery document has no `issuer` string",
            "this is not an OpenID Connect discovery document; check OIDC_DISCOVERY_URL",
        );
    };
    if iss == expected {
        return Finding::ok(C, format!("`{}` matches the discovery URL", escape(iss)));
    }
    let detail = format!(
        "the IdP says issuer `{}`, but the discovery URL implies `{expected}` (they must be identical; every ID token would be refused)",
        escape(iss)
    );
    let cause = if iss.trim_end_matches('/') == expected.trim_end_matches('/') {
        "they differ only by a trailing slash: write OIDC_DISCOVERY_URL exactly as the issuer plus /.well-known/openid-configuration"
            .to_string()
    } else if iss.eq_ignore_ascii_case(expected) {
        "they differ only in letter case: copy the discovery URL exactly from the IdP".into()
    } else if url::Url::parse(iss)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        == discovery_url.host_str().map(str::to_owned)
    {
        "same host, different path: the tenant or realm differs (Entra: use the tenant id in the URL, not `common`/`organizations`; Keycloak: /realms/<realm>); use the discovery URL of the issuer shown".into()
    } else {
        format!(
            "the document was served for another host (a proxy or rewritten URL?): use `{}{WELL_KNOWN}` if that is your IdP",
            escape(iss)
        )
    };
    Finding::problem(C, detail, cause)
}

const URL_MEMBERS: [&str; 6] = [
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "userinfo_endpoint",
    "jwks_uri",
    "end_session_endpoint",
];

/// R-CFG-3: every endpoint listed in discovery is https (http only with the insecure flag).
pub fn endpoints_https(doc: &Map<String, Value>, insecure: bool) -> Finding {
    const C: &str = "idp-endpoints";
    let mut bad = Vec::new();
    let mut http = Vec::new();
    for name in URL_MEMBERS {
        let Some(v) = doc.get(name) else { continue };
        match v.as_str().map(url::Url::parse) {
            Some(Ok(u)) if u.scheme() == "https" => {}
            Some(Ok(u)) if u.scheme() == "http" => http.push(name),
            _ => bad.push(name),
        }
    }
    for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
        if !doc.contains_key(name) {
            bad.push(name);
        }
    }
    if !bad.is_empty() {
        return Finding::problem(
            C,
            format!("discovery lacks or mangles: {}", bad.join(", ")),
            "the IdP's discovery document is incomplete; configure the missing endpoints individually (OIDC_*_ENDPOINT, OIDC_JWKS_URI) or fix the IdP",
        );
    }
    match (http.is_empty(), insecure) {
        (true, _) => Finding::ok(C, "every endpoint in discovery is https"),
        (false, true) => Finding::warning(
            C,
            format!("plain http endpoints: {}", http.join(", ")),
            "development only (OIDC_ALLOW_INSECURE_HTTP=true): use https in production",
        ),
        (false, false) => Finding::problem(
            C,
            format!("plain http endpoints: {}", http.join(", ")),
            "serve the IdP over https (or, for development only, set OIDC_ALLOW_INSECURE_HTTP=true)",
        ),
    }
}

// ------------------------------------------------------------------------------------------
// TLS
// ------------------------------------------------------------------------------------------

/// Warn when the IdP's certificate expires within this many days.
pub const CERT_WARN_DAYS: i64 = 14;

/// What the TLS probe of the IdP saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsFacts {
    /// The IdP is plain http (allowed only with the insecure flag).
    NotHttps,
    /// Handshake or verification failed; the TLS stack's words.
    Failed { reason: String, custom_ca: bool },
    /// Verified; `not_after` of the leaf (Unix seconds) if it could be read.
    Verified {
        not_after: Option<i64>,
        custom_ca: bool,
    },
    /// The probe could not connect at all (see the discovery check).
    Unreachable,
}

/// TLS to the IdP with the trust Portcullis uses (system roots plus the custom CA), and the
/// leaf certificate's expiry (seed 000: "SSL certificate errors").
pub fn tls(host: &str, facts: &TlsFacts, now: i64) -> Vec<Finding> {
    const C: &str = "tls";
    const E: &str = "tls-certificate";
    match facts {
        TlsFacts::NotHttps => vec![Finding::skipped(
            C,
            format!("{host} is plain http: nothing to verify (development only)"),
        )],
        TlsFacts::Unreachable => vec![Finding::skipped(
            C,
            format!("{host} could not be reached (see `discovery`)"),
        )],
        TlsFacts::Failed { reason, custom_ca } => {
            let r = reason.to_ascii_lowercase();
            let fix = if r.contains("expired") {
                "the IdP's certificate has expired: renew it at the IdP".to_string()
            } else if r.contains("notvalidforname") || r.contains("not valid for name") {
                format!(
                    "the certificate is not issued for `{host}`: use the host name on the IdP's certificate (Portcullis never turns off host name verification)"
                )
            } else if *custom_ca {
                "the configured CA (OIDC_SIGNER_PEM_URL) did not verify the IdP's certificate: give the CA that issued it (the root or intermediate of the IdP's chain), as PEM".into()
            } else {
                "the IdP's certificate is not signed by a publicly trusted CA: set OIDC_SIGNER_PEM_URL (secrets.oidc.oidc_signer_pem_url) to your CA certificate (file:///path/ca.pem, https://… or inline PEM); the insecure flag does not help".into()
            };
            vec![Finding::problem(
                C,
                format!("TLS to {host} failed: {}", escape(reason)),
                fix,
            )]
        }
        TlsFacts::Verified {
            not_after,
            custom_ca,
        } => {
            let trust = if *custom_ca {
                "system roots + the custom CA"
            } else {
                "system roots"
            };
            let mut out = vec![Finding::ok(
                C,
                format!("{host}: certificate verified ({trust})"),
            )];
            out.push(match not_after {
                None => Finding::warning(
                    E,
                    "could not read the certificate's expiry date",
                    "check the IdP certificate's validity by hand",
                ),
                Some(t) => {
                    let days = (t - now).div_euclid(86_400);
                    let when = format_date(*t);
                    if *t <= now {
                        Finding::problem(
                            E,
                            format!("the IdP's certificate expired on {when}"),
                            "renew the IdP's certificate",
                        )
                    } else if days < CERT_WARN_DAYS {
                        Finding::warning(
                            E,
                            format!("the IdP's certificate expires on {when} (in {days} day(s))"),
                            "renew the IdP's certificate before then, or sign-in stops working",
                        )
                    } else {
                        Finding::ok(E, format!("valid until {when} ({days} days)"))
                    }
                }
            });
            out
        }
    }
}

/// `YYYY-MM-DD` of a Unix time (UTC).
pub fn format_date(t: i64) -> String {
    // H. Hinnant's civil_from_days.
    let z = t.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

// ------------------------------------------------------------------------------------------
// JWKS and algorithms
// ------------------------------------------------------------------------------------------

/// The JWKS (R-IDT-3/4): reachable, parseable, at least one usable key, kids unambiguous; and
/// `jwsAlgorithm` (R-CFG-7) against what discovery says the IdP signs with and the keys it
/// publishes.
pub fn jwks(
    jwks_uri: &url::Url,
    fetched: &Result<Fetched, FetchFailure>,
    allowed: &[JwsAlg],
    discovery: Option<&Map<String, Value>>,
) -> Vec<Finding> {
    const C: &str = "jwks";
    const A: &str = "jws-algorithm";
    let jwks_uri = &shown_url(jwks_uri);
    let allowed_names: Vec<&str> = allowed.iter().map(JwsAlg::as_str).collect();
    let r = match fetched {
        Err(e) => {
            return vec![
                Finding::problem(
                    C,
                    format!("{jwks_uri}: {}", e.reason),
                    failure_fix(&e.kind, "the IdP's jwks_uri"),
                ),
                Finding::skipped(A, "the JWKS could not be fetched"),
            ];
        }
        Ok(r) => r,
    };
    if r.status != 200 {
        return vec![
            Finding::problem(
                C,
                format!("{jwks_uri} answered HTTP {}", r.status),
                "the IdP's key set is not served: check jwks_uri in discovery (or OIDC_JWKS_URI)",
            ),
            Finding::skipped(A, "the JWKS could not be fetched"),
        ];
    }
    let set = match Jwks::parse(&r.body) {
        Ok(s) => s,
        Err(e) => {
            return vec![
                Finding::problem(
                    C,
                    format!("{jwks_uri}: not a usable key set ({e})"),
                    "jwks_uri must serve a JSON Web Key Set ({\"keys\":[…]})",
                ),
                Finding::skipped(A, "the JWKS could not be read"),
            ];
        }
    };
    let mut out = Vec::new();
    if set.is_empty() {
        out.push(Finding::problem(
            C,
            format!("{jwks_uri}: no usable public signing key (keys with private parts, `use` other than sig, or RSA under 2048 bits are skipped)"),
            "publish the IdP's public signing keys at jwks_uri",
        ));
    } else {
        // Two usable keys of one family under one kid: which one verifies is ambiguous.
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for k in set.keys() {
            if let Some(kid) = k.kid() {
                *seen
                    .entry((kid.to_owned(), format!("{:?}", k.family())))
                    .or_default() += 1;
            }
        }
        let dup: Vec<String> = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|((kid, _), _)| escape(kid))
            .collect();
        let no_kid = set.keys().iter().filter(|k| k.kid().is_none()).count();
        if !dup.is_empty() {
            out.push(Finding::problem(
                C,
                format!(
                    "kid(s) used by more than one key of the same type: {}",
                    dup.join(", ")
                ),
                "each key needs its own kid; fix the IdP's key rotation",
            ));
        } else if no_kid > 0 && set.len() > 1 {
            out.push(Finding::warning(
                C,
                format!("{no_kid} of {} keys have no kid", set.len()),
                "give every key a kid so tokens name the key that signed them",
            ));
        } else {
            let kids: Vec<String> = set.kids().map(escape).collect();
            out.push(Finding::ok(
                C,
                format!(
                    "{} usable key(s), kids unique: {}",
                    set.len(),
                    kids.join(", ")
                ),
            ));
        }
    }

    // jwsAlgorithm vs discovery's id_token_signing_alg_values_supported and the keys.
    let advertised: Option<Vec<String>> = discovery
        .and_then(|d| d.get("id_token_signing_alg_values_supported"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(escape).collect());
    let with_key: Vec<&str> = allowed
        .iter()
        .filter(|a| set.supports_alg(**a))
        .map(JwsAlg::as_str)
        .collect();
    let key_algs: Vec<String> = {
        let mut v: Vec<String> = set
            .keys()
            .iter()
            .map(|k| match k.alg() {
                Some(a) => a.as_str().to_owned(),
                None => format!("{:?} key", k.family()),
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    if let Some(adv) = &advertised
        && !adv.iter().any(|a| allowed_names.contains(&a.as_str()))
    {
        out.push(Finding::problem(
            A,
            format!(
                "jwsAlgorithm is {}, but the IdP signs ID tokens with {}",
                allowed_names.join(","),
                adv.join(",")
            ),
            format!(
                "set jwsAlgorithm (OIDC_JWS_ALGORITHM) to what the IdP uses, e.g. {}, or change the client's signing algorithm at the IdP",
                adv.first().map(String::as_str).unwrap_or("RS256")
            ),
        ));
    } else if with_key.is_empty() {
        out.push(Finding::problem(
            A,
            format!(
                "jwsAlgorithm is {}, but the IdP's JWKS has no key for it (it has: {})",
                allowed_names.join(","),
                key_algs.join(", ")
            ),
            "set jwsAlgorithm (OIDC_JWS_ALGORITHM) to the algorithm of the IdP's keys, or have the IdP publish a key for the configured one",
        ));
    } else {
        out.push(Finding::ok(
            A,
            format!("{} has a matching key in the JWKS", with_key.join(",")),
        ));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Redirect URI and the probe authorization request
// ------------------------------------------------------------------------------------------

/// The callback URL against the public URL (R-CFG-6) and the guides' conventions.
pub fn redirect_uri(redirect: &url::Url, public: &url::Url) -> Finding {
    const C: &str = "redirect-uri";
    if redirect.origin() != public.origin() {
        return Finding::problem(
            C,
            format!("{redirect} is not on the public URL {public}"),
            "OIDC_REDIRECT_URL must be <public URL>/api/callback (seed 000) or the redirectUri of your authentication.yaml, on the same origin",
        );
    }
    if redirect.scheme() != "https" && !is_loopback_url(redirect) {
        return Finding::problem(
            C,
            format!("{redirect} is plain http"),
            "use https://<your domain>/api/callback; IdPs refuse or warn about plain http callbacks",
        );
    }
    let path = redirect.path();
    if path != "/api/callback" && path != "/loginCallback" {
        return Finding::warning(
            C,
            format!("{redirect}: a custom callback path"),
            "make sure the IdP has exactly this URL registered (many IdPs compare byte for byte)",
        );
    }
    Finding::ok(
        C,
        format!("{redirect} (register exactly this URL at the IdP)"),
    )
}

/// The IdP's answer to the probe authorization request (not followed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeAnswer {
    pub status: u16,
    /// The `Location` header, resolved against the authorization endpoint.
    pub location: Option<String>,
    /// The first bytes of the body (error pages carry the IdP's words).
    pub body: Vec<u8>,
}

/// Error codes and vendor markers that mean "this authorization request is refused".
const ERROR_MARKERS: &[&str] = &[
    "invalid_redirect_uri",
    "redirect_uri_mismatch",
    "unauthorized_client",
    "invalid_client",
    "invalid_request",
    "invalid_scope",
    "unsupported_response_type",
    "access_denied",
    "AADSTS",
    "Invalid parameter: redirect_uri",
    "Invalid redirect_uri",
];

/// Judge the probe authorization request (client_id, redirect_uri, response_type=code, scope,
/// state, nonce, PKCE S256): a redirect to a sign-in page or a 200 sign-in form means the
/// client and redirect URI were accepted; an error page or `error=` means refused. Seed 000:
/// "401 error after IdP login — Redirect URI mismatch".
pub fn authorization_probe(
    redirect_uri: &str,
    client_id: &str,
    answer: &Result<ProbeAnswer, FetchFailure>,
) -> Finding {
    const C: &str = "redirect-uri-registered";
    let a = match answer {
        Err(e) => {
            return Finding::problem(
                C,
                format!(
                    "the authorization endpoint could not be reached: {}",
                    e.reason
                ),
                failure_fix(&e.kind, "the IdP's authorization_endpoint"),
            );
        }
        Ok(a) => a,
    };
    if let Some(loc) = &a.location
        && (300..400).contains(&a.status)
    {
        let parsed = url::Url::parse(loc).ok();
        let param = |name: &str| -> Option<String> {
            parsed.as_ref().and_then(|u| {
                u.query_pairs()
                    .chain(fragment_pairs(u))
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            })
        };
        let to_client = loc.split(['?', '#']).next() == Some(redirect_uri);
        if let Some(err) = param("error") {
            let desc = param("error_description").unwrap_or_default();
            return refused(C, redirect_uri, client_id, &err, &desc, to_client);
        }
        if to_client {
            return Finding::ok(
                C,
                format!("accepted: the IdP answered straight to {redirect_uri} (it had a session)"),
            );
        }
        // Only the origin: the path and query of a sign-in page carry per-attempt handles.
        let shown = parsed
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_else(|| "a relative location".into());
        return Finding::ok(
            C,
            format!(
                "accepted: the IdP redirects to its sign-in page at {} for client `{}` and {redirect_uri}",
                escape(&shown),
                escape(client_id)
            ),
        );
    }
    let text = page_text(&a.body);
    let marker = ERROR_MARKERS
        .iter()
        .find(|m| text.to_ascii_lowercase().contains(&m.to_ascii_lowercase()));
    if a.status == 200 && marker.is_none() {
        return Finding::ok(
            C,
            format!(
                "accepted: the IdP shows its sign-in page for client `{}` and {redirect_uri}",
                escape(client_id)
            ),
        );
    }
    let (err, desc) = error_words(&text);
    let err = err
        .or_else(|| marker.map(|m| (*m).to_owned()))
        .unwrap_or_else(|| format!("HTTP {}", a.status));
    let desc = desc.unwrap_or_else(|| text.chars().take(200).collect());
    refused(C, redirect_uri, client_id, &err, &desc, false)
}

/// Fragment parameters (an implicit-style error response puts them there).
fn fragment_pairs(u: &url::Url) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(u.fragment().unwrap_or("").as_bytes())
}

fn refused(
    check: &'static str,
    redirect_uri: &str,
    client_id: &str,
    err: &str,
    desc: &str,
    redirect_ok: bool,
) -> Finding {
    let said = if desc.is_empty() {
        escape(err)
    } else {
        format!("{}: {}", escape(err), escape(desc))
    };
    let both = format!("{err} {desc}").to_ascii_lowercase();
    let fix = if both.contains("redirect_uri")
        || both.contains("redirect uri")
        || both.contains("aadsts50011")
    {
        format!(
            "register exactly {redirect_uri} as a redirect URI of client `{}` at the IdP (scheme, host, port, path and trailing slash must match), or set OIDC_REDIRECT_URL to the registered one",
            escape(client_id)
        )
    } else if both.contains("invalid_client")
        || both.contains("unauthorized_client")
        || both.contains("aadsts700016")
        || both.contains("client")
    {
        format!(
            "check OIDC_CLIENT_ID (`{}`) against the IdP's registration, and that the client is a web application allowed the authorization code grant",
            escape(client_id)
        )
    } else if both.contains("scope") {
        "remove the scope the IdP refuses from OIDC_SCOPES / scope, or grant it to the client at the IdP".into()
    } else {
        "read the IdP's message above; the IdP refused the authorization request Portcullis would send".into()
    };
    let prefix = if redirect_ok {
        "the IdP accepted the redirect URI but refused the request"
    } else {
        "the IdP refused the authorization request"
    };
    Finding::problem(check, format!("{prefix}: {said}"), fix)
}

/// Visible text of an HTML (or plain) error page: tags dropped, entities for `<>&"'` decoded,
/// whitespace collapsed.
pub fn page_text(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let mut out = String::new();
    let mut in_tag = false;
    let mut in_skip = false;
    let lower = s.to_ascii_lowercase();
    let mut i = 0usize;
    let bytes = s.as_bytes();
    while i < bytes.len() {
        if !in_tag && (lower[i..].starts_with("<script") || lower[i..].starts_with("<style")) {
            in_skip = true;
        }
        if in_skip && (lower[i..].starts_with("</script>") || lower[i..].starts_with("</style>")) {
            in_skip = false;
        }
        let c = s[i..].chars().next().unwrap_or(' ');
        match c {
            '<' => {
                in_tag = true;
                out.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag || in_skip => {}
            _ => out.push(c),
        }
        i += c.len_utf8();
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&");
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `error: x` / `error_description: y` (also `error = x`, `error : x`) as oidc-provider,
/// Keycloak and others print them on their error pages.
fn error_words(text: &str) -> (Option<String>, Option<String>) {
    let lower = text.to_ascii_lowercase();
    // The value after `key` followed by optional spaces and `:` or `=`, up to the next label.
    let value_of = |key: &str| -> Option<String> {
        let mut from = 0;
        while let Some(at) = lower.get(from..)?.find(key).map(|i| i + from) {
            from = at + key.len();
            let rest = text.get(from..)?;
            let trimmed = rest.trim_start();
            let Some(after) = trimmed
                .strip_prefix(':')
                .or_else(|| trimmed.strip_prefix('='))
            else {
                continue;
            };
            let v = after.trim_start();
            let lv = v.to_ascii_lowercase();
            let end = [
                " error_description",
                " error",
                " state",
                " iss",
                " scope",
                " trace",
            ]
            .iter()
            .filter_map(|l| lv.find(l))
            .min()
            .unwrap_or(v.len());
            let v: String = v.get(..end)?.trim().chars().take(200).collect();
            if !v.is_empty() {
                return Some(v);
            }
        }
        None
    };
    let err = value_of("error")
        .and_then(|e| e.split_whitespace().next().map(str::to_owned))
        .filter(|e| !e.is_empty());
    (err, value_of("error_description"))
}

// ------------------------------------------------------------------------------------------
// Clock, metadata support
// ------------------------------------------------------------------------------------------

/// Skew above which a warning is given (seconds).
pub const SKEW_WARN_SECS: i64 = 5;

/// Clock skew against the IdP's HTTP `Date` (1 s resolution): ID tokens are checked with
/// [`crate::jose::claims::CLOCK_LEEWAY_SECS`] of leeway; beyond it fresh tokens look expired
/// or issued in the future.
pub fn clock_skew(idp_date: Option<i64>, local_now: i64) -> Finding {
    const C: &str = "clock-skew";
    let Some(d) = idp_date else {
        return Finding::skipped(C, "the IdP sent no usable Date header");
    };
    let skew = local_now - d;
    let leeway = crate::jose::claims::CLOCK_LEEWAY_SECS;
    let side = if skew > 0 { "ahead of" } else { "behind" };
    let fix = "synchronise this machine's clock with NTP (chrony/systemd-timesyncd); check the IdP's clock too";
    if skew.abs() > leeway {
        Finding::problem(
            C,
            format!(
                "this clock is {}s {side} the IdP's; more than the {leeway}s leeway, so ID tokens will be refused",
                skew.abs()
            ),
            fix,
        )
    } else if skew.abs() > SKEW_WARN_SECS {
        Finding::warning(
            C,
            format!(
                "this clock is {}s {side} the IdP's (within the {leeway}s leeway)",
                skew.abs()
            ),
            fix,
        )
    } else {
        Finding::ok(
            C,
            format!("within {}s of the IdP's clock", skew.abs().max(1)),
        )
    }
}

fn str_list(doc: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
    doc.get(key).and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    })
}

/// What discovery advertises against what Portcullis will ask for: scopes (seed 001: a subset
/// of the IdP's, `offline_access` where needed), `response_type=code` and the code grant
/// (R-CFG-7), PKCE S256 (R-AZ-2) and the token endpoint auth method.
pub fn metadata_support(
    doc: &Map<String, Value>,
    scopes: &[String],
    auth_method: ClientAuthMethod,
    custom_parameters: &BTreeMap<String, String>,
) -> Vec<Finding> {
    let mut out = Vec::new();

    // Scopes.
    const S: &str = "scopes";
    match str_list(doc, "scopes_supported") {
        None => out.push(Finding::warning(
            S,
            format!(
                "the IdP does not list scopes_supported; cannot check {}",
                scopes.join(" ")
            ),
            "compare OIDC_SCOPES with the scopes granted to the client at the IdP",
        )),
        Some(supported) => {
            let missing: Vec<&String> = scopes.iter().filter(|s| !supported.contains(s)).collect();
            if missing.is_empty() {
                out.push(Finding::ok(
                    S,
                    format!("{} all advertised by the IdP", scopes.join(" ")),
                ));
            } else {
                let offline = missing.iter().any(|s| *s == "offline_access");
                let google = custom_parameters.contains_key("access_type")
                    || doc.get("issuer").and_then(Value::as_str)
                        == Some("https://accounts.google.com");
                let fix = if offline && google {
                    "this IdP grants offline access through `access_type: offline`, not a scope: remove offline_access from the scopes".to_string()
                } else if offline {
                    "offline_access is not offered: enable offline access / refresh tokens for the client at the IdP (Microsoft: the \"Maintain access to data you have given it access to\" permission), or remove offline_access".into()
                } else {
                    "remove the scope(s) from OIDC_SCOPES / scope, or define them at the IdP (seed 001: the scope list must be a subset of the IdP's)".into()
                };
                out.push(Finding::problem(
                    S,
                    format!(
                        "the IdP does not offer: {} (it offers {})",
                        missing
                            .iter()
                            .map(|s| escape(s))
                            .collect::<Vec<_>>()
                            .join(" "),
                        supported
                            .iter()
                            .map(|s| escape(s))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                    fix,
                ));
            }
        }
    }

    // Response type and grant.
    const R: &str = "response-type";
    let rts = str_list(doc, "response_types_supported");
    let grants = str_list(doc, "grant_types_supported");
    if rts.as_ref().is_some_and(|r| !r.iter().any(|t| t == "code")) {
        out.push(Finding::problem(
            R,
            "the IdP does not support response_type=code",
            "Portcullis uses only the authorization code flow; enable it for the client at the IdP",
        ));
    } else if grants
        .as_ref()
        .is_some_and(|g| !g.iter().any(|t| t == "authorization_code"))
    {
        out.push(Finding::problem(
            R,
            "the IdP does not list the authorization_code grant",
            "enable the authorization code grant for the client at the IdP",
        ));
    } else if rts.is_none() {
        out.push(Finding::warning(
            R,
            "discovery has no response_types_supported (it is required)",
            "check the IdP supports response_type=code",
        ));
    } else {
        out.push(Finding::ok(
            R,
            "response_type=code and the authorization code grant are supported",
        ));
    }

    // PKCE.
    const P: &str = "pkce";
    match str_list(doc, "code_challenge_methods_supported") {
        Some(m) if m.iter().any(|x| x == "S256") => {
            out.push(Finding::ok(P, "code_challenge_method S256 supported"))
        }
        Some(m) => out.push(Finding::problem(
            P,
            format!(
                "the IdP supports PKCE methods {} but not S256",
                m.iter().map(|s| escape(s)).collect::<Vec<_>>().join(",")
            ),
            "enable PKCE S256 at the IdP; Portcullis never sends `plain` (RFC 7636 §7.2)",
        )),
        None => out.push(Finding::warning(
            P,
            "the IdP does not advertise code_challenge_methods_supported",
            "Portcullis always sends PKCE S256; make sure the IdP accepts it (most do without saying so)",
        )),
    }

    // Token endpoint authentication.
    const T: &str = "token-endpoint-auth";
    let want = auth_method.as_str();
    // Discovery §3: when omitted, the default is client_secret_basic.
    let methods = str_list(doc, "token_endpoint_auth_methods_supported")
        .unwrap_or_else(|| vec!["client_secret_basic".into()]);
    if methods.iter().any(|m| m == want) {
        out.push(Finding::ok(T, format!("{want} supported")));
    } else {
        let other = if want == "client_secret_post" {
            "client_secret_basic"
        } else {
            "client_secret_post"
        };
        let fix = if auth_method == ClientAuthMethod::PrivateKeyJwt {
            "register Portcullis's public key at the IdP with token_endpoint_auth_method private_key_jwt, or use a client secret (OIDC_TOKEN_ENDPOINT_AUTH_METHOD=client_secret_basic)".into()
        } else if methods.iter().any(|m| m == other) {
            format!("set OIDC_TOKEN_ENDPOINT_AUTH_METHOD={other}")
        } else {
            "the IdP supports neither client_secret_post nor client_secret_basic for this client; register Portcullis as a confidential web client with a client secret".into()
        };
        out.push(Finding::problem(
            T,
            format!(
                "the IdP does not support {want} (it lists {})",
                methods
                    .iter()
                    .map(|s| escape(s))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            fix,
        ));
    }
    out
}

// ------------------------------------------------------------------------------------------
// Claims (with a sample) and groups
// ------------------------------------------------------------------------------------------

/// Claim keys and groups against a sample of the IdP's claims (a decoded ID token or a
/// userinfo answer, `--claims FILE`). Without a sample: skipped, saying how to check.
pub fn claims(
    sample: Option<&Map<String, Value>>,
    keys: &ClaimKeys,
    authz: &AuthzSettings,
) -> Vec<Finding> {
    const C: &str = "claims";
    const G: &str = "groups";
    let Some(c) = sample else {
        return vec![
            Finding::skipped(
                C,
                "not checked: pass --claims FILE (a decoded ID token or userinfo JSON of a test user, or the ID token itself)",
            ),
            Finding::skipped(G, "not checked: needs --claims FILE"),
        ];
    };
    let look = |k: &str| crate::claims::lookup(c, k);
    let mut out = Vec::new();
    let mut missing_opt = Vec::new();
    let mut problems = Vec::new();
    match look(&keys.id) {
        Some(Value::String(s)) if !s.is_empty() => {}
        _ => problems.push(format!(
            "user id claim `{}` (OIDC_USER_ID_KEY) is missing or not a string",
            escape(&keys.id)
        )),
    }
    if keys.id != "sub" && !matches!(c.get("sub"), Some(Value::String(_))) {
        problems.push("`sub` is missing: every ID token must carry it".into());
    }
    for (name, key) in [
        ("OIDC_USER_EMAIL_KEY", &keys.email),
        ("OIDC_USER_NAME_KEY", &keys.name),
        ("usernameField / OIDC_USER_USERNAME_KEY", &keys.username),
    ] {
        if look(key).is_none() {
            missing_opt.push(format!("`{}` ({name})", escape(key)));
        }
    }
    if matches!(c.get("email_verified"), Some(Value::Bool(false))) && !keys.allow_unverified_email {
        problems.push("email_verified is false: this person's sign-in would be refused".into());
    }
    if !problems.is_empty() {
        out.push(Finding::problem(
            C,
            problems.join("; "),
            "set the claim keys (OIDC_USER_*_KEY, usernameField) to claims the IdP sends, or request the scope that carries them (email, profile)",
        ));
    } else if !missing_opt.is_empty() {
        out.push(Finding::warning(
            C,
            format!("not in the sample: {}", missing_opt.join(", ")),
            "request the `email`/`profile` scopes or point the key at a claim the IdP sends (seed 001: many IdPs omit preferred_username; `email` is a good usernameField)",
        ));
    } else {
        out.push(Finding::ok(
            C,
            "the user id, email, name and username claims are present",
        ));
    }

    let groups: Option<Vec<String>> = match look(&keys.groups) {
        None => None,
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(_) => Some(Vec::new()),
    };
    let roles_configured = !authz.roles.is_empty();
    match groups {
        None if roles_configured => out.push(Finding::problem(
            G,
            format!("the groups claim `{}` (groupsField) is not in the sample: nobody would get a role", escape(&keys.groups)),
            "have the IdP put groups in the ID token or userinfo (often a `groups` scope or a group claim mapper), or set groupsField / OIDC_USER_GROUPS_KEY to the claim that has them (Keycloak: realm_access.roles)",
        )),
        None => out.push(Finding::ok(G, "no groups claim, and no roles are configured")),
        Some(g) => match authz.roles_of(&g) {
            Ok(roles) if roles.is_empty() && roles_configured => out.push(Finding::warning(
                G,
                format!("{} group(s) in `{}`; none grants a configured role", g.len(), escape(&keys.groups)),
                "compare the role lists (guest, powerUser, admin, platformAdmin, …) with the group names the IdP sends, exactly (case-sensitive)",
            )),
            Ok(roles) => out.push(Finding::ok(
                G,
                format!("{} group(s) in `{}` → role(s): {}", g.len(), escape(&keys.groups), if roles.is_empty() { "none".into() } else { roles.iter().map(|r| escape(r)).collect::<Vec<_>>().join(", ") }),
            )),
            Err(_) => out.push(Finding::warning(
                G,
                format!("{} group(s) in `{}`; none grants a role, so this person would be refused (noRole: deny)", g.len(), escape(&keys.groups)),
                "compare the role lists with the group names the IdP sends, exactly (case-sensitive)",
            )),
        },
    }
    out
}

// ------------------------------------------------------------------------------------------
// CORS, upstream, database
// ------------------------------------------------------------------------------------------

/// Configured CORS origins (seed 000: "CORS errors in browser console — missing frontend
/// origin"): exact origins, https unless loopback, not the public origin itself.
pub fn cors_origins(origins: &[String], public_origin: &str) -> Finding {
    const C: &str = "cors-origins";
    if origins.is_empty() {
        return Finding::ok(
            C,
            format!(
                "none besides {public_origin} (if a frontend on another origin gets CORS errors, add it to PORTCULLIS_CORS_ORIGINS)"
            ),
        );
    }
    let mut bad = Vec::new();
    let mut redundant = Vec::new();
    for o in origins {
        match url::Url::parse(o) {
            Ok(u)
                if u.origin().ascii_serialization() == *o
                    && (u.scheme() == "https" || is_loopback_url(&u)) =>
            {
                if o == public_origin {
                    redundant.push(escape(o));
                }
            }
            _ => bad.push(escape(o)),
        }
    }
    if !bad.is_empty() {
        return Finding::problem(
            C,
            format!("not an exact https origin: {}", bad.join(", ")),
            "write each origin as https://host[:port], without path or trailing slash",
        );
    }
    if !redundant.is_empty() {
        return Finding::warning(
            C,
            format!("{} is the public URL's own origin", redundant.join(", ")),
            "remove it: same-origin requests need no CORS entry",
        );
    }
    Finding::ok(C, format!("{} origin(s), well-formed", origins.len()))
}

/// Idle timeout below which the guide's "sessions expire too quickly" is likely (seconds).
pub const SHORT_IDLE_SECS: i64 = 10 * 60;
/// Absolute lifetime below which the same is likely (seconds).
pub const SHORT_ABSOLUTE_SECS: i64 = 60 * 60;

/// Session lifetimes (seed 000: "Sessions expire too quickly — default 30-minute TTL with
/// automatic refresh").
pub fn sessions(l: &crate::config::SessionLifetimes) -> Finding {
    const C: &str = "sessions";
    let detail = format!(
        "session JWT valid {} min and re-issued while the person is active (idle timeout {} min); at most {} h from sign-in",
        l.ttl / 60,
        l.ttl / 60,
        l.absolute / 3600
    );
    if l.ttl < SHORT_IDLE_SECS || l.absolute < SHORT_ABSOLUTE_SECS {
        return Finding::warning(
            C,
            detail,
            "if people complain that sessions expire too quickly, raise PORTCULLIS_SESSION_MAX_LIFETIME (and PORTCULLIS_SESSION_TTL, up to 1800)",
        );
    }
    Finding::ok(C, detail)
}

/// Back-channel logout (seed 000, optional): whether the IdP can tell Portcullis that a user was
/// disabled, and the URL to register for it.
pub fn backchannel_logout(doc: &Map<String, Value>, public_origin: &str) -> Finding {
    const C: &str = "backchannel-logout";
    if doc.get("backchannel_logout_supported") == Some(&Value::Bool(true)) {
        Finding::ok(
            C,
            format!(
                "supported by the IdP; register {public_origin}/api/backchannel-logout as the client's back-channel logout URL so that disabling a user at the IdP ends their sessions here (optional)"
            ),
        )
    } else {
        Finding::ok(
            C,
            "the IdP does not advertise back-channel logout (optional): a user disabled at the IdP keeps a session here until it expires",
        )
    }
}

/// What the upstream probe saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamFacts {
    NotConfigured,
    Answered { status: u16 },
    Failed(FetchFailure),
}

/// The application behind Portcullis answers HTTP (any status is "up").
pub fn upstream(url: Option<&url::Url>, facts: &UpstreamFacts) -> Finding {
    const C: &str = "upstream";
    let url = url.map(shown_url);
    match (url.as_deref(), facts) {
        (_, UpstreamFacts::NotConfigured) | (None, _) => Finding::warning(
            C,
            "no upstream configured (PORTCULLIS_UPSTREAM): signed-in users will see a \"no application configured\" page",
            "set PORTCULLIS_UPSTREAM to your application's base URL, e.g. http://app:3000",
        ),
        (Some(u), UpstreamFacts::Answered { status }) if *status >= 500 => Finding::warning(
            C,
            format!("{u} answered HTTP {status}"),
            "the application is reachable but failing; check its logs",
        ),
        (Some(u), UpstreamFacts::Answered { status }) => {
            Finding::ok(C, format!("{u} answered HTTP {status}"))
        }
        (Some(u), UpstreamFacts::Failed(e)) => Finding::problem(
            C,
            format!("{u}: {}", escape(&e.reason)),
            "start the application, or correct PORTCULLIS_UPSTREAM (host and port as seen from where Portcullis runs)",
        ),
    }
}

/// What the read-only database probe saw. `label` never holds a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseFacts {
    /// The SQLite file does not exist yet.
    SqliteMissing {
        label: String,
    },
    Unreachable {
        label: String,
        reason: String,
    },
    /// Connected; the migration history compared with this binary's migrations.
    Reached {
        label: String,
        /// No migrations table: an empty database.
        fresh: bool,
        pending: Vec<i64>,
        failed: Vec<i64>,
        /// Applied here but unknown to this binary (a newer Portcullis migrated it).
        unknown: Vec<i64>,
        /// Applied with a different checksum than this binary's file.
        modified: Vec<i64>,
    },
}

fn list(v: &[i64]) -> String {
    v.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// Database reachable and migrated. Doctor never migrates; `serve` applies pending migrations
/// at start, so those are a warning, not a problem.
pub fn database(facts: &DatabaseFacts) -> Finding {
    const C: &str = "database";
    match facts {
        DatabaseFacts::SqliteMissing { label } => Finding::warning(
            C,
            format!("{label} does not exist yet"),
            "`portcullis serve` creates it at first start; if it should exist, check PORTCULLIS_DATABASE_URL and the volume mount",
        ),
        DatabaseFacts::Unreachable { label, reason } => Finding::problem(
            C,
            format!("cannot open {label}: {}", escape(reason)),
            "check PORTCULLIS_DATABASE_URL (host, port, database, user, password, sslmode) and that the database accepts connections from here",
        ),
        DatabaseFacts::Reached {
            label, fresh: true, ..
        } => Finding::warning(
            C,
            format!("{label} is reachable but empty (no Portcullis tables)"),
            "`portcullis serve` creates the tables at first start",
        ),
        DatabaseFacts::Reached {
            label,
            failed,
            unknown,
            modified,
            pending,
            ..
        } => {
            if !failed.is_empty() {
                Finding::problem(
                    C,
                    format!("{label}: migration(s) {} failed half-way", list(failed)),
                    "restore the database from a backup taken before the upgrade, then start `portcullis serve` again",
                )
            } else if !unknown.is_empty() {
                Finding::problem(
                    C,
                    format!(
                        "{label} was migrated by a newer Portcullis (migration(s) {} unknown to this binary)",
                        list(unknown)
                    ),
                    "run the same (or a newer) Portcullis version as the one that migrated the database",
                )
            } else if !modified.is_empty() {
                Finding::problem(
                    C,
                    format!(
                        "{label}: migration(s) {} differ from this binary's",
                        list(modified)
                    ),
                    "the database was migrated by a different build of Portcullis; use the matching release",
                )
            } else if !pending.is_empty() {
                Finding::warning(
                    C,
                    format!(
                        "{label}: reachable; {} migration(s) pending ({})",
                        pending.len(),
                        list(pending)
                    ),
                    "`portcullis serve` applies them at start (take a backup first)",
                )
            } else {
                Finding::ok(C, format!("{label}: reachable, all migrations applied"))
            }
        }
    }
}

/// A database URL safe to print: `postgres://user@host:port/db` (password and query removed),
/// or the SQLite path.
pub fn redact_database_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if matches!(u.scheme(), "postgres" | "postgresql") => {
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        // Not a URL we understand: show only what follows an `@` (never a password).
        _ => url
            .rsplit('@')
            .next()
            .unwrap_or("")
            .chars()
            .take(80)
            .collect(),
    }
}

/// `private_key_jwt`: which key signs (its algorithm and `kid`), and the public JWK to
/// register at the IdP. The key itself was checked with the configuration.
pub fn client_key(key: &crate::oidc::client_assertion::ClientKey) -> Finding {
    Finding::ok(
        "client-key",
        format!(
            "private_key_jwt with an {} key{}; the IdP must have this public key registered: {}",
            key.alg(),
            key.kid()
                .map(|k| format!(" (kid `{}`)", escape(k)))
                .unwrap_or_default(),
            key.public_jwk()
        ),
    )
}

/// Pushed authorization requests (RFC 9126): whether sign-ins will use them.
pub fn pushed_authorization(doc: &Map<String, Value>, mode: crate::config::ParMode) -> Finding {
    use crate::config::ParMode;
    const C: &str = "pushed-authorization";
    let advertised = doc
        .get("pushed_authorization_request_endpoint")
        .and_then(Value::as_str)
        .is_some();
    let required_by_idp = doc
        .get("require_pushed_authorization_requests")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    match (mode, advertised) {
        (ParMode::Off, _) if required_by_idp => Finding::problem(
            C,
            "the IdP requires pushed authorization requests, but OIDC_PUSHED_AUTHORIZATION_REQUESTS=off",
            "set OIDC_PUSHED_AUTHORIZATION_REQUESTS=auto",
        ),
        (ParMode::Off, _) => Finding::ok(C, "off: the parameters travel in the authorization URL"),
        (_, true) => Finding::ok(
            C,
            "in use: sign-ins push their parameters to the IdP's pushed_authorization_request_endpoint",
        ),
        (ParMode::Required, false) => Finding::problem(
            C,
            "OIDC_PUSHED_AUTHORIZATION_REQUESTS=required, but the IdP advertises no pushed_authorization_request_endpoint",
            "enable pushed authorization requests at the IdP, or set OIDC_PUSHED_AUTHORIZATION_REQUESTS=auto",
        ),
        (_, false) => Finding::ok(
            C,
            "not used: the IdP does not advertise a pushed_authorization_request_endpoint",
        ),
    }
}
