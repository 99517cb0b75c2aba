import { Body, Controller, Get, NotFoundException, Param, Put, UnprocessableEntityException } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly, RequestDatabase } from '@shop/service-kit';
import { AccountView, CustomerIdParam, MAX_DEPOSITED, PutAccountBody } from './account.schemas';

interface AccountRow {
  customer_id: string;
  balance: string;
  held: string;
  captured: string;
}

const toView = (row: AccountRow): AccountView => ({
  customerId: row.customer_id,
  balance: Number(row.balance),
  held: Number(row.held),
  captured: Number(row.captured),
});

@ApiTags('accounts')
@Controller('accounts')
export class AccountsController {
  constructor(private readonly database: RequestDatabase) {}

  /**
   * Sets the spendable balance (admin). Held and captured money stay as they are; a balance that
   * would count more than MAX_DEPOSITED (with what is held and captured) is refused, unwritten.
   */
  @Put(':customerId')
  @AdminOnly()
  @ApiOkResponse({ standardSchema: AccountView })
  async put(
    @Param('customerId', { schema: CustomerIdParam }) customerId: string,
    @Body({ schema: PutAccountBody }) body: PutAccountBody,
  ) {
    const [row] = await this.database.query<AccountRow[]>(
      `INSERT INTO accounts (customer_id, balance, deposited) VALUES ($1, $2, $2)
       ON CONFLICT (customer_id) DO UPDATE
         SET balance = EXCLUDED.balance, deposited = accounts.deposited - accounts.balance + EXCLUDED.balance,
             updated_at = now()
         WHERE accounts.held::numeric + accounts.captured + EXCLUDED.balance <= $3
       RETURNING customer_id, balance, held, captured`,
      [customerId, body.balance, MAX_DEPOSITED],
    );
    if (!row) {
      throw new UnprocessableEntityException(
        `a balance of ${body.balance} with what is held and captured would count more than ${MAX_DEPOSITED} for ${customerId}`,
      );
    }
    return toView(row);
  }

  @Get(':customerId')
  @ApiOkResponse({ standardSchema: AccountView })
  async get(@Param('customerId', { schema: CustomerIdParam }) customerId: string) {
    const [row] = await this.database.query<AccountRow[]>(
      `SELECT customer_id, balance, held, captured FROM accounts WHERE customer_id = $1`,
      [customerId],
    );
    if (!row) throw new NotFoundException(`no account for ${customerId}`);
    return toView(row);
  }
}
