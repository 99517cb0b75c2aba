// Where things live and which names/ports the stack uses. One place to change them.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const LOCAL = path.join(ROOT, '.local'); // gitignored: data, logs, pid files

const envPort = (name, fallback) => {
  const raw = process.env[name];
  if (raw == null || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${name}=${raw} is not a valid port`);
  return n;
};

// The services. `port` is the dev port, `testPort` the one used by `npm test` so a running
// dev stack and a test run never collide. Add a participant here and everything follows.
export const SERVICES = [
  { name: 'order', port: 3000, testPort: 13000 },
  { name: 'payment', port: 3001, testPort: 13001 },
  { name: 'inventory', port: 3002, testPort: 13002 },
];

export const dbRole = (svc) => `${svc}_svc`;
// Development-only credentials. Real deployments pass their own URLs through the environment.
export const dbPassword = (svc) => `${dbRole(svc)}_dev_password`;
export const amqpUser = (svc) => svc;
export const amqpPassword = (svc) => `${svc}_dev_password`;
export const RABBIT_ADMIN = { user: 'admin', password: 'admin' }; // dev only
export const PG_SUPERUSER = { user: 'postgres', password: 'postgres' }; // dev only

export const PG = {
  port: envPort('PG_PORT', 25432),
  dir: path.join(LOCAL, 'postgres'),
  get data() {
    return path.join(this.dir, 'data');
  },
  get logFile() {
    return path.join(this.dir, 'postgres.log');
  },
};

export const RABBIT = {
  nodename: process.env.RABBITMQ_NODENAME || 'shop@localhost', // distinct per checkout that runs its own node
  amqpPort: envPort('AMQP_PORT', 25672),
  // The default dist port (AMQP port + 20000) would be > 65535 here, so pick our own.
  distPort: envPort('RABBITMQ_DIST_PORT', 25682),
  managementPort: envPort('RABBITMQ_MANAGEMENT_PORT', 15680),
  dir: path.join(LOCAL, 'rabbitmq'),
};

/** `start` uses the dev database/vhost, `test` a separate one that is rebuilt on every run. */
export function profile(mode) {
  const test = mode === 'test';
  return {
    mode,
    db: test ? 'shop_test' : 'shop',
    vhost: test ? 'shop_test' : 'shop',
    nodeEnv: test ? 'test' : process.env.NODE_ENV || 'development',
    portOf: (svc) => (test ? svc.testPort : svc.port),
    recreate: test, // drop and recreate database and vhost on each run
  };
}

/**
 * The environment one service process gets.
 * `pg` is { host, port }, `amqp` is { protocol, host, port } of the running infra.
 */
export function serviceEnv(svc, prof, pg, amqp) {
  return {
    SERVICE_NAME: svc.name,
    PORT: String(prof.portOf(svc)),
    NODE_ENV: prof.nodeEnv,
    DATABASE_URL: `postgres://${dbRole(svc.name)}:${encodeURIComponent(dbPassword(svc.name))}@${pg.host}:${pg.port}/${prof.db}`,
    AMQP_URL: `${amqp.protocol}//${amqpUser(svc.name)}:${encodeURIComponent(amqpPassword(svc.name))}@${amqp.host}:${amqp.port}/${encodeURIComponent(prof.vhost)}`,
  };
}

/** The variables a jest run needs (also printed by `up` for running jest by hand). */
export function testEnv(prof, pg, amqp) {
  const env = {
    TEST_PG_ADMIN_URL: pg.adminUrlFor(prof.db),
    TEST_AMQP_ADMIN_URL: amqp.adminUrlFor(prof.vhost),
    TEST_RABBITMQ_MANAGEMENT_URL: amqp.managementUrlWithCreds,
  };
  for (const svc of SERVICES) {
    const e = serviceEnv(svc, prof, pg, amqp);
    const key = svc.name.toUpperCase();
    env[`${key}_DATABASE_URL`] = e.DATABASE_URL;
    env[`${key}_AMQP_URL`] = e.AMQP_URL;
    env[`${key}_PORT`] = e.PORT;
  }
  return env;
}
