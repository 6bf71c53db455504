// Drive Debian's Chromium (headless, via playwright-core and CDP) through a sign-in, the way a
// person would: open a protected page, get sent to the IdP's login form, type the credentials,
// end up back on the page. Prints ONE JSON line with what the browser saw.
//
// Usage: node browser.mjs '<json>'  with
//   {"url": "...", "user": "...", "password": "...",
//    "user_field": "input[name=login]", "password_field": "input[name=password]",
//    "submit": "button[type=submit]", "logout": "http://gw/api/logout",
//    "screenshot_logout": "/tmp/a.png", "screenshot_signed_out": "/tmp/b.png"}  (optional)
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
try {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await page.goto(cfg.url);
  out.login_page = page.url();
  await page.fill(cfg.user_field, cfg.user);
  await page.fill(cfg.password_field, cfg.password);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(new URL(cfg.url).origin), { timeout: 20000 }),
    page.click(cfg.submit)]);
  await page.waitForLoadState('load');
  out.final_url = page.url();
  out.body = (await page.textContent('body')) ?? '';
  out.document_cookie = await page.evaluate(() => document.cookie);
  out.cookies = (await ctx.cookies()).map((c) => ({
    name: c.name, domain: c.domain, path: c.path, secure: c.secure, httpOnly: c.httpOnly, sameSite: c.sameSite,
  }));
  const session = await page.goto(new URL('/api/session', cfg.url).href);
  out.session_status = session.status();
  out.session = await session.json().catch(() => null);
  if (cfg.logout) {
    // The sign-out page (GET changes nothing); its button POSTs the sign-out.
    await page.goto(cfg.logout);
    out.logout_page_title = await page.title();
    if (cfg.screenshot_logout) await page.screenshot({ path: cfg.screenshot_logout });
    await Promise.all([page.waitForLoadState('load'), page.click('form[action="/api/logout"] button[type=submit]')]);
    await page.waitForLoadState('load');
    out.after_logout_body = (await page.textContent('body')) ?? '';
    if (cfg.screenshot_signed_out) await page.screenshot({ path: cfg.screenshot_signed_out });
    const after = await page.goto(new URL('/api/session', cfg.url).href);
    out.session_status_after_logout = after.status();
  }
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
