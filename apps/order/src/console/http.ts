import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Html } from './html';

/*
 * The console's HTTP rules, for every response and request: its headers (a strict CSP: no
 * inline script or style, nothing from elsewhere), its cookie, and what a request may carry.
 */

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Headers on every console response. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'cache-control': 'no-store',
};

export const SESSION_COOKIE = 'console_session';

/** The session cookie: not readable by scripts, never sent cross-site, only to the console, no expiry. */
export const sessionCookie = (id: string): string =>
  `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/console`;

export const clearedSessionCookie = `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/console; Max-Age=0`;

/** Query parameters that would put a token in a URL (logs, history, Referer): refused outright. */
const TOKEN_PARAMETERS = ['token', 'admin_token', 'access_token'];

export const hasTokenInUrl = (url: URL): boolean =>
  [...url.searchParams.keys()].some((key) => TOKEN_PARAMETERS.includes(key.toLowerCase()));

export function cookieOf(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const at = part.indexOf('=');
    if (at > 0 && part.slice(0, at).trim() === name) return part.slice(at + 1).trim();
  }
  return undefined;
}

/**
 * Whether a state-changing request comes from the console's own pages (CSRF): a browser says
 * where a request comes from (Origin, Sec-Fetch-Site); one from another site is refused. The
 * session cookie is SameSite=Strict as well, so a cross-site request carries no session.
 */
export function fromSameOrigin(request: IncomingMessage): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** The largest form the console accepts (a token, or a message id and a flag). */
const MAX_FORM_BYTES = 8 * 1024;

/** An application/x-www-form-urlencoded body; undefined if it is another type or too large. */
export async function readForm(request: IncomingMessage): Promise<URLSearchParams | undefined> {
  const type = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) return undefined;
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

export function sendHtml(response: ServerResponse, status: number, page: Html, headers: Record<string, string> = {}) {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', ...headers });
  response.end(page.text);
}

export function redirect(response: ServerResponse, location: string, headers: Record<string, string> = {}) {
  response.writeHead(303, { ...SECURITY_HEADERS, location, ...headers });
  response.end();
}

export function sendText(response: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8') {
  response.writeHead(status, { ...SECURITY_HEADERS, 'content-type': type });
  response.end(text);
}
