import { randomUUID } from 'node:crypto';
import { Transactions } from '@shop/outbox';
import { COORDINATOR_MIGRATIONS } from '@shop/two-phase-commit';
import { createTestSchema, type TestSchema } from '../../../../test/support/postgres';
import { inDoubtCheckouts, unfinishedCheckouts } from './unfinished-checkouts';

describe("the operator's read model of the coordinator's tables", () => {
  let schema: TestSchema;

  beforeAll(async () => {
    schema = await createTestSchema('operator_read_model', COORDINATOR_MIGRATIONS);
  });
  afterAll(() => schema.drop());

  /** A checkout as the coordinator records it (its row and its participants'), `ageSeconds` old. */
  async function checkout(state: 'PREPARING' | 'COMMITTED', ageSeconds: number, acked = false): Promise<string> {
    const id = randomUUID();
    await new Transactions(schema.dataSource).run((unit) =>
      unit.manager.query(
        `WITH t AS (
           INSERT INTO tpc_transactions (id, state, deadline, created_at, decided_at, completed_at)
           VALUES ($1, $2, now() + interval '1 minute', now() - make_interval(secs => $3),
                   CASE WHEN $2 = 'COMMITTED' THEN now() END, CASE WHEN $4 THEN now() END) RETURNING id)
         INSERT INTO tpc_participants (transaction_id, participant, vote, acked_at)
         SELECT id, p, CASE WHEN $2 = 'COMMITTED' THEN 'yes' END, CASE WHEN $4 THEN now() END
           FROM t, unnest(ARRAY['inventory', 'payment']) AS p`,
        [id, state, ageSeconds, acked],
      ),
    );
    return id;
  }

  it('counts the checkouts still collecting votes and the age of the oldest', async () => {
    expect(await inDoubtCheckouts(schema.dataSource)).toEqual({ count: 0, oldestAgeSeconds: 0 });
    await checkout('PREPARING', 30);
    await checkout('PREPARING', 5);
    await checkout('COMMITTED', 60);
    const inDoubt = await inDoubtCheckouts(schema.dataSource);
    expect(inDoubt.count).toBe(2);
    expect(inDoubt.oldestAgeSeconds).toBeGreaterThanOrEqual(30);
  });

  it('lists unfinished checkouts older than asked, oldest first, with their participants', async () => {
    const unacked = await checkout('COMMITTED', 3_600);
    await checkout('COMMITTED', 7_200, true); // every participant acked: finished
    const listed = await unfinishedCheckouts(schema.dataSource, 3_000_000);
    expect(listed.map((checkout) => [checkout.id, checkout.stage])).toEqual([[unacked, 'unacknowledged']]);
    expect(listed[0].participants.map((p) => [p.participant, p.vote, p.acked])).toEqual([
      ['inventory', 'yes', false],
      ['payment', 'yes', false],
    ]);
  });
});
