import { Body, Controller, Get, NotFoundException, Param, Put, UnprocessableEntityException } from '@nestjs/common';
import { ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly, CurrentCustomer, CustomerOnly, RequestDatabase } from '@shop/service-kit';
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

  /** The customer's own account: someone else's is answered exactly like one that does not exist. */
  @Get(':customerId')
  @CustomerOnly()
  @ApiOkResponse({ standardSchema: AccountView })
  @ApiNotFoundResponse({ description: "No such account, or another customer's" })
  async get(@CurrentCustomer() caller: string, @Param('customerId', { schema: CustomerIdParam }) customerId: string) {
    // The same query either way, so neither the answer nor its timing tells whether it exists.
    const [row] = await this.database.query<AccountRow[]>(
      `SELECT customer_id, balance, held, captured FROM accounts WHERE customer_id = $1 AND $1 = $2`,
      [customerId, caller],
    );
    if (!row) throw new NotFoundException(`no account for ${customerId}`);
    return toView(row);
  }
}
