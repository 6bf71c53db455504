// Writes the seed corpora in fuzz/corpus/<target>/: a few valid inputs per target, and a few
// near misses. Run with `node fuzz/seeds.mjs` (Node >= 20, no packages); the output is
// checked in. Keys and constants match fuzz/src/lib.rs.
import { createHmac, createPrivateKey, generateKeyPairSync, hkdfSync, sign } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const NOW = 1_800_000_000;
const ISSUER = "https://idp.example.com/realms/a";
const CLIENT_ID = "portcullis";
const PUBLIC_URL = "https://gw.example.com";
const SECRET = "fuzz-secret-0123456789abcdef-0123";

const b64 = (b) => Buffer.from(b).toString("base64url");
const json = (v) => b64(JSON.stringify(v));
const RAW = Buffer.from([0]);
const STRUCTURED = Buffer.from([1]);

// The fuzz targets' Ed25519 key: seed [7; 32] (PKCS#8 = fixed prefix + seed).
const edKey = createPrivateKey({
  key: Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.alloc(32, 7)]),
  format: "der",
  type: "pkcs8",
});
const edJwk = { ...edKey.export({ format: "jwk" }), kid: "ed-1" };
delete edJwk.d;

function jws(header, claims, signer) {
  const input = `${json(header)}.${json(claims)}`;
  return `${input}.${b64(signer(Buffer.from(input)))}`;
}
const edSign = (input) => sign(null, input, edKey);

// The session key: HKDF-SHA256(salt, secret) expanded with the purpose label.
const sessionKey = Buffer.from(
  hkdfSync("sha256", SECRET, "portcullis/session-keys/v1", "session+jwt", 32),
);
const hmacSign = (input) => createHmac("sha256", sessionKey).update(input).digest();

const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ecJwk = ec.publicKey.export({ format: "jwk" });
const ecSign = (input) => sign("sha256", input, { key: ec.privateKey, dsaEncoding: "ieee-p1363" });

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaJwk = { ...rsa.publicKey.export({ format: "jwk" }), kid: "rsa-1", use: "sig", alg: "RS256" };

const seeds = {};
const add = (target, name, bytes) => ((seeds[target] ??= {})[name] = Buffer.from(bytes));
const raw = (text) => Buffer.concat([RAW, Buffer.from(text)]);

