#!/usr/bin/env node
// `npm run bench`: how many orders per second, how fast is a decision, and what one checkout
// costs the database and the broker. See docs/performance.md for how to read the figures.
//
//   npm run bench                                        100 orders/s for 20 s, mix spread
//   npm run bench -- --mix hot --rate 200 --duration 30
//   npm run bench -- --concurrency 32 --count 5000
//   npm run bench -- --overload                          2 × the sustainable rate (calibrated first) for 30 s
//   npm run bench -- --smoke                             a few seconds; checks the invariants only
//   npm run bench -- --broker-cluster                    100 orders/s, on the three-node RabbitMQ cluster
//   npm run bench -- --help
//
// Like `npm start`, from a fresh clone: `npm ci` if needed, the private Postgres and RabbitMQ
// (started if not running, and then stopped at the end), its own database and vhost
// `shop_bench` (recreated on every run), a production build, the migrations, and the three
// services on ports 23000-23002. Results go to bench-results/<run>/ (JSON, Markdown, SVG chart).
// Exit code 1 when an invariant is broken (or the run could not be made), 0 otherwise.
import { ensureDependencies, stopStarted } from './lib/project.mjs';
import { USAGE, parseOptions } from './lib/bench/options.mjs';
import { onSupportedRuntime } from './lib/runtime.mjs';
import { StackError, activeChildren, color, fail } from './lib/util.mjs';

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (err) {
  fail(err.message);
  process.exit(2);
}
if (opts.help) {
  console.log(USAGE);
  process.exit(0);
}
await onSupportedRuntime();

// What every exit path must undo: the services, the servers this run started, open connections.
const ctx = {
  started: [],
  supervisor: null,
  cleanups: [],
  interrupted: false,
  failure: null,
  fail(message) {
    this.failure ??= message;
  },
  shouldStop() {
    return this.interrupted || this.failure !== null;
  },
  abortIfInterrupted() {
    if (this.failure) throw new StackError(this.failure);
    if (this.interrupted) throw new StackError('interrupted');
  },
  stopServices() {
    this.stopping ??= this.supervisor?.stop() ?? Promise.resolve();
    return this.stopping;
  },
};

let signals = 0;
const onSignal = (sig) => {
  if (++signals === 1) {
    console.error(color('yellow', `\n[bench] ${sig}: stopping the run and cleaning up…`));
    ctx.interrupted = true;
    void ctx.stopServices(); // at once, so the Supervisor does not restart what the signal stopped
    for (const child of activeChildren) child.kill(sig);
  } else {
    // A second Ctrl-C: don't wait for graceful exits any more (the servers are still stopped).
    for (const row of ctx.supervisor?.table ?? []) row.child?.kill('SIGKILL');
    for (const child of activeChildren) child.kill('SIGKILL');
  }
};
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, onSignal);

let code = 1; // unless the run completes and says otherwise
try {
  await ensureDependencies();
  ctx.abortIfInterrupted();
  // Imported only now: it needs pg and amqplib, which `npm ci` may just have installed.
  const { runBenchmark } = await import('./lib/bench/run.mjs');
  const args = process.argv.slice(2);
  code = await runBenchmark(opts, ctx, `npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}`);
} catch (err) {
  if (err instanceof StackError) fail(err.message);
  else fail(err?.stack ?? String(err));
} finally {
  await ctx.stopServices();
  for (const cleanup of ctx.cleanups.reverse()) await cleanup();
  await stopStarted(ctx.started);
}
process.exit(ctx.interrupted ? 130 : code);
