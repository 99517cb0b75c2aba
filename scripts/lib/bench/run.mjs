// One benchmark run, step by step: stack, seed, warm-up, measured load, wait for every decision,
// read the counters, check the invariants, measure the machine's ceiling, write the results.
// Imported by scripts/bench.mjs after `npm ci`, since it needs pg and amqplib.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { ROOT, SERVICES, dbRole } from '../config.mjs';
import { StackError, color, sleep, warn } from '../util.mjs';
import { brokerCeiling, pgCeiling } from './ceiling.mjs';
import { HttpClient, SHED_STATUS, drive, inParallel, seedWorkload } from './driver.mjs';
import { checkInvariantsInDatabase, checkInvariantsOverRest } from './invariants.mjs';
import { authorizationsFor } from '../tokens.mjs';
import {
  ActivitySampler,
  PgCounters,
  QueueSampler,
  countCommitRecords,
  cpuSnapshot,
  machineInfo,
  managementClient,
  memoryMb,
  settledBrokerCounters,
  statementFigures,
} from './probes.mjs';
import { printSummary, writeResults } from './report.mjs';
import { runColdBurst } from './cold-start.mjs';
import {
  answerCounts,
  answerTimes,
  decisionRates,
  fetchBreakdown,
  fetchOrders,
  fetchOutboxStats,
  loadWindowFigures,
  percentiles,
  progress,
  sentOutboxRows,
  sustainableFromCalibration,
} from './results.mjs';
import { externalTarget, startOwnStack } from './target.mjs';
import { planWorkload } from './workload.mjs';

const say = (...args) => console.log(color('green', '[bench]'), ...args);

/**
 * Which code was measured: the commit, how many files under apps/ and libs/ differ from it, and
 * when dist/ was built (others may rebuild a shared tree between two runs).
 */
function codeVersion() {
  const git = (...args) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  const version = {};
  try {
    version.commit = git('rev-parse', '--short', 'HEAD');
    version.uncommittedInAppsAndLibs = git('status', '--porcelain', '--', 'apps', 'libs')
      .split('\n')
      .filter(Boolean).length;
  } catch {}
  try {
    version.distBuiltAt = fs.statSync(path.join(ROOT, 'dist', 'apps', 'order', 'src', 'main.js')).mtime.toISOString();
  } catch {}
  return version;
}
// After the last transaction, Postgres backends publish their statistics within about a second.
const STATS_FLUSH_MS = 1500;
// The most orders per second a closed loop (or a rate still to be calibrated) is assumed to send,
// for sizing the seeded stock and money.
const CLOSED_LOOP_BOUND = 3000;
/** Sockets of the open-loop client: far above the orders any run keeps waiting at once (ulimit -n permitting). */
const OPEN_LOOP_MAX_SOCKETS = 8192;

/**
 * The load of the warm-up: the measured one, except with --overload, which warms up without
 * overloading: at the given sustainable rate, or with the calibration's clients.
 */
function warmupLoad(opts) {
  if (!opts.overload) return opts.load;
  return opts.overload.calibration ?? { mode: 'open', rate: opts.sustainable.perSecond };
}

/** An upper bound of the orders the run sends, warm-up and calibration included. */
function expectedOrderCount(opts) {
  const perSecond = (load) => (load.mode === 'open' && load.rate ? load.rate : CLOSED_LOOP_BOUND);
  const measured = opts.overload && !opts.load.rate ? opts.overload.factor * CLOSED_LOOP_BOUND : perSecond(opts.load);
  const calibration = opts.overload?.calibration;
  return Math.ceil(
    (opts.load.count ?? measured * opts.load.durationS) * 1.1 +
      perSecond(warmupLoad(opts)) * opts.warmupS * 1.1 +
      (calibration ? CLOSED_LOOP_BOUND * calibration.durationS * 1.1 : 0) +
      100,
  );
}

