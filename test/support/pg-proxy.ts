import net from 'node:net';

/**
 * A TCP proxy between a client (a pool) and Postgres that forwards every byte, and reads the
 * client's side of the protocol (v3: startup, then typed messages) to break a connection at a
 * chosen statement. It makes the failures a network makes, on purpose and at a known point:
 *
 *   const proxy = await PgProxy.start(url);           // connect to proxy.url instead of url
 *   const cut = proxy.cutCommit((statements) => …);   // that transaction's COMMIT reaches the
 *                                                     // server, its reply never reaches the client
 *   const held = proxy.hold((sql) => …);              // the connection stops at that statement…
 *   await held.reached; held.release();               // …until released
 *   proxy.refuse((sql) => …);                         // connections sending it are cut first
 */
export class PgProxy {
  private readonly connections = new Set<ProxiedConnection>();
  private readonly rules: Rules = { cuts: [], holds: [], refusals: [] };
  private readonly server = net.createServer((client) => this.accept(client));
  private readonly target: { host: string; port: number };
  /** The URL to connect to instead of the target's. */
  url = '';

  private constructor(targetUrl: string) {
    const target = new URL(targetUrl);
    this.target = { host: target.hostname, port: Number(target.port || 5432) };
  }

  static async start(targetUrl: string): Promise<PgProxy> {
    const proxy = new PgProxy(targetUrl);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    const proxied = new URL(targetUrl);
    proxied.hostname = '127.0.0.1';
    proxied.port = String((proxy.server.address() as net.AddressInfo).port);
    proxy.url = proxied.toString();
    return proxy;
  }

  private accept(client: net.Socket): void {
    const connection = new ProxiedConnection(client, net.connect(this.target), this.rules);
    this.connections.add(connection);
    client.once('close', () => this.connections.delete(connection));
  }

  /**
   * The next COMMIT of a transaction whose statements (in order, since its START TRANSACTION or
   * BEGIN) satisfy `match` is forwarded; once the server answered it (so it committed), that
   * reply is dropped and both sides are closed: the client sees its connection die mid-commit.
   * Resolves once it happened.
   */
  cutCommit(match: (statements: readonly string[]) => boolean): Promise<void> {
    return new Promise((done) => this.rules.cuts.push({ match, done }));
  }

  /** The next connection to send a statement matching `match` stops there (nothing more forwarded) until released. */
  hold(match: (sql: string) => boolean): { reached: Promise<void>; release(): void } {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    this.rules.holds.push({ match, reached, released });
    return { reached: reachedPromise, release };
  }

  /** From now on, a connection about to send a statement matching `match` is closed instead (until `stop`). */
  refuse(match: (sql: string) => boolean): { stop(): void; readonly refused: number } {
    const refusal = { match, refused: 0 };
    this.rules.refusals.push(refusal);
    return {
      stop: () => this.rules.refusals.splice(this.rules.refusals.indexOf(refusal), 1),
      get refused() {
        return refusal.refused;
      },
    };
  }

