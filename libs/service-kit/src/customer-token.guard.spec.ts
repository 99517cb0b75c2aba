import { Controller, Get, INestApplication, Logger, Module } from '@nestjs/common';
import { createServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import request from 'supertest';
import { createServiceApp } from './bootstrap';
import { CustomerAuthConfig } from './auth.config';
import { BaseConfig } from './config';
import { CurrentCustomer, CustomerOnly, CustomerTokens } from './customer-token.guard';
import { DEVELOPMENT_JWT, signDevelopmentToken } from './development-token';
import developmentKey from './auth/development-jwt-key.json';
import { SERVICE_CONFIG } from './tokens';
import { INVALID_TOKENS } from '../../../test/support/tokens';

@Controller('mine')
class MineController {
  @Get()
  @CustomerOnly()
  get(@CurrentCustomer() customerId: string) {
    return { customerId };
  }
}

type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown> = {}) => ({
  sub: 'alice',
  iss: DEVELOPMENT_JWT.issuer,
  aud: DEVELOPMENT_JWT.audience,
  iat: now(),
  exp: now() + 600,
  ...extra,
});

/** A token signed with the development key, with this header (beside alg and kid) and claims. */
async function signedWith(header: Record<string, string>, extra: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims(extra))
    .setProtectedHeader({ ...header, alg: 'EdDSA', kid: DEVELOPMENT_JWT.publicJwk.kid })
    .sign(await importJWK(developmentKey.privateJwk, 'EdDSA'));
}

/** A real HTTP app with one customer route (no database or broker needed). */
async function appWith(env: Record<string, string> = {}): Promise<INestApplication> {
  const config = BaseConfig.extend(CustomerAuthConfig.shape).parse({
    PORT: '3000',
    DATABASE_URL: 'postgres://unused',
    AMQP_URL: 'amqp://unused',
    LOG_LEVEL: 'silent',
    ...env,
  });
  @Module({
    controllers: [MineController],
    providers: [{ provide: SERVICE_CONFIG, useValue: config }, CustomerTokens],
  })
  class MineModule {}
  const app = await createServiceApp(MineModule, { service: 'order', config });
  await app.init();
  return app;
}

