// Command line of `npm run bench`. No npm dependencies: --help must work before `npm ci`.
import { COORDINATOR, DEFAULT_LAYOUT, SERVICES, layoutFrom, parseReplicas } from '../config.mjs';
import { StackError } from '../util.mjs';

// One URL option per service: --order-url, --payment-url, … (every service of config.mjs).
const URL_OPTIONS = SERVICES.map((s) => `${s.name}-url`);

export const USAGE = `usage: npm run bench -- [options]

Load (one of each pair; default --rate 100 --duration 20):
  --rate N             open loop: offer N orders per second, whatever the answers
  --concurrency N      closed loop: N clients, each sends its next order when the last answered
  --duration S         send for S seconds
  --count N            send N orders
  --mix M              spread (many SKUs and customers, few conflicts; default)
                       hot (everyone buys the same SKU)
                       declines (a share of orders fail payment: INSUFFICIENT_FUNDS)
  --decline-share F    share of declined orders with --mix declines (default 0.25)
  --warmup S           seconds of the same load before measuring, not counted (default 3)
  --seed N             seed of the order generator (default 1)

Overload (how the system behaves when offered more than it sustains):
  --overload           open loop at 2 × the sustainable rate for 30 s (--duration overrides);
                       shed orders (503) are counted, never retried. Not with --rate or
                       --concurrency: the rate follows from the sustainable rate
  --sustainable N      the sustainable rate (orders/s). With --overload: offer 2 × N instead of
                       calibrating first (calibration: after the warm-up, 64 clients in a closed
                       loop for 10 s; their steady decided rate is the sustainable rate).
                       Without it: the goodput is also shown as a share of N

Cold start (a flash sale right after a deploy; docs/performance.md, "Cold start"):
  --cold-burst         fresh services (just started, nothing ordered), then --count orders
                       (default 300) from --concurrency clients (default 100) at once, each
                       client sending its orders one after another, a 503 counted, never retried:
                       answers 202 / 503 / other, accepted answer p50 / p99, decision p50 / p99

Output:
  --out DIR            where results go (default bench-results/); one folder per run

Stack (default: its own database and vhost shop_bench, services on 23000-23002):
  --skip-build         use the existing dist/ (also SKIP_BUILD=1)
  --replicas N         N processes per service (order POSTs go round-robin); per service:
                       --replicas order=2 (the others 1)
  --env [svc:]K=V      extra setting for every service, or one (repeatable), e.g.
                       --env AMQP_PREFETCH=200 --env order:DB_POOL_SIZE=40
  --settle-timeout S   how long to wait for every order to be decided and acked (default 120)
  --broker-cluster     the services on the private three-node RabbitMQ cluster (the one of
                       \`npm start -- --broker-cluster\`; also BROKER_CLUSTER=1) instead of the
                       single node; Postgres unchanged. RabbitMQ CPU is the sum of the three nodes;
                       probes and the broker ceiling use node 1

Baseline (the machine's ceiling, measured after the run):
  --no-ceiling         skip it
  --ceiling-seconds S  length of each ceiling measurement (default 5)
  --pg-clients N       pgbench clients (default: the services' busy connections during the run)

Services already running elsewhere (every service's URL; no infra, build or services started):
  ${URL_OPTIONS.map((o) => `--${o} URL`).join(' ')}
  --admin-token T      their ADMIN_TOKEN (default: $ADMIN_TOKEN or the development token)
                       (customer tokens are signed with the development key, for JWT_ISSUER and
                       JWT_AUDIENCE as set here: the services must run without JWT_JWKS_URL)
  --pg-url URL         superuser URL of their database (decision times from the database,
                       cost figures, invariants); without it orders are polled over GET /orders/:id
  --rabbit-url URL     management API with credentials, e.g. http://admin:admin@host:15672
  --vhost NAME         their vhost (for broker figures)
  --amqp-url URL       administrator AMQP URL of that vhost (broker ceiling)

  --smoke              a few seconds at a low rate, mix declines, no warm-up and no ceiling;
                       checks the invariants only (never speed); exit code 1 if one is broken
                       or a POST is not answered 202 (a 503 included)
  --help
`;

const MIXES = ['spread', 'hot', 'declines'];
const FLAGS = ['smoke', 'help', 'no-ceiling', 'skip-build', 'broker-cluster', 'overload', 'cold-burst'];
// --overload: offer this many times the sustainable rate, for this long unless --duration says.
const OVERLOAD_FACTOR = 2;
const OVERLOAD_DURATION_S = 30;
// Calibration of the sustainable rate: enough clients to keep the services saturated.
const CALIBRATION = { mode: 'closed', concurrency: 64, durationS: 10 };
const WITH_VALUE = [
  'rate',
  'concurrency',
  'duration',
  'count',
  'mix',
  'decline-share',
  'warmup',
  'seed',
  'sustainable',
  'out',
  'replicas',
  'env',
  'settle-timeout',
  'ceiling-seconds',
  'pg-clients',
  ...URL_OPTIONS,
  'admin-token',
  'pg-url',
  'rabbit-url',
  'vhost',
  'amqp-url',
];

const positive = (name, raw, { integer = false } = {}) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n)))
    throw new StackError(`${name} must be a positive ${integer ? 'integer' : 'number'} (got ${raw})`);
  return n;
};

/** `--replicas`, checked now (a usage error before anything starts); kept as written for the report. */
const replicasOption = (raw) => {
  try {
    parseReplicas(raw);
  } catch (err) {
    throw new StackError(`--${err.message}`);
  }
  return String(raw);
};

