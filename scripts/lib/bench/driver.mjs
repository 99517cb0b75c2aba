// The load: POST /orders over keep-alive HTTP, open loop (a fixed offered rate) or closed loop
// (N clients), one unique Idempotency-Key per order, and a record of every request's times.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { adminRequestsFor } from '../service-data.mjs';
import { sleep } from '../util.mjs';

/** Wall-clock milliseconds with sub-millisecond resolution (comparable with Postgres timestamps). */
export const nowMs = () => performance.timeOrigin + performance.now();

const REQUEST_TIMEOUT_MS = 30_000;

/** The order service's answer when it sheds load (admission control): nothing was written. */
export const SHED_STATUS = 503;

/** Retry-After in seconds (delay-seconds form; an HTTP date is converted), or null if absent. */
export function retryAfterSeconds(value) {
  if (value == null || value === '') return null;
  if (/^\d+$/.test(value.trim())) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, (at - Date.now()) / 1000);
}

export class HttpClient {
  constructor({ maxSockets = 256 } = {}) {
    // Keep-alive: a checkout must not pay a TCP handshake, or we would measure the handshake. An
    // idle socket is closed here before the server's keep-alive timeout (Node's: 5 s) closes it,
    // or a request sent on it just as the server closes it fails with no answer.
    this.agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets, timeout: 4_000 });
  }

  /** One request; never rejects: `{ status, headers, text }`, or `{ status: 0, error }` on failure. */
  request(method, url, { body, headers = {} } = {}) {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const u = new URL(url);
    return new Promise((resolve) => {
      const req = http.request(
        {
          host: u.hostname,
          port: u.port,
          path: u.pathname + u.search,
          method,
          agent: this.agent,
          headers: {
            ...headers,
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (err) => resolve({ status: 0, error: err.message }));
        },
      );
      req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', (err) => resolve({ status: 0, error: err.message }));
      req.end(payload);
    });
  }

  close() {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `limit` at once. */
export async function inParallel(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** Seeds `shop` through each service's data hook (apps/<name>/data.ts) and admin REST API. */
export async function seedWorkload(client, urls, adminToken, shop) {
  const headers = { authorization: `Bearer ${adminToken}` };
  const requests = await adminRequestsFor(shop);
  const failures = [];
  await inParallel(requests, 16, async ({ service, method, path, body }) => {
    const url = `${urls[service][0]}${path}`;
    const res = await client.request(method, url, { body, headers });
    if (res.status !== 200)
      failures.push(`${method} ${url} → ${res.status || res.error} ${res.text?.slice(0, 200) ?? ''}`);
  });
  return { requests: requests.length, failures };
}

/**
 * Sends orders until the duration or count is used up, or `shouldStop()`. Open loop: order i is
 * due at start + i/rate and its latency counts from then, so a client falling behind (or a
 * server that stops answering) shows up as latency instead of silently lowering the rate.
 * Closed loop: each client sends, waits for the answer, sends the next.
 * A 503 is the order service shedding load: recorded (with its Retry-After) as shed, not as an
 * error, and never retried: each order is exactly one request (a closed-loop client waits the
 * Retry-After, then sends its next order).
 * `authorizations`: each customer's Authorization header, made up front (see scripts/lib/tokens.mjs).
 * Returns one record per order: { key, customerId, due, sent, answered, status, orderId, retryAfterS, error }.
 */
export async function drive(client, { urls, load, keyPrefix, nextOrder, authorizations, shouldStop = () => false }) {
  const records = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let rr = 0;
  const start = nowMs();
  const end = load.durationS ? start + load.durationS * 1000 : Infinity;
  const maxOrders = load.count ?? Infinity;

  const send = async (due) => {
    const rec = { key: `${keyPrefix}${records.length}`, due, sent: nowMs(), answered: 0, status: 0 };
    records.push(rec);
    const body = nextOrder();
    rec.customerId = body.customerId;
    const url = `${urls.order[rr++ % urls.order.length]}/orders`;
    // The customer's token was signed before the load began: no signing on the measured path.
    const headers = { 'idempotency-key': rec.key, authorization: authorizations.get(body.customerId) };
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const res = await client.request('POST', url, { body, headers });
    inFlight--;
    rec.answered = nowMs();
    rec.status = res.status;
    if (res.status === 202 || res.status === 200) {
      try {
        rec.orderId = JSON.parse(res.text).id;
      } catch {}
    } else if (res.status === SHED_STATUS) {
      rec.retryAfterS = retryAfterSeconds(res.headers['retry-after']);
    } else {
      rec.error = res.error ?? res.text?.slice(0, 200);
    }
    return rec;
  };

  const pending = new Set();
  if (load.mode === 'open') {
    const interval = 1000 / load.rate;
    for (let i = 0; i < maxOrders && !shouldStop(); i++) {
      const due = start + i * interval;
      if (due >= end) break;
      const wait = due - nowMs();
      // setTimeout is only good to about a millisecond; orders already due go out at once.
      if (wait > 1) await sleep(wait);
      const p = send(due).finally(() => pending.delete(p));
      pending.add(p);
    }
  } else {
    const worker = async () => {
      while (records.length < maxOrders && nowMs() < end && !shouldStop()) {
        const rec = await send(nowMs());
        // Turned away, a client waits as told (5 s at most) before its next order: else the shed
        // clients would spin on quick 503s and take the CPU of the orders that were accepted.
        if (rec.status === SHED_STATUS) await sleep(Math.min(Math.min(rec.retryAfterS ?? 1, 5) * 1000, end - nowMs()));
      }
    };
    await Promise.all(Array.from({ length: load.concurrency }, worker));
  }
  const sendingEnded = nowMs();
  await Promise.all(pending);
  return { records, start, sendingEnded, end: nowMs(), maxInFlight };
}
