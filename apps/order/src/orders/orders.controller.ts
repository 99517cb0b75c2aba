import { BadRequestException, Body, Controller, Get, Headers, Param, Post, Res } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiHeader,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { addLogContext } from '@shop/messaging';
import { AdmissionControl } from './admission-control';
import { IdempotencyKey, OrderIdParam, OrderView, PlaceOrderBody, preferredWaitSeconds } from './order.schemas';
import { OrdersService } from './orders.service';

const PREFER_HEADER = {
  name: 'Prefer',
  required: false,
  description: '`wait=N` (N ≤ 30): answer with the decided order (200) if decided within N seconds, else 202',
};

@ApiTags('orders')
@Controller('orders')
export class OrdersController {
  constructor(
    private readonly orders: OrdersService,
    private readonly admission: AdmissionControl,
  ) {}

  @Post()
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'same key + same body → the same order' })
  @ApiHeader(PREFER_HEADER)
  @ApiAcceptedResponse({ standardSchema: OrderView, description: 'Accepted: the checkout is running (PENDING)' })
  @ApiOkResponse({ standardSchema: OrderView, description: 'Already decided (with Prefer: wait, or a replay)' })
  @ApiUnprocessableEntityResponse({ description: 'Unknown SKU, or an Idempotency-Key reused with another body' })
  @ApiServiceUnavailableResponse({
    description:
      'Too many checkouts in progress: nothing was written; retry after `Retry-After` seconds with the same Idempotency-Key',
  })
  async place(
    @Body({ schema: PlaceOrderBody }) body: PlaceOrderBody,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Headers('prefer') prefer: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<OrderView> {
    if (idempotencyKey !== undefined && !IdempotencyKey.safeParse(idempotencyKey).success) {
      throw new BadRequestException('Idempotency-Key must be 1 to 200 visible ASCII characters');
    }
    // Refused here (503) when too many checkouts are undecided: before anything is written.
    const ticket = await this.admission.admit();
    const { order, replayed } = await this.orders.place(body, idempotencyKey).catch((err: unknown) => {
      ticket.cancel();
      throw err;
    });
    if (replayed) ticket.cancel();
    else ticket.accepted(order.id);
    // The order id is the checkout's transaction id: the request's log lines carry it from here on.
    addLogContext({ transactionId: order.id });
    const wait = preferredWaitSeconds(prefer);
    const view =
      wait > 0 && order.status === 'PENDING' ? await this.orders.waitForDecision(order.id, wait * 1000) : order;
    response.status(view.status === 'PENDING' ? 202 : 200).location(`/orders/${view.id}`);
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    return view;
  }

  @Get(':id')
  @ApiHeader(PREFER_HEADER)
  @ApiOkResponse({ standardSchema: OrderView })
  async get(@Param('id', { schema: OrderIdParam }) id: string, @Headers('prefer') prefer: string | undefined) {
    addLogContext({ transactionId: id });
    const wait = preferredWaitSeconds(prefer);
    return wait > 0 ? this.orders.waitForDecision(id, wait * 1000) : this.orders.get(id);
  }
}
