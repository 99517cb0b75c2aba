import { randomBytes } from 'node:crypto';

/**
 * Names for the SKUs and customers of one suite run. Suites share the database, so every name
 * carries a random run tag; and every suite that places orders uses the `e2e.` prefix, which
 * lets a suite that must prove "nothing was written" (bad-input) ignore the other suites' rows.
 */
export const SUITE_PREFIX = 'e2e.';

export function runIds(suite: string) {
  const tag = `${SUITE_PREFIX}${suite}-${randomBytes(4).toString('hex')}`;
  return {
    tag,
    sku: (name: string) => `${tag}-${name}`,
    customer: (name: string) => `${tag}-${name}`,
  };
}
