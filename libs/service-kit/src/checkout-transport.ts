import { Catch, ExceptionFilter, INestApplication, INestMicroservice, Logger } from '@nestjs/common';
import {
  BaseRpcContext,
  CustomStrategy,
  CustomTransportStrategy,
  EventPattern,
  NestMicroservice,
  Server,
} from '@nestjs/microservices';
import { trace } from '@opentelemetry/api';
import { isObservable, lastValueFrom } from 'rxjs';
import type { DataSource } from 'typeorm';
import {
  ALLOWED_SENDERS,
  CheckoutMessage,
  CheckoutMessageType,
  compareCodePoints,
  MessageOfType,
  parseCheckoutMessage,
  ServiceName,
} from '@shop/contracts';
import { inOneTransaction, UnitOfWork } from '@shop/inbox';
import {
  addLogContext,
  BatchEntry,
  BatchOutcome,
  BrokerConnection,
  Consumer,
  ConsumerOptions,
  Delivery,
  ForgedMessageError,
  PoisonMessageError,
} from '@shop/messaging';

/**
 * What a checkout message handler gets beside its message (`@Ctx()`): the unit of work of its
 * batch (the open database transaction, to write with, the outbox included) and its delivery.
 */
export class CheckoutContext extends BaseRpcContext<[UnitOfWork<CheckoutMessage>, Delivery]> {
  getUnitOfWork(): UnitOfWork<CheckoutMessage> {
    return this.args[0];
  }

  getDelivery(): Delivery {
    return this.args[1];
  }
}

/**
 * Nest's `@EventPattern(type)` for a checkout message type, typed: the handler takes that message
 * (`@Payload()`) and a `CheckoutContext` (`@Ctx()`). Nest 12 types the handler's parameters after
 * the payload as `unknown`, so under `@EventPattern` itself a typed `@Ctx()` does not compile.
 */
export function CheckoutEventPattern<T extends CheckoutMessageType>(
  type: T,
): <H extends (message: MessageOfType<T>, context: CheckoutContext) => Promise<unknown>>(
  target: object,
  method: string | symbol,
  descriptor: TypedPropertyDescriptor<H>,
) => void {
  return EventPattern<string>(type);
}

export type CheckoutTransportOptions = Omit<ConsumerOptions<CheckoutMessage>, 'handleBatch'> & {
  dataSource: DataSource;
};

/**
 * The Nest transport of checkout messages: hands each message of the service's queue to the
 * `@EventPattern(<message type>)` handler of any controller, with a `CheckoutContext`. Our
 * consumer underneath keeps what the messaging lib guarantees: a batch of deliveries in one
 * database transaction (each message alone if one fails), retries with backoff, dead-lettering
 * with the reason, the sender verified (by `decode`), a span and log context per delivery.
 * Connect it with `connectCheckoutTransport`.
 */
export class CheckoutTransport extends Server implements CustomTransportStrategy {
  protected override readonly logger = new Logger(CheckoutTransport.name);
  private readonly consumer: Consumer<CheckoutMessage>;
  private readonly dataSource: DataSource;
  private readonly queue: string;
  private readonly service: string;

  constructor(broker: BrokerConnection, options: CheckoutTransportOptions) {
    super();
    const { dataSource, ...consumer } = options;
    this.dataSource = dataSource;
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
   * One transaction for the batch (each message alone if one fails: see `inOneTransaction`), in one
   * global lock order: by transaction id (the messages of one transaction keep their order), so
   * two batches lock the protocol's rows in the same order and cannot deadlock each other.
   */
  private async handleBatch(batch: ReadonlyArray<BatchEntry<CheckoutMessage>>): Promise<BatchOutcome[]> {
    // Array sort is stable: messages of one transaction keep their delivery order.
    const byTransaction = [...batch.keys()].sort((a, b) =>
      compareCodePoints(batch[a].message.transactionId, batch[b].message.transactionId),
    );
    const results = await inOneTransaction<number, void, CheckoutMessage>(
      this.dataSource,
      byTransaction,
      (index, unit) =>
        batch[index].within(() =>
          this.dispatch(batch[index].message, new CheckoutContext([unit, batch[index].delivery])),
        ),
      (index) => batch[index].message,
    );
    const outcomes = new Array<BatchOutcome>(batch.length);
    byTransaction.forEach((index, position) => (outcomes[index] = results[position]));
    return outcomes;
  }

  private async dispatch(message: CheckoutMessage, context: CheckoutContext): Promise<void> {
    // Read by type directly: `getHandlerByPattern` first tries each pattern as JSON (and throws).
    const handler = this.messageHandlers.get(message.type);
    if (!handler) throw new PoisonMessageError(`${this.service} has no handler for '${message.type}' messages`);
    const result: unknown = await handler(message, context);
    // Several handlers of one pattern answer one observable of them all, which carries their errors.
    if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
  }
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

/**
 * Parses and authenticates a delivery for `recipient`. The broker validated the publisher's user
 * id; each service publishes as the broker user named like it, so `sender` must match it and be
 * allowed to send this type (a prepare or decision only from the coordinator, and so on). Once
 * parsed, the checkout's transaction id joins the delivery's log context and span.
 */
export function decodeCheckoutMessage(recipient: ServiceName, content: Buffer, delivery: Delivery): CheckoutMessage {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('body is not JSON');
  }
  const message = parseCheckoutMessage(raw);
  addLogContext({ transactionId: message.transactionId, messageType: message.type });
  trace.getActiveSpan()?.setAttribute('checkout.transaction_id', message.transactionId);
  if (message.recipient !== recipient) {
    throw new PoisonMessageError(`addressed to ${message.recipient}, not ${recipient}`);
  }
  if (!ALLOWED_SENDERS[message.type].includes(message.sender)) {
    throw new ForgedMessageError(`a ${message.type} may not come from ${message.sender}`);
  }
  if (delivery.userId !== message.sender) {
    throw new ForgedMessageError(
      `sender ${message.sender} not verified: published by broker user ${delivery.userId ?? '(none)'}`,
    );
  }
  return message;
}
