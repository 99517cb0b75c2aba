import { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateCatalogAndOrders1764000001000 implements MigrationInterface {
  name = 'CreateCatalogAndOrders1764000001000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE products (
        sku        text PRIMARY KEY,
        name       text        NOT NULL,
        unit_price bigint      NOT NULL CHECK (unit_price > 0),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await queryRunner.query(`
      CREATE TABLE orders (
        id              uuid PRIMARY KEY,
        customer_id     text        NOT NULL,
        status          text        NOT NULL CHECK (status IN ('PENDING', 'CONFIRMED', 'CANCELLED')),
        reason          text,
        total           bigint      NOT NULL CHECK (total >= 0),
        currency        text        NOT NULL,
        idempotency_key text UNIQUE,
        request_hash    text        NOT NULL,
        created_at      timestamptz NOT NULL DEFAULT now(),
        decided_at      timestamptz
      )`);
    await queryRunner.query(`
      CREATE TABLE order_items (
        order_id   uuid   NOT NULL REFERENCES orders (id),
        sku        text   NOT NULL,
        quantity   int    NOT NULL CHECK (quantity > 0),
        unit_price bigint NOT NULL CHECK (unit_price > 0),
        PRIMARY KEY (order_id, sku)
      )`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE order_items`);
    await queryRunner.query(`DROP TABLE orders`);
    await queryRunner.query(`DROP TABLE products`);
  }
}
