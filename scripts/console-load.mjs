#!/usr/bin/env node
// Does an open console slow the shop down? Runs `npm run bench` several times, alternately with no
// console page open and with N signed-in headless Chromium pages on the live view of the bench's
// order service (its management port), and prints each run's decided/s beside the machine's load.
//
//   node scripts/console-load.mjs                       2 rounds, 1 page, bench --concurrency 128 --duration 20
//   node scripts/console-load.mjs --pages 4 --rounds 3 -- --concurrency 128 --duration 20 --skip-build
//
// The bench gives its services a fresh admin token every run; as root (the bench's own stack) the
// script reads it from the order process's environment, the way an operator would copy it from
// the service's configuration. Needs Chromium (`npm test` installs it) and a build (`npm run build`).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MANAGEMENT_PORT_OFFSET, SERVICES, profile } from './lib/config.mjs';
import { chromiumPath } from './lib/browser.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) {
  console.log('usage: node scripts/console-load.mjs [--pages N] [--rounds R] [-- bench options]');
  process.exit(0);
}
const split = argv.indexOf('--');
const own = split < 0 ? argv : argv.slice(0, split);
const benchArgs = split < 0 ? ['--concurrency', '128', '--duration', '20', '--skip-build'] : argv.slice(split + 1);
const option = (name, fallback) => {
  const i = own.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(own[i + 1]);
};
const pages = option('pages', 1);
const rounds = option('rounds', 2);

const order = SERVICES.find((s) => s.name === 'order');
const managementPort = profile('bench').portOf(order) + MANAGEMENT_PORT_OFFSET;
const consoleUrl = `http://127.0.0.1:${managementPort}/console`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The pid listening on the port (ss), and the ADMIN_TOKEN in its environment. */
function adminTokenOnPort(port) {
  const out = execFileSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (!pid) return undefined;
  const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  return environ.find((line) => line.startsWith('ADMIN_TOKEN='))?.slice('ADMIN_TOKEN='.length);
}

async function ready(url) {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1_000) })).status === 200;
  } catch {
    return false;
  }
}

/** Opens `count` signed-in pages on the live view as soon as the bench's order service is up. */
async function openPages(count, benchExited) {
  const { chromium } = await import('playwright-core');
  const health = `http://127.0.0.1:${managementPort}/health/ready`;
  while (!(await ready(health))) {
    if (benchExited()) throw new Error('the bench ended before its order service was ready');
    await sleep(100);
  }
  const token = adminTokenOnPort(managementPort);
  if (!token) throw new Error(`no ADMIN_TOKEN found for the process on port ${managementPort}`);
  const root = process.getuid?.() === 0;
  const browser = await chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [...(root ? ['--no-sandbox'] : []), '--disable-dev-shm-usage', '--disable-gpu'],
  });
  const tabs = [];
  for (let i = 0; i < count; i++) {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await page.goto(`${consoleUrl}/sign-in`);
    await page.locator('#token').fill(token);
    await Promise.all([page.waitForURL((url) => url.pathname === '/console'), page.locator('#sign-in button').click()]);
    await page.locator('main#live').waitFor();
    tabs.push(page);
  }
  console.log(`[console-load] ${count} page(s) open on ${consoleUrl}`);
  return {
    /** What the pages show at the end (their live figures), to prove they were live. */
    async close() {
      const shown = [];
      for (const page of tabs)
        shown.push({
          decidedPerSecond: (await page.locator('#decided-per-second').textContent())?.trim(),
          rows: await page.locator('#checkouts tr[data-checkout-id]').count(),
        });
      await browser.close();
      return shown;
    },
  };
}

async function benchRun(withPages) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'console-load-'));
  const load = fs.readFileSync('/proc/loadavg', 'utf8').trim();
  console.log(`\n[console-load] bench ${withPages ? `with ${pages} page(s)` : 'with no page'}; load ${load}`);
  const child = spawn(process.execPath, [path.join(ROOT, 'scripts', 'bench.mjs'), ...benchArgs, '--out', out], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let exited = false;
  const done = new Promise((resolve) =>
    child.on('close', (code) => {
      exited = true;
      resolve(code);
    }),
  );
  const opened = withPages ? await openPages(pages, () => exited) : undefined;
  const code = await done;
  const shown = opened ? await opened.close() : undefined;
  const [run] = fs.readdirSync(out);
  const result = run && JSON.parse(fs.readFileSync(path.join(out, run, 'result.json'), 'utf8'));
  return {
    withPages,
    code,
    loadBefore: load,
    loadAfter: fs.readFileSync('/proc/loadavg', 'utf8').trim(),
    decidedPerSecond: result?.rates?.decidedPerSecond,
    steadyDecidedPerSecond: result?.rates?.steadyDecidedPerSecond,
    shown,
  };
}

if (!fs.existsSync(chromiumPath())) {
  console.error(`${chromiumPath()} is missing: \`npm test -- test/browser\` installs Chromium (apt)`);
  process.exit(2);
}
const runs = [];
for (let round = 0; round < rounds; round++)
  for (const withPages of round % 2 ? [true, false] : [false, true]) runs.push(await benchRun(withPages));

console.log(`\n[console-load] bench ${benchArgs.join(' ')}; ${pages} page(s) on ${consoleUrl} when open`);
console.log('run | pages | decided/s | steady decided/s | load before → after | exit');
runs.forEach((r, i) =>
  console.log(
    `${i + 1} | ${r.withPages ? pages : 0} | ${r.decidedPerSecond?.toFixed(1)} | ${r.steadyDecidedPerSecond?.toFixed(1)} | ${r.loadBefore} → ${r.loadAfter} | ${r.code}${r.shown ? ` | pages showed ${JSON.stringify(r.shown)}` : ''}`,
  ),
);
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const without = mean(runs.filter((r) => !r.withPages).map((r) => r.decidedPerSecond));
const withOpen = mean(runs.filter((r) => r.withPages).map((r) => r.decidedPerSecond));
console.log(
  `mean decided/s: ${without.toFixed(1)} with no page, ${withOpen.toFixed(1)} with ${pages} open (${(((withOpen - without) / without) * 100).toFixed(1)} %)`,
);
