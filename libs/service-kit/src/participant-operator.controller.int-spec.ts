import { randomUUID } from 'node:crypto';
import { INestApplication, Module } from '@nestjs/common';
import type { Server } from 'node:http';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { CreateParticipantTables1764000000200 } from '@shop/two-phase-commit';
import { createTestSchema, type TestSchema } from '../../../test/support/postgres';
import { createServiceApp } from './bootstrap';
import { BaseConfig } from './config';
import { ParticipantOperatorController, type ParticipantTransactionRecord } from './participant-operator.controller';
import { SERVICE_CONFIG } from './tokens';

/** A participant's own record of a checkout, on a real HTTP app and a real Postgres (the console reads it). */
describe("a participant's operator record of its checkouts", () => {
  let schema: TestSchema;
  let app: INestApplication;
  const server = () => app.getHttpServer() as Server;
  const admin = (path: string) => request(server()).get(path).set('authorization', 'Bearer the-admin-token');

  beforeAll(async () => {
    schema = await createTestSchema('participant_operator', [CreateParticipantTables1764000000200]);
    const config = {
      ...BaseConfig.parse({
        PORT: '3001',
        DATABASE_URL: schema.url,
        AMQP_URL: 'amqp://unused',
        ADMIN_TOKEN: 'the-admin-token',
        LOG_LEVEL: 'silent',
      }),
      INQUIRY_AFTER_MS: 30_000,
      INQUIRY_EVERY_MS: 15_000,
      SWEEP_INTERVAL_MS: 1_000,
    };
    @Module({
      controllers: [ParticipantOperatorController],
      providers: [
        { provide: SERVICE_CONFIG, useValue: config },
        { provide: DataSource, useValue: schema.dataSource },
      ],
    })
    class ParticipantOperatorModule {}
    app = await createServiceApp(ParticipantOperatorModule, { service: 'payment', config });
    await app.init();
  });
  afterAll(async () => {
    await app?.close();
    await schema?.drop();
  });

  async function recorded(state: string, preparedSecondsAgo: number | null, inquiries = 0): Promise<string> {
    const id = randomUUID();
    await schema.dataSource.query(
      `INSERT INTO tpc_participant_transactions (transaction_id, state, prepared_at, inquiries, last_inquiry_at)
       VALUES ($1, $2, now() - make_interval(secs => $3), $4, CASE WHEN $4 > 0 THEN now() END)`,
      [id, state, preparedSecondsAgo, inquiries],
    );
    await schema.dataSource.query(
      `INSERT INTO outbox (message_id, message_type, routing_key, body) VALUES ($1, 'vote', 'order.vote', $2)`,
      [randomUUID(), JSON.stringify({ transactionId: id, type: 'vote' })],
    );
    return id;
  }

  it('answers its record of one checkout, with the messages it sent about it', async () => {
    const id = await recorded('COMMITTED', 5);
    await recorded('COMMITTED', 5); // another checkout's vote is not this one's
    const response = await admin(`/operator/transactions/${id}`).expect(200);
    const record = response.body as ParticipantTransactionRecord;
    expect(record).toMatchObject({ transactionId: id, state: 'COMMITTED', inquiries: 0, voteReason: null });
    expect(record.messages).toEqual([{ type: 'vote', createdAt: expect.any(String), sentAt: null }]);
  });

  it('lists the checkouts it holds prepared, oldest first, with its inquiry settings', async () => {
    const older = await recorded('PREPARED', 60, 2);
    const newer = await recorded('PREPARED', 10);
    await recorded('ABORTED', 90);
    const response = await admin('/operator/transactions').expect(200);
    const body = response.body as { transactions: Array<{ transactionId: string; inquiries: number }> };
    expect(body).toMatchObject({ inquiryAfterMs: 30_000, inquiryEveryMs: 15_000, sweepIntervalMs: 1_000 });
    expect(body.transactions.map((t) => [t.transactionId, t.inquiries])).toEqual([
      [older, 2],
      [newer, 0],
    ]);
  });

  it('answers 404 for a checkout it never saw, 400 for a malformed id, 401 without the admin token', async () => {
    await admin(`/operator/transactions/${randomUUID()}`).expect(404);
    await admin('/operator/transactions/not-an-id').expect(400);
    await request(server()).get(`/operator/transactions/${randomUUID()}`).expect(401);
    await request(server()).get('/operator/transactions').set('authorization', 'Bearer wrong').expect(401);
  });
});
