//! The request path an authorization decision is made on (`normalize_path`, and
//! `Policies::decide` with every reading of the path), under fixed policies. Whatever path
//! normalizes into `/admin`, in any case, is never let through without the `admin` role.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::authz::{Decision, Policies, Policy, normalize_path};

fn policies() -> &'static Policies {
    static P: OnceLock<Policies> = OnceLock::new();
    P.get_or_init(|| {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let list = [
            Policy::new("/admin/", None, roles(&["admin"])),
            Policy::new("/audit", None, roles(&["auditor", "admin"])),
            Policy::new("/api/", Some(roles(&["GET"])), roles(&["reader"])),
        ];
        match list.into_iter().collect::<Result<Vec<_>, _>>() {
            Ok(l) => Policies::new(l),
            Err(_) => std::process::abort(),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the method, the rest the request target.
    let (method, raw) = text.split_once('\n').unwrap_or(("GET", text));
    let nobody = policies().decide(method, raw, &[]);
    let admin = policies().decide(method, raw, &["admin".to_owned()]);
    if let Some(p) = normalize_path(raw) {
        let folded = p.to_lowercase();
        if folded == "/admin" || folded.starts_with("/admin/") {
            assert!(
                matches!(nobody, Decision::Deny { .. }),
                "{raw:?} -> {p:?} let through"
            );
        }
    } else {
        assert!(matches!(nobody, Decision::Deny { .. }) && matches!(admin, Decision::Deny { .. }));
    }
});
