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
import { ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { AdminOnly, CurrentAdmin, CurrentCustomer, CustomerOnly, RequestDatabase } from '@shop/service-kit';
import { Account } from './account.entity';
import { AccountView, CustomerIdParam, MAX_DEPOSITED, PutAccountBody } from './account.schemas';

const toView = ({ customerId, balance, held, captured }: Account): AccountView => ({
  customerId,
  balance,
  held,
  captured,
});

@ApiTags('accounts')
@Controller('accounts')
export class AccountsController {
  private readonly logger = new Logger(AccountsController.name);

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
    @CurrentAdmin() admin: string,
  ) {
    const view = await this.database.transaction(async (unit) => {
      const accounts = unit.manager.getRepository(Account);
      // The row first (an empty one for a new customer), then locked: two PUTs for a new
      // customer at once do not both insert it, and a hold in flight is not overwritten.
      await accounts
        .createQueryBuilder()
        .insert()
        .values({ customerId, balance: 0, deposited: 0 })
        .orIgnore()
        .execute();
      const account = await accounts.findOneOrFail({ where: { customerId }, lock: { mode: 'pessimistic_write' } });
      // Exact as numbers: within MAX_DEPOSITED each figure is; beyond it the room is negative.
      if (body.balance > MAX_DEPOSITED - account.held - account.captured) {
        throw new UnprocessableEntityException(
          `a balance of ${body.balance} with what is held and captured would count more than ${MAX_DEPOSITED} for ${customerId}`,
        );
      }
      const deposited = account.deposited - account.balance + body.balance;
      await accounts.update({ customerId }, { balance: body.balance, deposited });
      return { was: account.balance, view: toView({ ...account, balance: body.balance, deposited }) };
    });
    // Money: who set which balance, from what, at info (the audit trail), by token fingerprint.
    this.logger.log(`admin ${admin} set the balance of ${customerId}: ${body.balance} (was ${view.was})`);
    return view.view;
  }

  /** The customer's own account: someone else's is answered exactly like one that does not exist. */
  @Get(':customerId')
  @CustomerOnly()
  @ApiOkResponse({ standardSchema: AccountView })
  @ApiNotFoundResponse({ description: "No such account, or another customer's" })
  async get(@CurrentCustomer() caller: string, @Param('customerId', { schema: CustomerIdParam }) customerId: string) {
    // The same query either way, so neither the answer nor its timing tells whether it exists.
    const account = await this.database.read((manager) =>
      manager
        .getRepository(Account)
        .createQueryBuilder('account')
        .where('account.customerId = :customerId AND :customerId = :caller', { customerId, caller })
        .getOne(),
    );
    if (!account) throw new NotFoundException(`no account for ${customerId}`);
    return toView(account);
  }
}
