// Every file that repeats the list of services, as services.json makes it: `npm run generate`
// writes them, `npm run generate -- --check` (and test/generated-files.spec.ts) finds drift.
// Each is built whole from the list (no hand-kept part), so editing one by hand is drift.
import crypto from 'node:crypto';
import {
  MAX_CONNECTIONS_PER_SERVICE,
  COORDINATOR,
  PARTICIPANT_NAMES,
  RABBIT_ADMIN,
  SERVICES,
  BROKER_LIMITS,
  amqpUser,
  brokerPermissions,
  brokerTopology,
  dbMigratorRole,
  dbRole,
  managementPortOf,
} from './config.mjs';

const NOTICE = 'Generated from services.json by `npm run generate`; edit that instead.';
const names = SERVICES.map((s) => s.name);
/** A service's management port (health and metrics, never on its PORT), as the stack derives it: 3000 → 9100. */
const managementPort = (svc) => managementPortOf(SERVICES.find((s) => s.name === svc).port);
/** A service's own Postgres server in the compose profile `cluster`, published on 5433, 5434, … */
const perServicePgPort = (svc) => 5433 + names.indexOf(svc);
const RABBIT_NODES = [1, 2, 3];
const q = (s) => `'${s}'`;
const upper = (svc) => svc.toUpperCase();
/** A variable docker-compose.yml requires: the demo's come from `npm run compose:env` (.env). */
const required = (name) => `\${${name}:?run npm run compose:env}`;
/** Where the demo's broker definitions, with its users' password hashes, are written (gitignored). */
export const COMPOSE_SECRETS_DIR = '.compose';
const DEMO_DEFINITIONS = `./${COMPOSE_SECRETS_DIR}/rabbitmq-definitions.json`;

/** [{ path (from the repo root), text, parser (prettier's, or none) }] */
export function generatedFiles() {
  return [
    { path: 'libs/contracts/src/services.generated.ts', text: servicesTs(), parser: 'typescript' },
    { path: 'libs/contracts/src/participants/index.ts', text: participantsIndexTs(), parser: 'typescript' },
    { path: 'docker/rabbitmq/definitions.json', text: rabbitDefinitions(), parser: 'json' },
    { path: 'docker/observability/prometheus.yml', text: prometheus(), parser: 'yaml' },
    { path: 'docker-compose.yml', text: compose(), parser: 'yaml' },
    { path: 'nest-cli.json', text: nestCli(), parser: 'json' },
  ];
}

function servicesTs() {
  const list = (xs) => `[${xs.map(q).join(', ')}]`;
  return `// ${NOTICE}

/** Every service that takes part in a checkout, the coordinator first. */
export const SERVICE_NAMES = ${list(names)} as const;

/** The coordinator of the two-phase commit. */
export const COORDINATOR = ${q(COORDINATOR)} as const;

/** The participants of the two-phase commit: each has its contract module in participants/<name>.ts. */
export const PARTICIPANTS = ${list(PARTICIPANT_NAMES)} as const;
`;
}

function participantsIndexTs() {
  return `// ${NOTICE}
import type { ParticipantContract } from '../participant-contract';
import type { PARTICIPANTS } from '../services.generated';
${PARTICIPANT_NAMES.map((p) => `import * as ${p} from './${p}';`).join('\n')}

/** Each participant's own contract (its prepare request, its no-vote reasons), by participant. */
export const PARTICIPANT_CONTRACTS = { ${PARTICIPANT_NAMES.join(', ')} } as const satisfies Record<
  (typeof PARTICIPANTS)[number],
  ParticipantContract
>;
`;
}

/**
 * RabbitMQ wants password hashes (rabbit_password_hashing_sha256: base64(salt + sha256(salt +
 * password)), 4 bytes of salt, random).
 */
export function rabbitPasswordHash(password, salt = crypto.randomBytes(4)) {
  const digest = crypto
    .createHash('sha256')
    .update(Buffer.concat([salt, Buffer.from(password, 'utf8')]))
    .digest();
  return Buffer.concat([salt, digest]).toString('base64');
}

