// Test OpenID Provider for Portcullis integration tests.
//
// A thin wrapper around panva's oidc-provider (v8, the last major that supports Node 20) that
//   * listens on 127.0.0.1 (random port by default), http or https,
//   * prints ONE JSON line {"issuer","port"} on stdout once it is listening (everything else -> stderr),
//   * has fixed test users and a trivial login form instead of oidc-provider's devInteractions,
//   * exposes a /__control API so a test can make the OP misbehave (forged ID tokens, bad
//     userinfo, broken /token, wrong discovery, tampered authorization responses) and can
//     read which requests the OP received.
//
// Configuration: env OP_CONFIG (JSON). See README.md.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as querystring from 'node:querystring';
import { Readable } from 'node:stream';

import * as jose from 'jose';
import Provider, { errors as oidcErrors } from 'oidc-provider';

const log = (...args) => console.error('[op]', ...args);
const startedAt = process.hrtime.bigint();

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

let config;
try {
  config = JSON.parse(process.env.OP_CONFIG || '{}');
} catch (err) {
  log('OP_CONFIG is not valid JSON:', err.message);
  process.exit(2);
}

const DEFAULT_CLIENT = {
  client_id: 'portcullis',
  client_secret: 'a-long-test-secret-of-at-least-32-chars!!',
  redirect_uris: ['http://127.0.0.1:1234/api/callback'],
  token_endpoint_auth_method: 'client_secret_post',
  id_token_signed_response_alg: 'RS256',
};

// Client metadata is passed to oidc-provider as-is, minus null values (so the Rust side can
// serialize Option::None as null, e.g. "backchannel_logout_uri": null).
const clients = (config.clients ?? [DEFAULT_CLIENT]).map((c) => Object.fromEntries(
  Object.entries(c).filter(([, v]) => v !== null && v !== undefined),
));

// ---------------------------------------------------------------------------------------------
// Test users. accountId == sub.
// ---------------------------------------------------------------------------------------------

const USERS = [
  {
    login: 'alice',
    password: 'alice-pass',
    claims: {
      sub: 'alice-sub-0001',
      email: 'alice@example.com',
      email_verified: true,
      name: 'Alice Liddell',
      given_name: 'Alice',
      family_name: 'Liddell',
      picture: 'https://example.com/alice.png',
      preferred_username: 'alice',
      groups: ['admins', 'devs'],
      realm_access: { roles: ['platform-admin', 'viewer'] },
    },
  },
  {
    login: 'bob',
    password: 'bob-pass',
    claims: {
      sub: 'bob-sub-0002',
      email: 'bob@example.com',
      email_verified: true,
      name: 'Bob Builder',
      given_name: 'Bob',
      family_name: 'Builder',
      preferred_username: 'bob',
      groups: ['devs'],
      realm_access: { roles: ['viewer'] },
    },
  },
  {
    // Header-injection / XSS / bidi-override probe.
    login: 'mallory',
    password: 'mallory-pass',
    claims: {
      sub: 'mallory-sub-0003',
      email: 'mallory@example.com',
      email_verified: false,
      name: 'Mallory\r\nX-Forwarded-User: admin <script>alert(1)</script> \u202e',
      preferred_username: 'mallory',
      groups: ['devs\r\nX-Injected: 1', 'ops'],
    },
  },
];
// Pristine claims, restored by /__control/reset (tests may change a user's groups).
const PRISTINE_CLAIMS = new Map(USERS.map((u) => [u.login, structuredClone(u.claims)]));
const usersByLogin = new Map(USERS.map((u) => [u.login, u]));
const usersBySub = new Map(USERS.map((u) => [u.claims.sub, u]));

// ---------------------------------------------------------------------------------------------
// Signing keys. Generated per process so every test gets its own JWKS (and own kids).
// ---------------------------------------------------------------------------------------------

const KEY_SPECS = [
  { alg: 'RS256', gen: ['RS256', { modulusLength: 2048 }] },
  { alg: 'PS256', gen: ['PS256', { modulusLength: 2048 }] },
  { alg: 'ES256', gen: ['ES256', {}] },
  { alg: 'EdDSA', gen: ['EdDSA', { crv: 'Ed25519' }] },
];

const toKeyObject = (k) => (k instanceof crypto.KeyObject ? k : crypto.KeyObject.from(k));
const randomHex = (bytes) => crypto.randomBytes(bytes).toString('hex');

// -> { alg, kid, privateKey: KeyObject, publicKey: KeyObject, privateJwk, publicJwk }
async function makeKey(alg, kid = `${alg.toLowerCase()}-${randomHex(4)}`) {
  const spec = KEY_SPECS.find((s) => s.alg === alg);
  if (!spec) throw new Error(`no key spec for alg ${alg}`);
  const { privateKey, publicKey } = await jose.generateKeyPair(spec.gen[0], { ...spec.gen[1], extractable: true });
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  return {
    alg, kid, privateKey: toKeyObject(privateKey), publicKey: toKeyObject(publicKey), privateJwk, publicJwk,
  };
}

