import { Body, Controller, Get, Logger, NotFoundException, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly, CurrentAdmin, RequestDatabase } from '@shop/service-kit';
import { ProductView, PutProductBody, SkuParam } from './catalog.schemas';

interface ProductRow {
  sku: string;
  name: string;
  unit_price: string;
  updated_at: Date;
}

const toView = (row: ProductRow): ProductView => ({
  sku: row.sku,
  name: row.name,
  unitPrice: Number(row.unit_price),
  updatedAt: row.updated_at.toISOString(),
});

/** The price list: the server prices every order from it; clients never send prices. */
@ApiTags('products')
@Controller('products')
export class ProductsController {
  private readonly logger = new Logger(ProductsController.name);

  constructor(private readonly database: RequestDatabase) {}

  @Put(':sku')
  @AdminOnly()
  @ApiOkResponse({ standardSchema: ProductView, description: 'The product as stored' })
  async put(
    @Param('sku', { schema: SkuParam }) sku: string,
    @Body({ schema: PutProductBody }) body: PutProductBody,
    @CurrentAdmin() admin: string,
  ) {
    const [row] = await this.database.query<ProductRow[]>(
      `INSERT INTO products (sku, name, unit_price) VALUES ($1, $2, $3)
       ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, unit_price = EXCLUDED.unit_price, updated_at = now()
       RETURNING sku, name, unit_price, updated_at`,
      [sku, body.name, body.unitPrice],
    );
    // Prices are money: who set which, at info (the audit trail), by token fingerprint.
    this.logger.log(
      `admin ${admin} set product ${sku}: unit price ${body.unitPrice}, name ${JSON.stringify(body.name)}`,
    );
    return toView(row);
  }

  @Get(':sku')
  @ApiOkResponse({ standardSchema: ProductView })
  async get(@Param('sku', { schema: SkuParam }) sku: string) {
    const [row] = await this.database.query<ProductRow[]>(
      `SELECT sku, name, unit_price, updated_at FROM products WHERE sku = $1`,
      [sku],
    );
    if (!row) throw new NotFoundException(`no product ${sku}`);
    return toView(row);
  }
}