/** Runs the benchmark; returns the process exit code (1 when an invariant is broken). */
export async function runBenchmark(opts, ctx, command) {
  if (opts.coldBurst) return runColdBurst(opts, ctx, command);
  const machine = machineInfo(); // load average before we add our own
  const startedAt = new Date();
  const tag = opts.overload
    ? 'overload'
    : opts.load.mode === 'open'
      ? `r${opts.load.rate}`
      : `c${opts.load.concurrency}`;
  const layout = opts.layout?.brokerCluster ? '-cluster' : '';
  const runName = `${startedAt.toISOString().slice(0, 19).replaceAll(':', '-')}-${opts.smoke ? 'smoke-' : ''}${opts.mix}-${tag}${layout}`;
  const dir = path.resolve(opts.out, runName);
  fs.mkdirSync(dir, { recursive: true });

  const target = opts.external
    ? externalTarget(opts.external)
    : await startOwnStack(opts, ctx, path.join(dir, 'services.log'));
  ctx.abortIfInterrupted();
  const notes = [];

  // Connections for reading: the services' database (decisions, invariants) and `postgres` (counters).
  let db = null;
  let counters = null;
  if (target.pgUrl) {
    db = new pg.Client({ connectionString: target.pgUrl, application_name: 'bench' });
    await db.connect();
    db.on('error', () => undefined);
    ctx.cleanups.push(() => db.end().catch(() => undefined));
    counters = new PgCounters(target.pgStatsUrl, target.db);
    await counters.connect();
    ctx.cleanups.push(() => counters.close());
    if (!(await counters.enableStatements()))
      notes.push('pg_stat_statements is not loaded on this Postgres: no statement figures');
  } else notes.push('no database URL: decisions polled over GET /orders/:id; no database figures');
  const mgmt = target.rabbitUrl ? managementClient(target.rabbitUrl, target.vhost) : null;
  if (!mgmt) notes.push('no management API: no broker figures, dead letters not checked');

  // Seed: products, stock and accounts sized for the mix and the most orders this run may send.
  const prefix = `b${Date.now().toString(36)}`;
  const expectedOrders = expectedOrderCount(opts);
  const plan = planWorkload({
    mix: opts.mix,
    declineShare: opts.declineShare,
    expectedOrders,
    seed: opts.seed,
    prefix,
  });
  const client = new HttpClient({
    // Open loop: each order is a customer of its own, so the client must not queue them behind a
    // few sockets (a queue here would be timed as the server's); the bound is only a safety net.
    maxSockets: opts.load.mode === 'open' ? OPEN_LOOP_MAX_SOCKETS : Math.max(64, opts.load.concurrency),
  });
  ctx.cleanups.push(() => client.close());
  say(
    `seeding ${plan.shop.products.length} products and ${plan.shop.customers.length} customers, through each service's data hook (prefix ${prefix})`,
  );
  const seeded = await seedWorkload(client, target.urls, target.adminToken, plan.shop);
  // One customer token each, signed now: the measured requests only send them.
  const authorizations = await authorizationsFor(plan.shop.customers.map((c) => c.customerId));
  const owners = new Map(); // order id → its customer (to read it back over REST)
  if (seeded.failures.length)
    throw new StackError(
      `seeding failed (${seeded.failures.length} of ${seeded.requests}):\n${seeded.failures.slice(0, 5).join('\n')}`,
    );

  const accepted = []; // every order id answered 2xx, warm-up included (for the invariants)
  const shedKeys = []; // every Idempotency-Key answered 503, warm-up included (nothing may exist for them)
  const restOrders = new Map(); // id → order view, when polling over REST
  let ownCommits = 0; // statements this script runs on the measured database inside the window
  const waitSettled = async (keyPrefix, ids, what) => {
    const deadline = Date.now() + opts.settleTimeoutS * 1000;
    let lastSaid = Date.now();
    for (;;) {
      ctx.abortIfInterrupted();
      let state;
      if (db) {
        ownCommits++;
        const p = await progress(db, keyPrefix);
        state = { done: p.total >= ids.length && p.pending === 0 && p.unacked === 0, ...p };
      } else {
        state = await pollOverRest(client, target.urls, ids, restOrders, (id) => authorizations.get(owners.get(id)));
      }
      if (state.done) return state;
      if (Date.now() > deadline) {
        warn(
          `${what}: not settled after ${opts.settleTimeoutS} s (${state.pending} pending, ${state.unacked ?? '?'} unacknowledged)`,
        );
        return state;
      }
      if (Date.now() - lastSaid > 5000) {
        say(`${what}: waiting for ${state.pending} pending and ${state.unacked ?? '?'} unacknowledged orders…`);
        lastSaid = Date.now();
      }
      await sleep(250);
    }
  };
  const runLoad = async (keyPrefix, load) => {
    const run = await drive(client, {
      urls: target.urls,
      load,
      keyPrefix,
      nextOrder: plan.nextOrder,
      authorizations,
      shouldStop: () => ctx.shouldStop(),
    });
    ctx.abortIfInterrupted();
    for (const r of run.records) if (r.orderId) owners.set(r.orderId, r.customerId);
    const ids = run.records.filter((r) => r.orderId).map((r) => r.orderId);
    for (const id of ids) accepted.push(id);
    for (const r of run.records) if (r.status === SHED_STATUS) shedKeys.push(r.key);
    return { run, ids };
  };
  // A load's orders (from the database, or the views polled over REST) joined with its records;
  // the HTTP status stays as httpStatus, since `status` becomes the order's.
  const readOrders = async (keyPrefix, records) => {
    const rows = db ? await fetchOrders(db, keyPrefix) : restViews(records, restOrders);
    const byKey = new Map(rows.map((o) => [o.key, o]));
    return { rows, joined: records.map((rec) => ({ ...rec, httpStatus: rec.status, ...(byKey.get(rec.key) ?? {}) })) };
  };

  if (opts.warmupS > 0) {
    const warmup = warmupLoad(opts);
    const what =
      warmup === opts.load
        ? 'of the same load'
        : warmup.mode === 'open'
          ? `at ${warmup.rate} orders/s`
          : `with ${warmup.concurrency} clients`;
    say(`warm-up: ${opts.warmupS} s ${what} (not measured)`);
    const { ids } = await runLoad(`${prefix}-w`, { ...warmup, count: undefined, durationS: opts.warmupS });
    await waitSettled(`${prefix}-w`, ids, 'warm-up');
  }

  // --overload without --sustainable: measure what the system sustains, then offer a multiple of it.
  let sustainable = opts.sustainable;
  const calibration = opts.overload?.calibration;
  if (calibration) {
    say(
      `calibration: ${calibration.concurrency} clients in a closed loop for ${calibration.durationS} s (the sustainable rate)`,
    );
    const { run: calRun, ids } = await runLoad(`${prefix}-c`, calibration);
    await waitSettled(`${prefix}-c`, ids, 'calibration');
    const { joined } = await readOrders(`${prefix}-c`, calRun.records);
    sustainable = sustainableFromCalibration(calRun, joined, calibration);
    if (!(sustainable.perSecond > 0))
      throw new StackError('the calibration decided no orders: no sustainable rate (give --sustainable N)');
    const c = sustainable.calibration;
    say(
      `sustainable rate: ${sustainable.perSecond}/s (steady decided rate; ${c.decided} decided of ${c.sent} sent, ${c.shed} shed)`,
    );
  }
  const load = opts.overload ? { ...opts.load, rate: opts.overload.factor * sustainable.perSecond } : opts.load;

  // Baseline: let the warm-up's statistics land, then measure what the idle services cost.
  let brokerBefore = null;
  let pgIdle = null;
  let pgBefore = null;
  // pg_stat_statements, at the same points (the services' roles only: not this script's queries).
  const serviceRoles = SERVICES.map((s) => dbRole(s.name));
  let stmtIdle = null;
  let stmtBefore = null;
  if (counters) {
    await sleep(STATS_FLUSH_MS);
    if (mgmt) brokerBefore = await settledBrokerCounters(mgmt, await sentOutboxRows(db));
    const idleStart = await counters.read();
    stmtIdle = await counters.statementCounts(serviceRoles);
    await sleep(2000);
    pgBefore = await counters.read();
    stmtBefore = await counters.statementCounts(serviceRoles);
    pgIdle = (pgBefore.commits - idleStart.commits) / ((pgBefore.at - idleStart.at) / 1000);
  } else if (mgmt) brokerBefore = await mgmt.counters();
  ownCommits = 0;
  const pidsBefore = target.pids();
  const cpuBefore = cpuSnapshot(pidsBefore);
  const sampler = counters ? new ActivitySampler(counters) : null;
  sampler?.start();
  const queueSampler = mgmt ? new QueueSampler(mgmt) : null;
  queueSampler?.start();

  const loadText =
    load.mode === 'open'
      ? `${load.rate} orders/s${opts.overload ? ` (overload: ${opts.overload.factor} × ${sustainable.perSecond}/s)` : ''}`
      : `${load.concurrency} concurrent clients`;
  say(`measuring: ${opts.mix} mix, ${loadText}, ${load.count ? `${load.count} orders` : `${load.durationS} s`}`);
  const { run, ids } = await runLoad(`${prefix}-m`, load);
  say(
    `sent ${run.records.length} orders in ${((run.sendingEnded - run.start) / 1000).toFixed(1)} s; waiting for every decision and ack`,
  );
  const settled = await waitSettled(`${prefix}-m`, ids, 'measured run');
  const settledAt = Date.now();

  await sampler?.stop();
  const queues = queueSampler?.stop() ?? null;
  const cpuAfter = cpuSnapshot(target.pids());
  const commitsByUs = ownCommits;
  let pgAfter = null;
  let stmtAfter = null;
  let brokerAfter = null;
  if (counters) {
    await sleep(STATS_FLUSH_MS);
    pgAfter = await counters.read();
    stmtAfter = await counters.statementCounts(serviceRoles, { withText: true });
  }
  if (mgmt) brokerAfter = db ? await settledBrokerCounters(mgmt, await sentOutboxRows(db)) : await mgmt.counters();

  // Per order: when it was due/sent and answered (our records), when it was decided (theirs).
  say('reading the results');
  const { rows, joined } = await readOrders(`${prefix}-m`, run.records);
  const decided = rows.filter((o) => o.status !== 'PENDING').length;

  // Answers: accepted (2xx), shed (503) and failed; then what became of the accepted orders.
  const counts = {
    ...answerCounts(run.records),
    ordersInDatabase: rows.length,
    decided,
    confirmed: rows.filter((o) => o.status === 'CONFIRMED').length,
    cancelled: rows.filter((o) => o.status === 'CANCELLED').length,
    cancelledBy: {},
    pending: rows.filter((o) => o.status === 'PENDING').length,
  };
  for (const o of rows.filter((x) => x.status === 'CANCELLED'))
    counts.cancelledBy[o.reason ?? 'unknown'] = (counts.cancelledBy[o.reason ?? 'unknown'] ?? 0) + 1;
  // Cancelled because a vote came too late: the sign of a coordinator that fell behind.
  counts.timeouts = counts.cancelledBy.TIMEOUT ?? 0;
  if (counts.shedWithoutRetryAfter)
    notes.push(`${counts.shedWithoutRetryAfter} of the ${counts.shed} 503 answers had no usable Retry-After header`);

  // Rates: placed over the sending window; decided from the first send to the last decision;
  // goodput and drain around the load window.
  const windowS = load.mode === 'open' ? run.records.length / load.rate : (run.sendingEnded - run.start) / 1000;
  const { series, lastDecided, decidedPerSecond, steadyDecidedPerSecond } = decisionRates(joined, {
    start: run.start,
    windowS,
  });
  const rates = {
    offeredPerSecond: load.mode === 'open' ? load.rate : null,
    windowS,
    placedPerSecond: counts.accepted / windowS,
    decidedPerSecond,
    steadyDecidedPerSecond,
    ...loadWindowFigures(joined, {
      start: run.start,
      sendingEnded: run.sendingEnded,
      lastDecided,
      sustainablePerSecond: sustainable?.perSecond,
    }),
    keepsUp: null,
  };
  const decisionMs = joined.filter((o) => o.decided != null).map((o) => o.decided - o.due);
  if (load.mode === 'open') rates.keepsUp = keepsUp(joined, counts, rates);

  const latency = {
    decisionMs: percentiles(decisionMs),
    ...answerTimes(run.records),
    ackMs: percentiles(rows.filter((o) => o.completed && o.decided).map((o) => o.completed - o.decided)),
  };

  let breakdown = null;
  let outbox = null;
  if (db) {
    breakdown = summarizeBreakdown(await fetchBreakdown(db, `${prefix}-m`), new Map(joined.map((o) => [o.key, o])));
    outbox = await fetchOutboxStats(db, cpuBefore.at);
  }

  // Cost: counter deltas over the window, per decided order.
  const per = (v) => (decided && v != null && Number.isFinite(v) ? v / decided : null);
  // The raw snapshots go into the JSON too, for whoever wants to check the arithmetic.
  const cost = { decided, raw: { pgIdle, pgBefore, pgAfter, commitsByUs, brokerBefore, brokerAfter } };
  if (pgAfter) {
    const commits = pgAfter.commits - pgBefore.commits - commitsByUs;
    cost.commits = commits;
    cost.commitsPerCheckout = per(commits);
    cost.idleCommitsPerSecond = pgIdle;
    cost.commitsPerCheckoutNet = per(commits - pgIdle * ((pgAfter.at - pgBefore.at) / 1000));
    if (target.pgDataDir) {
      try {
        const wal = await countCommitRecords(target.pgBinDir, target.pgDataDir, pgBefore.lsn, pgAfter.lsn);
        cost.writingTransactionsPerCheckout = per(wal.commits);
      } catch (err) {
        notes.push(`could not count commit records with pg_waldump: ${err.message.split('\n')[0]}`);
      }
    }
    cost.rollbacks = pgAfter.rollbacks - pgBefore.rollbacks;
    // Two batches that lock in opposite orders deadlock: the kit's one lock order should keep this 0.
    cost.deadlocks = pgAfter.deadlocks - pgBefore.deadlocks;
    cost.rowsWrittenPerCheckout = per(pgAfter.rowsWritten - pgBefore.rowsWritten);
    cost.walBytesPerCheckout = per(pgAfter.walBytes - pgBefore.walBytes);
    cost.walSyncsPerCheckout = per(pgAfter.walSyncs - pgBefore.walSyncs);
    cost.statements = statementFigures(stmtBefore, stmtAfter, decided, { idle: stmtIdle, roles: serviceRoles });
    if (cost.statements?.evicted)
      notes.push(
        `pg_stat_statements evicted ${cost.statements.evicted} entries during the run (pg_stat_statements.max): the statement counts are low`,
      );
  }
  if (brokerAfter && brokerBefore) {
    cost.brokerPublishedPerCheckout = per(brokerAfter.published - brokerBefore.published);
    cost.brokerDeliveredPerCheckout = per(brokerAfter.delivered - brokerBefore.delivered);
    cost.brokerSettled = brokerAfter.settled !== false;
  }
  if (outbox) cost.outboxMessagesPerCheckout = per(Object.values(outbox).reduce((s, o) => s + o.messages, 0));

  // CPU per component over the same window; the system's total excludes the load generator.
  const cpu = cpuFigures(cpuBefore, cpuAfter, decided, machine.nproc);
  const pidsAfter = target.pids();
  if (JSON.stringify(pidsBefore.services) !== JSON.stringify(pidsAfter.services) || target.restarts() > 0)
    notes.push('a service restarted during the run: its CPU figures are incomplete (see services.log)');
  if (JSON.stringify(pidsBefore.rabbitmq) !== JSON.stringify(pidsAfter.rabbitmq))
    notes.push('a RabbitMQ node stopped or restarted during the run: its CPU figures are incomplete');
  if (cpu && target.kind === 'own' && cpu.otherCores > 0.25)
    notes.push(
      `other processes kept ${cpu.otherCores.toFixed(2)} cores busy during the run: the figures are pessimistic`,
    );
  if (!target.pids().postgres && target.kind === 'own')
    notes.push('Postgres is not ours (PG_ADMIN_URL): its CPU is not measured');

  const memory = {};
  for (const [svc, pids] of Object.entries(target.pids().services ?? {}))
    pids.forEach((pid, i) => {
      const m = memoryMb(pid);
      if (m) memory[pids.length > 1 ? `${svc}#${i + 1}` : svc] = { peakMb: m.peak, currentMb: m.current };
    });

  // Invariants, over everything this run seeded and ordered (warm-up included).
  say('checking the invariants');
  const deadLettered = mgmt ? await deadLetterCounts(mgmt).catch(() => null) : null;
  let invariants;
  if (db)
    invariants = await checkInvariantsInDatabase(db, { prefix, plan, acceptedIds: accepted, shedKeys, deadLettered });
  else {
    // A GET finds an order by id only, and a shed request got none: with the database only.
    if (shedKeys.length)
      notes.push(
        `no database URL: "nothing written for a shed request" not checked (${shedKeys.length} requests answered 503)`,
      );
    await waitSettled(`${prefix}-`, accepted, 'all orders'); // fetch warm-up orders' views too
    invariants = await checkInvariantsOverRest(client, target.urls, {
      plan,
      authorizations,
      orders: accepted.map((id) => restOrders.get(id)).filter(Boolean),
      deadLettered,
    });
  }
  notes.push(...invariants.notes);
  if (!settled.done) notes.push(`not every order was decided and acknowledged within ${opts.settleTimeoutS} s`);
  if (opts.smoke)
    invariants.add(
      'every POST /orders answered 202 (smoke)',
      run.records
        .filter((r) => r.status !== 202)
        .map(
          (r) => `${r.key}: ${r.status || 'no answer'}${r.status === SHED_STATUS ? ' (shed)' : ''} ${r.error ?? ''}`,
        ),
    );

  // The machine's ceiling, measured now that the services are idle.
  let ceiling = null;
  if (opts.ceiling && !ctx.shouldStop()) {
    ceiling = { errors: [] };
    const seconds = opts.ceilingSeconds;
    if (db) {
      const clients = opts.pgClients ?? Math.min(64, Math.max(2, Math.ceil(sampler.summary().p95Busy)));
      say(`ceiling: pgbench, ${clients} clients, ${seconds} s`);
      try {
        ceiling.postgres = await pgCeiling(db, target.pgUrl, { clients, seconds });
      } catch (err) {
        ceiling.errors.push(`Postgres ceiling: ${err.message}`);
      }
    }
    if (target.amqpUrl && !ctx.shouldStop()) {
      const where = opts.layout.brokerCluster ? `, on node 1 of ${target.brokerNodes.length}` : '';
      say(`ceiling: RabbitMQ publish with confirms + consume, quorum queue${where}, ${seconds} s`);
      try {
        ceiling.broker = await brokerCeiling(target.amqpUrl, { seconds });
      } catch (err) {
        ceiling.errors.push(`RabbitMQ ceiling: ${err.message}`);
      }
    }
    const rate = decidedPerSecond;
    if (ceiling.postgres && cost.commitsPerCheckout) {
      // pgbench's transactions all write; so do about half of a checkout's commits (see PgCounters).
      ceiling.pgCheckoutsPerSecond = ceiling.postgres.commitsPerSecond / cost.commitsPerCheckout;
      ceiling.fractionOfPg = rate / ceiling.pgCheckoutsPerSecond;
      if (cost.writingTransactionsPerCheckout) {
        ceiling.pgCheckoutsPerSecondByWrites = ceiling.postgres.commitsPerSecond / cost.writingTransactionsPerCheckout;
        ceiling.fractionOfPgByWrites = rate / ceiling.pgCheckoutsPerSecondByWrites;
      }
    }
    const messages = cost.brokerPublishedPerCheckout ?? cost.outboxMessagesPerCheckout;
    if (ceiling.broker && messages) {
      ceiling.brokerCheckoutsPerSecond = ceiling.broker.messagesPerSecond / messages;
      ceiling.fractionOfBroker = rate / ceiling.brokerCheckoutsPerSecond;
    }
    if (cpu?.cpuCheckoutsPerSecond && target.kind === 'own') {
      ceiling.cpuCheckoutsPerSecond = cpu.cpuCheckoutsPerSecond;
      ceiling.fractionOfCpu = rate / cpu.cpuCheckoutsPerSecond;
    }
  }

  const result = {
    version: 1,
    startedAt: startedAt.toISOString(),
    command,
    machine,
    code: codeVersion(),
    mix: opts.mix,
    load: {
      ...load,
      warmupS: opts.warmupS,
      declineShare: opts.mix === 'declines' ? opts.declineShare : undefined,
    },
    target: {
      kind: target.kind,
      layout: opts.layout,
      brokerNodes: target.brokerNodes ?? null,
      urls: target.urls,
      database: target.db,
      vhost: target.vhost,
      replicas: opts.replicas,
      serviceEnv: opts.serviceEnv,
    },
    overload: opts.overload ? { factor: opts.overload.factor } : null,
    sustainable,
    prefix,
    seeded: { products: plan.shop.products.length, customers: plan.shop.customers.length, expectedOrders },
    counts,
    rates,
    latency,
    breakdown,
    cost,
    cpu,
    memory,
    outbox,
    postgresActivity: sampler?.summary() ?? null,
    queues,
    ceiling,
    invariants: { ok: invariants.ok, checks: invariants.list },
    settled: { done: settled.done, afterMs: settledAt - run.sendingEnded },
    maxInFlight: run.maxInFlight,
    notes,
    series,
    files: {
      json: path.join(dir, 'result.json'),
      markdown: path.join(dir, 'summary.md'),
      chart: path.join(dir, 'chart.svg'),
      ...(target.kind === 'own' ? { log: path.join(dir, 'services.log') } : {}),
    },
  };
  writeResults(dir, result);
  for (const [k, f] of Object.entries(result.files)) result.files[k] = path.relative(process.cwd(), f);
  printSummary(result);
  if (!invariants.ok) {
    console.error(color('red', color('bold', '[bench] AN INVARIANT IS BROKEN: see the FAIL lines above.')));
    return 1;
  }
  return 0;
}

