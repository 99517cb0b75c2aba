import type { DeadLetter } from '@shop/messaging';
import type { ParticipantTransactionRecord } from '@shop/service-kit';

/** What a participant answered, or why it did not. */
export type Answer<T> = { ok: true; value: T } | { ok: false; problem: string };

/** A participant's checkouts held prepared, and when it asks about them (its operator API). */
export interface PreparedRecords {
  inquiryAfterMs: number;
  inquiryEveryMs: number;
  sweepIntervalMs: number;
  transactions: Array<Omit<ParticipantTransactionRecord, 'messages'>>;
}

/** How long the console waits for a participant before it shows it as unreachable. */
const TIMEOUT_MS = 2_000;

/**
 * The console's calls to each participant's operator API (its public URL, CONSOLE_PARTICIPANT_URLS),
 * with the order service's admin token (the same ADMIN_TOKEN every service of a deployment takes).
 */
export class ParticipantsClient {
  constructor(
    private readonly urls: Readonly<Record<string, string>>,
    private readonly adminToken: string,
  ) {}

  /** Its record of checkout `id`; `value` undefined: it has none (never asked, or not yet). */
  record(participant: string, id: string): Promise<Answer<ParticipantTransactionRecord | undefined>> {
    return this.call(participant, `/operator/transactions/${encodeURIComponent(id)}`, { notFound: undefined });
  }

  prepared(participant: string): Promise<Answer<PreparedRecords>> {
    return this.call(participant, '/operator/transactions?limit=100');
  }

  async deadLetters(participant: string): Promise<Answer<DeadLetter[]>> {
    const answer = await this.call<{ deadLetters: DeadLetter[] }>(participant, '/operator/dead-letters?limit=100');
    return answer.ok ? { ok: true, value: answer.value.deadLetters } : answer;
  }

  async redrive(participant: string, messageIds: readonly string[] | undefined): Promise<Answer<number>> {
    const answer = await this.call<{ redriven: number }>(participant, '/operator/dead-letters/redrive', {
      body: messageIds ? { messageIds } : {},
    });
    return answer.ok ? { ok: true, value: answer.value.redriven } : answer;
  }

  private async call<T>(
    participant: string,
    path: string,
    options: { body?: object; notFound?: T } = {},
  ): Promise<Answer<T>> {
    const base = this.urls[participant];
    if (!base) return { ok: false, problem: `no URL for ${participant} (CONSOLE_PARTICIPANT_URLS)` };
    try {
      const response = await fetch(`${base}${path}`, {
        method: options.body ? 'POST' : 'GET',
        headers: {
          authorization: `Bearer ${this.adminToken}`,
          ...(options.body ? { 'content-type': 'application/json' } : {}),
        },
        body: options.body ? JSON.stringify(options.body) : undefined,
        signal: AbortSignal.timeout(TIMEOUT_MS),
        redirect: 'error',
      });
      if (response.status === 404 && 'notFound' in options) return { ok: true, value: options.notFound as T };
      if (!response.ok) return { ok: false, problem: `${participant} answered ${response.status}` };
      return { ok: true, value: (await response.json()) as T };
    } catch (err) {
      return { ok: false, problem: `${participant} unreachable: ${err instanceof Error ? err.message : String(err)}` };
    }
  }
}
