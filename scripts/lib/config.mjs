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

// The services. `port` is the dev port, `testPort` the one used by `npm test`, `benchPort` the
// one used by `npm run bench`, so a dev stack, a test run and a benchmark never collide.
// Add a participant here and everything follows.
export const SERVICES = [
  { name: 'order', port: 3000, testPort: 13000, benchPort: 23000 },
  { name: 'payment', port: 3001, testPort: 13001, benchPort: 23001 },
  { name: 'inventory', port: 3002, testPort: 13002, benchPort: 23002 },
];

export const dbRole = (svc) => `${svc}_svc`;
// Development-only credentials. Real deployments pass their own URLs through the environment.
export const dbPassword = (svc) => `${dbRole(svc)}_dev_password`;
export const amqpUser = (svc) => svc;
export const amqpPassword = (svc) => `${svc}_dev_password`;
/**
 * Least privilege on the broker, per service user: it may declare and use only its own queues
 * (`checkout.<svc>`, `.retry`, `.dead-letter`, see libs/messaging/src/topology.ts) and the shared
 * exchanges, read only its own queues, and publish on the checkout exchange only the routing
 * keys its role sends (libs/contracts ALLOWED_SENDERS): the coordinator prepares and decides,
 * a participant votes, acks and inquires, and only towards the coordinator.
 */
export const COORDINATOR = 'order';
export function brokerPermissions(svc) {
  const own = `checkout\\.${svc}(\\..*)?`;
  const exchanges = 'checkout|checkout\\.dlx|checkout\\.retry';
  const participants = SERVICES.map((s) => s.name).filter((n) => n !== COORDINATOR);
  const sends =
    svc === COORDINATOR
      ? `^(${participants.join('|')})\\.(prepare|decision)$`
      : `^${COORDINATOR}\\.(vote|ack|inquiry)$`;
  // checkout.retry: a service sends retries (`<svc>`) and re-drives (`<svc>.redrive`) to itself only.
  const toItself = `^${svc}(\\.redrive)?$`;
  return {
    configure: `^(${exchanges}|${own})$`,
    write: `^(${exchanges}|${own})$`,
    read: `^(${exchanges}|${own})$`,
    topics: [
      { exchange: 'checkout', write: sends, read: `^${svc}\\.` },
      { exchange: 'checkout.retry', write: toItself, read: toItself },
    ],
  };
}

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

// Per mode: database and vhost, NODE_ENV, which port of SERVICES, and whether the database and
// vhost are dropped and recreated on each run.
const PROFILES = {
  start: { db: 'shop', nodeEnv: null, portKey: 'port', recreate: false },
  test: { db: 'shop_test', nodeEnv: 'test', portKey: 'testPort', recreate: true },
  // Measured as it would run in production (NODE_ENV=production needs a non-default ADMIN_TOKEN).
  bench: { db: 'shop_bench', nodeEnv: 'production', portKey: 'benchPort', recreate: true },
};

/**
 * `start` uses the dev database/vhost; `test` and `bench` each use their own, rebuilt on every
 * run, so neither ever touches the demo data or the other's.
 */
export function profile(mode) {
  const p = PROFILES[mode] ?? PROFILES.start;
  return {
    mode,
    db: p.db,
    vhost: p.db,
    nodeEnv: p.nodeEnv ?? (process.env.NODE_ENV || 'development'),
    portOf: (svc) => svc[p.portKey],
    recreate: p.recreate,
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
