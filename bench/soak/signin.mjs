// Sign USER in at the gateway BASE for real (bench/scale/client.mjs; DPoP on or off), check a
// proxied page answers 200, and write the session's Cookie header value to OUT.
//
//   node signin.mjs BASE USER PASS OUT
import { writeFileSync } from 'node:fs';
import { Browser } from '../scale/client.mjs';

const [base, user, pass, out] = process.argv.slice(2);
const b = new Browser();
await b.signIn(base, user, pass, '/bench');
const r = await b.request(`${base}/bench`);
if (r.status !== 200) {
  console.error(`signin.mjs: the signed-in page answered ${r.status}`);
  process.exit(1);
}
writeFileSync(out, b.cookieHeader(base));
