// The soak's browser traffic (bench/soak.sh): for SECONDS, several lanes of scripted browsers
// (bench/scale/client.mjs: real sign-ins through the test OP, DPoP proofs as the browser client
// makes them) each do, over and over:
//
//   browse   (alice, 6 lanes) sign in; a page every second and the session API (with a DPoP
//            proof) every fifth, for 32–45 s, so the session JWT (60 s TTL) is re-issued at
//            least once (a refresh: a new session cookie on a 200); then sign out
//            (POST /api/logout) and check that the old cookies are refused: the page sends
//            to sign in (302 to /api/login), the session API answers 401
//   quick    (alice, 1 lane) sign in, one page, sign out, the same refusal checks
//   idp      (bob, 1 lane) sign in, one page, then end the session at the IdP
//            (GET /session/end at the OP, as another application would): the OP sends
//            Portcullis a back-channel logout token; the old cookies must be refused within
//            3 s (then Bob is "signed out by the identity provider" until his next sign-in);
//            at most one round every 1.2 s: Portcullis takes 60 back-channel logouts a minute
//            from one address and answers 429 beyond (the OP does not retry)
//
// Each lane is sequential, so every expectation is exact. Alice is never signed out by her
// IdP, so the session bench/soak.sh loads with wrk (also Alice's) stays valid throughout.
//
//   node driver.mjs BASE ISSUER SECONDS OUT.json
//
// Writes the counts to OUT.json: operations, expected refusals (by kind, each with the status
// it must have had), and unexpected errors (must be 0) with the first messages.
import { writeFileSync } from 'node:fs';
import { Browser, expect, Unexpected } from '../scale/client.mjs';

const [base, issuer, seconds, out] = process.argv.slice(2);
const until = Date.now() + Number(seconds) * 1000;
const sleep = (ms) => new Promise((r) => { setTimeout(r, ms); });

const counts = {
  sign_ins: 0,
  pages: 0,
  session_api: 0,
  refreshes: 0,
  logouts: 0,
  backchannel_logouts: 0,
  refused_after_logout_page_302: 0,
  refused_after_logout_api_401: 0,
  refused_after_backchannel_page_302: 0,
  refused_after_backchannel_api_401: 0,
  unexpected_errors: 0,
};
const errors = [];
let bclLatencyMax = 0;

function sessionSet(b, r) {
  return r.setCookies.some((n) => n === '__Host-session' || n === 'portcullis_session') && b.sessionCookie(base);
}

async function page(b) {
  const r = await b.request(`${base}/bench`);
  expect(r.status === 200, `page: ${r.status} ${r.location ?? ''}`);
  counts.pages += 1;
  if (sessionSet(b, r)) counts.refreshes += 1;
  return r;
}

async function sessionApi(b) {
  const r = await b.request(`${base}/api/session`, { headers: { accept: 'application/json' }, proof: true });
  expect(r.status === 200, `GET /api/session: ${r.status} ${r.body.slice(0, 200)}`);
  counts.session_api += 1;
  if (sessionSet(b, r)) counts.refreshes += 1;
}

// The old cookies after a sign-out (as a copy of them would be replayed; the refusals clear
// them in the jar, so each check sends them again): a page sends to sign in, the API answers
// 401.
async function refused(b, kind, old) {
  const host = new URL(base).host;
  b.jar.set(host, new Map(old));
  const p = await b.request(`${base}/bench`);
  const pageOk = p.status === 302 && p.location?.startsWith(`${base}/api/login`);
  if (pageOk) counts[`refused_after_${kind}_page_302`] += 1;
  b.jar.set(host, new Map(old));
  const a = await b.request(`${base}/api/session`, { headers: { accept: 'application/json' }, proof: true });
  if (a.status === 401) counts[`refused_after_${kind}_api_401`] += 1;
  return { pageOk, apiOk: a.status === 401, page: p.status, api: a.status };
}

