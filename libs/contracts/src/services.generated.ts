// Generated from services.json by `npm run generate`; edit that instead.

/** Every service that takes part in a checkout, the coordinator first. */
export const SERVICE_NAMES = ['order', 'payment', 'inventory'] as const;

/** The coordinator of the two-phase commit. */
export const COORDINATOR = 'order' as const;

/** The participants of the two-phase commit: each has its contract module in participants/<name>.ts. */
export const PARTICIPANTS = ['payment', 'inventory'] as const;
