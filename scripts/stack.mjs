#!/usr/bin/env node
// The dev/test stack in one command, with no dependencies (it runs before `npm install`).
//
//   node scripts/stack.mjs start [layout]  infra + build + migrate + every service (Ctrl-C stops)
//   node scripts/stack.mjs test [args]     infra + build + migrate on shop_test, then jest [args]
//   node scripts/stack.mjs up [layout]     infra only (stays running), prints the env for jest
//   node scripts/stack.mjs down            stops every private Postgres/RabbitMQ (by pid file)
//   node scripts/stack.mjs env [layout]    prints the test env as shell exports
//   node scripts/stack.mjs restart postgres|postgres-<svc>|rabbitmq   restarts a private server (fault tests)
//   node scripts/stack.mjs rabbitmq-node stop|kill|start <i>   stops (SIGTERM), kills or starts node i of the broker cluster
//   node scripts/stack.mjs participant-trial   a copy of the project with a participant generated, its checkout e2e run
//
// Infra: a private Postgres (.local/postgres, port 25432) and RabbitMQ node (.local/rabbitmq,
// AMQP 25672, management 15680), or your own servers via PG_ADMIN_URL / AMQP_ADMIN_URL +
// RABBITMQ_MANAGEMENT_URL. [layout] is `--db-per-service` (one private Postgres per service,
// .local/postgres-<svc>, ports 25441, 25442, …) and/or `--broker-cluster` (three RabbitMQ nodes
// joined as one cluster, .local/rabbitmq-cluster/node-<i>, AMQP 25701-25703, management
// 15701-15703); or DB_PER_SERVICE=1 / BROKER_CLUSTER=1. Servers this invocation started are
// stopped when it ends (`start`, `test`); servers that were already running are reused and left
// alone.
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import {
  DEFAULT_LAYOUT,
  DISTRIBUTED_LAYOUT,
  LOCAL,
  MANAGEMENT_PORT_OFFSET,
  PG,
  PG_PER_SERVICE,
  RABBIT,
  RABBIT_CLUSTER,
  ROOT,
  SERVICES,
  layoutFrom,
  managementPortOf,
  parseReplicas,
  pgOf,
  profile,
  testEnv,
} from './lib/config.mjs';
import { ensurePostgres, federate, localPostgresHandle, stopLocalPostgres } from './lib/postgres.mjs';
import {
  clusterHandle,
  ensureRabbit,
  localRabbitHandle,
  rabbitRunning,
  stopLocalRabbit,
  waitClusterRunning,
} from './lib/rabbitmq.mjs';
import { build, ensureDependencies, ensureInfra, migrate, stopStarted } from './lib/project.mjs';
import { runParticipantTrial } from './lib/participant-trial.mjs';
import { seed } from './lib/seed.mjs';
import { Supervisor } from './lib/supervisor.mjs';
import { onSupportedRuntime } from './lib/runtime.mjs';
import { StackError, activeChildren, color, fail, log, portFree } from './lib/util.mjs';

const [command, ...args] = process.argv.slice(2);
const started = []; // infra handles, so that every exit path can stop what we started
let interrupted = false;