// A private JWK (as makeKey exports it) back to a key record: what OP_CONFIG.keys_file holds.
function keyFromJwk(privateJwk) {
  const { kid, alg, use: _use, ...material } = privateJwk;
  const privateKey = crypto.createPrivateKey({ key: material, format: 'jwk' });
  const publicKey = crypto.createPublicKey(privateKey);
  const publicJwk = { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicKey, privateJwk, publicJwk };
}

// OP_CONFIG.keys_file: the signing keys survive a restart (an IdP that went down and came back
// with the same keys). The file is written by the first process and read by later ones.
async function signingKeys() {
  if (config.keys_file && fs.existsSync(config.keys_file)) {
    return JSON.parse(fs.readFileSync(config.keys_file, 'utf8')).map(keyFromJwk);
  }
  const keys = await Promise.all(KEY_SPECS.map((s) => makeKey(s.alg)));
  if (config.keys_file) fs.writeFileSync(config.keys_file, JSON.stringify(keys.map((k) => k.privateJwk)));
  return keys;
}

const realKeys = await signingKeys();
const realKeyByKid = new Map(realKeys.map((k) => [k.kid, k]));
const realKeyByAlg = new Map(realKeys.map((k) => [k.alg, k]));

// Keys published in addition to the provider's own JWKS (filled by the "rotated" sign mode).
const extraPublishedJwks = [];

// ---------------------------------------------------------------------------------------------
// Raw JWS helpers. We sign by hand (node:crypto) rather than with jose so that the JOSE header
// can say anything the test wants, independently of the key actually used.
// ---------------------------------------------------------------------------------------------

const b64u = (input) => Buffer.from(input).toString('base64url');
const b64uJson = (obj) => b64u(JSON.stringify(obj));