async function signedOutStays(b, kind, old) {
  const r = await refused(b, kind, old);
  expect(r.pageOk && r.apiOk, `after ${kind}: page ${r.page}, API ${r.api} (want 302 to sign in, 401)`);
}

async function browse() {
  const b = new Browser();
  await b.signIn(base, 'alice', 'alice-pass', '/bench');
  counts.sign_ins += 1;
  const signedIn = Date.now();
  const lifetime = 32000 + Math.random() * 13000;
  const before = counts.refreshes;
  let refreshed = 0;
  for (let i = 1; Date.now() - signedIn < lifetime && Date.now() < until; i += 1) {
    const n0 = counts.refreshes;
    if (i % 5 === 0) await sessionApi(b);
    else await page(b);
    refreshed += counts.refreshes - n0;
    await sleep(1000);
  }
  // A session that lived past half its 60 s TTL must have been re-issued.
  if (Date.now() - signedIn > 33000) {
    expect(refreshed >= 1, `no refresh in ${Math.round((Date.now() - signedIn) / 1000)} s (${counts.refreshes - before})`);
  }
  const old = new Map(b.cookies(base));
  await b.logout(base, { proof: true });
  counts.logouts += 1;
  await signedOutStays(b, 'logout', old);
}

async function quick() {
  const b = new Browser();
  await b.signIn(base, 'alice', 'alice-pass', '/bench');
  counts.sign_ins += 1;
  await page(b);
  const old = new Map(b.cookies(base));
  await b.logout(base, { proof: true });
  counts.logouts += 1;
  await signedOutStays(b, 'logout', old);
}

// Portcullis accepts at most 60 back-channel logout requests a minute from one address (the
// OP's); this lane stays under that: one round at most every 1.2 s.
async function idpLogout() {
  const started = Date.now();
  const b = new Browser();
  await b.signIn(base, 'bob', 'bob-pass', '/bench');
  counts.sign_ins += 1;
  await page(b);
  // Bob ends his session at the IdP (no id_token_hint: as from another application). The
  // OP confirms on its own (harness) and POSTs the logout token to Portcullis.
  let r = await b.request(`${issuer}/session/end?client_id=portcullis`);
  for (let i = 0; i < 10 && r.status >= 300 && r.status < 400 && r.location?.startsWith(issuer); i += 1) {
    r = await b.request(r.location, r.status === 307 ? { method: 'POST' } : {});
  }
  expect(r.status < 400, `IdP end-session: ${r.status} ${r.body.slice(0, 200)}`);
  const old = new Map(b.cookies(base));
  const t0 = Date.now();
  for (;;) {
    b.jar.set(new URL(base).host, new Map(old));
    const p = await b.request(`${base}/bench`);
    if (p.status === 302 && p.location?.startsWith(`${base}/api/login`)) break;
    expect(p.status === 200, `page after the IdP logout: ${p.status}`);
    expect(Date.now() - t0 < 3000, 'the back-channel logout did not end the session within 3 s');
    await sleep(50);
  }
  bclLatencyMax = Math.max(bclLatencyMax, Date.now() - t0);
  counts.backchannel_logouts += 1;
  await signedOutStays(b, 'backchannel', old);
  await sleep(Math.max(0, 1200 - (Date.now() - started)));
}

async function lane(work) {
  while (Date.now() < until) {
    try {
      await work();
    } catch (e) {
      counts.unexpected_errors += 1;
      if (errors.length < 10) errors.push(`${work.name}: ${e instanceof Unexpected ? '' : 'exception: '}${e.message}`);
      await sleep(500);
    }
  }
}

const lanes = [...Array.from({ length: 6 }, () => lane(browse)), lane(quick), lane(idpLogout)];
await Promise.all(lanes);
writeFileSync(out, JSON.stringify({ counts, errors, backchannel_refusal_max_ms: bclLatencyMax }, null, 1));