/**
 * Open loop only: the system kept up if nearly every order was decided at the offered pace and
 * the decision latency did not grow from the first fifth of the run to the last (no backlog).
 */
function keepsUp(joined, counts, rates) {
  const withDecision = joined.filter((o) => o.decided != null).sort((a, b) => a.due - b.due);
  const fifth = Math.max(1, Math.floor(withDecision.length / 5));
  const early = percentiles(withDecision.slice(0, fifth).map((o) => o.decided - o.due)).p50;
  const late = percentiles(withDecision.slice(-fifth).map((o) => o.decided - o.due)).p50;
  const why = [];
  if (counts.pending) why.push(`${counts.pending} orders never decided`);
  if (counts.shed) why.push(`${counts.shed} requests shed (503)`);
  if (counts.failed) why.push(`${counts.failed} requests failed`);
  if (rates.decidedPerSecond < 0.95 * rates.offeredPerSecond)
    why.push(`decided ${rates.decidedPerSecond.toFixed(1)}/s < 95% of the offered ${rates.offeredPerSecond}/s`);
  if (late > 2 * early + 50) why.push(`median decision time grew from ${early.toFixed(0)} to ${late.toFixed(0)} ms`);
  return { verdict: why.length === 0, why: why.join('; '), earlyP50: early, lateP50: late };
}

