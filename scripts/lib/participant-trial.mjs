// The generator's proof, as CI runs it: in a temporary copy of the project, add a participant
// with `new:participant`, then build and run the end-to-end suites there, so that every checkout
// waits for (and every invariant check covers) one participant more.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { ROOT, SERVICES } from './config.mjs';
import { StackError, activeChildren, log, run } from './util.mjs';

/**
 * The participant the trial adds: the README's example, `shipping`, unless the project has one of
 * that name already (a fork that added it), then the first free `trialparticipant<n>`.
 */
export function trialParticipantName(taken = SERVICES.map((svc) => svc.name)) {
  if (!taken.includes('shipping')) return 'shipping';
  for (let n = 1; ; n++) if (!taken.includes(`trialparticipant${n}`)) return `trialparticipant${n}`;
}
const TRIAL_PARTICIPANT = trialParticipantName();
/**
 * What the trial runs in the copy, through its own `npm test` (`npm run test:new-participant --
 * <paths>`: those instead): every end-to-end suite, and the generated participant's own, which
 * proves it says no when its pool is full.
 */
export const TRIAL_SUITES = ['test/e2e', `apps/${TRIAL_PARTICIPANT}`];

// Built, generated, or local to this copy: not copied.
const NOT_COPIED = new Set(['node_modules', 'dist', '.local', '.git', 'coverage']);

/**
 * Copies the project (node_modules as hard links: no install, and package-lock.json keeps its
 * time so the copy's stack sees its dependencies as installed), generates the participant and
 * runs the suites there, on its own servers. The copy is removed when the run passes and kept for
 * a look when it fails. `readResults(file, code)` is given the copy's jest results file before the
 * copy goes. Resolves with the copy's `npm test` exit code.
 */
export async function runParticipantTrial({ suites = TRIAL_SUITES, readResults }) {
  const copy = fs.mkdtempSync(path.join(os.tmpdir(), 'shop-participant-trial-'));
  log(`participant trial: a copy of the project in ${copy}, with '${TRIAL_PARTICIPANT}' added`);
  fs.cpSync(ROOT, copy, {
    recursive: true,
    preserveTimestamps: true,
    filter: (source) => !NOT_COPIED.has(path.basename(source)) || path.dirname(source) !== ROOT,
  });
  await run('cp', ['-al', path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules')]);
  await run(process.execPath, [path.join(copy, 'scripts', 'new-participant.mjs'), TRIAL_PARTICIPANT], {
    cwd: copy,
    stdio: 'inherit',
  }).catch(() => {
    throw new StackError(`new:participant ${TRIAL_PARTICIPANT} failed in ${copy}`);
  });
  const child = spawn(process.execPath, [path.join(copy, 'scripts', 'stack.mjs'), 'test', ...suites], {
    cwd: copy,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  activeChildren.add(child);
  const code = await new Promise((resolve) => child.on('close', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  activeChildren.delete(child);
  readResults(path.join(copy, '.local', 'jest-results.json'), code);
  if (code === 0) fs.rmSync(copy, { recursive: true, force: true });
  else log(`participant trial failed: the copy stays in ${copy}`);
  return code;
}
