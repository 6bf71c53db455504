// Portcullis browser client: seed 000's three tiers for your frontend, no dependencies.
//
//   import { portcullisFetch } from '/.portcullis/client.js';
//   const r = await portcullisFetch('/api/items', { method: 'POST', body: JSON.stringify(item) });
//
// Every request made through portcullisFetch carries
//   - the session cookies (HttpOnly: this script never sees them),
//   - X-CSRF-Token, copied from the readable csrf_token cookie, on unsafe methods,
//   - a fresh DPoP proof (RFC 9449) signed by this browser's key: an ECDSA P-256 key made
//     with WebCrypto as *non-extractable* and kept in IndexedDB, so no script (not even
//     this one) can read the private key; the session is bound to it at sign-in.
// It corrects the proof's clock from the server's Date header, retries once when the server
// asks for a DPoP nonce, and needs nothing for refresh: Portcullis re-issues the session
// cookie on a request while the session lives.

const DB_NAME = 'portcullis';
const DB_STORE = 'keys';
const KEY_NAME = 'dpop';
const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

let base = new URL('/', import.meta.url).origin; // Portcullis's public origin
let keyPair = null;
let publicJwk = null;
// Server time minus local time (from the Date header) and the last DPoP-Nonce the server sent,
// kept for the tab's other pages so each page load does not start with a retry.
const remembered = (key) => {
  try { return sessionStorage.getItem(`portcullis.${key}`); } catch { return null; }
};
const remember = (key, value) => {
  try { sessionStorage.setItem(`portcullis.${key}`, String(value)); } catch { /* storage off */ }
};
let clockOffsetMs = Number(remembered('clock_offset_ms')) || 0;
let nonce = remembered('dpop_nonce');

/** Where Portcullis is, when this module is bundled instead of loaded from Portcullis. */
export function configure({ origin } = {}) {
  if (origin) base = new URL(origin).origin;
}

function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function b64urlJson(value) {
  return b64url(new TextEncoder().encode(JSON.stringify(value)));
}

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(DB_STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function idb(db, mode, action) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(DB_STORE, mode);
    const req = action(tx.objectStore(DB_STORE));
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** This browser's key pair: loaded from IndexedDB, or made (non-extractable) and stored. */
export async function browserKey() {
  if (keyPair) return keyPair;
  const db = await openDb();
  let pair = await idb(db, 'readonly', (s) => s.get(KEY_NAME));
  if (!pair) {
    pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ]);
    await idb(db, 'readwrite', (s) => s.put(pair, KEY_NAME));
  }
  db.close();
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  publicJwk = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  keyPair = pair;
  return pair;
}

/** A DPoP proof for one request (RFC 9449 §4.2). `url` is absolute; query and fragment are dropped. */
export async function dpopProof(method, url) {
  const { privateKey } = await browserKey();
  const u = new URL(url, location.href);
  const header = { typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk };
  const claims = {
    jti: b64url(crypto.getRandomValues(new Uint8Array(24))),
    htm: method,
    htu: u.origin + u.pathname,
    iat: Math.floor((Date.now() + clockOffsetMs) / 1000),
  };
  if (nonce) claims.nonce = nonce;
  const input = `${b64urlJson(header)}.${b64urlJson(claims)}`;
  // WebCrypto's ECDSA signature is already the raw R‖S form JWS wants.
  const sig = await crypto.subtle.sign(
    { name: 'ECDSA', hash: 'SHA-256' },
    privateKey,
    new TextEncoder().encode(input),
  );
  return `${input}.${b64url(sig)}`;
}

/** The readable CSRF cookie (R-CSRF): echoed as X-CSRF-Token on unsafe methods. */
export function csrfToken() {
  const c = document.cookie.split('; ').find((p) => p.startsWith('csrf_token='));
  return c ? decodeURIComponent(c.slice('csrf_token='.length)) : null;
}

function learn(resp) {
  const date = resp.headers.get('date');
  if (date) {
    const server = Date.parse(date);
    // Date has one-second resolution: only correct offsets that matter for the iat window.
    if (!Number.isNaN(server) && Math.abs(server - Date.now() - clockOffsetMs) > 2000) {
      clockOffsetMs = server - Date.now();
      remember('clock_offset_ms', clockOffsetMs);
    }
  }
  const n = resp.headers.get('dpop-nonce');
  if (n && n !== nonce) {
    nonce = n;
    remember('dpop_nonce', n);
  }
}

function dpopError(resp) {
  const h = resp.headers.get('www-authenticate') || '';
  const m = /error="([^"]+)"/.exec(h);
  return resp.status === 401 && h.startsWith('DPoP') && m ? m[1] : null;
}

/**
 * fetch() through Portcullis with the CSRF header and a DPoP proof. Requests to other
 * origins are passed to fetch unchanged (the proof and token are for Portcullis only).
 */
export async function portcullisFetch(input, init = {}) {
  const url = new URL(input instanceof Request ? input.url : input, location.href);
  if (url.origin !== base) return fetch(input, init);
  const method = (init.method || (input instanceof Request ? input.method : 'GET')).toUpperCase();
  const send = async () => {
    const headers = new Headers(init.headers || (input instanceof Request ? input.headers : {}));
    headers.set('DPoP', await dpopProof(method, url.href));
    const csrf = csrfToken();
    if (csrf && (UNSAFE.has(method) || !['GET', 'HEAD', 'OPTIONS'].includes(method))) {
      headers.set('X-CSRF-Token', csrf);
    }
    const resp = await fetch(input, { ...init, method, headers, credentials: 'include' });
    learn(resp);
    return resp;
  };
  const before = clockOffsetMs;
  let resp = await send();
  const err = dpopError(resp);
  // One retry: the server asked for a nonce, or our clock turned out to be off.
  if (err === 'use_dpop_nonce' || (err === 'invalid_dpop_proof' && clockOffsetMs !== before)) {
    resp = await send();
  }
  return resp;
}

/** Start sign-in: bind the new session to this browser's key, then go to the IdP. */
export async function signIn(returnTo) {
  const q = returnTo ? `?rd=${encodeURIComponent(returnTo)}` : location.search;
  const resp = await portcullisFetch(`${base}/api/login${q}`, {
    method: 'POST',
    headers: { Accept: 'application/json' },
  });
  if (!resp.ok) {
    const body = await resp.json().catch(() => ({}));
    throw new Error(body.error_description || `sign-in could not start (HTTP ${resp.status})`);
  }
  const { authorization_url: to } = await resp.json();
  location.assign(to);
}

/**
 * End the session on every replica (the cookies are cleared by the answer). Resolves to
 * `{status, end_session_url}`: when `end_session_url` is set, go there to end the IdP session
 * too (it returns the browser to Portcullis's signed-out page).
 */
export async function signOut() {
  const resp = await portcullisFetch(`${base}/api/logout`, {
    method: 'POST',
    headers: { Accept: 'application/json' },
  });
  if (!resp.ok) throw new Error(`sign-out failed (HTTP ${resp.status})`);
  return resp.json();
}

/** Who is signed in (`GET /api/session`), or null. */
export async function session() {
  const resp = await portcullisFetch(`${base}/api/session`, { headers: { Accept: 'application/json' } });
  return resp.ok ? resp.json() : null;
}
