import { z } from 'zod';
import { defineMessage } from '../envelope';
import { Outcome } from './common';

/** order → participant: the outcome every participant must apply. */
export const DecisionPayload = z.strictObject({
  outcome: Outcome,
  reason: z.string().max(64).optional(),
});
export type DecisionPayload = z.infer<typeof DecisionPayload>;

export const Decision = defineMessage('decision', 1, DecisionPayload);
