//! The path an authorization decision is made on (R-HD-5): decoded once, dot segments resolved,
//! `//` collapsed, query and fragment ignored. Only the request line counts; `X-Forwarded-Uri`,
//! `X-Original-URL` and `X-Rewrite-URL` never reach this module.
//!
//! Besides the one normal form, [`readings`] lists the other paths a plausible upstream might
//! act on (a second decode, `;params` kept as part of a segment, a decoded `?` taken as the end
//! of the path). A policy decision must hold for every reading, so a path that some upstream
//! could resolve to a protected prefix is judged as that prefix too; readings can only add
//! denials, never allow what the normal form denies.

/// Decode rounds tried after the first one when listing readings (`%2525…` nests deeper, but
/// every round that still changes the path is another chance for an upstream to differ).
const EXTRA_DECODES: usize = 2;

/// The normalized path for authorization decisions, or `None` (deny) when the path cannot be
/// judged: it is not UTF-8 after decoding, or decodes to a control character (NUL, CR, LF, …),
/// which some stacks truncate or split at.
///
/// Steps: the part before `?`/`#`; percent-decoded exactly once (invalid escapes such as `%zz`
/// stay as they are); `\` read as `/` (IIS, some Windows-backed servers); `;params` cut from
/// every segment (Tomcat and Jetty read `/..;/` as `/../`); `.` and `..` resolved, never above
/// the root; repeated `/` collapsed. A trailing slash is kept (also after a final `.` or `..`,
/// as RFC 3986 §5.2.4 does). Case is preserved: matching decides about case.
pub fn normalize_path(raw: &str) -> Option<String> {
    let once = decode_once(path_part(raw))?;
    Some(resolve(&once, true))
}

/// Every reading of `raw` that an upstream might act on; the first is [`normalize_path`]'s,
/// the rest are distinct from it and from each other. `None` exactly when `normalize_path` is.
pub(crate) fn readings(raw: &str) -> Option<Vec<String>> {
    let once = decode_once(path_part(raw))?;
    let mut out = vec![resolve(&once, true)];
    let mut variants = vec![once.clone()];
    let mut current = once;
    for _ in 0..EXTRA_DECODES {
        // Lossy: a further decode is a guess about an upstream, not the request itself; bytes
        // that are not UTF-8 cannot spell a protected ASCII prefix either way.
        let next = String::from_utf8_lossy(&percent_decode(&current)).into_owned();
        if next == current {
            break;
        }
        variants.push(next.clone());
        current = next;
    }
    for v in &variants {
        let cut = v.find(['?', '#', '\0']).map(|i| &v[..i]);
        for text in std::iter::once(v.as_str()).chain(cut) {
            for strip_params in [true, false] {
                let r = resolve(text, strip_params);
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
    }
    Some(out)
}

/// The path without query and fragment (split before decoding: an encoded `?` is path data).
fn path_part(raw: &str) -> &str {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    &raw[..end]
}

/// One decode, refusing what cannot be judged (see [`normalize_path`]).
fn decode_once(path: &str) -> Option<String> {
    let text = String::from_utf8(percent_decode(path)).ok()?;
    if text.chars().any(char::is_control) {
        return None;
    }
    Some(text)
}

/// Percent-decode every valid `%XX`; anything else (`%zz`, a lone `%`) is kept byte for byte.
fn percent_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(s).collect()
}

/// Resolve dot segments and collapse empty ones in an already decoded path.
fn resolve(decoded: &str, strip_params: bool) -> String {
    let unified = decoded.replace('\\', "/");
    let segments: Vec<&str> = unified.split('/').collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let mut trailing = false;
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let seg = if strip_params {
            seg.split(';').next().unwrap_or_default()
        } else {
            seg
        };
        match seg {
            "" | "." => trailing = last,
            ".." => {
                out.pop();
                trailing = last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut path = String::with_capacity(unified.len() + 1);
    path.push('/');
    path.push_str(&out.join("/"));
    if trailing && !out.is_empty() {
        path.push('/');
    }
    path
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn n(raw: &str) -> String {
        normalize_path(raw).unwrap()
    }

    #[test]
    fn r_hd_5_query_and_fragment_ignored() {
        assert_eq!(n("/admin?x=/../public"), "/admin");
        assert_eq!(n("/admin#/../public"), "/admin");
        // An encoded `?` is path data after the one decode.
        assert_eq!(n("/a%3Fb"), "/a?b");
    }

    #[test]
    fn r_hd_5_decodes_exactly_once() {
        assert_eq!(n("/%61dmin"), "/admin");
        assert_eq!(n("/admin%2Fsecret"), "/admin/secret");
        assert_eq!(n("/%2e%2e/admin"), "/admin");
        assert_eq!(n("/%252e%252e/admin"), "/%2e%2e/admin");
        assert_eq!(n("/100%"), "/100%");
        assert_eq!(n("/a%zzb"), "/a%zzb");
        assert_eq!(n("/caf%C3%A9"), "/café");
    }

    #[test]
    fn r_hd_5_dot_segments_and_double_slashes() {
        assert_eq!(n("//admin"), "/admin");
        assert_eq!(n("/./admin"), "/admin");
        assert_eq!(n("/a/../admin"), "/admin");
        assert_eq!(n("/../../admin"), "/admin");
        assert_eq!(n("/a/b/../../../admin//x"), "/admin/x");
        assert_eq!(n("/admin/."), "/admin/");
        assert_eq!(n("/admin/x/.."), "/admin/");
        assert_eq!(n("/admin/.."), "/");
        assert_eq!(n(""), "/");
        assert_eq!(n("/"), "/");
        assert_eq!(n("admin"), "/admin");
        // `...` and `.x` are ordinary names.
        assert_eq!(n("/.../.x"), "/.../.x");
    }

    #[test]
    fn r_hd_5_trailing_slash_and_case_kept() {
        assert_eq!(n("/Admin/"), "/Admin/");
        assert_eq!(n("/admin//"), "/admin/");
    }

    #[test]
    fn r_hd_5_backslash_and_path_params() {
        assert_eq!(n("/admin\\x"), "/admin/x");
        assert_eq!(n("/admin%5cx"), "/admin/x");
        assert_eq!(n("/admin/..;/admin"), "/admin");
        assert_eq!(n("/x/..;/admin/"), "/admin/");
        assert_eq!(n("/admin;jsessionid=1/x"), "/admin/x");
    }

    #[test]
    fn r_hd_5_undecodable_paths_are_not_judged() {
        assert_eq!(normalize_path("/%ff"), None);
        assert_eq!(normalize_path("/admin%00.html"), None);
        assert_eq!(normalize_path("/a%0d%0aX: y"), None);
        assert_eq!(readings("/%C0%AE%C0%AE/admin"), None, "overlong UTF-8");
    }

    #[test]
    fn readings_cover_what_an_upstream_might_resolve() {
        let r = readings("/%252e%252e/admin").unwrap();
        assert_eq!(r[0], "/%2e%2e/admin");
        assert!(r.contains(&"/admin".to_string()), "{r:?}");
        let r = readings("/x/..;/public").unwrap();
        assert_eq!(r[0], "/public");
        assert!(r.contains(&"/x/..;/public".to_string()), "{r:?}");
        let r = readings("/admin%3F/../public").unwrap();
        assert!(r.contains(&"/admin".to_string()), "{r:?}");
        assert_eq!(readings("/plain/path").unwrap(), ["/plain/path"]);
    }
}
