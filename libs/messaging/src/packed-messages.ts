import type * as amqp from 'amqplib';
import { randomUUID } from 'node:crypto';
import type { OutgoingMessage } from './confirm-publisher';
import { PoisonMessageError } from './delivery';

/**
 * Packed messages: several messages for one routing key in one broker message, a transport
 * detail (see docs/architecture.md, "The wire format"). Each message keeps its id, type, headers
 * (its trace context) and body (a v1 envelope, unchanged); the consumer unpacks them and handles
 * each as its own delivery: its own inbox entry, outcome, retry and dead letter. A broker
 * message without this content type is one message (its body is the message), so readers take both.
 *
 *   content-type: application/vnd.shop.packed+json
 *   message-id:   the pack's own id (a uuid: what the broker's returns and dead letters name)
 *   type:         the messages' type (one routing key, so one type)
 *   x-packed-count: how many messages it carries
 *   body: {"messages":[{"messageId":"…","type":"prepare","headers":{"traceparent":"…"},"body":{…}}, …]}
 */
export const PACKED_CONTENT_TYPE = 'application/vnd.shop.packed+json';
export const PACKED_COUNT_HEADER = 'x-packed-count';

export interface PackLimits {
  /** At most this many messages in one broker message; 1 turns packing off (readers older than packing). */
  maxMessages: number;
  /** At most this many bytes of body: well under the consumer's bound (`MAX_MESSAGE_BYTES`, 1 MiB). */
  maxBytes: number;
}

export const DEFAULT_PACK_LIMITS: PackLimits = { maxMessages: 50, maxBytes: 256 * 1024 };

/**
 * A reader's bound on the messages of one pack (a writer packs at most this many too): a pack of
 * more is dead-lettered whole, so one delivery cannot make a batch of any size.
 */
export const MAX_PACKED_MESSAGES = 100;

/** `{"messages":[` and `]}`, around the packed entries (separated by commas). */
const PACK_FRAME_BYTES = '{"messages":[]}'.length;

/** One broker message to publish, and the ids of the messages it carries (one, or the packed ones). */
export interface BrokerMessage {
  messageId: string;
  routingKey: string;
  type: string;
  content: Buffer;
  contentType: string;
  headers: Record<string, unknown>;
  carries: string[];
}

/**
 * The broker messages that carry `messages`: those of one routing key packed together, in their
 * order, within the limits; a message alone (or too large to share) goes as it is.
 */
export function packMessages(messages: readonly OutgoingMessage[], limits = DEFAULT_PACK_LIMITS): BrokerMessage[] {
  const byKey = new Map<string, Array<{ message: OutgoingMessage; json: string }>>();
  for (const message of messages) {
    const entry = { message, json: JSON.stringify(message.body) };
    const group = byKey.get(message.routingKey);
    if (group) group.push(entry);
    else byKey.set(message.routingKey, [entry]);
  }
  const published: BrokerMessage[] = [];
  for (const group of byKey.values()) {
    let pack: Array<{ message: OutgoingMessage; framed: string }> = [];
    let bytes = PACK_FRAME_BYTES;
    const flush = () => {
      if (pack.length > 0) published.push(pack.length === 1 ? single(pack[0].message) : packed(pack));
      pack = [];
      bytes = PACK_FRAME_BYTES;
    };
    for (const { message, json } of group) {
      const framed = frame(message, json);
      if (
        pack.length >= Math.min(limits.maxMessages, MAX_PACKED_MESSAGES) ||
        (pack.length > 0 && bytes + framed.length + 1 > limits.maxBytes)
      )
        flush();
      pack.push({ message, framed });
      bytes += framed.length + 1;
    }
    flush();
  }
  return published;
}

function single(message: OutgoingMessage): BrokerMessage {
  return {
    messageId: message.messageId,
    routingKey: message.routingKey,
    type: message.type,
    content: Buffer.from(JSON.stringify(message.body)),
    contentType: 'application/json',
    headers: message.headers ?? {},
    carries: [message.messageId],
  };
}