describe('customer tokens, with the development key', () => {
  let app: INestApplication;
  const server = () => app.getHttpServer() as Server;
  const withToken = (token: string) => request(server()).get('/mine').set('authorization', `Bearer ${token}`);

  beforeAll(async () => (app = await appWith()));
  afterAll(() => app.close());

  it('let a valid token through, its sub as the customer', async () => {
    await withToken(await signDevelopmentToken('alice')).expect(200, { customerId: 'alice' });
    // The scheme is case-insensitive (RFC 7235).
    await request(server())
      .get('/mine')
      .set('authorization', `bearer ${await signDevelopmentToken('bob')}`)
      .expect(200, { customerId: 'bob' });
  });

  it('refuse a request without a token: 401, a Bearer challenge, a problem body', async () => {
    const response = await request(server()).get('/mine').expect(401);
    expect(response.headers['www-authenticate']).toBe('Bearer realm="shop"');
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ status: 401, title: 'Unauthorized' });
  });

  it.each([
    ['the admin token', 'dev-admin-token'],
    ['Basic auth', `Basic ${Buffer.from('alice:secret').toString('base64')}`],
    ['a token without the scheme', 'eyJhbGciOiJFZERTQSJ9.e30.AAAA'],
  ])('refuse %s in place of a customer token', async (_case, authorization) => {
    const value =
      authorization.startsWith('Basic') || authorization.startsWith('ey') ? authorization : `Bearer ${authorization}`;
    const response = await request(server()).get('/mine').set('authorization', value).expect(401);
    expect(response.headers['www-authenticate']).toMatch(/^Bearer realm="shop"/);
  });

  const invalid: Array<[string, () => Promise<string>, RegExp]> = [
    ...INVALID_TOKENS.map(({ name, make, why }): [string, () => Promise<string>, RegExp] => [
      name,
      () => make('alice'),
      why,
    ]),
    [
      'without exp',
      async () => {
        const withoutExp: Record<string, unknown> = claims();
        delete withoutExp.exp;
        return new SignJWT(withoutExp)
          .setProtectedHeader({ alg: 'EdDSA', kid: DEVELOPMENT_JWT.publicJwk.kid })
          .sign(await importJWK(developmentKey.privateJwk, 'EdDSA'));
      },
      /exp/,
    ],
    [
      'with a payload changed after signing',
      async () => {
        const [header, , signature] = (await signDevelopmentToken('alice')).split('.');
        return `${header}.${base64url(claims({ sub: 'bob' }))}.${signature}`;
      },
      /signature verification failed/,
    ],
    ['for a sub that is no customer id', () => signDevelopmentToken('alice bob/..'), /sub/],
    ['without a typ header', () => signedWith({}), /"typ" is not one of at\+jwt, jwt/],
    ['of another type (a logout token)', () => signedWith({ typ: 'logout+jwt' }), /"typ"/],
    [
      'valid until the year 33658 (exp = 1e12)',
      () => signDevelopmentToken('alice', { expiresAt: 1e12 }),
      /valid longer than 86400 s/,
    ],
    [
      'issued for 25 hours (iat 23 h ago, exp in 2 h)',
      () => signedWith({ typ: 'JWT' }, { iat: now() - 23 * 3600, exp: now() + 2 * 3600 }),
      /valid longer than 86400 s/,
    ],
    ['that is not a JWT at all', () => Promise.resolve('not-a-jwt'), /./],
  ];

  it.each(invalid)('refuse a token %s: 401 invalid_token, saying why', async (_case, token, why) => {
    const response = await withToken(await token()).expect(401);
    expect(response.headers['www-authenticate']).toMatch(
      /^Bearer realm="shop", error="invalid_token", error_description="[^"]*"$/,
    );
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.detail).toMatch(why);
  });

  it.each(['at+jwt', 'application/at+jwt', 'AT+JWT', 'JWT'])('let a token of typ %s through', async (typ) => {
    await withToken(await signedWith({ typ })).expect(200, { customerId: 'alice' });
  });

  it('refuse a token valid longer than JWT_MAX_LIFETIME_SECONDS, and a typ left out of JWT_TYPES', async () => {
    const strict = await appWith({ JWT_MAX_LIFETIME_SECONDS: '3600', JWT_TYPES: 'at+jwt' });
    const as = (token: string) =>
      request(strict.getHttpServer() as Server)
        .get('/mine')
        .set('authorization', `Bearer ${token}`);
    try {
      const twoHours = await signedWith({ typ: 'at+jwt' }, { exp: now() + 7200 });
      expect((await as(twoHours).expect(401)).body.detail).toMatch(/longer than 3600 s/);
      expect((await as(await signedWith({ typ: 'JWT' })).expect(401)).body.detail).toMatch(/"typ"/);
      await as(await signedWith({ typ: 'at+jwt' })).expect(200, { customerId: 'alice' });
    } finally {
      await strict.close();
    }
  });

  it('refuse an algorithm left out of JWT_ALGORITHMS', async () => {
    const strict = await appWith({ JWT_ALGORITHMS: 'ES256' });
    try {
      await request(strict.getHttpServer() as Server)
        .get('/mine')
        .set('authorization', `Bearer ${await signDevelopmentToken('alice')}`)
        .expect(401);
    } finally {
      await strict.close();
    }
  });
});

describe('customer tokens, with the development key trusted in production (TRUST_DEVELOPMENT_JWT_KEY)', () => {
  afterEach(() => jest.restoreAllMocks());

  it('say so loudly at boot, and accept development tokens', async () => {
    const warned = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const config = CustomerAuthConfig.parse({ TRUST_DEVELOPMENT_JWT_KEY: 'true' });
    const verifier = new CustomerTokens(config);
    expect(warned).toHaveBeenCalledWith(
      expect.stringMatching(/^TRUST_DEVELOPMENT_JWT_KEY=true: .*ANYONE CAN ACT AS ANY CUSTOMER/),
    );
    expect(await verifier.verify(await signDevelopmentToken('alice'))).toBe('alice');
    warned.mockClear();
    new CustomerTokens(CustomerAuthConfig.parse({}));
    expect(warned).not.toHaveBeenCalled();
  });
});

