#!/usr/bin/env node
// `npm run new:participant -- <name>`: scaffolds a checkout participant. It adds <name> to
// services.json, writes the app (its service definition, module, config, first migration and the
// entities of its tables, a resource that can say no, a place in a pool, meant to be replaced;
// its admin API, data hook, invariant checks and e2e suite), its contract, registers the
// contract and the order service's request for it, then runs `npm run generate` for everything the list drives (roles,
// schemas, broker users, ports, compose, Prometheus). After it, `npm start` runs one service more
// and a checkout waits for its vote.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SERVICE_NAME, SERVICES_FILE } from './lib/config.mjs';
import { ensureDependencies } from './lib/project.mjs';
import { onSupportedRuntime } from './lib/runtime.mjs';
import { StackError, color, fail } from './lib/util.mjs';

const TEMPLATES = path.join(ROOT, 'scripts', 'templates', 'participant');
/** The order service's prepare request per participant; the new entry goes before this line. */
const PREPARE_REQUESTS = path.join(ROOT, 'apps', 'order', 'src', 'orders', 'prepare-requests.ts');
const PREPARE_REQUESTS_MARKER = '// npm run new:participant adds the next entry above this line.';

const USAGE = `usage: npm run new:participant -- <name>

  <name>  the participant's name: lower-case letters and digits, starting with a letter
          (it names the app folder, the schema <name>_svc, the broker user and its queues)`;

function placeholders(name, port) {
  return {
    __name__: name,
    __Name__: name[0].toUpperCase() + name.slice(1),
    __NAME__: name.toUpperCase(),
    __port__: String(port),
    // Migrations run in timestamp order; the participant's own come after the kit's.
    __timestamp__: String(Date.now()),
  };
}

const fill = (text, values) => Object.entries(values).reduce((out, [key, value]) => out.replaceAll(key, value), text);

/** Every template file, as [path relative to the templates, path relative to the repo]. */
function templateFiles(dir = TEMPLATES, values) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return templateFiles(full, values);
    const relative = path.relative(TEMPLATES, full);
    return [[full, fill(relative, values).replace(/\.tmpl$/, '')]];
  });
}

function check(name, services) {
  if (!SERVICE_NAME.test(name ?? '')) throw new StackError(`'${name ?? ''}' is not a participant name\n\n${USAGE}`);
  const taken = [services.coordinator, ...services.participants].map((s) => s.name);
  if (taken.includes(name)) throw new StackError(`'${name}' is already in services.json`);
  if (fs.existsSync(path.join(ROOT, 'apps', name))) throw new StackError(`apps/${name} exists already`);
}

function addPrepareRequest(name) {
  const source = fs.readFileSync(PREPARE_REQUESTS, 'utf8');
  if (!source.includes(PREPARE_REQUESTS_MARKER)) {
    throw new StackError(`${path.relative(ROOT, PREPARE_REQUESTS)} lost its line "${PREPARE_REQUESTS_MARKER}"`);
  }
  const entry = `  ${name}: ({ request }) => ({ pool: request.${name}Pool ?? 'default', customerId: request.customerId }),\n`;
  fs.writeFileSync(
    PREPARE_REQUESTS,
    source.replace(`  ${PREPARE_REQUESTS_MARKER}`, `${entry}  ${PREPARE_REQUESTS_MARKER}`),
  );
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) return console.log(USAGE);
  if (args.length !== 1) throw new StackError(USAGE);
  const [name] = args;
  const services = JSON.parse(fs.readFileSync(SERVICES_FILE, 'utf8'));
  check(name, services);
  // Before writing anything: `npm run generate` formats with the project's prettier.
  await onSupportedRuntime();
  await ensureDependencies();

  const all = [services.coordinator, ...services.participants];
  const port = Math.max(...all.map((s) => s.port)) + 1;
  const values = placeholders(name, port);
  const written = [];
  for (const [template, target] of templateFiles(TEMPLATES, values)) {
    const file = path.join(ROOT, target);
    if (fs.existsSync(file)) throw new StackError(`${target} exists already`);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, fill(fs.readFileSync(template, 'utf8'), values));
    written.push(target);
  }
  services.participants.push({ name, port });
  fs.writeFileSync(SERVICES_FILE, `${JSON.stringify(services, null, 2)}\n`);
  addPrepareRequest(name);
  // A process of its own: it reads services.json as it is now.
  const generated = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'generate.mjs')], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line.startsWith('wrote '))
    .map((line) => line.slice('wrote '.length));

  const list = (files) => files.map((f) => `    ${f}`).join('\n');
  console.log(`${color('green', `${name} is a participant`)} (port ${port}).

  Written from scripts/templates/participant:
${list(written)}
  Changed: services.json, ${path.relative(ROOT, PREPARE_REQUESTS)}
  Generated from services.json (npm run generate):
${list(generated)}

  It works as written, and can say no: each checkout takes a place in one of ${name}'s pools
  (PUT /pools/<pool> sets one's capacity), refused when the pool is full or unknown.

  Next (docs/adding-a-participant.md walks through it, with delivery slots):
    1. libs/contracts/src/participants/${name}.ts: what the order body carries for ${name},
       what the order asks of it, and its reasons to say no.
    2. ${path.relative(ROOT, PREPARE_REQUESTS)}: build that request from the order.
    3. apps/${name}/src/${name}-requests.ts: prepare / commit / abort against your own tables
       (apps/${name}/src/migrations); apps/${name}/data.ts: what the demo, the tests and the
       benchmark need of ${name}; apps/${name}/checks: what must always hold in its tables.
    npm start runs it with the others; npm test checks it with them, and runs apps/${name}/test.`);
}

main().catch((err) => {
  fail(err instanceof StackError ? err.message : (err?.stack ?? String(err)));
  process.exit(1);
});
