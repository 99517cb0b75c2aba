import { Controller, Get, Injectable, OnModuleInit, Query } from '@nestjs/common';
import { ApiTags } from '@nestjs/swagger';
import { DataSource } from 'typeorm';
import { z } from 'zod';
import { AdminOnly, ServiceMetrics } from '@shop/service-kit';
import { inDoubtCheckouts, unfinishedCheckouts } from './unfinished-checkouts';

const UnfinishedQuery = z.strictObject({
  olderThanMs: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** The operator's view of the coordinator: checkouts in doubt or waiting for acks, with their age. */
@ApiTags('operator')
@AdminOnly()
@Controller('operator/transactions')
export class UnfinishedCheckoutsController {
  constructor(private readonly dataSource: DataSource) {}

  @Get()
  async list(@Query({ schema: UnfinishedQuery }) query: z.infer<typeof UnfinishedQuery>) {
    const transactions = await unfinishedCheckouts(this.dataSource, query.olderThanMs, query.limit);
    return { count: transactions.length, transactions };
  }
}

/** The in-doubt gauges: checkouts still collecting votes, and the oldest one's age. */
@Injectable()
export class InDoubtGauges implements OnModuleInit {
  constructor(private readonly metrics: ServiceMetrics) {}

  onModuleInit(): void {
    // Read on the management connection's timer, never on a scrape (see `databaseGauge`).
    this.metrics.databaseGauges(
      [
        { name: 'checkout_in_doubt_transactions', help: 'Checkouts still collecting votes (undecided)' },
        {
          name: 'checkout_in_doubt_oldest_age_seconds',
          help: 'Age of the oldest checkout still collecting votes (0 when none)',
        },
      ],
      async (db) => {
        const { count, oldestAgeSeconds } = await inDoubtCheckouts(db);
        return [count, oldestAgeSeconds];
      },
    );
  }
}