function rawSign(alg, key, input) {
  switch (alg) {
    case 'RS256': return crypto.sign('sha256', input, key);
    case 'PS256': return crypto.sign('sha256', input, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case 'ES256': return crypto.sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
    case 'EdDSA': return crypto.sign(null, input, key);
    case 'HS256': return crypto.createHmac('sha256', key).update(input).digest();
    default: throw new Error(`rawSign: unsupported alg ${alg}`);
  }
}

function compactJws(header, payload, signAlg, key) {
  const input = `${b64uJson(header)}.${b64uJson(payload)}`;
  return `${input}.${b64u(rawSign(signAlg, key, Buffer.from(input)))}`;
}

// Shallow merge where a null value deletes the member.
function applyOverrides(target, overrides) {
  const out = { ...target };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === null) delete out[k]; else out[k] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Control state (modes + request log)
// ---------------------------------------------------------------------------------------------

let modes = {};
let requestLog = [];
// Per-id_token-mode generated keys ("wrong-key", "rotated", "unknown-kid"), so that repeated
// /token calls under one mode use one key. Cleared whenever id_token mode is (re)set.
let modeKeys = new Map();

function resetState() {
  modes = {};
  requestLog = [];
  modeKeys = new Map();
  extraPublishedJwks.length = 0;
  for (const u of USERS) u.claims = structuredClone(PRISTINE_CLAIMS.get(u.login));
}

// ---------------------------------------------------------------------------------------------
// Refresh tokens the way real IdPs hand them out (OP_CONFIG.refresh_tokens):
//   "microsoft": the Microsoft identity platform: the `offline_access` scope alone yields a
//                refresh token (no prompt=consent needed), refresh tokens rotate on every use,
//                and the ID token carries `preferred_username` and `groups` with just `openid`.
//   "google":    Google: a refresh token only when the authorization request had
//                `access_type=offline` and `prompt=consent`; the `offline_access` scope does
//                not matter; refresh tokens do not rotate.
// Unset: oidc-provider's own behaviour (OIDC Core: offline_access + prompt=consent).
// ---------------------------------------------------------------------------------------------

const refreshShape = config.refresh_tokens ?? null;
if (refreshShape !== null && !['microsoft', 'google'].includes(refreshShape)) {
  log(`OP_CONFIG.refresh_tokens must be "microsoft" or "google", got ${JSON.stringify(refreshShape)}`);
  process.exit(2);
}
// Google shape: grants whose authorization request asked for offline access with consent.
const offlineGrants = new Set();
// Every grant made per account (sub), so a test can revoke them (the person's access withdrawn
// at the IdP: their refresh tokens then fail with invalid_grant).
const grantsByAccount = new Map();

async function modeKey(name, alg, kid) {
  const cacheKey = `${name}:${alg}`;
  if (!modeKeys.has(cacheKey)) modeKeys.set(cacheKey, await makeKey(alg, kid));
  return modeKeys.get(cacheKey);
}

const SIGN_MODES = new Set(['valid', 'none', 'hs256-public-key', 'wrong-key', 'tamper', 'rotated', 'unknown-kid', 'es256-in-jwks', 'embedded-jwk', 'jku']);

// Rewrites the provider-issued ID token according to modes.id_token.
async function forgeIdToken(idToken, mode) {
  const origHeader = jose.decodeProtectedHeader(idToken);
  const payload = applyOverrides(jose.decodeJwt(idToken), mode.claims);
  const hdr = (base) => applyOverrides(base, mode.header);
  const real = realKeyByKid.get(origHeader.kid);
  if (!real) throw new Error(`id_token signed with unknown kid ${origHeader.kid}`);

  switch (mode.sign ?? 'valid') {
    case 'valid':
      return compactJws(hdr(origHeader), payload, real.alg, real.privateKey);
    case 'none':
      return `${b64uJson(hdr({ alg: 'none' }))}.${b64uJson(payload)}.`;
    case 'hs256-public-key': {
      // Classic RS->HS confusion: HMAC keyed with the PEM (SPKI) text of the real RSA public key.
      const rsa = real.privateJwk.kty === 'RSA' ? real : realKeyByAlg.get('RS256');
      const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' }); // ends with "\n"
      return compactJws(hdr({ ...origHeader, alg: 'HS256', kid: rsa.kid }), payload, 'HS256', Buffer.from(pem));
    }
    case 'wrong-key': {
      // Same alg and kid as the real key, but a key nobody published.
      const k = await modeKey('wrong-key', real.alg, real.kid);
      return compactJws(hdr(origHeader), payload, k.alg, k.privateKey);
    }
    case 'tamper': {
      const jws = compactJws(hdr(origHeader), payload, real.alg, real.privateKey);
      const [h, p, s] = jws.split('.');
      const i = Math.floor(p.length / 2);
      const swapped = p[i] === 'A' ? 'B' : 'A';
      return `${h}.${p.slice(0, i)}${swapped}${p.slice(i + 1)}.${s}`;
    }
    case 'rotated': {
      // New key, published in /jwks from the moment it is first used to sign.
      const k = await modeKey('rotated', real.alg);
      if (!extraPublishedJwks.some((j) => j.kid === k.kid)) extraPublishedJwks.push(k.publicJwk);
      return compactJws(hdr({ ...origHeader, kid: k.kid }), payload, k.alg, k.privateKey);
    }
    case 'unknown-kid': {
      const k = await modeKey('unknown-kid', real.alg);
      return compactJws(hdr({ ...origHeader, kid: k.kid }), payload, k.alg, k.privateKey);
    }
    case 'embedded-jwk': {
      // CVE-2018-0114 shape: signed by an attacker key that is embedded as the `jwk` header,
      // with the real kid. An RP that trusts the header would accept it.
      const k = await modeKey('wrong-key', real.alg, real.kid);
      return compactJws(hdr({ ...origHeader, jwk: k.publicJwk }), payload, k.alg, k.privateKey);
    }
    case 'jku': {
      // Signed by an attacker key published only at a `jku` URL (served below, and logged, so a
      // test can prove the RP never fetched it).
      const k = await modeKey('wrong-key', real.alg, real.kid);
      return compactJws(hdr({ ...origHeader, jku: `${issuer}/attacker/jwks`, x5u: `${issuer}/attacker/cert.pem` }),
        payload, k.alg, k.privateKey);
    }
    case 'es256-in-jwks': {
      const es = realKeyByAlg.get('ES256');
      return compactJws(hdr({ ...origHeader, alg: 'ES256', kid: es.kid }), payload, 'ES256', es.privateKey);
    }
    default:
      throw new Error(`unknown id_token sign mode ${mode.sign}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Small HTTP helpers for our own (non-provider) routes
// ---------------------------------------------------------------------------------------------

function readBody(req, limit = 1024 * 1024) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) { reject(new Error('body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function sendJson(ctx, status, body) {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('cache-control', 'no-store');
  ctx.body = JSON.stringify(body);
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, clientId, message) {
  return `<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Test OP sign-in</title></head>
<body>
<h1>Sign in to ${escapeHtml(clientId ?? 'client')}</h1>
${message ? `<p id="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <input type="text" name="login" autofocus>
  <input type="password" name="password">
  <button type="submit">Sign in</button>
</form>
</body>
</html>
`;
}

// ---------------------------------------------------------------------------------------------
// Server + provider. We listen first (port 0 -> pick a port), because the issuer contains the
// port and oidc-provider needs the issuer at construction time.
// ---------------------------------------------------------------------------------------------

const tls = config.tls
  ? { cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key) }
  : null;
const server = tls ? https.createServer(tls) : http.createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const { port } = server.address();
// OP_CONFIG.issuer_path: an issuer with a path, the shape of real IdPs (Entra ID
// `/<tenant>/v2.0`, Okta `/oauth2/<server>`, Keycloak `/realms/<realm>`). Every endpoint then
// lives under it; requests outside it (the control API, /groups-source) are served as before.
const issuerPath = (config.issuer_path ?? '').replace(/\/+$/, '');
if (issuerPath && !/^\/[A-Za-z0-9._~\-/]+$/.test(issuerPath)) {
  log('issuer_path must start with / and be a plain path:', issuerPath);
  process.exit(2);
}
const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${port}${issuerPath}`;

// OP_CONFIG.par: pushed authorization requests (RFC 9126), e.g. {"required": true}. Off unless
// asked for (oidc-provider enables PAR by default), so tests that do not ask keep seeing every
// authorization parameter in the /auth query, as before.
const parFeature = config.par
  ? { enabled: true, requirePushedAuthorizationRequests: Boolean(config.par.required) }
  : { enabled: false };

const provider = new Provider(issuer, {
  clients,
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
    token_endpoint_auth_method: 'client_secret_basic',
  },
  jwks: { keys: realKeys.map((k) => k.privateJwk) },
  responseTypes: ['code'],
  pkce: {
    methods: ['S256'],
    // Accepted always; required unless OP_CONFIG.pkce_required === false.
    required: () => config.pkce_required ?? true,
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  claims: {
    openid: refreshShape === 'microsoft' ? ['sub', 'preferred_username', 'groups'] : ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'picture', 'preferred_username', 'realm_access'],
    groups: ['groups'],
    acr: null,
    auth_time: null,
    sid: null,
    iss: null,
  },
  // true (spec default) = scope claims only from userinfo in the code flow. We default to putting
  // them in the ID token too (Keycloak/Google-like), so ID-token-only claim mapping is testable.
  conformIdTokenClaims: !(config.claims_in_id_token ?? true),
  // Spec: offline_access needs prompt=consent. Optionally hand out refresh tokens regardless.
  ...(config.always_issue_refresh_token ? {
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  } : {}),
  ...(refreshShape === 'google' ? {
    extraParams: ['access_type'],
    issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token')
      && offlineGrants.has(code.grantId),
    rotateRefreshToken: () => false,
  } : {}),
  ...(refreshShape === 'microsoft' ? { rotateRefreshToken: () => true } : {}),
  features: {
    devInteractions: { enabled: false }, // replaced by our /interaction routes below
    rpInitiatedLogout: {
      enabled: true,
      // Plain pages (the defaults pull in web fonts). With auto_confirm_logout the form is submitted for the client, see autoSubmitEndSessionForm.
      async logoutSource(ctx, form) {
        ctx.body = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Logout Request</title></head>
<body><h1>Sign out of the test OP?</h1>
${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
<button type="submit" form="op.logoutForm">No, stay signed in</button>
</body></html>
`;
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Signed out</title></head><body><h1>Sign-out Success</h1></body></html>\n';
      },
    },
    backchannelLogout: { enabled: true },
    revocation: { enabled: true },
    claimsParameter: { enabled: false },
    pushedAuthorizationRequests: parFeature,
  },
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // Cookies: oidc-provider only sets `secure` when the request itself is secure, so plain http
  // works. Default long-cookie SameSite=None (without Secure over http) is rejected by some
  // cookie jars; Lax is enough for top-level redirects.
  cookies: {
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
    // Per-process key; cookies stay unsigned (tests never tamper with them), this only silences
    // oidc-provider's missing-keys warning.
    keys: [crypto.randomBytes(32).toString('base64url')],
  },
  async findAccount(ctx, id) {
    const user = usersBySub.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      // oidc-provider filters these by the granted scopes/claims.
      async claims() { return structuredClone(user.claims); },
    };
  },
});