/** Per segment of the decision path: percentiles, and its share of the average decision time. */
function summarizeBreakdown(rows, sent) {
  const names = ['accept', 'earlier stage', 'to participant', 'participant and back'];
  const values = Object.fromEntries(names.map((n) => [n, []]));
  const decider = {};
  for (const r of rows) {
    const o = sent.get(r.key);
    if (!o) continue;
    decider[r.participant] = (decider[r.participant] ?? 0) + 1;
    const points = [o.due, r.created, r.prepareWritten, r.participantStarted, r.decided];
    names.forEach((n, i) => values[n].push(points[i + 1] - points[i]));
  }
  const segments = names.map((name) => ({ name, ...percentiles(values[name]) }));
  const total = segments.reduce((s, x) => s + (x.mean ?? 0), 0) || 1;
  for (const s of segments) s.share = (s.mean ?? 0) / total;
  return { orders: rows.length, decidedByVoteOf: decider, segments };
}

function cpuFigures(before, after, decided, nproc) {
  const wallMs = after.at - before.at;
  if (!decided || wallMs <= 0) return null;
  const perCheckoutMs = {};
  const cores = {};
  let systemMs = 0;
  let oursMs = 0;
  for (const [name, end] of Object.entries(after.components)) {
    const start = before.components[name];
    if (end == null || start == null) continue;
    const used = end - start;
    perCheckoutMs[name] = used / decided;
    cores[name] = used / wallMs;
    oursMs += used;
    if (name !== 'load generator') systemMs += used;
  }
  const machineMs = after.machine != null && before.machine != null ? after.machine - before.machine : null;
  const totalPerCheckoutMs = systemMs / decided;
  // Each broker node's part of `rabbitmq` (a cluster: the queue leaders' node does the most).
  const rabbitmqNodesPerCheckoutMs =
    before.rabbitmqNodes && after.rabbitmqNodes
      ? after.rabbitmqNodes.map((end, i) =>
          end == null || before.rabbitmqNodes[i] == null ? null : (end - before.rabbitmqNodes[i]) / decided,
        )
      : null;
  return {
    wallS: wallMs / 1000,
    perCheckoutMs,
    rabbitmqNodesPerCheckoutMs,
    coresBusy: cores,
    totalPerCheckoutMs,
    machineBusyCores: machineMs == null ? null : machineMs / wallMs,
    otherCores: machineMs == null ? null : Math.max(0, (machineMs - oursMs) / wallMs),
    // If every core did nothing but checkouts, at the measured CPU cost of one.
    cpuCheckoutsPerSecond: totalPerCheckoutMs > 0 ? (nproc * 1000) / totalPerCheckoutMs : null,
  };
}

