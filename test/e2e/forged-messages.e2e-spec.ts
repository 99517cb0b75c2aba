import { randomUUID } from 'node:crypto';
import { createMessage, Decision, Prepare, Vote } from '@shop/contracts';
import { asRaw, inInbox, outboxOf, publishAs, takeDeadLetters } from '../support/broker';
import { sql } from '../support/db';
import { runIds } from '../support/ids';
import { useShop } from '../support/shop';

/**
 * Two layers keep forged messages out. The broker's topic permissions let each service user
 * publish only the routing keys of its role (the coordinator prepares and decides; participants
 * vote, ack and inquire), so a participant cannot even publish a decision. And receivers trust
 * the broker-validated AMQP user-id, not what a message says about itself: a message whose
 * sender is not the user that published it, of a kind its sender may not send, or published
 * without a user-id, is dead-lettered with the reason — and changes nothing. To test the second
 * layer where the first already refuses, the forged message is also sent by a user the broker
 * lets through (the test's admin).
 */
const REFUSED_BY_BROKER = /ACCESS_REFUSED|access to topic/i;

const ids = runIds('forged');
const WAIT_MS = 20_000;

const sku = ids.sku('item');
const buyer = ids.customer('buyer');

const shop = useShop();

beforeAll(async () => {
  await shop.api.putProduct(sku, 1000);
  await shop.api.putStock(sku, 5);
  await shop.api.putAccount(buyer, 10_000);
});

const deadline = () => new Date(Date.now() + 60_000).toISOString();

async function participantRows(transactionId: string) {
  return sql(
    `SELECT 'inventory' AS p, state FROM inventory_svc.tpc_participant_transactions WHERE transaction_id = $1
     UNION ALL SELECT 'payment', state FROM payment_svc.tpc_participant_transactions WHERE transaction_id = $1`,
    [transactionId],
  );
}

async function expectUntouched(transactionId: string) {
  expect(await participantRows(transactionId)).toEqual([]);
  expect(await outboxOf(transactionId)).toEqual([]);
  expect(await shop.api.stock(sku)).toEqual({ sku, available: 5, reserved: 0, sold: 0 });
  expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 10_000, held: 0, captured: 0 });
}

describe('forged messages', () => {
  it('an abort "from order" published by the payment user is refused: no tombstone in inventory', async () => {
    const transactionId = randomUUID();
    const forged = createMessage(Decision, {
      transactionId,
      sender: 'order',
      recipient: 'inventory',
      payload: { outcome: 'abort' },
    });
    await expect(publishAs('payment', [asRaw(forged)])).rejects.toThrow(REFUSED_BY_BROKER);
    await publishAs('admin', [asRaw(forged)]);
    const [parked] = await takeDeadLetters('inventory', [forged.messageId], WAIT_MS);
    expect(parked.reason).toMatch(/not verified.*admin/);
    expect(await inInbox('inventory', forged.messageId)).toBe(false);
    await expectUntouched(transactionId);
  });

  it('a prepare "from order" published by the inventory user is refused: nothing held', async () => {
    const transactionId = randomUUID();
    const forged = createMessage(Prepare, {
      transactionId,
      sender: 'order',
      recipient: 'payment',
      payload: { participant: 'payment', deadline: deadline(), customerId: buyer, amount: 2000, currency: 'EUR' },
    });
    await expect(publishAs('inventory', [asRaw(forged)])).rejects.toThrow(REFUSED_BY_BROKER);
    await publishAs('admin', [asRaw(forged)]);
    const [parked] = await takeDeadLetters('payment', [forged.messageId], WAIT_MS);
    expect(parked.reason).toMatch(/not verified.*admin/);
    await expectUntouched(transactionId);
  });

  it('a "yes" vote in the payment service\'s name published by the inventory user is refused: no presumed-abort answer', async () => {
    const transactionId = randomUUID();
    const forged = createMessage(Vote, {
      transactionId,
      sender: 'payment',
      recipient: 'order',
      payload: { vote: 'yes' },
    });
    await publishAs('inventory', [asRaw(forged)]);
    const [parked] = await takeDeadLetters('order', [forged.messageId], WAIT_MS);
    expect(parked.reason).toMatch(/not verified.*inventory/);
    expect(await inInbox('order', forged.messageId)).toBe(false);
    await expectUntouched(transactionId);
  });

  it('a decision sent by a participant (which may not send decisions) is refused', async () => {
    const transactionId = randomUUID();
    const forged = createMessage(Decision, {
      transactionId,
      sender: 'inventory',
      recipient: 'payment',
      payload: { outcome: 'abort' },
    });
    await expect(publishAs('inventory', [asRaw(forged)])).rejects.toThrow(REFUSED_BY_BROKER);
    await publishAs('admin', [asRaw(forged)]);
    const [parked] = await takeDeadLetters('payment', [forged.messageId], WAIT_MS);
    expect(parked.reason).toMatch(/decision may not come from inventory/);
    await expectUntouched(transactionId);
  });

  it("a prepare without a user-id (even over the coordinator's own connection) is refused", async () => {
    const transactionId = randomUUID();
    const forged = createMessage(Prepare, {
      transactionId,
      sender: 'order',
      recipient: 'inventory',
      payload: { participant: 'inventory', deadline: deadline(), items: [{ sku, quantity: 1 }] },
    });
    // A header claiming the original publisher must not be believed either.
    await publishAs('order', [asRaw(forged)], { userId: null, headers: { 'x-original-user-id': 'order' } });
    const [parked] = await takeDeadLetters('inventory', [forged.messageId], WAIT_MS);
    expect(parked.reason).toMatch(/not verified/);
    await expectUntouched(transactionId);
  });
});
