// A scripted browser for the scale and soak benchmarks: a cookie jar per host, manual
// redirects, and DPoP proofs made the way /.portcullis/client.js makes them (WebCrypto P-256),
// so a sign-in works whether tier 3 (DPoP) is on or off. It drives the real sign-in: Portcullis
// `/api/login` → the test OP's login form (tests/harness/op.mjs) → the callback.
//
// Every step checks its status; a surprise throws an Error whose message says what was
// expected and what came back (the callers count those as unexpected errors).
import { webcrypto as crypto, randomBytes } from 'node:crypto';

const b64 = (buf) => Buffer.from(buf).toString('base64url');

export class Unexpected extends Error {}

export function expect(cond, what) {
  if (!cond) throw new Unexpected(what);
}

export class Browser {
  constructor() {
    this.jar = new Map(); // host → Map(name → value)
    this.key = null;
    this.pub = null;
  }

  async dpopKey() {
    if (!this.key) {
      const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
      this.key = pair.privateKey;
      this.pub = { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y };
    }
  }

  async proof(method, url) {
    await this.dpopKey();
    const u = new URL(url);
    const header = b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: this.pub }));
    const claims = b64(JSON.stringify({
      jti: b64(randomBytes(18)), htm: method, htu: u.origin + u.pathname, iat: Math.floor(Date.now() / 1000),
    }));
    const input = `${header}.${claims}`;
    const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, this.key, Buffer.from(input));
    return `${input}.${b64(sig)}`;
  }

  cookies(url) {
    return this.jar.get(new URL(url).host) ?? new Map();
  }

  cookie(url, name) {
    return this.cookies(url).get(name);
  }

  cookieHeader(url) {
    return [...this.cookies(url)].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  // The gateway's session cookie (its name depends on http/https: `__Host-session` or
  // `portcullis_session`).
  sessionCookie(url) {
    return this.cookie(url, '__Host-session') ?? this.cookie(url, 'portcullis_session');
  }

  store(url, res) {
    const host = new URL(url).host;
    if (!this.jar.has(host)) this.jar.set(host, new Map());
    const m = this.jar.get(host);
    const set = [];
    for (const sc of res.headers.getSetCookie()) {
      const first = sc.split(';')[0];
      const i = first.indexOf('=');
      if (i < 0) continue;
      const k = first.slice(0, i).trim();
      const v = first.slice(i + 1).trim();
      set.push(k);
      if (v === '' || /max-age=0/i.test(sc)) m.delete(k);
      else m.set(k, v);
    }
    return set;
  }

  // One request, no redirect following. `opts`: method, headers, body, proof (add a DPoP
  // proof). Returns {status, headers, body, location (absolute), setCookies (names)}.
  async request(url, opts = {}) {
    const method = opts.method ?? 'GET';
    const headers = { ...(opts.headers ?? {}) };
    const c = this.cookieHeader(url);
    if (c) headers.cookie = c;
    if (opts.proof) headers.dpop = await this.proof(method, url);
    const res = await fetch(url, { method, headers, body: opts.body, redirect: 'manual' });
    const setCookies = this.store(url, res);
    const body = await res.text();
    const loc = res.headers.get('location');
    return {
      status: res.status,
      headers: res.headers,
      body,
      location: loc ? new URL(loc, url).toString() : null,
      setCookies,
    };
  }

  // Full sign-in of `user` at the gateway `base`, returning to `rd`. Uses a fresh IdP
  // session each time unless keepIdp is set (the OP would otherwise sign straight back in).
  async signIn(base, user, password, rd = '/') {
    const start = `${base}/api/login?rd=${encodeURIComponent(rd)}`;
    let r = await this.request(start);
    let authorize;
    if (r.status === 302) {
      authorize = r.location; // DPoP off: straight to the IdP
    } else {
      // DPoP on: the sign-in page's script posts a proof and gets the IdP's URL.
      expect(r.status === 200 && r.body.includes('sign-in.js'), `GET /api/login: ${r.status}`);
      r = await this.request(start, { method: 'POST', headers: { accept: 'application/json' }, proof: true });
      expect(r.status === 200, `POST /api/login: ${r.status} ${r.body.slice(0, 200)}`);
      authorize = JSON.parse(r.body).authorization_url;
    }
    expect(authorize && !authorize.startsWith(base), `no IdP authorization URL: ${authorize}`);
    // At the IdP: /auth → 303 /interaction/:uid → the form.
    r = await this.request(authorize);
    for (let i = 0; i < 5 && r.status >= 300 && r.status < 400 && !r.location.startsWith(base); i += 1) {
      r = await this.request(r.location);
    }
    let callback;
    if (r.status >= 300 && r.status < 400 && r.location.startsWith(base)) {
      callback = r.location; // still signed in at the IdP
    } else {
      expect(r.status === 200, `IdP login form: ${r.status}`);
      const action = /action="([^"]+)"/.exec(r.body)?.[1];
      expect(action, 'IdP login form without action');
      const formUrl = new URL(action, authorize).toString();
      r = await this.request(formUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login: user, password }).toString(),
      });
      for (let i = 0; i < 10; i += 1) {
        expect(r.status >= 300 && r.status < 400 && r.location, `IdP login: ${r.status} ${r.body.slice(0, 200)}`);
        if (r.location.startsWith(base)) break;
        r = await this.request(r.location);
      }
      callback = r.location;
    }
    expect(callback.startsWith(`${base}/`), `IdP did not send back to the gateway: ${callback}`);
    r = await this.request(callback);
    expect(r.status === 302, `callback: ${r.status} ${r.body.slice(0, 300)}`);
    expect(this.sessionCookie(base), 'callback set no session cookie');
    return r;
  }

  // POST /api/logout as the browser client does (JSON, CSRF header, same origin, DPoP proof
  // when the session is bound). Returns the parsed JSON answer.
  async logout(base, { proof = false } = {}) {
    const csrf = this.cookie(base, 'csrf_token') ?? '';
    const r = await this.request(`${base}/api/logout`, {
      method: 'POST',
      headers: { accept: 'application/json', 'x-csrf-token': csrf, origin: base },
      proof,
    });
    expect(r.status === 200, `POST /api/logout: ${r.status} ${r.body.slice(0, 200)}`);
    const j = JSON.parse(r.body);
    expect(j.status === 'signed_out', `logout answered ${r.body.slice(0, 200)}`);
    return j;
  }
}
