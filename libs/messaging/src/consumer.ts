import { context, Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type * as amqp from 'amqplib';
import { BrokerConnection, ConnectionSetup } from './broker-connection';
import { publishMandatory } from './confirm-publisher';
import { currentLogContext, LogContext, Logger, withLogContext } from './logger';
import { declareTopology, ServiceTopology } from './topology';
import { traceContextFrom } from './trace-context';

/** What to do with a delivery once its handler returned. Throwing means "retry later". */
export enum Disposition {
  /** Done (or a duplicate): remove it from the queue. The default when a handler returns nothing. */
  Ack = 'ack',
  /** Put it back at once, e.g. while shutting down. */
  Requeue = 'requeue',
  /** It can never succeed: move it to the dead-letter queue now. */
  DeadLetter = 'dead-letter',
}

/** Thrown by a decoder or handler for a message that can never be handled: it goes straight to the dead-letter queue. */
export class PoisonMessageError extends Error {
  override readonly name: string = 'PoisonMessageError';
}

/** Thrown by a decoder for a message whose sender is not who the broker says published it, or may not send it. */
export class ForgedMessageError extends PoisonMessageError {
  override readonly name = 'ForgedMessageError';
}

/**
 * Why a message was dead-lettered, in a few classes (for metrics): it could not be decoded, its
 * sender was not authentic, or its handler refused it or kept failing.
 */
export type DeadLetterClass = 'invalid' | 'forged' | 'handler-failed';

/** How a delivery ended; reported once it is settled with the broker. */
export interface Settlement<T> {
  /** The decoded message; undefined when it could not be decoded. */
  message: T | undefined;
  outcome: 'handled' | 'retried' | 'dead-lettered' | 'requeued';
  deadLetterClass?: DeadLetterClass;
}

export interface Delivery {
  routingKey: string;
  /** 1 for the first try, counting retries through the retry queue. */
  attempt: number;
  redelivered: boolean;
  /** Broker-validated user id of the publisher (AMQP `user-id`), when it set one. */
  userId: string | undefined;
  headers: Record<string, unknown>;
}

export interface RetryPolicy {
  /** Handler attempts before the message is dead-lettered. */
  maxAttempts: number;
  /** Delay before attempt n+1 is `delaysMs[n-1]` (the last one repeats). */
  delaysMs: readonly number[];
  /**
   * Failures of the infrastructure rather than of the message (database restarting, deadlock):
   * retried after the longest delay without using up an attempt, so an outage dead-letters nothing.
   */
  isTransient?(err: unknown): boolean;
}

/** A decoded delivery of a batch, as the batch handler sees it. */
export interface BatchEntry<T> {
  message: T;
  delivery: Delivery;
  /** Runs `work` in this message's trace span and log context. */
  within<R>(work: () => Promise<R>): Promise<R>;
}

/** What became of one message of a batch: its disposition, or the error its handler failed with. */
export type BatchOutcome = { ok: true; value: Disposition | void } | { ok: false; error: unknown };

export interface ConsumerOptions<T> {
  topology: ServiceTopology;
  /** Unacked deliveries at once: the batch being handled and the next one gathering. */
  prefetch: number;
  /** At most this many deliveries are handed to `handleBatch` at once. */
  batchSize: number;
  retry: RetryPolicy;
  /** Turns the body into a typed message; throws PoisonMessageError (or anything) for an invalid one. */
  decode(content: Buffer, delivery: Delivery): T;
  /**
   * Handles the deliveries that are waiting (one batch at a time), typically in one database
   * transaction; answers one outcome per entry, in order. A failed one is retried alone later.
   */
  handleBatch(batch: ReadonlyArray<BatchEntry<T>>): Promise<BatchOutcome[]>;
  logger: Logger;
  /** Called after each delivery is settled (observability). */
  onSettled?(settlement: Settlement<T>): void;
}

/** A batch handler that handles each message on its own, in turn (no shared transaction). */
export function oneAtATime<T>(
  handle: (message: T, delivery: Delivery) => Promise<Disposition | void>,
): ConsumerOptions<T>['handleBatch'] {
  return async (batch) => {
    const outcomes: BatchOutcome[] = [];
    for (const entry of batch) {
      try {
        outcomes.push({ ok: true, value: await entry.within(() => handle(entry.message, entry.delivery)) });
      } catch (error) {
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  };
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 5,
  delaysMs: [100, 500, 2_000, 5_000],
};

/** Headers this library writes; a dead-lettered message carries why it was dead-lettered. */
export const HEADERS = {
  attempt: 'x-attempt',
  lastError: 'x-last-error',
  deadLetterReason: 'x-dead-letter-reason',
  deadLetteredAt: 'x-dead-lettered-at',
  originalRoutingKey: 'x-original-routing-key',
  originalExchange: 'x-original-exchange',
} as const;
/**
 * Who first published a message we re-published (retry, dead-letter, re-drive), as the broker
 * validated it; `''` when it validated nobody (the message had no user-id). Believed only on a
 * message published under our own user id: nobody else can publish as us, so nobody else can set it.
 */
export const ORIGINAL_USER_ID = 'x-original-user-id';

/**
 * The broker-validated publisher of a message received by `self` (a broker user): its user-id,
 * unless `self` re-published it, when it is the original publisher `self` recorded (undefined if
 * none was validated).
 */
export function verifiedPublisher(message: amqp.Message, self: string): string | undefined {
  const userId = message.properties.userId as string | undefined;
  const original: unknown = message.properties.headers?.[ORIGINAL_USER_ID];
  if (userId !== self || original === undefined) return userId;
  return typeof original === 'string' && original !== '' ? original : undefined;
}

const tracer = trace.getTracer('@shop/messaging');

/** A delivery on its way through the consumer: where it came from, its span and log fields. */
interface InProgress<T> {
  channel: amqp.ConfirmChannel;
  message: amqp.Message;
  delivery: Delivery;
  span: Span;
  parent: ReturnType<typeof traceContextFrom>;
  logFields: LogContext;
  started: number;
  decoded?: T;
}

/**
 * Consumes the service's queue with manual acks, in batches: the deliveries already prefetched
 * are handed over together (one batch at a time, so batches of one process never wait on each
 * other's locks), and each is acked only after the batch's handler (and so its database
 * transaction) finished. A failing message is retried alone after a delay through the retry
 * queue, and dead-lettered with the reason after `retry.maxAttempts`; an undecodable message is
 * dead-lettered at once. Never requeues forever.
 */
export class Consumer<T> {
  private channel: amqp.ConfirmChannel | undefined;
  private consumerTag: string | undefined;
  private readonly waiting: Array<{ channel: amqp.ConfirmChannel; message: amqp.Message }> = [];
  private handling = 0;
  private draining: Promise<void> | undefined;
  private stopping = false;
  private readonly setup: ConnectionSetup = (connection) => this.open(connection.createConfirmChannel());

  constructor(
    private readonly broker: BrokerConnection,
    private readonly options: ConsumerOptions<T>,
  ) {}

  private async open(opening: Promise<amqp.ConfirmChannel>): Promise<void> {
    const channel = await opening;
    channel.on('error', (err: Error) => this.options.logger.warn(`consumer channel error: ${err.message}`));
    channel.on('close', () => {
      if (this.channel === channel) this.channel = undefined;
    });
    await channel.prefetch(this.options.prefetch);
    const { consumerTag } = await channel.consume(this.options.topology.queue, (message) => {
      if (!message) return void this.consumeAgain(channel); // the broker cancelled this consumer
      this.waiting.push({ channel, message });
      this.schedule();
    });
    this.channel = channel;
    this.consumerTag = consumerTag;
  }

  /**
   * The broker cancelled the consumer (its queue was deleted, say): declare the topology again and
   * consume on a fresh channel, backing off from 100 ms to 5 s between tries, until it works, the
   * connection drops (its setup then does the same) or the consumer stops. Meanwhile
   * `isConsuming` is false, and the service is not ready.
   */
  private async consumeAgain(cancelled: amqp.ConfirmChannel): Promise<void> {
    if (this.channel !== cancelled || this.stopping) return;
    this.channel = undefined;
    this.consumerTag = undefined;
    await cancelled.close().catch(() => undefined);
    const { queue } = this.options.topology;
    this.options.logger.warn(`the broker cancelled the consumer of ${queue}; declaring it again`);
    for (let delayMs = 100; !this.stopping && this.broker.isConnected && !this.channel; delayMs *= 2) {
      try {
        const declaring = await this.broker.createChannel();
        await declareTopology(declaring, this.options.topology);
        await declaring.close();
        await this.open(this.broker.createConfirmChannel());
        this.options.logger.log(`consuming ${queue} again`);
      } catch (err) {
        this.options.logger.warn(`could not consume ${queue} again (${errorMessage(err)}); trying again`);
        await new Promise((resolve) => setTimeout(resolve, Math.min(delayMs, 5_000)));
      }
    }
  }

  /** Whether the queue is being consumed now (false before start, after stop, and while coming back). */
  get isConsuming(): boolean {
    return this.channel !== undefined && this.consumerTag !== undefined;
  }

  /**
   * A delivery that could not be settled (its retry or dead-letter was nacked) would stay unacked
   * for as long as its channel lives: close the channel, so the broker delivers it again, and
   * consume on a fresh one (which also sheds a channel's stale view of a quorum queue's leader).
   */
  private async replace(channel: amqp.ConfirmChannel): Promise<void> {
    if (this.channel !== channel) return;
    this.channel = undefined;
    await channel.close().catch(() => undefined);
    if (this.stopping || !this.broker.isConnected) return;
    await this.open(this.broker.createConfirmChannel()).catch((err: unknown) =>
      this.options.logger.warn(
        `consumer channel not reopened (${errorMessage(err)}); it comes back with the connection`,
      ),
    );
  }

  async start(): Promise<void> {
    this.stopping = false;
    await this.broker.onConnect(this.setup);
  }

  /** Stops taking deliveries, waits for the in-flight handlers to finish and ack, then closes the channel. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.broker.removeSetup(this.setup);
    const channel = this.channel;
    if (channel && this.consumerTag) await channel.cancel(this.consumerTag).catch(() => undefined);
    while (this.draining) await this.draining;
    this.channel = undefined;
    await channel?.close().catch(() => undefined);
  }

  get inFlightCount(): number {
    return this.waiting.length + this.handling;
  }

  /** Starts handling what is waiting, unless a batch is already being handled (it takes the rest after). */
  private schedule(): void {
    if (this.draining) return;
    this.draining = this.drain().finally(() => {
      this.draining = undefined;
      if (this.waiting.length > 0) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    // Deliveries that arrived together (a prefetch refill) join one batch.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.options.batchSize);
      this.handling = batch.length;
      await this.processBatch(batch.map(({ channel, message }) => this.begin(channel, message)));
      this.handling = 0;
    }
  }

  /**
   * Each delivery gets a span parented by the trace context it carries (so a checkout is one
   * trace across services) and a log context naming the message; the decodable ones are handled
   * as one batch, then each is settled with the broker.
   */
  private async processBatch(batch: Array<InProgress<T>>): Promise<void> {
    const decoded: Array<InProgress<T>> = [];
    for (const entry of batch) {
      try {
        entry.decoded = this.within(entry, () => {
          const message = this.options.decode(entry.message.content, entry.delivery);
          Object.assign(entry.logFields, currentLogContext()); // what decoding learned (the transaction id)
          return message;
        });
        decoded.push(entry);
      } catch (err) {
        await this.finish(entry, async () => {
          entry.span.recordException(err instanceof Error ? err : String(err));
          await this.deadLetter(entry, `invalid message: ${errorMessage(err)}`);
          entry.channel.ack(entry.message);
          const deadLetterClass = err instanceof ForgedMessageError ? 'forged' : 'invalid';
          return { message: undefined, outcome: 'dead-lettered', deadLetterClass };
        });
      }
    }
    if (decoded.length === 0) return;
    let outcomes: BatchOutcome[];
    try {
      outcomes = await this.options.handleBatch(
        decoded.map((entry) => ({
          message: entry.decoded as T,
          delivery: entry.delivery,
          within: (work) => this.within(entry, work),
        })),
      );
    } catch (error) {
      outcomes = decoded.map(() => ({ ok: false, error }));
    }
    const outcomeOf = (index: number) => outcomes[index] ?? { ok: false, error: new Error('no outcome') };
    const handled = decoded.filter((_, index) => isHandled(outcomeOf(index)));
    this.ackHandled(handled, handled.length === decoded.length);
    for (const [index, entry] of decoded.entries()) {
      await this.finish(entry, () => this.settle(entry, outcomeOf(index)));
    }
  }

  /**
   * Acks the handled deliveries of a batch, before the others are retried or dead-lettered. When
   * the whole batch was handled, with one `multiple` ack on the live channel (one settle command
   * for the queue instead of one per message): a batch holds the oldest unsettled deliveries of
   * its channel. Otherwise one by one, so that none that must be retried is acked with them.
   */
  private ackHandled(handled: ReadonlyArray<InProgress<T>>, wholeBatch: boolean): void {
    const newest = new Map<amqp.ConfirmChannel, amqp.Message>();
    for (const { channel, message } of handled) {
      if (!wholeBatch || channel !== this.channel) {
        ackIgnoringClosed(channel, message, false);
        continue;
      }
      const kept = newest.get(channel);
      if (!kept || message.fields.deliveryTag > kept.fields.deliveryTag) newest.set(channel, message);
    }
    for (const [channel, message] of newest) ackIgnoringClosed(channel, message, true);
  }

  private begin(channel: amqp.ConfirmChannel, message: amqp.Message): InProgress<T> {
    const headers = (message.properties.headers ?? {}) as Record<string, unknown>;
    const delivery: Delivery = {
      routingKey: (headers[HEADERS.originalRoutingKey] as string | undefined) ?? message.fields.routingKey,
      attempt: attemptFrom(headers[HEADERS.attempt]),
      redelivered: message.fields.redelivered,
      userId: this.publisherOf(message),
      headers,
    };
    const messageId = message.properties.messageId as string | undefined;
    const parent = traceContextFrom(headers);
    const span = tracer.startSpan(
      `process ${delivery.routingKey}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          'messaging.operation.type': 'process',
          'messaging.destination.name': this.options.topology.queue,
          'messaging.rabbitmq.destination.routing_key': delivery.routingKey,
          'messaging.message.id': messageId ?? '',
          'messaging.rabbitmq.attempt': delivery.attempt,
        },
      },
      parent,
    );
    const logFields = { messageId, messageType: message.properties.type as string | undefined };
    return { channel, message, delivery, span, parent, logFields, started: performance.now() };
  }

  /** Runs `work` in the delivery's span and log context. */
  private within<R>(entry: InProgress<T>, work: () => R): R {
    return context.with(trace.setSpan(entry.parent, entry.span), () => withLogContext(entry.logFields, work));
  }

  /** Settles a delivery with the broker (`settle`), reports it and ends its span. */
  private async finish(entry: InProgress<T>, settle: () => Promise<Settlement<T>>): Promise<void> {
    const { span, delivery } = entry;
    await this.within(entry, async () => {
      try {
        const settlement = await settle();
        if (settlement.outcome !== 'handled') {
          span.setStatus({ code: SpanStatusCode.ERROR, message: settlement.deadLetterClass ?? settlement.outcome });
        }
        this.options.logger.debug?.(
          `${settlement.outcome} ${delivery.routingKey} in ${Math.round(performance.now() - entry.started)} ms`,
        );
        this.options.onSettled?.(settlement);
      } catch (err) {
        // The channel closed under us (broker gone): the broker redelivers the unacked message.
        // Still open (a re-publish was refused): `replace` makes it redeliver.
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'not settled' });
        this.options.logger.warn(
          `could not settle message ${String(entry.message.properties.messageId)}: ${errorMessage(err)}`,
        );
        void this.replace(entry.channel);
      } finally {
        span.end();
      }
    });
  }

  /** Retries, dead-letters or requeues a delivery according to its outcome (a handled one is acked already); says which. */
  private async settle(entry: InProgress<T>, outcome: BatchOutcome): Promise<Settlement<T>> {
    const { channel, message, span } = entry;
    const decoded = entry.decoded as T;
    if (isHandled(outcome)) return { message: decoded, outcome: 'handled' }; // acked with its batch
    if (!outcome.ok) {
      const err = outcome.error;
      span.recordException(err instanceof Error ? err : String(err));
      const result =
        err instanceof PoisonMessageError
          ? await this.deadLetter(entry, err.message)
          : await this.retryOrDeadLetter(entry, err);
      channel.ack(message);
      return {
        message: decoded,
        outcome: result,
        deadLetterClass: result === 'dead-lettered' ? 'handler-failed' : undefined,
      };
    }
    if (outcome.value === Disposition.Requeue) {
      channel.nack(message, false, true);
      return { message: decoded, outcome: 'requeued' };
    }
    await this.deadLetter(entry, 'rejected by handler'); // Disposition.DeadLetter
    channel.ack(message);
    return { message: decoded, outcome: 'dead-lettered', deadLetterClass: 'handler-failed' };
  }

  /** The broker-validated publisher (a message back from our own retry queue or re-drive: the original one). */
  private publisherOf(message: amqp.Message): string | undefined {
    return verifiedPublisher(message, this.broker.username);
  }

  private async retryOrDeadLetter(entry: InProgress<T>, err: unknown): Promise<'retried' | 'dead-lettered'> {
    const { channel, message, delivery } = entry;
    const { retry, logger, topology } = this.options;
    const reason = errorMessage(err);
    const transient = retry.isTransient?.(err) ?? false;
    if (!transient && delivery.attempt >= retry.maxAttempts) {
      return this.deadLetter(entry, `handler failed ${delivery.attempt} times: ${reason}`);
    }
    const delay = transient
      ? Math.max(...retry.delaysMs, 100)
      : (retry.delaysMs[Math.min(delivery.attempt - 1, retry.delaysMs.length - 1)] ?? 1_000);
    const nextAttempt = transient ? delivery.attempt : delivery.attempt + 1;
    logger.warn(
      `handler failed (${transient ? 'transient' : `attempt ${delivery.attempt}`}), retrying in ${delay} ms: ${reason}`,
    );
    await this.republish(
      channel,
      topology.retryExchange,
      topology.service,
      message,
      {
        ...delivery.headers,
        [HEADERS.attempt]: nextAttempt,
        [HEADERS.lastError]: truncate(reason),
        [HEADERS.originalRoutingKey]: delivery.routingKey,
      },
      String(delay),
    );
    return 'retried';
  }

  private async deadLetter(entry: InProgress<T>, reason: string): Promise<'dead-lettered'> {
    const { channel, message, delivery } = entry;
    const { topology, logger } = this.options;
    logger.error(`dead-lettering message ${String(message.properties.messageId)}: ${reason}`);
    await this.republish(channel, topology.deadLetterExchange, topology.service, message, {
      ...delivery.headers,
      [HEADERS.deadLetterReason]: truncate(reason),
      [HEADERS.deadLetteredAt]: new Date().toISOString(),
      [HEADERS.originalRoutingKey]: delivery.routingKey,
      [HEADERS.originalExchange]: message.fields.exchange,
      [HEADERS.attempt]: delivery.attempt,
    });
    return 'dead-lettered';
  }

  /** Re-publishes a delivery's body and properties with new headers, and waits for the broker's confirm. */
  private republish(
    channel: amqp.ConfirmChannel,
    exchange: string,
    routingKey: string,
    message: amqp.Message,
    headers: Record<string, unknown>,
    expiration?: string,
  ): Promise<void> {
    const { properties } = message;
    const originalUserId = this.publisherOf(message);
    // A re-publish that no queue takes must fail (and the delivery stay unacked), not vanish.
    return publishMandatory(channel, exchange, routingKey, message.content, {
      persistent: true,
      contentType: properties.contentType as string | undefined,
      messageId: properties.messageId as string | undefined,
      type: properties.type as string | undefined,
      timestamp: properties.timestamp as number | undefined,
      // The broker only accepts our own user id; the original publisher travels in a header.
      userId: this.broker.username,
      headers: { ...headers, [ORIGINAL_USER_ID]: originalUserId ?? '' },
      expiration,
    });
  }
}

/** The `x-attempt` header as a count from 1; anything but a positive integer (a forged or broken header) is the first. */
function attemptFrom(header: unknown): number {
  const attempt = typeof header === 'number' ? header : typeof header === 'string' ? Number(header) : NaN;
  return Number.isSafeInteger(attempt) && attempt >= 1 ? attempt : 1;
}

/** Done: its delivery is acked (with the others of its batch that were). */
function isHandled(outcome: BatchOutcome): boolean {
  return outcome.ok && outcome.value !== Disposition.Requeue && outcome.value !== Disposition.DeadLetter;
}

/** Acks unless the channel closed under us (broker gone): the broker then redelivers it, and the inbox skips it. */
function ackIgnoringClosed(channel: amqp.ConfirmChannel, message: amqp.Message, allUpTo: boolean): void {
  try {
    channel.ack(message, allUpTo);
  } catch {
    // closed: nothing to do
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function truncate(text: string): string {
  return text.length > 1_000 ? `${text.slice(0, 997)}...` : text;
}
