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

refresh().catch((e) => say(e.message, true));