/**
 * vhost `shop`, its shared exchanges, the admin and the service users with least privilege.
 * `secrets` (scripts/compose-env.mjs, for the compose demo): their passwords. Without (the file
 * committed), no user has a password: no hash of a known password is ever shipped.
 */
export function rabbitDefinitions(secrets) {
  const vhost = 'shop';
  const user = (name, password, tags) => ({
    name,
    password_hash: password === undefined ? '' : rabbitPasswordHash(password),
    hashing_algorithm: 'rabbit_password_hashing_sha256',
    tags,
  });
  // The same rules as the local stack gives them (brokerPermissions).
  const grants = names.map((svc) => ({ user: amqpUser(svc), ...brokerPermissions(svc) }));
  const topology = brokerTopology(names);
  const userLimits = {
    'max-connections': BROKER_LIMITS.userMaxConnections,
    'max-channels': BROKER_LIMITS.userMaxChannels,
  };
  const definitions = {
    users: [
      user(RABBIT_ADMIN.user, secrets?.rabbitAdmin, ['administrator']),
      ...names.map((svc) => ({ ...user(amqpUser(svc), secrets?.amqp[svc], []), limits: userLimits })),
    ],
    vhosts: [{ name: vhost }],
    permissions: [
      { user: RABBIT_ADMIN.user, vhost, configure: '.*', write: '.*', read: '.*' },
      ...grants.map(({ user: name, configure, write, read }) => ({ user: name, vhost, configure, write, read })),
    ],
    topic_permissions: grants.flatMap(({ user: name, topics }) => topics.map((t) => ({ user: name, vhost, ...t }))),
    parameters: [
      {
        vhost,
        component: 'vhost-limits',
        name: 'limits',
        value: { 'max-connections': BROKER_LIMITS.vhostMaxConnections, 'max-queues': BROKER_LIMITS.vhostMaxQueues },
      },
    ],
    global_parameters: [],
    // The whole topology: no service user may declare anything (brokerPermissions), they check it at boot.
    policies: topology.policies.map((policy) => ({ vhost, ...policy })),
    queues: topology.queues.map(({ name, arguments: args }) => ({
      name,
      vhost,
      durable: true,
      auto_delete: false,
      arguments: args,
    })),
    exchanges: topology.exchanges.map(({ name, type }) => ({
      name,
      vhost,
      type,
      durable: true,
      auto_delete: false,
      internal: false,
      arguments: {},
    })),
    bindings: topology.bindings.map((binding) => ({
      ...binding,
      vhost,
      destination_type: 'queue',
      arguments: {},
    })),
  };
  return `${JSON.stringify(definitions, null, 2)}\n`;
}

/** `postgres://role:password@host:5432/shop` (the generated passwords are hex: no escaping). */
const pgUrl = (role, password, host) => `postgres://${role}:${password}@${host}:5432/shop`;
const amqpUrl = (svc, password, node) => `amqp://${amqpUser(svc)}:${password}@${node}:5672/shop`;

/** The compose demo's secrets, fresh: every password, the Erlang cookie, the admin token (hex). */
export function composeSecrets(random = () => crypto.randomBytes(18).toString('hex')) {
  return {
    postgres: random(),
    rabbitAdmin: random(),
    erlangCookie: random(),
    adminToken: random(),
    db: Object.fromEntries(names.map((svc) => [svc, { runtime: random(), migrator: random() }])),
    amqp: Object.fromEntries(names.map((svc) => [svc, random()])),
  };
}

/**
 * The compose demo's `.env` (written by scripts/compose-env.mjs, gitignored): its secrets, each
 * service's URLs with them, and with `cluster` the layout of the profile \`cluster\` (a 3-node
 * RabbitMQ cluster, a Postgres server per service). docker-compose.yml requires every one.
 */
