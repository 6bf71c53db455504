// Drive Debian's Chromium (headless, via playwright-core) through the admin page the way an
// administrator would: open it, sign in at the IdP, search for a user, open them, deactivate
// and re-enable them, filter the audit log. Prints ONE JSON line with what the browser saw.
//
// Usage: node admin.mjs '<json>'  with
//   {"url": "http://gw/.portcullis/admin", "user": "...", "password": "...",
//    "user_field": "input[name=login]", "password_field": "input[name=password]",
//    "submit": "button[type=submit]", "search": "bob", "open": "Open Bob Builder",
//    "screenshots": "/dir"}                                                    (optional)
// Chromium: env CHROMIUM (default /usr/bin/chromium).
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = { console_errors: [], api_calls: [] };
const origin = new URL(cfg.url).origin;
const shot = async (page, name) => {
  if (cfg.screenshots) await page.screenshot({ path: `${cfg.screenshots}/${name}`, fullPage: true });
};
const clearStatus = (page) => page.evaluate(() => { document.getElementById('status').textContent = ''; });
const statusIs = (page, prefix) => page.waitForFunction(
  (p) => document.getElementById('status').textContent.includes(p), prefix, { timeout: 10000 },
);

try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  // Errors on Portcullis's pages (the IdP's login page is not ours; the browser's own
  // favicon request is not the page's).
  page.on('console', (m) => {
    const where = m.location()?.url ?? '';
    if (m.type() === 'error' && where.startsWith(origin) && !where.endsWith('/favicon.ico')) out.console_errors.push(`${m.text()} at ${where}`);
  });
  page.on('pageerror', (e) => out.console_errors.push(String(e)));
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin === origin && u.pathname.startsWith('/api/admin/')) {
      const h = r.headers();
      out.api_calls.push({ method: r.method(), path: u.pathname, dpop: Boolean(h.dpop), csrf: Boolean(h['x-csrf-token']) });
    }
  });
  // The confirmation before deactivating.
  page.on('dialog', (d) => { out.dialog = d.message(); d.accept(); });

  await page.goto(cfg.url);
  await page.waitForURL((u) => !u.href.startsWith(origin), { timeout: 20000 });
  await page.fill(cfg.user_field, cfg.user);
  await page.fill(cfg.password_field, cfg.password);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(origin), { timeout: 20000 }),
    page.click(cfg.submit)]);
  await page.waitForSelector('#admin[data-ready="true"]', { timeout: 15000 });
  out.final_url = page.url();
  out.title = await page.title();
  out.headings = await page.$$eval('h1, h2', (hs) => hs.filter((h) => !h.closest('[hidden]')).map((h) => h.textContent));
  out.users_initial = await page.$$eval('#users tbody tr', (rs) => rs.length);
  await shot(page, 'admin-page.png');

  // Search, by keyboard: type and press Enter.
  await clearStatus(page);
  await page.getByLabel('Search by email, name, username or subject').fill(cfg.search);
  await page.keyboard.press('Enter');
  await statusIs(page, 'Found');
  out.search_rows = await page.$$eval('#users tbody tr', (rs) => rs.map((r) => r.textContent));
  await page.getByRole('button', { name: cfg.open }).click();
  await page.waitForSelector('#user:not([hidden])');
  out.user_heading = await page.textContent('#user-h');
  out.focus_on_heading = await page.evaluate(() => document.activeElement?.id);
  await shot(page, 'admin-user.png');

  await clearStatus(page);
  await page.click('#deactivate');
  await statusIs(page, 'is deactivated');
  out.after_deactivate = {
    status: await page.textContent('#status'),
    state: await page.textContent('#user-facts'),
    deactivate_disabled: await page.isDisabled('#deactivate'),
    enable_disabled: await page.isDisabled('#enable'),
  };
  await shot(page, 'admin-user-deactivated.png');

  await clearStatus(page);
  await page.click('#enable');
  await statusIs(page, 'is re-enabled');
  out.after_enable = {
    status: await page.textContent('#status'),
    state: await page.textContent('#user-facts'),
  };

  // The audit log, filtered to administrator actions.
  await page.getByLabel('Action').selectOption('admin.');
  await page.getByLabel('Outcome').selectOption('ok');
  await clearStatus(page);
  await page.click('#audit-filters button[type=submit]');
  await statusIs(page, 'audit event');
  out.audit_rows = await page.$$eval('#audit tbody tr', (rs) => rs.map((r) => ({ action: r.dataset.action, outcome: r.dataset.outcome, text: r.textContent })));
  await shot(page, 'admin-audit-filtered.png');

  // The user's own audit events, from their panel.
  await clearStatus(page);
  await page.click('#user-audit');
  await statusIs(page, 'audit event');
  out.user_audit_actions = await page.$$eval('#audit tbody tr', (rs) => rs.map((r) => r.dataset.action));
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
