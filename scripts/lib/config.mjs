// Where things live and which names/ports the stack uses. One place to change them.
import fs from 'node:fs';
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

// The services, from services.json (the one list: a participant is added there, then
// `npm run generate` writes every file that repeats it). `port` is the dev port, `testPort` the one
// used by `npm test`, `benchPort` the one used by `npm run bench`, so a dev stack, a test run and a
// benchmark never collide. The coordinator comes first.
export const SERVICES_FILE = path.join(ROOT, 'services.json');
/** A service's name: it names its app folder, schema, roles, broker user and queues. */
export const SERVICE_NAME = /^[a-z][a-z0-9]*$/;

/**
 * A service's management port (health and metrics, never on its HTTP port) is its HTTP port plus
 * this, in every mode: 3000 serves on 9100, test port 13000 on 19100, bench port 23000 on 29100.
 * The service's own default is the same (MANAGEMENT_PORT_OFFSET in libs/service-kit/src/http.config.ts).
 */
export const MANAGEMENT_PORT_OFFSET = 6100;
export const managementPortOf = (port) => port + MANAGEMENT_PORT_OFFSET;
const HIGHEST_PORT = 65535 - 20000 - MANAGEMENT_PORT_OFFSET;

/** Reads and checks services.json: names `^[a-z][a-z0-9]*$`, each name and port used once. */
export function readServices(file = SERVICES_FILE) {
  const list = JSON.parse(fs.readFileSync(file, 'utf8'));
  const declared = [list.coordinator, ...(list.participants ?? [])];
  const problems = [];
  if (!list.coordinator) problems.push('no "coordinator"');
  if (!list.participants?.length) problems.push('no "participants"');
  for (const svc of declared.filter(Boolean)) {
    if (!SERVICE_NAME.test(svc.name ?? '')) problems.push(`name ${JSON.stringify(svc.name)} is not ${SERVICE_NAME}`);
    if (!Number.isInteger(svc.port) || svc.port < 1 || svc.port > HIGHEST_PORT)
      problems.push(
        `${svc.name}: port ${svc.port} is not an integer from 1 to ${HIGHEST_PORT} (its bench port is +20000, its management port +${MANAGEMENT_PORT_OFFSET} more)`,
      );
  }
  for (const key of ['name', 'port']) {
    const values = declared.filter(Boolean).map((svc) => svc[key]);
    const twice = values.filter((v, i) => values.indexOf(v) !== i);
    if (twice.length) problems.push(`${key} used more than once: ${[...new Set(twice)].join(', ')}`);
  }
  if (problems.length) throw new Error(`${path.relative(ROOT, file)}: ${problems.join('; ')}`);
  return {
    coordinator: list.coordinator.name,
    services: declared.map(({ name, port }) => ({ name, port, testPort: port + 10000, benchPort: port + 20000 })),
  };
}

const declared = readServices();
export const SERVICES = declared.services;
/** The coordinator's name; every other service in SERVICES is a participant. */
export const COORDINATOR = declared.coordinator;
export const PARTICIPANTS = SERVICES.filter((s) => s.name !== COORDINATOR);
export const PARTICIPANT_NAMES = PARTICIPANTS.map((s) => s.name);

export const dbRole = (svc) => `${svc}_svc`;
/** A Postgres server's connections per service it holds: its replicas' pools and the test suites'. */
export const MAX_CONNECTIONS_PER_SERVICE = 100;
/** The role that runs a service's migrations: it owns the schema; `dbRole` may only read and write its tables. */
export const dbMigratorRole = (svc) => `${dbRole(svc)}_migrator`;
// Development-only credentials. Real deployments pass their own URLs through the environment.
export const dbPassword = (svc) => `${dbRole(svc)}_dev_password`;
export const dbMigratorPassword = (svc) => `${dbMigratorRole(svc)}_dev_password`;
export const amqpUser = (svc) => svc;
export const amqpPassword = (svc) => `${svc}_dev_password`;
/**
 * The exchanges every service uses (libs/messaging/src/topology.ts): declared with the vhost
 * (provisionRabbit, the compose definitions), since no service user may configure them.
 */
