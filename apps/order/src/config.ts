import { z } from 'zod';
import { BaseConfig, CustomerAuthConfig, unsetIfEmpty } from '@shop/service-kit';
import { LIMITS, PARTICIPANTS } from '@shop/contracts';
import { CoordinatorConfig } from '@shop/two-phase-commit';

/** The order service's settings, validated at boot. See apps/order/.env.example. */
export const OrderConfig = BaseConfig.extend(CoordinatorConfig.shape)
  .extend(CustomerAuthConfig.shape)
  .extend({
    /**
     * How long a customer's Idempotency-Key answers with its order; after that the key is free
     * again (a new request with it is a new order). Pruned once a minute.
     */
    IDEMPOTENCY_KEY_RETENTION_HOURS: z.coerce.number().positive().default(24),
    /** Money before stock (docs/production.md, "Per-customer limits"): payment is asked first, if there is one. */
    PREPARE_FIRST: CoordinatorConfig.shape.PREPARE_FIRST.removeDefault().default(
      PARTICIPANTS.filter((participant) => participant === 'payment'),
    ),
    /** The shop's one currency (ISO 4217); prices and totals are integer minor units of it. */
    CURRENCY: z
      .string()
      .regex(/^[A-Z]{3}$/, 'an ISO 4217 code')
      .default('EUR'),
    /**
     * Admission control (see docs/production.md). The bound on checkouts in flight (accepted, not
     * yet decided) in this process climbs while decisions are within this target and falls to
     * decisions/s × target when they are not, so that an accepted order is decided in about the
     * target even when far more are offered. Default: a fifth of PREPARE_TIMEOUT_MS, which leaves
     * the deadline a wide margin.
     */
    ADMISSION_TARGET_DECISION_MS: unsetIfEmpty(z.coerce.number().int().min(10).max(3_600_000).optional()),
    /** The bound never goes below this (a burst after a quiet spell) nor above the max; equal: a fixed bound. */
    ADMISSION_MIN_IN_FLIGHT: z.coerce.number().int().min(1).max(1_000_000).default(20),
    ADMISSION_MAX_IN_FLIGHT: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
    /**
     * Where the bound starts (within min and max) before any decision is measured: a guess of the
     * capacity, not the floor, so the first burst after a start or a deploy is served. It then
     * climbs while decisions stay within the target, and falls to rate × target above it.
     */
    ADMISSION_INITIAL_IN_FLIGHT: z.coerce.number().int().min(1).max(1_000_000).default(400),
    /**
     * While it sheds, the door admits only as many orders at once as are written in this time: an
     * accepted order is answered in about this, not after a queue in the order write. Also the
     * line's clock: a line older than this serves its newest first, and while decisions are late
     * a request that waited longer is refused (docs/production.md, "The line at the door").
     */
    ADMISSION_TARGET_WRITE_MS: z.coerce.number().int().min(1).max(60_000).default(100),
    /**
     * How long a new order may wait for a slot before it is answered 503 + Retry-After: long enough
     * for a burst to be admitted as the bound climbs (a cold start's). Under overload (decisions
     * late) a request waits at most ADMISSION_TARGET_WRITE_MS, or is refused at once when the line is full.
     */
    ADMISSION_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
    /**
     * Per-customer limits at the door of POST /orders (docs/production.md, "Per-customer limits"),
     * checked before a global admission slot is taken; past them: 429 + Retry-After, nothing
     * written. Per process: with R replicas behind a balancer a customer gets up to R times each.
     * Checkouts of one customer accepted and not yet decided (requests with one Idempotency-Key count once):
     */
    MAX_CHECKOUTS_IN_FLIGHT_PER_CUSTOMER: z.coerce.number().int().min(1).max(1_000_000).default(4),
    /** New orders a customer may place: CUSTOMER_ORDER_RATE a second, after a burst of CUSTOMER_ORDER_BURST. */
    CUSTOMER_ORDER_RATE: z.coerce.number().positive().max(1_000_000).default(1),
    CUSTOMER_ORDER_BURST: z.coerce.number().int().min(1).max(1_000_000).default(10),
    /** Customers whose rate is remembered at once (least recently seen forgotten first): bounds the memory. */
    CUSTOMER_RATE_MAX_TRACKED: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
    /** What one order may ask for: lower than the contract's limits if the shop wants, never higher. */
    MAX_LINES_PER_ORDER: z.coerce.number().int().min(1).max(LIMITS.maxLinesPerOrder).default(LIMITS.maxLinesPerOrder),
    MAX_QUANTITY_PER_LINE: z.coerce
      .number()
      .int()
      .min(1)
      .max(LIMITS.maxQuantityPerLine)
      .default(LIMITS.maxQuantityPerLine),
    /** Requests waiting at once for a decision (`Prefer: wait`); beyond it they are answered at once. */
    PREFER_WAIT_MAX_WAITERS: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
    /** The console (docs/console.md): a signed-in session ends after this long without a request... */
    CONSOLE_SESSION_IDLE_MS: z.coerce
      .number()
      .int()
      .min(1_000)
      .max(86_400_000)
      .default(30 * 60_000),
    /** ...and live pages stream at most this many at once (one per open page); beyond: 503. */
    CONSOLE_MAX_STREAMS: z.coerce.number().int().min(1).max(1_000).default(16),
    /**
     * Where the console asks each participant for its own record and its dead letters (their
     * operator API): `name=url`, comma-separated; `npm start` and compose pass every participant
     * of services.json. One not listed shows as unreachable.
     */
    CONSOLE_PARTICIPANT_URLS: z
      .string()
      .default('')
      .transform((list, context) => {
        const urls: Record<string, string> = {};
        for (const entry of list
          .split(',')
          .map((item) => item.trim())
          .filter(Boolean)) {
          const [name, url] = [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)];
          if (!/^[a-z][a-z0-9]*$/.test(name) || !/^https?:\/\/[^\s]+$/.test(url)) {
            context.addIssue({ code: 'custom', message: `"${entry}" is not name=http(s)://host:port` });
            return z.NEVER;
          }
          urls[name] = url.replace(/\/+$/, '');
        }
        return urls;
      }),
    /** A trace's page, `{traceId}` in it (Jaeger: http://localhost:16686/trace/{traceId}); unset: no link. */
    CONSOLE_TRACE_URL: unsetIfEmpty(z.string().includes('{traceId}').optional()),
  })
  .refine((config) => config.ADMISSION_MIN_IN_FLIGHT <= config.ADMISSION_MAX_IN_FLIGHT, {
    message: 'must not exceed ADMISSION_MAX_IN_FLIGHT',
    path: ['ADMISSION_MIN_IN_FLIGHT'],
  });
export type OrderConfig = z.infer<typeof OrderConfig>;
