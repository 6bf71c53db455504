//! Shared pieces of the fuzz targets: fixed keys, and a structure-aware token builder.
//!
//! Plain bytes reach the strict parsers from every target (mode byte even). The structured
//! mode (mode byte odd) builds a JWS from `arbitrary` choices and signs it with a key the
//! validator trusts, so the fuzzer also gets past the signature into the claim checks, which
//! random bytes never reach. Every choice defaults to the valid value: the one-byte input `\x01`
//! is a token that validates, and mutations move away from it one member at a time.

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::jose::Jwks;
use serde_json::{Map, Value, json};

/// The fuzzer's clock: every `now` the validators see.
pub const NOW: i64 = 1_800_000_000;
/// The issuer, client and subject the validators expect.
pub const ISSUER: &str = "https://idp.example.com/realms/a";
pub const CLIENT_ID: &str = "portcullis";
pub const SUB: &str = "user-1";
/// The gateway's public base URL (session `iss`/`aud`, DPoP `htu`).
pub const PUBLIC_URL: &str = "https://gw.example.com";
/// The session signing secret (32 bytes, as configuration requires).
pub const SECRET: &str = "fuzz-secret-0123456789abcdef-0123";
/// `kid`s of the trusted keys.
pub const ED_KID: &str = "ed-1";
pub const EC_KID: &str = "ec-1";

/// Strings that matter to the validators, so mutations find them without guessing.
const DICT: &[&str] = &[
    "",
    "none",
    "None",
    "nOnE",
    "HS256",
    "RS256",
    "PS256",
    "ES256",
    "ES384",
    "EdDSA",
    "JWT",
    "jwt",
    "logout+jwt",
    "application/logout+jwt",
    "dpop+jwt",
    "session+jwt",
    "EC",
    "RSA",
    "OKP",
    "P-256",
    "P-384",
    "Ed25519",
    "sig",
    "enc",
    "verify",
    "d",
    "k",
    "b64",
    "crit",
    "jwk",
    "kid",
    "x5c",
    "jku",
    "http://schemas.openid.net/event/backchannel-logout",
    "https://idp.example.com/realms/a",
    "https://idp.example.com/realms/a/",
    "https://gw.example.com",
    "https://gw.example.com/api/x",
    "https://gw.example.com/api/x?q=1",
    "https://GW.example.com:443/api/./x",
    "portcullis",
    "user-1",
    "ed-1",
    "ec-1",
    "POST",
    "post",
    "GET",
];

/// One member's value: the valid one, or something else of any JSON type.
#[derive(Arbitrary, Debug, Clone)]
pub enum Val {
    /// The value a valid token has (the first variant, so exhausted input means valid).
    Good,
    Absent,
    Dict(u8),
    Str(String),
    Int(i64),
    /// The valid integer moved by this much (for dates), or the valid string with this suffix.
    Offset(i32),
    Float(f64),
    Bool(bool),
    Null,
    Strs(Vec<String>),
    /// An array holding the valid value and more.
    GoodAnd(Vec<String>),
    /// The valid object with these members added or replaced (a `jwk` with `d`, say).
    Merge(Vec<(String, Val)>),
    Deep(u8),
}

impl Val {
    /// The JSON for this member, given its valid value; `None` leaves it out.
    pub fn to_json(&self, good: &Value) -> Option<Value> {
        Some(match self {
            Val::Good => good.clone(),
            Val::Absent => return None,
            Val::Dict(i) => Value::from(DICT[usize::from(*i) % DICT.len()]),
            Val::Str(s) => Value::from(s.as_str()),
            Val::Int(i) => Value::from(*i),
            Val::Offset(d) => match good {
                Value::Number(n) if n.is_i64() => {
                    Value::from(n.as_i64().unwrap_or(0).saturating_add(i64::from(*d)))
                }
                Value::String(s) => Value::from(format!("{s}{d}")),
                other => other.clone(),
            },
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Val::Bool(b) => Value::Bool(*b),
            Val::Null => Value::Null,
            Val::Strs(v) => json!(v),
            Val::GoodAnd(v) => {
                let mut a = vec![good.clone()];
                a.extend(v.iter().map(|s| Value::from(s.as_str())));
                Value::Array(a)
            }
            Val::Merge(members) => {
                let mut obj = good.as_object().cloned().unwrap_or_default();
                for (k, v) in members {
                    match v.to_json(&Value::Null) {
                        Some(j) => obj.insert(k.clone(), j),
                        None => obj.remove(k),
                    };
                }
                Value::Object(obj)
            }
            Val::Deep(n) => {
                let mut v = good.clone();
                // Up to just past the strict parser's depth limit (32).
                for _ in 0..(n % 36) {
                    v = json!([v]);
                }
                v
            }
        })
    }
}

/// A JSON object as choices over a list of `(member, valid value)`: `vals[i]` is member `i`'s
/// value (missing entries are valid), `extra` adds members, `dup` writes a member twice.
#[derive(Arbitrary, Debug, Clone, Default)]
pub struct Doc {
    pub vals: Vec<Val>,
    pub extra: Vec<(String, Val)>,
    pub dup: Option<(u8, Val)>,
}

impl Doc {
    /// The object as a map (duplicates aside), for the signer to look at.
    pub fn map(&self, spec: &[(&str, Value)]) -> Map<String, Value> {
        let mut m = Map::new();
        for (i, (name, good)) in spec.iter().enumerate() {
            let choice = self.vals.get(i).unwrap_or(&Val::Good);
            if let Some(v) = choice.to_json(good) {
                m.insert((*name).to_owned(), v);
            }
        }
        for (k, v) in &self.extra {
            if let Some(j) = v.to_json(&Value::Null) {
                m.insert(k.clone(), j);
            }
        }
        m
    }