// Session JWT.
const session = {
  iss: PUBLIC_URL, aud: PUBLIC_URL, sub: "u-1", sid: "s-1", iat: NOW - 60, exp: NOW + 1200,
  auth_time: NOW - 3600, fph: "fingerprint-hash", csrf_h: "csrf-hash",
  cnf: { jkt: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" }, idp_sid: "idp-session",
};
const sessionHeader = { alg: "HS256", typ: "session+jwt" };
add("session_jwt", "structured-valid", STRUCTURED);
add("session_jwt", "raw-valid", raw(jws(sessionHeader, session, hmacSign)));
add("session_jwt", "raw-expired", raw(jws(sessionHeader, { ...session, exp: NOW - 600 }, hmacSign)));
add("session_jwt", "raw-alg-none", raw(`${json({ alg: "none", typ: "session+jwt" })}.${json(session)}.`));

// DPoP proof.
const proof = { jti: "jti-0123456789abcdef", htm: "POST", htu: `${PUBLIC_URL}/api/x`, iat: NOW };
const proofHeader = { typ: "dpop+jwt", alg: "ES256", jwk: ecJwk };
add("dpop_proof", "structured-valid", STRUCTURED);
add("dpop_proof", "raw-valid", raw(jws(proofHeader, proof, ecSign)));
add("dpop_proof", "raw-private-jwk", raw(jws({ ...proofHeader, jwk: ec.privateKey.export({ format: "jwk" }) }, proof, ecSign)));
add("dpop_proof", "raw-htu", raw("https://GW.example.com:443/api/%7e%41|x"));

// ID token (and UserInfo).
const idClaims = {
  iss: ISSUER, aud: CLIENT_ID, azp: CLIENT_ID, exp: NOW + 300, iat: NOW - 5, nonce: "nonce-1",
  sub: "user-1", auth_time: NOW - 60, sid: "idp-session-1", email: "user@example.com",
};
add("id_token", "structured-valid", STRUCTURED);
add("id_token", "raw-valid", raw(jws({ alg: "EdDSA", kid: "ed-1", typ: "JWT" }, idClaims, edSign)));
add("id_token", "raw-es256", raw(jws({ alg: "ES256", kid: "ec-1" }, idClaims, ecSign)));
add("id_token", "raw-userinfo-json", raw(JSON.stringify({ sub: "user-1", email: "a@example.com", groups: ["g"] })));

// Logout token.
const logoutClaims = {
  iss: ISSUER, aud: CLIENT_ID, iat: NOW - 5, exp: NOW + 120, sub: "user-1", sid: "idp-session-1",
  events: { "http://schemas.openid.net/event/backchannel-logout": {} }, jti: "logout-jti-1",
};
add("logout_token", "structured-valid", STRUCTURED);
add("logout_token", "raw-valid", raw(jws({ alg: "EdDSA", kid: "ed-1", typ: "logout+jwt" }, logoutClaims, edSign)));
add("logout_token", "raw-nonce", raw(jws({ alg: "EdDSA", kid: "ed-1" }, { ...logoutClaims, nonce: "n" }, edSign)));

// JWKS.
const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export({ format: "jwk" });
add("jwks", "mixed", JSON.stringify({ keys: [rsaJwk, { ...ecJwk, kid: "ec-1", alg: "ES256" }, { ...p384, kid: "ec-384" }, edJwk] }));
add("jwks", "private-and-oct", JSON.stringify({ keys: [ec.privateKey.export({ format: "jwk" }), { kty: "oct", k: "c2VjcmV0" }, { ...ecJwk, use: "enc" }] }));
add("jwks", "one-key", JSON.stringify({ ...edJwk, key_ops: ["verify"] }));

// Discovery document.
const disc = {
  issuer: ISSUER, authorization_endpoint: `${ISSUER}/auth`, token_endpoint: `${ISSUER}/token`,
  userinfo_endpoint: `${ISSUER}/userinfo`, jwks_uri: `${ISSUER}/certs`,
  end_session_endpoint: `${ISSUER}/logout`, response_types_supported: ["code"],
  id_token_signing_alg_values_supported: ["RS256", "EdDSA"],
  authorization_response_iss_parameter_supported: true, backchannel_logout_supported: true,
};
add("discovery", "valid", JSON.stringify(disc));
add("discovery", "http-endpoints", JSON.stringify({ ...disc, token_endpoint: "http://idp.example.com/token" }));
add("discovery", "duplicate-issuer", `{"issuer":"https://evil.example.com",${JSON.stringify(disc).slice(1)}`);

// Redirect targets.
for (const [i, t] of ["/", "/app/page?x=1&y=%2F", "/%2F%2Fevil.example.com", "//evil.example.com", "/\\evil.example.com", "/a/../../b#frag", "https://gw.example.com/x"].entries()) {
  add("return_to", `target-${i}`, t);
}

// Request paths for authorization (first line: the method).
for (const [i, t] of ["GET\n/admin/users", "POST\n/x/..;/ADMIN?q", "GET\n/%2561dmin/", "DELETE\n/api/items/1", "GET\n//audit/./", "GET\n/%C0%AEadmin\\x"].entries()) {
  add("authz_path", `path-${i}`, t);
}

// Form bodies.
const logoutToken = jws({ alg: "EdDSA", kid: "ed-1", typ: "logout+jwt" }, logoutClaims, edSign);
add("forms", "logout", `logout_token=${logoutToken}`);
add("forms", "encoded", "a=b&logout_token=x%41+y&&c");
add("forms", "repeated", "logout_token=a&logout_token=b");
add("forms", "callback", "state=abc&code=def&iss=https%3A%2F%2Fidp.example.com%2Frealms%2Fa");

// Cookie headers (one per line).
add("cookies", "secure", "__Host-session=eyJ.a.b; __Host-fp=fp; csrf_token=\"c\"; other=1\ntheme=dark");
add("cookies", "tossing", "__Host-session=a; __Host-session=b");
add("cookies", "insecure", "portcullis_session=x;portcullis_oidc_tx=y; ;=;session=z");

// Configuration files: the shapes the README documents.
const fixtures = join(here, "..", "fixtures", "seeds");
for (const f of ["seed000-values-discovery.yaml", "seed001-authentication.yaml"]) {
  add("config_yaml", f.replace(/\.yaml$/, ""), readFileSync(join(fixtures, f)));
}
add("config_yaml", "portcullis", `clientId: portcullis
secret: s3cret
discoveryUri: https://idp.example.com/.well-known/openid-configuration
admin: [oidc-admin-role]
roles:
  auditor: [security-team]
portcullis:
  publicUrl: https://gw.example.com
  jwtSigningSecret: 0123456789abcdef0123456789abcdef
  upstream: http://127.0.0.1:3000
  noRole: deny
  dpopPaths: [/api/]
  forwardAuthTrustedProxies: [10.0.0.0/8, "::1"]
  identityHeaders: {user: X-User}
  policies:
    - path: /admin/
      methods: [GET, POST]
      roles: [admin]
    - {path: /audit, roles: [auditor, admin]}
`);

// API tokens.
const id = "AbCdEf012345";
const secret = "0123456789abcdefghijABCDEFGHIJ0123456789abc";
add("api_token", "bearer", `Bearer pcs_${id}_${secret}`);
add("api_token", "bare", `pcs_${id}_${secret}`);
add("api_token", "name", "\x1e\x00\x00\x00\x00\x00\x00\x00 my laptop token ");

// CLI sign-in parameters: redirect, challenge, method, state, machine, user code, verifier, days.
add("cli_login", "valid", [
  "http://127.0.0.1:53682/callback", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "S256",
  "state-1", "laptop", "bcdf-ghjk", "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk", "30",
].join("\n"));
add("cli_login", "odd", ["http://[::1]:8/", "x", "plain", "", " \t", "BCDF GHJK", "", "-1"].join("\n"));

for (const [target, files] of Object.entries(seeds)) {
  const dir = join(here, "corpus", target);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
}
console.log(`seeds written for ${Object.keys(seeds).length} targets`);
