// What one checkout costs, read from the outside: Postgres and RabbitMQ counters, the CPU time
// and memory of each process (/proc), and samples of what the services' connections are doing.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { http, run } from '../util.mjs';

// ---------------------------------------------------------------- /proc: CPU and memory

let clockTicks;
/** Kernel clock ticks per second (the unit of /proc/<pid>/stat CPU times), usually 100. */
function ticksPerSecond() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Fields of /proc/<pid>/stat after the command name (which may contain spaces). */
function statFields(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/**
 * CPU milliseconds used by a process (all its threads). With `children`, also what its exited
 * children used and what its live children use now: Postgres runs one process per connection.
 */
export function cpuMs(pid, { children = false } = {}) {
  const f = statFields(pid);
  if (!f) return null;
  // Fields 14-17 of stat: utime, stime, cutime, cstime (here at index 11-14).
  let ticks = Number(f[11]) + Number(f[12]);
  if (children) {
    ticks += Number(f[13]) + Number(f[14]);
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const c = statFields(entry);
      if (c && Number(c[1]) === pid) ticks += Number(c[11]) + Number(c[12]);
    }
  }
  return (ticks * 1000) / ticksPerSecond();
}

/** Peak and current resident memory of a process, in MB (VmHWM, VmRSS). */
export function memoryMb(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(status.match(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm'))?.[1] ?? NaN);
    return { peak: kb('VmHWM') / 1024, current: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

/** Busy CPU milliseconds of the whole machine (all cores), from /proc/stat. */
export function machineBusyMs() {
  try {
    const [, ...v] = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait.
    const busy = v.slice(0, 8).reduce((a, b) => a + b, 0) - v[3] - v[4];
    return (busy * 1000) / ticksPerSecond();
  } catch {
    return null;
  }
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    nproc: os.availableParallelism?.() ?? cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    memoryGb: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/**
 * A snapshot of CPU time per component. `pids` is { services: { order: [pid…], … },
 * postgres: postmasterPid, rabbitmq: [beamPid…] } (one beam per broker node; missing ones are
 * skipped). RabbitMQ is the sum of its nodes; `rabbitmqNodes` keeps each node's share.
 */
export function cpuSnapshot(pids) {
  const snap = { at: Date.now(), machine: machineBusyMs(), components: {} };
  for (const [name, list] of Object.entries(pids.services ?? {}))
    snap.components[name] = list.reduce((sum, pid) => sum + (cpuMs(pid) ?? 0), 0);
  if (pids.postgres) snap.components.postgres = cpuMs(pids.postgres, { children: true });
  if (pids.rabbitmq?.some(Boolean)) {
    snap.rabbitmqNodes = pids.rabbitmq.map((pid) => (pid ? cpuMs(pid) : null));
    snap.components.rabbitmq = snap.rabbitmqNodes.reduce((sum, ms) => sum + (ms ?? 0), 0);
  }
  const self = process.cpuUsage();
  snap.components['load generator'] = (self.user + self.system) / 1000;
  return snap;
}

// ---------------------------------------------------------------- Postgres

/**
 * Counters of one database (commits, rows written) and of the cluster (transaction ids, WAL).
 * Read on a connection to the `postgres` database so that reading them adds no commit to the
 * one measured. Commits include read-only transactions: a relay poll that found nothing, and
 * the transaction in which a LISTENing backend reads the notification queue (every NOTIFY in a
 * database wakes every listener in it). `countCommitRecords` tells the ones that wrote.
 */
export class PgCounters {
  constructor(statsUrl, db) {
    this.client = new pg.Client({ connectionString: statsUrl, application_name: 'bench-probe' });
    this.db = db;
  }

  async connect() {
    await this.client.connect();
    this.client.on('error', () => undefined);
  }

  async read() {
    const { rows } = await this.client.query(
      `SELECT xact_commit, xact_rollback, tup_inserted, tup_updated, tup_deleted, deadlocks
         FROM pg_stat_database WHERE datname = $1`,
      [this.db],
    );
    const r = rows[0] ?? {};
    const lsn = (await this.client.query(`SELECT pg_current_wal_lsn()::text AS lsn`)).rows[0].lsn;
    let wal = {};
    try {
      // pg_stat_wal is cluster-wide (Postgres 14+): our cluster serves other databases too.
      const w = (await this.client.query(`SELECT wal_records, wal_bytes, wal_sync FROM pg_stat_wal`)).rows[0];
      wal = { walRecords: Number(w.wal_records), walBytes: Number(w.wal_bytes), walSyncs: Number(w.wal_sync) };
    } catch {}
    return {
      at: Date.now(),
      commits: Number(r.xact_commit ?? 0),
      lsn,
      rollbacks: Number(r.xact_rollback ?? 0),
      deadlocks: Number(r.deadlocks ?? 0),
      rowsWritten: Number(r.tup_inserted ?? 0) + Number(r.tup_updated ?? 0) + Number(r.tup_deleted ?? 0),
      ...wal,
    };
  }

  /**
   * Makes pg_stat_statements readable on this connection, if the server has it loaded (our own
   * clusters do, see postgres.mjs); tells whether it is. A server without it (given by URL, or
   * in docker) is not an error: the statement figures are simply absent.
   */
  async enableStatements() {
    this.statements = false;
    try {
      const loaded = (await this.client.query(`SELECT current_setting('shared_preload_libraries') AS libs`)).rows[0]
        .libs;
      if (!/\bpg_stat_statements\b/.test(loaded)) return false;
      await this.client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
      // The column is total_time before Postgres 13.
      const v = Number((await this.client.query('SHOW server_version_num')).rows[0].server_version_num);
      this.execTimeColumn = v >= 130000 ? 'total_exec_time' : 'total_time';
      await this.client.query(`SELECT ${this.execTimeColumn} FROM pg_stat_statements LIMIT 1`);
      this.statements = true;
    } catch {}
    return this.statements;
  }

  /**
   * pg_stat_statements' counters of the measured database, for the given roles only (the
   * services': not this script's superuser): a Map 'userid:queryid' → { role, calls, execMs,
   * query }. Statement texts only `withText` (they are read from a file). Null without it.
   */
  async statementCounts(roles, { withText = false } = {}) {
    if (!this.statements) return null;
    try {
      const { rows } = await this.client.query(
        `SELECT s.userid::text AS userid, s.queryid::text AS queryid, r.rolname AS role,
                sum(s.calls)::float8 AS calls, sum(s.${this.execTimeColumn})::float8 AS exec_ms,
                ${withText ? 'min(s.query)' : 'NULL'} AS query
           FROM pg_stat_statements(${withText}) s
           JOIN pg_roles r ON r.oid = s.userid
          WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = $1) AND r.rolname = ANY($2)
          GROUP BY 1, 2, 3`,
        [this.db, roles],
      );
      // Entries evicted since the last read (pg_stat_statements.max): the deltas miss them.
      let dealloc = null;
      try {
        dealloc = Number((await this.client.query('SELECT dealloc FROM pg_stat_statements_info')).rows[0].dealloc);
      } catch {}
      const map = new Map();
      for (const r of rows)
        map.set(`${r.userid}:${r.queryid}`, { role: r.role, calls: r.calls, execMs: r.exec_ms, query: r.query });
      return { at: Date.now(), dealloc, map };
    } catch {
      return null;
    }
  }

  /** What the services' connections are doing right now (one row per connection). */
  async activity() {
    const { rows } = await this.client.query(
      `SELECT usename AS role, state, wait_event_type AS wtype, wait_event AS wevent
         FROM pg_stat_activity
        WHERE datname = $1 AND backend_type = 'client backend' AND pid <> pg_backend_pid()
          AND application_name NOT LIKE 'bench%'`,
      [this.db],
    );
    return rows;
  }

  async close() {
    await this.client.end().catch(() => undefined);
  }
}

/**
 * Samples the services' database connections every `intervalMs`: how many are busy (running a
 * statement, or inside a transaction waiting for the service) and what the running ones wait on.
 */
export class ActivitySampler {
  constructor(counters, intervalMs = 100) {
    this.counters = counters;
    this.intervalMs = intervalMs;
    this.samples = 0;
    this.byRole = {}; // role → { active, idleInTx, maxBusy }
    this.waits = {}; // 'CPU' | 'Lock:transactionid' | … → samples of active connections
    this.busyPerSample = [];
  }

  start() {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const t = Date.now();
        try {
          this.#add(await this.counters.activity());
        } catch {}
        await new Promise((r) => setTimeout(r, Math.max(0, this.intervalMs - (Date.now() - t))));
      }
    })();
  }

  async stop() {
    this.running = false;
    await this.loop;
  }

  #add(rows) {
    this.samples++;
    const busyNow = {};
    for (const row of rows) {
      const role = this.byRole[row.role] ?? (this.byRole[row.role] = { active: 0, idleInTx: 0, maxBusy: 0 });
      if (row.state === 'active') {
        role.active++;
        const key = row.wtype ? `${row.wtype}:${row.wevent}` : 'CPU (running)';
        this.waits[key] = (this.waits[key] ?? 0) + 1;
      } else if (row.state?.startsWith('idle in transaction')) {
        role.idleInTx++;
        this.waits['idle in transaction'] = (this.waits['idle in transaction'] ?? 0) + 1;
      } else continue;
      busyNow[row.role] = (busyNow[row.role] ?? 0) + 1;
    }
    let total = 0;
    for (const [name, n] of Object.entries(busyNow)) {
      this.byRole[name].maxBusy = Math.max(this.byRole[name].maxBusy, n);
      total += n;
    }
    this.busyPerSample.push(total);
  }

  summary() {
    const n = Math.max(1, this.samples);
    const roles = Object.fromEntries(
      Object.entries(this.byRole).map(([role, r]) => [
        role,
        { avgActive: r.active / n, avgIdleInTransaction: r.idleInTx / n, maxBusy: r.maxBusy },
      ]),
    );
    const totalBusy = Object.values(this.waits).reduce((a, b) => a + b, 0) || 1;
    const waits = Object.entries(this.waits)
      .sort((a, b) => b[1] - a[1])
      .map(([what, count]) => ({ what, share: count / totalBusy }));
    const sorted = [...this.busyPerSample].sort((a, b) => a - b);
    const p95Busy = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))] : 0;
    return { samples: this.samples, intervalMs: this.intervalMs, roles, waits, p95Busy };
  }
}

