// Portcullis admin page: users, one user's sessions and state, the audit log.
// Every call goes through the browser client (session cookies, DPoP proof, CSRF header).
// Text from the store (names, emails, groups: IdP data) is only ever set as textContent.

import { portcullisFetch } from './client.js';

const PAGE = '/.portcullis/admin';
const $ = (sel) => document.querySelector(sel);
const me = $('#admin').dataset.me;
const status = $('#status');
let usersNext = null;
let query = '';
let auditNext = null;
let auditParams = new URLSearchParams();
let current = null;

function say(text) {
  status.textContent = text;
}

async function api(path, method = 'GET') {
  const r = await portcullisFetch(path, { method, headers: { Accept: 'application/json' } });
  let body = null;
  try {
    body = await r.json();
  } catch {
    body = null;
  }
  if (r.status === 401) {
    // The session ended (signed out elsewhere, or ended by an administrator): sign in again.
    location.assign(`/api/login?rd=${encodeURIComponent(PAGE)}`);
    throw new Error('You are signed out.');
  }
  if (!r.ok) {
    const why = body?.error_description ?? (body?.error === 'csrf' ? 'The request could not be verified; reload the page.' : `HTTP ${r.status}`);
    throw new Error(why);
  }
  return body;
}

const time = (secs) => (secs ? new Date(secs * 1000).toLocaleString() : '—');

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function stateOf(u) {
  if (u.admin_disabled) return ['Deactivated', 'off'];
  if (u.idp_deactivated) return ['Signed out by the identity provider', 'warn'];
  return ['Active', 'ok'];
}

function badge([text, cls]) {
  return el('span', text, `badge ${cls}`);
}

function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    if (c instanceof Node) td.append(c);
    else td.textContent = c ?? '—';
    tr.append(td);
  }
  return tr;
}

// ---- Users -----------------------------------------------------------------------------------

async function loadUsers(more = false) {
  const p = new URLSearchParams();
  if (query) p.set('q', query);
  if (more && usersNext) p.set('after', usersNext);
  const page = await api(`/api/admin/users?${p}`);
  const body = $('#users tbody');
  if (!more) body.replaceChildren();
  for (const u of page.users) {
    const open = el('button', 'Open', 'secondary small');
    open.type = 'button';
    open.setAttribute('aria-label', `Open ${u.name || u.email || u.id}`);
    open.addEventListener('click', () => openUser(u.id).catch((e) => say(e.message)));
    const tr = row([u.name, u.email, u.username, u.roles.join(', ') || '—', badge(stateOf(u)), time(u.last_login), open]);
    tr.dataset.id = u.id;
    body.append(tr);
  }
  if (!body.children.length) {
    const tr = row(['No users match.', '', '', '', '', '', '']);
    body.append(tr);
  }
  usersNext = page.next ?? null;
  $('#users-more').hidden = !usersNext;
  return page.users.length;
}

$('#search').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  query = $('#q').value.trim();
  try {
    const n = await loadUsers();
    say(n ? `Found ${n}${usersNext ? '+' : ''} user(s).` : 'No users match.');
  } catch (e) {
    say(e.message);
  }
});

$('#users-more').addEventListener('click', () => loadUsers(true).catch((e) => say(e.message)));

// ---- One user --------------------------------------------------------------------------------

async function openUser(id) {
  const d = await api(`/api/admin/users/${encodeURIComponent(id)}`);
  current = d.user;
  const u = d.user;
  const facts = $('#user-facts');
  facts.replaceChildren();
  const fact = (k, v) => {
    facts.append(el('dt', k));
    const dd = el('dd');
    if (v instanceof Node) dd.append(v);
    else dd.textContent = v || '—';
    facts.append(dd);
  };
  fact('Name', u.name);
  fact('Email', u.email);
  fact('Username', u.username);
  fact('State', badge(stateOf(u)));
  fact('Roles', u.roles.join(', '));
  fact('Groups', u.groups.join(', '));
  fact('First sign-in', time(u.first_login));
  fact('Last sign-in', time(u.last_login));
  fact('User id', el('code', u.id));
  fact('Identity provider', el('code', `${u.issuer} — ${u.subject}`));
  $('#user-h').textContent = `User: ${u.name || u.email || u.id}`;
  const self = u.id === me;
  const deactivate = $('#deactivate');
  deactivate.disabled = u.admin_disabled || self;
  deactivate.title = self ? 'You cannot deactivate yourself.' : '';
  $('#enable').disabled = u.active;
  const body = $('#sessions tbody');
  body.replaceChildren();
  for (const s of d.sessions) {
    const st = s.live ? ['Live', 'ok'] : s.revoked_at ? [`Ended ${time(s.revoked_at)}`, 'off'] : ['Expired', 'warn'];
    body.append(row([el('code', `${s.id_prefix}…`), time(s.created_at), time(s.expires_at), badge(st)]));
  }
  if (!d.sessions.length) body.append(row(['No sessions.', '', '', '']));
  const section = $('#user');
  section.hidden = false;
  $('#user-h').focus();
}

