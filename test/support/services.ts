import { ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { COORDINATOR, PARTICIPANTS, SERVICE_NAMES, type ServiceName } from '@shop/contracts';
import { MANAGEMENT_PORT_OFFSET } from '@shop/service-kit';
import { requireEnv } from './env';

/**
 * Runs the built services (dist/apps/<svc>/src/main.js, every one services.json lists) as real
 * child processes for an end-to-end suite. Each Jest worker gets its own ports (see `portFor`);
 * suites share the database and the queues, so the processes of concurrently running suites are
 * simply extra replicas of each service.
 *
 *   const stack = await startServices({ env: { order: { PREPARE_TIMEOUT_MS: '5000' } } });
 *   ...
 *   await stack.stop();
 */

// The services are declared once, in services.json (through the contracts).
export { SERVICE_NAMES, type ServiceName } from '@shop/contracts';

/** How many stacks one Jest worker may run side by side (`StartOptions.stack`). */
export const STACKS_PER_WORKER = 2;

const ROOT = path.resolve(__dirname, '..', '..');
const OUTPUT_LINES = 400;
const DEFAULT_READY_TIMEOUT_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 15_000;

/** The admin bearer token the apps expect on admin routes (dev default, overridable). */
export const ADMIN_TOKEN = process.env.ADMIN_TOKEN ?? 'dev-admin-token';

export type EnvOverrides = Record<string, string | undefined>;

/**
 * The order service's per-customer limits out of the way, for suites that play many customers'
 * orders through a few (contention, faults, the cluster): what they test is not the door.
 */
export const NO_CUSTOMER_LIMITS: EnvOverrides = {
  MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER: '1000000',
  CUSTOMER_ORDER_RATE: '1000000',
  CUSTOMER_ORDER_BURST: '1000000',
};

export interface StartOptions {
  /** Extra environment for every service (`all`) and per service; later wins. */
  env?: Partial<Record<ServiceName | 'all', EnvOverrides>>;
  /** Which services to start (default: all). */
  services?: readonly ServiceName[];
  /** Which of this worker's stacks, for a second one beside the first: 0 (default) or 1. */
  stack?: number;
  readyTimeoutMs?: number;
  /** Copy each process's output to this process's stdout as it comes (also E2E_SERVICE_LOGS=1). */
  echo?: boolean;
}

function workerIndex(): number {
  const id = Number(process.env.JEST_WORKER_ID ?? '1');
  return Number.isInteger(id) && id > 0 ? id - 1 : 0;
}

/**
 * The port a service gets in stack `stack` of this Jest worker. The services' test ports
 * (<SVC>_PORT) are consecutive, one per service: a stack takes as many ports as there are
 * services, a worker STACKS_PER_WORKER stacks' worth, so none overlap however many services
 * services.json lists. Plus E2E_PORT_OFFSET, to run a second test run on the same machine.
 */
export function portFor(service: ServiceName, stack = 0): number {
  if (!Number.isInteger(stack) || stack < 0 || stack >= STACKS_PER_WORKER) {
    throw new Error(`stack ${stack}: a worker runs stacks 0 to ${STACKS_PER_WORKER - 1}`);
  }
  const base = Number(requireEnv(`${service.toUpperCase()}_PORT`));
  const runOffset = Number(process.env.E2E_PORT_OFFSET ?? '0');
  if (!Number.isInteger(runOffset)) throw new Error(`E2E_PORT_OFFSET=${process.env.E2E_PORT_OFFSET} is not an integer`);
  const perStack = SERVICE_NAMES.length;
  return base + perStack * (STACKS_PER_WORKER * workerIndex() + stack) + runOffset;
}

/** A service's management port, derived from its port as the stack derives it (scripts/lib/config.mjs). */
const managementPortFor = (port: number) => port + MANAGEMENT_PORT_OFFSET;

function portTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.setTimeout(1_000);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** True if `promise` settles within `ms`, false otherwise; leaves no timer behind. */
async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Every process any stack in this worker started, so a crashing worker does not leak them. */
const allChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of allChildren) child.kill('SIGKILL');
});

