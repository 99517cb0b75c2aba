import { SpanKind, trace } from '@opentelemetry/api';
import type * as amqp from 'amqplib';
import { BrokerConnection, ConnectionSetup } from './broker-connection';
import { DEFAULT_PACK_LIMITS, PackLimits, packMessages } from './packed-messages';
import { linksTo } from './trace-context';

const tracer = trace.getTracer('@shop/messaging');

export interface OutgoingMessage {
  messageId: string;
  routingKey: string;
  /** Message type, copied to the AMQP `type` property for tooling. */
  type: string;
  body: unknown;
  headers?: Record<string, unknown>;
}

export interface PublishResult {
  confirmed: string[];
  failed: Array<{ messageId: string; error: Error }>;
}

export class BrokerUnavailableError extends Error {
  override readonly name = 'BrokerUnavailableError';
}

/**
 * Publishes persistent JSON messages on a confirm channel and resolves only when the broker has
 * confirmed every one of them. Messages are `mandatory`: one that no queue would take is
 * reported as failed instead of silently dropped, so the caller keeps it and tries again.
 * Messages of one routing key go packed in one broker message (`packMessages`, within `pack`);
 * each is confirmed (or failed) with the broker message that carries it.
 */
export class ConfirmPublisher {
  private channel: amqp.ConfirmChannel | undefined;
  private opening: Promise<amqp.ConfirmChannel> | undefined;
  private readonly setup: ConnectionSetup = async (connection) => {
    this.channel = this.watch(await connection.createConfirmChannel());
  };

  constructor(
    private readonly broker: BrokerConnection,
    private readonly exchange: string,
    private readonly pack: PackLimits = DEFAULT_PACK_LIMITS,
  ) {}

  async start(): Promise<void> {
    await this.broker.onConnect(this.setup);
  }

  /**
   * Whether a publish can go out now: a channel is open, or the connection is up to open one.
   * False while the broker is known to be down (`publish` would throw BrokerUnavailableError).
   */
  get isAvailable(): boolean {
    return this.channel !== undefined || this.broker.isConnected;
  }

  /**
   * Publishes all messages and reports which were confirmed and routed, and which were not: one
   * span for the lot, linked to each message's trace.
   */
  async publish(messages: readonly OutgoingMessage[]): Promise<PublishResult> {
    const span = tracer.startSpan(`publish ${this.exchange}`, {
      kind: SpanKind.PRODUCER,
      attributes: { 'messaging.system': 'rabbitmq', 'messaging.batch.message_count': messages.length },
    });
    try {
      if (span.isRecording()) span.addLinks(linksTo(messages.map((message) => message.headers ?? {})));
      const outcome = await this.publishPacked(messages);
      span.setAttribute('messaging.rabbitmq.broker_messages', outcome.brokerMessages);
      return { confirmed: outcome.confirmed, failed: outcome.failed };
    } finally {
      span.end();
    }
  }

  private async publishPacked(
    messages: readonly OutgoingMessage[],
  ): Promise<PublishResult & { brokerMessages: number }> {
    const channel = await this.openChannel();
    const brokerMessages = packMessages(messages, this.pack);
    const confirms = brokerMessages.map((message) =>
      publishMandatory(channel, this.exchange, message.routingKey, message.content, {
        persistent: true,
        contentType: message.contentType,
        messageId: message.messageId,
        type: message.type,
        timestamp: Math.floor(Date.now() / 1000),
        // The broker checks this equals the authenticated user, so receivers can trust the sender.
        userId: this.broker.username,
        headers: message.headers,
      }),
    );
    const results = await Promise.allSettled(confirms);
    const outcome = {
      confirmed: [] as string[],
      failed: [] as PublishResult['failed'],
      brokerMessages: confirms.length,
    };
    results.forEach((result, index) => {
      const { carries } = brokerMessages[index];
      if (result.status === 'fulfilled') outcome.confirmed.push(...carries);
      else {
        const error = result.reason instanceof Error ? result.reason : new Error(String(result.reason));
        for (const messageId of carries) outcome.failed.push({ messageId, error });
      }
    });
    // A nack: a queue could not take the message (e.g. a quorum queue electing a new leader after
    // its node was lost). RabbitMQ 3.10 keeps nacking on that channel even once the queue has a
    // new leader, so the next publish goes on a fresh channel.
    if (outcome.failed.some((failure) => failure.error instanceof NackedError)) this.discard(channel);
    return outcome;
  }

  async stop(): Promise<void> {
    this.broker.removeSetup(this.setup);
    const channel = this.channel;
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  /** The current channel; a new one if the broker closed it (or it was discarded) while the connection stays up. */
  private openChannel(): Promise<amqp.ConfirmChannel> {
    if (this.channel) return Promise.resolve(this.channel);
    if (!this.broker.isConnected) return Promise.reject(new BrokerUnavailableError('no open broker channel'));
    // Concurrent publishes share one new channel.
    this.opening ??= this.broker
      .createConfirmChannel()
      .then((channel) => (this.channel = this.watch(channel)))
      .finally(() => (this.opening = undefined));
    return this.opening;
  }

  private watch(channel: amqp.ConfirmChannel): amqp.ConfirmChannel {
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    channel.on('error', () => {
      /* 'close' follows; the next publish opens another channel, or reports the broker unavailable */
    });
    return channel;
  }

  private discard(channel: amqp.ConfirmChannel): void {
    if (this.channel === channel) this.channel = undefined;
    channel.close().catch(() => undefined);
  }
}

/** The broker refused a message (basic.nack): no queue it was routed to could take it now. */
class NackedError extends Error {
  override readonly name = 'NackedError';
}

/** Per channel, the ids of the messages the broker returned as unroutable (basic.return). */
const returnedBy = new WeakMap<amqp.Channel, Set<string>>();

function returnsOf(channel: amqp.Channel): Set<string> {
  let returned = returnedBy.get(channel);
  if (!returned) {
    const ids = new Set<string>();
    channel.on('return', (message: amqp.Message) => {
      if (typeof message.properties.messageId === 'string') ids.add(message.properties.messageId);
    });
    returnedBy.set(channel, ids);
    returned = ids;
  }
  return returned;
}

/**
 * Publishes one message as `mandatory` on a confirm channel and waits for the broker: resolves
 * once it is confirmed and routed to a queue; rejects with a NackedError when the broker refused
 * it, or an Error when no queue took it (told apart by `messageId`, so give one).
 */
export function publishMandatory(
  channel: amqp.ConfirmChannel,
  exchange: string,
  routingKey: string,
  content: Buffer,
  options: amqp.Options.Publish,
): Promise<void> {
  const returned = returnsOf(channel);
  return new Promise((resolve, reject) => {
    channel.publish(exchange, routingKey, content, { ...options, mandatory: true }, (err: unknown) => {
      if (err) return reject(new NackedError(`broker nacked ${String(options.messageId)}`));
      // basic.return arrives before the confirm of the same message (matched by its id).
      if (options.messageId !== undefined && returned.delete(options.messageId))
        return reject(new Error(`no queue bound for routing key ${routingKey}`));
      resolve();
    });
  });
}
