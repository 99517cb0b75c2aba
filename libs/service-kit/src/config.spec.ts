import fs from 'node:fs';
import path from 'node:path';
import { SERVICE_NAMES } from '@shop/contracts';
import { CustomerAuthConfig } from './auth.config';
import { BaseConfig, ConfigError, loadConfig } from './config';

const required = {
  NODE_ENV: 'development',
  PORT: '3000',
  DATABASE_URL: 'postgres://u:p@h/db',
  AMQP_URL: 'amqp://u:p@h/v',
};

describe('observability settings', () => {
  it('default to info logs, the format chosen by the terminal, and no trace export', () => {
    expect(loadConfig(BaseConfig, required)).toMatchObject({ LOG_LEVEL: 'info' });
    expect(loadConfig(BaseConfig, required).LOG_FORMAT).toBeUndefined();
    expect(loadConfig(BaseConfig, required).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
  });

  it('take `NAME=` (as in an env file) as not set', () => {
    const config = loadConfig(BaseConfig, { ...required, LOG_FORMAT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' });
    expect(config.LOG_FORMAT).toBeUndefined();
    expect(config.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
  });

  it('accept valid values', () => {
    const config = loadConfig(BaseConfig, {
      ...required,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    });
    expect(config).toMatchObject({
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    });
  });

  it('refuse wrong ones at boot, naming each', () => {
    const load = () =>
      loadConfig(BaseConfig, {
        ...required,
        LOG_LEVEL: 'loud',
        LOG_FORMAT: 'xml',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
      });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/LOG_LEVEL: .*\n.*LOG_FORMAT: .*\n.*OTEL_EXPORTER_OTLP_ENDPOINT: an http\(s\):\/\/ URL/);
  });
});

describe('the broker setting', () => {
  it('takes one URL, or the nodes of a cluster comma-separated', () => {
    expect(loadConfig(BaseConfig, required).AMQP_URL).toEqual(['amqp://u:p@h/v']);
    const cluster = 'amqp://u:p@rabbit-1/v, amqp://u:p@rabbit-2/v,amqp://u:p@rabbit-3/v';
    expect(loadConfig(BaseConfig, { ...required, AMQP_URL: cluster }).AMQP_URL).toEqual([
      'amqp://u:p@rabbit-1/v',
      'amqp://u:p@rabbit-2/v',
      'amqp://u:p@rabbit-3/v',
    ]);
  });

  it('refuses anything that is not a list of amqp(s) URLs', () => {
    for (const AMQP_URL of ['', ',', 'http://h/v', 'amqp://u:p@h/v,rabbit-2'])
      expect(() => loadConfig(BaseConfig, { ...required, AMQP_URL })).toThrow(/AMQP_URL/);
  });
});

describe('the pool and the prefetch', () => {
  it('by default leave the handlers a connection beside the requests’ share and the background work', () => {
    const config = loadConfig(BaseConfig, required);
    expect(config.DB_POOL_SIZE - config.DB_REQUEST_CONNECTIONS - 3).toBeGreaterThanOrEqual(1);
    expect(config.AMQP_PREFETCH).toBeLessThanOrEqual(2 * config.MESSAGE_BATCH_SIZE);
  });

  it('refuse a pool that leaves the handlers nothing, or a prefetch beyond two batches, naming the settings', () => {
    const noneLeft = () => loadConfig(BaseConfig, { ...required, DB_POOL_SIZE: '8', DB_REQUEST_CONNECTIONS: '5' });
    expect(noneLeft).toThrow(ConfigError);
    expect(noneLeft).toThrow(/DB_REQUEST_CONNECTIONS: 5 leaves the message handlers no connection \(DB_POOL_SIZE 8/);
    const tooMuch = () => loadConfig(BaseConfig, { ...required, MESSAGE_BATCH_SIZE: '20', AMQP_PREFETCH: '41' });
    expect(tooMuch).toThrow(/AMQP_PREFETCH: 41 exceeds two batches \(2 × MESSAGE_BATCH_SIZE 20\)/);
    expect(loadConfig(BaseConfig, { ...required, MESSAGE_BATCH_SIZE: '20', AMQP_PREFETCH: '40' }).AMQP_PREFETCH).toBe(
      40,
    );
  });
});

describe('packing', () => {
  it('packs up to 50 messages by default; 1 sends each alone (readers older than packing); 0 or past 100 is refused', () => {
    expect(loadConfig(BaseConfig, required).MESSAGE_PACK_MAX).toBe(50);
    expect(loadConfig(BaseConfig, { ...required, MESSAGE_PACK_MAX: '1' }).MESSAGE_PACK_MAX).toBe(1);
    expect(() => loadConfig(BaseConfig, { ...required, MESSAGE_PACK_MAX: '0' })).toThrow(/MESSAGE_PACK_MAX/);
    expect(() => loadConfig(BaseConfig, { ...required, MESSAGE_PACK_MAX: '101' })).toThrow(/MESSAGE_PACK_MAX/);
  });
});

describe('production refuses development defaults', () => {
  const ROOT = path.resolve(__dirname, '..', '..', '..');
  const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');
  const own = {
    ...required,
    NODE_ENV: 'production',
    ADMIN_TOKEN: 'a-production-admin-token',
    DATABASE_URL: 'postgres://order_svc:Zr8vQ2pLx7@db.internal:5432/shop',
    AMQP_URL: 'amqp://order:K3m9TqW1zP@mq-1.internal:5672/shop,amqp://order:K3m9TqW1zP@mq-2.internal:5672/shop',
  };

  // Every default the repository ships: the env examples and the URLs the stack script builds
  // (scripts/lib/config.mjs). docker-compose.yml ships none (`${NAME:?…}`: test/compose-demo.spec.ts),
  // but an older copy's `${NAME:-default}` still counts.
  type Setting = 'ADMIN_TOKEN' | 'DATABASE_URL' | 'MIGRATION_DATABASE_URL' | 'AMQP_URL';
  const shipped: Array<[source: string, setting: Setting, value: string]> = [];
  for (const service of SERVICE_NAMES) {
    for (const line of read(`apps/${service}/.env.example`).split('\n')) {
      const [, setting, value] = /^(ADMIN_TOKEN|DATABASE_URL|MIGRATION_DATABASE_URL|AMQP_URL)=(.+)$/.exec(line) ?? [];
      if (setting) shipped.push([`apps/${service}/.env.example`, setting as 'ADMIN_TOKEN', value]);
    }
    shipped.push(
      [
        'scripts/lib/config.mjs',
        'DATABASE_URL',
        `postgres://${service}_svc:${service}_svc_dev_password@127.0.0.1/shop`,
      ],
      ['scripts/lib/config.mjs', 'AMQP_URL', `amqp://${service}:${service}_dev_password@127.0.0.1/shop`],
      [
        'scripts/lib/config.mjs',
        'MIGRATION_DATABASE_URL',
        `postgres://${service}_svc_migrator:${service}_svc_migrator_dev_password@127.0.0.1/shop`,
      ],
    );
  }
  for (const [, setting, value] of read('docker-compose.yml').matchAll(
    /^\s+(ADMIN_TOKEN|DATABASE_URL|MIGRATION_DATABASE_URL|AMQP_URL): \$\{[A-Z_]+:-([^}]+)\}/gm,
  )) {
    shipped.push(['docker-compose.yml', setting as 'ADMIN_TOKEN', value]);
  }
  shipped.push(
    ['the compose file of old', 'ADMIN_TOKEN', 'compose-dev-admin-token'],
    ['the compose file of old', 'DATABASE_URL', 'postgres://order_svc:order_svc_dev_password@postgres:5432/shop'],
    ['the compose file of old', 'AMQP_URL', 'amqp://order:order_dev_password@rabbitmq-1:5672/shop'],
  );
  shipped.push(
    ['the superuser (scripts/lib/config.mjs, docker-compose.yml)', 'DATABASE_URL', 'postgres://postgres:postgres@h/db'],
    ['the broker admin (scripts/lib/config.mjs)', 'AMQP_URL', 'amqp://admin:admin@h/shop'],
    ['RabbitMQ’s built-in user', 'AMQP_URL', 'amqp://guest:guest@h/'],
    ['the password as a parameter', 'DATABASE_URL', 'postgres://order_svc@h/db?password=order_svc_dev_password'],
  );

  it('finds the defaults it checks in the files that ship them', () => {
    const sources = new Set(shipped.map(([source]) => source));
    for (const file of ['apps/order/.env.example', 'scripts/lib/config.mjs']) {
      expect(sources).toContain(file);
      expect(
        shipped.filter(([source, setting]) => source === file && setting === 'MIGRATION_DATABASE_URL'),
      ).not.toEqual([]);
    }
    expect(sources).not.toContain('docker-compose.yml'); // it requires every secret now
  });

  it.each(shipped)('refuses %s’s %s in production, naming the setting', (_source, setting, value) => {
    const load = () => loadConfig(BaseConfig, { ...own, [setting]: value });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(new RegExp(`^  ${setting}: `, 'm'));
    // The message names the setting, never the secret.
    expect(() => load()).not.toThrow(/dev_password|:postgres@|:admin@/);
    expect(loadConfig(BaseConfig, { ...own, NODE_ENV: 'development', [setting]: value })).toBeDefined();
  });

  it('is not told by docker-compose.yml that its development defaults may run (a demo asks explicitly)', () => {
    const allowed = [...read('docker-compose.yml').matchAll(/ALLOW_DEVELOPMENT_SECRETS: *(.*)/g)].map((m) => m[1]);
    expect(allowed.length).toBeGreaterThan(0);
    for (const value of allowed) expect(value.trim()).toMatch(/^\$\{ALLOW_DEVELOPMENT_SECRETS:-false\}$/);
  });

  it('runs as production when NODE_ENV is unset: development is asked for, never assumed', () => {
    const unset: Record<string, string> = { ...own, ADMIN_TOKEN: 'dev-admin-token' };
    delete unset.NODE_ENV;
    expect(loadConfig(BaseConfig, { ...unset, ADMIN_TOKEN: 'a-production-admin-token' }).NODE_ENV).toBe('production');
    expect(() => loadConfig(BaseConfig, unset)).toThrow(/^ {2}ADMIN_TOKEN: must be set in production/m);
    // The harness asks for `test`, `npm start` for `development`: both still run on the development secrets.
    for (const NODE_ENV of ['test', 'development'])
      expect(loadConfig(BaseConfig, { ...unset, NODE_ENV })).toBeDefined();
  });

  it('accepts the deployment’s own secrets', () => {
    expect(loadConfig(BaseConfig, own).ADMIN_TOKEN).toEqual(['a-production-admin-token']);
  });

  it('refuses a development token even beside the deployment’s own (rotation list)', () => {
    expect(() => loadConfig(BaseConfig, { ...own, ADMIN_TOKEN: 'a-production-admin-token,dev-admin-token' })).toThrow(
      /ADMIN_TOKEN: must be set in production/,
    );
  });

  it('accepts the development secrets only when told the setup is a development one (ALLOW_DEVELOPMENT_SECRETS)', () => {
    const development = {
      ...own,
      ADMIN_TOKEN: 'compose-dev-admin-token',
      DATABASE_URL: 'postgres://order_svc:order_svc_dev_password@postgres:5432/shop',
      AMQP_URL: 'amqp://order:order_dev_password@rabbitmq:5672/shop',
    };
    expect(() => loadConfig(BaseConfig, development)).toThrow(/ADMIN_TOKEN: .*\n {2}DATABASE_URL: .*\n {2}AMQP_URL: /);
    expect(loadConfig(BaseConfig, { ...development, ALLOW_DEVELOPMENT_SECRETS: 'true' })).toBeDefined();
  });
});

describe('REQUIRE_TLS', () => {
  const tls = {
    ...required,
    REQUIRE_TLS: 'true',
    DATABASE_URL: 'postgres://u:p@db/shop?sslmode=verify-full',
    AMQP_URL: 'amqps://u:p@mq-1/shop,amqps://u:p@mq-2/shop',
  };

  it('accepts TLS connections (sslmode require, verify-ca or verify-full; amqps)', () => {
    for (const sslmode of ['require', 'verify-ca', 'verify-full']) {
      expect(
        loadConfig(BaseConfig, { ...tls, DATABASE_URL: `postgres://u:p@db/shop?sslmode=${sslmode}` }),
      ).toMatchObject({ REQUIRE_TLS: true });
    }
  });

  it.each([
    ['no sslmode', 'postgres://u:p@db/shop'],
    ['sslmode=prefer (falls back to plain)', 'postgres://u:p@db/shop?sslmode=prefer'],
    ['sslmode=disable', 'postgres://u:p@db/shop?sslmode=disable'],
  ])('refuses a database URL with %s', (_case, DATABASE_URL) => {
    expect(() => loadConfig(BaseConfig, { ...tls, DATABASE_URL })).toThrow(/^ {2}DATABASE_URL: REQUIRE_TLS is set/m);
  });

  it('refuses a plain migration URL too', () => {
    const load = () => loadConfig(BaseConfig, { ...tls, MIGRATION_DATABASE_URL: 'postgres://m:p@db/shop' });
    expect(load).toThrow(/^ {2}MIGRATION_DATABASE_URL: REQUIRE_TLS is set/m);
    expect(
      loadConfig(BaseConfig, { ...tls, MIGRATION_DATABASE_URL: 'postgres://m:p@db/shop?sslmode=verify-full' }),
    ).toBeDefined();
  });

  it('refuses any plain amqp:// node, naming its host', () => {
    const load = () => loadConfig(BaseConfig, { ...tls, AMQP_URL: 'amqps://u:p@mq-1/shop,amqp://u:p@mq-2/shop' });
    expect(load).toThrow(/^ {2}AMQP_URL: REQUIRE_TLS is set: amqps:\/\/ URLs only \(plain amqp:\/\/ to mq-2\)/m);
  });

  it('is off by default: plain connections are accepted', () => {
    expect(loadConfig(BaseConfig, required).REQUIRE_TLS).toBe(false);
  });
});

describe('customer token settings (CustomerAuthConfig)', () => {
  const WithCustomers = BaseConfig.extend(CustomerAuthConfig.shape);
  const production = {
    ...required,
    NODE_ENV: 'production',
    ADMIN_TOKEN: 'a-production-admin-token',
    JWT_JWKS_URL: 'https://id.example.com/.well-known/jwks.json',
    JWT_ISSUER: 'https://id.example.com/',
    JWT_AUDIENCE: 'https://shop.example.com/api',
  };

  it('default to the development key, issuer and audience, and EdDSA or ES256 only', () => {
    const config = loadConfig(WithCustomers, required);
    expect(config).toMatchObject({ JWT_ALGORITHMS: ['EdDSA', 'ES256'], JWT_CLOCK_TOLERANCE_SECONDS: 5 });
    expect(config.JWT_JWKS_URL ?? config.JWT_ISSUER ?? config.JWT_AUDIENCE).toBeUndefined();
  });

  it.each(['none', 'HS256', 'HS512', 'EdDSA,HS256'])('refuse the algorithm list %s', (JWT_ALGORITHMS) => {
    expect(() => loadConfig(WithCustomers, { ...required, JWT_ALGORITHMS })).toThrow(/^ {2}JWT_ALGORITHMS\.\d: /m);
  });

  it('are accepted in production when all given', () => {
    expect(loadConfig(WithCustomers, production).JWT_JWKS_URL).toBe(production.JWT_JWKS_URL);
  });

  it.each(['JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE'])(
    'refuse the development key in production: without %s the boot fails naming it',
    (setting) => {
      const load = () => loadConfig(WithCustomers, { ...production, [setting]: '' });
      expect(load).toThrow(new RegExp(`^ {2}${setting}: must be set in production`, 'm'));
      // ALLOW_DEVELOPMENT_SECRETS lets the development passwords connect, not the development key sign.
      expect(() =>
        loadConfig(WithCustomers, { ...production, [setting]: '', ALLOW_DEVELOPMENT_SECRETS: 'true' }),
      ).toThrow(new RegExp(`^ {2}${setting}: must be set in production`, 'm'));
      const trusting = { ...production, JWT_JWKS_URL: '', TRUST_DEVELOPMENT_JWT_KEY: 'true' };
      expect(
        loadConfig(WithCustomers, { ...trusting, [setting]: '', ALLOW_DEVELOPMENT_SECRETS: 'true' }),
      ).toBeDefined();
    },
  );

  it('trust the development key in production only when asked by name, and never beside a key set', () => {
    const trusting = { ...production, JWT_JWKS_URL: '', JWT_ISSUER: '', JWT_AUDIENCE: '' };
    expect(() => loadConfig(WithCustomers, trusting)).toThrow(/JWT_JWKS_URL: must be set in production/);
    expect(loadConfig(WithCustomers, { ...trusting, TRUST_DEVELOPMENT_JWT_KEY: 'true' })).toMatchObject({
      TRUST_DEVELOPMENT_JWT_KEY: true,
    });
    expect(() => loadConfig(WithCustomers, { ...production, TRUST_DEVELOPMENT_JWT_KEY: 'true' })).toThrow(
      /^ {2}TRUST_DEVELOPMENT_JWT_KEY: true beside JWT_JWKS_URL/m,
    );
  });

  it('are not asked of a service without customer routes', () => {
    expect(loadConfig(BaseConfig, { ...production, JWT_JWKS_URL: '' })).toBeDefined();
  });

  it('want an https:// key set URL in production: over http anyone on the path serves their own keys', () => {
    const load = (env: Record<string, string>) => () => loadConfig(WithCustomers, { ...production, ...env });
    expect(load({ JWT_JWKS_URL: 'http://id.internal/jwks.json' })).toThrow(
      /^ {2}JWT_JWKS_URL: an https:\/\/ URL in production$/m,
    );
    // Whatever else says the setup is a development one.
    expect(load({ JWT_JWKS_URL: 'http://id.internal/jwks.json', ALLOW_DEVELOPMENT_SECRETS: 'true' })).toThrow(
      /^ {2}JWT_JWKS_URL: /m,
    );
    expect(load({ JWT_JWKS_URL: 'https://id.internal/jwks.json' })()).toBeDefined();
    expect(load({ JWT_JWKS_URL: 'http://127.0.0.1:8080/jwks.json', NODE_ENV: 'test' })()).toBeDefined();
  });

  it('want an https:// key set URL with REQUIRE_TLS', () => {
    const tls = { DATABASE_URL: 'postgres://u:p@db/shop?sslmode=verify-full', AMQP_URL: 'amqps://u:p@mq/shop' };
    const load = (JWT_JWKS_URL: string) =>
      loadConfig(WithCustomers, { ...production, ...tls, REQUIRE_TLS: 'true', JWT_JWKS_URL });
    expect(() => load('http://id.internal/jwks.json')).toThrow(/^ {2}JWT_JWKS_URL: REQUIRE_TLS is set/m);
    expect(load('https://id.internal/jwks.json')).toBeDefined();
  });
});
