import type { Logger } from '@nestjs/common';
import type { DeadLetters } from '@shop/messaging';
import type { ServiceDeadLetters } from './pages/dead-letters';
import type { Answer, ParticipantsClient } from './participants-client';

/** Listed per service, like GET /operator/dead-letters's default. */
const LIST_LIMIT = 100;

/**
 * Every service's dead letters for the console: the order service's own through the same
 * `DeadLetters` as its operator API, each participant's through its operator API. A re-drive is
 * one message or all of them, as POST /operator/dead-letters/redrive takes it, and is logged at
 * info with who did it (their token's fingerprint), like every admin change.
 */
export class DeadLetterDesk {
  constructor(
    private readonly own: { service: string; deadLetters: DeadLetters },
    private readonly participants: readonly string[],
    private readonly client: ParticipantsClient,
    private readonly logger: Pick<Logger, 'log'>,
  ) {}

  get services(): string[] {
    return [this.own.service, ...this.participants];
  }

  async list(): Promise<ServiceDeadLetters[]> {
    return Promise.all(this.services.map(async (service) => ({ service, answer: await this.listOf(service) })));
  }

  /** Re-drives `messageId` (or all, when undefined) of `service`; answers how many went back. */
  async redrive(admin: string, service: string, messageId: string | undefined): Promise<Answer<number>> {
    const ids = messageId === undefined ? undefined : [messageId];
    const answer: Answer<number> =
      service === this.own.service
        ? await this.own.deadLetters.redrive(ids).then(
            (value) => ({ ok: true as const, value }),
            (err: unknown) => ({ ok: false as const, problem: `re-drive failed: ${String(err)}` }),
          )
        : await this.client.redrive(service, ids);
    // Who re-drove what, at info (the audit trail), by token fingerprint.
    this.logger.log(
      `admin ${admin} re-drove ${messageId === undefined ? 'all' : `message ${messageId}`} of ${service}'s dead letters from the console: ${answer.ok ? `${answer.value} moved` : answer.problem}`,
    );
    return answer;
  }

  private async listOf(service: string) {
    if (service !== this.own.service) return this.client.deadLetters(service);
    return this.own.deadLetters.list(LIST_LIMIT).then(
      (value) => ({ ok: true as const, value }),
      (err: unknown) => ({ ok: false as const, problem: `could not read the dead letters: ${String(err)}` }),
    );
  }
}
