import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox for publishing right after commit: the process that committed a row publishes it
 * at once, so no NOTIFY is needed per write (Postgres serializes the commits of NOTIFYing
 * transactions). The relay remains the safety net, polling for rows still unsent when due:
 * `next_attempt_at` leaves a new row to the fast path for a moment, leases a claimed row while
 * it is published, and backs off a row that failed (`attempts`) without holding up the others.
 */
export class OutboxFastPath1764000000002 implements MigrationInterface {
  name = 'OutboxFastPath1764000000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER outbox_notify ON outbox`);
    await queryRunner.query(`DROP FUNCTION outbox_notify()`);
    await queryRunner.query(`
      ALTER TABLE outbox
        ADD COLUMN attempts        int         NOT NULL DEFAULT 0,
        ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now()`);
    await queryRunner.query(`DROP INDEX outbox_unsent`);
    await queryRunner.query(`CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX outbox_due`);
    await queryRunner.query(`CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL`);
    await queryRunner.query(`ALTER TABLE outbox DROP COLUMN attempts, DROP COLUMN next_attempt_at`);
    await queryRunner.query(`
      CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify(TG_TABLE_SCHEMA || '.outbox', '');
        RETURN NULL;
      END $$`);
    await queryRunner.query(
      `CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()`,
    );
  }
}
