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
};
