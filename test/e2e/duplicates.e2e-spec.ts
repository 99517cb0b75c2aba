import { randomUUID } from 'node:crypto';
import {
  createMessage,
  Decision,
  PARTICIPANTS,
  Prepare,
  type CheckoutMessage,
  type Participant,
  type PreparePayload,
  type ServiceName,
} from '@shop/contracts';
import { PREPARE_REQUESTS } from '../../apps/order/src/orders/prepare-requests';
import { schemaOf } from '../../scripts/lib/checkout-invariants.mjs';
import {
  asRaw,
  inInbox,
  outboxOf,
  publishAs,
  publishCounters,
  queuesOf,
  peekDeadLetters,
  SERVICES,
  resentCopy,
  waitForQueuesIdle,
  waitUntilDelivered,
  type OutboxRow,
} from '../support/broker';
import { snapshot } from '../support/db';
import { eventually } from '../support/eventually';
import { runIds } from '../support/ids';
import { expectInvariants, participantStates, waitUntilDecided, waitUntilQuiescent } from '../support/invariants';
import { useShop } from '../support/shop';

/**
 * Exactly-once effects: every message of a finished checkout, replayed through the broker — once
 * as a redelivery (same message id: the inbox must skip it) and once as a re-sent copy (new
 * message id: the transaction's state must make it a no-op) — changes nothing. And the barrier:
 * an abort that overtakes its prepare leaves a tombstone so the late prepare holds nothing.
 */

const ids = runIds('dupes');
const DECIDE_MS = 20_000;
/**
 * The queues are shared with every suite running at the same time (the contention suite puts
 * thousands of messages through them), so "idle" may have to wait for those to drain too.
 */
const IDLE_MS = 90_000;
const REPLAY_TEST_MS = 150_000;
const MAIN_QUEUES = queuesOf().map((t) => t.queue);

const shop = useShop();

/** Everything the services recorded about these transactions, SKUs and customers, in one snapshot. */
function stateOf(transactionIds: string[], skus: string[], customerIds: string[]) {
  return snapshot(async (client) => {
    const q = async (text: string, params: unknown[]) => (await client.query(text, params)).rows as unknown[];
    return {
      orders: await q(
        `SELECT id, status, reason, total::text, decided_at FROM order_svc.orders WHERE id = ANY($1::uuid[]) ORDER BY id`,
        [transactionIds],
      ),
      coordinator: await q(
        `SELECT id, state, decision_reason, decided_at, completed_at FROM order_svc.tpc_transactions
          WHERE id = ANY($1::uuid[]) ORDER BY id`,
        [transactionIds],
      ),
      votes: await q(
        `SELECT transaction_id, participant, vote, vote_reason, voted_at, acked_at FROM order_svc.tpc_participants
          WHERE transaction_id = ANY($1::uuid[]) ORDER BY transaction_id, participant`,
        [transactionIds],
      ),
      /** Every participant's protocol state (the kit's table). */
      participants: Object.fromEntries(
        await Promise.all(
          PARTICIPANTS.map(async (p) => [
            p,
            await q(
              `SELECT transaction_id, state, vote_reason, prepared_at, decided_at FROM ${schemaOf(p)}.tpc_participant_transactions
                WHERE transaction_id = ANY($1::uuid[]) ORDER BY transaction_id`,
              [transactionIds],
            ),
          ]),
        ),
      ),
      // The resources of the participants this suite's scenarios buy from.
      reservations: await q(
        `SELECT transaction_id, sku, quantity FROM inventory_svc.reservations
          WHERE transaction_id = ANY($1::uuid[]) OR sku = ANY($2::text[]) ORDER BY transaction_id, sku`,
        [transactionIds, skus],
      ),
      holds: await q(
        `SELECT transaction_id, customer_id, amount::text FROM payment_svc.holds
          WHERE transaction_id = ANY($1::uuid[]) OR customer_id = ANY($2::text[]) ORDER BY transaction_id`,
        [transactionIds, customerIds],
      ),
      stock: await q(
        `SELECT sku, available, reserved, sold, stocked FROM inventory_svc.stock WHERE sku = ANY($1::text[]) ORDER BY sku`,
        [skus],
      ),
      accounts: await q(
        `SELECT customer_id, balance::text, held::text, captured::text, deposited::text FROM payment_svc.accounts
          WHERE customer_id = ANY($1::text[]) ORDER BY customer_id`,
        [customerIds],
      ),
    };
  });
}

/** Publishes messages, each through the broker user of its sender (the broker checks user-id). */
async function publishFromSenders(messages: readonly CheckoutMessage[]): Promise<void> {
  const bySender = new Map<ServiceName, CheckoutMessage[]>();
  for (const m of messages) bySender.set(m.sender, [...(bySender.get(m.sender) ?? []), m]);
  for (const [sender, group] of bySender) await publishAs(sender, group.map(asRaw));
}