/**
 * Commit records in the WAL between two positions: the transactions that wrote something
 * (read-only ones leave none). Cluster-wide; needs the data folder, so only for our own server.
 */
export async function countCommitRecords(binDir, dataDir, fromLsn, toLsn) {
  const { out } = await run(path.join(binDir, 'pg_waldump'), [
    '-p',
    path.join(dataDir, 'pg_wal'),
    '-s',
    fromLsn,
    '-e',
    toLsn,
    '-r',
    'Transaction',
    '--stats=record',
  ]);
  const count = (type) => Number(out.match(new RegExp(`^Transaction/${type}\\s+(\\d+)`, 'm'))?.[1] ?? 0);
  return { commits: count('COMMIT'), aborts: count('ABORT') };
}

const sqlText = (q, max) => {
  const t = (q ?? '').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
};

/**
 * The statements run between two snapshots of statementCounts(), per decided order: the total,
 * per role, and per statement (text up to 200 characters, role, calls per checkout, mean
 * execution time), most called first. `idle` (a snapshot taken `idleS` before `before`) gives
 * the idle services' rate. Null when a snapshot is missing.
 */
export function statementFigures(before, after, decided, { idle = null, roles = [] } = {}) {
  if (!before || !after || !decided) return null;
  const diff = (from, to) => {
    const out = [];
    for (const [key, a] of to.map) {
      // Fewer calls than before: the entry was evicted and made anew in between; count it from 0.
      const b = from.map.get(key);
      const base = b && b.calls <= a.calls ? b : { calls: 0, execMs: 0 };
      const calls = a.calls - base.calls;
      if (calls > 0) out.push({ ...a, calls, execMs: a.execMs - base.execMs });
    }
    return out;
  };
  const rows = diff(before, after);
  const calls = rows.reduce((s, r) => s + r.calls, 0);
  const execMs = rows.reduce((s, r) => s + r.execMs, 0);
  const byRole = Object.fromEntries(roles.map((role) => [role, 0]));
  for (const r of rows) byRole[r.role] = (byRole[r.role] ?? 0) + r.calls / decided;
  let idlePerSecond = null;
  if (idle && before.at > idle.at)
    idlePerSecond = diff(idle, before).reduce((s, r) => s + r.calls, 0) / ((before.at - idle.at) / 1000);
  return {
    calls,
    perCheckout: calls / decided,
    byRolePerCheckout: byRole,
    meanExecMs: calls ? execMs / calls : null,
    idlePerSecond,
    perCheckoutNet: idlePerSecond == null ? null : (calls - idlePerSecond * ((after.at - before.at) / 1000)) / decided,
    // Entries pg_stat_statements evicted in the window (its max was reached): counts are then low.
    evicted: before.dealloc != null && after.dealloc != null ? after.dealloc - before.dealloc : null,
    list: rows
      .map((r) => ({
        role: r.role,
        callsPerCheckout: r.calls / decided,
        meanExecMs: r.execMs / r.calls,
        calls: r.calls,
        query: sqlText(r.query, 200),
      }))
      .sort((a, b) => b.calls - a.calls || a.role.localeCompare(b.role) || a.query.localeCompare(b.query)),
  };
}

