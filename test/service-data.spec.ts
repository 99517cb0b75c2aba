import { spawnSync } from 'node:child_process';
import path from 'node:path';

/**
 * The services' data hooks (apps/<name>/data.ts) as the demo seed and the benchmark run them:
 * under plain Node, outside the app (scripts/lib/service-data.mjs), for the demo shop.
 */
const ROOT = path.resolve(__dirname, '..');

function demoRequests(): Array<{ service: string; method: string; path: string; body: unknown }> {
  const script = `
    import { adminRequestsFor } from './scripts/lib/service-data.mjs';
    import { DEMO_SHOP } from './scripts/lib/seed.mjs';
    console.log(JSON.stringify(await adminRequestsFor(DEMO_SHOP)));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`node exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout) as ReturnType<typeof demoRequests>;
}

describe("the services' data hooks", () => {
  it('turn the demo shop into each service’s admin requests, the catalog first', () => {
    const requests = demoRequests();
    expect(requests.filter((r) => r.service === 'order')).toEqual([
      {
        service: 'order',
        method: 'PUT',
        path: '/products/SKU-001',
        body: { name: 'Espresso beans, 1 kg', unitPrice: 1899 },
      },
      { service: 'order', method: 'PUT', path: '/products/SKU-002', body: { name: 'Ceramic mug', unitPrice: 1250 } },
      {
        service: 'order',
        method: 'PUT',
        path: '/products/SKU-003',
        body: { name: 'Pour-over kettle', unitPrice: 4500 },
      },
    ]);
    expect(requests.filter((r) => r.service === 'inventory')).toEqual(
      ['SKU-001', 'SKU-002', 'SKU-003'].map((sku) => ({
        service: 'inventory',
        method: 'PUT',
        path: `/stock/${sku}`,
        body: { quantity: 100 },
      })),
    );
    expect(requests.filter((r) => r.service === 'payment')).toEqual(
      ['alice', 'bob'].map((customerId) => ({
        service: 'payment',
        method: 'PUT',
        path: `/accounts/${customerId}`,
        body: { balance: 100_000 },
      })),
    );
    expect(requests[0].service).toBe('order');
  });
});
