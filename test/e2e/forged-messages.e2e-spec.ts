import { randomUUID } from 'node:crypto';
import type * as amqp from 'amqplib';
import { createMessage, Decision, Prepare, Vote } from '@shop/contracts';
import { redriveKey, topologyFor } from '@shop/messaging';
import { asRaw, attemptAs, inInbox, outboxOf, peekDeadLetters, publishAs, takeDeadLetters } from '../support/broker';
import { eventually } from '../support/eventually';
import { runIds } from '../support/ids';
import { participantStates } from '../support/invariants';
import { useShop } from '../support/shop';

/**
 * Two layers keep forged messages out. The broker's topic permissions let each service user
 * publish only the routing keys of its role (the coordinator prepares and decides; participants
 * vote, ack and inquire), so a participant cannot even publish a decision. And receivers trust
 * the broker-validated AMQP user-id, not what a message says about itself: a message whose
 * sender is not the user that published it, of a kind its sender may not send, or published
 * without a user-id, is dead-lettered with the reason — and changes nothing. To test the second
 * layer where the first already refuses, the forged message is also sent by a user the broker
 * lets through (the test's admin). A dead-letter queue is no way around either: only its service
 * may write to its dead-letter exchange, and a re-drive keeps only the publisher the broker
 * validated, so a forgery parked there is parked again.
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

async function expectUntouched(transactionId: string) {
  expect(await participantStates(transactionId)).toEqual([]);
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

  it("a no from inventory with the payment's reason (INSUFFICIENT_FUNDS) is refused: a participant speaks only for itself", async () => {
    const transactionId = randomUUID();
    const forged = createMessage(Vote, {
      transactionId,
      sender: 'inventory',
      recipient: 'order',
      payload: { vote: 'no', reason: 'INSUFFICIENT_FUNDS' },
    });
    // Inventory's own user, allowed to vote: only the contract refuses it.
    await publishAs('inventory', [asRaw(forged)]);
    const [parked] = await takeDeadLetters('order', [forged.messageId], WAIT_MS);
    expect(parked.reason).toMatch(/not a reason inventory may give/);
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

  describe("through payment's dead-letter queue, which the operator re-drives", () => {
    const payment = topologyFor('payment');
    type Send = (channel: amqp.ConfirmChannel, content: Buffer, properties: amqp.Options.Publish) => Promise<void>;
    const publishTo =
      (exchange: string, routingKey: string): Send =>
      (channel, content, properties) => {
        channel.publish(exchange, routingKey, content, properties);
        return Promise.resolve();
      };
    /** Through a queue of the inventory user's own (a name it may declare) that the broker dead-letters at once. */
    const viaOwnQueue =
      (deadLetterExchange: string, deadLetterRoutingKey: string): Send =>
      async (channel, content, properties) => {
        const trap = `checkout.inventory.trap-${randomUUID()}`;
        await channel.assertQueue(trap, {
          exclusive: true,
          arguments: {
            'x-dead-letter-exchange': deadLetterExchange,
            'x-dead-letter-routing-key': deadLetterRoutingKey,
            'x-message-ttl': 0,
          },
        });
        // Both go when the connection closes (the exchange with the exclusive queue's binding).
        await channel.assertExchange(trap, 'fanout', { durable: false, autoDelete: true });
        await channel.bindQueue(trap, trap, '');
        channel.publish(trap, '', content, properties);
      };
    /** Through an exchange of the inventory user's own bound into `exchange` (no topic permission checks that hop). */
    const viaOwnExchange =
      (exchange: string, routingKey: string): Send =>
      async (channel, content, properties) => {
        const own = `checkout.inventory.relay-${randomUUID()}`;
        await channel.assertExchange(own, 'direct', { durable: false });
        await channel.bindExchange(exchange, own, routingKey);
        channel.publish(own, routingKey, content, properties);
        await channel.waitForConfirms();
        await channel.deleteExchange(own);
      };
    // Every way the inventory user might put a message where payment's operator re-drives from,
    // and whether the broker takes it. Those it takes reach payment's queue, not its dead-letter
    // queue: payment parks them there as forged, and the operator's re-drive must not launder them.
    const routes: Array<{ route: string; send: Send; broker: 'refused' | 'allowed' }> = [
      {
        route: 'the shared dead-letter exchange of old, with payment as the key',
        send: publishTo('checkout.dlx', payment.service),
        broker: 'refused',
      },
      {
        route: "payment's dead-letter exchange",
        send: publishTo(payment.deadLetterExchange, payment.service),
        broker: 'refused',
      },
      {
        route: "the default exchange, straight to payment's dead-letter queue",
        send: publishTo('', payment.deadLetterQueue),
        broker: 'refused',
      },
      {
        route: "a queue of its own that the broker dead-letters into payment's dead-letter exchange",
        send: viaOwnQueue(payment.deadLetterExchange, payment.service),
        broker: 'refused',
      },
      {
        route: "a queue of its own that the broker dead-letters into payment's queue with the re-drive key",
        send: viaOwnQueue(payment.retryExchange, redriveKey(payment)),
        broker: 'refused', // it may configure nothing (the topology is provisioned)
      },
      {
        route: 'an exchange of its own bound into the checkout exchange with payment.decision',
        send: viaOwnExchange(payment.exchange, 'payment.decision'),
        broker: 'refused', // it may configure nothing (the topology is provisioned)
      },
    ];

    it('a commit "from order" that the inventory user parks there is parked again as forged after a re-drive, with no effect', async () => {
      const attempts = [];
      for (const { route, send } of routes) {
        const forged = createMessage(Decision, {
          transactionId: randomUUID(),
          sender: 'order',
          recipient: 'payment',
          payload: { outcome: 'commit' },
        });
        // No user-id, so the broker validates nobody; the header claims the coordinator.
        const broker = await attemptAs('inventory', (channel) =>
          send(channel, Buffer.from(JSON.stringify(forged)), {
            persistent: true,
            contentType: 'application/json',
            messageId: forged.messageId,
            type: forged.type,
            headers: { 'x-original-user-id': 'order' },
          }),
        );
        attempts.push({ route, forged, broker });
      }
      // A forgery the broker does take (the test's admin, no user-id, the header claiming the
      // coordinator) reaches payment's queue and is parked there as forged.
      const viaAdmin = createMessage(Decision, {
        transactionId: randomUUID(),
        sender: 'order',
        recipient: 'payment',
        payload: { outcome: 'commit' },
      });
      await publishAs('admin', [asRaw(viaAdmin)], { userId: null, headers: { 'x-original-user-id': 'order' } });
      const parkedIds = [
        ...attempts.filter((a) => a.broker === 'allowed').map((a) => a.forged.messageId),
        viaAdmin.messageId,
      ];
      await eventually(
        async () => {
          const parked = new Set((await peekDeadLetters('payment')).map((m) => m.messageId));
          return parkedIds.every((id) => parked.has(id));
        },
        { timeoutMs: WAIT_MS, what: "the forgeries the broker took to be in payment's dead-letter queue" },
      );

      const redrive = await shop.api.payment.post('/operator/dead-letters/redrive', {
        admin: true,
        body: { messageIds: parkedIds },
      });
      expect(redrive.json).toEqual({ redriven: parkedIds.length });

      const parkedAgain = await takeDeadLetters('payment', parkedIds, WAIT_MS);
      for (const parked of parkedAgain) {
        expect(parked.reason).toMatch(/sender order not verified: published by broker user (\(none\)|inventory)$/);
      }
      for (const forged of [...attempts.map((a) => a.forged), viaAdmin]) {
        expect(await inInbox('payment', forged.messageId)).toBe(false);
        await expectUntouched(forged.transactionId);
      }
      expect(attempts.map(({ route, broker }) => ({ route, broker }))).toEqual(
        routes.map(({ route, broker }) => ({ route, broker })),
      );
    });
  });
});
