// Drive Debian's Chromium (headless, via playwright-core and CDP) through a sign-in, the way a
// person would: open a protected page, pass Portcullis's sign-in page (its script makes the
// browser key and starts the login with a DPoP proof), type the credentials at the IdP, end
// up back on the page. Prints ONE JSON line with what the browser saw.
//
// Usage: node browser.mjs '<json>'  with
//   {"url": "...", "user": "...", "password": "...",
//    "user_field": "input[name=login]", "password_field": "input[name=password]",
//    "submit": "button[type=submit]", "logout": "http://gw/api/logout",
//    "screenshot_logout": "/tmp/a.png", "screenshot_signed_out": "/tmp/b.png",   (optional)
//    "screenshot_sign_in": "/tmp/c.png",                                           (optional)
//    "choose": {"email": "a@b.example" | "name": "Partner Corp", "screenshot": "/tmp/e.png"}  (optional:
//              several identity providers; out.chooser_title, out.chooser_names)
//    "api": {"path": "/api/items", "advance_url": "http://127.0.0.1:p/advance"},  (optional)
//    "demo": {"screenshot": "/tmp/d.png"},                                          (optional)
//    "account": {"url": "http://gw/.portcullis/account", "name": "laptop",
//                "screenshot_created": "...", "screenshot_list": "...", "screenshot_revoked": "..."}}
// With "api": the page calls the app's API through /.portcullis/client.js; the request as sent
// (cookies, proof, CSRF header) is reported so the test can replay it outside the browser;
// then advance_url (the test's clock) is POSTed and another call shows the session refreshed.
// Chromium: env CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  // No sandbox (CI runs as root); no background networking: the machine has no internet.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = {};
const origin = new URL(cfg.url).origin;

// Ask the browser client (on the current page, same origin as Portcullis) to do `op`. No
// eval: pages under a strict CSP (the demo's sample app) must work too.
const client = (page, op, arg) => page.evaluate(async ([o, a]) => {
  const c = await import('/.portcullis/client.js');
  switch (o) {
    case 'session': return c.session();
    case 'proof': return c.dpopProof('POST', new URL(a, location.href).href);
    case 'call': {
      const r = await c.portcullisFetch(a, { method: 'POST', body: 'from-the-page', headers: { 'Content-Type': 'text/plain' } });
      return { status: r.status, body: await r.text() };
    }
    case 'key': {
      const pair = await c.browserKey();
      let exported = 'exported';
      try { await crypto.subtle.exportKey('pkcs8', pair.privateKey); } catch (e) { exported = e.name; }
      const stored = await new Promise((resolve, reject) => {
        const req = indexedDB.open('portcullis');
        req.onsuccess = () => {
          const get = req.result.transaction('keys').objectStore('keys').get('dpop');
          get.onsuccess = () => resolve(get.result);
          get.onerror = () => reject(get.error);
        };
        req.onerror = () => reject(req.error);
      });
      return {
        extractable: pair.privateKey.extractable,
        exported,
        algorithm: pair.privateKey.algorithm.name,
        curve: pair.privateKey.algorithm.namedCurve,
        in_indexeddb: stored?.privateKey instanceof CryptoKey,
        stored_extractable: stored?.privateKey?.extractable,
      };
    }
    default: throw new Error(`unknown op ${o}`);
  }
}, [op, arg ?? null]);

