// Demo data for the dev stack: each service's data hook (apps/<name>/data.ts) for the demo shop,
// sent through its admin REST API. Idempotent (PUTs).
import { SERVICES } from './config.mjs';
import { adminRequestsFor } from './service-data.mjs';
import { http, log, warn } from './util.mjs';

/** The demo shop: three products, two customers who can pay for what the demo is likely to try. */
export const DEMO_SHOP = {
  products: [
    { sku: 'SKU-001', name: 'Espresso beans, 1 kg', unitPrice: 1899, units: 100 }, // integer cents
    { sku: 'SKU-002', name: 'Ceramic mug', unitPrice: 1250, units: 100 },
    { sku: 'SKU-003', name: 'Pour-over kettle', unitPrice: 4500, units: 100 },
  ],
  customers: [
    { customerId: 'alice', spend: 100_000 },
    { customerId: 'bob', spend: 100_000 },
  ],
  orders: 1_000,
};

export async function seed(portOf) {
  const headers = { authorization: `Bearer ${process.env.ADMIN_TOKEN ?? 'dev-admin-token'}` };
  const requests = await adminRequestsFor(DEMO_SHOP);
  const refused = new Set(); // a service whose admin API is not there yet: the rest still seeds
  let seeded = 0;
  for (const { service, method, path, body } of requests) {
    if (refused.has(service)) continue;
    const url = `http://127.0.0.1:${portOf(SERVICES.find((s) => s.name === service))}${path}`;
    let res;
    try {
      res = await http(method, url, { body, headers });
    } catch (err) {
      res = { status: 0, text: err.message };
    }
    if (!res.ok) {
      const why =
        res.status === 404 ? 'endpoint not there yet' : `${res.status || 'no answer'} ${res.text.slice(0, 120)}`;
      warn(`seeding ${service} skipped: ${method} ${url} → ${why}`);
      refused.add(service);
      continue;
    }
    seeded++;
  }
  if (seeded) log(`seeded demo data (${seeded} records)`);
}