provider.on('server_error', (ctx, err) => log('server_error', ctx.method, ctx.path, err));

// Is `location` a redirect to one of the clients' registered redirect_uris?
const redirectTargets = new Set(clients.flatMap((c) => c.redirect_uris ?? []).map((u) => {
  const url = new URL(u);
  return `${url.origin}${url.pathname}`;
}));
function isClientRedirect(location) {
  try {
    const url = new URL(location, issuer);
    return redirectTargets.has(`${url.origin}${url.pathname}`);
  } catch { return false; }
}

// --- control API ------------------------------------------------------------------------------

async function handleControl(ctx) {
  const route = `${ctx.method} ${ctx.path}`;
  const body = ctx.method === 'POST' ? await readBody(ctx.req, 8 * 1024 * 1024) : '';
  switch (route) {
    case 'POST /__control/reset':
      resetState();
      return sendJson(ctx, 200, { ok: true });
    case 'GET /__control/log':
      return sendJson(ctx, 200, requestLog);
    case 'POST /__control/log/clear':
      requestLog = [];
      return sendJson(ctx, 200, { ok: true });
    case 'POST /__control/sign': {
      // Sign any header and payload with the OP's real key for `alg` (default RS256), or with
      // a key the OP does not publish (`"key": "other"`): tests forge logout tokens with it.
      let req;
      try {
        req = JSON.parse(body || '{}');
      } catch (err) {
        return sendJson(ctx, 400, { error: `invalid JSON: ${err.message}` });
      }
      const alg = req.alg ?? 'RS256';
      const key = req.key === 'other' ? await modeKey('sign-other', alg) : realKeyByAlg.get(alg);
      if (!key) return sendJson(ctx, 400, { error: `no key for ${alg}` });
      const header = applyOverrides({ alg, kid: key.kid }, req.header);
      return sendJson(ctx, 200, { jws: compactJws(header, req.payload ?? {}, alg, key.privateKey) });
    }
    case 'POST /__control/user': {
      // Change a user's claims at the IdP (e.g. their groups): {"login", "claims": {…}}, a null
      // value deletes the claim. Later tokens and userinfo answers carry the new claims.
      let req;
      try {
        req = JSON.parse(body || '{}');
      } catch (err) {
        return sendJson(ctx, 400, { error: `invalid JSON: ${err.message}` });
      }
      const user = usersByLogin.get(String(req.login ?? ''));
      if (!user) return sendJson(ctx, 404, { error: `unknown user ${req.login}` });
      const claims = applyOverrides(user.claims, req.claims);
      claims.sub = user.claims.sub; // the identity itself never changes
      user.claims = claims;
      return sendJson(ctx, 200, user.claims);
    }
    case 'POST /__control/revoke': {
      // Withdraw a person's access at the IdP: every grant of {"login"} is destroyed, so their
      // refresh tokens are refused (invalid_grant) from now on.
      let req;
      try {
        req = JSON.parse(body || '{}');
      } catch (err) {
        return sendJson(ctx, 400, { error: `invalid JSON: ${err.message}` });
      }
      const user = usersByLogin.get(String(req.login ?? ''));
      if (!user) return sendJson(ctx, 404, { error: `unknown user ${req.login}` });
      const ids = [...(grantsByAccount.get(user.claims.sub) ?? [])];
      for (const id of ids) {
        const grant = await provider.Grant.find(id);
        if (grant) await grant.destroy();
      }
      grantsByAccount.delete(user.claims.sub);
      return sendJson(ctx, 200, { revoked: ids.length });
    }
    case 'GET /__control/mode':
      return sendJson(ctx, 200, modes);
    case 'POST /__control/mode': {
      let patch;
      try {
        patch = JSON.parse(body || '{}');
      } catch (err) {
        return sendJson(ctx, 400, { error: `invalid JSON: ${err.message}` });
      }
      if (!patch || typeof patch !== 'object' || Array.isArray(patch)) {
        return sendJson(ctx, 400, { error: 'mode must be a JSON object' });
      }
      const known = ['id_token', 'userinfo', 'token', 'discovery', 'authorization_response', 'refresh', 'paths'];
      const unknown = Object.keys(patch).filter((k) => !known.includes(k));
      if (unknown.length) return sendJson(ctx, 400, { error: `unknown mode(s): ${unknown.join(', ')}` });
      const sign = patch.id_token?.sign;
      if (sign !== undefined && !SIGN_MODES.has(sign)) {
        return sendJson(ctx, 400, { error: `unknown id_token.sign ${sign}`, allowed: [...SIGN_MODES] });
      }
      // Top-level fields replace the previous value of that mode; null clears it.
      if ('id_token' in patch) modeKeys = new Map();
      modes = applyOverrides(modes, patch);
      log('mode ->', JSON.stringify(modes));
      return sendJson(ctx, 200, modes);
    }
    default:
      return sendJson(ctx, 404, { error: `unknown control route ${route}` });
  }
}

