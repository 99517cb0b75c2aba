import * as amqp from 'amqplib';
import { backoffMs } from './backoff';
import { Logger } from './logger';

/** Run on every fresh connection: create channels, declare topology, start consuming. */
export type ConnectionSetup = (connection: amqp.ChannelModel) => Promise<void>;

export interface BrokerConnectionOptions {
  /**
   * The broker's addresses: amqp(s) URLs of the nodes of one cluster, all with the service's own
   * user and the same vhost. Tried in order; on a lost connection the next one is tried first.
   */
  urls: readonly string[];
  /** Shown in the management UI's connection list. */
  connectionName: string;
  logger: Logger;
  /** Give up starting after this many failed rounds over every address (0 = one round). Once connected, reconnects forever. */
  initialMaxRetries?: number;
  /** Backoff (`backoffMs`, 100 ms to 5 s by default) between rounds over the addresses (a failover to the next address is immediate). */
  initialDelayMs?: number;
  maxDelayMs?: number;
}

/** Heartbeat (seconds) when a URL names none: a silent node (no FIN, no RST) is noticed in ~2 of them. */
const DEFAULT_HEARTBEAT_S = 15;
/** A connect that hangs (a node that is down behind a firewall) counts as failed after this. */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * Splits a comma-separated list of broker URLs (the `AMQP_URL` setting) into its addresses.
 * One URL is a list of one.
 */
export function parseBrokerUrls(value: string): string[] {
  return value
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
}