/** Messages parked in each service's dead-letter queue. */
async function deadLetterCounts(mgmt) {
  const out = {};
  for (const q of await mgmt.queues()) if (q.name.endsWith('.dead-letter')) out[q.name] = q.messages ?? 0;
  return out;
}

/** Without a database: the polled views of a load's accepted orders, as rows like fetchOrders'. */
function restViews(records, views) {
  return records
    .filter((r) => views.has(r.orderId))
    .map((r) => {
      const o = views.get(r.orderId);
      return {
        key: r.key,
        id: o.id,
        status: o.status,
        reason: o.reason,
        decided: o.decidedAt ? Date.parse(o.decidedAt) : null,
      };
    });
}

/** Without a database: GET /orders/:id for every order not yet decided; the views go to `views`. */
async function pollOverRest(client, urls, ids, views, authorizationOf) {
  const open = ids.filter((id) => !views.has(id) || views.get(id).status === 'PENDING');
  await inParallel(open, 32, async (id) => {
    const headers = { authorization: authorizationOf(id) };
    const res = await client.request('GET', `${urls.order[0]}/orders/${id}`, { headers });
    if (res.status === 200) views.set(id, JSON.parse(res.text));
  });
  const pending = ids.filter((id) => views.get(id)?.status !== 'CONFIRMED' && views.get(id)?.status !== 'CANCELLED');
  return { done: pending.length === 0, pending: pending.length, unacked: null };
}