// --- interaction pages (replacing devInteractions) ----------------------------------------------

// Creates a Grant covering everything the authorization request asked for, i.e. automatic consent
// (as in oidc-provider's example/routes: new provider.Grant(...), addOIDCScope, save()).
async function autoGrant(details, accountId) {
  const { params } = details;
  let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
  if (!grant || grant.accountId !== accountId) {
    grant = new provider.Grant({ accountId, clientId: params.client_id });
  }
  if (params.scope) grant.addOIDCScope(params.scope);
  const missing = details.prompt?.details ?? {};
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  if (!grantsByAccount.has(accountId)) grantsByAccount.set(accountId, new Set());
  grantsByAccount.get(accountId).add(grantId);
  const prompts = String(params.prompt ?? '').split(' ');
  if (params.access_type === 'offline' && prompts.includes('consent')) offlineGrants.add(grantId);
  return grantId;
}

async function handleInteraction(ctx, uid, action, rawBody = '') {
  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) throw new oidcErrors.SessionNotFound('interaction uid mismatch');
  } catch (err) {
    ctx.status = 400;
    ctx.type = 'text/plain';
    ctx.body = `interaction error: ${err.message}\n`;
    return undefined;
  }
  ctx.set('cache-control', 'no-store');

  if (action === 'show') {
    if (details.prompt.name === 'consent' && details.session?.accountId) {
      // Second round (e.g. prompt=consent, or an existing session): consent automatically.
      const grantId = await autoGrant(details, details.session.accountId);
      ctx.respond = false; // interactionFinished writes the 303 itself
      return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    ctx.type = 'html';
    ctx.body = loginPage(uid, details.params.client_id);
    return undefined;
  }

  // action === 'login'
  const form = querystring.parse(rawBody);
  const user = usersByLogin.get(String(form.login ?? ''));
  if (!user || user.password !== String(form.password ?? '')) {
    ctx.status = 200;
    ctx.type = 'html';
    ctx.body = loginPage(uid, details.params.client_id, 'invalid credentials');
    return undefined;
  }
  const accountId = user.claims.sub;
  const grantId = await autoGrant(details, accountId);
  ctx.respond = false;
  return provider.interactionFinished(
    ctx.req,
    ctx.res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

// --- server-side "auto-submit" of oidc-provider's POST /session/end/confirm forms --------------
//
// oidc-provider answers with an HTML page holding a form to POST /session/end/confirm (xsrf
// token) in three places: RP-initiated logout (confirmation page), logout without a session
// (auto-submitting form) and, on /auth/:uid resume, when a *different* user just logged in over an
// existing session (it must end the old session first). A test client does not run JavaScript, so
// we submit that form ourselves over loopback, with the browser's cookies, and answer the browser
// with the resulting 303 + Set-Cookie headers. The POST shows up in the request log.

function cookieHeaderAfter(ctx) {
  const jar = new Map();
  for (const part of (ctx.get('cookie') || '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  // Apply what this response is already setting (e.g. the saved session).
  for (const sc of [].concat(ctx.response.get('set-cookie') || [])) {
    const [nv, ...attrs] = sc.split(';');
    const eq = nv.indexOf('=');
    const name = nv.slice(0, eq).trim();
    const value = nv.slice(eq + 1).trim();
    const expired = attrs.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]) < new Date());
    if (expired || value === '') jar.delete(name); else jar.set(name, value);
  }
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

function loopbackPost(pathname, cookie, fields) {
  const body = new URLSearchParams(fields).toString();
  const mod = tls ? https : http;
  return new Promise((resolve, reject) => {
    const r = mod.request(`${issuer}${pathname}`, {
      method: 'POST',
      ...(tls ? { rejectUnauthorized: false } : {}), // it is ourselves
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(body),
        ...(cookie ? { cookie } : {}),
      },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res));
    });
    r.on('error', reject);
    r.end(body);
  });
}

