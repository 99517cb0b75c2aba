import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVICE_NAMES } from '@shop/contracts';

/**
 * The compose demo ships no secret: docker-compose.yml requires every password, the Erlang cookie
 * and the admin token (`${NAME:?…}`), `npm run compose:env` writes fresh ones (gitignored), no
 * broker definitions carry the hash of a known password, and every port is published on
 * 127.0.0.1 only.
 */
const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** The passwords this repository ships or that come with the images: none may open the demo. */
const KNOWN_PASSWORDS = [
  'admin',
  'guest',
  'postgres',
  ...SERVICE_NAMES.flatMap((svc) => [
    `${svc}_dev_password`,
    `${svc}_svc_dev_password`,
    `${svc}_svc_migrator_dev_password`,
  ]),
];

/** Whether a RabbitMQ password hash (base64(salt + sha256(salt + password)), 4 bytes of salt) is of `password`. */
function hashIsOf(hash: string, password: string): boolean {
  const bytes = Buffer.from(hash, 'base64');
  const salt = bytes.subarray(0, 4);
  const digest = createHash('sha256')
    .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
    .digest();
  return bytes.length === 36 && digest.equals(bytes.subarray(4));
}

interface Definitions {
  users: Array<{ name: string; password_hash: string; tags: string[] }>;
}

/** Runs `npm run compose:env` into a scratch folder: its .env as a map, and its broker definitions. */
function composeEnv(...args: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-demo-'));
  try {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'compose-env.mjs'), `--out=${out}`, ...args], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const env = new Map(
      fs
        .readFileSync(path.join(out, '.env'), 'utf8')
        .split('\n')
        .filter((line) => /^[A-Z_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as const),
    );
    const definitionsFile = path.join(out, '.compose', 'rabbitmq-definitions.json');
    const modes = {
      env: fs.statSync(path.join(out, '.env')).mode & 0o777,
      folder: fs.statSync(path.dirname(definitionsFile)).mode & 0o777,
    };
    return { env, definitions: JSON.parse(fs.readFileSync(definitionsFile, 'utf8')) as Definitions, modes };
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const compose = read('docker-compose.yml');
/** Every `${NAME:?…}` docker-compose.yml requires. */
const requiredVariables = [...new Set([...compose.matchAll(/\$\{([A-Z_]+):\?/g)].map((m) => m[1]))];

describe('the compose demo', () => {
  it('requires every secret: no password, cookie, token or URL with one has a default', () => {
    const secrets = [
      ...compose.matchAll(
        /^\s+(POSTGRES_PASSWORD|RABBITMQ_ERLANG_COOKIE|ADMIN_TOKEN|DATABASE_URL|MIGRATION_DATABASE_URL|AMQP_URL|SHOP_ROLE_PASSWORDS): (.*)$/gm,
      ),
    ];
    expect(secrets.length).toBeGreaterThanOrEqual(4 + 3 * SERVICE_NAMES.length);
    for (const [, setting, value] of secrets)
      expect([setting, value]).toEqual([setting, expect.stringMatching(/^\$\{[A-Z_]+:\?/)]);
    for (const known of [
      'POSTGRES_PASSWORD: postgres',
      '_dev_password',
      'dev-only-cookie',
      'compose-dev-admin-token',
    ]) {
      expect(compose).not.toContain(known);
    }
    expect(requiredVariables).toEqual(
      expect.arrayContaining(['POSTGRES_PASSWORD', 'RABBITMQ_ERLANG_COOKIE', 'ADMIN_TOKEN', 'SHOP_ROLE_PASSWORDS']),
    );
  });

  it('publishes every port on 127.0.0.1 only', () => {
    const published = [...compose.matchAll(/^\s+ports:.*\n((?:\s+- .*\n)+)/gm)].flatMap((m) =>
      m[1]
        .trim()
        .split('\n')
        .map((line) => line.trim().replace(/^- /, '').replaceAll("'", '')),
    );
    expect(published.length).toBeGreaterThanOrEqual(2 * SERVICE_NAMES.length);
    for (const port of published) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('ships broker definitions without a password hash: none of a known password', () => {
    const shipped = JSON.parse(read('docker/rabbitmq/definitions.json')) as Definitions;
    expect(shipped.users.map((user) => user.name)).toEqual(expect.arrayContaining(['admin', ...SERVICE_NAMES]));
    for (const user of shipped.users) expect([user.name, user.password_hash]).toEqual([user.name, '']);
  });

  it('gets fresh secrets from `npm run compose:env`: every one the compose file requires, none known, none twice', () => {
    const first = composeEnv();
    const second = composeEnv('--cluster');
    for (const { env } of [first, second])
      for (const name of requiredVariables)
        expect([name, env.get(name)]).toEqual([name, expect.stringMatching(/.{12}/)]);
    expect(first.modes).toEqual({ env: 0o600, folder: 0o700 });
    expect(second.env.get('COMPOSE_PROFILES')).toBe('cluster');

    for (const { env, definitions } of [first, second]) {
      const urls = [...env.entries()].filter(([name]) => name.endsWith('_URL')).map(([, url]) => url);
      for (const user of definitions.users) {
        expect(KNOWN_PASSWORDS.filter((known) => hashIsOf(user.password_hash, known))).toEqual([]);
        // Each user's hash is of the password the demo gives it (the admin's in .env, a service's in its URL).
        const password =
          user.name === 'admin'
            ? env.get('RABBITMQ_ADMIN_PASSWORD')!
            : new URL(urls.find((url) => url.startsWith(`amqp://${user.name}:`))!.split(',')[0]).password;
        expect([user.name, hashIsOf(user.password_hash, password)]).toEqual([user.name, true]);
      }
      for (const value of env.values()) for (const known of KNOWN_PASSWORDS) expect(value).not.toContain(`:${known}@`);
    }
    const secretsOf = (env: Map<string, string>) =>
      ['POSTGRES_PASSWORD', 'RABBITMQ_ADMIN_PASSWORD', 'RABBITMQ_ERLANG_COOKIE', 'ADMIN_TOKEN'].map((name) =>
        env.get(name),
      );
    expect(secretsOf(first.env).filter((secret) => secretsOf(second.env).includes(secret))).toEqual([]);
  });
});
