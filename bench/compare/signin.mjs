// Sign-ins for bench/compare.sh, through the harness OpenID Provider's login form, the way a
// browser does it (cookies kept per origin, redirects followed by hand).
//
//   node signin.mjs portcullis BASE USER PASSWORD KEYFILE OUT.json
//       sign in to Portcullis at BASE with a DPoP key (written to KEYFILE, as bench/dpop.mjs
//       reads it): POST /api/login with a proof, the IdP's form, the callback. Then check
//       BASE/bench answers 200 and create an API token on the account API (CSRF header +
//       proof, as the account page does). Writes {"cookie", "token"}.
//   node signin.mjs apache BASE USER PASSWORD OUT.json
//       sign in to mod_auth_openidc at BASE (GET BASE/bench redirects to the IdP); writes
//       {"cookie"}.
//   node signin.mjs many portcullis|apache BASE USER PASSWORD N CONCURRENCY OUT.json
//       N complete sign-ins, CONCURRENCY at a time, each with a fresh browser (cookie jar, and
//       for Portcullis a fresh DPoP key); writes {"n", "seconds", "callback_p50_ms",
//       "callback_p99_ms", "callback_max_ms"}: the callback is the request timed on its own.
//
// Every step's status is checked; any surprise exits non-zero with what was received.
import { writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { webcrypto as crypto, randomBytes } from 'node:crypto';

const MARKER = process.env.BENCH_MARKER;
const agent = new http.Agent({ keepAlive: true });

function fail(msg) {
  console.error(`signin.mjs: ${msg}`);
  process.exit(1);
}

// ---- a browser: cookies per origin, manual redirects --------------------------------------
class Browser {
  constructor() { this.jars = new Map(); }

  jar(url) {
    const o = new URL(url).origin;
    if (!this.jars.has(o)) this.jars.set(o, new Map());
    return this.jars.get(o);
  }

  cookieHeader(url) {
    return [...this.jar(url)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  // One request with node:http (fetch would send Sec-Fetch-Mode: cors, and mod_auth_openidc
  // answers 401 instead of redirecting to the IdP to a request that is not a navigation).
  async fetch(url, { method = 'GET', headers = {}, body } = {}) {
    const h = {
      'user-agent': 'portcullis-bench',
      accept: 'text/html,application/xhtml+xml',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document',
      ...headers,
    };
    const c = this.cookieHeader(url);
    if (c) h.cookie = c;
    if (body !== undefined) h['content-length'] = Buffer.byteLength(body);
    const res = await new Promise((resolve, reject) => {
      const req = http.request(url, { method, headers: h, agent }, (r) => {
        const chunks = [];
        r.on('data', (d) => chunks.push(d));
        r.on('end', () => resolve({ status: r.statusCode, headers: r.headers, body: Buffer.concat(chunks).toString() }));
        r.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
    const jar = this.jar(url);
    for (const line of res.headers['set-cookie'] ?? []) {
      const [pair, ...attrs] = line.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a))
        || attrs.some((a) => /^\s*expires\s*=/i.test(a) && Date.parse(a.split('=')[1]) < Date.now())
        || value === '';
      if (gone) jar.delete(name); else jar.set(name, value);
    }
    return { ...res, url };
  }
}

function location(r) {
  const l = r.headers.location;
  if (!l) fail(`expected a redirect from ${r.url}, got ${r.status}: ${r.body.slice(0, 300)}`);
  return new URL(l, r.url).toString();
}

// From the authorization URL to the redirect back to `gateway` (not requested).
async function throughIdp(b, authorizeUrl, gateway, user, password) {
  let r = await b.fetch(authorizeUrl);
  for (let i = 0; i < 10 && r.status >= 300 && r.status < 400; i += 1) {
    const next = location(r);
    if (next.startsWith(gateway)) return next;
    r = await b.fetch(next);
  }
  if (r.status !== 200) fail(`expected the IdP's login form, got ${r.status}: ${r.body.slice(0, 300)}`);
  const action = /action="([^"]+)"/.exec(r.body);
  if (!action) fail(`no login form at ${r.url}: ${r.body.slice(0, 300)}`);
  const post = new URL(action[1], r.url).toString();
  r = await b.fetch(post, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login: user, password }).toString(),
  });
  for (let i = 0; i < 10; i += 1) {
    const next = location(r);
    if (next.startsWith(gateway)) return next;
    r = await b.fetch(next);
  }
  return fail('too many redirects at the IdP');
}

