import {
  BadRequestException,
  Body,
  Controller,
  ForbiddenException,
  Get,
  Headers,
  Param,
  Post,
  Res,
} from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiForbiddenResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { addLogContext } from '@shop/messaging';
import { CurrentCustomer, CustomerOnly } from '@shop/service-kit';
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
  @CustomerOnly()
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: "the customer's own: same key + same body → the same order (kept IDEMPOTENCY_KEY_RETENTION_HOURS)",
  })
  @ApiForbiddenResponse({ description: "A customerId in the body that is not the token's customer" })
  @ApiHeader(PREFER_HEADER)
  @ApiAcceptedResponse({ standardSchema: OrderView, description: 'Accepted: the checkout is running (PENDING)' })
  @ApiOkResponse({ standardSchema: OrderView, description: 'Already decided (with Prefer: wait, or a replay)' })
  @ApiUnprocessableEntityResponse({ description: 'Unknown SKU, or an Idempotency-Key reused with another body' })
  @ApiServiceUnavailableResponse({
    description:
      'Too many checkouts in progress: nothing was written; retry after `Retry-After` seconds with the same Idempotency-Key',
  })
  async place(
    @CurrentCustomer() customerId: string,
    @Body({ schema: PlaceOrderBody }) body: PlaceOrderBody,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Headers('prefer') prefer: string | undefined,
    @Res({ passthrough: true }) response: Response,
  ): Promise<OrderView> {
    if (idempotencyKey !== undefined && !IdempotencyKey.safeParse(idempotencyKey).success) {
      throw new BadRequestException('Idempotency-Key must be 1 to 200 visible ASCII characters');
    }
    if (body.customerId !== undefined && body.customerId !== customerId) {
      throw new ForbiddenException("customerId must be the token's customer (or left out)");
    }
    // Refused here (503) when too many checkouts are undecided: before anything is written.
    const ticket = await this.admission.admit();
    // The whole body: all of it enters the request hash. A new order takes the slot as it commits.
    const { order, replayed } = await this.orders
      .place({ ...body, customerId }, idempotencyKey, ticket)
      .catch((err: unknown) => {
        ticket.cancel();
        throw err;
      });
    if (replayed) ticket.cancel();
    // The order id is the checkout's transaction id: the request's log lines carry it from here on.
    addLogContext({ transactionId: order.id });
    const wait = preferredWaitSeconds(prefer);
    const view =
      wait > 0 && order.status === 'PENDING'
        ? await this.orders.waitForDecision(order.id, customerId, wait * 1000)
        : order;
    response.status(view.status === 'PENDING' ? 202 : 200).location(`/orders/${view.id}`);
    if (replayed) response.setHeader('Idempotent-Replayed', 'true');
    return view;
  }

  @Get(':id')
  @CustomerOnly()
  @ApiHeader(PREFER_HEADER)
  @ApiOkResponse({ standardSchema: OrderView })
  @ApiNotFoundResponse({ description: "No such order, or another customer's" })
  async get(
    @CurrentCustomer() customerId: string,
    @Param('id', { schema: OrderIdParam }) id: string,
    @Headers('prefer') prefer: string | undefined,
  ) {
    addLogContext({ transactionId: id });
    const wait = preferredWaitSeconds(prefer);
    return wait > 0 ? this.orders.waitForDecision(id, customerId, wait * 1000) : this.orders.get(id, customerId);
  }
}