/** One service process: its output (kept as a ring buffer of lines), readiness, and signals. */
export class ServiceProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  private readonly lines: string[] = [];
  private partial = { stdout: '', stderr: '' };
  /** How the last process exited (undefined while running or never started). */
  lastExit: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(
    readonly name: ServiceName,
    readonly port: number,
    private env: NodeJS.ProcessEnv,
    private readonly echo: boolean,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Health and metrics: never on `url`, only on the management port (PORT + its offset). */
  get managementUrl(): string {
    return `http://127.0.0.1:${managementPortFor(this.port)}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The last `n` lines the process wrote (stdout and stderr interleaved). */
  tail(n = 60): string {
    return this.lines.slice(-n).join('\n');
  }

  /** Spawns the process and waits until GET /health/ready answers 200. */
  async start(options: { readyTimeoutMs?: number; env?: EnvOverrides } = {}): Promise<void> {
    if (this.child) throw new Error(`${this.name} is already running (pid ${this.child.pid})`);
    if (options.env) this.env = { ...this.env, ...options.env };
    const entry = path.join(ROOT, 'dist', 'apps', this.name, 'src', 'main.js');
    if (!fs.existsSync(entry)) throw new Error(`${entry} does not exist: run \`npm run build\` (npm test does)`);
    if (await portTaken(this.port)) {
      throw new Error(`port ${this.port} for ${this.name} is already taken (a leftover process?)`);
    }
    const child = spawn(process.execPath, [entry], {
      cwd: ROOT,
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.lastExit = undefined;
    allChildren.add(child);
    this.record(`--- started ${this.name} pid ${child.pid} on port ${this.port}`);
    child.stdout?.on('data', (chunk: Buffer) => this.collect('stdout', chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.collect('stderr', chunk));
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => this.record(`--- spawn error: ${err.message}`));
      child.once('exit', (code, signal) => {
        allChildren.delete(child);
        if (this.child === child) this.child = undefined;
        this.lastExit = { code, signal };
        this.record(`--- ${this.name} pid ${child.pid} exited (${signal ?? `code ${code}`})`);
        resolve({ code, signal });
      });
    });
    try {
      await this.waitReady(options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
    } catch (err) {
      await this.stop({ timeoutMs: 5_000 });
      const detail = err instanceof Error ? err.message : String(err);
      throw new Error(
        `${this.name} did not become ready: ${detail}\n--- last output of ${this.name}:\n${this.tail()}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Polls GET /health/ready (on the management port) until 200, failing early if the process exits. */
  async waitReady(timeoutMs = DEFAULT_READY_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      if (!this.child) throw new Error(`process exited (${describeExit(this.lastExit)})`);
      try {
        const response = await fetch(`${this.managementUrl}/health/ready`, { signal: AbortSignal.timeout(2_000) });
        const body = await response.text();
        if (response.status === 200) return;
        last = `${response.status} ${body.slice(0, 200)}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() > deadline) throw new Error(`no 200 from /health/ready within ${timeoutMs} ms (last: ${last})`);
      await delay(100);
    }
  }

  /** Sends a signal and waits for the process to exit (for crash tests: SIGKILL). */
  async kill(signal: NodeJS.Signals = 'SIGKILL', timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
    const child = this.child;
    if (!child || !this.exited) return;
    child.kill(signal);
    const done = await within(this.exited, timeoutMs);
    if (!done) throw new Error(`${this.name} (pid ${child.pid}) did not exit within ${timeoutMs} ms of ${signal}`);
  }

  /**
   * Pauses the process (SIGSTOP), as a VM pause or a wedged host would: it keeps its sockets open
   * (the kernel still answers for it: no keepalive notices) but runs nothing until `resume()`.
   */
  suspend(): void {
    if (!this.child) throw new Error(`${this.name} is not running`);
    this.child.kill('SIGSTOP');
    this.record(`--- ${this.name} pid ${this.child.pid} suspended (SIGSTOP)`);
  }

  /** Lets a suspended process run again (SIGCONT). */
  resume(): void {
    if (!this.child) return;
    this.child.kill('SIGCONT');
    this.record(`--- ${this.name} pid ${this.child.pid} resumed (SIGCONT)`);
  }

  /** SIGTERM, wait for a graceful exit; SIGKILL after the timeout. Returns how it exited. */
  async stop({ timeoutMs = DEFAULT_STOP_TIMEOUT_MS } = {}): Promise<{ graceful: boolean }> {
    const child = this.child;
    if (!child || !this.exited) return { graceful: true };
    child.kill('SIGCONT'); // a suspended process would not see the SIGTERM
    child.kill('SIGTERM');
    const graceful = await within(this.exited, timeoutMs);
    if (!graceful) {
      this.record(`--- ${this.name} did not exit within ${timeoutMs} ms of SIGTERM; SIGKILL`);
      child.kill('SIGKILL');
      await this.exited;
    }
    return { graceful };
  }

  private collect(stream: 'stdout' | 'stderr', chunk: Buffer): void {
    const text = this.partial[stream] + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.record(stream === 'stderr' ? `[err] ${line}` : line);
  }

  private record(line: string): void {
    this.lines.push(line);
    if (this.lines.length > OUTPUT_LINES) this.lines.splice(0, this.lines.length - OUTPUT_LINES);
    if (this.echo) process.stdout.write(`[${this.name}:${this.port}] ${line}\n`);
  }
}

