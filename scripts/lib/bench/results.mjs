// Turning the run into figures: what was decided and when (from the services' own tables),
// where the decision time went, the outboxes' lag and batch sizes, percentiles, time series.
import { PARTICIPANT_NAMES, SERVICES, dbRole } from '../config.mjs';
import { SHED_STATUS } from './driver.mjs';

const ms = (v) => (v == null ? null : Number(v));

/** Nearest-rank percentiles of a list of numbers: { n, p50, p95, p99, max, mean }. */
export function percentiles(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { n: 0, p50: null, p95: null, p99: null, max: null, mean: null };
  const at = (q) => v[Math.min(v.length - 1, Math.max(0, Math.ceil(q * v.length) - 1))];
  return {
    n: v.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    max: v[v.length - 1],
    mean: v.reduce((a, b) => a + b, 0) / v.length,
  };
}

/**
 * Every order of the run (by Idempotency-Key prefix): status, reason, and the coordinator's
 * timestamps in epoch ms. decided_at and completed_at are set with now(), the start of the
 * deciding (acking) transaction, so they are a hair before that transaction committed.
 */
export async function fetchOrders(client, keyPrefix) {
  const { rows } = await client.query(
    `SELECT o.idempotency_key AS key, o.id, o.status, o.reason,
            extract(epoch FROM o.created_at) * 1000 AS created,
            extract(epoch FROM o.decided_at) * 1000 AS decided,
            extract(epoch FROM t.completed_at) * 1000 AS completed
       FROM order_svc.orders o LEFT JOIN order_svc.tpc_transactions t ON t.id = o.id
      WHERE o.idempotency_key LIKE $1`,
    [`${keyPrefix}%`],
  );
  return rows.map((r) => ({ ...r, created: ms(r.created), decided: ms(r.decided), completed: ms(r.completed) }));
}

/** Orders still PENDING, and decided ones not yet acknowledged by every participant. */
export async function progress(client, keyPrefix) {
  const { rows } = await client.query(
    `SELECT count(*)::int AS total,
            count(*) FILTER (WHERE o.status = 'PENDING')::int AS pending,
            count(*) FILTER (WHERE t.completed_at IS NULL)::int AS unacked
       FROM order_svc.orders o LEFT JOIN order_svc.tpc_transactions t ON t.id = o.id
      WHERE o.idempotency_key LIKE $1`,
    [`${keyPrefix}%`],
  );
  return rows[0];
}

/**
 * The decision's critical path, per order, following the participant whose vote decided it
 * (its vote is recorded in the deciding transaction, so voted_at = decided_at exactly):
 *   accept                → the order's transaction starts                        (HTTP, Nest, pool)
 *   earlier stage         → the transaction that writes this participant's prepare starts
 *                           (0 for a prepare sent at once; for a later stage, the earlier
 *                           participants' round trip: PREPARE_FIRST)
 *   to participant        → the participant's transaction starts     (that transaction and its
 *                           commit, publish and confirm, broker, queue, prefetch, the batch)
 *   participant and back  → the coordinator's deciding transaction starts  (reserve or hold,
 *                           commit, publish, broker, queue, the coordinator's batch)
 * Each point is now() of a transaction (its start), from one clock, so no segment is negative;
 * the outbox's sent mark is not used (the fast path marks a row after the broker's confirm, when
 * the next hop may have started already).
 */
export async function fetchBreakdown(client, keyPrefix) {
  const union = (table, cols, where) =>
    PARTICIPANT_NAMES.map((p) => `SELECT '${p}' AS participant, ${cols} FROM ${dbRole(p)}.${table} ${where}`).join(
      ' UNION ALL ',
    );
  const { rows } = await client.query(
    `WITH o AS (
       SELECT o.id, o.idempotency_key AS key, o.created_at, t.decided_at
         FROM order_svc.orders o JOIN order_svc.tpc_transactions t ON t.id = o.id
        WHERE o.idempotency_key LIKE $1 AND t.decided_at IS NOT NULL),
     decider AS (
       SELECT p.transaction_id AS tx, p.participant FROM order_svc.tpc_participants p JOIN o ON o.id = p.transaction_id
        WHERE p.voted_at = o.decided_at),
     prep AS (
       SELECT (body->>'transactionId')::uuid AS tx, body->>'recipient' AS participant, min(created_at) AS written
         FROM order_svc.outbox WHERE message_type = 'prepare' GROUP BY 1, 2),
     ptx AS (${union('tpc_participant_transactions', 'transaction_id AS tx, created_at AS started', '')})
     SELECT o.key, d.participant,
            extract(epoch FROM o.created_at) * 1000 AS created,
            extract(epoch FROM prep.written) * 1000 AS prepare_written,
            extract(epoch FROM ptx.started) * 1000 AS participant_started,
            extract(epoch FROM o.decided_at) * 1000 AS decided
       FROM o JOIN decider d ON d.tx = o.id
       JOIN prep ON prep.tx = o.id AND prep.participant = d.participant
       JOIN ptx ON ptx.tx = o.id AND ptx.participant = d.participant`,
    [`${keyPrefix}%`],
  );
  return rows.map((r) => ({
    key: r.key,
    participant: r.participant,
    created: ms(r.created),
    prepareWritten: ms(r.prepare_written),
    participantStarted: ms(r.participant_started),
    decided: ms(r.decided),
  }));
}

