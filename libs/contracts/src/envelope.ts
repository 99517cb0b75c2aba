import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { COORDINATOR, PARTICIPANTS, SERVICE_NAMES } from './services.generated';

// The services are listed once, in services.json at the repository's root (generated into
// services.generated.ts by `npm run generate`).
export { COORDINATOR, PARTICIPANTS, SERVICE_NAMES };

export const ServiceName = z.enum(SERVICE_NAMES);
export type ServiceName = z.infer<typeof ServiceName>;

export const Participant = z.enum(PARTICIPANTS);
export type Participant = z.infer<typeof Participant>;
PARTICIPANTS satisfies readonly ServiceName[];
COORDINATOR satisfies ServiceName;

/** W3C trace context carrier (traceparent / tracestate), as OpenTelemetry propagators write it. */
export const TraceContext = z.record(z.string(), z.string().max(512));
export type TraceContext = z.infer<typeof TraceContext>;

const envelopeFields = {
  // Lower case, as Postgres prints a uuid: the kit keys its batches by these ids.
  messageId: z.uuid().toLowerCase(),
  transactionId: z.uuid().toLowerCase(),
  sender: ServiceName,
  recipient: ServiceName,
  sentAt: z.iso.datetime({ offset: true }),
  causationId: z.uuid().nullable(),
  traceContext: TraceContext,
};

/** The envelope of one message type: common fields plus its literal type, version and payload. */
export function envelopeOf<T extends string, V extends number, P extends z.ZodType>(type: T, version: V, payload: P) {
  return z.strictObject({
    ...envelopeFields,
    type: z.literal(type),
    version: z.literal(version),
    payload,
  });
}

export interface MessageDefinition<
  T extends string = string,
  V extends number = number,
  P extends z.ZodType = z.ZodType,
> {
  readonly type: T;
  readonly version: V;
  readonly payload: P;
  readonly schema: ReturnType<typeof envelopeOf<T, V, P>>;
}

/** Declares one message type: its name, its schema version and its payload schema. */
export function defineMessage<T extends string, V extends number, P extends z.ZodType>(
  type: T,
  version: V,
  payload: P,
): MessageDefinition<T, V, P> {
  return { type, version, payload, schema: envelopeOf(type, version, payload) };
}

export type EnvelopeOf<D extends MessageDefinition> = z.infer<D['schema']>;

/** Routing keys name the recipient and the kind: `inventory.prepare`, `order.vote`. */
export function routingKey(recipient: ServiceName, type: string): string {
  return `${recipient}.${type}`;
}

export interface NewMessage<D extends MessageDefinition> {
  transactionId: string;
  sender: ServiceName;
  recipient: ServiceName;
  payload: z.input<D['payload']>;
  causationId?: string | null;
  traceContext?: TraceContext;
  /** When it was sent by a clock the recipient compares with (default: this process's now). */
  sentAt?: Date;
}

/** Builds a validated envelope; throws a ZodError when the payload breaks the contract. */
export function createMessage<D extends MessageDefinition>(definition: D, message: NewMessage<D>): EnvelopeOf<D> {
  return definition.schema.parse({
    messageId: randomUUID(),
    type: definition.type,
    version: definition.version,
    transactionId: message.transactionId,
    sender: message.sender,
    recipient: message.recipient,
    sentAt: (message.sentAt ?? new Date()).toISOString(),
    causationId: message.causationId ?? null,
    traceContext: message.traceContext ?? {},
    payload: message.payload,
  }) as EnvelopeOf<D>;
}
