// Self-test for op.mjs: `node tests/harness/smoke.mjs` (exit code != 0 on failure).
//
// Starts op.mjs as a child process, runs the full code flow with PKCE as a cookie-keeping client
// (manual redirects), then exercises every control mode once.

import { spawn, execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as jose from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
const REDIRECT = 'http://127.0.0.1:1234/api/callback';
const LOGGED_OUT = 'http://127.0.0.1:1234/logged-out';
const SECRET = 'a-long-test-secret-of-at-least-32-chars!!';
const CLIENTS = [
  { client_id: 'portcullis', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post', id_token_signed_response_alg: 'RS256', post_logout_redirect_uris: [], backchannel_logout_uri: null },
  { client_id: 'ps', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post', id_token_signed_response_alg: 'PS256', post_logout_redirect_uris: [LOGGED_OUT] },
  { client_id: 'es', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post', id_token_signed_response_alg: 'ES256' },
  { client_id: 'ed', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: 'EdDSA' },
];

let passed = 0;
let failed = 0;
function check(cond, what, extra) {
  if (cond) {
    passed += 1;
    console.log(`ok   - ${what}`);
  } else {
    failed += 1;
    console.log(`FAIL - ${what}${extra !== undefined ? `: ${typeof extra === 'string' ? extra : JSON.stringify(extra)}` : ''}`);
  }
}

// ---------------------------------------------------------------------------------------------

function startOp(opConfig) {
  const t0 = Date.now();
  const child = spawn(process.execPath, [path.join(here, 'op.mjs')], {
    env: { ...process.env, OP_CONFIG: JSON.stringify(opConfig) },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        const info = JSON.parse(buf.slice(0, nl));
        resolve({ child, ...info, startupMs: Date.now() - t0, stderr: () => stderr });
      }
    });
    child.on('exit', (code) => reject(new Error(`op.mjs exited early (${code}):\n${stderr}`)));
    setTimeout(() => reject(new Error(`op.mjs did not start in 15s:\n${stderr}`)), 15000).unref();
  });
}

// Minimal cookie jar (name + path, enough for oidc-provider's cookies on one host).
class Jar {
  cookies = new Map(); // `${path}|${name}` -> {name, value, path}

  store(res) {
    for (const sc of res.headers.getSetCookie()) {
      const [nv, ...attrs] = sc.split(';').map((s) => s.trim());
      const eq = nv.indexOf('=');
      const name = nv.slice(0, eq);
      const value = nv.slice(eq + 1);
      let cpath = '/';
      let expired = false;
      for (const a of attrs) {
        const [k, v] = a.split('=');
        if (k.toLowerCase() === 'path') cpath = v;
        if (k.toLowerCase() === 'expires' && new Date(v) < new Date()) expired = true;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
      }
      const key = `${cpath}|${name}`;
      if (expired || value === '') this.cookies.delete(key); else this.cookies.set(key, { name, value, path: cpath });
    }
  }

  header(url) {
    const p = new URL(url).pathname;
    return [...this.cookies.values()]
      .filter((c) => p === c.path || p.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function req(jar, url, init = {}) {
  const headers = { ...(init.headers ?? {}) };
  const cookie = jar?.header(url);
  if (cookie) headers.cookie = cookie;
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar?.store(res);
  return res;
}

const b64u = (b) => Buffer.from(b).toString('base64url');

// Runs GET /auth ... until the client callback. Returns {callback: URL, hops: [...]}.
async function authorize(op, jar, {
  clientId = 'portcullis', scope = 'openid email profile groups', login = 'alice', password = 'alice-pass', extra = {},
} = {}) {
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
  const state = b64u(crypto.randomBytes(12));
  const nonce = b64u(crypto.randomBytes(12));
  const authUrl = new URL('/auth', op.issuer);
  Object.entries({
    client_id: clientId, redirect_uri: REDIRECT, response_type: 'code', scope, state, nonce,
    code_challenge: challenge, code_challenge_method: 'S256', ...extra,
  }).forEach(([k, v]) => authUrl.searchParams.set(k, v));

  const hops = [];
  let url = authUrl.href;
  let res = await req(jar, url);
  for (let i = 0; i < 10; i += 1) {
    hops.push(`${res.status} ${new URL(url).pathname}`);
    if (res.status === 200 && new URL(url).pathname.startsWith('/interaction/')) {
      const html = await res.text();
      const action = html.match(/action="([^"]+)"/)[1];
      res = await req(jar, new URL(action, op.issuer).href, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login, password }).toString(),
      });
      url = new URL(action, op.issuer).href;
      continue;
    }
    if (![302, 303].includes(res.status)) throw new Error(`unexpected ${res.status} at ${url}: ${await res.text()}`);
    await res.arrayBuffer();
    const next = new URL(res.headers.get('location'), url);
    if (next.href.startsWith(REDIRECT)) {
      hops.push(`-> ${next.origin}${next.pathname}`);
      return {
        callback: next, hops, verifier, state, nonce,
      };
    }
    url = next.href;
    res = await req(jar, url);
  }
  throw new Error(`too many redirects: ${hops.join(', ')}`);
}

