import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { CheckoutMessage, Participant as ParticipantName } from '@shop/contracts';
import { silentLogger } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { runMigrations, serviceDataSourceOptions } from '@shop/service-kit';
import { Participant, ParticipantMessage, ParticipantResource } from '@shop/two-phase-commit';
import { testEnv } from './env';
import { eventually } from './eventually';
import { adminQuery, TestSchema } from './postgres';

/**
 * A fresh database (not a schema: Postgres counts deadlocks per database, and no other test
 * may add to this one's count) with the outbox and inbox tables and `migrations`; dropped by `drop()`.
 */
export async function createDeadlockCountingDatabase(
  prefix: string,
  migrations: Array<new () => unknown>,
): Promise<TestSchema> {
  const name = `${prefix}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(testEnv.pgAdminUrl);
  url.pathname = `/${name}`;
  const options = serviceDataSourceOptions({ url: url.toString(), migrations, applicationName: name, poolSize: 4 });
  await runMigrations(options, () => undefined);
  const dataSource = await new DataSource(options).initialize();
  return {
    name,
    url: url.toString(),
    dataSource,
    async drop() {
      await dataSource.destroy();
      await adminQuery(`DROP DATABASE ${name} WITH (FORCE)`);
    },
  };
}

/** Deadlocks Postgres has detected in database `name` so far. */
async function deadlocks(name: string): Promise<number> {
  const [row] = await adminQuery<{ deadlocks: number }>(
    `SELECT deadlocks::int AS deadlocks FROM pg_stat_database WHERE datname = $1`,
    [name],
  );
  return row.deadlocks;
}

export interface CrossingOutcome {
  /** Deadlocks detected while the two batches ran. */
  deadlocks: number;
  /** Each resource call, in the order they ran: a batch run again shows its calls twice. */
  calls: string[];
  /** Whether each message of each batch was handled (by batch). */
  handled: boolean[][];
}

/**
 * Runs `batches[0]` and `batches[1]` at once, each in its own replica of the participant (a
 * Participant on a DataSource of its own, as two processes are), each sorted by transaction id
 * as the transport sorts a batch. Each batch holds back after its first resource call until the
 * other batch made its first one too, or waits for a lock: so both are in flight together, and
 * were their locks taken message by message in opposite orders, they would deadlock.
 */
export async function runCrossingBatches<P extends ParticipantName>(
  /** From `createDeadlockCountingDatabase`. */
  schema: TestSchema,
  name: P,
  resource: () => ParticipantResource<P>,
  batches: [ParticipantMessage[], ParticipantMessage[]],
): Promise<CrossingOutcome> {
  const replicas = ['a', 'b'].map((replica) => `${schema.name}_${replica}`);
  const before = await deadlocks(schema.name);
  const calls: string[] = [];
  const firstCallMade = [false, false];
  const holding = [true, true];

  /** After a batch's first resource call: until the other made one too or waits for a lock. */
  async function bothInFlight(replica: number): Promise<void> {
    firstCallMade[replica] = true;
    if (!holding[replica]) return;
    const other = 1 - replica;
    await eventually(
      async () =>
        firstCallMade[other] ||
        (
          await adminQuery<{ waiting: number }>(
            `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
            [replicas[other]],
          )
        )[0].waiting > 0,
      { what: `replica ${replicas[other]} in flight`, timeoutMs: 4_000 },
    );
    holding[replica] = false;
  }

  /** The app's resource, noting its calls and holding back after the first one of a batch. */
  const holdingBack = (replica: number, real: ParticipantResource<P>): ParticipantResource<P> => ({
    lock: real.lock && ((unit, batch) => real.lock!(unit, batch)),
    async prepare(unit, prepares) {
      calls.push(...prepares.map(({ transactionId }) => `prepare ${transactionId}`));
      const votes = await real.prepare(unit, prepares);
      await bothInFlight(replica);
      return votes;
    },
    async commit(unit, transactionIds) {
      calls.push(...transactionIds.map((id) => `commit ${id}`));
      await real.commit(unit, transactionIds);
      await bothInFlight(replica);
    },
    async abort(unit, transactionIds) {
      calls.push(...transactionIds.map((id) => `abort ${id}`));
      await real.abort(unit, transactionIds);
      await bothInFlight(replica);
    },
  });

  const dataSources = await Promise.all(
    replicas.map((applicationName) =>
      new DataSource(
        serviceDataSourceOptions({ url: schema.url, migrations: [], applicationName, poolSize: 2 }),
      ).initialize(),
    ),
  );
  let handled: boolean[][];
  try {
    handled = await Promise.all(
      batches.map(async (batch, replica) => {
        const transactions = new Transactions(dataSources[replica]);
        const participant = new Participant({
          name,
          resource: holdingBack(replica, resource()),
          transactions,
          logger: silentLogger,
        });
        const sorted = [...batch].sort((x, y) =>
          x.transactionId < y.transactionId ? -1 : x.transactionId > y.transactionId ? 1 : 0,
        );
        const results = await transactions.runBatch(sorted, (unit) => participant.handle(unit, unit.items));
        return results.map((result) => result.ok);
      }),
    );
  } finally {
    await Promise.all(dataSources.map((dataSource) => dataSource.destroy()));
  }
  // A backend reports its deadlocks to the statistics before it leaves pg_stat_activity.
  await eventually(
    async () =>
      (
        await adminQuery<{ left: number }>(
          `SELECT count(*)::int AS left FROM pg_stat_activity WHERE application_name = ANY($1)`,
          [replicas],
        )
      )[0].left === 0,
    { what: 'the replicas disconnected' },
  );
  return { deadlocks: (await deadlocks(schema.name)) - before, calls, handled };
}

/** Four checkout ids, in id order: a batch sorted by id handles the first's rows first. */
export const sortedCheckouts = () => [randomUUID(), randomUUID(), randomUUID(), randomUUID()].sort();

/** What the schema's outbox holds, as [transaction id, type, payload], in the order written. */
export async function sentMessages(schema: TestSchema): Promise<Array<[string, string, unknown]>> {
  const rows = await schema.dataSource.query<Array<{ body: CheckoutMessage }>>(`SELECT body FROM outbox ORDER BY id`);
  return rows.map(({ body }) => [body.transactionId, body.type, body.payload]);
}