/** Parses argv (without node and the script) into the options object the benchmark runs with. */
export function parseOptions(argv) {
  const raw = { env: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new StackError(`unexpected argument ${arg} (see --help)`);
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
    if (FLAGS.includes(name)) {
      raw[name] = true;
      continue;
    }
    if (!WITH_VALUE.includes(name)) throw new StackError(`unknown option --${name} (see --help)`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new StackError(`--${name} needs a value`);
    if (name === 'env') raw.env.push(value);
    else raw[name] = value;
  }
  if (raw.help) return { help: true };

  if (raw.rate && raw.concurrency) throw new StackError('give --rate or --concurrency, not both');
  if (raw.duration && raw.count) throw new StackError('give --duration or --count, not both');
  const smoke = Boolean(raw.smoke);
  if (raw.overload && (raw.rate || raw.concurrency))
    throw new StackError(
      `--overload offers ${OVERLOAD_FACTOR} × the sustainable rate: not with --rate or --concurrency (give --sustainable N to skip the calibration)`,
    );
  if (raw.overload && smoke) throw new StackError('--smoke runs at a low rate: not with --overload');
  if (raw['cold-burst'] && (raw.overload || smoke || raw.rate || raw.duration))
    throw new StackError(
      '--cold-burst sends --count orders from --concurrency clients: not with --overload, --smoke, --rate or --duration',
    );
  const mix = raw.mix ?? (smoke ? 'declines' : 'spread');
  if (!MIXES.includes(mix)) throw new StackError(`--mix must be one of ${MIXES.join(', ')} (got ${mix})`);
  const declineShare = raw['decline-share'] === undefined ? 0.25 : Number(raw['decline-share']);
  if (!(declineShare >= 0 && declineShare <= 1)) throw new StackError('--decline-share must be between 0 and 1');

  const sustainable = raw.sustainable
    ? { perSecond: positive('--sustainable', raw.sustainable), source: 'given' }
    : null;
  // --overload without --sustainable: the rate is null until the calibration has measured it.
  const load = raw.overload
    ? { mode: 'open', rate: sustainable ? OVERLOAD_FACTOR * sustainable.perSecond : null }
    : raw.concurrency
      ? { mode: 'closed', concurrency: positive('--concurrency', raw.concurrency, { integer: true }) }
      : { mode: 'open', rate: positive('--rate', raw.rate ?? (smoke ? 20 : 100)) };
  if (raw.count) load.count = positive('--count', raw.count, { integer: true });
  else load.durationS = positive('--duration', raw.duration ?? (smoke ? 3 : raw.overload ? OVERLOAD_DURATION_S : 20));

  const urls = Object.fromEntries(SERVICES.map((s) => [s.name, raw[`${s.name}-url`]]));
  const given = Object.values(urls).filter(Boolean).length;
  if (given > 0 && given < SERVICES.length)
    throw new StackError(`give every one of ${URL_OPTIONS.map((o) => `--${o}`).join(', ')}`);
  // Only the broker half of the distributed layout: the database figures need one Postgres.
  if (raw['broker-cluster'] && given)
    throw new StackError(`--broker-cluster starts our own stack: not with --${COORDINATOR}-url`);
  const brokerCluster = !given && layoutFrom(raw['broker-cluster'] ? ['--broker-cluster'] : []).brokerCluster;

  return {
    coldBurst: raw['cold-burst']
      ? { orders: load.count ?? 300, clients: raw.concurrency ? load.concurrency : 100 }
      : null,
    smoke,
    mix,
    declineShare,
    load,
    sustainable,
    overload: raw.overload ? { factor: OVERLOAD_FACTOR, calibration: sustainable ? null : { ...CALIBRATION } } : null,
    warmupS: raw.warmup === undefined ? (smoke ? 0 : 3) : Number(raw.warmup),
    seed: raw.seed === undefined ? 1 : Number(raw.seed),
    out: raw.out ?? 'bench-results',
    skipBuild: Boolean(raw['skip-build']) || process.env.SKIP_BUILD === '1',
    layout: { ...DEFAULT_LAYOUT, brokerCluster },
    replicas: replicasOption(raw.replicas ?? '1'),
    serviceEnv: parseServiceEnv(raw.env),
    settleTimeoutS: raw['settle-timeout'] ? positive('--settle-timeout', raw['settle-timeout']) : 120,
    ceiling: !raw['no-ceiling'] && !smoke,
    ceilingSeconds: raw['ceiling-seconds'] ? positive('--ceiling-seconds', raw['ceiling-seconds']) : 5,
    pgClients: raw['pg-clients'] ? positive('--pg-clients', raw['pg-clients'], { integer: true }) : null,
    external: given
      ? {
          urls,
          adminToken: raw['admin-token'] ?? process.env.ADMIN_TOKEN ?? 'dev-admin-token',
          pgUrl: raw['pg-url'] ?? null,
          rabbitUrl: raw['rabbit-url'] ?? null,
          vhost: raw.vhost ?? null,
          amqpUrl: raw['amqp-url'] ?? null,
        }
      : null,
  };
}

/** `--env K=V` (every service) and `--env order:K=V` (one service) → { all: {...}, order: {...} }. */
function parseServiceEnv(list) {
  const out = { all: {} };
  for (const item of list) {
    const m = item.match(/^(?:([a-z]+):)?([A-Z][A-Z0-9_]*)=(.*)$/);
    if (!m) throw new StackError(`--env expects [service:]NAME=value (got ${item})`);
    const [, svc = 'all', key, value] = m;
    (out[svc] ??= {})[key] = value;
  }
  return out;
}
