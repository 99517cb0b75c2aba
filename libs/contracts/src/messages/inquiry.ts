import { z } from 'zod';
import { defineMessage } from '../envelope';

/** participant → order: "what was decided?" for a transaction it has held prepared too long. */
export const InquiryPayload = z.strictObject({
  preparedAt: z.iso.datetime({ offset: true }),
});
export type InquiryPayload = z.infer<typeof InquiryPayload>;

export const Inquiry = defineMessage('inquiry', 1, InquiryPayload);