async function token(op, code, verifier, clientId = 'portcullis') {
  const client = CLIENTS.find((c) => c.client_id === clientId);
  const form = {
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier,
  };
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (client.token_endpoint_auth_method === 'client_secret_basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(SECRET)}`).toString('base64')}`;
  } else {
    Object.assign(form, { client_id: clientId, client_secret: SECRET });
  }
  const res = await fetch(new URL('/token', op.issuer), { method: 'POST', headers, body: new URLSearchParams(form).toString() });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return {
    status: res.status, text, json, contentType: res.headers.get('content-type'),
  };
}

async function flowToken(op, jar, opts = {}) {
  const a = await authorize(op, jar, opts);
  return token(op, a.callback.searchParams.get('code'), a.verifier, opts.clientId);
}

const control = async (op, p, body) => {
  const res = await fetch(new URL(`/__control/${p}`, op.issuer), body === undefined ? {} : {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return res.json();
};

async function verifies(jwt, jwks, opts = {}) {
  try {
    await jose.jwtVerify(jwt, jose.createLocalJWKSet(jwks), opts);
    return true;
  } catch (err) {
    return err.code ?? err.message;
  }
}

async function getJwks(op) { return (await fetch(new URL('/jwks', op.issuer))).json(); }

// ---------------------------------------------------------------------------------------------

async function main() {
  const op = await startOp({ port: 0, clients: CLIENTS });
  console.log(`op.mjs up at ${op.issuer} after ${op.startupMs} ms`);
  check(op.issuer === `http://127.0.0.1:${op.port}`, 'stdout line has issuer + port');

  try {
    // --- discovery ----------------------------------------------------------------------------
    const disco = await (await fetch(new URL('/.well-known/openid-configuration', op.issuer))).json();
    check(disco.issuer === op.issuer, 'discovery issuer');
    check(disco.authorization_response_iss_parameter_supported === true, 'RFC 9207 iss advertised');
    check(JSON.stringify(disco.response_types_supported) === '["code"]', 'code flow only', disco.response_types_supported);
    check(disco.code_challenge_methods_supported.includes('S256'), 'S256 PKCE');
    check(typeof disco.end_session_endpoint === 'string' && disco.backchannel_logout_supported === true, 'logout features');
    for (const s of ['openid', 'email', 'profile', 'groups', 'offline_access']) check(disco.scopes_supported.includes(s), `scope ${s}`);

    const jwks0 = await getJwks(op);
    const algs = jwks0.keys.map((k) => k.alg).sort();
    check(JSON.stringify(algs) === '["ES256","EdDSA","PS256","RS256"]', 'JWKS has RS256, PS256, ES256, EdDSA', algs);
    check(new Set(jwks0.keys.map((k) => k.kid)).size === 4, 'distinct kids');

    // --- full code flow -----------------------------------------------------------------------
    const jar = new Jar();
    // wrong password first
    {
      const authUrl = new URL('/auth', op.issuer);
      Object.entries({
        client_id: 'portcullis', redirect_uri: REDIRECT, response_type: 'code', scope: 'openid', state: 's', code_challenge: b64u(crypto.randomBytes(32)), code_challenge_method: 'S256',
      }).forEach(([k, v]) => authUrl.searchParams.set(k, v));
      const j = new Jar();
      const r1 = await req(j, authUrl.href);
      const loc = new URL(r1.headers.get('location'), op.issuer);
      const r2 = await req(j, loc.href);
      const html = await r2.text();
      check(r2.status === 200 && /<form method="post" action="\/interaction\/[^"]+\/login">/.test(html) && html.includes('name="login"') && html.includes('name="password"'), 'interaction page has the login form');
      const r3 = await req(j, `${loc.href}/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'login=alice&password=nope' });
      const html3 = await r3.text();
      check(r3.status === 200 && html3.includes('invalid credentials') && html3.includes('<form'), 'wrong password -> 200 + "invalid credentials" + form');
    }

    const a = await authorize(op, jar);
    console.log(`redirect chain: ${a.hops.join(' | ')}`);
    check(a.callback.searchParams.get('state') === a.state, 'callback state');
    check(a.callback.searchParams.get('iss') === op.issuer, 'callback iss (RFC 9207)');
    check(!!a.callback.searchParams.get('code'), 'callback code');

    const t = await token(op, a.callback.searchParams.get('code'), a.verifier);
    check(t.status === 200 && t.json.id_token && t.json.access_token, 'token exchange (client_secret_post + PKCE)', t.text);
    const idHeader = jose.decodeProtectedHeader(t.json.id_token);
    const idClaims = jose.decodeJwt(t.json.id_token);
    console.log('ID token header:', JSON.stringify(idHeader));
    console.log('ID token claims:', JSON.stringify(idClaims, null, 2));
    check((await verifies(t.json.id_token, jwks0, { issuer: op.issuer, audience: 'portcullis' })) === true, 'ID token verifies against JWKS');
    check(idHeader.alg === 'RS256' && idClaims.sub === 'alice-sub-0001' && idClaims.nonce === a.nonce, 'RS256, sub, nonce');
    check(idClaims.email === 'alice@example.com' && idClaims.realm_access?.roles?.[0] === 'platform-admin' && idClaims.groups?.length === 2, 'scope claims in ID token');

    const me = await (await fetch(new URL('/me', op.issuer), { headers: { authorization: `Bearer ${t.json.access_token}` } })).json();
    console.log('userinfo:', JSON.stringify(me, null, 2));
    check(me.sub === 'alice-sub-0001' && me.name === 'Alice Liddell' && me.realm_access.roles.includes('viewer') && me.groups.includes('admins'), 'userinfo claims');

    // --- request log --------------------------------------------------------------------------
    const logged = await control(op, 'log');
    const paths = logged.map((e) => `${e.method} ${e.path}`);
    check(paths.includes('GET /auth') && paths.includes('POST /token') && paths.includes('GET /me') && paths.includes('GET /jwks') && paths.includes('GET /.well-known/openid-configuration'), 'request log', paths);
    check(!paths.some((p) => p.includes('__control')), 'log excludes /__control');
    const authEntry = logged.find((e) => e.path === '/auth');
    check(authEntry.query.code_challenge_method === 'S256', 'log has query params');
    const tokenEntry = logged.find((e) => e.path === '/token');
    check(tokenEntry.form?.code_verifier === a.verifier, 'log has token form body');
    await control(op, 'log/clear', {});
    check((await control(op, 'log')).length === 0, 'log/clear');

    // --- other algs ---------------------------------------------------------------------------
    for (const [clientId, alg] of [['ps', 'PS256'], ['es', 'ES256'], ['ed', 'EdDSA']]) {
      const tt = await flowToken(op, jar, { clientId });
      const h = jose.decodeProtectedHeader(tt.json.id_token);
      check(h.alg === alg && jwks0.keys.find((k) => k.kid === h.kid)?.alg === alg && (await verifies(tt.json.id_token, jwks0, { audience: clientId })) === true, `${clientId}: ID token ${alg} with matching JWKS key`, tt.text);
    }

    // --- id_token sign modes ------------------------------------------------------------------
    const realKid = idHeader.kid;
    const modeToken = async (mode) => {
      await control(op, 'reset', {});
      await control(op, 'mode', { id_token: mode });
      const tt = await flowToken(op, jar);
      return tt.json.id_token;
    };

    {
      const jwt = await modeToken({ claims: { aud: 'someone-else', email: null, exp: 'soon' }, header: { typ: 'JWT' } });
      const c = jose.decodeJwt(jwt);
      const h = jose.decodeProtectedHeader(jwt);
      const sigOk = await verifies(jwt, jwks0, { audience: 'someone-else', issuer: op.issuer });
      check(c.aud === 'someone-else' && !('email' in c) && c.exp === 'soon' && h.typ === 'JWT' && h.kid === realKid, 'valid: claim/header overrides applied', { c, h });
      check(sigOk !== true && sigOk === 'ERR_JWT_CLAIM_VALIDATION_FAILED', 'valid: signature ok, claims invalid (string exp)', sigOk);
      const jwt2 = await modeToken({ sign: 'valid', claims: { aud: 'someone-else' } });
      check((await verifies(jwt2, jwks0, { audience: 'someone-else' })) === true, 'valid: re-signed with real key verifies');
    }
    {
      const jwt = await modeToken({ sign: 'none' });
      const [h, , s] = jwt.split('.');
      check(JSON.parse(Buffer.from(h, 'base64url')) .alg === 'none' && s === '' && jwt.endsWith('.'), 'none: alg none, empty signature');
    }
    {
      const jwt = await modeToken({ sign: 'hs256-public-key' });
      const h = jose.decodeProtectedHeader(jwt);
      const rsJwk = jwks0.keys.find((k) => k.alg === 'RS256');
      const pem = crypto.createPublicKey({ key: rsJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      const [hb, pb, sb] = jwt.split('.');
      const mac = crypto.createHmac('sha256', pem).update(`${hb}.${pb}`).digest('base64url');
      check(h.alg === 'HS256' && h.kid === rsJwk.kid && mac === sb, 'hs256-public-key: HMAC keyed with RS256 public key PEM');
      check((await verifies(jwt, jwks0)) !== true, 'hs256-public-key: rejected by JWKS verification');
    }
    {
      const jwt = await modeToken({ sign: 'wrong-key' });
      const h = jose.decodeProtectedHeader(jwt);
      const r = await verifies(jwt, jwks0);
      check(h.kid === realKid && h.alg === 'RS256' && r === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', 'wrong-key: real kid, bad signature', r);
    }
    {
      const jwt = await modeToken({ sign: 'tamper' });
      const r = await verifies(jwt, jwks0);
      check(jose.decodeProtectedHeader(jwt).kid === realKid && r !== true, 'tamper: signature mismatch', r);
    }
    {
      const jwt = await modeToken({ sign: 'rotated' });
      const h = jose.decodeProtectedHeader(jwt);
      const jwks1 = await getJwks(op);
      check(!jwks0.keys.some((k) => k.kid === h.kid) && jwks1.keys.some((k) => k.kid === h.kid), 'rotated: new kid, published in JWKS now');
      check((await verifies(jwt, jwks1)) === true, 'rotated: verifies against refreshed JWKS');
      check(jwks1.keys.length === 5, 'rotated: old keys still published', jwks1.keys.length);
      await control(op, 'reset', {});
      check((await getJwks(op)).keys.length === 4, 'reset removes rotated key');
    }
    {
      const jwt = await modeToken({ sign: 'unknown-kid' });
      const h = jose.decodeProtectedHeader(jwt);
      const jwks1 = await getJwks(op);
      check(!jwks1.keys.some((k) => k.kid === h.kid), 'unknown-kid: kid never published');
    }
    {
      const jwt = await modeToken({ sign: 'es256-in-jwks' });
      const h = jose.decodeProtectedHeader(jwt);
      check(h.alg === 'ES256' && (await verifies(jwt, jwks0)) === true, 'es256-in-jwks: validly signed ES256 from JWKS');
    }
    {
      const r = await control(op, 'mode', { id_token: { sign: 'bogus' } });
      check(!!r.error, 'unknown sign mode rejected');
    }

    // --- userinfo mode ------------------------------------------------------------------------
    await control(op, 'reset', {});
    await control(op, 'mode', { userinfo: { claims: { sub: 'someone-else', email: null } } });
    {
      const tt = await flowToken(op, jar);
      const u = await (await fetch(new URL('/me', op.issuer), { headers: { authorization: `Bearer ${tt.json.access_token}` } })).json();
      check(u.sub === 'someone-else' && !('email' in u) && u.name === 'Alice Liddell', 'userinfo overrides', u);
    }

    // --- token mode ---------------------------------------------------------------------------
    await control(op, 'reset', {});
    await control(op, 'mode', { token: { status: 400, body: { error: 'invalid_grant' } } });
    {
      const tt = await flowToken(op, jar);
      check(tt.status === 400 && tt.json?.error === 'invalid_grant', 'token: status + body replaced', tt.text);
    }
    await control(op, 'mode', { token: { raw: '<html>not json</html>', status: 200 } });
    {
      const tt = await flowToken(op, jar);
      check(tt.status === 200 && tt.text === '<html>not json</html>', 'token: raw body', tt.text);
    }
    await control(op, 'mode', { token: { delay_ms: 400 } });
    {
      const a2 = await authorize(op, jar);
      const t0 = Date.now();
      const tt = await token(op, a2.callback.searchParams.get('code'), a2.verifier);
      check(Date.now() - t0 >= 400 && tt.status === 200 && tt.json.id_token, 'token: delay_ms then real response');
    }

    // --- discovery mode -----------------------------------------------------------------------
    await control(op, 'reset', {});
    await control(op, 'mode', { discovery: { issuer: 'https://evil.example', userinfo_endpoint: null } });
    {
      const d = await (await fetch(new URL('/.well-known/openid-configuration', op.issuer))).json();
      check(d.issuer === 'https://evil.example' && !('userinfo_endpoint' in d) && d.jwks_uri, 'discovery overrides');
    }

    // --- authorization_response mode ----------------------------------------------------------
    await control(op, 'reset', {});
    await control(op, 'mode', { authorization_response: { iss: 'https://evil.example' } });
    check((await authorize(op, jar)).callback.searchParams.get('iss') === 'https://evil.example', 'authorization_response: iss rewritten');
    await control(op, 'mode', { authorization_response: { iss: null } });
    check(!(await authorize(op, jar)).callback.searchParams.has('iss'), 'authorization_response: iss removed');
    await control(op, 'mode', { authorization_response: { duplicate_state: true } });
    {
      const cb = await authorize(op, jar);
      check(cb.callback.searchParams.getAll('state').length === 2, 'authorization_response: duplicate state');
    }
    // also on the first (interaction) round, with a fresh browser
    await control(op, 'mode', { authorization_response: { iss: 'x' } });
    check((await authorize(op, new Jar())).callback.searchParams.get('iss') === 'x', 'authorization_response: applies after interaction too');
    await control(op, 'reset', {});

    // --- offline_access + prompt=consent (second interaction round auto-consented) -------------
    {
      const a3 = await authorize(op, jar, { scope: 'openid offline_access', extra: { prompt: 'consent' } });
      console.log(`prompt=consent chain: ${a3.hops.join(' | ')}`);
      const tt = await token(op, a3.callback.searchParams.get('code'), a3.verifier);
      check(tt.status === 200 && typeof tt.json.refresh_token === 'string', 'offline_access + prompt=consent -> refresh_token', tt.text);
    }

    // --- mallory ------------------------------------------------------------------------------
    {
      const tt = await flowToken(op, new Jar(), { login: 'mallory', password: 'mallory-pass' });
      const c = jose.decodeJwt(tt.json.id_token);
      check(c.sub === 'mallory-sub-0003' && c.name.includes('\r\nX-Forwarded-User') && c.groups[0].includes('\r\n'), 'mallory hostile claims', c);
    }
    // --- bob via prompt=login on existing session -------------------------------------------
    {
      const tt = await flowToken(op, jar, { login: 'bob', password: 'bob-pass', extra: { prompt: 'login' } });
      check(jose.decodeJwt(tt.json.id_token).sub === 'bob-sub-0002', 'prompt=login switches user (bob)');
    }

    // --- RP-initiated logout (auto-confirmed) + back-channel logout ------------------------------
    {
      const bcl = [];
      const bclServer = http.createServer((rq, rs) => {
        let b = '';
        rq.on('data', (c) => { b += c; });
        rq.on('end', () => { bcl.push(Object.fromEntries(new URLSearchParams(b))); rs.end(); });
      });
      await new Promise((r) => { bclServer.listen(0, '127.0.0.1', r); });
      const bclOp = await startOp({
        clients: [{
          client_id: 'portcullis', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post',
          post_logout_redirect_uris: [LOGGED_OUT], backchannel_logout_uri: `http://127.0.0.1:${bclServer.address().port}/bcl`,
        }],
      });
      try {
        const j = new Jar();
        const a4 = await authorize(bclOp, j);
        const tt = await token(bclOp, a4.callback.searchParams.get('code'), a4.verifier);
        const endUrl = new URL('/session/end', bclOp.issuer);
        endUrl.searchParams.set('id_token_hint', tt.json.id_token);
        endUrl.searchParams.set('post_logout_redirect_uri', LOGGED_OUT);
        endUrl.searchParams.set('state', 'bye');
        const r = await req(j, endUrl.href);
        check(r.status === 303 && r.headers.get('location') === `${LOGGED_OUT}?state=bye`, 'rp-initiated logout: one 303 to post_logout_redirect_uri', `${r.status} ${r.headers.get('location')}`);
        const claims = bcl[0]?.logout_token && jose.decodeJwt(bcl[0].logout_token);
        check(claims?.sub === 'alice-sub-0001' && claims.events?.['http://schemas.openid.net/event/backchannel-logout'], 'back-channel logout token delivered', bcl);
        const again = await authorize(bclOp, j);
        check(again.hops.some((h) => h.startsWith('200 /interaction/')), 'after logout the OP asks for credentials again', again.hops);
      } finally {
        bclOp.child.kill('SIGTERM');
        bclServer.close();
      }
    }

    // --- lifecycle: exits when stdin closes ---------------------------------------------------
    const exited = new Promise((r) => { op.child.on('exit', (code) => r(code)); });
    op.child.stdin.end();
    const code = await Promise.race([exited, new Promise((r) => { setTimeout(() => r('timeout'), 3000); })]);
    check(code === 0, 'exits when stdin closes', code);
  } catch (err) {
    failed += 1;
    console.log(`FAIL - exception: ${err.stack}`);
    console.log(op.stderr());
  } finally {
    op.child.kill('SIGTERM');
  }

  // --- TLS + SIGTERM --------------------------------------------------------------------------
  let tmp;
  try {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'op-smoke-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', path.join(tmp, 'key.pem'), '-out', path.join(tmp, 'leaf.pem')], { stdio: 'ignore' });
    const top = await startOp({ tls: { cert: path.join(tmp, 'leaf.pem'), key: path.join(tmp, 'key.pem') } });
    check(top.issuer === `https://127.0.0.1:${top.port}`, 'tls: https issuer');
    const ca = fs.readFileSync(path.join(tmp, 'leaf.pem'));
    const d = await new Promise((resolve, reject) => {
      https.get(`${top.issuer}/.well-known/openid-configuration`, { ca }, (res) => {
        let s = '';
        res.on('data', (c) => { s += c; });
        res.on('end', () => resolve(JSON.parse(s)));
      }).on('error', reject);
    });
    check(d.issuer === top.issuer && d.token_endpoint === `${top.issuer}/token`, 'tls: discovery over https');
    const exited = new Promise((r) => { top.child.on('exit', (c, sig) => r(c ?? sig)); });
    top.child.kill('SIGTERM');
    check((await exited) === 0, 'exits on SIGTERM');
  } catch (err) {
    if (err.code === 'ENOENT') console.log('skip - tls (no openssl)');
    else { failed += 1; console.log(`FAIL - tls: ${err.stack}`); }
  } finally {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }

  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

await main();
