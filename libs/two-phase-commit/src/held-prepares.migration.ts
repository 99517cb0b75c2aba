import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The prepares the coordinator holds back for a later stage (money before stock): each is sent
 * once every participant of the stages before it said yes, and dropped when the checkout is
 * decided first. Its participant joins `tpc_participants` when it is sent.
 */
export class CreateHeldPrepares1764000000101 implements MigrationInterface {
  name = 'CreateHeldPrepares1764000000101';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE tpc_held_prepares (
        transaction_id uuid     NOT NULL REFERENCES tpc_transactions (id),
        participant    text     NOT NULL,
        stage          smallint NOT NULL CHECK (stage > 0),
        payload        jsonb    NOT NULL,
        PRIMARY KEY (transaction_id, participant)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE tpc_held_prepares`);
  }
}
