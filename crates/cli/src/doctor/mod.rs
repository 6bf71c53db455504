//! `portcullis doctor`: check a configuration against the real IdP and say, check by check,
//! what is fine and how to fix what is not. The verdicts are `portcullis_core::doctor`'s; this
//! module loads the configuration exactly as `serve` does and fetches the facts (probe.rs).
//!
//! Exit codes: 0 no problem (warnings allowed), 1 at least one problem, 2 doctor itself could
//! not run (unreadable configuration or `--claims` file).

mod probe;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use portcullis_core::config::{self, Config, OidcConfig, RawSettings};
use portcullis_core::doctor::{self as judge, Finding};
use portcullis_core::oidc::authorize::{
    AuthorizationRequest, authorization_params, authorization_url,
};
use portcullis_core::oidc::discovery::{discovery_candidates, merge};
use portcullis_core::oidc::par::par_authorization_url;
use portcullis_core::oidc::pkce::{pkce_challenge, random_token};
use portcullis_gateway::idp::IdpHttp;
use portcullis_gateway::idp::client::{CAP_DISCOVERY, CAP_JWKS};
use serde_json::{Map, Value};

#[derive(Args)]
pub struct DoctorArgs {
    /// YAML configuration file (as for `serve`); the environment wins over it.
    #[arg(long, env = "PORTCULLIS_CONFIG")]
    config: Option<PathBuf>,
    /// Print a JSON array of {check, verdict, detail, fix} instead of text.
    #[arg(long)]
    json: bool,
    /// Check the claim keys and groups against a sample of the IdP's claims: a JSON file with
    /// a decoded ID token payload or a userinfo answer of a test user, or the ID token itself
    /// (its signature is not checked; only claim names and groups are read).
    #[arg(long, value_name = "FILE")]
    claims: Option<PathBuf>,
}

/// Why doctor could not run at all (exit 2).
#[derive(Debug, thiserror::Error)]
enum DoctorError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("--claims {0}: not a JSON object nor a JWT")]
    Claims(String),
}

