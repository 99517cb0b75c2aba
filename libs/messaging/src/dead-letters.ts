import type * as amqp from 'amqplib';
import { BrokerConnection } from './broker-connection';
import { HEADERS, ORIGINAL_USER_ID, verifiedPublisher } from './delivery';
import { redriveKey, ServiceTopology } from './topology';

export interface DeadLetter {
  messageId: string | undefined;
  type: string | undefined;
  routingKey: string | undefined;
  reason: string | undefined;
  deadLetteredAt: string | undefined;
  attempts: number | undefined;
  body: unknown;
}

/**
 * The operator's view of a service's dead-letter queue: list what is parked and why, and
 * re-drive messages to the service's queue once their cause is fixed.
 */
export class DeadLetters {
  constructor(
    private readonly broker: BrokerConnection,
    private readonly topology: ServiceTopology,
  ) {}

  /** Up to `limit` parked messages, left in the queue. */
  async list(limit = 100): Promise<DeadLetter[]> {
    return this.withChannel(async (channel) => {
      const found: DeadLetter[] = [];
      while (found.length < limit) {
        const message = await this.next(channel);
        if (!message) break;
        found.push(describe(message));
      }
      return found; // closing the channel returns every unacked message to the queue
    });
  }

  /**
   * Moves parked messages (all, or those with the given ids) back to the service's queue; says how
   * many. Only those parked when it starts: one that is parked again at once (still poison) waits
   * behind them, for the next re-drive, instead of going round for ever.
   */
  async redrive(messageIds?: readonly string[]): Promise<number> {
    const wanted = messageIds ? new Set(messageIds) : undefined;
    return this.withChannel(async (channel) => {
      let moved = 0;
      let parked = Infinity; // known from the first get: it says how many are left behind it
      for (let taken = 0; taken < parked; taken += 1) {
        const message = await this.next(channel);
        if (!message) break;
        if (taken === 0) parked = 1 + message.fields.messageCount;
        const id = message.properties.messageId as string | undefined;
        if (wanted && !(id && wanted.has(id))) continue; // stays parked (requeued when the channel closes)
        await this.sendBack(channel, message);
        channel.ack(message);
        moved += 1;
      }
      return moved;
    });
  }

  private next(channel: amqp.ConfirmChannel): Promise<amqp.GetMessage | false> {
    return channel.get(this.topology.deadLetterQueue, { noAck: false });
  }

  private sendBack(channel: amqp.ConfirmChannel, message: amqp.GetMessage): Promise<void> {
    const headers = { ...(message.properties.headers ?? {}) } as Record<string, unknown>;
    for (const name of [HEADERS.deadLetterReason, HEADERS.deadLetteredAt, HEADERS.lastError, 'x-death'])
      delete headers[name];
    headers[HEADERS.attempt] = 1;
    // Only what the broker validated: the header our consumer wrote when it parked the message
    // under our user id, or the publisher's user id the broker kept when it dead-lettered it
    // (delivery limit). Never a header someone else wrote: that is how a forgery would get in.
    headers[ORIGINAL_USER_ID] = verifiedPublisher(message, this.broker.username) ?? '';
    return new Promise((resolve, reject) =>
      channel.publish(
        this.topology.retryExchange,
        redriveKey(this.topology),
        message.content,
        {
          persistent: true,
          contentType: message.properties.contentType as string | undefined,
          messageId: message.properties.messageId as string | undefined,
          type: message.properties.type as string | undefined,
          userId: this.broker.username,
          headers,
        },
        (err: unknown) =>
          err ? reject(err instanceof Error ? err : new Error('broker nacked the redrive')) : resolve(),
      ),
    );
  }

  private async withChannel<T>(work: (channel: amqp.ConfirmChannel) => Promise<T>): Promise<T> {
    const channel = await this.broker.createConfirmChannel();
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }
}

function describe(message: amqp.GetMessage): DeadLetter {
  const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
  const text = message.content.toString('utf8');
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // kept as text: it may be why it was parked
  }
  const death = (headers['x-death'] as Array<{ reason?: string }> | undefined)?.[0];
  return {
    messageId: message.properties.messageId as string | undefined,
    type: message.properties.type as string | undefined,
    routingKey: (headers[HEADERS.originalRoutingKey] as string | undefined) ?? message.fields.routingKey,
    reason:
      (headers[HEADERS.deadLetterReason] as string | undefined) ??
      (death?.reason ? `broker: ${death.reason}` : undefined),
    deadLetteredAt: headers[HEADERS.deadLetteredAt] as string | undefined,
    attempts: headers[HEADERS.attempt] as number | undefined,
    body,
  };
}
