// DPoP for the bench scripts: what the browser client does, from the command line (Node's
// WebCrypto, same algorithm and encoding as /.portcullis/client.js).
//
//   node bench/dpop.mjs key KEYFILE                           make a P-256 key (JWK file)
//   node bench/dpop.mjs proof KEYFILE METHOD URL              one proof (stdout)
//   node bench/dpop.mjs proofs KEYFILE METHOD URL N OUT       N fresh proofs, one per line
//
// Proofs are valid for 120 s after they are made (their iat), each exactly once.
import { readFileSync, writeFileSync } from 'node:fs';
import { webcrypto as crypto, randomBytes } from 'node:crypto';

const b64 = (buf) => Buffer.from(buf).toString('base64url');
const [cmd, keyFile, method, url, n, out] = process.argv.slice(2);

async function load() {
  const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
  const key = await crypto.subtle.importKey('jwk', jwk, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
  return { key, pub: { kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y } };
}

async function proof({ key, pub }, m, u) {
  const target = new URL(u);
  const header = b64(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk: pub }));
  const claims = b64(JSON.stringify({
    jti: b64(randomBytes(18)), htm: m, htu: target.origin + target.pathname, iat: Math.floor(Date.now() / 1000),
  }));
  const input = `${header}.${claims}`;
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, key, Buffer.from(input));
  return `${input}.${b64(sig)}`;
}

if (cmd === 'key') {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  writeFileSync(keyFile, JSON.stringify(await crypto.subtle.exportKey('jwk', pair.privateKey)));
} else if (cmd === 'proof') {
  process.stdout.write(`${await proof(await load(), method, url)}\n`);
} else if (cmd === 'proofs') {
  const k = await load();
  const lines = [];
  for (let i = 0; i < Number(n); i += 1) lines.push(await proof(k, method, url));
  writeFileSync(out, `${lines.join('\n')}\n`);
} else {
  console.error('usage: dpop.mjs key|proof|proofs KEYFILE [METHOD URL [N OUT]]');
  process.exit(2);
}
