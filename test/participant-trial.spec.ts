import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

/** What `trialParticipantName` (scripts/lib/participant-trial.mjs) answers for these taken names. */
function trialName(taken: string[]): string {
  const script = `import { trialParticipantName } from ${JSON.stringify(path.join(ROOT, 'scripts/lib/participant-trial.mjs'))};
    process.stdout.write(trialParticipantName(${JSON.stringify(taken)}));`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  expect(result.stderr).toBe('');
  return result.stdout;
}

describe("the participant trial's name", () => {
  it("is the README's example, shipping, while the project has none of that name", () => {
    expect(trialName(['order', 'payment', 'inventory'])).toBe('shipping');
  });

  it('is a free name in a fork that added shipping itself', () => {
    expect(trialName(['order', 'payment', 'inventory', 'shipping'])).toBe('trialparticipant1');
    expect(trialName(['order', 'shipping', 'trialparticipant1'])).toBe('trialparticipant2');
  });
});
