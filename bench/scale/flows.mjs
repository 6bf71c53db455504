// The browser-side steps of bench/scale.sh, each checked (exit 1 on anything unexpected):
//
//   node flows.mjs setup BASE USER PASS OUTDIR
//       sign USER in for real, check a proxied page (200) and the admin users API (200),
//       mint an API token; writes OUTDIR/cookie (a Cookie header value) and OUTDIR/token
//   node flows.mjs signins BASE USER PASS SECONDS CONC OUTFILE
//       full sign-ins (gateway /api/login → IdP form → callback) by CONC concurrent
//       browsers for SECONDS; one line per session to OUTFILE (its Cookie header value);
//       prints "signins N seconds S failures F"
//   node flows.mjs logouts BASE INFILE CONC
//       POST /api/logout for every session of INFILE, CONC at a time, then checks that a
//       sample of the ended sessions is refused; prints "logouts N seconds S failures F"
import { readFileSync, writeFileSync, appendFileSync } from 'node:fs';
import { Browser, expect } from './client.mjs';

const [cmd, base, ...rest] = process.argv.slice(2);

function browserWith(cookieHeader) {
  const b = new Browser();
  const m = new Map();
  for (const part of cookieHeader.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) m.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  b.jar.set(new URL(base).host, m);
  return b;
}

async function setup(user, pass, outdir) {
  const b = new Browser();
  await b.signIn(base, user, pass, '/bench');
  const page = await b.request(`${base}/bench`);
  expect(page.status === 200, `signed-in page: ${page.status}`);
  const admin = await b.request(`${base}/api/admin/users?limit=25`, { headers: { accept: 'application/json' } });
  expect(admin.status === 200, `admin users API: ${admin.status} ${admin.body.slice(0, 200)}`);
  expect(JSON.parse(admin.body).users.length >= 1, 'admin users API: no users');
  const t = await b.request(`${base}/api/tokens`, {
    method: 'POST',
    headers: {
      accept: 'application/json',
      'content-type': 'application/json',
      'x-csrf-token': b.cookie(base, 'csrf_token') ?? '',
      origin: base,
    },
    body: JSON.stringify({ name: 'scale-bench', expires_in_days: 1 }),
  });
  expect(t.status === 201, `POST /api/tokens: ${t.status} ${t.body.slice(0, 200)}`);
  const token = JSON.parse(t.body).token;
  const viaToken = await fetch(`${base}/bench`, { headers: { authorization: `Bearer ${token}` } });
  expect(viaToken.status === 200, `page with the API token: ${viaToken.status}`);
  writeFileSync(`${outdir}/cookie`, b.cookieHeader(base));
  writeFileSync(`${outdir}/token`, token);
}

async function pool(conc, work) {
  let failures = 0;
  const errors = [];
  await Promise.all(Array.from({ length: conc }, async (_, w) => {
    for (;;) {
      let more;
      try {
        more = await work(w);
      } catch (e) {
        failures += 1;
        if (errors.length < 5) errors.push(e.message);
        more = true;
      }
      if (!more) return;
    }
  }));
  for (const e of errors) console.error(`unexpected: ${e}`);
  return failures;
}

async function signins(user, pass, seconds, conc, out) {
  writeFileSync(out, '');
  const t0 = performance.now();
  const until = t0 + Number(seconds) * 1000;
  let n = 0;
  const failures = await pool(Number(conc), async () => {
    if (performance.now() >= until) return false;
    const b = new Browser();
    await b.signIn(base, user, pass, '/bench');
    n += 1;
    appendFileSync(out, `${b.cookieHeader(base)}\n`);
    return true;
  });
  const s = (performance.now() - t0) / 1000;
  console.log(`signins ${n} seconds ${s.toFixed(2)} failures ${failures}`);
  if (failures) process.exit(1);
}

async function logouts(infile, conc) {
  const lines = readFileSync(infile, 'utf8').split('\n').filter(Boolean);
  let next = 0;
  let n = 0;
  const t0 = performance.now();
  const failures = await pool(Number(conc), async () => {
    const i = next;
    next += 1;
    if (i >= lines.length) return false;
    await browserWith(lines[i]).logout(base);
    n += 1;
    return true;
  });
  const s = (performance.now() - t0) / 1000;
  // Ended means ended: a sample of the signed-out sessions is sent to sign in again.
  let refusedWrong = 0;
  for (const line of lines.slice(0, 20)) {
    const r = await browserWith(line).request(`${base}/bench`);
    if (!(r.status === 302 && r.location.includes('/api/login'))) refusedWrong += 1;
  }
  console.log(`logouts ${n} seconds ${s.toFixed(2)} failures ${failures + refusedWrong}`);
  if (failures || refusedWrong) {
    if (refusedWrong) console.error(`unexpected: ${refusedWrong} ended sessions were not sent to sign in`);
    process.exit(1);
  }
}

try {
  if (cmd === 'setup') await setup(...rest);
  else if (cmd === 'signins') await signins(...rest);
  else if (cmd === 'logouts') await logouts(...rest);
  else throw new Error('usage: flows.mjs setup|signins|logouts BASE ...');
} catch (e) {
  console.error(`flows.mjs ${cmd}: ${e.message}`);
  process.exit(1);
}
