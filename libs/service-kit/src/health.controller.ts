import { Controller, Get, HttpCode, ServiceUnavailableException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { BrokerConnection } from '@shop/messaging';

/** Liveness: the process answers. Readiness: it can reach its database and its broker. */
@Controller('health')
export class HealthController {
  constructor(
    private readonly dataSource: DataSource,
    private readonly broker: BrokerConnection,
  ) {}

  @Get('live')
  @HttpCode(200)
  live() {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready() {
    const database = await this.dataSource
      .query('SELECT 1')
      .then(() => 'up' as const)
      .catch(() => 'down' as const);
    const broker = this.broker.isConnected ? ('up' as const) : ('down' as const);
    const body = { status: database === 'up' && broker === 'up' ? 'ok' : 'unavailable', database, broker };
    if (body.status !== 'ok') throw new ServiceUnavailableException(body);
    return body;
  }
}
