import { once } from 'node:events';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { adminTokenCheck } from '@shop/service-kit';
import { ConsoleRoutes } from './console-routes';
import { CONTENT_SECURITY_POLICY } from './http';
import { ConsoleSessions } from './sessions';
import { SseHub } from './sse-hub';

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The console's door on a real HTTP server; the pages behind it answer "page <path> for <admin>". */
describe("the console's door", () => {
  let server: Server;
  let port: number;
  let hub: SseHub;
  const TOKEN = 'the-admin-token';

  beforeEach(async () => {
    hub = new SseHub(1);
    const routes = new ConsoleRoutes({
      checkToken: adminTokenCheck([TOKEN, 'another-token']),
      sessions: new ConsoleSessions(60_000),
      hub,
      pages: {
        serve: (method, url, _request, response, admin) => {
          response.writeHead(200, { 'content-type': 'text/plain' }).end(`page ${method} ${url.pathname} for ${admin}`);
          return Promise.resolve();
        },
      },
      logger: { log: () => undefined, warn: () => undefined },
    });
    server = createServer((request, response) => void routes.handle(request, response));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** One request; a stream's body is not waited for (its headers are the answer). */
  function call(
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: string } = {},
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: options.headers }, (response) => {
        if (response.headers['content-type']?.startsWith('text/event-stream')) {
          resolve({ status: response.statusCode!, headers: response.headers, body: '' });
          return;
        }
        let body = '';
        response.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body }));
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }
  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => ({
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
  async function signIn(token = TOKEN): Promise<Answer> {
    return call('POST', '/console/sign-in', form({ token }, { origin: `http://127.0.0.1:${port}` }));
  }
  const sessionOf = (answer: Answer) => String(answer.headers['set-cookie']?.[0]).split(';')[0];

  it('shows the sign-in form: the token in a password field, posted in the body', async () => {
    const answer = await call('GET', '/console/sign-in');
    expect(answer.status).toBe(200);
    expect(answer.body).toContain('<form id="sign-in" method="post" action="/console/sign-in">');
    expect(answer.body).toContain('<input id="token" name="token" type="password"');
    expect(answer.body).toContain('<label for="token">Admin token</label>');
  });

  it('sends the strict Content-Security-Policy on every response: pages, assets, refusals, redirects', async () => {
    expect(CONTENT_SECURITY_POLICY).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    const answers = await Promise.all([
      call('GET', '/console/sign-in'),
      call('GET', '/console/assets/console.js'),
      call('GET', '/console/assets/console.css'),
      call('GET', '/console'),
      call('GET', '/console?token=x'),
      signIn('wrong'),
    ]);
    for (const answer of answers) expect(answer.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 303, 400, 401]);
    expect(answers[1].headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(answers[0].body).not.toMatch(/<script(?![^>]*\bsrc=)/); // no inline script
    expect(answers[0].body).not.toMatch(/\sstyle=/); // no inline style
  });

  it('refuses a token in the URL, whatever the route and method, and signs nobody in', async () => {
    for (const [method, path] of [
      ['GET', `/console?token=${TOKEN}`],
      ['GET', `/console/sign-in?admin_token=${TOKEN}`],
      ['GET', `/console/events?access_token=${TOKEN}`],
      ['GET', `/console/checkouts?TOKEN=${TOKEN}`],
      ['POST', `/console/sign-in?token=${TOKEN}`],
    ]) {
      const answer = await call(method, path, method === 'POST' ? form({ token: TOKEN }) : {});
      expect([path, answer.status]).toEqual([path, 400]);
      expect(answer.headers['set-cookie']).toBeUndefined();
    }
  });

  it('refuses a wrong or missing token with 401 and the form again, and opens no session', async () => {
    for (const token of ['wrong', '']) {
      const answer = await signIn(token);
      expect(answer.status).toBe(401);
      expect(answer.body).toContain('<p role="alert" id="sign-in-error">');
      expect(answer.headers['set-cookie']).toBeUndefined();
    }
  });

  it('signs in with a right token: a session cookie that scripts cannot read, never sent cross-site, ending with the browser', async () => {
    const answer = await signIn('another-token');
    expect(answer.status).toBe(303);
    expect(answer.headers.location).toBe('/console');
    const cookie = String(answer.headers['set-cookie']?.[0]);
    expect(cookie).toMatch(/^console_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/console$/);
    const page = await call('GET', '/console/stuck', { headers: { cookie: sessionOf(answer) } });
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/^page GET \/console\/stuck for [0-9a-f]{12}$/);
  });

  it('sends a visitor without a session to the sign-in form, and answers 401 to streams and posts', async () => {
    for (const headers of [{}, { cookie: 'console_session=forged' }] as Array<Record<string, string>>) {
      const page = await call('GET', '/console/checkouts', { headers });
      expect([page.status, page.headers.location]).toEqual([303, '/console/sign-in']);
      expect((await call('GET', '/console/events', { headers })).status).toBe(401);
      const post = await call('POST', '/console/dead-letters/order/redrive', form({ all: '1' }, headers));
      expect(post.status).toBe(401);
    }
  });

  it('refuses a post from another site (CSRF), even with a session', async () => {
    const cookie = sessionOf(await signIn());
    const foreign = await call(
      'POST',
      '/console/dead-letters/order/redrive',
      form({ all: '1' }, { cookie, origin: 'https://evil.example' }),
    );
    expect(foreign.status).toBe(403);
    const crossSite = await call('POST', '/console/sign-out', form({}, { cookie, 'sec-fetch-site': 'cross-site' }));
    expect(crossSite.status).toBe(403);
    const own = await call(
      'POST',
      '/console/dead-letters/order/redrive',
      form({ all: '1' }, { cookie, origin: `http://127.0.0.1:${port}` }),
    );
    expect(own.body).toMatch(/^page POST \/console\/dead-letters\/order\/redrive for /);
  });

  it('ends the session at sign-out', async () => {
    const cookie = sessionOf(await signIn());
    const out = await call('POST', '/console/sign-out', form({}, { cookie }));
    expect([out.status, out.headers.location]).toEqual([303, '/console/sign-in']);
    expect(String(out.headers['set-cookie']?.[0])).toContain('Max-Age=0');
    expect((await call('GET', '/console', { headers: { cookie } })).status).toBe(303);
  });

  it('streams to at most CONSOLE_MAX_STREAMS pages: beyond, 503', async () => {
    const cookie = sessionOf(await signIn());
    const first = await call('GET', '/console/events', { headers: { cookie } });
    expect(first.status).toBe(200);
    expect(first.headers['content-security-policy']).toBe(CONTENT_SECURITY_POLICY);
    const second = await call('GET', '/console/events', { headers: { cookie } });
    expect(second.status).toBe(503);
  });
});
