import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateAccounts1764000003000 implements MigrationInterface {
  name = 'CreateAccounts1764000003000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // `deposited` is all money ever put in, so the schema itself guarantees that money is only
    // ever moved between balance, held and captured, never created or lost.
    await queryRunner.query(`
      CREATE TABLE accounts (
        customer_id text PRIMARY KEY,
        balance     bigint      NOT NULL CHECK (balance >= 0),
        held        bigint      NOT NULL DEFAULT 0 CHECK (held >= 0),
        captured    bigint      NOT NULL DEFAULT 0 CHECK (captured >= 0),
        deposited   bigint      NOT NULL CHECK (deposited >= 0),
        updated_at  timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT money_conserved CHECK (balance + held + captured = deposited)
      )`);
    await queryRunner.query(`
      CREATE TABLE holds (
        transaction_id uuid PRIMARY KEY,
        customer_id    text   NOT NULL REFERENCES accounts (customer_id),
        amount         bigint NOT NULL CHECK (amount >= 0),
        currency       text   NOT NULL
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE holds`);
    await queryRunner.query(`DROP TABLE accounts`);
  }
}