    /// The object (as built by [`Doc::map`]) as JSON text, with the duplicate member (if any)
    /// written first.
    pub fn text_of(&self, map: Map<String, Value>, spec: &[(&str, Value)]) -> String {
        let body = Value::Object(map).to_string();
        let Some((i, v)) = &self.dup else {
            return body;
        };
        let Some((name, good)) = spec.get(usize::from(*i) % spec.len().max(1)) else {
            return body;
        };
        let Some(value) = v.to_json(good) else {
            return body;
        };
        let member = format!("{}:{value}", Value::from(*name));
        match body.strip_prefix('{') {
            Some("}") => format!("{{{member}}}"),
            Some(rest) => format!("{{{member},{rest}"),
            None => body,
        }
    }

    /// The object as JSON text.
    pub fn text(&self, spec: &[(&str, Value)]) -> String {
        self.text_of(self.map(spec), spec)
    }
}

/// What to put in the signature segment.
#[derive(Arbitrary, Debug, Clone)]
pub enum Sig {
    Good,
    Empty,
    FlipBit(u16),
    Truncate(u8),
    Raw(Vec<u8>),
}

/// A structured JWS: header and claims choices, and the signature treatment.
#[derive(Arbitrary, Debug, Clone, Default)]
pub struct Jws {
    pub header: Doc,
    pub claims: Doc,
    pub sig: Option<Sig>,
}

impl Jws {
    /// The compact serialization, signed by `sign` over the signing input.
    pub fn compact(
        &self,
        header_spec: &[(&str, Value)],
        claims_spec: &[(&str, Value)],
        sign: impl Fn(&Map<String, Value>, &[u8]) -> Vec<u8>,
    ) -> String {
        let header = self.header.map(header_spec);
        let input = format!(
            "{}.{}",
            b64(self.header.text_of(header.clone(), header_spec).as_bytes()),
            b64(self.claims.text(claims_spec).as_bytes())
        );
        let good = || sign(&header, input.as_bytes());
        let sig = match self.sig.as_ref().unwrap_or(&Sig::Good) {
            Sig::Good => good(),
            Sig::Empty => Vec::new(),
            Sig::FlipBit(bit) => {
                let mut s = good();
                let len = s.len().max(1) * 8;
                let bit = usize::from(*bit) % len;
                if let Some(b) = s.get_mut(bit / 8) {
                    *b ^= 1 << (bit % 8);
                }
                s
            }
            Sig::Truncate(n) => {
                let mut s = good();
                s.truncate(s.len().saturating_sub(usize::from(*n)));
                s
            }
            Sig::Raw(r) => r.clone(),
        };
        format!("{input}.{}", b64(&sig))
    }
}

/// Unpadded base64url.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The trusted Ed25519 key (fixed seed, so a crash input replays the same signature).
pub fn ed_key() -> &'static Ed25519KeyPair {
    static K: OnceLock<Ed25519KeyPair> = OnceLock::new();
    K.get_or_init(|| match Ed25519KeyPair::from_seed_unchecked(&[7u8; 32]) {
        Ok(k) => k,
        Err(_) => std::process::abort(),
    })
}

/// The trusted P-256 key (ECDSA signatures are randomised anyway, so a fresh key per process).
pub fn ec_key() -> &'static EcdsaKeyPair {
    static K: OnceLock<EcdsaKeyPair> = OnceLock::new();
    K.get_or_init(|| {
        let rng = SystemRandom::new();
        let made = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .ok()
            .and_then(|p| {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, p.as_ref()).ok()
            });
        match made {
            Some(k) => k,
            None => std::process::abort(),
        }
    })
}

/// The public JWK of [`ed_key`].
pub fn ed_jwk() -> Value {
    json!({"kty": "OKP", "crv": "Ed25519", "kid": ED_KID, "x": b64(ed_key().public_key().as_ref())})
}

/// The public JWK of [`ec_key`], with `kid` when given.
pub fn ec_jwk(kid: Option<&str>) -> Value {
    let point = ec_key().public_key().as_ref();
    let (x, y) = point
        .get(1..)
        .unwrap_or_default()
        .split_at(32.min(point.len().saturating_sub(1)));
    let mut j = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
    if let (Some(kid), Some(o)) = (kid, j.as_object_mut()) {
        o.insert("kid".into(), Value::from(kid));
    }
    j
}

/// The JWKS the ID, logout and UserInfo validators trust: both keys.
pub fn jwks() -> &'static Jwks {
    static J: OnceLock<Jwks> = OnceLock::new();
    J.get_or_init(|| {
        let doc = json!({"keys": [ed_jwk(), ec_jwk(Some(EC_KID))]}).to_string();
        match Jwks::parse(doc.as_bytes()) {
            Ok(j) if j.len() == 2 => j,
            _ => std::process::abort(),
        }
    })
}

/// Sign with the key the header's `alg` names (ES256: the P-256 key; anything else Ed25519,
/// so a wrong `alg` still carries a real signature of some key).
pub fn sign_asymmetric(header: &Map<String, Value>, input: &[u8]) -> Vec<u8> {
    if header.get("alg").and_then(Value::as_str) == Some("ES256") {
        match ec_key().sign(&SystemRandom::new(), input) {
            Ok(s) => s.as_ref().to_vec(),
            Err(_) => Vec::new(),
        }
    } else {
        ed_key().sign(input).as_ref().to_vec()
    }
}

/// Split fuzz input into the mode byte (even: plain bytes, odd: structured) and the rest.
pub fn mode(data: &[u8]) -> Option<(bool, &[u8])> {
    let (&m, rest) = data.split_first()?;
    Some((m & 1 == 1, rest))
}
