import { Body, Controller, Get, NotFoundException, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly, RequestDatabase } from '@shop/service-kit';
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
  constructor(private readonly database: RequestDatabase) {}

  @Put(':sku')
  @AdminOnly()
  @ApiOkResponse({ standardSchema: ProductView, description: 'The product as stored' })
  async put(@Param('sku', { schema: SkuParam }) sku: string, @Body({ schema: PutProductBody }) body: PutProductBody) {
    const [row] = await this.database.query<ProductRow[]>(
      `INSERT INTO products (sku, name, unit_price) VALUES ($1, $2, $3)
       ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, unit_price = EXCLUDED.unit_price, updated_at = now()
       RETURNING sku, name, unit_price, updated_at`,
      [sku, body.name, body.unitPrice],
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
