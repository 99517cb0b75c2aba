import { Controller, Get, Injectable, Optional, Res, ServiceUnavailableException } from '@nestjs/common';
import { HealthCheck, HealthCheckService, HealthIndicatorService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import type { Response } from 'express';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { BrokerConnection } from '@shop/messaging';

/** Up while the broker connection is open (it fails over by itself; meanwhile the service is not ready). */
@Injectable()
export class BrokerHealthIndicator {
  constructor(
    private readonly broker: BrokerConnection,
    private readonly indicators: HealthIndicatorService,
  ) {}

  check(key: string) {
    const indicator = this.indicators.check(key);
    // Which node of the cluster this process is on: an operator sees where a failover went.
    return this.broker.isConnected ? indicator.up({ address: this.broker.address }) : indicator.down();
  }
}

/**
 * Up while the service consumes its queue: down before it starts, while it declares its queue
 * again after the broker cancelled its consumer, and once it stops. Up in an app without messaging.
 */
@Injectable()
export class ConsumerHealthIndicator {
  constructor(
    private readonly indicators: HealthIndicatorService,
    @Optional() private readonly messaging?: CheckoutMessaging,
  ) {}

  check(key: string) {
    const indicator = this.indicators.check(key);
    return !this.messaging || this.messaging.isConsuming ? indicator.up() : indicator.down({ consuming: false });
  }
}

/**
 * Liveness: the process answers. Readiness: it can reach its database and its broker, and consumes
 * its queue (so not while shutting down); 503 with the details otherwise.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly broker: BrokerHealthIndicator,
    private readonly consumer: ConsumerHealthIndicator,
  ) {}

  @Get('live')
  @HealthCheck()
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  async ready(@Res({ passthrough: true }) response: Response) {
    try {
      return await this.health.check([
        () => this.database.pingCheck('database'),
        () => this.broker.check('broker'),
        () => this.consumer.check('consumer'),
      ]);
    } catch (err) {
      // Terminus reports the details in the exception; answer them rather than a bare problem body.
      if (!(err instanceof ServiceUnavailableException)) throw err;
      response.status(503);
      return err.getResponse();
    }
  }
}
