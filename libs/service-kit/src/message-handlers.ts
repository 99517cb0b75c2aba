import { Injectable } from '@nestjs/common';
import type { CheckoutMessage, CheckoutMessageType, MessageOfType } from '@shop/contracts';
import type { UnitOfWork } from '@shop/inbox';
import type { Delivery } from '@shop/messaging';

/** What a handler is given beside its message: the batch's transaction (and messages), and the delivery. */
export interface HandlerContext extends UnitOfWork<CheckoutMessage> {
  delivery: Delivery;
}

export type MessageHandler<T extends CheckoutMessageType> = (
  message: MessageOfType<T>,
  context: HandlerContext,
) => Promise<void>;

/** Which handler takes which checkout message type; services register theirs at module init. */
@Injectable()
export class MessageHandlers {
  private readonly handlers = new Map<CheckoutMessageType, MessageHandler<CheckoutMessageType>>();

  register<T extends CheckoutMessageType>(type: T, handler: MessageHandler<T>): void {
    if (this.handlers.has(type)) throw new Error(`a handler for '${type}' is already registered`);
    this.handlers.set(type, handler);
  }

  get(type: CheckoutMessageType): MessageHandler<CheckoutMessageType> | undefined {
    return this.handlers.get(type);
  }
}
