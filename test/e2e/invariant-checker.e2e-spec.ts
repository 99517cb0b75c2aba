import { randomBytes, randomUUID } from 'node:crypto';
import type { PoolClient } from 'pg';
import { closeDb, db } from '../support/db';
import { SUITE_PREFIX } from '../support/ids';
import { serviceChecks } from '../../scripts/lib/checkout-invariants.mjs';
import { type CheckOptions, checkInvariantsIn, type Violation } from '../support/invariants';

/**
 * The invariant checker is what every other suite trusts, so it is tested too: a consistent
 * checkout written straight into the three schemas passes, and each way of breaking it is
 * reported, whether the generic checks over every participant (scripts/lib/checkout-invariants.mjs)
 * or a service's own (apps/<service>/checks/violations.sql) catch it. Every fixture lives in a
 * transaction that is rolled back, so no other suite (and no service) ever sees it.
 *
 * Conservation (available+reserved+sold = stocked, balance+held+captured = deposited, nothing
 * negative) is also enforced by CHECK constraints in the schemas, so it cannot be broken here.
 */

afterAll(() => closeDb());

/**
 * The participants the fixture writes for: the checker is run over these (and a made-up fourth),
 * not over services.json's list, so a participant added to the list leaves this suite as it is.
 */
const FIXTURE_PARTICIPANTS = ['inventory', 'payment'];

interface Fixture {
  orderId: string;
  sku: string;
  customerId: string;
}

/** A CONFIRMED, fully acknowledged checkout of 2 × 100 that every invariant accepts. */
async function insertConfirmed(client: PoolClient): Promise<Fixture> {
  const tag = `${SUITE_PREFIX}checker-${randomBytes(4).toString('hex')}`;
  const f = { orderId: randomUUID(), sku: `${tag}-s`, customerId: `${tag}-c` };
  const q = (text: string, params: unknown[] = []) => client.query(text, params);
  await q(
    `INSERT INTO order_svc.orders (id, customer_id, status, total, currency, request_hash, decided_at)
     VALUES ($1, $2, 'CONFIRMED', 200, 'EUR', 'x', now())`,
    [f.orderId, f.customerId],
  );
  await q(`INSERT INTO order_svc.order_items (order_id, sku, quantity, unit_price) VALUES ($1, $2, 2, 100)`, [
    f.orderId,
    f.sku,
  ]);
  await q(
    `INSERT INTO order_svc.tpc_transactions (id, state, deadline, decided_at, completed_at)
     VALUES ($1, 'COMMITTED', now(), now(), now())`,
    [f.orderId],
  );
  await q(
    `INSERT INTO order_svc.tpc_participants (transaction_id, participant, vote, voted_at, acked_at)
     VALUES ($1, 'inventory', 'yes', now(), now()), ($1, 'payment', 'yes', now(), now())`,
    [f.orderId],
  );
  await q(`INSERT INTO inventory_svc.stock (sku, available, reserved, sold, stocked) VALUES ($1, 3, 0, 2, 5)`, [f.sku]);
  await q(`INSERT INTO inventory_svc.reservations (transaction_id, sku, quantity) VALUES ($1, $2, 2)`, [
    f.orderId,
    f.sku,
  ]);
  await q(
    `INSERT INTO inventory_svc.tpc_participant_transactions (transaction_id, state, prepared_at, decided_at)
     VALUES ($1, 'COMMITTED', now(), now())`,
    [f.orderId],
  );
  await q(
    `INSERT INTO payment_svc.accounts (customer_id, balance, held, captured, deposited) VALUES ($1, 800, 0, 200, 1000)`,
    [f.customerId],
  );
  await q(`INSERT INTO payment_svc.holds (transaction_id, customer_id, amount, currency) VALUES ($1, $2, 200, 'EUR')`, [
    f.orderId,
    f.customerId,
  ]);
  await q(
    `INSERT INTO payment_svc.tpc_participant_transactions (transaction_id, state, prepared_at, decided_at)
     VALUES ($1, 'COMMITTED', now(), now())`,
    [f.orderId],
  );
  return f;
}

type Query = (text: string, params: unknown[]) => Promise<unknown>;

/** Sets columns of the fixture's transaction in a participant's protocol table (the kit's). */
async function inParticipant(q: Query, participant: string, f: Fixture, set: string): Promise<void> {
  await q(`UPDATE ${participant}_svc.tpc_participant_transactions SET ${set} WHERE transaction_id = $1`, [f.orderId]);
}

/**
 * Participants the services do not have (a fourth one, as `npm run new:participant` would add):
 * the kit's table in a schema of its own, created inside the fixture's transaction (so rolled back
 * with it), holding the fixture's transaction COMMITTED, as a participant that took part would.
 */
async function addParticipants(client: PoolClient, f: Fixture, participants: readonly string[]): Promise<void> {
  for (const extra of participants.filter((p) => !FIXTURE_PARTICIPANTS.includes(p))) {
    await client.query(`CREATE SCHEMA ${extra}_svc`);
    await client.query(
      `CREATE TABLE ${extra}_svc.tpc_participant_transactions (LIKE inventory_svc.tpc_participant_transactions INCLUDING ALL)`,
    );
    await client.query(
      `INSERT INTO ${extra}_svc.tpc_participant_transactions (transaction_id, state, prepared_at, decided_at)
       VALUES ($1, 'COMMITTED', now(), now())`,
      [f.orderId],
    );
  }
}

