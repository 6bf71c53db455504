//! The configuration file (`config::load`, YAML through serde-saphyr, then validation to a
//! config or a list of problems): alone, and under an environment that sets the required
//! settings, so validation of the file's own members is reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config;

/// The required settings, as a deployment sets them in the environment.
fn base_env(name: &str) -> Option<String> {
    let v = match name {
        "OIDC_DISCOVERY_URL" => "https://idp.example.com/.well-known/openid-configuration",
        "OIDC_CLIENT_ID" => "portcullis",
        "OIDC_CLIENT_SECRET" => "client-secret",
        "JWT_SIGNING_SECRET" => "fuzz-secret-0123456789abcdef-0123",
        "PORTCULLIS_PUBLIC_URL" => "https://gw.example.com",
        _ => return None,
    };
    Some(v.to_owned())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let no_env = |_: &str| None;
    for env in [&no_env as &dyn Fn(&str) -> Option<String>, &base_env] {
        if let Err(problems) = config::load(env, Some(("portcullis.yaml", text))) {
            assert!(!problems.is_empty(), "refused without a problem");
            assert!(problems.iter().all(|p| !p.to_string().is_empty()));
        }
    }
});
