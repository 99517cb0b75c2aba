/** The payment service's own migrations, in order (the outbox and inbox tables come first, from libs/). */
export const paymentMigrations = [];
