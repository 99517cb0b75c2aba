import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateStock1764000002000 implements MigrationInterface {
  name = 'CreateStock1764000002000';

  async up(queryRunner: QueryRunner): Promise<void> {
    // `stocked` is everything ever put on the shelf, so the schema itself guarantees that
    // stock is only ever moved between available, reserved and sold, never created or lost.
    await queryRunner.query(`
      CREATE TABLE stock (
        sku        text PRIMARY KEY,
        available  int         NOT NULL CHECK (available >= 0),
        reserved   int         NOT NULL DEFAULT 0 CHECK (reserved >= 0),
        sold       int         NOT NULL DEFAULT 0 CHECK (sold >= 0),
        stocked    int         NOT NULL CHECK (stocked >= 0),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT stock_conserved CHECK (available + reserved + sold = stocked)
      )`);
    await queryRunner.query(`
      CREATE TABLE reservations (
        transaction_id uuid NOT NULL,
        sku            text NOT NULL REFERENCES stock (sku),
        quantity       int  NOT NULL CHECK (quantity > 0),
        PRIMARY KEY (transaction_id, sku)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE reservations`);
    await queryRunner.query(`DROP TABLE stock`);
  }
}
