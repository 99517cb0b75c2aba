import { Body, Controller, Get, HttpCode, Inject, Post, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { BrokerConnection, DeadLetters } from '@shop/messaging';
import { AdminOnly } from './admin-token.guard';

const ListQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) });
const RedriveBody = z.strictObject({ messageIds: z.array(z.string().min(1).max(100)).min(1).max(1000).optional() });

/** What an operator needs when something is stuck: this service's parked messages, and a re-drive. */
@ApiTags('operator')
@AdminOnly()
@Controller('operator/dead-letters')
export class OperatorController {
  private readonly deadLetters: DeadLetters;

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
  async redrive(@Body({ schema: RedriveBody }) body: z.infer<typeof RedriveBody>) {
    return { redriven: await this.deadLetters.redrive(body.messageIds) };
  }
}