/** host:port of a URL, for logs (never the credentials). */
function addressOf(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672)}`;
}

function withDefaultHeartbeat(url: string): string {
  const parsed = new URL(url);
  if (!parsed.searchParams.has('heartbeat')) parsed.searchParams.set('heartbeat', String(DEFAULT_HEARTBEAT_S));
  return parsed.toString();
}

/**
 * One AMQP connection to a broker or a cluster of nodes. When the connection is lost it fails
 * over to the next address at once, then goes round the list with capped, jittered backoff; on
 * each new connection it re-runs every registered setup, so channels, topology and consumers
 * come back on whichever node it reached.
 */
export class BrokerConnection {
  private readonly setups = new Set<ConnectionSetup>();
  private readonly urls: string[];
  private current: amqp.ChannelModel | undefined;
  private currentUrl: string | undefined;
  private closed = false;
  private connections = 0;
  /** Index (into urls) of the next address to try. */
  private next = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  /** Ends a backoff wait early (on close), so the reconnect loop returns. */
  private endWait: (() => void) | undefined;
  private waiters: Array<{ resolve: (model: amqp.ChannelModel) => void; reject: (err: Error) => void }> = [];

  private constructor(
    private readonly options: BrokerConnectionOptions,
    readonly username: string,
  ) {
    this.urls = options.urls.map(withDefaultHeartbeat);
  }

  static async connect(options: BrokerConnectionOptions): Promise<BrokerConnection> {
    if (options.urls.length === 0) throw new Error('no broker URL given');
    const users = new Set(options.urls.map((url) => decodeURIComponent(new URL(url).username || 'guest')));
    // The user is the sender's identity (validated user-id): every address must log in as the same one.
    if (users.size > 1) throw new Error(`the broker URLs name different users (${[...users].join(', ')})`);
    const connection = new BrokerConnection(options, [...users][0]);
    await connection.connectUntilUp(options.initialMaxRetries ?? 30);
    return connection;
  }

  get isConnected(): boolean {
    return this.current !== undefined;
  }

  /** How many times a connection was established (1 + reconnects). */
  get connectionCount(): number {
    return this.connections;
  }

  /** host:port of the node this connection is on, if connected. */
  get address(): string | undefined {
    return this.currentUrl === undefined ? undefined : addressOf(this.currentUrl);
  }

  /** Registers a setup: runs now if connected, and again on every reconnect. */
  async onConnect(setup: ConnectionSetup): Promise<void> {
    this.setups.add(setup);
    if (this.current) await setup(this.current);
  }

  removeSetup(setup: ConnectionSetup): void {
    this.setups.delete(setup);
  }

  /** A channel on the current connection (waits for one), for one-off work (tests, admin tasks). */
  async createChannel(): Promise<amqp.Channel> {
    return (await this.model()).createChannel();
  }

  /** A confirm channel on the current connection (operator tasks that move messages). */
  async createConfirmChannel(): Promise<amqp.ConfirmChannel> {
    return (await this.model()).createConfirmChannel();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.setups.clear();
    clearTimeout(this.reconnectTimer);
    this.endWait?.();
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error('broker connection closed'));
    const model = this.current;
    this.current = undefined;
    await model?.close().catch(() => undefined);
  }

  private model(): Promise<amqp.ChannelModel> {
    if (this.current) return Promise.resolve(this.current);
    if (this.closed) return Promise.reject(new Error('broker connection closed'));
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  /**
   * Tries the addresses in turn, from `next`, until one accepts and every setup has run on it.
   * A whole round without success waits (exponential backoff, jitter) before the next round.
   * Gives up after `maxRounds` failed rounds (initial start only).
   */
  private async connectUntilUp(maxRounds = Infinity): Promise<void> {
    const { logger } = this.options;
    for (let round = 0; !this.closed; round++) {
      const errors: string[] = [];
      for (let tried = 0; tried < this.urls.length && !this.closed; tried++) {
        const url = this.urls[this.next];
        this.next = (this.next + 1) % this.urls.length;
        try {
          await this.open(url);
          return;
        } catch (err) {
          errors.push(`${addressOf(url)}: ${(err as Error).message}`);
        }
      }
      if (this.closed) return;
      if (round >= maxRounds) throw new Error(`could not connect to the broker (${errors.join('; ')})`);
      const delay = backoffMs(round, {
        baseMs: this.options.initialDelayMs ?? 100,
        capMs: this.options.maxDelayMs ?? 5_000,
      });
      logger.warn(`no broker address answered (${errors.join('; ')}); retrying in ${delay} ms`);
      await new Promise<void>((resolve) => {
        this.reconnectTimer = setTimeout(resolve, delay);
        this.endWait = resolve;
      });
    }
  }

  /** Opens one connection and runs the setups on it; only then does it become the current one. */
  private async open(url: string): Promise<void> {
    const model = await amqp.connect(url, {
      clientProperties: { connection_name: this.options.connectionName },
      timeout: CONNECT_TIMEOUT_MS,
    });
    // Errors are followed by 'close', which is where recovery starts.
    model.on('error', (err: Error) => this.options.logger.warn(`broker connection error: ${err.message}`));
    try {
      for (const setup of this.setups) await setup(model);
    } catch (err) {
      await model.close().catch(() => undefined);
      throw err;
    }
    if (this.closed) {
      await model.close().catch(() => undefined);
      return;
    }
    model.on('close', (err?: Error) => this.lost(model, err));
    model.on('blocked', (reason: string) => this.options.logger.warn(`broker blocked publishing: ${reason}`));
    model.on('unblocked', () => this.options.logger.log('broker unblocked publishing'));
    this.current = model;
    this.currentUrl = url;
    this.connections += 1;
    this.options.logger.log(`connected to the broker at ${addressOf(url)} as ${this.username}`);
    for (const waiter of this.waiters.splice(0)) waiter.resolve(model);
  }

  private lost(model: amqp.ChannelModel, err: Error | undefined): void {
    if (this.current !== model) return;
    this.current = undefined;
    if (this.closed) return;
    const from = this.currentUrl === undefined ? 'the broker' : addressOf(this.currentUrl);
    this.options.logger.warn(
      `broker connection to ${from} lost${err ? `: ${err.message}` : ''}; failing over to the next address`,
    );
    // `next` already points past the lost node: the first try is another node.
    this.connectUntilUp().catch((error: Error) => this.options.logger.error({ err: error }, 'broker recovery stopped'));
  }
}