describe('customer tokens, remembered once verified', () => {
  const tokens = () => new CustomerTokens(CustomerAuthConfig.parse({ JWT_CLOCK_TOLERANCE_SECONDS: '0' }));
  afterEach(() => jest.useRealTimers());

  it('check a token’s signature once while its answer is remembered', async () => {
    const verifier = tokens();
    const check = jest.spyOn(verifier as unknown as { check: (token: string) => Promise<unknown> }, 'check');
    const token = await signDevelopmentToken('alice');
    expect([await verifier.verify(token), await verifier.verify(token)]).toEqual(['alice', 'alice']);
    expect(check).toHaveBeenCalledTimes(1);
    expect(await verifier.verify(await signDevelopmentToken('bob'))).toBe('bob');
    expect(check).toHaveBeenCalledTimes(2);
  });

  it('never answer for a remembered token past its exp, nor past REMEMBER_MS', async () => {
    const verifier = tokens();
    const check = jest.spyOn(verifier as unknown as { check: (token: string) => Promise<unknown> }, 'check');
    const expiring = await signDevelopmentToken('alice', { expiresAt: now() + 2 });
    const lasting = await signDevelopmentToken('bob');
    expect(await verifier.verify(expiring)).toBe('alice');
    expect(await verifier.verify(lasting)).toBe('bob');
    // Only the clock moves: the promises of the key checks run as usual.
    jest.useFakeTimers({ now: Date.now() + 3_000, doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask'] });
    await expect(verifier.verify(expiring)).rejects.toThrow('the token has expired');
    expect(await verifier.verify(lasting)).toBe('bob'); // still remembered
    jest.setSystemTime(Date.now() + CustomerTokens.REMEMBER_MS);
    expect(await verifier.verify(lasting)).toBe('bob'); // checked again
    expect(check).toHaveBeenCalledTimes(4);
  });
});

describe('customer tokens, with the identity provider’s key set (JWT_JWKS_URL)', () => {
  const ISSUER = 'https://id.example.com/';
  const AUDIENCE = 'https://shop.example.com/api';
  let jwks: HttpServer;
  let served: { keys: JWK[] };
  let app: INestApplication;
  let signer: SigningKey;
  const server = () => app.getHttpServer() as Server;

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256');
    signer = pair.privateKey;
    served = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }] };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(served));
    });
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const { port } = jwks.address() as AddressInfo;
    app = await appWith({
      JWT_JWKS_URL: `http://127.0.0.1:${port}/.well-known/jwks.json`,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    });
  });
  afterAll(async () => {
    await app.close();
    await new Promise((resolve) => jwks.close(resolve));
  });

  const idpToken = (kid: string, key: SigningKey = signer) =>
    new SignJWT({ sub: 'carol' })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime('5m')
      .sign(key);

  it('accept a token signed by a key of the set', async () => {
    await request(server())
      .get('/mine')
      .set('authorization', `Bearer ${await idpToken('idp-1')}`)
      .expect(200, { customerId: 'carol' });
  });

  it('refuse the development key once a key set is configured', async () => {
    const response = await request(server())
      .get('/mine')
      .set('authorization', `Bearer ${await signDevelopmentToken('carol', { issuer: ISSUER, audience: AUDIENCE })}`)
      .expect(401);
    expect(response.headers['www-authenticate']).toMatch(/error="invalid_token"/);
  });

  it('refuse a token whose key is not in the set', async () => {
    const other = await generateKeyPair('ES256');
    await request(server())
      .get('/mine')
      .set('authorization', `Bearer ${await idpToken('idp-2', other.privateKey)}`)
      .expect(401);
  });

  it('answer 503 + Retry-After, not 401, while the key set cannot be fetched', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const unreachable = await appWith({
      JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks`,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    });
    try {
      const response = await request(unreachable.getHttpServer() as Server)
        .get('/mine')
        .set('authorization', `Bearer ${await idpToken('idp-1')}`)
        .expect(503);
      expect(response.headers['retry-after']).toBe('1');
    } finally {
      await unreachable.close();
    }
  });

  it.each([
    ['answers 500', (res: ServerResponse) => res.writeHead(500).end('{"error":"internal"}')],
    ['answers 503', (res: ServerResponse) => res.writeHead(503, { 'retry-after': '30' }).end()],
    [
      'redirects (to a set that would verify)',
      (res: ServerResponse) => res.writeHead(302, { location: '/.well-known/jwks.json' }).end(),
    ],
    [
      'answers 200 with HTML, not JSON',
      (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>'),
    ],
    [
      'answers JSON that is no key set',
      (res: ServerResponse) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":"none"}'),
    ],
  ])(
    'answer 503 + Retry-After, a problem body without internals, when the key set endpoint %s',
    async (_case, answer) => {
      const failing = createServer((req, res) =>
        req.url === '/.well-known/jwks.json' ? res.end(JSON.stringify(served)) : answer(res),
      );
      await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
      const { port } = failing.address() as AddressInfo;
      const failingApp = await appWith({
        JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks`,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
      });
      try {
        const response = await request(failingApp.getHttpServer() as Server)
          .get('/mine')
          .set('authorization', `Bearer ${await idpToken('idp-1')}`);
        expect({ status: response.status, body: response.body as unknown }).toEqual({
          status: 503,
          body: {
            type: 'about:blank',
            title: 'Service Unavailable',
            status: 503,
            detail: 'the signing keys of customer tokens could not be fetched; retry',
          },
        });
        expect(response.headers['retry-after']).toBe('1');
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.headers['www-authenticate']).toBeUndefined();
      } finally {
        await failingApp.close();
        await new Promise((resolve) => failing.close(resolve));
      }
    },
  );
});
