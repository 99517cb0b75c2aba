import type { CheckoutMessageType, Outcome } from '@shop/contracts';

/** A decision the coordinator took, as reported once its transaction committed. */
export interface DecisionTaken {
  transactionId: string;
  outcome: Outcome;
  /** The first "no" vote's reason, TIMEOUT, or null for a commit. */
  reason: string | null;
  /** From the transaction's creation (the order placed) to its decision. */
  latencySeconds: number;
}

/**
 * What the protocol kit reports as it runs, for metrics; every call comes after the local
 * transaction committed, so nothing rolled back is counted. All optional.
 */
export interface ProtocolObserver {
  decided?(decision: DecisionTaken): void;
  /** A message this consumer had already handled arrived again and was dropped by the inbox. */
  duplicate?(type: CheckoutMessageType): void;
}
