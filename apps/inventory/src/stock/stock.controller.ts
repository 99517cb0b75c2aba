import {
  Body,
  Controller,
  Get,
  Logger,
  NotFoundException,
  Param,
  Put,
  UnprocessableEntityException,
} from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly, CurrentAdmin, RequestDatabase } from '@shop/service-kit';
import { MAX_STOCKED, PutStockBody, SkuParam, StockView } from './stock.schemas';

@ApiTags('stock')
@Controller('stock')
export class StockController {
  private readonly logger = new Logger(StockController.name);

  constructor(private readonly database: RequestDatabase) {}

  /**
   * Sets the available quantity (admin). Reserved and sold stay as they are; a quantity that would
   * count more than MAX_STOCKED for the SKU (with what is reserved and sold) is refused, unwritten.
   */
  @Put(':sku')
  @AdminOnly()
  @ApiOkResponse({ standardSchema: StockView })
  async put(
    @Param('sku', { schema: SkuParam }) sku: string,
    @Body({ schema: PutStockBody }) body: PutStockBody,
    @CurrentAdmin() admin: string,
  ) {
    const [row] = await this.database.query<StockView[]>(
      `INSERT INTO stock (sku, available, stocked) VALUES ($1, $2, $2)
       ON CONFLICT (sku) DO UPDATE
         SET available = EXCLUDED.available, stocked = stock.stocked - stock.available + EXCLUDED.available,
             updated_at = now()
         WHERE stock.reserved::bigint + stock.sold + EXCLUDED.available <= $3
       RETURNING sku, available, reserved, sold`,
      [sku, body.quantity, MAX_STOCKED],
    );
    if (!row) {
      throw new UnprocessableEntityException(
        `${body.quantity} available with what is reserved and sold would count more than ${MAX_STOCKED} units of ${sku}`,
      );
    }
    // Who set which stock, at info (the audit trail), by token fingerprint.
    this.logger.log(`admin ${admin} set the stock of ${sku}: ${body.quantity} available`);
    return row;
  }

  @Get(':sku')
  @ApiOkResponse({ standardSchema: StockView })
  async get(@Param('sku', { schema: SkuParam }) sku: string) {
    const [row] = await this.database.query<StockView[]>(
      `SELECT sku, available, reserved, sold FROM stock WHERE sku = $1`,
      [sku],
    );
    if (!row) throw new NotFoundException(`no stock for ${sku}`);
    return row;
  }
}
