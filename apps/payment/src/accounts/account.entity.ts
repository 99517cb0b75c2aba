import { Check, Column, Entity, PrimaryColumn, UpdateDateColumn, type ValueTransformer } from 'typeorm';

/**
 * bigint figures as numbers (pg hands them over as strings). The API keeps every account's
 * `deposited` at most MAX_DEPOSITED (2^53 - 1), so each figure converts exactly.
 */
const asNumber: ValueTransformer = { to: (value: number) => value, from: (value: string) => Number(value) };

/**
 * A customer's money (the `accounts` table, made by the migrations): `balance` is spendable,
 * `held` is promised to prepared checkouts, `captured` is what committed ones took, and
 * `deposited` all that was ever put in; the schema checks balance + held + captured = deposited.
 * The admin API reads and writes it through its repository; the checkout's holds
 * (`PaymentHolds`) move money in plain SQL, each in one conditional statement. The checks are
 * declared as the migration made them, so `migration:generate` finds nothing to change.
 */
@Entity({ name: 'accounts' })
@Check('accounts_balance_check', 'balance >= 0')
@Check('accounts_held_check', 'held >= 0')
@Check('accounts_captured_check', 'captured >= 0')
@Check('accounts_deposited_check', 'deposited >= 0')
@Check('money_conserved', 'balance + held + captured = deposited')
export class Account {
  @PrimaryColumn({ name: 'customer_id', type: 'text' })
  customerId!: string;

  @Column({ type: 'bigint', transformer: asNumber })
  balance!: number;

  @Column({ type: 'bigint', transformer: asNumber, default: 0 })
  held!: number;

  @Column({ type: 'bigint', transformer: asNumber, default: 0 })
  captured!: number;

  @Column({ type: 'bigint', transformer: asNumber })
  deposited!: number;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