try {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const seenRequests = [];
  page.on('request', (r) => {
    if (r.url().startsWith(origin)) seenRequests.push({ url: r.url(), method: r.method(), headers: r.headers() });
  });
  await page.goto(cfg.url);
  // Several identity providers: the chooser first (by email, or by the IdP's name).
  if (cfg.choose) {
    await page.waitForSelector('ul.idps');
    out.chooser_title = await page.title();
    out.chooser_names = await page.$$eval('a.idp', (as) => as.map((a) => a.textContent));
    if (cfg.choose.screenshot) await page.screenshot({ path: cfg.choose.screenshot, fullPage: true });
    if (cfg.choose.email) {
      await page.fill('#email', cfg.choose.email);
      await page.click('form button[type=submit]');
    } else {
      await page.click(`a.idp:text-is("${cfg.choose.name}")`);
    }
  }
  // Portcullis's sign-in page passes the browser on to the IdP by script.
  await page.waitForURL((u) => !u.href.startsWith(origin), { timeout: 20000 });
  out.login_page = page.url();
  out.passed_sign_in_page = seenRequests.some((r) => r.method === 'POST' && new URL(r.url).pathname === '/api/login');
  const login = seenRequests.find((r) => r.method === 'POST' && new URL(r.url).pathname === '/api/login');
  out.login_had_proof = Boolean(login?.headers?.dpop);
  await page.fill(cfg.user_field, cfg.user);
  await page.fill(cfg.password_field, cfg.password);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(origin), { timeout: 20000 }),
    page.click(cfg.submit)]);
  await page.waitForLoadState('load');
  out.final_url = page.url();
  out.body = (await page.textContent('body')) ?? '';
  out.document_cookie = await page.evaluate(() => document.cookie);
  const cookieList = async () => (await ctx.cookies()).map((c) => ({
    name: c.name, value: c.value, domain: c.domain, path: c.path, secure: c.secure, httpOnly: c.httpOnly,
    sameSite: c.sameSite, expires: c.expires,
  }));
  out.cookies = await cookieList();
  // The key: in IndexedDB, private half not extractable and not exportable.
  out.key = await client(page, 'key');
  out.session = await client(page, 'session');
  out.session_status = out.session ? 200 : 401;
  if (cfg.api) {
    const call = () => client(page, 'call', cfg.api.path);
    seenRequests.length = 0;
    out.api = await call();
    // The attempt that was answered (the last one, after any retry).
    const sent = seenRequests.filter((r) => new URL(r.url).pathname === cfg.api.path).pop();
    const all = await page.evaluate(() => 0).then(() => ctx.cookies());
    out.api_request = sent && {
      url: sent.url, method: sent.method, dpop: sent.headers.dpop, csrf: sent.headers['x-csrf-token'],
      cookie: all.filter((c) => ['__Host-session', '__Host-fp', 'csrf_token'].includes(c.name))
        .map((c) => `${c.name}=${c.value}`).join('; '),
    };
    if (cfg.api.advance_url) {
      const before = (await ctx.cookies()).find((c) => c.name === '__Host-session');
      // The test's clock jumps 25 minutes: the JWT is within its refresh window.
      await fetch(cfg.api.advance_url, { method: 'POST' });
      seenRequests.length = 0;
      out.api_after_advance = await call();
      const attempts = seenRequests.filter((r) => new URL(r.url).pathname === cfg.api.path);
      out.api_after_advance_attempts = attempts.length;
      const after = (await ctx.cookies()).find((c) => c.name === '__Host-session');
      out.refreshed = Boolean(before && after && before.value !== after.value);
      out.session_expires_before = before?.expires;
      out.session_expires_after = after?.expires;
      // The request that succeeded, as sent, with the cookies as they are now.
      const last = attempts[attempts.length - 1];
      const now = await ctx.cookies();
      out.api_request = last && {
        url: last.url, method: last.method, dpop: last.headers.dpop, csrf: last.headers['x-csrf-token'],
        cookie: now.filter((c) => ['__Host-session', '__Host-fp', 'csrf_token'].includes(c.name))
          .map((c) => `${c.name}=${c.value}`).join('; '),
      };
    }
    // Unused proofs from this browser's key (which cannot leave it), for the test's
    // refusals that must fail for another reason than the proof.
    out.spare_proofs = [];
    for (let i = 0; i < (cfg.api.spare_proofs ?? 0); i += 1) {
      out.spare_proofs.push(await client(page, 'proof', cfg.api.path));
    }
  }
  if (cfg.demo) {
    // The demo's sample app page: press its buttons, look at what it shows.
    const results = {};
    for (const id of ['call', 'no-proof', 'no-csrf']) {
      await page.click(`#${id}`);
      await page.waitForFunction((prev) => document.getElementById('outcome').dataset.status
        && document.getElementById('outcome').textContent !== prev, results.last ?? '(not called yet)');
      results.last = await page.textContent('#outcome');
      results[id] = { outcome: results.last, received: await page.textContent('#received'), proof: await page.textContent('#proof') };
    }
    await page.click('#call');
    await page.waitForFunction(() => document.getElementById('outcome').textContent.startsWith('HTTP 200'));
    out.demo = results;
    if (cfg.demo.screenshot) await page.screenshot({ path: cfg.demo.screenshot, fullPage: true });
  }
  if (cfg.logout && cfg.api) {
    // An unused proof from this browser's key, for the test to try after sign-out (the key
    // itself cannot leave the browser).
    out.proof_for_after_logout = await client(page, 'proof', cfg.api.path);
  }
  if (cfg.logout) {
    // The sign-out page (GET changes nothing); its button signs out (through the client).
    await page.goto(cfg.logout);
    out.logout_page_title = await page.title();
    if (cfg.screenshot_logout) await page.screenshot({ path: cfg.screenshot_logout });
    await Promise.all([page.waitForURL((u) => u.pathname !== '/api/logout' || u.search !== '', { timeout: 10000 }).catch(() => {}),
      page.click('form[action="/api/logout"] button[type=submit]')]);
    await page.waitForLoadState('load');
    out.after_logout_url = page.url();
    out.after_logout_body = (await page.textContent('body')) ?? '';
    if (cfg.screenshot_signed_out) await page.screenshot({ path: cfg.screenshot_signed_out });
    out.cookies_after_logout = (await ctx.cookies()).map((c) => c.name);
    // A blank page on Portcullis's origin (served by the harness, not the gateway) to ask
    // the client who is signed in now.
    await page.route(`${origin}/__blank`, (r) => r.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>blank</title>' }));
    await page.goto(`${origin}/__blank`);
    const after = await client(page, 'session');
    out.session_status_after_logout = after ? 200 : 401;
    // Opening the app again: with the IdP session ended, the IdP asks for the password.
    await page.goto(cfg.url);
    await page.waitForURL((u) => !u.href.startsWith(origin), { timeout: 20000 });
    out.after_logout_asks_password = await page.isVisible(cfg.password_field);
  }
  if (cfg.account) {
    // The account page: create an API token, see it once, copy it, revoke it.
    const a = {};
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin });
    await page.goto(cfg.account.url);
    await page.waitForSelector('#empty:not([hidden]), #tokens:not([hidden])');
    a.title = await page.title();
    a.name_label = await page.getByLabel('Name').count();
    a.expiry_label = await page.getByLabel('Expires').count();
    await page.fill('#token-name', cfg.account.name);
    await page.selectOption('#token-expiry', '30');
    await page.click('#create button[type=submit]');
    await page.waitForSelector('#created:not([hidden])');
    await page.waitForSelector('#tokens:not([hidden])');
    a.token = await page.inputValue('#token-value');
    a.copy_button = await page.isVisible('#copy');
    a.copy_button_text = (await page.textContent('#copy'))?.trim();
    a.focused = await page.evaluate(() => document.activeElement?.id);
    await page.click('#copy');
    await page.waitForFunction(() => document.getElementById('copy-status').textContent !== '');
    a.copy_status = await page.textContent('#copy-status');
    a.clipboard = await page.evaluate(() => navigator.clipboard.readText()).catch((e) => String(e));
    a.rows = await page.$$eval('#tokens tbody tr', (rows) => rows.map((r) => r.textContent));
    a.status = await page.textContent('#status');
    if (cfg.account.screenshot_created) await page.screenshot({ path: cfg.account.screenshot_created, fullPage: true });
    // Shown once: after a reload the list has the token, the page not its plaintext.
    await page.reload();
    await page.waitForSelector('#tokens:not([hidden])');
    a.plaintext_after_reload = (await page.content()).includes(a.token);
    a.created_hidden_after_reload = await page.isHidden('#created');
    if (cfg.account.screenshot_list) await page.screenshot({ path: cfg.account.screenshot_list, fullPage: true });
    page.once('dialog', (d) => { a.confirm = d.message(); d.accept(); });
    await page.click('#tokens button[data-id]');
    await page.waitForSelector('#empty:not([hidden])');
    a.revoked_status = await page.textContent('#status');
    if (cfg.account.screenshot_revoked) await page.screenshot({ path: cfg.account.screenshot_revoked, fullPage: true });
    out.account = a;
  }
  if (cfg.screenshot_sign_in) {
    // The sign-in page as a person sees it for a moment (its script is blocked here so the
    // page stays put for the picture).
    const p2 = await (await browser.newContext()).newPage();
    await p2.route('**/.portcullis/sign-in.js', (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body: '' }));
    await p2.goto(new URL('/api/login', cfg.url).href);
    await p2.screenshot({ path: cfg.screenshot_sign_in });
    out.sign_in_page_title = await p2.title();
  }
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
