import * as amqp from 'amqplib';
import { Logger } from './logger';

/** Run on every fresh connection: create channels, declare topology, start consuming. */
export type ConnectionSetup = (connection: amqp.ChannelModel) => Promise<void>;

export interface BrokerConnectionOptions {
  /** amqp(s) URL; credentials name the service's own broker user. */
  url: string;
  /** Shown in the management UI's connection list. */
  connectionName: string;
  logger: Logger;
  /** Give up starting after this many failed attempts (0 = one try). Once connected, reconnects forever. */
  initialMaxRetries?: number;
}

/**
 * One AMQP connection that reconnects with capped, jittered backoff (amqplib's recovery) and
 * re-runs every registered setup on each new connection, so channels, topology and consumers
 * come back after a broker restart.
 */
export class BrokerConnection {
  private readonly setups = new Set<ConnectionSetup>();
  private current: amqp.ChannelModel | undefined;
  private closed = false;
  private connections = 0;

  private constructor(
    private readonly recovering: amqp.RecoveringChannelModel,
    readonly username: string,
    private readonly logger: Logger,
  ) {}

  static async connect(options: BrokerConnectionOptions): Promise<BrokerConnection> {
    const username = decodeURIComponent(new URL(options.url).username || 'guest');
    const holder: { connection?: BrokerConnection } = {};
    const recovering = await amqp.connect(options.url, {
      clientProperties: { connection_name: options.connectionName },
      recovery: {
        initialDelay: 100,
        maxDelay: 5_000,
        jitter: 0.3,
        initialMaxRetries: options.initialMaxRetries ?? 30,
        waitForConnect: false,
        // Runs before the connection is handed out, on the first connect and every reconnect.
        setup: async (model: amqp.ChannelModel) => holder.connection?.runSetups(model),
      },
    });
    const connection = new BrokerConnection(recovering, username, options.logger);
    holder.connection = connection;
    recovering.on('connect', (model: amqp.ChannelModel) => {
      connection.current = model;
      connection.connections += 1;
      options.logger.log(`connected to the broker as ${username}`);
    });
    recovering.on('disconnect', (err: Error) => {
      connection.current = undefined;
      if (!connection.closed) options.logger.warn(`broker connection lost: ${err.message}; reconnecting`);
    });
    recovering.on(
      'reconnect-scheduled',
      ({ attempt, delay, error }: { attempt: number; delay: number; error: Error }) =>
        options.logger.warn(`broker connect attempt ${attempt} failed (${error.message}); retrying in ${delay} ms`),
    );
    recovering.on('error', (err: Error) => options.logger.warn(`broker connection error: ${err.message}`));
    recovering.on('blocked', (reason: string) => options.logger.warn(`broker blocked publishing: ${reason}`));
    await recovering.waitForConnect();
    return connection;
  }

  get isConnected(): boolean {
    return this.current !== undefined;
  }

  /** How many times a connection was established (1 + reconnects). */
  get connectionCount(): number {
    return this.connections;
  }

  /** Registers a setup: runs now if connected, and again on every reconnect. */
  async onConnect(setup: ConnectionSetup): Promise<void> {
    this.setups.add(setup);
    if (this.current) await setup(this.current);
  }

  removeSetup(setup: ConnectionSetup): void {
    this.setups.delete(setup);
  }

  /** A channel on the current connection, for one-off work (tests, admin tasks). */
  async createChannel(): Promise<amqp.Channel> {
    return this.recovering.createChannel();
  }

  /** A confirm channel on the current connection (operator tasks that move messages). */
  async createConfirmChannel(): Promise<amqp.ConfirmChannel> {
    return this.recovering.createConfirmChannel();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.setups.clear();
    await this.recovering.close();
  }

  private async runSetups(model: amqp.ChannelModel): Promise<void> {
    for (const setup of this.setups) await setup(model);
    // The 'connect' event comes after setup; consumers that register in between still see this model.
    this.current = model;
  }
}
