import { NotFoundException, UnprocessableEntityException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Transactions } from '@shop/outbox';
import { BaseConfig, RequestDatabase } from '@shop/service-kit';
import { createTestSchema, type TestSchema } from '../../../../test/support/postgres';
import { paymentMigrations } from '../migrations';
import { Account } from './account.entity';
import { MAX_DEPOSITED } from './account.schemas';
import { AccountsController } from './accounts.controller';

/** The admin and customer routes of accounts, through the `Account` repository, on a real Postgres. */
/** The admin of the PUTs, as the guard names them (a token fingerprint). */
const ADMIN = 'a1b2c3d4e5f6';

describe('accounts (repository)', () => {
  let schema: TestSchema;
  let dataSource: DataSource;
  let accounts: AccountsController;
  const row = async (customerId: string) =>
    (
      await dataSource.query<Array<Record<string, string>>>(
        `SELECT balance::text, held::text, captured::text, deposited::text FROM accounts WHERE customer_id = $1`,
        [customerId],
      )
    )[0];

  beforeAll(async () => {
    schema = await createTestSchema('accounts', paymentMigrations);
    dataSource = await new DataSource({ ...schema.dataSource.options, entities: [Account] }).initialize();
    const config = BaseConfig.parse({ PORT: '3000', DATABASE_URL: schema.url, AMQP_URL: 'amqp://unused' });
    accounts = new AccountsController(new RequestDatabase(dataSource, new Transactions(dataSource), config));
  });
  afterAll(async () => {
    await dataSource?.destroy();
    await schema?.drop();
  });

  it('sets the balance of a new account, then of one with money held and captured (deposited follows)', async () => {
    expect(await accounts.put('carol', { balance: 500 }, ADMIN)).toEqual({
      customerId: 'carol',
      balance: 500,
      held: 0,
      captured: 0,
    });
    await dataSource.query(
      `UPDATE accounts SET balance = balance - 300, held = 100, captured = 200 WHERE customer_id = 'carol'`,
    );
    expect(await accounts.put('carol', { balance: 50 }, ADMIN)).toEqual({
      customerId: 'carol',
      balance: 50,
      held: 100,
      captured: 200,
    });
    expect(await row('carol')).toEqual({ balance: '50', held: '100', captured: '200', deposited: '350' });
  });

  it('lets PUTs for the same new customer race: each is answered, the account is one of them', async () => {
    const balances = Array.from({ length: 8 }, (_, i) => 100 * (i + 1));
    const answers = await Promise.all(balances.map((balance) => accounts.put('dave', { balance }, ADMIN)));
    expect(answers.map((answer) => answer.balance)).toEqual(balances);
    const { balance, deposited } = await row('dave');
    expect(balances).toContain(Number(balance));
    expect(deposited).toBe(balance);
  });

  it('refuses, unwritten, a balance that would count more than MAX_DEPOSITED', async () => {
    await dataSource.query(
      `INSERT INTO accounts (customer_id, balance, captured, deposited) VALUES ('erin', 0, $1, $1)`,
      [String(MAX_DEPOSITED - 10)],
    );
    const before = await row('erin');
    await expect(accounts.put('erin', { balance: 11 }, ADMIN)).rejects.toThrow(UnprocessableEntityException);
    expect(await row('erin')).toEqual(before);
    await expect(accounts.put('frank', { balance: MAX_DEPOSITED }, ADMIN)).resolves.toMatchObject({
      balance: MAX_DEPOSITED,
    });
  });

  it("answers a customer's own account, and another's like one that does not exist", async () => {
    await accounts.put('grace', { balance: 70 }, ADMIN);
    expect(await accounts.get('grace', 'grace')).toEqual({ customerId: 'grace', balance: 70, held: 0, captured: 0 });
    await expect(accounts.get('heidi', 'grace')).rejects.toThrow(NotFoundException);
    await expect(accounts.get('heidi', 'heidi')).rejects.toThrow(NotFoundException);
  });
});
