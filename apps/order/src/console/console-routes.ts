import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@nestjs/common';
import type { ManagementRoutes } from '@shop/service-kit';
import { CONSOLE_SCRIPT } from './assets/console-script';
import { CONSOLE_STYLE } from './assets/console-style';
import type { ConsolePages } from './console-pages';
import {
  clearedSessionCookie,
  cookieOf,
  fromSameOrigin,
  hasTokenInUrl,
  readForm,
  redirect,
  SECURITY_HEADERS,
  sendHtml,
  sendText,
  SESSION_COOKIE,
  sessionCookie,
} from './http';
import { signInPage } from './pages/sign-in';
import type { ConsoleSessions } from './sessions';
import type { SseHub } from './sse-hub';

/** What the routes need: the doors (token check, sessions, the stream bound) and the pages behind them. */
export interface ConsoleDoors {
  /** The admin token check (the admin guard's): the token's fingerprint, or undefined. */
  checkToken: (presented: string) => string | undefined;
  sessions: ConsoleSessions;
  hub: SseHub;
  pages: Pick<ConsolePages, 'serve'>;
  logger: Pick<Logger, 'log' | 'warn'>;
}

const ASSETS: Record<string, { type: string; text: string }> = {
  '/console/assets/console.css': { type: 'text/css; charset=utf-8', text: CONSOLE_STYLE },
  '/console/assets/console.js': { type: 'text/javascript; charset=utf-8', text: CONSOLE_SCRIPT },
};

/**
 * The console's HTTP door, mounted on the order service's management port: its assets, sign-in
 * and sign-out, and every page behind a session. A token is accepted in a form body only; any
 * URL with a token in its query is refused (400) before anything else, and every POST must come
 * from the console's own pages (`fromSameOrigin`).
 */
export class ConsoleRoutes implements ManagementRoutes {
  readonly prefix = '/console';

  constructor(private readonly doors: ConsoleDoors) {}

  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://console.invalid');
    const { pathname } = url;
    const method = request.method ?? 'GET';
    if (hasTokenInUrl(url)) {
      return sendText(response, 400, 'A token never goes in a URL: sign in with the form at /console/sign-in.');
    }
    const asset = ASSETS[pathname];
    if (asset && (method === 'GET' || method === 'HEAD')) return sendText(response, 200, asset.text, asset.type);
    if (method === 'POST' && !fromSameOrigin(request)) {
      return sendText(response, 403, 'This form may only be posted from the console itself.');
    }
    if (pathname === '/console/sign-in') {
      if (method === 'GET') return sendHtml(response, 200, signInPage());
      if (method === 'POST') return this.signIn(request, response);
      return this.notAllowed(response);
    }
    const sessionId = cookieOf(request, SESSION_COOKIE);
    if (pathname === '/console/sign-out' && method === 'POST') {
      this.doors.sessions.close(sessionId);
      return redirect(response, '/console/sign-in', { 'set-cookie': clearedSessionCookie });
    }
    const session = this.doors.sessions.touch(sessionId);
    if (!session) {
      if (method === 'GET' && pathname !== '/console/events') return redirect(response, '/console/sign-in');
      return sendText(response, 401, 'Sign in first: /console/sign-in.');
    }
    if (pathname === '/console/events' && method === 'GET') return this.events(response);
    if (method !== 'GET' && method !== 'POST') return this.notAllowed(response);
    return this.doors.pages.serve(method, url, request, response, session.admin);
  }

  private async signIn(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const form = await readForm(request);
    const token = form?.get('token') ?? '';
    const admin = token === '' ? undefined : this.doors.checkToken(token);
    if (admin === undefined) {
      this.doors.logger.warn('console sign-in refused: no or wrong admin token');
      return sendHtml(response, 401, signInPage('That is not an admin token.'));
    }
    const id = this.doors.sessions.open(admin);
    this.doors.logger.log(`admin ${admin} signed in to the console`);
    return redirect(response, '/console', { 'set-cookie': sessionCookie(id) });
  }

  private events(response: ServerResponse): void {
    if (!this.doors.hub.open(response, SECURITY_HEADERS)) {
      return sendText(response, 503, 'Too many live pages are open (CONSOLE_MAX_STREAMS).');
    }
  }

  private notAllowed(response: ServerResponse): void {
    sendText(response, 405, 'Method not allowed.');
  }
}