// ---------------------------------------------------------------- RabbitMQ management API

/** The management API from a URL with credentials (http://user:pass@host:port). */
export function managementClient(urlWithCreds, vhost) {
  const u = new URL(urlWithCreds);
  const user = decodeURIComponent(u.username);
  const password = decodeURIComponent(u.password);
  const base = `${u.protocol}//${u.host}${u.pathname.replace(/\/$/, '')}/api`;
  const v = encodeURIComponent(vhost);
  const get = async (p) => {
    const res = await http('GET', `${base}${p}`, { user, password, timeoutMs: 5000 });
    if (res.status !== 200) throw new Error(`management GET ${p} answered ${res.status}`);
    return res.json;
  };
  return {
    vhost,
    /** Messages published into / delivered from the vhost, as counted by the broker. */
    async counters() {
      const stats = (await get(`/vhosts/${v}`)).message_stats ?? {};
      return { at: Date.now(), published: stats.publish ?? 0, delivered: stats.deliver_get ?? 0 };
    },
    async queues() {
      return get(`/queues/${v}?columns=name,messages,messages_ready,messages_unacknowledged`);
    },
  };
}

/**
 * The management API refreshes its counters every few seconds (collect_statistics_interval,
 * 5 s by default): wait until the publish count reaches what the outboxes say was sent, or has
 * not moved for longer than a refresh, so a snapshot is not a few seconds stale. Packed messages
 * (several outbox rows in one broker message) never reach the outbox count: for them it is the
 * count that stops moving.
 */
export async function settledBrokerCounters(mgmt, expectedPublished, timeoutMs = 15_000, refreshMs = 5_500) {
  const deadline = Date.now() + timeoutMs;
  let last = await mgmt.counters();
  let movedAt = Date.now();
  while (last.published < expectedPublished && Date.now() - movedAt < refreshMs && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const next = await mgmt.counters();
    if (next.published !== last.published) movedAt = Date.now();
    last = next;
  }
  return { ...last, settled: last.published >= expectedPublished || Date.now() - movedAt >= refreshMs };
}

/** Samples queue depths (as often as the management API refreshes them) and keeps the maximum. */
export class QueueSampler {
  constructor(mgmt, intervalMs = 2500) {
    this.mgmt = mgmt;
    this.intervalMs = intervalMs;
    this.max = {};
  }

  start() {
    this.timer = setInterval(async () => {
      try {
        for (const q of await this.mgmt.queues()) this.max[q.name] = Math.max(this.max[q.name] ?? 0, q.messages ?? 0);
      } catch {}
    }, this.intervalMs);
  }

  stop() {
    clearInterval(this.timer);
    return this.max;
  }
}
