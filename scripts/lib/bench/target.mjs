// What the benchmark runs against: its own stack (infra, database and vhost shop_bench, a
// production build, migrations, the three services under the Supervisor), or services that
// already run elsewhere (--order-url …). Either way: URLs, credentials, and pids to measure.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PG, SERVICES, parseReplicas, profile } from '../config.mjs';
import { findBinDir } from '../postgres.mjs';
import { build, ensureInfra, migrate } from '../project.mjs';
import { localRabbitPids } from '../rabbitmq.mjs';
import { Supervisor } from '../supervisor.mjs';
import { StackError, log, portFree, readPidFile } from '../util.mjs';

/** Starts everything the benchmark needs, like `npm start` does, on the bench profile. */
export async function startOwnStack(opts, ctx, logFile) {
  const prof = profile('bench');
  const { pg, amqp } = await ensureInfra([prof], (h) => ctx.started.push(h), opts.layout);
  ctx.abortIfInterrupted();
  if (opts.skipBuild) log('--skip-build: using the existing dist/');
  else await build();
  ctx.abortIfInterrupted();
  // NODE_ENV=production refuses the development token: every run gets a fresh one.
  // (Set here too because the migrations load the same validated config.)
  const adminToken = `bench-${randomBytes(16).toString('hex')}`;
  process.env.ADMIN_TOKEN = adminToken;
  await migrate(prof, pg, amqp);
  ctx.abortIfInterrupted();

  const sink = fs.createWriteStream(logFile, { flags: 'a' });
  ctx.cleanups.push(() => new Promise((resolve) => sink.end(resolve)));
  const supervisor = new Supervisor(prof, pg, amqp, {
    replicas: parseReplicas(opts.replicas),
    sink,
    extraEnv: (svc) => ({ ADMIN_TOKEN: adminToken, ...opts.serviceEnv.all, ...(opts.serviceEnv[svc.name] ?? {}) }),
    onGiveUp: (row) => ctx.fail(`${row.label} keeps crashing; see ${logFile}`),
  });
  ctx.supervisor = supervisor;
  for (const row of supervisor.table)
    if (!(await portFree(row.port)))
      throw new StackError(`port ${row.port} (${row.label}) is taken: is another benchmark running?`);
  log(`starting the services (NODE_ENV=production, output in ${path.relative(process.cwd(), logFile)})`);
  supervisor.start();
  await supervisor.waitReady();

  const urlsOf = (name) => supervisor.table.filter((r) => r.svc.name === name).map((r) => `http://127.0.0.1:${r.port}`);
  return {
    kind: 'own',
    urls: Object.fromEntries(SERVICES.map((s) => [s.name, urlsOf(s.name)])),
    // The broker's nodes (one, or the cluster's three); the probes and the ceiling use the first.
    brokerNodes: (amqp.nodes ?? [amqp]).map((n) => ({
      name: n.nodename ?? `${n.host}:${n.port}`,
      amqpPort: n.port,
      managementUrl: n.managementUrlWithCreds.replace(/\/\/[^@]*@/, '//'),
    })),
    adminToken,
    db: prof.db,
    pgUrl: pg.adminUrlFor(prof.db),
    pgStatsUrl: pg.adminUrlFor('postgres'),
    // Our own server's WAL can be read (pg_waldump) to count the commits that wrote.
    pgDataDir: pg.external ? null : PG.data,
    pgBinDir: pg.external ? null : findBinDir(PG),
    rabbitUrl: amqp.managementUrlWithCreds,
    vhost: prof.vhost,
    amqpUrl: amqp.adminUrlFor(prof.vhost),
    pids: () => ({
      services: Object.fromEntries(
        SERVICES.map((s) => [
          s.name,
          supervisor.table.filter((r) => r.svc.name === s.name && r.child).map((r) => r.child.pid),
        ]),
      ),
      // The private servers only: a server given by URL may be shared, and its CPU not ours.
      postgres: pg.external ? null : readPidFile(path.join(PG.data, 'postmaster.pid')),
      // Every node of the broker (its CPU is their sum), from each node's pid file.
      rabbitmq: amqp.external ? null : localRabbitPids(amqp),
    }),
    restarts: () => supervisor.table.reduce((n, r) => n + r.crashes.length, 0),
  };
}

/** Services that run elsewhere: only what the options give is measured. */
export function externalTarget(ext) {
  const strip = (u) => u.replace(/\/$/, '');
  let db = null;
  let pgStatsUrl = null;
  if (ext.pgUrl) {
    const u = new URL(ext.pgUrl);
    db = decodeURIComponent(u.pathname.slice(1)) || 'postgres';
    u.pathname = '/postgres';
    pgStatsUrl = u.toString();
  }
  return {
    kind: 'external',
    urls: Object.fromEntries(SERVICES.map((s) => [s.name, [strip(ext.urls[s.name])]])),
    adminToken: ext.adminToken,
    db,
    pgUrl: ext.pgUrl,
    pgStatsUrl,
    rabbitUrl: ext.rabbitUrl && ext.vhost ? ext.rabbitUrl : null,
    vhost: ext.vhost,
    amqpUrl: ext.amqpUrl,
    pids: () => ({ services: {} }),
    restarts: () => 0,
  };
}