/** Forward Ctrl-C/SIGTERM to whatever runs (npm ci, build, migrations) and mark the run aborted. */
function installInterruptHandler() {
  const onSignal = (sig) => {
    if (interrupted) return;
    interrupted = true;
    console.error(color('yellow', `\n[stack] ${sig}: cleaning up…`));
    for (const child of activeChildren) child.kill(sig);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

const abortIfInterrupted = () => {
  if (interrupted) throw new StackError('interrupted');
};

async function prepare(prof, { doBuild, layout = DEFAULT_LAYOUT, onStarted = () => {} }) {
  await ensureDependencies();
  abortIfInterrupted();
  const { pg, amqp } = await ensureInfra(
    [prof],
    (h) => {
      started.push(h);
      onStarted(h);
    },
    layout,
  );
  abortIfInterrupted();
  if (doBuild) await build();
  abortIfInterrupted();
  await migrate(prof, pg, amqp);
  abortIfInterrupted();
  // With a database per service, tests still see all schemas through one federated database.
  if (pg.perService && prof.mode === 'test') await federate(pg, prof.db);
  return { pg, amqp };
}

const layoutName = (l) =>
  [l.dbPerService && 'database per service', l.brokerCluster && 'broker cluster'].filter(Boolean).join(' + ') ||
  'one Postgres, one RabbitMQ node';

function exportLines(env) {
  return Object.entries(env)
    .map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`)
    .join('\n');
}

/**
 * Which Jest runs `test` makes. The fault-injection suites restart the servers every suite
 * uses, so they run on their own, in band, after the rest; then the checkout suite and the
 * cluster suites (test/cluster) run against the distributed layout (a Postgres per service, a
 * three-node broker cluster); the console's browser suite (test/browser) runs in band in a phase of
 * its own after the main one. `npm test` runs the four phases, the benchmark's smoke run, and
 * last the participant trial (scripts/lib/participant-trial.mjs); a path argument runs only what it names (`npm test -- test/faults` just the faults,
 * `npm test -- test/cluster` just the cluster phase, `npm test -- test/browser` the browser one; JEST_CLUSTER=1 runs any paths in it).
 */
function testPhases() {
  const { paths, flags } = splitJestArgs(args);
  const faults = { name: 'fault injection', args: ['--runInBand', ...args], env: { JEST_FAULTS: '1' } };
  // --passWithNoTests: test/cluster may hold no spec yet.
  const cluster = {
    name: 'cluster',
    layout: DISTRIBUTED_LAYOUT,
    args: ['--runInBand', '--passWithNoTests', ...args],
    env: { JEST_CLUSTER: '1' },
  };
  if (paths.length && (process.env.JEST_CLUSTER === '1' || paths.every((p) => p.includes('cluster')))) return [cluster];
  if (paths.length && paths.every((p) => p.includes('faults'))) return [faults];
  // The console in headless Chromium (test/browser): in band, alone, since it stops a participant.
  const browser = { name: 'browser', args: ['--runInBand', ...args], env: { JEST_BROWSER: '1' } };
  if (paths.length && paths.every((p) => p.includes('browser'))) return [browser];
  const suite = { name: 'suite', args, env: {} };
  if (paths.length) return [suite];
  return [
    suite,
    { ...browser, args: ['--runInBand', ...flags, 'test/browser'] },
    { ...faults, args: ['--runInBand', ...args, 'test/faults'] },
    { ...cluster, args: ['--runInBand', ...flags, 'test/e2e/checkout.e2e-spec.ts', 'test/cluster'] },
  ];
}

// Jest options whose value is the next argument (`-t 'RabbitMQ restarted'`): the value is not a path.
const JEST_OPTIONS_WITH_VALUE = new Set([
  '-t',
  '--testNamePattern',
  '--testPathPattern',
  '--testPathPatterns',
  '--testPathIgnorePatterns',
  '-c',
  '--config',
  '-w',
  '--maxWorkers',
  '--testTimeout',
  '--seed',
  '--shard',
  '--reporters',
  '--selectProjects',
]);

/** Jest's arguments as the paths they name and the options (with their values), in order. */
function splitJestArgs(jestArgs) {
  const paths = [];
  const flags = [];
  for (let i = 0; i < jestArgs.length; i++) {
    const arg = jestArgs[i];
    if (!arg.startsWith('-')) paths.push(arg);
    else if (JEST_OPTIONS_WITH_VALUE.has(arg) && i + 1 < jestArgs.length) flags.push(arg, jestArgs[++i]);
    else flags.push(arg);
  }
  return { paths, flags };
}

async function cmdTest() {
  const prof = profile('test');
  const removeHandler = installInterruptHandler();
  let code = 0;
  const totals = { passed: 0, failed: 0, skipped: 0, missing: false };
  let doBuild = process.env.SKIP_BUILD !== '1';
  if (!doBuild) log('SKIP_BUILD=1: using the existing dist/');
  try {
    for (const phase of testPhases()) {
      // Each phase's layout is brought up (and migrated) before it; the distributed layout is
      // stopped again after its phase (the benchmark's smoke run needs the CPU).
      const layout = phase.layout ?? DEFAULT_LAYOUT;
      const mine = [];
      if (layout !== DEFAULT_LAYOUT) log(`${phase.name}: ${layoutName(layout)}`);
      const { pg, amqp } = await prepare(prof, { doBuild, layout, onStarted: (h) => mine.push(h) });
      doBuild = false;
      removeHandler(); // jest handles Ctrl-C itself; we only wait for it
      process.on('SIGINT', () => {});
      process.on('SIGTERM', () => {});
      const results = path.join(LOCAL, 'jest-results.json');
      fs.rmSync(results, { force: true });
      const jestArgs = [...phase.args, '--json', `--outputFile=${results}`];
      log(`${phase.name}: jest ${jestArgs.join(' ')}`);
      const jest = spawn(path.join(ROOT, 'node_modules', '.bin', 'jest'), jestArgs, {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, NODE_ENV: 'test', ...testEnv(prof, pg, amqp), ...phase.env },
      });
      const phaseCode = await new Promise((resolve) => {
        jest.on('error', (err) => {
          console.error(`could not run jest: ${err.message}`);
          resolve(1);
        });
        jest.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
      });
      if (phaseCode !== 0) code = phaseCode;
      addResults(totals, results, phaseCode);
      if (layout !== DEFAULT_LAYOUT) await stopStarted(mine);
    }
    if (!args.some((a) => !a.startsWith('-'))) {
      // The benchmark's smoke run: a few seconds of load on its own database, invariants only.
      log('benchmark smoke run: node scripts/bench.mjs --smoke --skip-build');
      const smoke = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench.mjs'), '--smoke', '--skip-build'], {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      const smokeCode = await new Promise((resolve) => smoke.on('close', (c) => resolve(c ?? 1)));
      if (smokeCode === 0) totals.passed += 1;
      else {
        totals.failed += 1;
        code = code || smokeCode;
      }
    }
  } catch (err) {
    report(err);
    code = 1;
  } finally {
    await stopStarted(started);
  }
  if (!args.some((a) => !a.startsWith('-')) && !interrupted) {
    // Last, once this run's servers are stopped: the copy runs its own.
    try {
      const trialCode = await runParticipantTrial({ readResults: (file, c) => addResults(totals, file, c) });
      code = code || trialCode;
    } catch (err) {
      report(err);
      code = 1;
    }
  }
  printSummary(totals);
  process.exit(code);
}

function addResults(totals, file, code) {
  try {
    const r = JSON.parse(fs.readFileSync(file, 'utf8'));
    totals.passed += r.numPassedTests;
    totals.failed += r.numFailedTests;
    totals.skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  } catch {
    console.log(`jest exited with code ${code} before writing ${path.relative(ROOT, file)}`);
    totals.missing = true;
  }
}

/** The plain closing line CI reads: `tests: N passed, N failed[, N skipped]`. */
function printSummary({ passed, failed, skipped, missing }) {
  const incomplete = missing ? ' (a jest run wrote no results)' : '';
  console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}${incomplete}`);
}

/** `npm start -- --replicas=2` or `REPLICAS=2 npm start`: N processes per service (`order=2`: per service). */
function replicaCount() {
  const flag = args
    .find((a) => a.startsWith('--replicas='))
    ?.split('=')
    .slice(1)
    .join('=');
  try {
    return parseReplicas(flag ?? process.env.REPLICAS ?? '1');
  } catch (err) {
    throw new StackError(err.message);
  }
}

async function cmdStart() {
  const prof = profile('start');
  const replicas = replicaCount();
  const layout = layoutFrom(args);
  const removeHandler = installInterruptHandler();
  let supervisor;
  let exiting = false;
  const shutdown = async (code) => {
    if (exiting) return;
    exiting = true;
    if (supervisor) await supervisor.stop();
    await stopStarted(started);
    process.exit(code);
  };
  try {
    const { pg, amqp } = await prepare(prof, { doBuild: true, layout });
    supervisor = new Supervisor(prof, pg, amqp, { replicas, onGiveUp: () => shutdown(1) });
    removeHandler();
    let signals = 0;
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
      process.on(sig, () => {
        if (++signals > 1) {
          // A second Ctrl-C while shutting down: don't wait for graceful exits any more.
          for (const row of supervisor.table) row.child?.kill('SIGKILL');
          return;
        }
        console.error(color('yellow', `\n[stack] ${sig}: stopping…`));
        shutdown(0);
      });
    // A second `npm start` would otherwise crash-loop on taken ports; say so up front.
    for (const row of supervisor.table)
      for (const port of [row.port, row.managementPort])
        if (!(await portFree(port)))
          throw new StackError(`port ${port} (${row.label}) is taken: is another \`npm start\` running?`);
    supervisor.start();
    log('waiting for /health/ready on all services…');
    await supervisor.waitReady();
    await seed((svc) => prof.portOf(svc));
    printBanner(prof, pg, amqp, replicas);
  } catch (err) {
    if (exiting) return; // a signal is already taking us down
    report(err);
    await shutdown(1);
  }
}

function printBanner(prof, pg, amqp, replicas) {
  const b = (s) => color('bold', s);
  const lines = [
    '',
    b('The shop is running.') + ' Ctrl-C stops the services (and the Postgres/RabbitMQ this command started).',
    '',
    ...SERVICES.map((s) => {
      const base = `http://localhost:${prof.portOf(s)}`;
      const management = `http://localhost:${managementPortOf(prof.portOf(s))}`;
      const more = Array.from({ length: replicas(s.name) - 1 }, (_, i) => prof.portOf(s) + (i + 1) * 100);
      const extra = more.length ? `   replicas also on ${more.join(', ')} (+${MANAGEMENT_PORT_OFFSET})` : '';
      return `  ${s.name.padEnd(10)} ${base}   docs ${base}/docs   ready ${management}/health/ready   metrics ${management}/metrics${extra}`;
    }),
    `  console    http://127.0.0.1:${managementPortOf(prof.portOf(SERVICES[0]))}/console   (sign in with the admin token: ADMIN_TOKEN, dev-admin-token in development)`,
    '',
    ...infraLines(prof, pg, amqp),
    pg.external && amqp.external
      ? ''
      : `  data        ${LOCAL}   (npm run stack:down stops the servers; delete the folder to start over)`,
    '',
    b('Get a customer token, then place an order:'),
    `  TOKEN=$(npm run -s token -- alice)   # or: curl -X POST localhost:${prof.portOf(SERVICES[0])}/dev/tokens -H 'content-type: application/json' -d '{"customerId":"alice"}'`,
    `  curl -i -X POST localhost:${prof.portOf(SERVICES[0])}/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"items":[{"sku":"SKU-001","quantity":2}]}'`,
    '',
    '  All credentials above are for local development only.',
    '',
  ];
  console.log(lines.join('\n'));
}

/** What runs, for the banners: one Postgres or one per service, one RabbitMQ node or three. */
function infraLines(prof, pg, amqp) {
  const lines = pg.perService
    ? SERVICES.map(
        (s) =>
          `  Postgres    ${pgOf(pg, s).adminUrlFor(prof.db)}   (${s.name}'s own server: only role and schema ${s.name}_svc)`,
      )
    : [`  Postgres    ${pg.adminUrlFor(prof.db)}   (each service logs in as <svc>_svc to its own schema)`];
  if (amqp.nodes)
    lines.push(
      ...amqp.nodes.map(
        (n) => `  RabbitMQ    ${n.adminUrlFor(prof.vhost)}   node ${n.nodename}   management ${n.mgmtBase}`,
      ),
      `  management  user ${amqp.mgmtUser} / ${amqp.mgmtPassword}   (one cluster: each node's UI shows all three)`,
    );
  else
    lines.push(
      `  RabbitMQ    ${amqp.adminUrlFor(prof.vhost)}`,
      `  management  ${amqp.mgmtBase}   user ${amqp.mgmtUser} / ${amqp.mgmtPassword}`,
    );
  return lines;
}

async function cmdUp() {
  const t0 = Date.now();
  // Provision both: `shop` for the services, `shop_test` for running jest by hand.
  // (Not recreated here: only `npm test` wipes shop_test.)
  const testProf = { ...profile('test'), recreate: false };
  const { pg, amqp } = await ensureInfra([profile('start'), testProf], (h) => started.push(h), layoutFrom(args));
  // Imports the tables that exist now: `npm test` rebuilds it after its migrations.
  if (pg.perService) await federate(pg, testProf.db);
  log(`infra ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(
    [
      '',
      ...infraLines(profile('start'), pg, amqp),
      '',
      'To run jest by hand against this infra (after `npm run build`):',
      '',
      exportLines(testEnv(testProf, pg, amqp)),
      '',
      'Stop with: npm run stack:down',
    ].join('\n'),
  );
}

/** Stops every private server of every layout that runs; the broker cluster's node 1 last. */
async function cmdDown() {
  const stopCluster = async () => {
    let any = false;
    for (const inst of [...RABBIT_CLUSTER].reverse()) any = (await stopLocalRabbit(inst)) || any;
    return any;
  };
  const [p, r] = await Promise.all([
    stopLocalPostgres(),
    stopLocalRabbit(),
    ...PG_PER_SERVICE.map((inst) => stopLocalPostgres(inst)),
    stopCluster(),
  ]);
  if (!p) log(`Postgres: not running (${PG.data})`);
  if (!r) log(`RabbitMQ: node ${RABBIT.nodename} not running`);
}

/**
 * `rabbitmq-node stop|kill|start <i>`: node i of the broker cluster. `stop` sends SIGTERM to the
 * node (a graceful shutdown), `kill` SIGKILL (a crash), and both wait until it has exited;
 * `start` starts it again (it rejoins the cluster by itself) and waits until the cluster shows
 * it running. Used by the cluster fault tests.
 */
async function cmdRabbitNode() {
  const [action, raw] = args;
  const inst = RABBIT_CLUSTER.find((n) => String(n.index) === raw);
  if (!['start', 'stop', 'kill'].includes(action) || !inst)
    throw new StackError(`usage: node scripts/stack.mjs rabbitmq-node stop|kill|start <1-${RABBIT_CLUSTER.length}>`);
  const t0 = Date.now();
  if (action === 'stop' || action === 'kill') {
    const signal = action === 'kill' ? 'SIGKILL' : 'SIGTERM';
    if (!(await stopLocalRabbit(inst, { signal }))) log(`RabbitMQ node ${inst.nodename} is not running`);
    else log(`RabbitMQ node ${inst.nodename} stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    return;
  }
  const h = await ensureRabbit(inst);
  // Ask a node that was already running (the new one could still be on its own).
  const peer = RABBIT_CLUSTER.find((n) => n !== inst && rabbitRunning(n));
  await waitClusterRunning(peer ? localRabbitHandle(peer) : h, [inst.nodename]);
  log(`RabbitMQ node ${inst.nodename} running in the cluster in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

/**
 * `restart postgres|postgres-<service>|rabbitmq`: stop a private server and start it again
 * (fault tests); `postgres-<service>` is that service's own server (`--db-per-service`).
 * Refused for servers given by URL: those are not ours to restart.
 */
async function cmdRestart() {
  const [what] = args;
  const t0 = Date.now();
  const ownServer = PG_PER_SERVICE.find((inst) => `postgres-${inst.services[0].name}` === what);
  if (what === 'postgres') {
    if (process.env.PG_ADMIN_URL) throw new StackError('Postgres comes from PG_ADMIN_URL: not restarting it');
    await stopLocalPostgres();
    await ensurePostgres();
  } else if (what === 'rabbitmq') {
    if (process.env.AMQP_ADMIN_URL) throw new StackError('RabbitMQ comes from AMQP_ADMIN_URL: not restarting it');
    await stopLocalRabbit();
    await ensureRabbit();
  } else if (ownServer) {
    await stopLocalPostgres(ownServer);
    await ensurePostgres(ownServer);
  } else {
    throw new StackError(
      `usage: node scripts/stack.mjs restart postgres|${SERVICES.map((s) => `postgres-${s.name}`).join('|')}|rabbitmq`,
    );
  }
  log(`${what} restarted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function cmdEnv() {
  // Computed from the configuration alone, for `eval "$(node scripts/stack.mjs env [layout])"`.
  const prof = profile('test');
  const layout = layoutFrom(args);
  const pgUrl = process.env.PG_ADMIN_URL;
  let pg;
  if (layout.dbPerService)
    pg = {
      perService: Object.fromEntries(PG_PER_SERVICE.map((inst) => [inst.services[0].name, localPostgresHandle(inst)])),
    };
  else if (pgUrl)
    pg = {
      host: new URL(pgUrl).hostname,
      port: Number(new URL(pgUrl).port || 5432),
      adminUrlFor: (db) => Object.assign(new URL(pgUrl), { pathname: `/${db}` }).toString(),
    };
  else pg = localPostgresHandle(PG);
  if (process.env.AMQP_ADMIN_URL && !layout.brokerCluster)
    throw new StackError('`env` does not support AMQP_ADMIN_URL yet; use `up`');
  const amqp = layout.brokerCluster
    ? clusterHandle(RABBIT_CLUSTER.map((inst) => localRabbitHandle(inst)))
    : localRabbitHandle(RABBIT);
  console.log(exportLines(testEnv(prof, pg, amqp)));
}

/** The participant trial alone (`npm run test:new-participant`): what `npm test` runs last. */
async function cmdParticipantTrial() {
  const totals = { passed: 0, failed: 0, skipped: 0, missing: false };
  const code = await runParticipantTrial({
    suites: args.length ? args : undefined,
    readResults: (file, c) => addResults(totals, file, c),
  });
  printSummary(totals);
  process.exit(code);
}

function report(err) {
  if (err instanceof StackError) fail(err.message);
  else fail(err?.stack ?? String(err));
}

const commands = {
  start: cmdStart,
  test: cmdTest,
  up: cmdUp,
  down: cmdDown,
  env: cmdEnv,
  restart: cmdRestart,
  'rabbitmq-node': cmdRabbitNode,
  'participant-trial': cmdParticipantTrial,
};
const fn = commands[command];
if (!fn) {
  console.error(`usage: node scripts/stack.mjs <${Object.keys(commands).join('|')}> [jest args…]`);
  process.exit(2);
}
try {
  await onSupportedRuntime();
  await fn();
} catch (err) {
  report(err);
  await stopStarted(started);
  process.exit(1);
}