// ---- DPoP (as bench/dpop.mjs and the browser client) ---------------------------------------
const b64 = (buf) => Buffer.from(buf).toString('base64url');

async function newKey() {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
  return { key: pair.privateKey, jwk, pub: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
}

async function proof({ key, pub }, method, url) {
  const u = new URL(url);
  const header = b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: pub }));
  const claims = b64(JSON.stringify({
    jti: b64(randomBytes(18)), htm: method, htu: u.origin + u.pathname, iat: Math.floor(Date.now() / 1000),
  }));
  const input = `${header}.${claims}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(input));
  return `${input}.${b64(sig)}`;
}

// ---- one sign-in ------------------------------------------------------------------------------
// Returns { b, callbackMs, key? } with the browser holding the gateway's session cookies.
async function signIn(kind, base, user, password) {
  const b = new Browser();
  let authorize;
  let key;
  if (kind === 'portcullis') {
    key = await newKey();
    const login = `${base}/api/login?rd=%2Fbench`;
    const r = await b.fetch(login, {
      method: 'POST',
      headers: { accept: 'application/json', dpop: await proof(key, 'POST', login) },
    });
    if (r.status !== 200) fail(`POST /api/login answered ${r.status}: ${r.body.slice(0, 300)}`);
    authorize = JSON.parse(r.body).authorization_url;
  } else {
    const r = await b.fetch(`${base}/bench`);
    if (r.status !== 302) fail(`mod_auth_openidc: GET /bench without a session answered ${r.status}: ${r.body.slice(0, 300)}`);
    authorize = location(r);
  }
  const callback = await throughIdp(b, authorize, base, user, password);
  const t0 = process.hrtime.bigint();
  const r = await b.fetch(callback);
  const callbackMs = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 302) fail(`${kind} callback answered ${r.status}: ${r.body.slice(0, 300)}`);
  if (!(r.headers['set-cookie'] ?? []).length) fail(`${kind} callback set no cookie`);
  return { b, callbackMs, key };
}

async function checkPage(b, base) {
  const r = await b.fetch(`${base}/bench`);
  if (r.status !== 200 || (MARKER && !r.body.includes(MARKER))) {
    fail(`signed in, but GET ${base}/bench answered ${r.status}: ${r.body.slice(0, 300)}`);
  }
}

const [mode, ...args] = process.argv.slice(2);
if (mode === 'portcullis') {
  const [base, user, password, keyFile, out] = args;
  const { b, key } = await signIn('portcullis', base, user, password);
  await checkPage(b, base);
  writeFileSync(keyFile, JSON.stringify(key.jwk));
  const url = `${base}/api/tokens`;
  const csrf = b.jar(base).get('csrf_token');
  if (!csrf) fail('no csrf_token cookie after signing in');
  const r = await b.fetch(url, {
    method: 'POST',
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      'x-csrf-token': csrf,
      dpop: await proof(key, 'POST', url),
    },
    body: JSON.stringify({ name: 'bench', expires_in_days: 1 }),
  });
  if (r.status !== 201) fail(`POST /api/tokens answered ${r.status}: ${r.body.slice(0, 300)}`);
  const { token } = JSON.parse(r.body);
  writeFileSync(out, JSON.stringify({ cookie: b.cookieHeader(base), token }));
} else if (mode === 'apache') {
  const [base, user, password, out] = args;
  const { b } = await signIn('apache', base, user, password);
  await checkPage(b, base);
  writeFileSync(out, JSON.stringify({ cookie: b.cookieHeader(base) }));
} else if (mode === 'many') {
  const [kind, base, user, password, n, concurrency, out] = args;
  const total = Number(n);
  const times = [];
  let started = 0;
  const t0 = process.hrtime.bigint();
  async function worker() {
    while (started < total) {
      started += 1;
      const { b, callbackMs } = await signIn(kind, base, user, password);
      times.push(callbackMs);
      // Only the first of each worker is checked end to end (the load rows check the rest).
      if (times.length <= Number(concurrency)) await checkPage(b, base);
    }
  }
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  times.sort((a, c) => a - c);
  const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))];
  writeFileSync(out, JSON.stringify({
    n: times.length, seconds, callback_p50_ms: pct(50), callback_p99_ms: pct(99), callback_max_ms: times[times.length - 1],
  }));
} else {
  fail('usage: signin.mjs portcullis|apache|many ...');
}
agent.destroy();
