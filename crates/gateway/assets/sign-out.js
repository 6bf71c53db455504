// The sign-out page's script: with DPoP on, POST /api/logout needs a proof, which a plain
// form cannot send; the button then signs out through the browser client.
import { signOut } from './client.js';

const form = document.getElementById('sign-out');
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const status = document.getElementById('status');
  try {
    const out = await signOut();
    // RP-initiated logout: the IdP ends its session too, then sends the browser to `done`.
    location.assign(out.end_session_url || form.dataset.done);
  } catch (e) {
    status.textContent = `${e.message}. Reload the page and try again.`;
  }
});