async function autoSubmitEndSessionForm(ctx) {
  const html = ctx.body;
  const action = `${issuer}/session/end/confirm`;
  const xsrf = html.match(/name="xsrf" value="([^"]+)"/)?.[1];
  if (!xsrf || !html.includes(`action="${action}"`)) return;
  const res = await loopbackPost('/session/end/confirm', cookieHeaderAfter(ctx), { xsrf, logout: 'yes' });
  if (res.statusCode !== 303 || !res.headers.location) {
    log('auto-submit of /session/end/confirm failed with', res.statusCode);
    return;
  }
  const setCookies = [].concat(ctx.response.get('set-cookie') || [], res.headers['set-cookie'] || []);
  ctx.status = 303;
  ctx.body = '';
  ctx.set('set-cookie', setCookies);
  ctx.set('location', res.headers.location);
}

// --- the single middleware in front of oidc-provider -------------------------------------------

const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

// modes.paths[path]: answer that path with a fault instead of the real answer (slow, garbage,
// huge, trickled). How much of the body actually left is recorded in the request's log entry
// (`answered`), so a test can prove a client stopped reading early.
function faultyAnswer(ctx, p, entry) {
  ctx.status = p.status ?? 200;
  ctx.type = p.content_type ?? 'application/json';
  ctx.set('cache-control', 'no-store');
  const body = Buffer.from(String(p.raw ?? ''));
  const total = p.huge_bytes ?? body.length;
  const answered = { bytes: total, sent: 0 };
  entry.answered = answered;
  if (!p.huge_bytes && !p.trickle_ms && !p.chunked) {
    ctx.body = body;
    answered.sent = total;
    return;
  }
  const filler = Buffer.alloc(64 * 1024, 0x78); // "xxx…": not JSON
  const stream = new Readable({
    read() {
      const push = () => {
        if (this.destroyed) return;
        if (answered.sent >= total) { this.push(null); return; }
        const n = p.trickle_ms ? 1 : Math.min(filler.length, total - answered.sent);
        const chunk = p.huge_bytes ? filler.subarray(0, n) : body.subarray(answered.sent, answered.sent + n);
        answered.sent += n;
        this.push(chunk);
      };
      if (p.trickle_ms) setTimeout(push, p.trickle_ms); else push();
    },
  });
  ctx.body = stream;
  // Declared length unless chunked (set after the body: koa drops it for streams).
  if (!p.chunked) ctx.length = total;
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__control' || ctx.path.startsWith('/__control/')) return handleControl(ctx);

  const entry = { method: ctx.method, path: ctx.path, query: { ...ctx.query } };
  // Also record urlencoded bodies (e.g. /token: grant_type, code_verifier, client auth).
  // We consume the stream here and hand the raw text to oidc-provider via req.body, which it
  // accepts (it logs a one-time "already parsed request body" warning to stderr).
  if (ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded')) {
    const raw = await readBody(ctx.req);
    ctx.req.body = raw;
    entry.form = { ...querystring.parse(raw) };
  }
  requestLog.push(entry);

  // Microsoft shape: the offline_access scope is honoured without prompt=consent (oidc-provider
  // follows OIDC Core and would drop it), so ask for consent on the client's behalf. The
  // request log keeps the query as the client sent it.
  if (refreshShape === 'microsoft' && ctx.path === '/auth' && ctx.method === 'GET') {
    const q = new URLSearchParams(ctx.querystring);
    const prompts = (q.get('prompt') ?? '').split(' ').filter(Boolean);
    if ((q.get('scope') ?? '').split(' ').includes('offline_access') && !prompts.includes('consent')) {
      q.set('prompt', [...prompts, 'consent'].join(' '));
      ctx.querystring = q.toString();
    }
  }

  const fault = modes.paths?.[ctx.path];
  if (fault) {
    if (fault.delay_ms) await sleep(fault.delay_ms);
    if (['raw', 'huge_bytes', 'status', 'trickle_ms'].some((k) => k in fault)) {
      return faultyAnswer(ctx, fault, entry);
    }
  }

  // A distributed groups claim source (Entra ID's groups overage, OIDC Core 5.6.2): answers
  // the bearer's groups the way Microsoft Graph's getMemberObjects does, {"value": [...]}.
  if (ctx.path === '/groups-source' && ['GET', 'POST'].includes(ctx.method)) {
    const m2 = /^Bearer (.+)$/.exec(ctx.get('authorization') ?? '');
    const at = m2 ? await provider.AccessToken.find(m2[1]) : undefined;
    const user = at ? usersBySub.get(at.accountId) : undefined;
    if (!user) return sendJson(ctx, 401, { error: 'invalid_token' });
    return sendJson(ctx, 200, { value: user.claims.groups ?? [] });
  }

  // The attacker's key set for the `jku` sign mode (never to be fetched by the RP).
  if (ctx.path === '/attacker/jwks') {
    const k = modeKeys.get(`wrong-key:${realKeyByAlg.get('RS256').alg}`);
    ctx.type = 'application/json';
    ctx.body = JSON.stringify({ keys: k ? [k.publicJwk] : [] });
    return undefined;
  }

  // Our interaction pages.
  let m = ctx.path.match(/^\/interaction\/([^/]+)$/);
  if (m && ctx.method === 'GET') return handleInteraction(ctx, m[1], 'show');
  m = ctx.path.match(/^\/interaction\/([^/]+)\/login$/);
  if (m && ctx.method === 'POST') {
    return handleInteraction(ctx, m[1], 'login', ctx.req.body ?? await readBody(ctx.req));
  }

  // /token replacement / delay (before the provider sees it, so the code is not consumed).
  if (ctx.path === '/token' && ctx.method === 'POST' && modes.token) {
    const t = modes.token;
    if (t.delay_ms) await sleep(t.delay_ms);
    if ('raw' in t || 'body' in t) {
      ctx.status = t.status ?? 200;
      ctx.set('cache-control', 'no-store');
      if ('raw' in t) {
        ctx.type = t.content_type ?? 'text/html; charset=utf-8';
        ctx.body = String(t.raw);
      } else {
        ctx.type = t.content_type ?? 'application/json';
        ctx.body = JSON.stringify(t.body);
      }
      return undefined;
    }
  }

  await next();

  const route = ctx.oidc?.route;
  // Refresh answers without an ID token (allowed by OIDC Core 12.2): {"refresh": {"id_token": false}}.
  if (route === 'token' && ctx.status === 200 && modes.refresh?.id_token === false
      && ctx.oidc?.params?.grant_type === 'refresh_token' && ctx.body && typeof ctx.body === 'object') {
    const { id_token: _dropped, ...rest } = ctx.body;
    ctx.body = rest;
  }
  if (route === 'token' && ctx.status === 200 && modes.id_token
      && ctx.body && typeof ctx.body === 'object' && typeof ctx.body.id_token === 'string') {
    ctx.body = { ...ctx.body, id_token: await forgeIdToken(ctx.body.id_token, modes.id_token) };
  } else if (route === 'userinfo' && ctx.status === 200 && modes.userinfo
      && ctx.body && typeof ctx.body === 'object') {
    const u = modes.userinfo;
    const body = applyOverrides(ctx.body, u.claims);
    if ('raw' in u) {
      // Replace the answer entirely (garbage, a JSON array, a wrong content type...).
      ctx.status = u.status ?? 200;
      ctx.type = u.content_type ?? 'application/json';
      ctx.body = String(u.raw);
    } else if (u.jwt) {
      // Signed UserInfo (Core 5.3.2): iss and aud added, signed with the RS256 key, then
      // forged like an ID token (u.jwt = {sign, claims, header}).
      const rs = realKeyByAlg.get('RS256');
      const clientId = ctx.oidc?.client?.clientId ?? clients[0]?.client_id;
      const payload = { iss: issuer, aud: clientId, ...body };
      const base = compactJws({ alg: 'RS256', kid: rs.kid, typ: 'JWT' }, payload, 'RS256', rs.privateKey);
      ctx.type = 'application/jwt';
      ctx.body = await forgeIdToken(base, u.jwt);
    } else {
      ctx.body = body;
    }
  } else if (route === 'discovery' && ctx.status === 200 && modes.discovery
      && ctx.body && typeof ctx.body === 'object') {
    ctx.body = applyOverrides(ctx.body, modes.discovery);
  } else if (route === 'jwks' && ctx.status === 200 && extraPublishedJwks.length
      && ctx.body && typeof ctx.body === 'object') {
    // Never mutate the provider's cached jwksResponse; serve a copy with the rotated keys.
    ctx.body = { keys: [...ctx.body.keys, ...extraPublishedJwks] };
  }

  if (ctx.status === 200 && typeof ctx.body === 'string' && ctx.body.includes('/session/end/confirm')
      && (route === 'resume' || (route === 'end_session' && (config.auto_confirm_logout ?? true)))) {
    await autoSubmitEndSessionForm(ctx);
  }

  // Authorization response tampering: whichever response redirects to a client redirect_uri.
  const location = ctx.response.get('location');
  if (modes.authorization_response && location && isClientRedirect(location)) {
    const ar = modes.authorization_response;
    const url = new URL(location);
    if ('iss' in ar) {
      if (ar.iss === null) url.searchParams.delete('iss'); else url.searchParams.set('iss', ar.iss);
    }
    if (ar.duplicate_state && url.searchParams.has('state')) {
      url.searchParams.append('state', url.searchParams.get('state'));
    }
    ctx.set('location', url.href);
  }
  return undefined;
});

