import { Body, Controller, Get, HttpCode, Inject, Logger, Post, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { BrokerConnection, DeadLetters } from '@shop/messaging';
import { AdminOnly, CurrentAdmin } from './admin-token.guard';

const ListQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
const RedriveBody = z.strictObject({ messageIds: z.array(z.string().min(1).max(100)).min(1).max(1000).optional() });

/** What an operator needs when something is stuck: this service's parked messages, and a re-drive. */
@ApiTags('operator')
@AdminOnly()
@Controller('operator/dead-letters')
export class OperatorController {
  private readonly deadLetters: DeadLetters;
  private readonly logger = new Logger(OperatorController.name);

  constructor(@Inject(BrokerConnection) broker: BrokerConnection, messaging: CheckoutMessaging) {
    this.deadLetters = new DeadLetters(broker, messaging.topology);
  }

  @Get()
  async list(@Query({ schema: ListQuery }) query: z.infer<typeof ListQuery>) {
    return { deadLetters: await this.deadLetters.list(query.limit) };
  }

  /** Sends parked messages (all, or `messageIds`) back to the service's queue. */
  @Post('redrive')
  @HttpCode(200)
  async redrive(@Body({ schema: RedriveBody }) body: z.infer<typeof RedriveBody>, @CurrentAdmin() admin: string) {
    const redriven = await this.deadLetters.redrive(body.messageIds);
    // Who re-drove what, at info (the audit trail, like the console's), by token fingerprint.
    const ids = body.messageIds;
    const what = ids === undefined ? 'all' : ids.length <= 10 ? `messages ${ids.join(', ')}` : `${ids.length} messages`;
    this.logger.log(`admin ${admin} re-drove ${what} of the dead letters through the API: ${redriven} moved`);
    return { redriven };
  }
}
