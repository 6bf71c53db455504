// Drive Debian's Chromium (headless, via playwright-core) through the browser half of a
// command-line sign-in, as a person would. Prints ONE JSON line with what the browser saw.
//
// Usage: node cli-login.mjs '<json>' with
//   {"url": "<the URL the CLI printed>", "user": "...", "password": "...",
//    "user_field": "input[name=login]", "password_field": "input[name=password]",
//    "submit": "button[type=submit]",
//    "mode": "consent" | "device",
//    "screenshot_consent": "...", "screenshot_done": "..."}             (optional)
// consent: the URL is the consent page; sign in at the IdP, approve, end on the CLI's
//          loopback page.
// device:  the URL is verification_uri_complete (the account page with the code); sign in,
//          continue with the pre-filled code, check what asks, approve.
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

try {
  const page = await (await browser.newContext()).newPage();
  await page.goto(cfg.url);
  // Not signed in: Portcullis's sign-in page passes the browser on to the IdP.
  await page.waitForURL((u) => !u.href.startsWith(origin), { timeout: 20000 });
  await page.fill(cfg.user_field, cfg.user);
  await page.fill(cfg.password_field, cfg.password);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(origin), { timeout: 20000 }),
    page.click(cfg.submit)]);
  await page.waitForLoadState('load');
  out.back_at = page.url();
  if (cfg.mode === 'consent') {
    out.title = await page.title();
    out.text = (await page.textContent('body')) ?? '';
    out.machine = await page.textContent('#machine');
    if (cfg.screenshot_consent) await page.screenshot({ path: cfg.screenshot_consent, fullPage: true });
    // Approve: the page posts the answer, then goes to the CLI's loopback address.
    await Promise.all([page.waitForURL((u) => u.href.startsWith('http://127.0.0.1:') && !u.href.startsWith(origin), { timeout: 20000 }),
      page.click('#approve')]);
    await page.waitForLoadState('load');
    out.final_url = page.url();
    out.final_text = (await page.textContent('body')) ?? '';
    if (cfg.screenshot_done) await page.screenshot({ path: cfg.screenshot_done, fullPage: true });
  } else {
    await page.waitForSelector('#empty:not([hidden]), #tokens:not([hidden])');
    out.prefilled = await page.inputValue('#user-code');
    out.code_label = await page.getByLabel('Code from the terminal').count();
    await page.click('#device button[type=submit]');
    await page.waitForSelector('#device-request:not([hidden])');
    out.machine = await page.textContent('#device-machine');
    out.from = await page.textContent('#device-ip');
    out.token_name = await page.textContent('#device-token');
    out.request_text = await page.textContent('#device-request');
    if (cfg.screenshot_consent) await page.screenshot({ path: cfg.screenshot_consent, fullPage: true });
    await page.click('#device-approve');
    await page.waitForFunction(() => document.getElementById('device-status').textContent.startsWith('Approved'));
    out.status = await page.textContent('#device-status');
    // The token appears in the list once the CLI has polled (the page refreshes it).
    await page.waitForFunction(() => [...document.querySelectorAll('#tokens tbody tr')].some((r) => r.textContent.includes('portcullis CLI on')), null, { timeout: 30000 });
    out.rows = await page.$$eval('#tokens tbody tr', (rows) => rows.map((r) => r.textContent));
    if (cfg.screenshot_done) await page.screenshot({ path: cfg.screenshot_done, fullPage: true });
  }
} catch (err) {
  out.error = String(err?.stack ?? err);
} finally {
  await browser.close();
}
process.stdout.write(`${JSON.stringify(out)}\n`);