/**
 * Per service, the outbox rows created since `sinceMs`: how many, how long from the producing
 * transaction's start to the relay claiming them (p50/p99), and how many the relay took per
 * transaction (rows sharing one sent_at = one relay batch).
 */
export async function fetchOutboxStats(client, sinceMs) {
  const out = {};
  for (const svc of SERVICES) {
    const { rows } = await client.query(
      `SELECT count(*)::int AS messages,
              count(*) FILTER (WHERE sent_at IS NULL)::int AS unsent,
              count(DISTINCT sent_at)::int AS batches,
              extract(epoch FROM percentile_disc(0.5) WITHIN GROUP (ORDER BY sent_at - created_at)) * 1000 AS p50,
              extract(epoch FROM percentile_disc(0.99) WITHIN GROUP (ORDER BY sent_at - created_at)) * 1000 AS p99,
              extract(epoch FROM max(sent_at - created_at)) * 1000 AS max
         FROM ${dbRole(svc.name)}.outbox WHERE created_at >= to_timestamp($1 / 1000.0)`,
      [sinceMs],
    );
    const r = rows[0];
    out[svc.name] = {
      messages: r.messages,
      unsent: r.unsent,
      relayBatches: r.batches,
      avgBatch: r.batches ? (r.messages - r.unsent) / r.batches : null,
      lagMs: { p50: ms(r.p50), p99: ms(r.p99), max: ms(r.max) },
    };
  }
  return out;
}

/** Total outbox rows marked sent, all services (what the broker should have seen published). */
export async function sentOutboxRows(client) {
  const parts = SERVICES.map((s) => `(SELECT count(*) FROM ${dbRole(s.name)}.outbox WHERE sent_at IS NOT NULL)`);
  const { rows } = await client.query(`SELECT (${parts.join(' + ')})::int AS n`);
  return rows[0].n;
}

/**
 * Per-second series from the load's start: orders sent (and of those, shed) and decided in each
 * second, and the decision latency (p50, p99) of the orders sent in each second.
 */
export function timeSeries(joined, startMs) {
  const buckets = [];
  const bucket = (t) => {
    const i = Math.floor((t - startMs) / 1000);
    if (i < 0) return null;
    while (buckets.length <= i) buckets.push({ second: buckets.length, sent: 0, shed: 0, decided: 0, latencies: [] });
    return buckets[i];
  };
  for (const o of joined) {
    const b = bucket(o.due);
    if (b) b.sent++;
    if (b && isShed(o)) b.shed++;
    if (o.decided == null) continue;
    const d = bucket(o.decided);
    if (d) d.decided++;
    if (b) b.latencies.push(o.decided - o.due);
  }
  return buckets.map(({ latencies, ...b }) => {
    const p = percentiles(latencies);
    return { ...b, p50: p.p50, p99: p.p99 };
  });
}

// A joined order keeps the HTTP status as httpStatus (its `status` is then the order's).
const httpStatus = (r) => r.httpStatus ?? r.status;
const isAccepted = (r) => httpStatus(r) >= 200 && httpStatus(r) < 300;
const isShed = (r) => httpStatus(r) === SHED_STATUS;
const latest = (times) => times.reduce((a, b) => Math.max(a, b), -Infinity); // no spread: 100k+ orders

/**
 * How the order service answered the POSTs: accepted (2xx), shed (503: admission control,
 * nothing written) and failed (anything else, by status; "no answer (why)" when the request failed).
 */
