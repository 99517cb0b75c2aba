// The machine's ceiling, as a baseline for the checkout figures: how many small write
// transactions Postgres commits per second (pgbench), and how many persistent messages RabbitMQ
// takes with publisher confirms and hands to a consumer per second (amqplib, quorum queue).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import amqp from 'amqplib';
import { PG_LIB, installedPostgresVersions, postgresBinDirOf } from '../postgres.mjs';
import { StackError, run, sleep } from '../util.mjs';
import { nowMs } from './driver.mjs';

/** pgbench of the server's major version if installed, else the newest one. */
function findPgbench(serverMajor) {
  const versions = installedPostgresVersions('pgbench');
  const v = versions.includes(String(serverMajor)) ? String(serverMajor) : versions[0];
  return v ? path.join(postgresBinDirOf(v), 'pgbench') : null;
}

// One checkout step's worth of work: a row inserted, a row updated, one commit.
const SCRIPT = `\\set id random(1, 1000)
BEGIN;
INSERT INTO bench_ceiling.log (account, amount) VALUES (:id, 1);
UPDATE bench_ceiling.accounts SET balance = balance + 1 WHERE id = :id;
END;
`;

/**
 * pgbench with `clients` connections for `seconds`, in a scratch schema of the benchmark's
 * database (dropped afterwards). Extended protocol, unnamed statements: like the services' pg.
 */
export async function pgCeiling(admin, dbUrl, { clients, seconds }) {
  const { rows } = await admin.query(`SELECT current_setting('server_version_num')::int / 10000 AS major`);
  const pgbench = findPgbench(rows[0].major);
  if (!pgbench) throw new StackError(`pgbench not found under ${PG_LIB}`);
  await admin.query(`DROP SCHEMA IF EXISTS bench_ceiling CASCADE; CREATE SCHEMA bench_ceiling;
    CREATE TABLE bench_ceiling.accounts (id int PRIMARY KEY, balance bigint NOT NULL);
    CREATE TABLE bench_ceiling.log (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, account int NOT NULL,
                                    amount bigint NOT NULL, at timestamptz NOT NULL DEFAULT now());
    INSERT INTO bench_ceiling.accounts SELECT g, 0 FROM generate_series(1, 1000) g;`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pgbench-'));
  const script = path.join(dir, 'checkout-step.sql');
  fs.writeFileSync(script, SCRIPT);
  try {
    const threads = Math.min(clients, os.availableParallelism?.() ?? os.cpus().length);
    const args = ['-n', '-M', 'extended', '-c', String(clients), '-j', String(threads), '-T', String(seconds)];
    // The URL as dbname: pgbench expands it like any libpq client.
    const { out } = await run(pgbench, [...args, '-f', script, dbUrl]);
    const tps = Number(out.match(/tps = ([\d.]+)/)?.[1]);
    const latency = Number(out.match(/latency average = ([\d.]+) ms/)?.[1]);
    if (!Number.isFinite(tps)) throw new StackError(`could not read pgbench's output:\n${out}`);
    return { commitsPerSecond: tps, latencyAvgMs: latency, clients, seconds, command: `pgbench ${args.join(' ')}` };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await admin.query('DROP SCHEMA IF EXISTS bench_ceiling CASCADE').catch(() => undefined);
  }
}

/**
 * Publishes persistent messages with confirms (at most `window` unconfirmed, like a relay batch)
 * to a quorum queue while a second connection consumes and acks them, for `seconds`. Returns
 * the rates of confirmed publishes and of consumed messages.
 */
export async function brokerCeiling(amqpUrl, { seconds, window = 100, bodyBytes = 700 }) {
  const queue = `bench.ceiling.${process.pid}`;
  const pub = await amqp.connect(amqpUrl);
  const sub = await amqp.connect(amqpUrl);
  const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(Math.max(0, bodyBytes - 10)) }));
  let confirmed = 0;
  let consumed = 0;
  try {
    const pch = await pub.createConfirmChannel();
    await pch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const sch = await sub.createChannel();
    await sch.prefetch(50);
    await sch.consume(queue, (m) => {
      if (!m) return;
      consumed++;
      sch.ack(m);
    });
    const start = nowMs();
    const end = start + seconds * 1000;
    let inFlight = 0;
    let failed = null;
    await new Promise((resolve) => {
      // Keep `window` publishes unconfirmed; each confirm lets the next one go.
      const pump = () => {
        while (inFlight < window && nowMs() < end && !failed) {
          inFlight++;
          pch.publish('', queue, body, { persistent: true, contentType: 'application/json' }, (err) => {
            inFlight--;
            if (err) failed = err;
            else confirmed++;
            pump();
          });
        }
        if (inFlight === 0) resolve();
      };
      pump();
    });
    const elapsed = (nowMs() - start) / 1000;
    if (failed) throw new StackError(`broker ceiling: a publish was nacked (${failed.message})`);
    // Let the consumer catch up on what was confirmed, briefly; its rate counts over its own time.
    const drainUntil = nowMs() + 5000;
    while (consumed < confirmed && nowMs() < drainUntil) await sleep(20);
    const consumeElapsed = (nowMs() - start) / 1000;
    await pch.deleteQueue(queue).catch(() => undefined);
    return {
      publishConfirmedPerSecond: confirmed / elapsed,
      consumedPerSecond: consumed / consumeElapsed,
      // A message is only through when it is both confirmed and consumed: the smaller rate.
      messagesPerSecond: Math.min(confirmed / elapsed, consumed / consumeElapsed),
      window,
      bodyBytes,
      seconds,
    };
  } finally {
    await pub.close().catch(() => undefined);
    await sub.close().catch(() => undefined);
  }
}
