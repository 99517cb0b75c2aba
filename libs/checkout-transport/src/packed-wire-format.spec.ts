import type * as amqp from 'amqplib';
import { CheckoutMessage, routingKey } from '@shop/contracts';
import {
  Delivery,
  MAX_PACKED_MESSAGES,
  OutgoingMessage,
  PACKED_CONTENT_TYPE,
  packMessages,
  PoisonMessageError,
  unpack,
} from '@shop/messaging';
import packedV1 from '../../contracts/test/fixtures/packed-v1.json';
import fixturesV1 from '../../contracts/test/fixtures/v1.json';
import { decodeCheckoutMessage } from './sender-verification';

/** A delivery of `content` with these properties, as amqplib hands it over. */
function delivered(content: Buffer, properties: Record<string, unknown>, key: string): amqp.Message {
  return {
    content,
    fields: { deliveryTag: 1, redelivered: false, exchange: 'checkout', routingKey: key },
    properties: { headers: {}, ...properties },
  } as unknown as amqp.Message;
}

const deliveryFrom = (userId: string, key: string): Delivery => ({
  routingKey: key,
  attempt: 1,
  redelivered: false,
  userId,
  headers: {},
});

function outgoing(message: CheckoutMessage): OutgoingMessage {
  return {
    messageId: message.messageId,
    routingKey: routingKey(message.recipient, message.type),
    type: message.type,
    body: message,
    headers: message.traceContext,
  };
}

/**
 * The packed envelope on the wire (docs/production.md, "Packed messages"): readers of this
 * release read the packed fixture, and every message it packs is a v1 message, unchanged.
 */
describe('the packed wire format', () => {
  it('reads the packed fixture: each message it packs is the v1 message, sender verified by the pack’s publisher', () => {
    const message = delivered(Buffer.from(JSON.stringify(packedV1.body)), packedV1.properties, packedV1.routingKey);
    const messages = unpack(message).map((one) => {
      if (!one.body.ok) throw one.body.error;
      return decodeCheckoutMessage('order', one.body.value, {
        ...deliveryFrom(packedV1.properties.userId, packedV1.routingKey),
        headers: one.headers,
      });
    });
    expect(messages).toEqual(packedV1.body.messages.map((entry) => entry.body));
    expect(messages[0]).toEqual(fixturesV1['vote-yes']);
  });

  it('packs the v1 messages of one routing key in one broker message, the others alone, and reads them back as they were', () => {
    const decision = fixturesV1.decision as CheckoutMessage;
    const prepare = fixturesV1['prepare-inventory'] as CheckoutMessage;
    const again = { ...prepare, messageId: '6f1c1c8e-3d52-4a8f-9a43-0f6b8d0a1b31' };
    const published = packMessages([prepare, decision, again].map(outgoing));
    expect(published.map((one) => [one.routingKey, one.contentType, one.carries])).toEqual([
      ['inventory.prepare', PACKED_CONTENT_TYPE, [prepare.messageId, again.messageId]],
      ['inventory.decision', 'application/json', [decision.messageId]],
    ]);
    const read = published.flatMap((one) =>
      unpack(delivered(one.content, { contentType: one.contentType, headers: one.headers }, one.routingKey)).map(
        (entry) => (entry.body.ok ? entry.body.value : entry.body.error),
      ),
    );
    expect(read).toEqual([prepare, again, decision]);
  });

  it('splits a pack at its bounds of count and size', () => {
    const prepare = fixturesV1['prepare-inventory'] as CheckoutMessage;
    const many = Array.from({ length: 7 }, (_, n) => ({
      ...prepare,
      messageId: `${prepare.messageId.slice(0, -2)}${10 + n}`,
    }));
    expect(
      packMessages(many.map(outgoing), { maxMessages: 3, maxBytes: 1 << 20 }).map((one) => one.carries.length),
    ).toEqual([3, 3, 1]);
    const oneSize = packMessages([outgoing(prepare)])[0].content.length;
    expect(
      packMessages(many.map(outgoing), { maxMessages: 50, maxBytes: oneSize * 2.5 + 200 }).map(
        (one) => one.carries.length,
      ),
    ).toEqual([2, 2, 2, 1]);
    for (const one of packMessages(many.map(outgoing), { maxMessages: 50, maxBytes: 4096 }))
      expect(one.content.length).toBeLessThanOrEqual(4096);
  });

  it('makes a packed entry that is not a message undecodable alone, and a pack without messages undecodable whole', () => {
    const body = { messages: [{ messageId: 'a' }, { messageId: 'b', type: 'vote', headers: {}, body: { x: 1 } }] };
    const [broken, fine] = unpack(
      delivered(Buffer.from(JSON.stringify(body)), { contentType: PACKED_CONTENT_TYPE }, 'order.vote'),
    );
    expect(broken).toMatchObject({ messageId: 'a', body: { ok: false, error: expect.any(PoisonMessageError) } });
    expect(fine).toMatchObject({ messageId: 'b', body: { ok: true, value: { x: 1 } } });
    expect(() =>
      unpack(delivered(Buffer.from('{"messages":[]}'), { contentType: PACKED_CONTENT_TYPE }, 'order.vote')),
    ).toThrow(/without messages/);
    const tooMany = { messages: Array.from({ length: MAX_PACKED_MESSAGES + 1 }, () => ({ body: {} })) };
    expect(() =>
      unpack(delivered(Buffer.from(JSON.stringify(tooMany)), { contentType: PACKED_CONTENT_TYPE }, 'order.vote')),
    ).toThrow(/over the bound of 100/);
  });
});
