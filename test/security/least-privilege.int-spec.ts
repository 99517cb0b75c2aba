import * as amqp from 'amqplib';
import { Client } from 'pg';
import { SERVICE_NAMES, type ServiceName } from '@shop/contracts';
import { DEFAULT_RETRY, declareRetryQueues, declareTopology, retryDelays, topologyFor } from '@shop/messaging';
import { attemptAs } from '../support/broker';
import { requireEnv } from '../support/env';
import { adminChannel } from '../support/rabbitmq';

/**
 * Least privilege, checked against the real servers with the credentials the services use:
 * each Postgres role reaches only its own schema, and each broker user may declare, read and
 * publish only what its role in the checkout needs.
 */
const SERVICES = SERVICE_NAMES;
type Service = ServiceName;
const schemaOf = (service: Service) => `${service}_svc`;

async function asRole<T>(
  service: Service,
  work: (client: Client) => Promise<T>,
  role: 'runtime' | 'migrator' = 'runtime',
): Promise<T> {
  const setting = role === 'runtime' ? 'DATABASE_URL' : 'MIGRATION_DATABASE_URL';
  const client = new Client({ connectionString: requireEnv(`${service.toUpperCase()}_${setting}`) });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

const sqlState = (promise: Promise<unknown>) =>
  promise.then(
    () => 'allowed',
    (err: { code?: string }) => err.code ?? 'error',
  );

describe('Postgres: each service role reaches its own schema only', () => {
  const pairs = SERVICES.flatMap((a) => SERVICES.filter((b) => b !== a).map((b) => [a, b] as const));

  it.each(pairs)('%s cannot read, write or create anything in the %s schema', async (a, b) => {
    const target = `${schemaOf(b)}.${probeOf(b).table}`;
    const outcomes = await asRole(a, async (client) => ({
      read: await sqlState(client.query(`SELECT * FROM ${target} LIMIT 1`)),
      write: await sqlState(client.query(`DELETE FROM ${target}`)),
      create: await sqlState(client.query(`CREATE TABLE ${schemaOf(b)}.intruder (x int)`)),
      outbox: await sqlState(client.query(`SELECT * FROM ${schemaOf(b)}.outbox LIMIT 1`)),
    }));
    // 42501: insufficient_privilege
    expect(outcomes).toEqual({ read: '42501', write: '42501', create: '42501', outbox: '42501' });
  });

  it.each(SERVICES)('%s uses its own schema, and cannot create objects in public', async (service) => {
    const outcomes = await asRole(service, async (client) => ({
      own: await sqlState(client.query(`SELECT * FROM ${probeOf(service).table} LIMIT 1`)),
      searchPath: (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0].s,
      public: await sqlState(client.query(`CREATE TABLE public.intruder_${service} (x int)`)),
    }));
    expect(outcomes).toEqual({ own: 'allowed', searchPath: schemaOf(service), public: '42501' });
  });
});

/** A table of a service's own, a column of it, and a row its runtime role may write (rolled back). */
interface Probe {
  table: string;
  column: string;
  insert: string;
  update: string;
}
/**
 * The services' domain tables. A service not listed here (a participant just added) is probed on
 * the kit's inbox table, which every service has: its privileges come from the same grants.
 */
const DOMAIN_PROBES: Partial<Record<Service, Probe>> = {
  order: {
    table: 'orders',
    column: 'updated_at',
    insert: `INSERT INTO products (sku, name, unit_price) VALUES ('lp-probe', 'p', 1)`,
    update: `UPDATE products SET unit_price = 2 WHERE sku = 'lp-probe'`,
  },
  payment: {
    table: 'accounts',
    column: 'updated_at',
    insert: `INSERT INTO accounts (customer_id, balance, deposited) VALUES ('lp-probe', 1, 1)`,
    update: `UPDATE accounts SET balance = 2, deposited = 2 WHERE customer_id = 'lp-probe'`,
  },
  inventory: {
    table: 'stock',
    column: 'updated_at',
    insert: `INSERT INTO stock (sku, available, stocked) VALUES ('lp-probe', 1, 1)`,
    update: `UPDATE stock SET available = 2, stocked = 2 WHERE sku = 'lp-probe'`,
  },
};
const probeOf = (service: Service): Probe =>
  DOMAIN_PROBES[service] ?? {
    table: 'inbox',
    column: 'processed_at',
    insert: `INSERT INTO inbox (consumer, message_id) VALUES ('lp-probe', gen_random_uuid())`,
    update: `UPDATE inbox SET processed_at = now() WHERE consumer = 'lp-probe'`,
  };

/** Runs `work` in a transaction that is rolled back: nothing stays. */
async function rolledBack<T>(client: Client, work: () => Promise<T>): Promise<T> {
  await client.query('BEGIN');
  try {
    return await work();
  } finally {
    await client.query('ROLLBACK');
  }
}

/** A statement in a savepoint, so a refusal does not end the transaction around it. */
const attempt = async (client: Client, text: string) => {
  await client.query('SAVEPOINT attempt');
  const outcome = await sqlState(client.query(text));
  await client.query(outcome === 'allowed' ? 'RELEASE SAVEPOINT attempt' : 'ROLLBACK TO SAVEPOINT attempt');
  return outcome;
};

describe('Postgres: the runtime role reads and writes rows; only the migration role changes the schema', () => {
  it.each(SERVICES)('%s (runtime role) may SELECT, INSERT, UPDATE, DELETE and use sequences', async (service) => {
    const row = probeOf(service);
    const outcomes = await asRole(service, (client) =>
      rolledBack(client, async () => ({
        select: await attempt(client, `SELECT * FROM ${row.table} LIMIT 1`),
        insert: await attempt(client, row.insert),
        update: await attempt(client, row.update),
        delete: await attempt(client, `DELETE FROM ${row.table} WHERE false`),
        outbox: await attempt(
          client,
          `INSERT INTO outbox (message_id, message_type, routing_key, body) SELECT message_id, message_type, routing_key, body FROM outbox WHERE false`,
        ),
        sequence: await attempt(client, `SELECT nextval(pg_get_serial_sequence('outbox', 'id'))`),
      })),
    );
    expect(outcomes).toEqual({
      select: 'allowed',
      insert: 'allowed',
      update: 'allowed',
      delete: 'allowed',
      outbox: 'allowed',
      sequence: 'allowed',
    });
  });

  it.each(SERVICES)('%s (runtime role) cannot CREATE, ALTER, DROP or TRUNCATE in its own schema', async (service) => {
    const { table, column } = probeOf(service);
    const outcomes = await asRole(service, (client) =>
      rolledBack(client, async () => ({
        create: await attempt(client, `CREATE TABLE ${schemaOf(service)}.intruder (x int)`),
        alter: await attempt(client, `ALTER TABLE ${table} ADD COLUMN intruder int`),
        index: await attempt(client, `CREATE INDEX intruder ON ${table} (${column})`),
        truncate: await attempt(client, `TRUNCATE ${table}`),
        drop: await attempt(client, `DROP TABLE ${table}`),
        function: await attempt(
          client,
          `CREATE FUNCTION ${schemaOf(service)}.intruder() RETURNS int AS 'SELECT 1' LANGUAGE sql`,
        ),
      })),
    );
    // 42501: insufficient_privilege (for ALTER/DROP/CREATE INDEX: must be the table's owner)
    expect(outcomes).toEqual({
      create: '42501',
      alter: '42501',
      index: '42501',
      truncate: '42501',
      drop: '42501',
      function: '42501',
    });
  });

  it.each(SERVICES)('%s: the migration role owns the schema and every table, and may change them', async (service) => {
    const outcomes = await asRole(
      service,
      async (client) => {
        const { rows } = await client.query<{ owner: string; tables: string[] }>(
          `SELECT (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = current_schema()) AS owner,
                  (SELECT array_agg(DISTINCT tableowner::text) FROM pg_tables WHERE schemaname = current_schema()) AS tables`,
        );
        return {
          ...rows[0],
          change: await rolledBack(client, () =>
            attempt(client, `CREATE TABLE probe (x int); ALTER TABLE probe ADD COLUMN y int; DROP TABLE probe`),
          ),
          otherSchema: await sqlState(
            client.query(`SELECT * FROM ${schemaOf(SERVICES.find((s) => s !== service)!)}.outbox LIMIT 1`),
          ),
        };
      },
      'migrator',
    );
    const migrator = `${schemaOf(service)}_migrator`;
    expect(outcomes).toEqual({ owner: migrator, tables: [migrator], change: 'allowed', otherSchema: '42501' });
  });

  it.each(SERVICES)(
    '%s (runtime role) may read the migrations table, never write it (a name there skips a migration)',
    async (service) => {
      const forged = `INSERT INTO migrations ("timestamp", name) VALUES (9999999999999, 'Skipped9999999999999')`;
      const runtime = await asRole(service, (client) =>
        rolledBack(client, async () => ({
          read: await attempt(client, 'SELECT count(*) FROM migrations'),
          insert: await attempt(client, forged),
          update: await attempt(client, `UPDATE migrations SET name = name`),
          delete: await attempt(client, 'DELETE FROM migrations WHERE false'),
          truncate: await attempt(client, 'TRUNCATE migrations'),
        })),
      );
      expect(runtime).toEqual({
        read: 'allowed',
        insert: '42501',
        update: '42501',
        delete: '42501',
        truncate: '42501',
      });
      const migrator = await asRole(service, (client) => rolledBack(client, () => attempt(client, forged)), 'migrator');
      expect(migrator).toBe('allowed');
    },
  );
});

describe('RabbitMQ: each service user may do only what its role needs', () => {
  beforeAll(async () => {
    // The services' queues, as the services declare them, so that refusals are about rights.
    const admin = await adminChannel();
    for (const service of SERVICES) await declareTopology(admin.channel, topologyFor(service));
    await admin.close();
  });

  const publish = (routingKey: string) => (channel: amqp.ConfirmChannel) => {
    channel.publish('checkout', routingKey, Buffer.from('{}'), { persistent: true });
    return Promise.resolve();
  };

  it.each([
    ['order', 'inventory.prepare', 'allowed'],
    ['order', 'payment.decision', 'allowed'],
    ['order', 'payment.vote', 'refused'],
    ['order', 'order.vote', 'refused'],
    ['payment', 'order.vote', 'allowed'],
    ['payment', 'order.ack', 'allowed'],
    ['payment', 'inventory.decision', 'refused'],
    ['payment', 'inventory.prepare', 'refused'],
    ['inventory', 'order.inquiry', 'allowed'],
    ['inventory', 'payment.vote', 'refused'],
  ] as const)('%s publishing %s on the checkout exchange is %s', async (service, routingKey, expected) => {
    expect(await attemptAs(service, publish(routingKey))).toBe(expected);
  });

  it.each([
    ['payment', 'checkout.retry', 'payment', 'allowed'],
    ['payment', 'checkout.retry', 'payment.redrive', 'allowed'],
    ['payment', 'checkout.retry', 'payment.retry.100ms', 'allowed'],
    ['payment', 'checkout.retry', 'inventory.retry.100ms', 'refused'],
    ['payment', 'checkout.retry', 'inventory', 'refused'],
    ['payment', 'checkout.retry', 'order.redrive', 'refused'],
    ['payment', '', 'checkout.inventory', 'refused'],
    ['order', '', 'checkout.order', 'refused'],
  ] as const)(
    '%s sending to itself or others through %s with key %s is %s',
    async (service, exchange, routingKey, expected) => {
      const send = (channel: amqp.ConfirmChannel) => {
        channel.publish(exchange, routingKey, Buffer.from('{}'), { persistent: true });
        return Promise.resolve();
      };
      expect(await attemptAs(service, send)).toBe(expected);
    },
  );

  const deadLetterExchangeOf = (service: Service) => topologyFor(service).deadLetterExchange;
  it.each([
    ['payment', 'payment', 'allowed'],
    ['inventory', 'payment', 'refused'],
    ['order', 'payment', 'refused'],
    ['payment', 'inventory', 'refused'],
  ] as const)("%s parking a message in %s's dead-letter exchange is %s", async (service, owner, expected) => {
    const park = (channel: amqp.ConfirmChannel) => {
      channel.publish(deadLetterExchangeOf(owner), owner, Buffer.from('{}'), { persistent: true });
      return Promise.resolve();
    };
    expect(await attemptAs(service, park)).toBe(expected);
  });

  it.each(SERVICES)(
    "%s cannot have the broker dead-letter a queue of its own into another service's dead-letter exchange",
    async (service) => {
      const other = SERVICES.find((s) => s !== service)!;
      const trap = (channel: amqp.ConfirmChannel) =>
        channel.assertQueue(`checkout.${service}.trap`, {
          durable: false,
          arguments: { 'x-dead-letter-exchange': deadLetterExchangeOf(other), 'x-message-ttl': 0 },
        });
      expect(await attemptAs(service, trap)).toBe('refused');
    },
  );

  const { exchange: checkout, retryExchange } = topologyFor(SERVICES[0]);
  it.each(SERVICES.flatMap((service) => [checkout, retryExchange].map((shared) => [service, shared] as const)))(
    '%s cannot delete or redeclare the shared exchange %s, only use it',
    async (service, shared) => {
      expect(await attemptAs(service, (channel) => channel.deleteExchange(shared))).toBe('refused');
      expect(await attemptAs(service, (channel) => channel.assertExchange(shared, 'fanout'))).toBe('refused');
      expect(await attemptAs(service, (channel) => channel.checkExchange(shared))).toBe('allowed');
    },
  );

  it.each([
    ['payment', 'checkout.order'],
    ['inventory', 'checkout.payment'],
    ['order', 'checkout.inventory.dead-letter'],
  ] as const)("%s cannot consume another service's queue %s", async (service, queue) => {
    expect(await attemptAs(service, (channel) => channel.consume(queue, () => undefined))).toBe('refused');
  });

  it.each(SERVICES)('%s cannot declare a queue outside its own names', async (service) => {
    expect(await attemptAs(service, (channel) => channel.assertQueue(`rogue.${service}`, { durable: false }))).toBe(
      'refused',
    );
  });

  it.each(SERVICES)('%s may declare and read its own queues', async (service) => {
    const topology = topologyFor(service);
    expect(
      await attemptAs(service, async (channel) => {
        await declareTopology(channel, topology);
        await declareRetryQueues(channel, topology, retryDelays(DEFAULT_RETRY));
        await channel.checkQueue(topology.deadLetterQueue);
      }),
    ).toBe('allowed');
  });
});
