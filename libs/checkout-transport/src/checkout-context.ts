import { BaseRpcContext, EventPattern } from '@nestjs/microservices';
import type { CheckoutMessage, CheckoutMessageType, MessageOfType } from '@shop/contracts';
import type { Delivery } from '@shop/messaging';
import type { UnitOfWork } from '@shop/outbox';

/**
 * What a checkout message handler gets beside its message(s) (`@Ctx()`): the unit of work of its
 * batch (the open database transaction, to write with, the outbox included: `unit.items` are the
 * batch's messages) and, for a handler of one message, its delivery.
 */
export class CheckoutContext extends BaseRpcContext<[UnitOfWork<CheckoutMessage>, Delivery | undefined]> {
  getUnitOfWork(): UnitOfWork<CheckoutMessage> {
    return this.args[0];
  }

  /** The delivery of the message handled (undefined for a batch handler: each message has its own). */
  getDelivery(): Delivery | undefined {
    return this.args[1];
  }
}

/** What the transport reads off a handler registered with `CheckoutBatchPattern`. */
export interface CheckoutPatternExtras {
  /** The types the handler takes together, joined: the messages of these types in a batch go to it in one call. */
  batch?: string;
}

/**
 * Nest's `@EventPattern(type)` for a checkout message type, typed: the handler takes that message
 * (`@Payload()`) and a `CheckoutContext` (`@Ctx()`), and runs once per message, its failure that
 * message's alone. Nest 12 types the parameters after the payload as `unknown`, so under
 * `@EventPattern` itself a typed `@Ctx()` does not compile.
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

/**
 * An `@EventPattern` for several checkout message types handled as one batch: the handler gets
 * every message of these types in the batch (`@Payload()`, in the batch's order: by transaction
 * id) in one call, in the batch's unit of work, and runs each message's work in
 * `unit.step(message, …)`, so that a failure is that message's. The two-phase-commit kit's
 * handlers are these: they read and lock what the whole batch needs up front.
 */
export function CheckoutBatchPattern<T extends CheckoutMessageType>(
  ...types: T[]
): <H extends (messages: ReadonlyArray<MessageOfType<T>>, context: CheckoutContext) => Promise<unknown>>(
  target: object,
  method: string | symbol,
  descriptor: TypedPropertyDescriptor<H>,
) => void {
  const extras: CheckoutPatternExtras = { batch: types.join(',') };
  // Nest registers the handler under each pattern of the list (`[].concat(metadata)`).
  return EventPattern<T[]>(types, extras);
}
