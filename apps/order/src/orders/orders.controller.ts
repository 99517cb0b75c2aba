import {
  BadRequestException,
  Body,
  Controller,
  ForbiddenException,
  Get,
  Headers,
  Inject,
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
  ApiTooManyRequestsResponse,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import type { Response } from 'express';
import { addLogContext } from '@shop/messaging';
import { CurrentCustomer, CustomerOnly, SERVICE_CONFIG, TooManyRequestsException } from '@shop/service-kit';
import type { OrderConfig } from '../config';
import { AdmissionControl } from './admission-control';
import { type CustomerSlot, CustomerLimits } from './customer-limits';
import {
  IdempotencyKey,
  OrderIdParam,
  type OrderRequest,
  OrderView,
  PlaceOrderBody,
  preferredWaitSeconds,
} from './order.schemas';
import { type PlacedOrder, OrdersService } from './orders.service';

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
    private readonly customerLimits: CustomerLimits,
    @Inject(SERVICE_CONFIG) private readonly config: OrderConfig,
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
  @ApiTooManyRequestsResponse({
    description:
      "Past this customer's limits (checkouts in flight, orders a second): nothing was written; retry after `Retry-After` seconds",
  })
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
    this.checkBounds(body);
    // The whole body: all of it enters the request hash.
    const { order, replayed } = await this.placeAtTheDoor({ ...body, customerId }, idempotencyKey);
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

  /**
   * Refused before anything is written: past the customer's own limits (429), then when too many
   * checkouts are undecided (503), so a limited customer never takes a global slot. A new order
   * takes both slots as it commits; they are freed when it is decided. A replay is answered as
   * ever, however busy its customer: it writes nothing.
   */
  private async placeAtTheDoor(request: OrderRequest, idempotencyKey: string | undefined): Promise<PlacedOrder> {
    let slot: CustomerSlot;
    try {
      slot = this.customerLimits.take(request.customerId, idempotencyKey);
    } catch (err) {
      const replay =
        err instanceof TooManyRequestsException && idempotencyKey !== undefined
          ? await this.orders.findReplay(request, idempotencyKey)
          : undefined;
      if (replay) return replay;
      throw err;
    }
    const ticket = await this.admission
      .admit(() => slot.decided())
      .catch((err: unknown) => {
        slot.cancel(); // shed at the global door: the customer was not served
        throw err;
      });
    const cancel = () => {
      ticket.cancel();
      slot.cancel();
    };
    const placed = await this.orders.place(request, idempotencyKey, ticket).catch((err: unknown) => {
      cancel();
      throw err;
    });
    if (placed.replayed) cancel();
    return placed;
  }

  /** The shop's own bounds on one order (within the contract's LIMITS, which the schema checks). */
  private checkBounds(body: PlaceOrderBody): void {
    const { MAX_LINES_PER_ORDER: maxLines, MAX_QUANTITY_PER_LINE: maxQuantity } = this.config;
    const errors = body.items.flatMap((item, index) =>
      item.quantity > maxQuantity ? [`items.${index}.quantity: at most ${maxQuantity} per line in this shop`] : [],
    );
    if (body.items.length > maxLines) errors.unshift(`items: at most ${maxLines} lines per order in this shop`);
    if (errors.length) throw new BadRequestException(errors);
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
