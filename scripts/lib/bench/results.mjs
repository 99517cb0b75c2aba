// Turning the run into figures: what was decided and when (from the services' own tables),
// where the decision time went, the outboxes' lag and batch sizes, percentiles, time series.
import { SERVICES, dbRole } from '../config.mjs';

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
 *   accept         client sends → order's transaction starts        (HTTP, Nest, pool)
 *   order relay    → the relay claims the prepare from the outbox    (commit, NOTIFY, relay wake-up)
 *   to participant → the participant's transaction starts            (publish + confirm, broker, queue, prefetch)
 *   participant    → its relay claims the vote                       (reserve/hold, commit, relay wake-up)
 *   back           → the coordinator's deciding transaction starts   (publish + confirm, broker, queue)
 * Timestamps are now() of each transaction (its start), from one clock.
 */
export async function fetchBreakdown(client, keyPrefix) {
  const participants = SERVICES.filter((s) => s.name !== 'order').map((s) => s.name);
  const union = (table, cols, where) =>
    participants
      .map((p) => `SELECT '${p}' AS participant, ${cols} FROM ${dbRole(p)}.${table} ${where}`)
      .join(' UNION ALL ');
  const { rows } = await client.query(
    `WITH o AS (
       SELECT o.id, o.idempotency_key AS key, o.created_at, t.decided_at
         FROM order_svc.orders o JOIN order_svc.tpc_transactions t ON t.id = o.id
        WHERE o.idempotency_key LIKE $1 AND t.decided_at IS NOT NULL),
     decider AS (
       SELECT p.transaction_id AS tx, p.participant FROM order_svc.tpc_participants p JOIN o ON o.id = p.transaction_id
        WHERE p.voted_at = o.decided_at),
     prep AS (
       SELECT (body->>'transactionId')::uuid AS tx, body->>'recipient' AS participant, min(sent_at) AS claimed
         FROM order_svc.outbox WHERE message_type = 'prepare' GROUP BY 1, 2),
     ptx AS (${union('tpc_participant_transactions', 'transaction_id AS tx, created_at AS started', '')}),
     vote AS (
       SELECT participant, tx, min(claimed) AS claimed FROM (${union(
         'outbox',
         "(body->>'transactionId')::uuid AS tx, sent_at AS claimed",
         "WHERE message_type = 'vote'",
       )}) v GROUP BY 1, 2)
     SELECT o.key, d.participant,
            extract(epoch FROM o.created_at) * 1000 AS created,
            extract(epoch FROM prep.claimed) * 1000 AS prepare_claimed,
            extract(epoch FROM ptx.started) * 1000 AS participant_started,
            extract(epoch FROM vote.claimed) * 1000 AS vote_claimed,
            extract(epoch FROM o.decided_at) * 1000 AS decided
       FROM o JOIN decider d ON d.tx = o.id
       JOIN prep ON prep.tx = o.id AND prep.participant = d.participant
       JOIN ptx ON ptx.tx = o.id AND ptx.participant = d.participant
       JOIN vote ON vote.tx = o.id AND vote.participant = d.participant`,
    [`${keyPrefix}%`],
  );
  return rows.map((r) => ({
    key: r.key,
    participant: r.participant,
    created: ms(r.created),
    prepareClaimed: ms(r.prepare_claimed),
    participantStarted: ms(r.participant_started),
    voteClaimed: ms(r.vote_claimed),
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
 * Per-second series from the load's start: orders sent and decided in each second, and the
 * decision latency (p50, p99) of the orders sent in each second.
 */
export function timeSeries(joined, startMs) {
  const buckets = [];
  const bucket = (t) => {
    const i = Math.floor((t - startMs) / 1000);
    if (i < 0) return null;
    while (buckets.length <= i) buckets.push({ second: buckets.length, sent: 0, decided: 0, latencies: [] });
    return buckets[i];
  };
  for (const o of joined) {
    const b = bucket(o.due);
    if (b) b.sent++;
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