/**
 * A participant's prepare for an order of 2 × `sku` (1000 each) by `buyer`, as the order service
 * builds it (PREPARE_REQUESTS): what each participant is asked is its own business.
 */
function preparePayload(participant: Participant, deadline: string, sku: string, buyer: string): PreparePayload {
  const order = { request: { customerId: buyer, items: [{ sku, quantity: 2 }] }, total: 2000, currency: 'EUR' };
  return { participant, deadline, ...PREPARE_REQUESTS[participant](order) } as PreparePayload;
}

function preparesFor(transactionId: string, sku: string, buyer: string) {
  const deadline = new Date(Date.now() + 60_000).toISOString();
  return PARTICIPANTS.map((recipient) =>
    createMessage(Prepare, {
      transactionId,
      sender: 'order',
      recipient,
      payload: preparePayload(recipient, deadline, sku, buyer),
    }),
  );
}

function perQueue(messages: readonly CheckoutMessage[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of messages) counts[`checkout.${m.recipient}`] = (counts[`checkout.${m.recipient}`] ?? 0) + 1;
  return counts;
}

/** Places an order and waits until it is decided, acknowledged and every message handled. */
async function finishedOrder(customerId: string, items: Array<{ sku: string; quantity: number }>) {
  const order = await shop.api.placeAccepted(customerId, items);
  const decided = (await waitUntilDecided([order.id], DECIDE_MS)).get(order.id)!;
  await waitUntilQuiescent({ orderIds: [order.id] }, DECIDE_MS);
  await waitUntilDelivered([order.id], DECIDE_MS);
  return { order, decided };
}

/**
 * Replays every message of the transaction twice (same id, then a new id), waits until the
 * replays and everything they caused were handled and the queues are idle, and proves nothing
 * changed. Returns the outbox rows that the re-sent copies caused.
 */
async function replayEverything(orderId: string, skus: string[], customerIds: string[]): Promise<OutboxRow[]> {
  const original = await outboxOf(orderId);
  const before = await stateOf([orderId], skus, customerIds);
  const baseline = await publishCounters(MAIN_QUEUES);

  const redeliveries = original.map((row) => row.body);
  const copies = original.map((row) => resentCopy(row.body));
  // Redeliveries first: the queue hands them out before the copies, whose handling we can observe.
  await publishFromSenders(redeliveries);
  await publishFromSenders(copies);

  // Each re-sent copy was handled (it is in its recipient's inbox)...
  await eventually(
    async () => {
      for (const copy of copies) if (!(await inInbox(copy.recipient, copy.messageId))) return false;
      return true;
    },
    { timeoutMs: DECIDE_MS, what: 'every re-sent copy to be handled' },
  );
  // ...and so was everything those caused (re-votes, acks, re-sent decisions)...
  await waitUntilDelivered([orderId], DECIDE_MS);
  // ...and the broker has nothing left: the redeliveries were consumed and acked too.
  const published: Record<string, number> = {};
  for (const [queue, n] of Object.entries(perQueue([...redeliveries, ...copies]))) published[queue] = n;
  await waitForQueuesIdle(MAIN_QUEUES, { publishedBaseline: baseline, published, timeoutMs: IDLE_MS });
  await waitUntilDelivered([orderId], DECIDE_MS);

  expect(await stateOf([orderId], skus, customerIds)).toEqual(before);
  // Nothing of this transaction was rejected as invalid or unauthorised on the way.
  for (const service of SERVICES) {
    const parked = (await peekDeadLetters(service)).filter(
      (m) => (m.body as { transactionId?: unknown } | null)?.transactionId === orderId,
    );
    expect({ service, parked }).toEqual({ service, parked: [] });
  }
  await expectInvariants({ orderIds: [orderId], skus, customerIds }, { quiescent: true });

  const originalIds = new Set(original.map((row) => row.messageId));
  const caused = (await outboxOf(orderId)).filter((row) => !originalIds.has(row.messageId));
  // The redeliveries caused nothing at all: every new row answers a re-sent copy.
  const copyIds = new Set(copies.map((c) => c.messageId));
  const causedByRedelivery = caused.filter((row) => row.body.causationId && originalIds.has(row.body.causationId));
  expect(causedByRedelivery).toEqual([]);
  // Every new row answers a re-sent copy, or answers such an answer (a re-sent abort, then its ack).
  const causedIds = new Set(caused.map((row) => row.messageId));
  const unexplained = caused.filter((row) => {
    const cause = row.body.causationId;
    return !cause || !(copyIds.has(cause) || causedIds.has(cause));
  });
  expect(unexplained).toEqual([]);
  return caused;
}

