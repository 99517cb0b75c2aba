import { randomUUID } from 'node:crypto';
import { createMessage, Vote } from '@shop/contracts';
import { MAX_MESSAGE_BYTES, topologyFor } from '@shop/messaging';
import { asRaw, publishAs, takeDeadLetters } from '../support/broker';
import { adminChannel } from '../support/rabbitmq';
import { useShop } from '../support/shop';

/**
 * A participant cannot make the coordinator parse (and hold in memory) a huge message: the broker
 * refuses one over its `max_message_size`, and the transport dead-letters one over its own bound
 * before JSON.parse. Order stays up and consuming either way.
 */
const shop = useShop();

/** A vote padded to more than `padBytes` (many trace-context entries, each within the contract's bound). */
const voteOf = (padBytes: number) => {
  const vote = createMessage(Vote, {
    transactionId: randomUUID(),
    sender: 'payment',
    recipient: 'order',
    payload: { vote: 'yes' },
  });
  const entry = 'x'.repeat(500);
  const traceContext = Object.fromEntries(
    Array.from({ length: Math.ceil(padBytes / 500) }, (_, i) => [`k${i}`, entry]),
  );
  return { raw: { ...asRaw(vote), body: { ...vote, traceContext } }, messageId: vote.messageId };
};

async function orderConsumers(): Promise<number> {
  const admin = await adminChannel();
  try {
    return (await admin.channel.checkQueue(topologyFor('order').queue)).consumerCount;
  } finally {
    await admin.close();
  }
}

describe('oversize messages', () => {
  it('a 15 MiB vote is refused by the broker, and order stays consuming', async () => {
    await expect(publishAs('payment', [voteOf(15 * 1024 * 1024).raw])).rejects.toThrow(/message size|PRECONDITION/i);
    expect(await orderConsumers()).toBeGreaterThan(0);
  });

  it('a vote over the transport bound (but under the broker one) is dead-lettered with the reason before it is parsed', async () => {
    const vote = voteOf(MAX_MESSAGE_BYTES + 1024);
    await publishAs('payment', [vote.raw]);
    const [parked] = await takeDeadLetters('order', [vote.messageId]);
    expect(parked.reason).toMatch(/invalid message: body of \d+ bytes is over the \d+-byte bound/);
    expect(await orderConsumers()).toBeGreaterThan(0);
    expect(shop.stack.order).toBeDefined();
  });
});
