//! Strict JSON parsing for security-relevant documents (R-IDT-1, R-IDT-4, R-UI-2).
//!
//! `serde_json` silently keeps the last of two members with the same name, so
//! `{"sub":"alice","sub":"admin"}` means different things to different parsers (RFC 7515 §5.2,
//! RFC 7519 §4 require rejecting it). This module builds a `serde_json::Value` through our own
//! visitor that rejects duplicate member names at any depth and caps the nesting depth.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Maximum nesting depth of objects/arrays (R-IDT-1).
pub const MAX_DEPTH: usize = 32;

/// Why a document was refused. Messages never echo the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// Not UTF-8 JSON, or trailing data.
    #[error("not valid JSON")]
    Invalid,
    /// The same member name appears twice in one object.
    #[error("duplicate member name")]
    DuplicateMember,
    /// Objects/arrays nested deeper than allowed.
    #[error("JSON nested too deeply")]
    TooDeep,
    /// Valid JSON, but the top level is not an object.
    #[error("not a JSON object")]
    NotObject,
}

/// Parse `bytes` as a JSON value with duplicate and depth checks.
pub fn parse_strict(bytes: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    let fail = Cell::new(None);
    let seed = StrictSeed {
        depth: 0,
        max_depth,
        fail: &fail,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    // Our own failure reason wins over serde_json's generic one.
    parsed.map_err(|_| fail.get().unwrap_or(JsonError::Invalid))
}

/// Parse `bytes` as a JSON object with duplicate and depth checks (default depth limit).
pub fn parse_strict_object(bytes: &[u8]) -> Result<Map<String, Value>, JsonError> {
    match parse_strict(bytes, MAX_DEPTH)? {
        Value::Object(m) => Ok(m),
        _ => Err(JsonError::NotObject),
    }
}

/// Builds a `Value`; `depth` counts the containers enclosing the value being parsed.
#[derive(Clone, Copy)]
struct StrictSeed<'f> {
    depth: usize,
    max_depth: usize,
    fail: &'f Cell<Option<JsonError>>,
}

impl StrictSeed<'_> {
    fn fail<E: de::Error>(&self, why: JsonError) -> E {
        self.fail.set(Some(why));
        E::custom(why)
    }

    /// Seed for the members of a container, refusing to go deeper than `max_depth`.
    fn enter<E: de::Error>(&self) -> Result<Self, E> {
        if self.depth >= self.max_depth {
            return Err(self.fail(JsonError::TooDeep));
        }
        Ok(StrictSeed {
            depth: self.depth + 1,
            ..*self
        })
    }
}

impl<'de> DeserializeSeed<'de> for StrictSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| self.fail(JsonError::Invalid))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(child)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.enter()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            // Compared after unescaping, so "a" and "\u0061" are the same name.
            if out.contains_key(&key) {
                return Err(self.fail(JsonError::DuplicateMember));
            }
            let v = map.next_value_seed(child)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn nested(depth: usize) -> String {
        let mut s = String::new();
        for _ in 0..depth - 1 {
            s.push_str("{\"a\":");
        }
        s.push_str("{}");
        for _ in 0..depth - 1 {
            s.push('}');
        }
        s
    }

    /// R-IDT-1: duplicates at the top level and nested (objects inside arrays too).
    #[test]
    fn r_idt_1_json_duplicates_rejected_any_depth() {
        for doc in [
            r#"{"a":1,"a":2}"#,
            r#"{"a":1,"\u0061":2}"#,
            r#"{"x":{"b":1,"b":1}}"#,
            r#"{"x":[{"c":true,"c":false}]}"#,
        ] {
            assert_eq!(
                parse_strict_object(doc.as_bytes()),
                Err(JsonError::DuplicateMember),
                "{doc}"
            );
        }
    }

    /// R-IDT-1: depth 32 is fine, 33 is not (arrays count too).
    #[test]
    fn r_idt_1_json_depth_limit() {
        assert!(parse_strict_object(nested(32).as_bytes()).is_ok());
        assert_eq!(
            parse_strict_object(nested(33).as_bytes()),
            Err(JsonError::TooDeep)
        );
        let arrays = format!("{{\"a\":{}1{}}}", "[".repeat(32), "]".repeat(32));
        assert_eq!(
            parse_strict_object(arrays.as_bytes()),
            Err(JsonError::TooDeep)
        );
        // Very deep input fails cleanly (no stack overflow).
        let deep = "[".repeat(100_000);
        assert_eq!(
            parse_strict(deep.as_bytes(), MAX_DEPTH),
            Err(JsonError::TooDeep)
        );
    }

    /// R-IDT-1: non-objects, trailing garbage and invalid UTF-8 are refused.
    #[test]
    fn r_idt_1_json_shape() {
        assert_eq!(parse_strict_object(b"[1]"), Err(JsonError::NotObject));
        assert_eq!(parse_strict_object(b"\"s\""), Err(JsonError::NotObject));
        assert_eq!(parse_strict_object(b"{} x"), Err(JsonError::Invalid));
        assert_eq!(
            parse_strict_object(b"{\"a\":\"\xff\"}"),
            Err(JsonError::Invalid)
        );
        assert_eq!(
            parse_strict_object(b"{\"a\":\"\\ud800\"}"),
            Err(JsonError::Invalid)
        );
        assert_eq!(parse_strict_object(b""), Err(JsonError::Invalid));
    }

    /// Values come out as ordinary serde_json values (guards against serde_json features such
    /// as `arbitrary_precision` changing what the visitor sees).
    #[test]
    fn json_values_are_plain() {
        let m =
            parse_strict_object(br#"{"n":1,"f":1.5,"neg":-3,"s":"x","b":true,"z":null,"a":[1]}"#)
                .unwrap();
        assert_eq!(m["n"].as_i64(), Some(1));
        assert_eq!(m["f"].as_f64(), Some(1.5));
        assert_eq!(m["neg"].as_i64(), Some(-3));
        assert_eq!(m["s"], "x");
        assert_eq!(m["b"], true);
        assert!(m["z"].is_null());
        assert!(m["a"].is_array());
    }
}
