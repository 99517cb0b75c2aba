import { once } from 'node:events';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SseHub } from './sse-hub';

/** A real HTTP server whose every request opens a stream on `hub` (503 when it is full). */
async function serve(hub: SseHub): Promise<{ server: Server; port: number }> {
  const server = createServer((_request, response) => {
    if (!hub.open(response, { 'x-test': 'yes' })) response.writeHead(503).end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port };
}

function get(port: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) =>
    request({ port, host: '127.0.0.1', path: '/events' }, resolve).on('error', reject).end(),
  );
}

/** Reads a stream until `text` has arrived; answers all it read. */
async function readUntil(response: IncomingMessage, text: string): Promise<string> {
  let read = '';
  for await (const chunk of response as AsyncIterable<Buffer>) {
    read += chunk.toString('utf8');
    if (read.includes(text)) return read;
  }
  return read;
}

describe("the console's live streams", () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
  });

  it('opens at most the bound, refuses beyond it, and frees a place when a page goes', async () => {
    const hub = new SseHub(2);
    const served = await serve(hub);
    server = served.server;
    const first = await get(served.port);
    const second = await get(served.port);
    expect([first.statusCode, second.statusCode]).toEqual([200, 200]);
    expect(first.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(first.headers['x-test']).toBe('yes');
    expect(hub.size).toBe(2);
    const third = await get(served.port);
    expect(third.statusCode).toBe(503);
    third.resume();
    first.destroy();
    while (hub.size > 1) await new Promise((resolve) => setImmediate(resolve)); // the close arrives
    const again = await get(served.port);
    expect(again.statusCode).toBe(200);
    again.destroy();
    second.destroy();
  });

  it('sends each broadcast to every stream as one event', async () => {
    const hub = new SseHub(4);
    const served = await serve(hub);
    server = served.server;
    const pages = await Promise.all([get(served.port), get(served.port)]);
    hub.broadcast('metrics', { decidedPerSecond: 3 });
    const read = await Promise.all(pages.map((page) => readUntil(page, '3}\n\n')));
    for (const text of read) expect(text).toContain('event: metrics\ndata: {"decidedPerSecond":3}\n\n');
    hub.closeAll();
    expect(hub.size).toBe(0);
  });
});