async function act(path, done) {
  if (!current) return;
  const id = current.id;
  try {
    const r = await api(`/api/admin/users/${encodeURIComponent(id)}/${path}`, 'POST');
    await Promise.all([openUser(id), loadUsers(), loadAudit()]);
    say(done(r));
  } catch (e) {
    say(e.message);
  }
}

$('#deactivate').addEventListener('click', () => {
  const who = current?.name || current?.email || current?.id;
  if (!window.confirm(`Deactivate ${who}? They are signed out everywhere and cannot sign in until re-enabled.`)) return;
  act('deactivate', (r) => `${who} is deactivated; ${r.sessions_revoked} session(s) ended.`);
});
$('#enable').addEventListener('click', () => {
  const who = current?.name || current?.email || current?.id;
  act('enable', () => `${who} is re-enabled and can sign in again.`);
});
$('#revoke').addEventListener('click', () => {
  const who = current?.name || current?.email || current?.id;
  act('revoke-sessions', (r) => `${r.sessions_revoked} session(s) of ${who} ended.`);
});
$('#user-audit').addEventListener('click', () => {
  if (!current) return;
  const f = $('#audit-filters');
  f.reset();
  f.elements.subject.value = current.id;
  f.requestSubmit();
});

// ---- Audit log -------------------------------------------------------------------------------

const secs = (v) => (v ? String(Math.floor(new Date(v).getTime() / 1000)) : '');

async function loadAudit(more = false) {
  const p = new URLSearchParams(auditParams);
  if (more && auditNext) p.set('before', auditNext);
  const page = await api(`/api/admin/audit?${p}`);
  const body = $('#audit tbody');
  if (!more) body.replaceChildren();
  // A person by name (their id on hover), or by id when unknown.
  const who = (id) => {
    if (!id) return '—';
    const name = page.names?.[id];
    if (!name) return el('code', id);
    const s = el('span', name);
    s.title = id;
    return s;
  };
  for (const e of page.events) {
    const tr = row([time(e.at), el('code', e.action, 'nowrap'), e.outcome, who(e.actor), who(e.subject), e.ip, e.detail]);
    tr.dataset.action = e.action;
    tr.dataset.outcome = e.outcome;
    body.append(tr);
  }
  if (!body.children.length) body.append(row(['No events match.', '', '', '', '', '', '']));
  auditNext = page.next ?? null;
  $('#audit-more').hidden = !auditNext;
  return page.events.length;
}

$('#audit-filters').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  auditParams = new URLSearchParams();
  for (const k of ['action', 'outcome', 'actor', 'subject']) {
    if (f[k].value.trim()) auditParams.set(k, f[k].value.trim());
  }
  if (secs(f.since.value)) auditParams.set('since', secs(f.since.value));
  if (secs(f.until.value)) auditParams.set('until', secs(f.until.value));
  try {
    const n = await loadAudit();
    say(`${n}${auditNext ? '+' : ''} audit event(s).`);
  } catch (e) {
    say(e.message);
  }
});
$('#audit-filters').addEventListener('reset', () => {
  auditParams = new URLSearchParams();
  setTimeout(() => loadAudit().catch((e) => say(e.message)));
});
$('#audit-more').addEventListener('click', () => loadAudit(true).catch((e) => say(e.message)));

Promise.all([loadUsers(), loadAudit()])
  .then(() => {
    $('#admin').dataset.ready = 'true';
  })
  .catch((e) => say(e.message));