export function composeEnv(secrets, { cluster = false } = {}) {
  const nodeNames = cluster ? RABBIT_NODES.map((i) => `rabbitmq-${i}`) : ['rabbitmq'];
  // Service i starts from node i (mod 3), then the next ones: the connections spread over the cluster.
  const nodesFor = (i) => nodeNames.map((_, k) => nodeNames[(i + k) % nodeNames.length]);
  const pgHost = (svc) => (cluster ? `postgres-${svc}` : 'postgres');
  const rolePasswords = names.flatMap((svc) => [
    `${dbRole(svc)}=${secrets.db[svc].runtime}`,
    `${dbMigratorRole(svc)}=${secrets.db[svc].migrator}`,
  ]);
  const lines = [
    '# Generated by `npm run compose:env` for the compose demo: fresh secrets, not committed (.env',
    '# is gitignored). Run it again to change them; then `docker compose down -v` (the volumes keep',
    '# the passwords they were first started with).',
    `POSTGRES_PASSWORD=${secrets.postgres}`,
    `# The management UI's user \`${RABBIT_ADMIN.user}\` (in .compose/rabbitmq-definitions.json, hashed).`,
    `RABBITMQ_ADMIN_PASSWORD=${secrets.rabbitAdmin}`,
    `RABBITMQ_ERLANG_COOKIE=${secrets.erlangCookie}`,
    `ADMIN_TOKEN=${secrets.adminToken}`,
    '# Each role and its password, for docker/postgres/init/01-shop.sql.',
    `SHOP_ROLE_PASSWORDS=${rolePasswords.join(' ')}`,
    "# The demo's customers hold tokens signed with the development key (npm run token): trusted",
    '# here only, and said so at boot.',
    'TRUST_DEVELOPMENT_JWT_KEY=true',
    ...names.flatMap((svc, i) => [
      `${upper(svc)}_DATABASE_URL=${pgUrl(dbRole(svc), secrets.db[svc].runtime, pgHost(svc))}`,
      `${upper(svc)}_MIGRATION_DATABASE_URL=${pgUrl(dbMigratorRole(svc), secrets.db[svc].migrator, pgHost(svc))}`,
      `${upper(svc)}_AMQP_URL=${nodesFor(i)
        .map((node) => amqpUrl(svc, secrets.amqp[svc], node))
        .join(',')}`,
    ]),
  ];
  if (cluster) {
    lines.push(
      '# The profile `cluster`: rabbitmq-1..3 and a Postgres server per service. The migrations and',
      '# services wait for `postgres` to be healthy: here that also means the per-service servers are.',
      `POSTGRES_READY_CHECK=${['pg_isready -U postgres -d shop', ...names.map((svc) => `pg_isready -q -h postgres-${svc} -U postgres -d shop`)].join(' && ')}`,
      'COMPOSE_PROFILES=cluster',
    );
  }
  return `${lines.join('\n')}\n`;
}

function prometheus() {
  return `# ${NOTICE}
# Scrapes every service's /metrics on its management port (MANAGEMENT_PORT in
# docker-compose.yml; compose service names; every replica answers on its own).
global:
  scrape_interval: 5s
scrape_configs:
  - job_name: checkout
    static_configs:
      - targets: [${names.map((svc) => q(`${svc}:${managementPort(svc)}`)).join(', ')}]
`;
}

function nestCli() {
  const libs = ['contracts', 'messaging', 'outbox', 'inbox', 'checkout-transport', 'service-kit', 'two-phase-commit'];
  const project = (type, root, entryFile) => ({ type, root, entryFile, sourceRoot: `${root}/src` });
  return `${JSON.stringify(
    {
      $schema: 'https://json.schemastore.org/nest-cli',
      collection: '@nestjs/schematics',
      monorepo: true,
      root: `apps/${COORDINATOR}`,
      sourceRoot: `apps/${COORDINATOR}/src`,
      compilerOptions: { builder: 'tsc', webpack: false, tsConfigPath: 'tsconfig.build.json', deleteOutDir: true },
      projects: Object.fromEntries([
        ...names.map((svc) => [svc, project('application', `apps/${svc}`, 'main')]),
        ...libs.map((lib) => [lib, project('library', `libs/${lib}`, 'index')]),
      ]),
    },
    null,
    2,
  )}\n`;
}

