// Demo data for the dev stack, through the services' admin REST API. Idempotent (PUTs).
import { SERVICES } from './config.mjs';
import { http, log, warn } from './util.mjs';

const PRODUCTS = [
  { sku: 'SKU-001', name: 'Espresso beans, 1 kg', unitPrice: 1899 }, // integer cents
  { sku: 'SKU-002', name: 'Ceramic mug', unitPrice: 1250 },
  { sku: 'SKU-003', name: 'Pour-over kettle', unitPrice: 4500 },
];
const STOCK = 100;
const CUSTOMERS = [
  { customerId: 'alice', balance: 100_000 },
  { customerId: 'bob', balance: 100_000 },
];

export async function seed(portOf) {
  const port = (name) => portOf(SERVICES.find((s) => s.name === name));
  const headers = { authorization: `Bearer ${process.env.ADMIN_TOKEN ?? 'dev-admin-token'}` };
  const groups = [
    ['products', 'order', PRODUCTS.map((p) => [`/products/${p.sku}`, { name: p.name, unitPrice: p.unitPrice }])],
    ['stock', 'inventory', PRODUCTS.map((p) => [`/stock/${p.sku}`, { quantity: STOCK }])],
    ['accounts', 'payment', CUSTOMERS.map((c) => [`/accounts/${c.customerId}`, { balance: c.balance }])],
  ];
  let seeded = 0;
  for (const [what, svc, puts] of groups) {
    if (!SERVICES.some((s) => s.name === svc)) continue; // a demo for a service services.json no longer has
    for (const [p, body] of puts) {
      const url = `http://127.0.0.1:${port(svc)}${p}`;
      let res;
      try {
        res = await http('PUT', url, { body, headers });
      } catch (err) {
        res = { status: 0, text: err.message };
      }
      if (!res.ok) {
        // The admin API may not exist yet: the stack still runs, just without demo data.
        const why =
          res.status === 404 ? 'endpoint not there yet' : `${res.status || 'no answer'} ${res.text.slice(0, 120)}`;
        warn(`seeding ${what} skipped: PUT ${url} → ${why}`);
        break;
      }
      seeded++;
    }
  }
  if (seeded) log(`seeded demo data (${seeded} records)`);
}
