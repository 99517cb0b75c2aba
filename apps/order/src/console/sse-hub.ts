import type { ServerResponse } from 'node:http';

/** A stream whose unsent output passes this is too slow to follow: it is closed (it may reconnect). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * The console's live streams (Server-Sent Events): at most `maxStreams` at once, one per open
 * page; every event is written once per stream from one broadcast (the sampler's tick), so the
 * cost of a viewer is a write, never a query.
 */
export class SseHub {
  private readonly streams = new Set<ServerResponse>();

  constructor(private readonly maxStreams: number) {}

  /** Starts streaming to `response`; false (nothing written) when the bound is reached. */
  open(response: ServerResponse, headers: Record<string, string>): boolean {
    if (this.streams.size >= this.maxStreams) return false;
    this.streams.add(response);
    response.once('close', () => this.streams.delete(response));
    response.writeHead(200, {
      ...headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    response.write('retry: 2000\n\n');
    return true;
  }

  get size(): number {
    return this.streams.size;
  }

  /** Sends one event (`data` as JSON) to every stream. */
  broadcast(event: string, data: unknown): void {
    if (this.streams.size === 0) return;
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const stream of this.streams) {
      if (stream.writableLength > MAX_BUFFERED_BYTES) {
        this.streams.delete(stream);
        stream.destroy();
        continue;
      }
      stream.write(frame);
    }
  }

  /** Ends every stream (shutdown). */
  closeAll(): void {
    for (const stream of this.streams) stream.end();
    this.streams.clear();
  }
}
