import { html, type Html } from '../html';
import { page } from './layout';

/** The sign-in form: the admin token in a password field, posted in the body (never in a URL). */
export function signInPage(error?: string): Html {
  return page(
    'Sign in',
    html`<main id="sign-in-page" class="narrow">
      <h1>Sign in</h1>
      <p>The console is for operators: sign in with the admin token (ADMIN_TOKEN).</p>
      ${error === undefined ? '' : html`<p role="alert" id="sign-in-error">${error}</p>`}
      <form id="sign-in" method="post" action="/console/sign-in">
        <label for="token">Admin token</label>
        <input id="token" name="token" type="password" autocomplete="current-password" required />
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The session ends when the browser closes, or after a while without use.</p>
    </main>`,
  );
}
