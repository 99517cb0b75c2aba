// `npm run bench -- --cold-burst`: a flash sale right after a deploy. Fresh services (just
// started: nothing ordered, no decision measured), then N orders from C clients at once, each
// client sending its orders one after another, every order once (a 503 is counted, never
// retried). Reports how the door answered (202 / 503 / other), how fast it answered the accepted
// orders, and how fast they were decided. See docs/performance.md, "Cold start".
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { StackError, color, sleep, warn } from '../util.mjs';
import { HttpClient, SHED_STATUS, nowMs, seedWorkload } from './driver.mjs';
import { machineInfo } from './probes.mjs';
import { fetchOrders, percentiles, progress } from './results.mjs';
import { startOwnStack } from './target.mjs';
import { planWorkload } from './workload.mjs';
import { authorizationsFor } from '../tokens.mjs';

const say = (...args) => console.log(color('green', '[bench]'), ...args);
const round = (p) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v == null ? v : Math.round(v)]));

/** Runs the cold burst on a stack of its own; returns the exit code (1 if a shed order left a row). */
export async function runColdBurst(opts, ctx, command) {
  const { orders, clients } = opts.coldBurst;
  if (opts.external) throw new StackError('--cold-burst starts fresh services of its own: not with --order-url');
  const machine = machineInfo();
  const startedAt = new Date();
  const dir = path.resolve(opts.out, `${startedAt.toISOString().slice(0, 19).replaceAll(':', '-')}-cold-burst`);
  fs.mkdirSync(dir, { recursive: true });
  const target = await startOwnStack(opts, ctx, path.join(dir, 'services.log'));
  ctx.abortIfInterrupted();
  const db = new pg.Client({ connectionString: target.pgUrl, application_name: 'bench' });
  await db.connect();
  db.on('error', () => undefined);
  ctx.cleanups.push(() => db.end().catch(() => undefined));

  const prefix = `b${Date.now().toString(36)}`;
  const plan = planWorkload({
    mix: opts.mix,
    declineShare: opts.declineShare,
    expectedOrders: orders,
    seed: opts.seed,
    prefix,
  });
  const http = new HttpClient({ maxSockets: clients });
  ctx.cleanups.push(() => http.close());
  // The data hooks' admin requests only: no order reaches the services before the burst.
  const seeded = await seedWorkload(http, target.urls, target.adminToken, plan.shop);
  if (seeded.failures.length) throw new StackError(`seeding failed:\n${seeded.failures.slice(0, 5).join('\n')}`);
  const authorizations = await authorizationsFor(plan.shop.customers.map((c) => c.customerId));

  say(
    `cold burst: ${orders} orders from ${clients} clients at once, on services started ${target.urls.order.length > 1 ? `(${target.urls.order.length} order replicas) ` : ''}just now`,
  );
  const records = [];
  let rr = 0;
  const client = async () => {
    while (records.length < orders && !ctx.shouldStop()) {
      const body = plan.nextOrder();
      const rec = { key: `${prefix}-m${records.length}`, sent: nowMs(), answered: 0, status: 0 };
      records.push(rec);
      const headers = { 'idempotency-key': rec.key, authorization: authorizations.get(body.customerId) };
      const res = await http.request('POST', `${target.urls.order[rr++ % target.urls.order.length]}/orders`, {
        body,
        headers,
      });
      rec.answered = nowMs();
      rec.status = res.status;
      if (res.status === 202 || res.status === 200) rec.orderId = JSON.parse(res.text).id;
      else if (res.status !== SHED_STATUS) rec.error = res.error ?? res.text?.slice(0, 200);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  ctx.abortIfInterrupted();

  const accepted = records.filter((r) => r.orderId);
  const deadline = Date.now() + opts.settleTimeoutS * 1000;
  for (;;) {
    const p = await progress(db, `${prefix}-m`);
    if (p.total >= accepted.length && p.pending === 0) break;
    if (Date.now() > deadline) {
      warn(`not every accepted order was decided within ${opts.settleTimeoutS} s (${p.pending} pending)`);
      break;
    }
    await sleep(250);
  }
  const rows = new Map((await fetchOrders(db, `${prefix}-m`)).map((o) => [o.key, o]));
  const shed = records.filter((r) => r.status === SHED_STATUS);
  const byStatus = {};
  for (const r of records) byStatus[r.status || 'no answer'] = (byStatus[r.status || 'no answer'] ?? 0) + 1;
  const result = {
    command,
    startedAt: startedAt.toISOString(),
    machine,
    loadAfter: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    orders,
    clients,
    replicas: opts.replicas,
    answers: {
      accepted: accepted.length,
      shed: shed.length,
      other: records.length - accepted.length - shed.length,
      byStatus,
    },
    acceptedAnswerMs: round(percentiles(accepted.map((r) => r.answered - r.sent))),
    shedAnswerMs: round(percentiles(shed.map((r) => r.answered - r.sent))),
    decisionMs: round(percentiles(accepted.map((r) => rows.get(r.key)?.decided - r.sent))),
    cancelledByTimeout: [...rows.values()].filter((o) => o.reason === 'TIMEOUT').length,
    // Shed means nothing written: no order may exist for a key answered 503.
    ordersOfShedKeys: shed.filter((r) => rows.has(r.key)).length,
    errors: records
      .filter((r) => r.error)
      .slice(0, 5)
      .map((r) => `${r.status}: ${r.error}`),
  };
  fs.writeFileSync(path.join(dir, 'result.json'), JSON.stringify(result, null, 2));
  const a = result.answers;
  say(`load average before: ${machine.loadAverage?.join(' ') ?? '?'}; after: ${result.loadAfter}`);
  say(
    `answers: ${a.accepted} accepted (202), ${a.shed} shed (503, ${((100 * a.shed) / orders).toFixed(1)} %), ${a.other} other ${JSON.stringify(a.byStatus)}`,
  );
  say(
    `accepted answer p50 / p99 / max: ${result.acceptedAnswerMs.p50} / ${result.acceptedAnswerMs.p99} / ${result.acceptedAnswerMs.max} ms`,
  );
  say(
    `decision p50 / p99 / max: ${result.decisionMs.p50} / ${result.decisionMs.p99} / ${result.decisionMs.max} ms; cancelled by TIMEOUT: ${result.cancelledByTimeout}`,
  );
  say(`results: ${path.relative(process.cwd(), path.join(dir, 'result.json'))}`);
  if (result.ordersOfShedKeys > 0) {
    console.error(color('red', `[bench] ${result.ordersOfShedKeys} orders answered 503 were written anyway`));
    return 1;
  }
  return 0;
}
