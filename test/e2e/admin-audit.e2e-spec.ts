import { createHash } from 'node:crypto';
import { eventually } from '../support/eventually';
import { runIds } from '../support/ids';
import { ADMIN_TOKEN } from '../support/services';
import { useShop } from '../support/shop';

/**
 * Admin changes to prices, stock and money are the shop's audit trail: each is logged at info by
 * the service that made it, naming the admin by their token's fingerprint (the first 12 hex digits
 * of its SHA-256), never by the token.
 */

const ids = runIds('admin-audit');
const shop = useShop();
const fingerprint = createHash('sha256').update(ADMIN_TOKEN, 'utf8').digest('hex').slice(0, 12);

interface LogLine {
  service?: string;
  level?: string;
  msg?: string;
}

/** The JSON log lines of the running services that mention `about`. */
function linesAbout(about: string): LogLine[] {
  return shop.stack
    .tails(400)
    .split('\n')
    .filter((line) => line.startsWith('{') && line.includes(about))
    .map((line) => JSON.parse(line) as LogLine);
}

it('logs each admin change of a price, a stock and a balance at info, with the admin’s token fingerprint', async () => {
  const sku = ids.sku('audited');
  const customer = ids.customer('audited');
  await shop.api.putProduct(sku, 1234);
  await shop.api.putStock(sku, 7);
  await shop.api.putAccount(customer, 5000);
  await shop.api.putAccount(customer, 6000);

  const logged = await eventually(
    () => {
      const lines = [...linesAbout(sku), ...linesAbout(customer)].map(({ service, level, msg }) => ({
        service,
        level,
        msg,
      }));
      return lines.length >= 4 && lines;
    },
    { timeoutMs: 5_000, what: 'the admin changes in the services’ logs' },
  );
  expect(logged).toEqual(
    expect.arrayContaining([
      {
        service: 'order',
        level: 'info',
        msg: `admin ${fingerprint} set product ${sku}: unit price 1234, name "Product ${sku}"`,
      },
      { service: 'inventory', level: 'info', msg: `admin ${fingerprint} set the stock of ${sku}: 7 available` },
      { service: 'payment', level: 'info', msg: `admin ${fingerprint} set the balance of ${customer}: 5000 (was 0)` },
      {
        service: 'payment',
        level: 'info',
        msg: `admin ${fingerprint} set the balance of ${customer}: 6000 (was 5000)`,
      },
    ]),
  );
  expect(shop.stack.tails(400)).not.toContain(ADMIN_TOKEN);
});

it('logs a re-drive of dead letters through the API at info, with the admin’s token fingerprint', async () => {
  const messageId = ids.customer('never-parked'); // nothing is parked under it: 0 moved
  const redrive = await shop.api.inventory.post('/operator/dead-letters/redrive', {
    admin: true,
    body: { messageIds: [messageId] },
  });
  expect(redrive.json).toEqual({ redriven: 0 });
  const [line] = await eventually(() => linesAbout(messageId).length > 0 && linesAbout(messageId), {
    timeoutMs: 5_000,
    what: 'the re-drive in the inventory log',
  });
  expect(line).toMatchObject({
    service: 'inventory',
    level: 'info',
    msg: `admin ${fingerprint} re-drove messages ${messageId} of the dead letters through the API: 0 moved`,
  });
});
