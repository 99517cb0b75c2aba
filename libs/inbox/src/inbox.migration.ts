import { MigrationInterface, QueryRunner } from 'typeorm';

/** The inbox table: one row per (consumer, message id) already handled. */
export class CreateInbox1764000000001 implements MigrationInterface {
  name = 'CreateInbox1764000000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE inbox (
        consumer     text        NOT NULL,
        message_id   uuid        NOT NULL,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, message_id)
      )`);
    await queryRunner.query(`CREATE INDEX inbox_processed_at ON inbox (processed_at)`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE inbox`);
  }
}