function compose() {
  const port = (svc) => SERVICES.find((s) => s.name === svc).port;
  const envBlock = (svc) => `x-env-${svc}: &env-${svc}
  SERVICE_NAME: ${svc}
  PORT: '${port(svc)}'
  # /health/* and /metrics: here only, never on PORT (published on 127.0.0.1 for the demo; probes
  # and Prometheus use it). /docs is on PORT.
  MANAGEMENT_PORT: '${managementPort(svc)}'
  ENABLE_DOCS: \${ENABLE_DOCS:-true} # the demo shows /docs; off by default in production
  NODE_ENV: production
  # Every secret below is required: \`npm run compose:env\` writes fresh ones to .env for the demo.
  ALLOW_DEVELOPMENT_SECRETS: \${ALLOW_DEVELOPMENT_SECRETS:-false}
  # And accept customer tokens signed with the development key (npm run token): the demo's only
  # identity provider. Its private half is public: never outside a demo.
  TRUST_DEVELOPMENT_JWT_KEY: \${TRUST_DEVELOPMENT_JWT_KEY:-false}
  ADMIN_TOKEN: ${required('ADMIN_TOKEN')}
  DATABASE_URL: ${required(`${upper(svc)}_DATABASE_URL`)}
  AMQP_URL: ${required(`${upper(svc)}_AMQP_URL`)}
  OTEL_EXPORTER_OTLP_ENDPOINT: \${OTEL_EXPORTER_OTLP_ENDPOINT:-} # traces go nowhere unless set
${svc === COORDINATOR ? consoleParticipants() : ''}`;
  // The console (on the coordinator's management port) asks each participant for its own records.
  const consoleParticipants = () =>
    `  CONSOLE_PARTICIPANT_URLS: ${PARTICIPANT_NAMES.map((p) => `${p}=http://${p}:${port(p)}`).join(',')}\n`;
  const migrate = (svc) => `  migrate-${svc}:
    <<: *app
    command: ['node', 'dist/apps/${svc}/src/migrate.js']
    environment:
      <<: *env-${svc}
      # The schema's owner: only the migrations hold it; the service runs as ${dbRole(svc)} (rows only).
      MIGRATION_DATABASE_URL: ${required(`${upper(svc)}_MIGRATION_DATABASE_URL`)}
    depends_on: *infra-ready
    restart: 'no'
`;
  const service = (svc) => `  ${svc}:
    <<: *app
    command: ['node', 'dist/apps/${svc}/src/main.js']
    environment: *env-${svc}
    ports: # on this machine only: the demo is no deployment
      - '127.0.0.1:${port(svc)}:${port(svc)}'
      - '127.0.0.1:${managementPort(svc)}:${managementPort(svc)}'
    restart: unless-stopped
    depends_on:
      <<: *infra-ready
      migrate-${svc}:
        condition: service_completed_successfully
    healthcheck:
      test:
        [
          'CMD',
          'node',
          '-e',
          "fetch('http://127.0.0.1:${managementPort(svc)}/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))",
        ]
      interval: 5s
      timeout: 3s
      retries: 20
      start_period: 10s
`;
  // The coordinator's second replica takes orders too, on its own published port (+100).
  const replica = (svc) => `  ${svc}-2:
    <<: *app
    profiles: [replicas]
    command: ['node', 'dist/apps/${svc}/src/main.js']
    environment: *env-${svc}
${svc === COORDINATOR ? `    ports:\n      - '127.0.0.1:${port(svc) + 100}:${port(svc)}'\n` : ''}    restart: unless-stopped
    depends_on:
      ${svc}:
        condition: service_healthy
`;
  const pgEnvironment = (svc) => `    environment:
      POSTGRES_USER: postgres
      POSTGRES_PASSWORD: ${required('POSTGRES_PASSWORD')}
      POSTGRES_DB: shop
      SHOP_SERVICES: ${svc}
      SHOP_ROLE_PASSWORDS: ${required('SHOP_ROLE_PASSWORDS')}
    volumes:
      - ./docker/postgres/init:/docker-entrypoint-initdb.d:ro
      - pgdata-${svc}:/var/lib/postgresql/data
    ports:
      - '127.0.0.1:${perServicePgPort(svc)}:5432'
`;
  const perServicePg = (svc, i) =>
    i === 0
      ? `  postgres-${svc}: &postgres-per-service
    image: postgres:15
    profiles: [cluster]
    command: ['postgres', '-c', 'max_connections=200', '-c', 'shared_buffers=128MB']
${pgEnvironment(svc)}    restart: unless-stopped
    healthcheck:
      test: ['CMD-SHELL', 'pg_isready -U postgres -d shop']
      interval: 2s
      timeout: 3s
      retries: 30
`
      : `  postgres-${svc}:
    <<: *postgres-per-service
${pgEnvironment(svc)}`;
  const rabbitNode = (i) => `    volumes:
      - ./docker/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-shop.conf:ro
      - ./docker/rabbitmq/cluster.conf:/etc/rabbitmq/conf.d/30-cluster.conf:ro
      - ${DEMO_DEFINITIONS}:/etc/rabbitmq/definitions.json:ro # users: npm run compose:env
      - rabbitdata-${i}:/var/lib/rabbitmq
    ports:
      - '127.0.0.1:${5672 + i}:5672'
      - '127.0.0.1:${15672 + i}:15672'
`;
  const [coordinator, ...participants] = names;
  return `# ${NOTICE}
# The shop as containers, on this machine only (every port is published on 127.0.0.1):
#   npm run compose:env && docker compose up --build   (or docker-compose up --build)
# ${[`${upper(coordinator[0])}${coordinator.slice(1)} http://127.0.0.1:${port(coordinator)}`, ...participants.map((svc) => `${svc} :${port(svc)}`)].join(', ')}, RabbitMQ UI http://127.0.0.1:15672.
# Their health and metrics: ${names.map((svc, i) => `${i === 0 ? `http://127.0.0.1:` : ':'}${managementPort(svc)} (${svc})`).join(', ')}.
#
# No secret has a default here: \`npm run compose:env\` (scripts/compose-env.mjs) writes fresh ones
# to .env (the passwords, the Erlang cookie, the admin token, the services' URLs) and the broker's
# users to ${DEMO_DEFINITIONS}, both gitignored; a missing one stops \`docker compose\` naming it.
#
# The same services on a 3-node RabbitMQ cluster and one Postgres server per service:
#   npm run compose:env -- --cluster && docker compose up --build
# (the .env then turns the profile \`cluster\` on and points the services at its servers).

x-app: &app
  build:
    context: .
    dockerfile: docker/Dockerfile
  image: shop-checkout:dev

x-infra-ready: &infra-ready
  postgres:
    condition: service_healthy
  rabbitmq:
    condition: service_healthy

${names.map(envBlock).join('\n')}
services:
  postgres:
    image: postgres:15
    command: ['postgres', '-c', 'max_connections=${MAX_CONNECTIONS_PER_SERVICE * names.length}', '-c', 'shared_buffers=256MB']
    environment:
      POSTGRES_USER: postgres
      POSTGRES_PASSWORD: ${required('POSTGRES_PASSWORD')}
      POSTGRES_DB: shop
      SHOP_SERVICES: ${names.join(' ')} # every service's role and schema (docker/postgres/init/01-shop.sql)
      SHOP_ROLE_PASSWORDS: ${required('SHOP_ROLE_PASSWORDS')}
    volumes:
      - ./docker/postgres/init:/docker-entrypoint-initdb.d:ro # roles + schemas, first start only
      - pgdata:/var/lib/postgresql/data
    ports:
      - '127.0.0.1:5432:5432'
    healthcheck:
      # POSTGRES_READY_CHECK (.env of \`npm run compose:env -- --cluster\`) also waits for the per-service servers, so the
      # migrations, which wait for this one, start only once their own server is up.
      test: ['CMD-SHELL', '\${POSTGRES_READY_CHECK:-pg_isready -U postgres -d shop}']
      interval: 2s
      timeout: 3s
      retries: 30

  rabbitmq:
    image: rabbitmq:4.1-management
    hostname: rabbitmq # the node name (and so its data folder) must not change between runs
    volumes:
      - ./docker/rabbitmq/rabbitmq.conf:/etc/rabbitmq/conf.d/20-shop.conf:ro
      - ${DEMO_DEFINITIONS}:/etc/rabbitmq/definitions.json:ro # users: npm run compose:env
      - rabbitdata:/var/lib/rabbitmq
    ports:
      - '127.0.0.1:5672:5672'
      - '127.0.0.1:15672:15672'
    healthcheck:
      test: ['CMD', 'rabbitmq-diagnostics', '-q', 'ping']
      interval: 5s
      timeout: 10s
      retries: 30
      start_period: 10s

  # Migrations are a step before the apps start (never run by each replica at boot).
${names.map(migrate).join('\n')}
${names.map(service).join('\n')}
  # A second replica of every service: \`docker compose --profile replicas up --build\`.
  # Replicas share their service's queue and schema; the protocol stays correct because every
  # sweeper and relay claims rows with FOR UPDATE SKIP LOCKED (see the fault suite's replica test).
${names.map(replica).join('\n')}
  # --- Profile \`cluster\`: a 3-node RabbitMQ cluster and one Postgres server per service -------
  #   npm run compose:env -- --cluster && docker compose up --build
  # That .env points each service's AMQP_URL at the three nodes (each service starting
  # from another node) and its DATABASE_URL at its own server. \`postgres\` and \`rabbitmq\` above
  # still start (a profile can only add services) but hold nothing for the services.
  rabbitmq-1: &rabbitmq-node
    image: rabbitmq:4.1-management
    profiles: [cluster]
    hostname: rabbitmq-1 # node rabbit@rabbitmq-1: its name (and data folder) must not change
    environment:
      # The nodes (and the CLI tools of the healthcheck) authenticate to each other with it.
      RABBITMQ_ERLANG_COOKIE: ${required('RABBITMQ_ERLANG_COOKIE')}
${rabbitNode(1)}    restart: unless-stopped
    healthcheck:
      test: ['CMD-SHELL', 'rabbitmq-diagnostics -q check_running && rabbitmq-diagnostics -q check_local_alarms']
      interval: 5s
      timeout: 15s
      retries: 30
      start_period: 20s
${RABBIT_NODES.slice(1)
  .map((i) => `\n  rabbitmq-${i}:\n    <<: *rabbitmq-node\n    hostname: rabbitmq-${i}\n${rabbitNode(i)}`)
  .join('')}
  # One server per service, holding only that service's role and schema (SHOP_SERVICES is read
  # by docker/postgres/init/01-shop.sql): no role on it can reach another service's data.
${names.map(perServicePg).join('\n')}
  # Metrics and traces: \`OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318 docker compose --profile observability up --build\`
  # Prometheus http://localhost:9090, Grafana http://localhost:3300 (dashboard "Checkout"), Jaeger http://localhost:16686.
  prometheus:
    image: prom/prometheus:v3.5.0
    profiles: [observability]
    volumes:
      - ./docker/observability/prometheus.yml:/etc/prometheus/prometheus.yml:ro
    ports:
      - '127.0.0.1:9090:9090'

  grafana:
    image: grafana/grafana:12.2.0
    profiles: [observability]
    environment:
      GF_AUTH_ANONYMOUS_ENABLED: 'true' # dev only: read-only anonymous access to the dashboards
      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer
    volumes:
      - ./docker/observability/grafana/provisioning:/etc/grafana/provisioning:ro
      - ./docker/observability/grafana/dashboards:/var/lib/grafana/dashboards:ro
    ports:
      - '127.0.0.1:3300:3000'
    depends_on:
      - prometheus

  jaeger:
    image: jaegertracing/all-in-one:1.72.0
    profiles: [observability]
    environment:
      COLLECTOR_OTLP_ENABLED: 'true'
    ports:
      - '127.0.0.1:16686:16686'
      - '127.0.0.1:4318:4318'

volumes:
  pgdata:
  rabbitdata:
${RABBIT_NODES.map((i) => `  rabbitdata-${i}:`).join('\n')}
${names.map((svc) => `  pgdata-${svc}:`).join('\n')}
`;
}