export const SHARED_EXCHANGES = [
  { name: 'checkout', type: 'topic' },
  { name: 'checkout.retry', type: 'topic' },
];

/**
 * Least privilege on the broker, per service user: it may configure nothing (`^$`): the whole
 * checkout topology is provisioned (`brokerTopology`) and the service only checks it at boot, so
 * it can neither declare an exchange or queue that forwards or dead-letters into another
 * service's queue nor delete one. It writes to the shared exchanges and its own dead-letter
 * exchange, reads (consumes) only its own queue and dead-letter queue, and publishes on the
 * checkout exchange only the routing keys its role sends (libs/contracts ALLOWED_SENDERS): the
 * coordinator prepares and decides, a participant votes, acks and inquires, and only towards
 * the coordinator. (RabbitMQ checks topic permissions only on a client's own publishes: hence
 * no configure at all, and no exchange-to-exchange binding a service could add.)
 */
export function brokerPermissions(svc) {
  const shared = SHARED_EXCHANGES.map((e) => e.name.replaceAll('.', '\\.')).join('|');
  const sends =
    svc === COORDINATOR
      ? `^(${PARTICIPANT_NAMES.join('|')})\\.(prepare|decision)$`
      : `^${COORDINATOR}\\.(vote|ack|inquiry)$`;
  // checkout.retry: a service sends retries (`<svc>.retry.<delay>ms`, one retry queue per delay;
  // `<svc>` to the single retry queue of old) and re-drives (`<svc>.redrive`) to itself only.
  const toItself = `^${svc}(\\.redrive|\\.retry\\.[0-9]+ms)?$`;
  return {
    configure: '^$',
    write: `^(${shared}|checkout\\.${svc}\\.dlx)$`,
    read: `^checkout\\.${svc}(\\.dead-letter)?$`,
    topics: [
      { exchange: 'checkout', write: sends, read: `^${svc}\\.` },
      { exchange: 'checkout.retry', write: toItself, read: toItself },
    ],
  };
}

/**
 * The retry delays of every service (RETRY_DELAYS_MS in libs/checkout-transport/src/checkout-messaging.ts;
 * its transient delay, the longest, is one of them): one provisioned retry queue each.
 */
export const BROKER_RETRY_DELAYS_MS = [100, 500, 2_000, 5_000];
/** The broker-side redelivery limit of a service's queue (`deliveryLimit` in libs/messaging/src/topology.ts). */
const DELIVERY_LIMIT = 20;

/**
 * Bounds on the broker (docs/production.md#queue-limits says how to size them). A full queue
 * refuses new messages (`reject-publish`: the publisher gets a nack, and an outbox row stays to
 * be retried) instead of growing until the memory or disk alarm blocks every publisher.
 */
export const BROKER_LIMITS = {
  /** Messages in one checkout queue (a service's queue, retry or dead-letter queue). */
  queueMaxLength: envPositive('RABBITMQ_QUEUE_MAX_LENGTH', 100_000),
  /** Bytes of message bodies in one checkout queue. */
  queueMaxBytes: envPositive('RABBITMQ_QUEUE_MAX_BYTES', 256 * 1024 * 1024),
  /** The broker refuses a larger message (rabbitmq.conf `max_message_size`). */
  maxMessageBytes: 4 * 1024 * 1024,
  /** Connections and queues in the vhost (test suites declare their own queues in theirs). */
  vhostMaxConnections: 1_000,
  vhostMaxQueues: 2_000,
  /** Connections and channels of one service user (its replicas together). */
  userMaxConnections: 100,
  userMaxChannels: 1_000,
};

