// The sign-in page's script: make (or load) this browser's key, start the login with a
// DPoP proof, continue to the identity provider.
import { signIn } from './client.js';

const status = document.getElementById('status');
signIn().catch((e) => {
  status.textContent = `Sign-in could not start: ${e.message}`;
  document.getElementById('retry').hidden = false;
});
