// The account page's script: lists, creates and revokes the signed-in person's API tokens
// through Portcullis's JSON API (with the CSRF header and DPoP proofs of the browser client).
// Token names are the person's own text: always set with textContent, never as HTML.
import { portcullisFetch } from './client.js';

const $ = (id) => document.getElementById(id);
const status = $('status');
const when = (secs) => (secs == null ? '—' : new Date(secs * 1000).toLocaleString());

async function api(path, init = {}) {
  const headers = { Accept: 'application/json', ...(init.headers || {}) };
  const resp = await portcullisFetch(path, { ...init, headers });
  if (resp.status === 401) {
    location.reload(); // the session ended: sign in again, back to this page
    throw new Error('You are no longer signed in.');
  }
  const body = resp.status === 204 ? {} : await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error_description || `The request failed (HTTP ${resp.status}).`);
  return body;
}

function say(text, error = false) {
  status.textContent = text;
  status.className = error ? 'error' : '';
}

async function refresh() {
  const { tokens } = await api('/api/tokens');
  const body = $('tokens').querySelector('tbody');
  body.replaceChildren();
  for (const t of tokens) {
    const row = document.createElement('tr');
    const cells = [
      t.name,
      t.id,
      when(t.created_at),
      t.expires_at == null ? 'never' : `${when(t.expires_at)}${t.expired ? ' (expired)' : ''}`,
      t.last_used_at == null ? 'never' : when(t.last_used_at),
    ];
    for (const [i, text] of cells.entries()) {
      const td = document.createElement(i === 0 ? 'th' : 'td');
      if (i === 0) td.scope = 'row';
      td.textContent = text;
      row.append(td);
    }
    const td = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = 'Revoke';
    b.setAttribute('aria-label', `Revoke token ${t.name}`);
    b.dataset.id = t.id;
    b.addEventListener('click', () => revoke(t));
    td.append(b);
    row.append(td);
    body.append(row);
  }
  $('tokens').hidden = tokens.length === 0;
  $('empty').hidden = tokens.length !== 0;
}

async function revoke(t) {
  if (!confirm(`Revoke the token "${t.name}"? Programs using it stop working at once.`)) return;
  try {
    await api(`/api/tokens/${encodeURIComponent(t.id)}`, { method: 'DELETE' });
    say(`Token "${t.name}" revoked.`);
    await refresh();
  } catch (e) {
    say(e.message, true);
  }
}

$('create').addEventListener('submit', async (event) => {
  event.preventDefault();
  const name = $('token-name').value.trim();
  const days = $('token-expiry').value;
  try {
    const t = await api('/api/tokens', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name, expires_in_days: days === '' ? null : Number(days) }),
    });
    $('token-value').value = t.token;
    $('copy-status').textContent = '';
    $('created').hidden = false;
    $('created').focus();
    $('token-name').value = '';
    say(`Token "${t.name}" created.`);
    await refresh();
  } catch (e) {
    say(e.message, true);
  }
});

$('copy').addEventListener('click', async () => {
  const field = $('token-value');
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    // No clipboard permission: select it so Ctrl+C / Cmd+C copies it.
    field.select();
    $('copy-status').textContent = 'Selected: press Ctrl+C (or Cmd+C) to copy.';
    return;
  }
  $('copy-status').textContent = 'Copied.';
});

// Signing in a device (RFC 8628): look the code up first, so the person sees which machine
// asks before approving it.
let pendingCode = null;
const deviceStatus = (text, error = false) => {
  $('device-status').textContent = text;
  $('device-status').className = error ? 'error' : '';
};

$('device').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('device-request').hidden = true;
  pendingCode = null;
  try {
    const r = await api('/api/cli/device/lookup', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_code: $('user-code').value }),
    });
    pendingCode = r.user_code;
    $('device-machine').textContent = r.machine;
    $('device-ip').textContent = r.client_ip ?? 'unknown';
    $('device-when').textContent = `asked ${when(r.requested_at)}`;
    $('device-token').textContent = r.token_name;
    $('device-expiry').textContent = r.token_days == null ? 'does not expire' : `expires in ${r.token_days} days`;
    deviceStatus('');
    $('device-request').hidden = false;
    $('device-request').focus();
  } catch (e) {
    deviceStatus(e.message, true);
  }
});

async function decide(approve) {
  if (!pendingCode) return;
  try {
    await api('/api/cli/device/decide', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user_code: pendingCode, approve }),
    });
    $('device-request').hidden = true;
    $('user-code').value = '';
    deviceStatus(approve
      ? 'Approved. The command-line tool is signed in; its token is listed above.'
      : 'Denied. The command-line tool was not signed in.');
    pendingCode = null;
    if (approve) {
      // The new token exists once the command-line tool has polled (every few seconds):
      // look again a few times so it shows up in the list.
      const before = $('tokens').querySelectorAll('tbody tr').length;
      for (let i = 0; i < 10; i += 1) {
        await new Promise((r) => setTimeout(r, 3000));
        await refresh().catch(() => {});
        if ($('tokens').querySelectorAll('tbody tr').length > before) break;
      }
    }
  } catch (e) {
    deviceStatus(e.message, true);
  }
}
$('device-approve').addEventListener('click', () => decide(true));
$('device-deny').addEventListener('click', () => decide(false));

refresh().catch((e) => say(e.message, true));