const handler = provider.callback();
server.on('request', (req, res) => {
  // Serve the issuer path as a mount point: oidc-provider derives its URLs from
  // req.originalUrl minus req.url (see oidc_context.js urlFor).
  if (issuerPath && (req.url === issuerPath || req.url.startsWith(`${issuerPath}/`)
      || req.url.startsWith(`${issuerPath}?`))) {
    req.originalUrl = req.url;
    req.url = req.url.slice(issuerPath.length) || '/';
  }
  handler(req, res);
});

// ---------------------------------------------------------------------------------------------
// Lifecycle: exit on SIGTERM/SIGINT, when stdin closes (the parent test died or dropped the
// pipe), or when we get re-parented (parent killed without closing our stdin).
// ---------------------------------------------------------------------------------------------

function shutdown(reason) {
  log(`exiting: ${reason}`);
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (config.exit_on_stdin_close ?? true) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('close', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}
const parentPid = process.ppid;
setInterval(() => { if (process.ppid !== parentPid) shutdown('parent went away'); }, 1000).unref();

const ms = Number(process.hrtime.bigint() - startedAt) / 1e6;
log(`listening on ${issuer} (start-up ${ms.toFixed(0)} ms), kids: ${realKeys.map((k) => k.kid).join(', ')}`);
process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