  async close(): Promise<void> {
    for (const connection of this.connections) connection.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

interface Rules {
  cuts: Array<{ match: (statements: readonly string[]) => boolean; done: () => void }>;
  holds: Array<{ match: (sql: string) => boolean; reached: () => void; released: Promise<void> }>;
  refusals: Array<{ match: (sql: string) => boolean; refused: number }>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

class ProxiedConnection {
  private buffer = Buffer.alloc(0);
  /** Until the startup message, the client's messages have no type byte. */
  private started = false;
  private statements: string[] = [];
  /** The text of each prepared statement of this connection, by name ('' is the unnamed one). */
  private readonly parsed = new Map<string, string>();
  private heldUntil: Promise<void> | undefined;
  /** The COMMIT being cut was sent: the server's next bytes are its reply, to be dropped. */
  private cutting: (() => void) | undefined;

  constructor(
    private readonly client: net.Socket,
    private readonly server: net.Socket,
    private readonly rules: Rules,
  ) {
    client.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.forward();
    });
    server.on('data', (chunk: Buffer) => {
      if (!this.cutting) {
        client.write(chunk);
        return;
      }
      const done = this.cutting;
      this.cutting = undefined;
      this.destroy();
      done();
    });
    for (const socket of [client, server]) {
      socket.on('error', () => this.destroy());
      socket.on('close', () => this.destroy());
    }
  }

  destroy(): void {
    this.client.destroy();
    this.server.destroy();
  }

  /** Forwards every complete message of the buffer, applying the rules to each statement. */
  private forward(): void {
    while (!this.heldUntil && !this.cutting && !this.client.destroyed) {
      const message = this.nextMessage();
      if (!message) return;
      const sql = this.statementOf(message);
      if (sql === undefined) {
        this.server.write(message.bytes);
        continue;
      }
      const refusal = this.rules.refusals.find((candidate) => candidate.match(sql));
      if (refusal) {
        refusal.refused += 1;
        this.destroy();
        return;
      }
      const hold = this.rules.holds.find((candidate) => candidate.match(sql));
      if (hold) {
        this.rules.holds.splice(this.rules.holds.indexOf(hold), 1);
        this.heldUntil = hold.released.then(() => {
          this.heldUntil = undefined;
          this.send(sql, message);
          this.forward();
        });
        hold.reached();
        return;
      }
      const cut = message.type === 'Q' && isCommit(sql) && this.rules.cuts.find((c) => c.match(this.statements));
      if (cut) {
        this.rules.cuts.splice(this.rules.cuts.indexOf(cut), 1);
        this.cutting = cut.done;
      }
      this.send(sql, message);
    }
  }

  private send(sql: string, message: ClientMessage): void {
    this.track(sql);
    this.server.write(message.bytes);
  }

  /** The statements of the transaction in progress on this connection. */
  private track(sql: string): void {
    const verb = sql.trim().toUpperCase();
    if (verb.startsWith('START TRANSACTION') || verb === 'BEGIN') this.statements = [];
    else if (isCommit(sql) || verb === 'ROLLBACK') this.statements = [];
    else this.statements.push(sql);
  }

  /**
   * The SQL a message runs: a simple Query's ('Q'), or a Bind's ('B': portal, statement name…),
   * the text that statement was parsed from ('P': name, text…; the driver parses an unnamed
   * statement once while its text stays the same).
   */
  private statementOf(message: ClientMessage): string | undefined {
    const fields = (count: number) => {
      const values: string[] = [];
      for (let start = 0; values.length < count;) {
        const end = message.payload.indexOf(0, start);
        values.push(message.payload.subarray(start, end).toString('utf8'));
        start = end + 1;
      }
      return values;
    };
    if (message.type === 'Q') return fields(1)[0];
    if (message.type === 'P') {
      const [name, text] = fields(2);
      this.parsed.set(name, text);
    }
    if (message.type === 'B') return this.parsed.get(fields(2)[1]);
    return undefined;
  }

  private nextMessage(): ClientMessage | undefined {
    const message = parse(this.buffer, this.started);
    if (!message) return undefined;
    this.buffer = this.buffer.subarray(message.bytes.length);
    if (message.type === undefined && message.code !== SSL_REQUEST && message.code !== GSSENC_REQUEST) {
      this.started = true;
    }
    return message;
  }
}

interface ClientMessage {
  /** The type byte (undefined before startup). */
  type: string | undefined;
  /** An untyped message's request code (startup, SSLRequest). */
  code?: number;
  payload: Buffer;
  bytes: Buffer;
}

function parse(buffer: Buffer, started: boolean): ClientMessage | undefined {
  if (!started) {
    if (buffer.length < 8) return undefined;
    const length = buffer.readInt32BE(0);
    if (buffer.length < length) return undefined;
    const bytes = buffer.subarray(0, length);
    return { type: undefined, code: buffer.readInt32BE(4), payload: bytes.subarray(8), bytes };
  }
  if (buffer.length < 5) return undefined;
  const length = buffer.readInt32BE(1);
  if (buffer.length < 1 + length) return undefined;
  const bytes = buffer.subarray(0, 1 + length);
  return { type: String.fromCharCode(buffer[0]), payload: bytes.subarray(5), bytes };
}

function isCommit(sql: string): boolean {
  return /^\s*(COMMIT|END)\s*;?\s*$/i.test(sql);
}
