import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * `--replicas` of `npm start` and `npm run bench`: one count for every service, or a count per
 * service (`order=2`), parsed in one place (scripts/lib/config.mjs) under plain Node.
 */
const ROOT = path.resolve(__dirname, '..');

function replicasOf(raw: string): { counts?: Record<string, number>; error?: string } {
  const script = `
    import { SERVICES, parseReplicas } from './scripts/lib/config.mjs';
    try {
      const of = parseReplicas(${JSON.stringify(raw)});
      console.log(JSON.stringify({ counts: Object.fromEntries(SERVICES.map((s) => [s.name, of(s.name)])) }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.message }));
    }`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`node exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as ReturnType<typeof replicasOf>;
}

describe('--replicas', () => {
  it('gives every service the same count', () => {
    expect(new Set(Object.values(replicasOf('2').counts ?? {}))).toEqual(new Set([2]));
  });

  it('gives a count per service, the others one', () => {
    const { counts } = replicasOf('order=2');
    expect(counts?.order).toBe(2);
    expect(
      Object.entries(counts ?? {})
        .filter(([name]) => name !== 'order')
        .every(([, n]) => n === 1),
    ).toBe(true);
    expect(replicasOf('order=3, payment=2').counts).toMatchObject({ order: 3, payment: 2 });
  });

  it.each([
    ['0', 'replicas must be 1 to 9 (got 0)'],
    ['10', 'replicas must be 1 to 9 (got 10)'],
    ['order=0', 'replicas of order must be 1 to 9 (got 0)'],
    ['nosuchservice=2', 'replicas: "nosuchservice=2" is not <service>=<n>'],
    ['order', 'replicas: "order" is not <service>=<n>'],
  ])('refuses %s, naming why', (raw, message) => {
    expect(replicasOf(raw).error).toContain(message);
  });
});
