// Runs the services as child processes: prefixed output, restart on unexpected exit with
// backoff, a crash-loop cap, and an orderly shutdown.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SERVICES, managementPortOf, serviceEnv } from './config.mjs';
import { entry, labelOf, pipeLines, prefixer } from './project.mjs';
import { StackError, color, fail, http, log, sleep, waitFor, warn } from './util.mjs';

const CRASH_WINDOW_MS = 60_000;
const MAX_CRASHES = 5; // within CRASH_WINDOW_MS, then give up
const STOP_TIMEOUT_MS = 10_000;

export class Supervisor {
  /**
   * One row per running process, keyed by (service, replica). `replicas(name)` is a service's
   * process count (`parseReplicas`); each replica has its own port.
   * `extraEnv(svc)` adds settings to a service's environment (the benchmark's token and knobs);
   * `sink` takes the services' output instead of the terminal.
   */
  constructor(prof, pg, amqp, { replicas = () => 1, onGiveUp, extraEnv = () => ({}), sink } = {}) {
    this.onGiveUp = onGiveUp;
    this.sink = sink;
    this.stopping = false;
    this.table = [];
    for (const svc of SERVICES) {
      const file = entry(svc, 'main');
      if (!fs.existsSync(file))
        throw new StackError(`${path.relative(ROOT, file)} does not exist (did the build produce it?)`);
      for (let replica = 0; replica < replicas(svc.name); replica++) {
        const env = { ...serviceEnv(svc, prof, pg, amqp), ...extraEnv(svc) };
        const port = Number(env.PORT) + replica * 100; // replica ports: 3000, 3100, 3200…
        const managementPort = managementPortOf(port); // health and metrics: 9100, 9200, 9300…
        env.PORT = String(port);
        env.MANAGEMENT_PORT = String(managementPort);
        const label = labelOf(svc, replica);
        this.table.push({ svc, replica, port, managementPort, file, env, child: null, crashes: [], label });
      }
    }
  }

  start() {
    for (const row of this.table) this.#spawn(row);
  }

  #spawn(row) {
    const child = spawn(process.execPath, [row.file], {
      cwd: ROOT,
      // The services log JSON lines; in a terminal, the readable format suits a person better.
      env: { LOG_FORMAT: process.stdout.isTTY ? 'pretty' : 'json', ...process.env, ...row.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    row.child = child;
    pipeLines(child, prefixer(row.svc, row.replica), this.sink);
    child.on('error', (err) => warn(`${row.label}: ${err.message}`));
    child.on('exit', (code, signal) => {
      row.child = null;
      row.exited?.();
      if (!this.stopping) this.#crashed(row, signal ?? `exit code ${code}`);
    });
  }

  async #crashed(row, how) {
    const now = Date.now();
    row.crashes = row.crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    row.crashes.push(now);
    if (row.crashes.length >= MAX_CRASHES) {
      fail(
        color(
          'bold',
          `${row.label} exited ${MAX_CRASHES} times within ${CRASH_WINDOW_MS / 1000} s (last: ${how}); giving up.`,
        ),
      );
      this.onGiveUp?.(row);
      return;
    }
    const delay = Math.min(500 * 2 ** (row.crashes.length - 1), 8_000);
    warn(`${row.label} exited unexpectedly (${how}); restarting in ${delay} ms`);
    // The delay also lets a Ctrl-C (which the child sees too) mark us as stopping first.
    await sleep(delay);
    if (!this.stopping) this.#spawn(row);
  }

  /** Wait until every process answers 200 on /health/ready (on its management port). */
  async waitReady(timeoutMs = 90_000) {
    await Promise.all(
      this.table.map((row) =>
        waitFor(
          `${row.label} to answer GET http://127.0.0.1:${row.managementPort}/health/ready with 200`,
          async () => {
            if (this.stopping) throw new StackError('stopped while waiting for the services');
            try {
              return (
                (await http('GET', `http://127.0.0.1:${row.managementPort}/health/ready`, { timeoutMs: 2000 }))
                  .status === 200
              );
            } catch {
              return false;
            }
          },
          { timeoutMs, intervalMs: 300 },
        ),
      ),
    );
  }

  /** SIGTERM everything, wait for exits, SIGKILL what is left after the timeout. */
  async stop() {
    this.stopping = true;
    const running = this.table.filter((r) => r.child);
    if (running.length) log(`stopping ${running.map((r) => r.label).join(', ')}`);
    await Promise.all(
      running.map(
        (row) =>
          new Promise((resolve) => {
            const child = row.child;
            if (!child) return resolve();
            const timer = setTimeout(() => {
              warn(`${row.label} did not exit within ${STOP_TIMEOUT_MS / 1000} s; killing it`);
              child.kill('SIGKILL');
            }, STOP_TIMEOUT_MS);
            row.exited = () => {
              clearTimeout(timer);
              resolve();
            };
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