function envPositive(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer`);
  return value;
}

/**
 * The whole checkout topology, as libs/messaging/src/topology.ts names it (`topologyFor`):
 * per service its queue (bound `<svc>.*` on `checkout`, `<svc>.redrive` on `checkout.retry`),
 * its dead-letter exchange and queue, a retry queue per delay; and the length-limit policy on
 * every checkout queue. Provisioned by the stack (provisionRabbit) and the compose definitions.
 */
export function brokerTopology(services = SERVICES.map((s) => s.name)) {
  const exchanges = [...SHARED_EXCHANGES];
  const queues = [];
  const bindings = [];
  for (const svc of services) {
    const queue = `checkout.${svc}`;
    const dlx = `${queue}.dlx`;
    exchanges.push({ name: dlx, type: 'direct' });
    queues.push({
      name: queue,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': DELIVERY_LIMIT,
        'x-dead-letter-exchange': dlx,
        'x-dead-letter-routing-key': svc,
      },
    });
    bindings.push({ source: 'checkout', destination: queue, routing_key: `${svc}.*` });
    bindings.push({ source: 'checkout.retry', destination: queue, routing_key: `${svc}.redrive` });
    queues.push({ name: `${queue}.dead-letter`, arguments: { 'x-queue-type': 'quorum' } });
    bindings.push({ source: dlx, destination: `${queue}.dead-letter`, routing_key: svc });
    for (const delay of BROKER_RETRY_DELAYS_MS) {
      const retry = `${queue}.retry.${delay}ms`;
      queues.push({
        name: retry,
        arguments: {
          'x-queue-type': 'quorum',
          'x-message-ttl': delay,
          'x-dead-letter-exchange': 'checkout.retry',
          'x-dead-letter-routing-key': `${svc}.redrive`,
        },
      });
      bindings.push({ source: 'checkout.retry', destination: retry, routing_key: `${svc}.retry.${delay}ms` });
    }
  }
  const policies = [
    {
      name: 'checkout-queue-limits',
      pattern: '^checkout\\.',
      'apply-to': 'queues',
      priority: 0,
      definition: {
        'max-length': BROKER_LIMITS.queueMaxLength,
        'max-length-bytes': BROKER_LIMITS.queueMaxBytes,
        overflow: 'reject-publish',
      },
    },
  ];
  return { exchanges, queues, bindings, policies };
}

export const RABBIT_ADMIN = { user: 'admin', password: 'admin' }; // dev only
export const PG_SUPERUSER = { user: 'postgres', password: 'postgres' }; // dev only

/**
 * A private Postgres cluster: its folder (data + log) and port. `services` are the services it
 * holds a role and a schema for (all of them on the shared server, one on a per-service server).
 */
export function pgInstance({ name, dir, port, services = SERVICES }) {
  return {
    name,
    dir,
    port,
    services,
    get data() {
      return path.join(this.dir, 'data');
    },
    get logFile() {
      return path.join(this.dir, 'postgres.log');
    },
  };
}

// The default layout: one server, one schema + role per service.
export const PG = pgInstance({ name: 'Postgres', dir: path.join(LOCAL, 'postgres'), port: envPort('PG_PORT', 25432) });

// Database per service (`--db-per-service`): one private server per service, holding only its
// own role and schema: the services in SERVICES' order on 25441, 25442, …
const PG_PER_SERVICE_BASE = envPort('PG_PER_SERVICE_PORT_BASE', 25440);
export const PG_PER_SERVICE = SERVICES.map((svc, i) =>
  pgInstance({
    name: `Postgres (${svc.name})`,
    dir: path.join(LOCAL, `postgres-${svc.name}`),
    port: PG_PER_SERVICE_BASE + 1 + i,
    services: [svc],
  }),
);

/** A private RabbitMQ node: Erlang node name, ports, folder (`cookie`: a cookie file it shares). */
export function rabbitInstance({ nodename, amqpPort, distPort, managementPort, dir, index = null, cookie = null }) {
  return { nodename, amqpPort, distPort, managementPort, dir, index, cookie };
}

export const RABBIT = rabbitInstance({
  nodename: process.env.RABBITMQ_NODENAME || 'shop@localhost', // distinct per checkout that runs its own node
  amqpPort: envPort('AMQP_PORT', 25672),
  // The default dist port (AMQP port + 20000) would be > 65535 here, so pick our own.
  distPort: envPort('RABBITMQ_DIST_PORT', 25682),
  managementPort: envPort('RABBITMQ_MANAGEMENT_PORT', 15680),
  dir: path.join(LOCAL, 'rabbitmq'),
});

// Broker cluster (`--broker-cluster`): three nodes joined as one cluster, node i with AMQP
// 25700+i, Erlang distribution 25710+i, management 15700+i, and one shared Erlang cookie.
const CLUSTER_BASE = envPort('RABBITMQ_CLUSTER_PORT_BASE', 25700);
const CLUSTER_MGMT_BASE = envPort('RABBITMQ_CLUSTER_MANAGEMENT_PORT_BASE', 15700);
export const RABBIT_CLUSTER_DIR = path.join(LOCAL, 'rabbitmq-cluster');
export const RABBIT_CLUSTER = [1, 2, 3].map((i) =>
  rabbitInstance({
    index: i,
    nodename: `${process.env.RABBITMQ_CLUSTER_NODENAME_PREFIX || 'shop-cluster'}-${i}@localhost`,
    amqpPort: CLUSTER_BASE + i,
    distPort: CLUSTER_BASE + 10 + i,
    managementPort: CLUSTER_MGMT_BASE + i,
    dir: path.join(RABBIT_CLUSTER_DIR, `node-${i}`),
    cookie: path.join(RABBIT_CLUSTER_DIR, '.erlang.cookie'),
  }),
);

const truthy = (v) => v != null && v !== '' && v !== '0' && v !== 'false';

/**
 * Which servers run: the default (one Postgres with a schema per service, one RabbitMQ node) or the
 * distributed layout, in either half: `--broker-cluster` (BROKER_CLUSTER=1) and
 * `--db-per-service` (DB_PER_SERVICE=1).
 */
export function layoutFrom(args = [], env = process.env) {
  return {
    brokerCluster: args.includes('--broker-cluster') || truthy(env.BROKER_CLUSTER),
    dbPerService: args.includes('--db-per-service') || truthy(env.DB_PER_SERVICE),
  };
}
export const DEFAULT_LAYOUT = { brokerCluster: false, dbPerService: false };
export const DISTRIBUTED_LAYOUT = { brokerCluster: true, dbPerService: true };

// Per mode: database and vhost, NODE_ENV, which port of SERVICES, and whether the database and
// vhost are dropped and recreated on each run.
const PROFILES = {
  start: { db: 'shop', nodeEnv: null, portKey: 'port', recreate: false },
  test: { db: 'shop_test', nodeEnv: 'test', portKey: 'testPort', recreate: true },
  // Measured as it would run in production (NODE_ENV=production needs a non-default ADMIN_TOKEN).
  bench: { db: 'shop_bench', nodeEnv: 'production', portKey: 'benchPort', recreate: true },
};

/**
 * Added to every service's HTTP port (dev, test and bench alike), so a second checkout of the
 * project runs beside the first: SERVICE_PORT_OFFSET=100 with the infrastructure port variables
 * (docs/operations.md, "Ports").
 */
const SERVICE_PORT_OFFSET = (() => {
  const raw = process.env.SERVICE_PORT_OFFSET ?? '';
  const n = raw === '' ? 0 : Number(raw);
  const highest = Math.max(...declared.services.map((svc) => managementPortOf(svc.benchPort)));
  if (!Number.isInteger(n) || n < 0 || highest + n > 65535)
    throw new Error(
      `SERVICE_PORT_OFFSET=${raw}: an integer from 0 to ${65535 - highest} (the highest bench management port is ${highest})`,
    );
  return n;
})();

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
    portOf: (svc) => svc[p.portKey] + SERVICE_PORT_OFFSET,
    recreate: p.recreate,
  };
}

/** The Postgres handle that serves `svc`: its own server in the database-per-service layout. */
export const pgOf = (pg, svc) => pg.perService?.[svc.name] ?? pg;

/** `amqp://user:pw@host:port/vhost` for each broker node, comma-separated (a cluster has three). */
function amqpUrls(amqp, user, password, vhost) {
  const nodes = amqp.nodes ?? [amqp];
  return nodes
    .map(
      (n) =>
        `${n.protocol}//${encodeURIComponent(user)}:${encodeURIComponent(password)}@${n.host}:${n.port}/${encodeURIComponent(vhost)}`,
    )
    .join(',');
}

/**
 * The environment one service process gets.
 * `pg` is { host, port } (or { perService: { <svc>: { host, port } } }), `amqp` is
 * { protocol, host, port } (or { nodes: [...] }) of the running infra.
 */
export function serviceEnv(svc, prof, pg, amqp) {
  return {
    SERVICE_NAME: svc.name,
    PORT: String(prof.portOf(svc)),
    MANAGEMENT_PORT: String(managementPortOf(prof.portOf(svc))),
    NODE_ENV: prof.nodeEnv,
    DATABASE_URL: databaseUrl(svc, prof, pg, dbRole(svc.name), dbPassword(svc.name)),
    AMQP_URL: amqpUrls(amqp, amqpUser(svc.name), amqpPassword(svc.name), prof.vhost),
    // These URLs carry the development passwords: a production build (the benchmark) may use them.
    ALLOW_DEVELOPMENT_SECRETS: 'true',
    // The benchmark's customers hold development tokens (scripts/lib/tokens.mjs): a production
    // build must be told by name to trust that key (it says so at boot).
    ...(prof.nodeEnv === 'production' ? { TRUST_DEVELOPMENT_JWT_KEY: 'true' } : {}),
    // The console (on the coordinator's management port) asks each participant for its own records.
    ...(svc.name === COORDINATOR
      ? { CONSOLE_PARTICIPANT_URLS: PARTICIPANTS.map((p) => `${p.name}=http://127.0.0.1:${prof.portOf(p)}`).join(',') }
      : {}),
  };
}

function databaseUrl(svc, prof, pg, role, password) {
  const own = pgOf(pg, svc);
  return `postgres://${role}:${encodeURIComponent(password)}@${own.host}:${own.port}/${prof.db}`;
}

/** The environment of one service's migrations: the service's, and the migration role's URL. */
export function migrationEnv(svc, prof, pg, amqp) {
  return {
    ...serviceEnv(svc, prof, pg, amqp),
    MIGRATION_DATABASE_URL: databaseUrl(svc, prof, pg, dbMigratorRole(svc.name), dbMigratorPassword(svc.name)),
  };
}

/** The database, on the coordinator's server, that sees every service's schema (postgres_fdw). */
export const federatedDb = (db) => `${db}_federated`;

/** The variables a jest run needs (also printed by `up` for running jest by hand). */
export function testEnv(prof, pg, amqp) {
  const env = {
    // One superuser connection that sees every schema: on the shared server, the database
    // itself; with a database per service, the federation of them all (see federate()).
    TEST_PG_ADMIN_URL: pg.perService
      ? pgOf(pg, SERVICES[0]).adminUrlFor(federatedDb(prof.db))
      : pg.adminUrlFor(prof.db),
    TEST_AMQP_ADMIN_URL: amqp.adminUrlFor(prof.vhost),
    TEST_RABBITMQ_MANAGEMENT_URL: amqp.managementUrlWithCreds,
  };
  for (const svc of SERVICES) {
    const e = migrationEnv(svc, prof, pg, amqp);
    const key = svc.name.toUpperCase();
    env[`${key}_DATABASE_URL`] = e.DATABASE_URL;
    env[`${key}_MIGRATION_DATABASE_URL`] = e.MIGRATION_DATABASE_URL;
    env[`${key}_AMQP_URL`] = e.AMQP_URL;
    env[`${key}_PORT`] = e.PORT;
    if (pg.perService) env[`TEST_${key}_PG_ADMIN_URL`] = pgOf(pg, svc).adminUrlFor(prof.db);
  }
  if (amqp.nodes)
    env.TEST_RABBITMQ_NODES = JSON.stringify(
      amqp.nodes.map((n) => ({
        index: n.index,
        name: n.nodename,
        amqpPort: n.port,
        managementUrl: n.managementUrlWithCreds,
      })),
    );
  return env;
}
