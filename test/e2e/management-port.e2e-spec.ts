import net from 'node:net';
import { sql } from '../support/db';
import { useShop } from '../support/shop';

/**
 * Health and metrics live on the management port only (issue #23, "the management port has a
 * side door"): the public port has no such routes, so no form of request target reaches them.
 */
const shop = useShop({ services: ['order'] });

/** Writes `target` as the request line's target, byte for byte, and answers the status code. */
function rawStatus(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error(`no answer to ${target}`)));
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(received)?.[1];
      if (status) resolve(Number(status));
      else reject(new Error(`no status line for ${target}: ${JSON.stringify(received.slice(0, 200))}`));
    });
  });
}

const portOf = (url: string) => Number(new URL(url).port);

/** Every form of target that names /metrics or /health/ready (origin-form, absolute-form, queries, doubled slashes, encodings, case). */
const FORMS = (path: string) => [
  path,
  `${path}?`,
  `${path}?x=1`,
  `${path}/`,
  `/${path}`,
  `http://x${path}`,
  `http://x${path}?x=1`,
  `http://127.0.0.1${path}`,
  path.replace('m', '%6D').replace('h', '%68'),
  path.toUpperCase(),
];
const TARGETS = [...FORMS('/metrics'), ...FORMS('/health/ready'), ...FORMS('/health/live')];

describe('the management port', () => {
  it('the public port answers 404 to every form of /metrics and /health/*', async () => {
    const port = portOf(shop.stack.url('order'));
    for (const target of TARGETS) expect([target, await rawStatus(port, target)]).toEqual([target, 404]);
    // The public port is up all the same.
    expect(await rawStatus(port, '/orders/00000000-0000-4000-8000-000000000000')).not.toBe(404);
  });

  it('the management port answers them, origin-form, absolute-form and with a query', async () => {
    const port = portOf(shop.stack.managementUrl('order'));
    for (const target of ['/metrics', '/metrics?x=1', 'http://x/metrics', 'http://x/metrics?x=1']) {
      expect([target, await rawStatus(port, target)]).toEqual([target, 200]);
    }
    for (const target of ['/health/ready', '/health/ready?x=1', 'http://x/health/ready', 'http://x/health/live']) {
      expect([target, await rawStatus(port, target)]).toEqual([target, 200]);
    }
    const text = await (await fetch(`${shop.stack.managementUrl('order')}/metrics`)).text();
    expect(text).toMatch(/^checkout_in_doubt_transactions\{service="order"\} \d+$/m);
    expect(text).toMatch(/^checkout_outbox_unsent_messages\{service="order"\} \d+$/m);
  });

  it('a flood of probes and scrapes holds one database connection of its own, none of the pool', async () => {
    const url = shop.stack.managementUrl('order');
    const management = `order management (pid ${shop.stack.order.pid})`;
    const connections = () =>
      sql<{ name: string; count: number }>(
        `SELECT application_name AS name, count(*)::int AS count FROM pg_stat_activity
          WHERE usename = 'order_svc' GROUP BY application_name`,
      );
    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        fetch(`${url}${i % 2 ? '/metrics' : '/health/ready'}`).then((response) => response.text()),
      ),
    );
    expect((await connections()).find((row) => row.name === management)?.count).toBe(1);
  });
});
