import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry } from 'prom-client';
import type { CheckoutMessageType } from '@shop/contracts';
import type { DecisionTaken, ProtocolObserver } from './observer';

/**
 * The protocol's own metrics, on the service's registry (served at /metrics by the platform):
 * decisions by outcome and reason, their latency, and duplicates dropped by the inbox. Labels are
 * low-cardinality on purpose (outcome, reason, message type), never an id.
 */
@Injectable()
export class ProtocolMetrics implements ProtocolObserver {
  private readonly duplicates: Counter<'type'>;
  private readonly decisions: Counter<'outcome' | 'reason'>;
  private readonly decisionSeconds: Histogram<'outcome'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.duplicates = new Counter({
      name: 'checkout_inbox_duplicates_total',
      help: 'Messages already handled that arrived again and were dropped by the inbox, by type',
      labelNames: ['type'],
      registers,
    });
    this.decisions = new Counter({
      name: 'checkout_decisions_total',
      help: 'Checkouts decided by the coordinator, by outcome (commit, abort) and reason (the first no vote, TIMEOUT, or none)',
      labelNames: ['outcome', 'reason'],
      registers,
    });
    this.decisionSeconds = new Histogram({
      name: 'checkout_decision_seconds',
      help: 'Time from an order created to its checkout decided, by outcome',
      labelNames: ['outcome'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60],
      registers,
    });
  }

  decided(decision: DecisionTaken): void {
    this.decisions.inc({ outcome: decision.outcome, reason: decision.reason ?? 'none' });
    this.decisionSeconds.observe({ outcome: decision.outcome }, decision.latencySeconds);
  }

  duplicate(type: CheckoutMessageType): void {
    this.duplicates.inc({ type });
  }
}