describe('duplicates and reordering', () => {
  it(
    'replaying every message of a CONFIRMED checkout (same id and new id) changes nothing',
    async () => {
      const sku = ids.sku('confirmed');
      const buyer = ids.customer('confirmed');
      await shop.api.putProduct(sku, 1000);
      await shop.api.putStock(sku, 10);
      await shop.api.putAccount(buyer, 50_000);
      const { order, decided } = await finishedOrder(buyer, [{ sku, quantity: 2 }]);
      expect(decided.status).toBe('CONFIRMED');

      const sent = await outboxOf(order.id);
      const count = (service: string, routing: string) =>
        sent.filter((row) => row.service === service && row.routingKey === routing).length;
      // One prepare and one vote each; a decision may have been re-sent (its ack was late on a busy
      // box), but every decision sent was acknowledged exactly once.
      for (const p of PARTICIPANTS) {
        expect({ p, prepares: count('order', `${p}.prepare`), votes: count(p, 'order.vote') }).toEqual({
          p,
          prepares: 1,
          votes: 1,
        });
        expect(count('order', `${p}.decision`)).toBeGreaterThanOrEqual(1);
        expect({ p, acks: count(p, 'order.ack') }).toEqual({ p, acks: count('order', `${p}.decision`) });
      }
      expect(sent.filter((row) => row.type === 'decision').map((row) => row.body.payload)).toEqual(
        sent.filter((row) => row.type === 'decision').map(() => ({ outcome: 'commit' })),
      );

      const caused = await replayEverything(order.id, [sku], [buyer]);

      // Each re-sent prepare is answered as before (yes), each re-sent commit is acknowledged again.
      const byKey = (a: { from: string; type: string }, b: { from: string; type: string }) =>
        `${a.from}${a.type}`.localeCompare(`${b.from}${b.type}`);
      const answers = caused
        .map((row) => ({ from: row.service, type: row.type, payload: row.body.payload }))
        .sort(byKey);
      const expected = sent
        .filter((row) => row.type === 'prepare' || row.type === 'decision')
        .map((row) => {
          const from = row.routingKey.split('.')[0];
          return row.type === 'prepare'
            ? { from, type: 'vote', payload: { vote: 'yes' } }
            : { from, type: 'ack', payload: { outcome: 'commit' } };
        })
        .sort(byKey);
      expect(answers).toEqual(expected);
      expect(await shop.api.stock(sku)).toEqual({ sku, available: 8, reserved: 0, sold: 2 });
      expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 48_000, held: 0, captured: 2000 });
      expect((await shop.api.getOrder(order.id)).json).toMatchObject({ id: order.id, status: 'CONFIRMED' });
    },
    REPLAY_TEST_MS,
  );

  it(
    'replaying every message of a CANCELLED checkout (same id and new id) changes nothing',
    async () => {
      const sku = ids.sku('cancelled');
      const buyer = ids.customer('cancelled');
      await shop.api.putProduct(sku, 1000);
      await shop.api.putStock(sku, 1);
      await shop.api.putAccount(buyer, 50_000);
      const { order, decided } = await finishedOrder(buyer, [{ sku, quantity: 2 }]);
      expect(decided).toMatchObject({ status: 'CANCELLED', reason: 'OUT_OF_STOCK' });

      const caused = await replayEverything(order.id, [sku], [buyer]);

      // Every participant refuses the re-sent prepare (inventory, which refused it, now holds it ABORTED, so
      // either its original reason or ALREADY_ABORTED is a truthful answer); no re-sent abort is
      // acknowledged (presumed abort).
      const revotes = caused.filter((row) => row.type === 'vote');
      expect(revotes.map((row) => row.service).sort()).toEqual([...PARTICIPANTS].sort());
      for (const vote of revotes) {
        expect(vote.body.payload).toEqual({
          vote: 'no',
          reason: expect.stringMatching(/^(OUT_OF_STOCK|ALREADY_ABORTED)$/),
        });
      }
      expect(caused.filter((row) => row.type === 'ack')).toEqual([]);
      expect(await shop.api.stock(sku)).toEqual({ sku, available: 1, reserved: 0, sold: 0 });
      expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 50_000, held: 0, captured: 0 });
      expect((await shop.api.getOrder(order.id)).json).toMatchObject({ status: 'CANCELLED', reason: 'OUT_OF_STOCK' });
    },
    REPLAY_TEST_MS,
  );

  it('an abort that overtakes its prepare leaves a tombstone; the late prepare votes ALREADY_ABORTED and holds nothing', async () => {
    const sku = ids.sku('tombstone');
    const buyer = ids.customer('tombstone');
    await shop.api.putProduct(sku, 1000);
    await shop.api.putStock(sku, 5);
    await shop.api.putAccount(buyer, 10_000);
    const transactionId = randomUUID();
    const aborts = PARTICIPANTS.map((recipient) =>
      createMessage(Decision, {
        transactionId,
        sender: 'order',
        recipient,
        payload: { outcome: 'abort' },
      }),
    );
    await publishAs('order', aborts.map(asRaw));

    const tombstones = await eventually(
      async () => {
        const rows = await participantStates(transactionId);
        return rows.length === PARTICIPANTS.length ? rows : undefined;
      },
      { timeoutMs: DECIDE_MS, what: 'every participant to record the tombstone' },
    );
    expect(tombstones).toEqual([...PARTICIPANTS].sort().map((p) => ({ p, state: 'ABORTED' })));
    const before = await stateOf([transactionId], [sku], [buyer]);

    const prepares = preparesFor(transactionId, sku, buyer);
    await publishAs('order', prepares.map(asRaw));

    const votes = await eventually(
      async () => {
        const rows = (await outboxOf(transactionId)).filter((row) => row.type === 'vote');
        return rows.length === PARTICIPANTS.length ? rows : undefined;
      },
      { timeoutMs: DECIDE_MS, what: 'every participant to vote on the late prepare' },
    );
    for (const vote of votes) {
      expect({ from: vote.service, payload: vote.body.payload, causationId: vote.body.causationId }).toEqual({
        from: vote.service,
        payload: { vote: 'no', reason: 'ALREADY_ABORTED' },
        causationId: prepares.find((p) => p.recipient === vote.service)!.messageId,
      });
    }
    // No abort was acknowledged (presumed abort); the votes reached the coordinator, which invented nothing.
    expect((await outboxOf(transactionId)).filter((row) => row.type === 'ack')).toEqual([]);
    await waitUntilDelivered([transactionId], DECIDE_MS);

    const after = await stateOf([transactionId], [sku], [buyer]);
    expect(after).toEqual(before);
    expect(after.reservations).toEqual([]);
    expect(after.holds).toEqual([]);
    expect(after.orders).toEqual([]);
    expect(after.coordinator).toEqual([]);
    expect(await shop.api.stock(sku)).toEqual({ sku, available: 5, reserved: 0, sold: 0 });
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 10_000, held: 0, captured: 0 });
    await expectInvariants({ orderIds: [transactionId], skus: [sku], customerIds: [buyer] }, { quiescent: true });
  });

  it('a prepare for a transaction the coordinator never heard of is presumed aborted and released', async () => {
    const sku = ids.sku('presumed');
    const buyer = ids.customer('presumed');
    await shop.api.putProduct(sku, 1000);
    await shop.api.putStock(sku, 5);
    await shop.api.putAccount(buyer, 10_000);
    const transactionId = randomUUID();

    await publishAs('order', preparesFor(transactionId, sku, buyer).map(asRaw));

    // Every participant promises (votes yes); the coordinator knows no such transaction and answers
    // abort, which each applies (without an ack: presumed abort).
    await eventually(
      async () => {
        const states = await participantStates(transactionId);
        return states.length === PARTICIPANTS.length && states.every((row) => row.state === 'ABORTED')
          ? states
          : undefined;
      },
      { timeoutMs: DECIDE_MS, what: 'every participant to apply the presumed abort' },
    );
    await waitUntilDelivered([transactionId], DECIDE_MS);
    const rows = await outboxOf(transactionId);
    expect(rows.filter((row) => row.type === 'ack')).toEqual([]);
    expect(rows.filter((row) => row.type === 'vote').map((row) => row.body.payload)).toEqual(
      PARTICIPANTS.map(() => ({ vote: 'yes' })),
    );
    expect(
      rows
        .filter((row) => row.type === 'decision')
        .map((row) => `${row.routingKey}:${JSON.stringify(row.body.payload)}`),
    ).toEqual(expect.arrayContaining(PARTICIPANTS.map((p) => `${p}.decision:{"outcome":"abort"}`)));

    const state = await stateOf([transactionId], [sku], [buyer]);
    for (const p of PARTICIPANTS)
      expect({ p, states: state.participants[p] }).toMatchObject({ p, states: [{ state: 'ABORTED' }] });
    expect(state.orders).toEqual([]);
    expect(await shop.api.stock(sku)).toEqual({ sku, available: 5, reserved: 0, sold: 0 });
    expect(await shop.api.account(buyer)).toEqual({ customerId: buyer, balance: 10_000, held: 0, captured: 0 });
    await expectInvariants({ orderIds: [transactionId], skus: [sku], customerIds: [buyer] }, { quiescent: true });
  });
});
