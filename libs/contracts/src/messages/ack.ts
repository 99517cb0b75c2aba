import { z } from 'zod';
import { defineMessage } from '../envelope';
import { Outcome } from './common';

/** participant → order: the outcome it applied. */
export const AckPayload = z.strictObject({ outcome: Outcome });
export type AckPayload = z.infer<typeof AckPayload>;

export const Ack = defineMessage('ack', 1, AckPayload);
