import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox table, in the service's own schema (its role's search_path). A statement-level
 * trigger NOTIFYs `<schema>.outbox` on insert; Postgres delivers it at commit, so the relay
 * wakes only for committed rows.
 */
export class CreateOutbox1764000000000 implements MigrationInterface {
  name = 'CreateOutbox1764000000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE outbox (
        id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        message_id   uuid        NOT NULL UNIQUE,
        message_type text        NOT NULL,
        routing_key  text        NOT NULL,
        body         jsonb       NOT NULL,
        headers      jsonb       NOT NULL DEFAULT '{}',
        created_at   timestamptz NOT NULL DEFAULT now(),
        sent_at      timestamptz
      )`);
    await queryRunner.query(`CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL`);
    await queryRunner.query(`CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL`);
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

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE outbox`);
    await queryRunner.query(`DROP FUNCTION outbox_notify()`);
  }
}
