import type { DataSource } from 'typeorm';
import { unfinishedCheckouts } from '../operator/unfinished-checkouts';
import type { ParticipantsClient } from './participants-client';

/** A checkout the stuck view lists, and what the system does next about it, and when. */
export interface StuckCheckout {
  id: string;
  stuck: 'past-deadline' | 'unacknowledged' | 'inquiring';
  /** The lane it waits on: the coordinator, or the participant that has not answered or that asks. */
  service: string;
  ageMs: number;
  detail: string;
  next: string;
  /** When `next` is due (undefined: at once, at the next sweep). */
  nextAt?: Date;
}

/** The coordinator's timings, from its config: what "next" is computed from. */
export interface CoordinatorTimings {
  SWEEP_INTERVAL_MS: number;
  DECISION_RESEND_BASE_MS: number;
  DECISION_RESEND_CAP_MS: number;
}

/** Decided and not acknowledged for this long is stuck (an ack's round trip is milliseconds). */
export const UNACKNOWLEDGED_AFTER_MS = 1_000;

/**
 * What is stuck, from the operator's reads: the coordinator's unfinished checkouts (in doubt past
 * their deadline; decided, not acknowledged) and each participant's checkouts held prepared long
 * enough to inquire (its operator API). Answers the list and the participants that could not be asked.
 */
export async function readStuck(
  dataSource: DataSource,
  participants: readonly string[],
  client: ParticipantsClient,
  timings: CoordinatorTimings,
  nowMs = Date.now(),
): Promise<{ stuck: StuckCheckout[]; problems: string[] }> {
  const stuck: StuckCheckout[] = [];
  const sweep = `the coordinator's sweep, every ${timings.SWEEP_INTERVAL_MS} ms`;
  for (const checkout of await unfinishedCheckouts(dataSource, 0, 200)) {
    if (checkout.stage === 'in-doubt') {
      const deadline = new Date(checkout.deadline);
      if (deadline.getTime() > nowMs) continue; // still collecting votes in time: not stuck
      const missing = checkout.participants.filter((p) => p.vote === null).map((p) => p.participant);
      stuck.push({
        id: checkout.id,
        stuck: 'past-deadline',
        service: missing[0] ?? 'order',
        ageMs: checkout.ageMs,
        detail: `deadline ${deadline.toISOString()} passed; no vote from ${missing.join(', ') || 'a later stage'}`,
        next: `${sweep}, decides ABORT (TIMEOUT) at its next run`,
        nextAt: new Date(Math.max(nowMs, deadline.getTime() + timings.SWEEP_INTERVAL_MS)),
      });
      continue;
    }
    if (!checkout.decidedAt || nowMs - new Date(checkout.decidedAt).getTime() < UNACKNOWLEDGED_AFTER_MS) continue;
    for (const p of checkout.participants.filter((participant) => !participant.acked)) {
      const outcome = checkout.state === 'COMMITTED' ? 'commit' : 'abort';
      stuck.push({
        id: checkout.id,
        stuck: 'unacknowledged',
        service: p.participant,
        ageMs: checkout.ageMs,
        detail: `${outcome} not acknowledged by ${p.participant}; re-sent ${p.resends} times`,
        next: `${sweep}, sends the ${outcome} to ${p.participant} again (backoff from ${timings.DECISION_RESEND_BASE_MS} ms, doubling with jitter, capped at ${timings.DECISION_RESEND_CAP_MS} ms)`,
        nextAt: p.nextResendAt ? new Date(p.nextResendAt) : undefined,
      });
    }
  }
  const problems: string[] = [];
  const answers = await Promise.all(participants.map((participant) => client.prepared(participant)));
  participants.forEach((participant, i) => {
    const answer = answers[i];
    if (!answer.ok) return void problems.push(answer.problem);
    const { inquiryAfterMs, inquiryEveryMs, sweepIntervalMs, transactions } = answer.value;
    for (const held of transactions) {
      const preparedMs = new Date(held.preparedAt ?? held.createdAt).getTime();
      if (held.inquiries === 0 && nowMs - preparedMs < inquiryAfterMs) continue; // not yet long
      const lastMs = held.lastInquiryAt ? new Date(held.lastInquiryAt).getTime() : undefined;
      const dueMs = Math.max(preparedMs + inquiryAfterMs, lastMs === undefined ? 0 : lastMs + inquiryEveryMs);
      stuck.push({
        id: held.transactionId,
        stuck: 'inquiring',
        service: participant,
        ageMs: nowMs - preparedMs,
        detail: `${participant} holds it PREPARED (a yes given, no decision heard); asked ${held.inquiries} times`,
        next: `${participant}'s sweep, every ${sweepIntervalMs} ms, asks the coordinator what was decided (every ${inquiryEveryMs} ms until it hears)`,
        nextAt: new Date(Math.max(nowMs, dueMs)),
      });
    }
  });
  stuck.sort((a, b) => b.ageMs - a.ageMs);
  return { stuck, problems };
}
