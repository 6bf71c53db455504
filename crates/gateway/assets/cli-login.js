// The consent page of a command-line sign-in: sends the person's answer (with the request
// the page was opened with) to Portcullis, which checks everything again and names the
// loopback address to go to next — where the command-line tool is waiting.
import { portcullisFetch } from './client.js';

const form = document.getElementById('consent');
const status = document.getElementById('status');
const buttons = form.querySelectorAll('button');

async function answer(approve) {
  for (const b of buttons) b.disabled = true;
  status.className = '';
  status.textContent = approve ? 'Approving…' : 'Denying…';
  const d = form.dataset;
  try {
    const resp = await portcullisFetch('/api/cli/authorize', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({
        redirect_uri: d.redirectUri,
        state: d.state,
        code_challenge: d.codeChallenge,
        code_challenge_method: 'S256',
        machine: d.machine,
        expires_in_days: d.expiresInDays === '' ? null : Number(d.expiresInDays),
        approve,
      }),
    });
    const body = await resp.json().catch(() => ({}));
    if (resp.status === 401) {
      location.reload(); // the session ended: sign in again, back to this page
      return;
    }
    if (!resp.ok) throw new Error(body.error_description || `The request failed (HTTP ${resp.status}).`);
    status.textContent = approve
      ? 'Approved. Returning to the command-line tool…'
      : 'Denied. Telling the command-line tool…';
    location.assign(body.redirect);
  } catch (e) {
    status.className = 'error';
    status.textContent = e.message;
    for (const b of buttons) b.disabled = false;
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  answer(true);
});
document.getElementById('deny').addEventListener('click', () => answer(false));
