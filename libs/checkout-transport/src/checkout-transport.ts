import { Catch, ExceptionFilter, INestApplication, INestMicroservice, Logger } from '@nestjs/common';
import {
  CustomStrategy,
  CustomTransportStrategy,
  MessageHandler,
  NestMicroservice,
  Server,
} from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import { CheckoutMessage, compareCodePoints } from '@shop/contracts';
import {
  BatchEntry,
  BatchOutcome,
  BrokerConnection,
  Consumer,
  ConsumerOptions,
  PoisonMessageError,
} from '@shop/messaging';
import type { Transactions, UnitOfWork } from '@shop/outbox';
import { CheckoutContext, type CheckoutPatternExtras } from './checkout-context';

export type CheckoutTransportOptions = Omit<ConsumerOptions<CheckoutMessage>, 'handleBatch'> & {
  /** Opens the batch's unit of work (its commit publishes the batch's outbox rows at once). */
  transactions: Transactions;
};

/**
 * The Nest transport of checkout messages: hands the messages of the service's queue to the
 * `@CheckoutEventPattern(type)` / `@CheckoutBatchPattern(...types)` handlers of any controller,
 * with a `CheckoutContext`. Our consumer underneath keeps what the messaging lib guarantees
 * (retries with backoff, dead-lettering with the reason, the sender verified by `decode`, a span
 * and log context per delivery); here a batch of deliveries becomes one unit of work (see
 * `Transactions.runBatch`: a failing message is set aside and the rest run again together).
 * Connect it with `connectCheckoutTransport`.
 */
export class CheckoutTransport extends Server implements CustomTransportStrategy {
  protected override readonly logger = new Logger(CheckoutTransport.name);
  private readonly consumer: Consumer<CheckoutMessage>;
  private readonly transactions: Transactions;
  private readonly queue: string;
  private readonly service: string;

  constructor(broker: BrokerConnection, options: CheckoutTransportOptions) {
    super();
    const { transactions, ...consumer } = options;
    this.transactions = transactions;
    this.queue = consumer.topology.queue;
    this.service = consumer.topology.service;
    this.consumer = new Consumer<CheckoutMessage>(broker, {
      ...consumer,
      handleBatch: (batch) => this.handleBatch(batch),
    });
  }

  /** Starts consuming (`app.startAllMicroservices()`), once the app is initialized (its topology declared). */
  listen(callback: (error?: unknown) => void): void {
    const requests = [...this.messageHandlers].filter(([, handler]) => !handler.isEventHandler);
    if (requests.length) {
      const patterns = requests.map(([pattern]) => pattern).join(', ');
      return callback(
        new Error(`checkout messages are events, answered by no reply: use @EventPattern for ${patterns}`),
      );
    }
    this.consumer.start().then(() => {
      this.logger.log(`consuming ${this.queue}`);
      callback();
    }, callback);
  }

  /**
   * Stops consuming and finishes the batch in hand. Nest calls it after the shutdown hooks, too
   * late for the drain (the broker is closed by then): `CheckoutMessaging` calls it first.
   */
  close(): Promise<void> {
    return this.consumer.stop();
  }

  /** Whether the service's queue is being consumed (readiness). */
  get isConsuming(): boolean {
    return this.consumer.isConsuming;
  }

  on(): never {
    throw new Error('the checkout transport emits no events');
  }

  unwrap<T>(): T {
    return this.consumer as T;
  }

  /**
   * One unit of work for the batch, its messages in one global lock order: by transaction id (the
   * messages of one transaction keep their delivery order; Array sort is stable), so two batches
   * lock the protocol's rows in the same order. Answers each delivery's outcome, in its order.
   */
  private async handleBatch(batch: ReadonlyArray<BatchEntry<CheckoutMessage>>): Promise<BatchOutcome[]> {
    const entries = [...batch].sort((a, b) => compareCodePoints(a.message.transactionId, b.message.transactionId));
    const entryOf = new Map(entries.map((entry) => [entry.message, entry]));
    const results = await this.transactions.runBatch<CheckoutMessage>(
      entries.map((entry) => entry.message),
      (unit) => this.dispatch(unit, entryOf),
    );
    const outcomeOf = new Map(entries.map((entry, position) => [entry, results[position]]));
    return batch.map((entry) => {
      const result = outcomeOf.get(entry)!;
      return result.ok ? { ok: true, value: undefined } : result;
    });
  }

  /**
   * Hands the unit's messages to their handlers: a batch handler gets all of its types' messages
   * in one call; a handler of one type is called per message, in that message's span and step.
   */
  private async dispatch(
    unit: UnitOfWork<CheckoutMessage>,
    entryOf: ReadonlyMap<CheckoutMessage, BatchEntry<CheckoutMessage>>,
  ): Promise<void> {
    const batches = new Map<string, { handler: MessageHandler; messages: CheckoutMessage[] }>();
    for (const message of unit.items) {
      const handler = this.messageHandlers.get(message.type);
      const group = (handler?.extras as CheckoutPatternExtras | undefined)?.batch;
      if (handler && group) {
        const together = batches.get(group) ?? { handler, messages: [] };
        together.messages.push(message);
        batches.set(group, together);
        continue;
      }
      const entry = entryOf.get(message)!;
      await unit.step(message, () =>
        entry.within(() => {
          if (!handler) throw new PoisonMessageError(`${this.service} has no handler for '${message.type}' messages`);
          return settle(handler(message, new CheckoutContext([unit, entry.delivery])));
        }),
      );
    }
    for (const { handler, messages } of batches.values()) {
      await settle(handler(messages, new CheckoutContext([unit, undefined])));
    }
  }
}

/** A handler's answer, awaited: several handlers of one pattern answer one observable of them all, which carries their errors. */
async function settle(result: unknown): Promise<void> {
  const value: unknown = await result;
  if (isObservable(value)) await lastValueFrom(value, { defaultValue: undefined });
}

/**
 * Passes a handler's error to the transport as it was thrown: the consumer retries it or
 * dead-letters it by what it is (transient, poison, forged). Nest's own filter would log it and
 * hand on a plain `{ status, message }` instead.
 */
@Catch()
export class RethrowToTransport implements ExceptionFilter {
  catch(exception: unknown): never {
    throw exception;
  }
}

/**
 * Connects the checkout transport to the app as a microservice: `app.startAllMicroservices()`
 * then starts consuming. The exception filter must be in place before Nest wraps the handlers,
 * so the microservice registers them when it starts (deferred initialization); the app has run
 * the lifecycle hooks of the modules they share, which must not run twice.
 */
export function connectCheckoutTransport(app: INestApplication, transport: CheckoutTransport): INestMicroservice {
  const microservice = app.connectMicroservice<CustomStrategy>({ strategy: transport }, { deferInitialization: true });
  microservice.useGlobalFilters(new RethrowToTransport());
  (microservice as NestMicroservice).setIsInitHookCalled(true);
  return microservice;
}
