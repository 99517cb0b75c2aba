import type { ParticipantTransactionRecord } from '@shop/service-kit';
import type { CheckoutRecord } from './checkout-record';

export type StepKind = 'order-written' | 'prepare' | 'vote' | 'decision' | 'ack' | 'resend' | 'inquiry';

/** One step of a checkout's sequence diagram: who, what, when, and the protocol rule it follows. */
export interface Step {
  kind: StepKind;
  /** The lane: `order` (the coordinator) or a participant. */
  service: string;
  at: Date;
  /** What happened, in a few words. */
  label: string;
  rule: string;
  vote?: 'yes' | 'no';
}

/** The rule each step follows (docs/console.md explains them; the protocol: checkout-protocol.md). */
export const RULES = {
  placed:
    'Place: the order, its items and one prepare per participant asked first are written in one local transaction.',
  prepare: 'Prepare: the participant records the message, checks its barrier and tries to reserve, in one transaction.',
  laterStage: 'Money before stock: a later stage is asked only once every participant before it said yes.',
  yes: 'A yes is a promise: from now on the participant may not release on its own; only a decision releases it.',
  no: 'A no holds nothing: the first no decides ABORT for everyone.',
  commit: 'Decide: every participant said yes, so COMMIT, written to the outbox for each with the order row locked.',
  timeout: 'The prepare deadline passed with votes missing: the coordinator decides ABORT (reason TIMEOUT).',
  abort: 'Decide: a no (or a refusal) means ABORT; the abort goes to every participant asked.',
  resend: 'A decision not acknowledged is sent again, with capped backoff and jitter, until it is acknowledged.',
  answer: 'The coordinator answers a late message with the decision it took; nothing is decided twice.',
  inquiry:
    'A participant holding PREPARED too long asks what was decided; one the coordinator does not know is answered abort (presumed abort).',
  ack: 'Apply: the participant applied the outcome idempotently and acknowledged it; all acknowledged: complete.',
} as const;

/** Steps at one instant (one transaction's now()) in causal order: a vote before the stage it releases, before the decision. */
const RANK = {
  'order-written': 0,
  prepare: 1,
  inquiry: 2,
  vote: 3,
  'later-prepare': 4,
  decision: 5,
  resend: 6,
  ack: 7,
};

/**
 * The steps of one checkout, in time order, from what the coordinator recorded and what each
 * participant recorded (`records`, by participant; missing: unreachable or none). Times are the
 * database's: an order written, each vote, the decision and each ack have their own column; a
 * prepare's is its outbox row's while retention keeps it, else the time it was written (with the
 * order, or for a later stage than `firstStage` with the vote that released it); re-sends and
 * inquiries come from the outboxes.
 */
export function sequenceOf(
  record: CheckoutRecord,
  records: Readonly<Record<string, ParticipantTransactionRecord | undefined>>,
  firstStage: readonly string[],
): Step[] {
  const { transaction, participants, messages } = record;
  const ranked: Array<Step & { rank: number }> = [];
  const add = (step: Step, rank: number = RANK[step.kind]) => ranked.push({ ...step, rank });
  add({
    kind: 'order-written',
    service: 'order',
    at: record.order.createdAt,
    label: 'order written (PENDING)',
    rule: RULES.placed,
  });
  const startedAt = transaction?.createdAt ?? record.order.createdAt;
  const inFirstStage = (name: string) => firstStage.length === 0 || firstStage.includes(name);
  const firstStageVotes = participants.filter((p) => inFirstStage(p.participant)).map((p) => p.votedAt?.getTime() ?? 0);
  const releasedAt = new Date(Math.max(startedAt.getTime(), ...firstStageVotes));
  for (const p of participants) {
    const name = p.participant;
    const prepare = messages.find((message) => message.type === 'prepare' && message.recipient === name);
    const later = !inFirstStage(name);
    const at = prepare?.createdAt ?? (later ? releasedAt : startedAt);
    add(
      {
        kind: 'prepare',
        service: name,
        at,
        label: `prepare sent to ${name}`,
        rule: later ? RULES.laterStage : RULES.prepare,
      },
      later ? RANK['later-prepare'] : RANK.prepare,
    );
    const own = records[name];
    const inquiries = own?.messages.filter((message) => message.type === 'inquiry') ?? [];
    for (const inquiry of inquiries) {
      add({
        kind: 'inquiry',
        service: name,
        at: new Date(inquiry.createdAt),
        label: `${name} asks what was decided`,
        rule: RULES.inquiry,
      });
    }
    if (own && own.inquiries > 0 && inquiries.length === 0 && own.lastInquiryAt) {
      const label = `${name} asked what was decided (${own.inquiries} times; the last)`;
      add({ kind: 'inquiry', service: name, at: new Date(own.lastInquiryAt), label, rule: RULES.inquiry });
    }
    if (p.vote && p.votedAt) {
      const yes = p.vote === 'yes';
      const label = yes ? `${name} votes yes` : `${name} votes no: ${p.voteReason ?? 'no reason given'}`;
      add({ kind: 'vote', service: name, at: p.votedAt, label, rule: yes ? RULES.yes : RULES.no, vote: p.vote });
    }
    const decisions = messages.filter((message) => message.type === 'decision' && message.recipient === name);
    for (const again of decisions.slice(1)) {
      const answer = again.causationId !== null;
      const label = answer ? `decision sent again to ${name} (an answer)` : `decision re-sent to ${name}`;
      add({ kind: 'resend', service: name, at: again.createdAt, label, rule: answer ? RULES.answer : RULES.resend });
    }
    if (p.ackedAt) add({ kind: 'ack', service: name, at: p.ackedAt, label: `${name} acknowledges`, rule: RULES.ack });
  }
  if (transaction?.decidedAt) {
    const commit = transaction.state === 'COMMITTED';
    const reason = transaction.decisionReason;
    add({
      kind: 'decision',
      service: 'order',
      at: transaction.decidedAt,
      label: commit ? 'decision: COMMIT' : `decision: ABORT (${reason ?? 'no reason given'})`,
      rule: commit ? RULES.commit : reason === 'TIMEOUT' ? RULES.timeout : RULES.abort,
    });
  }
  ranked.sort((a, b) => a.at.getTime() - b.at.getTime() || a.rank - b.rank);
  return ranked.map(({ rank: _rank, ...step }) => step);
}