export function answerCounts(records) {
  const out = { sent: records.length, accepted: 0, shed: 0, failed: 0, httpErrors: {}, shedWithoutRetryAfter: 0 };
  const retryAfter = [];
  for (const r of records) {
    if (isAccepted(r)) out.accepted++;
    else if (isShed(r)) {
      out.shed++;
      if (r.retryAfterS == null) out.shedWithoutRetryAfter++;
      else retryAfter.push(r.retryAfterS);
    } else {
      out.failed++;
      const k = r.status ? String(r.status) : `no answer${r.error ? ` (${r.error})` : ''}`;
      out.httpErrors[k] = (out.httpErrors[k] ?? 0) + 1;
    }
  }
  const share = (n) => (out.sent ? n / out.sent : null);
  return {
    ...out,
    acceptedShare: share(out.accepted),
    shedShare: share(out.shed),
    retryAfterS: percentiles(retryAfter),
  };
}

/** HTTP answer times (sent → answered), of every answered POST and of the accepted and shed ones apart. */
export function answerTimes(records) {
  const times = (list) => percentiles(list.filter((r) => r.answered).map((r) => r.answered - r.sent));
  return {
    httpMs: times(records),
    httpAcceptedMs: times(records.filter(isAccepted)),
    httpShedMs: times(records.filter(isShed)),
  };
}

/**
 * Decision rates of one load, from its orders joined with their decision times: overall (first
 * send → last decision) and steady, the median of the per-second decision counts while sending,
 * leaving out the first two seconds (ramp-up) and the last one (partial).
 */
export function decisionRates(joined, { start, windowS }) {
  const series = timeSeries(joined, start);
  const times = joined.map((o) => o.decided).filter((t) => t != null);
  const lastDecided = times.length ? latest(times) : null;
  const decidedPerSecond = times.length ? times.length / ((lastDecided - start) / 1000) : 0;
  const steadySeconds = series.slice(2, Math.max(2, Math.floor(windowS) - 1)).map((b) => b.decided);
  return {
    series,
    decided: times.length,
    lastDecided,
    decidedPerSecond,
    steadyDecidedPerSecond: steadySeconds.length >= 3 ? percentiles(steadySeconds).p50 : decidedPerSecond,
  };
}

/**
 * What got done while the load lasted, and how long catching up took after it. Goodput: orders
 * decided between the first due time and the end of sending, per second of that window (with the
 * CONFIRMED ones apart: a TIMEOUT is decided too, but is no sale). Drain: end of sending → last
 * decision (0 if everything was decided before sending ended).
 */
export function loadWindowFigures(joined, { start, sendingEnded, lastDecided, sustainablePerSecond }) {
  const loadWindowS = (sendingEnded - start) / 1000;
  const inWindow = joined.filter((o) => o.decided != null && o.decided >= start && o.decided <= sendingEnded);
  const perSecond = (n) => (loadWindowS > 0 ? n / loadWindowS : null);
  const goodputPerSecond = perSecond(inWindow.length);
  return {
    loadWindowS,
    goodputPerSecond,
    goodputConfirmedPerSecond: perSecond(inWindow.filter((o) => o.status === 'CONFIRMED').length),
    goodputShareOfSustainable:
      sustainablePerSecond && goodputPerSecond != null ? goodputPerSecond / sustainablePerSecond : null,
    drainS: lastDecided == null ? null : Math.max(0, (lastDecided - sendingEnded) / 1000),
  };
}

/**
 * The sustainable rate from a calibration load (a saturating closed loop): its steady decided
 * rate, rounded to 0.1/s. Returns { perSecond, source, calibration: what the calibration saw }.
 */
export function sustainableFromCalibration(run, joined, calibration) {
  const windowS = (run.sendingEnded - run.start) / 1000;
  const rates = decisionRates(joined, { start: run.start, windowS });
  const { sent, accepted, shed, failed } = answerCounts(run.records);
  return {
    perSecond: Math.round(rates.steadyDecidedPerSecond * 10) / 10,
    source: 'calibrated',
    calibration: {
      ...calibration,
      windowS,
      sent,
      accepted,
      shed,
      failed,
      decided: rates.decided,
      decidedPerSecond: rates.decidedPerSecond,
      steadyDecidedPerSecond: rates.steadyDecidedPerSecond,
    },
  };
}