pub async fn run(args: DoctorArgs) -> ExitCode {
    portcullis_core::jose::install_crypto_provider();
    match collect(&args).await {
        Ok(findings) => {
            let out = if args.json {
                format!("{}\n", judge::render_json(&findings))
            } else {
                let colour =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                judge::render_text(&findings, colour)
            };
            // A closed stdout (piped into `head`) is not a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
            ExitCode::from(judge::exit_code(&findings))
        }
        Err(e) => {
            eprintln!("portcullis doctor: {e}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &PathBuf) -> Result<String, DoctorError> {
    std::fs::read_to_string(path).map_err(|source| DoctorError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// Variables the CLI itself reads (not settings): never "unknown".
const CLI_VARS: &[&str] = &["PORTCULLIS_LOG_FORMAT", "PORTCULLIS_CONFIG"];

/// Every check, in report order.
async fn collect(args: &DoctorArgs) -> Result<Vec<Finding>, DoctorError> {
    let sample = match &args.claims {
        Some(p) => Some(claims_sample(&read(p)?, p)?),
        None => None,
    };
    // The same sources and layering as `serve` (config::load): file, then the environment.
    let text = args.config.as_ref().map(read).transpose()?;
    let label = args
        .config
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let env = |k: &str| std::env::var(k).ok();
    let mut raw = RawSettings::default();
    let mut file_problem = None;
    if let Some(t) = &text {
        match config::parse_file(&label, t) {
            Ok(r) => raw = r,
            Err(e) => file_problem = Some(config::Problem::new(e.to_string())),
        }
    }
    raw.overlay(&config::from_env(&env));
    let mut warnings: Vec<String> = config::unknown_vars(
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| !CLI_VARS.contains(&k.as_str()))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str),
    )
    .into_iter()
    .map(|v| format!("unknown setting {v} in the environment (ignored); check its spelling"))
    .collect();
    let validated = match file_problem {
        Some(p) => Err(vec![p]),
        None => config::validate(&raw),
    };

    let mut out = Vec::new();
    let cfg = match validated {
        Ok(cfg) => {
            // The secret check below judges the secret; don't say it twice.
            warnings.extend(
                cfg.warnings
                    .iter()
                    .filter(|w| !w.starts_with("JWT_SIGNING_SECRET"))
                    .cloned(),
            );
            out.extend(judge::configuration(&[], &warnings));
            Some(cfg)
        }
        Err(problems) => {
            // The two secret checks below report these; don't say them twice.
            let rest: Vec<config::Problem> = problems
                .into_iter()
                .filter(|p| {
                    !p.0.starts_with("JWT_SIGNING_SECRET is ")
                        && !p.0.starts_with("OIDC_CLIENT_SECRET (secret) is required")
                })
                .collect();
            out.extend(
                judge::configuration(&rest, &warnings)
                    .into_iter()
                    .filter(|f| f.verdict != judge::Verdict::Ok),
            );
            None
        }
    };
    out.push(judge::jwt_signing_secret(raw.jwt_signing_secret.as_deref()));
    // With private_key_jwt there is no secret to judge; the key is reported below.
    if raw.token_endpoint_auth_method.as_deref() != Some("private_key_jwt") {
        out.push(judge::client_secret(
            raw.client_secret.as_deref(),
            raw.jwt_signing_secret.as_deref(),
        ));
    }
    let Some(cfg) = cfg else {
        out.push(Finding::skipped(
            "idp",
            "the IdP, upstream and database checks need a valid configuration: fix the problems above first",
        ));
        return Ok(out);
    };
    if let Some(key) = &cfg.oidc.client_key {
        out.push(judge::client_key(key));
    }
    out.push(judge::redirect_uri(&cfg.oidc.redirect_url, &cfg.public_url));
    out.push(judge::cors_origins(
        &cfg.browser.cors_origins,
        &cfg.public_origin(),
    ));
    out.push(judge::sessions(&cfg.sessions));
    out.extend(idp_checks(&cfg, &cfg.oidc, Some(sample.as_ref())).await);
    // The file's further IdPs, each checked the same way (the claims sample is the first's).
    for extra in &cfg.more_idps {
        let mut found = vec![judge::redirect_uri(
            &extra.oidc.redirect_url,
            &cfg.public_url,
        )];
        found.extend(idp_checks(&cfg, &extra.oidc, None).await);
        for f in &mut found {
            f.detail = format!("IdP `{}`: {}", extra.label.id, f.detail);
        }
        out.extend(found);
    }
    let upstream = match &cfg.upstream {
        Some(u) => probe::upstream(u, &cfg.upstream_tls).await,
        None => judge::UpstreamFacts::NotConfigured,
    };
    out.push(judge::upstream(cfg.upstream.as_ref(), &upstream));
    out.push(judge::database(&probe::database(&cfg.database).await));
    Ok(out)
}

/// Discovery, issuer, TLS, clock, JWKS, algorithms, metadata support, the probe authorization
/// request, claims.
async fn idp_checks(
    cfg: &Config,
    oidc: &OidcConfig,
    // `None`: no claims check (the further IdPs; the sample is the first IdP's).
    sample: Option<Option<&Map<String, Value>>>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let insecure = oidc.allow_insecure_http;
    // The custom CA, read exactly as `serve` reads it (file://, https:// or inline).
    let ca = match portcullis_gateway::state::load_ca_of(oidc).await {
        Ok(ca) => ca,
        Err(e) => {
            out.push(Finding::problem(
                "tls",
                e.to_string(),
                "OIDC_SIGNER_PEM_URL must give a PEM with the CA certificate (and no private key), readable from here",
            ));
            out.push(skipped_idp());
            return out;
        }
    };
    let (http, client) = match (
        IdpHttp::new(ca.as_deref()),
        probe::probe_client(ca.as_deref()),
    ) {
        (Ok(h), Ok(c)) => (h, c),
        (Err(e), _) => {
            out.push(Finding::problem(
                "tls",
                e.to_string(),
                "OIDC_SIGNER_PEM_URL must hold valid PEM certificates",
            ));
            out.push(skipped_idp());
            return out;
        }
        (_, Err(e)) => {
            out.push(Finding::problem(
                "tls",
                e.to_string(),
                "OIDC_SIGNER_PEM_URL must hold valid PEM certificates",
            ));
            out.push(skipped_idp());
            return out;
        }
    };

    // Discovery: configured, or (manual endpoints) looked for the way the gateway does.
    let ep = &oidc.endpoints;
    let mut doc: Option<Map<String, Value>> = None;
    match &ep.discovery_url {
        Some(url) => {
            let fetched = probe::fetch(&http, url, CAP_DISCOVERY).await;
            let (f, d) = judge::discovery(url, &fetched, insecure);
            out.extend(f);
            doc = d;
        }
        None => {
            let candidates = ep
                .authorization_endpoint
                .as_ref()
                .map(discovery_candidates)
                .unwrap_or_default();
            for url in candidates {
                if let Ok(r) = probe::fetch(&http, &url, CAP_DISCOVERY).await
                    && r.status == 200
                {
                    let (f, d) = judge::discovery(&url, &Ok(r), insecure);
                    if d.is_some() {
                        out.extend(f);
                        doc = d;
                        break;
                    }
                }
            }
            if doc.is_none() {
                out.push(Finding::skipped(
                    "discovery",
                    "manual endpoints and no discovery document found under the authorization endpoint",
                ));
            }
        }
    }

    // TLS and the clock, from one GET with the probe client (also when discovery failed: a
    // TLS failure is the likeliest reason).
    let probe_url = ep
        .discovery_url
        .clone()
        .or_else(|| ep.authorization_endpoint.clone());
    if let Some(probe_url) = &probe_url {
        let host = probe_url.host_str().unwrap_or("the IdP").to_owned();
        let probed = probe::tls_and_date(&client, probe_url, ca.is_some()).await;
        out.extend(judge::tls(&host, &probed.tls, now()));
        out.push(judge::clock_skew(probed.date, now()));
    }

    let meta = match merge(ep, doc.as_ref()) {
        Ok(m) => m,
        Err(e) => {
            if doc.is_some() || ep.discovery_url.is_none() {
                out.push(Finding::problem(
                    "idp-endpoints",
                    e.to_string(),
                    "set OIDC_DISCOVERY_URL, or all of OIDC_ISSUER, OIDC_AUTHORIZATION_ENDPOINT, OIDC_TOKEN_ENDPOINT and OIDC_JWKS_URI",
                ));
            }
            out.push(skipped_idp());
            return out;
        }
    };

    let jwks = probe::fetch(&http, &meta.jwks_uri, CAP_JWKS).await;
    out.extend(judge::jwks(
        &meta.jwks_uri,
        &jwks,
        &oidc.allowed_algs,
        doc.as_ref(),
    ));
    match &doc {
        Some(d) => {
            out.extend(judge::metadata_support(
                d,
                &oidc.scopes,
                oidc.auth_method,
                &oidc.custom_parameters,
            ));
            out.push(judge::pushed_authorization(
                d,
                oidc.pushed_authorization_requests,
            ));
            out.push(judge::backchannel_logout(d, &cfg.public_origin()));
        }
        None => out.push(Finding::skipped(
            "scopes",
            "no discovery document: scopes, response types, PKCE and auth methods not checked",
        )),
    }

    // The probe authorization request: fresh state, nonce and PKCE, like a real sign-in.
    match (random_token(), random_token(), random_token()) {
        (Ok(state), Ok(nonce), Ok(verifier)) => {
            let challenge = pkce_challenge(&verifier);
            let request = AuthorizationRequest {
                client_id: &oidc.client_id,
                redirect_uri: oidc.redirect_url.as_str(),
                scopes: &oidc.scopes,
                state: &state,
                nonce: &nonce,
                code_challenge: &challenge,
                custom_parameters: &oidc.custom_parameters,
            };
            // As a sign-in does: with PAR the parameters are pushed first (which also tries
            // the client authentication at the IdP), and only the reference is probed.
            let url = match portcullis_gateway::idp::par::endpoint(oidc, &meta) {
                None => Some(authorization_url(&meta.authorization_endpoint, &request)),
                Some(endpoint) => match portcullis_gateway::idp::par::push(
                    &http,
                    &endpoint,
                    oidc,
                    &meta.issuer,
                    authorization_params(&request),
                    now(),
                )
                .await
                {
                    Ok(p) => Some(par_authorization_url(
                        &meta.authorization_endpoint,
                        &oidc.client_id,
                        &p.request_uri,
                    )),
                    Err(e) => {
                        out.push(Finding::problem(
                            "redirect-uri-registered",
                            format!("the pushed authorization request failed: {e}"),
                            "check the client's registration at the IdP: its client authentication (secret or registered public key), redirect URI and allowed scopes",
                        ));
                        None
                    }
                },
            };
            if let Some(url) = url {
                let answer = probe::authorize(&client, &url).await;
                out.push(judge::authorization_probe(
                    oidc.redirect_url.as_str(),
                    &oidc.client_id,
                    &answer,
                ));
            }
        }
        _ => out.push(Finding::skipped(
            "redirect-uri-registered",
            "the system random generator failed",
        )),
    }
    if let Some(sample) = sample {
        out.extend(judge::claims(sample, &oidc.claim_keys, &cfg.authz));
    }
    out
}

fn skipped_idp() -> Finding {
    Finding::skipped(
        "idp",
        "the remaining IdP checks need the checks above to pass",
    )
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `--claims FILE`: a JSON object, or a compact JWT whose payload is read without checking its
/// signature (only claim names and groups are looked at; nothing is trusted).
fn claims_sample(text: &str, path: &std::path::Path) -> Result<Map<String, Value>, DoctorError> {
    use base64::Engine;
    let bad = || DoctorError::Claims(path.display().to_string());
    let t = text.trim();
    let bytes = if t.starts_with('{') {
        t.as_bytes().to_vec()
    } else {
        let mut parts = t.split('.');
        let (Some(_), Some(payload), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| bad())?
    };
    portcullis_core::jose::json::parse_strict_object(&bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// `--claims`: a JSON object or a compact JWT's payload; anything else refused; duplicate
    /// members refused (strict JSON, as for real tokens).
    #[test]
    fn claims_samples() {
        let p = std::path::Path::new("c.json");
        assert_eq!(claims_sample(r#" {"sub":"a"} "#, p).unwrap()["sub"], "a");
        // {"sub":"b"} as the payload of a JWT.
        assert_eq!(
            claims_sample("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJiIn0.c2ln\n", p).unwrap()["sub"],
            "b"
        );
        for bad in [
            "",
            "[1]",
            "a.b",
            "a.!!.c",
            "a.b.c.d",
            r#"{"sub":"a","sub":"b"}"#,
        ] {
            assert!(claims_sample(bad, p).is_err(), "{bad}");
        }
    }
}