/** Inserts the consistent checkout, lets `corrupt` break it, checks (quiescent), rolls everything back. */
async function violationsAfter(
  corrupt: (q: Query, f: Fixture) => Promise<void>,
  options: CheckOptions = { quiescent: true },
): Promise<string[]> {
  const participants = options.participants ?? FIXTURE_PARTICIPANTS;
  const client = await db().connect();
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    const f = await insertConfirmed(client);
    await addParticipants(client, f, participants);
    await corrupt((text, params) => client.query(text, params), f);
    const violations: Violation[] = await checkInvariantsIn(
      client,
      { orderIds: [f.orderId] },
      {
        ...options,
        participants,
      },
    );
    return violations.map((v) => `[${v.kind}] ${v.message.replaceAll(f.orderId, 'ORDER').replaceAll(f.sku, 'SKU')}`);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

describe('the invariant checker', () => {
  it('accepts a consistent, acknowledged CONFIRMED checkout', async () => {
    expect(await violationsAfter(async () => undefined)).toEqual([]);
  });

  it('reports a CONFIRMED order that a participant did not commit (atomicity), and money captured without a commit', async () => {
    const found = await violationsAfter(async (q, f) => {
      await inParticipant(q, 'payment', f, `state = 'ABORTED'`);
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[safety\] transaction ORDER: COMMITTED but refused or aborted by payment/),
        expect.stringMatching(/^\[safety\] transaction ORDER: COMMITTED but not committed by payment/),
        expect.stringMatching(/captured 200 ≠ 0 held by COMMITTED payment transactions/),
      ]),
    );
  });

  it('accepts a CONFIRMED order whose decision has not reached a participant yet, but not once at rest', async () => {
    const decisionOnItsWay = async (q: Query, f: Fixture) => {
      await q(
        `UPDATE payment_svc.tpc_participant_transactions SET state = 'PREPARED', decided_at = NULL WHERE transaction_id = $1`,
        [f.orderId],
      );
      await q(`UPDATE payment_svc.accounts SET held = 200, captured = 0 WHERE customer_id = $1`, [f.customerId]);
    };
    expect(await violationsAfter(decisionOnItsWay, {})).toEqual([]);
    expect(await violationsAfter(decisionOnItsWay)).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[safety\] transaction ORDER: COMMITTED but not committed by payment/),
        expect.stringMatching(/^\[liveness\] transaction ORDER: still PREPARED in payment/),
      ]),
    );
  });

  it('reports a CANCELLED order that a participant committed', async () => {
    const found = await violationsAfter(async (q, f) => {
      await q(`UPDATE order_svc.orders SET status = 'CANCELLED', reason = 'OUT_OF_STOCK' WHERE id = $1`, [f.orderId]);
      await q(`UPDATE order_svc.tpc_transactions SET state = 'ABORTED' WHERE id = $1`, [f.orderId]);
    });
    expect(found).toEqual([
      expect.stringMatching(/^\[safety\] transaction ORDER: committed by inventory, payment but ABORTED/),
    ]);
  });

  it('reports stock sold that no committed reservation accounts for (an oversell)', async () => {
    const found = await violationsAfter(async (q, f) => {
      await q(`UPDATE inventory_svc.stock SET available = 2, sold = 3 WHERE sku = $1`, [f.sku]);
    });
    expect(found).toEqual([
      expect.stringMatching(/stock SKU: sold 3 ≠ 2 reserved by COMMITTED inventory transactions/),
    ]);
  });

  it('reports an order whose total is not the sum of its lines', async () => {
    const found = await violationsAfter(async (q, f) => {
      await q(`UPDATE order_svc.orders SET total = 999 WHERE id = $1`, [f.orderId]);
    });
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^\[safety\] order ORDER: total 999 ≠ Σ lines 200/),
        expect.stringMatching(/payment holds .* but the order is 999/),
      ]),
    );
  });

  it('reports a reservation that differs from the order lines', async () => {
    const found = await violationsAfter(async (q, f) => {
      await q(`UPDATE inventory_svc.reservations SET quantity = 1 WHERE transaction_id = $1`, [f.orderId]);
      await q(`UPDATE inventory_svc.stock SET sold = 1, available = 4 WHERE sku = $1`, [f.sku]);
    });
    expect(found).toEqual([
      expect.stringMatching(/inventory reserved .*"quantity": 1.* but the order has .*"quantity": 2/),
    ]);
  });

  it('reports a commit in a participant for a transaction the coordinator does not know', async () => {
    const found = await violationsAfter(async (q, f) => {
      const orphan = randomUUID();
      await q(
        `INSERT INTO inventory_svc.tpc_participant_transactions (transaction_id, state) VALUES ($1, 'COMMITTED')`,
        [orphan],
      );
      await q(`INSERT INTO inventory_svc.reservations (transaction_id, sku, quantity) VALUES ($1, $2, 1)`, [
        orphan,
        f.sku,
      ]);
      await q(`UPDATE inventory_svc.stock SET sold = 3, available = 2 WHERE sku = $1`, [f.sku]);
    });
    expect(found).toEqual([
      expect.stringMatching(
        /^\[safety\] transaction .*: committed by inventory but no such transaction at the coordinator/,
      ),
    ]);
  });

  it('reports what keeps a checkout from being quiescent: pending, reserved, held, prepared, unacknowledged', async () => {
    const found = await violationsAfter(async (q, f) => {
      await q(`UPDATE order_svc.orders SET status = 'PENDING', decided_at = NULL WHERE id = $1`, [f.orderId]);
      await q(`UPDATE order_svc.tpc_transactions SET state = 'PREPARING', completed_at = NULL WHERE id = $1`, [
        f.orderId,
      ]);
      await inParticipant(q, 'inventory', f, `state = 'PREPARED'`);
      await inParticipant(q, 'payment', f, `state = 'PREPARED'`);
      await q(`UPDATE inventory_svc.stock SET sold = 0, reserved = 2 WHERE sku = $1`, [f.sku]);
      await q(`UPDATE payment_svc.accounts SET captured = 0, held = 200 WHERE customer_id = $1`, [f.customerId]);
    });
    // Safety holds (a prepared checkout is legal); only liveness is reported.
    expect(found.filter((v) => v.startsWith('[safety]'))).toEqual([]);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/stock SKU: 2 still reserved/),
        expect.stringMatching(/account .*: 200 still held/),
        expect.stringMatching(/^\[liveness\] order ORDER: still PENDING/),
        expect.stringMatching(/^\[liveness\] transaction ORDER: still undecided/),
        expect.stringMatching(/^\[liveness\] transaction ORDER: still PREPARED in inventory, payment/),
      ]),
    );
    const unacked = await violationsAfter(async (q, f) => {
      await q(`UPDATE order_svc.tpc_transactions SET completed_at = NULL WHERE id = $1`, [f.orderId]);
    });
    expect(unacked).toEqual([
      expect.stringMatching(/^\[liveness\] transaction ORDER: decided but not acknowledged by all/),
    ]);
  });

  describe('with a fourth participant (no checks of its own: the generic checks cover it)', () => {
    const fourth = `fourth${randomBytes(3).toString('hex')}`;
    const options = { quiescent: true, participants: [...FIXTURE_PARTICIPANTS, fourth] };
    const inFourth = (q: Query, f: Fixture, set: string) => inParticipant(q, fourth, f, set);

    it('has no checks file, and accepts the checkout it committed with the others', async () => {
      expect(serviceChecks(fourth)).toBeNull();
      expect(await violationsAfter(async () => undefined, options)).toEqual([]);
    });

    it('reports its commit of a CANCELLED order', async () => {
      const found = await violationsAfter(async (q, f) => {
        // The three known services agree on the abort; only the fourth committed.
        await q(`UPDATE order_svc.orders SET status = 'CANCELLED', reason = 'OUT_OF_STOCK' WHERE id = $1`, [f.orderId]);
        await q(`UPDATE order_svc.tpc_transactions SET state = 'ABORTED' WHERE id = $1`, [f.orderId]);
        await inParticipant(q, 'inventory', f, `state = 'ABORTED'`);
        await inParticipant(q, 'payment', f, `state = 'ABORTED'`);
        await q(`UPDATE inventory_svc.stock SET sold = 0, available = 5 WHERE sku = $1`, [f.sku]);
        await q(`UPDATE payment_svc.accounts SET captured = 0, balance = 1000 WHERE customer_id = $1`, [f.customerId]);
      }, options);
      expect(found).toEqual([
        expect.stringMatching(new RegExp(`^\\[safety\\] transaction ORDER: committed by ${fourth} but ABORTED`)),
      ]);
    });

    it('reports a CONFIRMED order it refused, or never heard of, and one it holds in doubt at rest', async () => {
      const refused = await violationsAfter((q, f) => inFourth(q, f, `state = 'REFUSED'`), options);
      expect(refused).toEqual(
        expect.arrayContaining([
          expect.stringMatching(`COMMITTED but refused or aborted by ${fourth}`),
          expect.stringMatching(`COMMITTED but not committed by ${fourth}`),
        ]),
      );
      const unheard = await violationsAfter(async (q, f) => {
        await q(`DELETE FROM ${fourth}_svc.tpc_participant_transactions WHERE transaction_id = $1`, [f.orderId]);
      }, options);
      expect(unheard).toEqual([expect.stringMatching(`COMMITTED but not committed by ${fourth} .*${fourth} none`)]);
      const inDoubt = await violationsAfter((q, f) => inFourth(q, f, `state = 'PREPARED'`), options);
      expect(inDoubt).toEqual(
        expect.arrayContaining([
          expect.stringMatching(`^\\[liveness\\] transaction ORDER: still PREPARED in ${fourth}`),
        ]),
      );
    });
  });
});