function packed(pack: ReadonlyArray<{ message: OutgoingMessage; framed: string }>): BrokerMessage {
  const [{ message: first }] = pack;
  return {
    messageId: randomUUID(),
    routingKey: first.routingKey,
    type: first.type,
    content: Buffer.from(`{"messages":[${pack.map((entry) => entry.framed).join(',')}]}`),
    contentType: PACKED_CONTENT_TYPE,
    headers: { [PACKED_COUNT_HEADER]: pack.length },
    carries: pack.map((entry) => entry.message.messageId),
  };
}

function frame(message: OutgoingMessage, bodyJson: string): string {
  const { messageId, type, headers = {} } = message;
  return `{"messageId":${JSON.stringify(messageId)},"type":${JSON.stringify(type)},"headers":${JSON.stringify(headers)},"body":${bodyJson}}`;
}

/** One message of a broker delivery (the delivery itself, or one it packs), parsed. */
export interface UnpackedMessage {
  messageId: string | undefined;
  type: string | undefined;
  /** Its headers: the delivery's own, or, packed, those packed with it (its trace context). */
  headers: Record<string, unknown>;
  /** The parsed JSON body, or why this message cannot be read (it alone is dead-lettered). */
  body: { ok: true; value: unknown } | { ok: false; error: PoisonMessageError };
  /** Its own bytes, to re-publish it alone (a retry, a dead letter): a packed one is serialized again. */
  content(): Buffer;
}

/** Whether a delivery is a pack (by its content type). */
export function isPacked(message: amqp.Message): boolean {
  return message.properties.contentType === PACKED_CONTENT_TYPE;
}

/**
 * How many messages a delivery says it carries, for sizing batches only (a header: believed
 * within `[1, MAX_PACKED_MESSAGES]`; the body decides what is handled).
 */
export function declaredCount(message: amqp.Message): number {
  if (!isPacked(message)) return 1;
  const count = Number(message.properties.headers?.[PACKED_COUNT_HEADER]);
  return Number.isSafeInteger(count) ? Math.min(Math.max(count, 1), MAX_PACKED_MESSAGES) : 1;
}

/**
 * The messages of a delivery: one, or those it packs. Throws PoisonMessageError for a body that
 * is not JSON, or a pack without a list of messages or with more than MAX_PACKED_MESSAGES (the
 * whole delivery is dead-lettered); a packed entry that is not a message is that entry's failure alone.
 */
export function unpack(message: amqp.Message): UnpackedMessage[] {
  const { properties, content } = message;
  const headers = (properties.headers ?? {}) as Record<string, unknown>;
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.toString('utf8'));
  } catch {
    throw new PoisonMessageError('body is not JSON');
  }
  if (!isPacked(message)) {
    const ok = { ok: true as const, value: parsed };
    return [
      {
        messageId: stringOr(properties.messageId),
        type: stringOr(properties.type),
        headers,
        body: ok,
        content: () => content,
      },
    ];
  }
  const entries = (parsed as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(entries) || entries.length === 0) throw new PoisonMessageError('a pack without messages');
  if (entries.length > MAX_PACKED_MESSAGES)
    throw new PoisonMessageError(`a pack of ${entries.length} messages is over the bound of ${MAX_PACKED_MESSAGES}`);
  return entries.map((entry: unknown) => unpackEntry(entry));
}

function unpackEntry(entry: unknown): UnpackedMessage {
  const framed = (typeof entry === 'object' && entry !== null ? entry : {}) as Record<string, unknown>;
  const entryHeaders = framed.headers;
  const headers =
    typeof entryHeaders === 'object' && entryHeaders !== null && !Array.isArray(entryHeaders)
      ? (entryHeaders as Record<string, unknown>)
      : {};
  const hasBody = 'body' in framed;
  return {
    messageId: stringOr(framed.messageId),
    type: stringOr(framed.type),
    headers,
    body: hasBody
      ? { ok: true, value: framed.body }
      : { ok: false, error: new PoisonMessageError('a packed entry without a body') },
    content: () => Buffer.from(JSON.stringify(hasBody ? framed.body : entry) ?? 'null'),
  };
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
