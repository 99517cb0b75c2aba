import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An Idempotency-Key is the customer's: two customers may use the same key for two orders. Keys
 * past retention are forgotten (set to NULL, see OrdersService.pruneIdempotencyKeys): the partial
 * index finds them without scanning every order.
 */
export class ScopeIdempotencyKeysToCustomers1764100001000 implements MigrationInterface {
  name = 'ScopeIdempotencyKeysToCustomers1764100001000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE orders DROP CONSTRAINT orders_idempotency_key_key`);
    await queryRunner.query(
      `ALTER TABLE orders ADD CONSTRAINT orders_customer_idempotency_key UNIQUE (customer_id, idempotency_key)`,
    );
    await queryRunner.query(
      `CREATE INDEX orders_idempotency_key_created_at ON orders (created_at) WHERE idempotency_key IS NOT NULL`,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX orders_idempotency_key_created_at`);
    await queryRunner.query(`ALTER TABLE orders DROP CONSTRAINT orders_customer_idempotency_key`);
    // Fails if two customers hold the same key: forget the older ones first.
    await queryRunner.query(`ALTER TABLE orders ADD CONSTRAINT orders_idempotency_key_key UNIQUE (idempotency_key)`);
  }
}
