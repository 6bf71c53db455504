//! Log set-up: `RUST_LOG` filter (default `info`), human format (`PORTCULLIS_LOG_FORMAT=text`,
//! the default), or JSON lines with `PORTCULLIS_LOG_FORMAT=json`.
//!
//! The human format escapes control characters in every field and message: logged values
//! include attacker-controlled text (query parameters, IdP error codes), and a raw newline
//! would let a request forge a stand-alone log line. (The JSON format escapes them already.)
//! Colours only when stderr is a terminal, so log files hold no ANSI escape codes.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

pub fn init() {
    use tracing_subscriber::prelude::*;
    let (env_filter, targets) = filter(std::env::var("RUST_LOG").ok().as_deref());
    let format = std::env::var("PORTCULLIS_LOG_FORMAT").unwrap_or_default();
    let json = format.trim().eq_ignore_ascii_case("json");
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry()
        .with(env_filter)
        .with(targets);
    if json {
        // Each line carries the spans it was logged in (`spans`), so a request's lines have
        // its `request_id`.
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .with_ansi(ansi);
        registry.with(layer).init();
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(EscapedFields)
            .with_writer(std::io::stderr)
            .with_ansi(ansi);
        registry.with(layer).init();
    }
    if !json && !format.trim().is_empty() && !format.trim().eq_ignore_ascii_case("text") {
        tracing::warn!("PORTCULLIS_LOG_FORMAT must be json or text, got `{format}`; using text");
    }
}

/// The filter for `RUST_LOG` (default `info`): a list of `level` and `target=level` is a
/// [`Targets`] filter, anything else (span or field filters, or text neither understands)
/// goes to [`EnvFilter`] as before. Both filter alike for such lists; `EnvFilter` also looks
/// every span up under a lock each time it is entered or left (for span filters), which
/// every request pays for its `request` span.
fn filter(spec: Option<&str>) -> (Option<EnvFilter>, Option<Targets>) {
    let spec = spec
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or("info");
    let simple = !spec.contains(['[', ']', '{', '}', '"', '/']);
    match spec.parse::<Targets>() {
        Ok(t) if simple => (None, Some(t)),
        _ => (
            Some(EnvFilter::try_new(spec).unwrap_or_else(|_| EnvFilter::new("info"))),
            None,
        ),
    }
}

/// The text format's fields (`message`, then `name=value` separated by spaces, like
/// tracing-subscriber's `DefaultFields`) with control characters escaped.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = FieldVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut v);
        v.result
    }
}

struct FieldVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl FieldVisitor<'_> {
    fn write_field(&mut self, field: &Field, value: fmt::Arguments<'_>) -> fmt::Result {
        let name = field.name();
        // Metadata fields of events bridged from the `log` crate are shown by the formatter.
        if name.starts_with("log.") {
            return Ok(());
        }
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if name != "message" {
            let name = name.strip_prefix("r#").unwrap_or(name);
            // Field names are identifiers from our code, not input: only values need escaping.
            if self.writer.has_ansi_escapes() {
                write!(self.writer, "\x1b[3m{name}\x1b[0m\x1b[2m=\x1b[0m")?;
            } else {
                write!(self.writer, "{name}=")?;
            }
        }
        Escaping(&mut self.writer).write_fmt(value)
    }
}

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            // Like `DefaultFields`: a message is shown as is, other strings quoted.
            self.result = if field.name() == "message" {
                self.write_field(field, format_args!("{value}"))
            } else if value
                .bytes()
                .all(|b| b == b' ' || (b.is_ascii_graphic() && b != b'"' && b != b'\\'))
            {
                // Nothing that quoting would escape (a request id, a path): the same text,
                // without formatting each character (a request's span records one of these).
                self.write_field(field, format_args!("\"{value}\""))
            } else {
                self.write_field(field, format_args!("{value:?}"))
            };
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if self.result.is_ok() {
            self.result = self.write_field(field, format_args!("{value}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self.write_field(field, format_args!("{value:?}"));
        }
    }
}

/// Writes through to `W`, replacing control characters (C0 including CR, LF, TAB and ESC; DEL;
/// C1) and the Unicode line/paragraph separators with visible escapes.
struct Escaping<W>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(needs_escape) {
            self.0.write_str(&rest[..i])?;
            let mut chars = rest[i..].chars();
            let Some(c) = chars.next() else { break };
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", u32::from(c))?,
            }
            rest = chars.as_str();
        }
        self.0.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{Arc, Mutex};

    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        Escaping(&mut out).write_str(s).unwrap();
        out
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escaped("plain text é"), "plain text é");
        assert_eq!(escaped("a\nb\r\nc\td"), "a\\nb\\r\\nc\\td");
        assert_eq!(escaped("\x1b[31mred\x7f\0"), "\\u{1b}[31mred\\u{7f}\\u{0}");
        assert_eq!(escaped("\u{85}\u{2028}"), "\\u{85}\\u{2028}");
    }

    /// Every field and the message go through the escaping, in the text format.
    #[test]
    fn a_forged_line_stays_on_its_line() {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .fmt_fields(EscapedFields)
            .finish();
        let forged = "x\n2026-01-01T00:00:00Z  INFO forged: admin signed in";
        tracing::subscriber::with_default(subscriber, || {
            let err = std::io::Error::other(forged);
            tracing::warn!(display = %forged, debug = ?forged, str_field = forged, error = &err as &dyn std::error::Error, "message {forged}");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("message x\\n2026"), "{out}");
        assert!(out.contains(" display=x\\n2026"), "{out}");
        assert!(out.contains(" debug=\"x\\n2026"), "{out}");
        assert!(out.contains(" str_field=\"x\\n2026"), "{out}");
        assert!(out.contains(" error=x\\n2026"), "{out}");
    }

    /// Strings without anything to escape are quoted exactly as `Debug` quotes them.
    #[test]
    fn plain_strings_are_quoted_like_debug() {
        for v in ["0123abcd", "a b/c:d", "", "a\"b", "a\\b", "é"] {
            let mut out = String::new();
            let mut visitor = FieldVisitor {
                writer: Writer::new(&mut out),
                first: true,
                result: Ok(()),
            };
            tracing::field::Visit::record_str(&mut visitor, &field(), v);
            assert_eq!(out, format!("request_id={v:?}"), "{v}");
        }
    }

    fn field() -> Field {
        struct Cs;
        impl tracing::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                &META
            }
        }
        static CS: Cs = Cs;
        static META: tracing::Metadata<'static> = tracing::Metadata::new(
            "test",
            "test",
            tracing::Level::INFO,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&["request_id"], tracing::callsite::Identifier(&CS)),
            tracing::metadata::Kind::SPAN,
        );
        META.fields().field("request_id").unwrap()
    }

    /// Plain `RUST_LOG` lists take the cheaper filter; span and field filters keep EnvFilter.
    #[test]
    fn rust_log_picks_the_filter() {
        for spec in [None, Some(""), Some("info"), Some("portcullis=debug,warn")] {
            let (env, targets) = filter(spec);
            assert!(env.is_none() && targets.is_some(), "{spec:?}");
        }
        for spec in [
            "portcullis[request]=debug",
            "info,[{request_id}]=trace",
            "a/b=debug",
        ] {
            let (env, targets) = filter(Some(spec));
            assert!(env.is_some() && targets.is_none(), "{spec}");
        }
    }
}
