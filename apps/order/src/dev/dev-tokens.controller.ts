import { Body, Controller, HttpCode, Inject, Post, type Type } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { CustomerId } from '@shop/contracts';
import { type BaseConfig, type CustomerAuthConfig, SERVICE_CONFIG, signDevelopmentToken } from '@shop/service-kit';

const DevTokenBody = z.strictObject({ customerId: CustomerId }).meta({ id: 'DevTokenBody' });
type DevTokenBody = z.infer<typeof DevTokenBody>;
const DevTokenView = z.object({ token: z.string() }).meta({ id: 'DevToken' });

/**
 * DEVELOPMENT ONLY: a customer token for anyone who asks, signed with the development key (the
 * one this service checks tokens against when JWT_JWKS_URL is unset). Not registered at all in
 * production (see `developmentControllers`), so the route is a 404 there.
 */
@ApiTags('development')
@Controller('dev/tokens')
export class DevTokensController {
  constructor(@Inject(SERVICE_CONFIG) private readonly config: CustomerAuthConfig) {}

  @Post()
  @HttpCode(200)
  @ApiOkResponse({ standardSchema: DevTokenView, description: 'A token for that customer (valid 12 hours)' })
  async create(@Body({ schema: DevTokenBody }) body: DevTokenBody) {
    const token = await signDevelopmentToken(body.customerId, {
      issuer: this.config.JWT_ISSUER,
      audience: this.config.JWT_AUDIENCE,
    });
    return { token };
  }
}

/** The controllers only a development (or test) setup serves: none with NODE_ENV=production. */
export const developmentControllers = (config: BaseConfig): Type[] =>
  config.NODE_ENV === 'production' ? [] : [DevTokensController];
