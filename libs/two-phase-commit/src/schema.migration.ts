import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The coordinator's protocol state, in the coordinator's schema: one row per transaction (its
 * decision and deadline) and one per participant (its vote, its ack, the decision re-sends).
 */
export class CreateCoordinatorTables1764000000100 implements MigrationInterface {
  name = 'CreateCoordinatorTables1764000000100';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE tpc_transactions (
        id              uuid PRIMARY KEY,
        state           text        NOT NULL CHECK (state IN ('PREPARING', 'COMMITTED', 'ABORTED')),
        decision_reason text,
        deadline        timestamptz NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        decided_at      timestamptz,
        completed_at    timestamptz
      )`);
    await queryRunner.query(
      `CREATE INDEX tpc_transactions_undecided ON tpc_transactions (deadline) WHERE state = 'PREPARING'`,
    );
    await queryRunner.query(`
      CREATE TABLE tpc_participants (
        transaction_id uuid        NOT NULL REFERENCES tpc_transactions (id),
        participant    text        NOT NULL,
        vote           text        CHECK (vote IN ('yes', 'no')),
        vote_reason    text,
        voted_at       timestamptz,
        acked_at       timestamptz,
        resends        int         NOT NULL DEFAULT 0,
        next_resend_at timestamptz,
        PRIMARY KEY (transaction_id, participant)
      )`);
    await queryRunner.query(
      `CREATE INDEX tpc_participants_unacked ON tpc_participants (next_resend_at) WHERE acked_at IS NULL AND next_resend_at IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE tpc_participants`);
    await queryRunner.query(`DROP TABLE tpc_transactions`);
  }
}

/**
 * A participant's protocol state, in the participant's schema: one row per transaction it has
 * seen. An ABORTED row for a transaction it never prepared is the tombstone (the barrier).
 */
export class CreateParticipantTables1764000000200 implements MigrationInterface {
  name = 'CreateParticipantTables1764000000200';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE tpc_participant_transactions (
        transaction_id  uuid PRIMARY KEY,
        state           text        NOT NULL CHECK (state IN ('PREPARING', 'PREPARED', 'REFUSED', 'COMMITTED', 'ABORTED')),
        vote_reason     text,
        prepared_at     timestamptz,
        decided_at      timestamptz,
        last_inquiry_at timestamptz,
        inquiries       int         NOT NULL DEFAULT 0,
        created_at      timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(
      `CREATE INDEX tpc_participant_transactions_prepared ON tpc_participant_transactions (prepared_at) WHERE state = 'PREPARED'`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE tpc_participant_transactions`);
  }
}
