// The sample app's page script: shows seed 000's three tiers at work through Portcullis's
// browser client. Served by the app, running on Portcullis's origin.
import { portcullisFetch, dpopProof } from '/.portcullis/client.js';

const $ = (id) => document.getElementById(id);

function decode(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4)));
}

async function show(resp, proof) {
  const body = await resp.json().catch(() => null);
  const www = resp.headers.get('www-authenticate');
  $('outcome').textContent = `HTTP ${resp.status}${www ? ` — ${www}` : ''}`;
  $('outcome').dataset.status = String(resp.status);
  $('cookies').textContent = document.cookie || '(none)';
  if (proof) {
    const [h, c] = proof.split('.');
    const header = decode(h);
    const claims = decode(c);
    $('proof').textContent = JSON.stringify({ header: { typ: header.typ, alg: header.alg, jwk: header.jwk }, claims }, null, 1);
  } else {
    $('proof').textContent = '(none)';
  }
  $('received').textContent = body ? JSON.stringify(body, null, 1) : '(nothing: Portcullis refused the request)';
}

$('call').addEventListener('click', async () => {
  // portcullisFetch makes its own proof; make one here too, only to display its shape.
  const sample = await dpopProof('POST', new URL('/api/echo', location.href).href);
  const resp = await portcullisFetch('/api/echo', { method: 'POST', headers: { Accept: 'application/json' } });
  await show(resp, sample);
});

$('no-proof').addEventListener('click', async () => {
  const csrf = document.cookie.split('; ').find((c) => c.startsWith('csrf_token='))?.slice(11);
  const resp = await fetch('/api/echo', { method: 'POST', headers: { Accept: 'application/json', 'X-CSRF-Token': csrf || '' } });
  await show(resp, null);
});

$('no-csrf').addEventListener('click', async () => {
  const proof = await dpopProof('POST', new URL('/api/echo', location.href).href);
  const resp = await fetch('/api/echo', { method: 'POST', headers: { Accept: 'application/json', DPoP: proof } });
  await show(resp, proof);
});