function describeExit(exit: { code: number | null; signal: NodeJS.Signals | null } | undefined): string {
  if (!exit) return 'unknown';
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/** The services of one suite (every one services.json lists). */
export class Services {
  constructor(
    readonly processes: Record<ServiceName, ServiceProcess>,
    private readonly readyTimeoutMs: number,
  ) {}

  get order(): ServiceProcess {
    return this.processes.order;
  }

  get payment(): ServiceProcess {
    return this.processes.payment;
  }

  get inventory(): ServiceProcess {
    return this.processes.inventory;
  }

  url(service: ServiceName): string {
    return this.processes[service].url;
  }

  /** Where `service` serves /health/* and /metrics. */
  managementUrl(service: ServiceName): string {
    return this.processes[service].managementUrl;
  }

  /** Signals one service and waits for it to exit (default SIGKILL: a crash). */
  kill(service: ServiceName, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.processes[service].kill(signal);
  }

  /** Starts a service that was killed or stopped (same port), optionally with changed env. */
  async start(service: ServiceName, env?: EnvOverrides): Promise<void> {
    await this.processes[service].start({ readyTimeoutMs: this.readyTimeoutMs, env });
  }

  /** Graceful stop (SIGTERM) then start again, optionally with changed env. */
  async restart(service: ServiceName, env?: EnvOverrides): Promise<void> {
    await this.processes[service].stop();
    await this.start(service, env);
  }

  /** Output tails of every service, for failure messages. */
  tails(n = 40): string {
    return SERVICE_NAMES.map((name) => `--- ${name}:\n${this.processes[name].tail(n)}`).join('\n');
  }

  /** Stops every running service (SIGTERM, SIGKILL after the timeout), all at once. */
  async stop(): Promise<void> {
    const results = await Promise.all(
      SERVICE_NAMES.map(async (name) => ({ name, ...(await this.processes[name].stop()) })),
    );
    const forced = results.filter((r) => !r.graceful).map((r) => r.name);
    if (forced.length) console.warn(`killed after the SIGTERM timeout: ${forced.join(', ')}`);
  }
}

/**
 * The environment one service process gets: its role's URLs, its port, and overrides. The
 * coordinator's console asks each participant for its own records, on its port here.
 */
function serviceEnv(service: ServiceName, port: number, options: StartOptions): NodeJS.ProcessEnv {
  const key = service.toUpperCase();
  const participantUrls = PARTICIPANTS.map((p) => `${p}=http://127.0.0.1:${portFor(p, options.stack)}`).join(',');
  return {
    ...process.env,
    NODE_ENV: 'test',
    SERVICE_NAME: service,
    PORT: String(port),
    MANAGEMENT_PORT: String(managementPortFor(port)),
    DATABASE_URL: requireEnv(`${key}_DATABASE_URL`),
    AMQP_URL: requireEnv(`${key}_AMQP_URL`),
    ADMIN_TOKEN,
    ...(service === COORDINATOR ? { CONSOLE_PARTICIPANT_URLS: participantUrls } : {}),
    ...options.env?.all,
    ...options.env?.[service],
  };
}

/** Starts the services (in parallel) and waits until each answers /health/ready. */
export async function startServices(options: StartOptions = {}): Promise<Services> {
  const echo = options.echo ?? process.env.E2E_SERVICE_LOGS === '1';
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const processes = Object.fromEntries(
    SERVICE_NAMES.map((name) => {
      const port = portFor(name, options.stack);
      return [name, new ServiceProcess(name, port, serviceEnv(name, port, options), echo)];
    }),
  ) as Record<ServiceName, ServiceProcess>;
  const services = new Services(processes, readyTimeoutMs);
  const wanted = options.services ?? SERVICE_NAMES;
  const results = await Promise.allSettled(wanted.map((name) => processes[name].start({ readyTimeoutMs })));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failures.length) {
    await services.stop();
    const text = failures.map((f) => (f instanceof Error ? f.message : String(f))).join('\n\n');
    console.error(text);
    throw new Error(text);
  }
  return services;
}
