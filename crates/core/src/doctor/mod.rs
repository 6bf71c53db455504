//! `portcullis doctor`: the judgement half. The CLI fetches facts (discovery document, JWKS,
//! TLS peer certificate, the IdP's answer to a probe authorization request, …); the functions
//! here turn those facts into verdicts with a fix in plain words. No I/O, so every rule is
//! unit-tested with hostile input (tests.rs).
//!
//! Everything shown that came from the IdP passes through [`escape`]: an IdP error page is
//! attacker-influenced text and must not drive the operator's terminal.

mod checks;
mod x509;

pub use checks::*;
pub use x509::{CertError, not_after};

use serde::Serialize;

/// How a check came out. `Skipped` is for checks that could not run (a prerequisite failed, or
/// an input such as `--claims` was not given); it never makes the exit code non-zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Skipped,
    Warning,
    Problem,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Skipped => "skipped",
            Verdict::Warning => "warning",
            Verdict::Problem => "problem",
        }
    }
}

/// One line of the report: `{check, verdict, detail, fix}` (the stable `--json` shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier of the check, e.g. `issuer`, `jwks`, `redirect-uri-registered`.
    pub check: &'static str,
    pub verdict: Verdict,
    /// What was found, in one line.
    pub detail: String,
    /// What to do about it; `None` when the verdict is ok.
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, detail: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warning(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check,
            verdict: Verdict::Warning,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn problem(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Finding {
            check,
            verdict: Verdict::Problem,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn skipped(check: &'static str, why: impl Into<String>) -> Finding {
        Finding {
            check,
            verdict: Verdict::Skipped,
            detail: why.into(),
            fix: None,
        }
    }
}

/// Process exit code for a report: 0 when nothing is a problem (warnings alone pass), 1 when
/// any check found a problem. (2 is left for "doctor itself could not run", as with `serve`.)
pub fn exit_code(findings: &[Finding]) -> u8 {
    if findings.iter().any(|f| f.verdict == Verdict::Problem) {
        1
    } else {
        0
    }
}

/// The `--json` document: an array of findings, in check order.
pub fn render_json(findings: &[Finding]) -> String {
    // Serialising plain strings and enums cannot fail; fall back to an empty array anyway.
    serde_json::to_string_pretty(findings).unwrap_or_else(|_| "[]".into())
}

/// The human report: one line per check, verdict first, columns aligned; a not-ok line is
/// followed by an indented `fix:` line. ANSI colours only when `colour` (stdout is a terminal).
pub fn render_text(findings: &[Finding], colour: bool) -> String {
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        let v = f.verdict.as_str();
        let shown = if colour {
            let code = match f.verdict {
                Verdict::Ok => "32",
                Verdict::Skipped => "2",
                Verdict::Warning => "33",
                Verdict::Problem => "1;31",
            };
            format!("\x1b[{code}m{v:<7}\x1b[0m")
        } else {
            format!("{v:<7}")
        };
        out.push_str(&format!(
            "{shown}  {:<width$}  {}\n",
            f.check,
            escape(&f.detail)
        ));
        if let Some(fix) = &f.fix {
            out.push_str(&format!(
                "{:<7}  {:<width$}  fix: {}\n",
                "",
                "",
                escape(fix)
            ));
        }
    }
    let problems = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Problem)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.verdict == Verdict::Warning)
        .count();
    out.push_str(&format!(
        "\n{} check(s): {problems} problem(s), {warnings} warning(s)\n",
        findings.len()
    ));
    out
}

/// Longest IdP-provided text shown in one finding.
pub const MAX_SHOWN: usize = 300;

/// Make text safe to print on a terminal: control characters (ESC, CR, LF, …) and the Unicode
/// bidirectional overrides (U+202E and friends, "Trojan Source") become `\u{…}` escapes; the
/// result is cut at [`MAX_SHOWN`] characters.
pub fn escape(s: &str) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= MAX_SHOWN {
            out.push('…');
            break;
        }
        if c.is_control() || is_bidi_control(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests;
