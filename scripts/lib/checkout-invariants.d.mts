// Types of checkout-invariants.mjs, for the TypeScript test support.
import type { ClientBase } from 'pg';

export interface FoundViolation {
  kind: 'safety' | 'liveness';
  /** The invariant broken: a generic check's name, or `<service>: apps/<service>/checks/violations.sql`. */
  check: string;
  message: string;
}

export declare const GENERIC_CHECKS: Readonly<Record<string, string>>;
export declare function schemaOf(name: string): string;
export declare function serviceChecks(
  name: string,
  root?: string,
): { name: string; file: string; violations: string; resources: string | null } | null;
export declare function findViolations(
  client: ClientBase,
  options: {
    coordinator: string;
    participants: readonly string[];
    transactionIds?: readonly string[] | null;
    quiescent?: boolean;
  },
): Promise<FoundViolation[]>;
