/** Reads a URL that `npm test` exports; a clear message when the suite is run some other way. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) {
    throw new Error(
      `${name} is not set: run the suite with \`npm test\` (or \`npm run stack:up\` and export what it prints)`,
    );
  }
  return value;
}

export const testEnv = {
  get pgAdminUrl() {
    return requireEnv('TEST_PG_ADMIN_URL');
  },
  get amqpAdminUrl() {
    return requireEnv('TEST_AMQP_ADMIN_URL');
  },
  get managementUrl() {
    return requireEnv('TEST_RABBITMQ_MANAGEMENT_URL');
  },
  // The distributed layout (`npm test`'s cluster phase): a Postgres per service, a broker cluster.
  /** Superuser URL of one service's own Postgres server (its database). */
  servicePgAdminUrl(service: string): string {
    return requireEnv(`TEST_${service.toUpperCase()}_PG_ADMIN_URL`);
  },
  /** The nodes of the broker cluster, node 1 first. */
  get rabbitNodes(): RabbitNode[] {
    return JSON.parse(requireEnv('TEST_RABBITMQ_NODES')) as RabbitNode[];
  },
};

/** One node of the broker cluster (TEST_RABBITMQ_NODES). */
export interface RabbitNode {
  /** 1-based, as in `node scripts/stack.mjs rabbitmq-node stop|start <index>`. */
  index: number;
  /** Erlang node name, e.g. `shop-cluster-1@localhost`. */
  name: string;
  amqpPort: number;
  /** Management API base with the admin's credentials, e.g. `http://admin:admin@127.0.0.1:15701`. */
  managementUrl: string;
}
