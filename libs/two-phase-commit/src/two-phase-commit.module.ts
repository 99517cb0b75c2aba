import {
  Controller,
  DynamicModule,
  Get,
  Query,
  Inject,
  Injectable,
  Logger,
  Module,
  OnApplicationBootstrap,
  OnModuleDestroy,
  OnModuleInit,
  Type,
} from '@nestjs/common';
import { Ctx, Payload } from '@nestjs/microservices';
import { DataSource } from 'typeorm';
import { PARTICIPANTS, type MessageOfType, type Participant as ParticipantName } from '@shop/contracts';
import { ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { AdminOnly, CheckoutContext, CheckoutEventPattern, SERVICE_CONFIG, ServiceMetrics } from '@shop/service-kit';
import { Coordinator, CoordinatorHooks } from './coordinator';
import { Participant, ParticipantResource } from './participant';
import type { ProtocolConfig } from './protocol-config';

export const COORDINATOR_HOOKS = Symbol('COORDINATOR_HOOKS');
export const PARTICIPANT_RESOURCE = Symbol('PARTICIPANT_RESOURCE');

/** Runs `sweep` every `intervalMs` (never overlapping itself) until the module is destroyed. */
abstract class Sweeper implements OnApplicationBootstrap, OnModuleDestroy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  protected abstract readonly logger: Logger;
  protected abstract readonly intervalMs: number;
  protected abstract sweep(): Promise<void>;

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.sweep()
        .catch((err: unknown) => this.logger.warn(`sweep failed: ${String(err)}`))
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}

@Injectable()
class CoordinatorRunner extends Sweeper implements OnModuleInit {
  protected readonly logger = new Logger('Coordinator');
  protected readonly intervalMs: number;

  constructor(
    private readonly coordinator: Coordinator,
    private readonly metrics: ServiceMetrics,
    @Inject(SERVICE_CONFIG) config: ProtocolConfig,
  ) {
    super();
    this.intervalMs = config.SWEEP_INTERVAL_MS;
  }

  onModuleInit(): void {
    // Both gauges are collected together on a scrape: one query serves them.
    let inDoubt: ReturnType<Coordinator['inDoubt']> | undefined;
    const readInDoubt = () => (inDoubt ??= this.coordinator.inDoubt().finally(() => (inDoubt = undefined)));
    this.metrics.gaugeOnScrape(
      'checkout_in_doubt_transactions',
      'Checkouts still collecting votes (undecided)',
      async () => (await readInDoubt()).count,
    );
    this.metrics.gaugeOnScrape(
      'checkout_in_doubt_oldest_age_seconds',
      'Age of the oldest checkout still collecting votes (0 when none)',
      async () => (await readInDoubt()).oldestAgeSeconds,
    );
  }

  protected async sweep(): Promise<void> {
    const aborted = await this.coordinator.abortExpired();
    if (aborted) this.logger.warn(`aborted ${aborted} transaction(s) past their prepare deadline`);
    await this.coordinator.resendUnacked();
  }
}

@Injectable()
class ParticipantRunner extends Sweeper {
  protected readonly logger = new Logger('Participant');
  protected readonly intervalMs: number;

  constructor(
    private readonly participant: Participant<ParticipantName>,
    @Inject(SERVICE_CONFIG) private readonly config: ProtocolConfig,
  ) {
    super();
    this.intervalMs = config.SWEEP_INTERVAL_MS;
  }

  protected async sweep(): Promise<void> {
    await this.participant.inquireInDoubt(this.config.INQUIRY_AFTER_MS, this.config.INQUIRY_EVERY_MS);
  }
}

/** The coordinator's checkout messages, each handled in its batch's transaction. */
@Controller()
class CoordinatorMessages {
  constructor(private readonly coordinator: Coordinator) {}

  @CheckoutEventPattern('vote')
  onVote(@Payload() vote: MessageOfType<'vote'>, @Ctx() context: CheckoutContext): Promise<void> {
    return this.coordinator.onVote(vote, context.getUnitOfWork());
  }

  @CheckoutEventPattern('ack')
  onAck(@Payload() ack: MessageOfType<'ack'>, @Ctx() context: CheckoutContext): Promise<void> {
    return this.coordinator.onAck(ack, context.getUnitOfWork());
  }

  @CheckoutEventPattern('inquiry')
  onInquiry(@Payload() inquiry: MessageOfType<'inquiry'>, @Ctx() context: CheckoutContext): Promise<void> {
    return this.coordinator.onInquiry(inquiry, context.getUnitOfWork());
  }
}

/** A participant's checkout messages, each handled in its batch's transaction. */
@Controller()
class ParticipantMessages {
  constructor(private readonly participant: Participant<ParticipantName>) {}

  @CheckoutEventPattern('prepare')
  onPrepare(@Payload() prepare: MessageOfType<'prepare'>, @Ctx() context: CheckoutContext): Promise<void> {
    return this.participant.onPrepare(prepare, context.getUnitOfWork());
  }

  @CheckoutEventPattern('decision')
  onDecision(@Payload() decision: MessageOfType<'decision'>, @Ctx() context: CheckoutContext): Promise<void> {
    return this.participant.onDecision(decision, context.getUnitOfWork());
  }
}

const UnfinishedQuery = z.strictObject({
  olderThanMs: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** The operator's view of the coordinator: transactions in doubt or waiting for acks, with their age. */
@ApiTags('operator')
@AdminOnly()
@Controller('operator/transactions')
class UnfinishedTransactionsController {
  constructor(private readonly coordinator: Coordinator) {}

  @Get()
  async list(@Query({ schema: UnfinishedQuery }) query: z.infer<typeof UnfinishedQuery>) {
    const transactions = await this.coordinator.unfinished(query.olderThanMs, query.limit);
    return { count: transactions.length, transactions };
  }
}

/**
 * Wires the two-phase-commit kit into a service: the coordinator with the app's decision hooks,
 * or a participant with the app's resource (its prepare / commit / abort). Its message handlers
 * are `@EventPattern`s (the checkout transport calls them); it runs the sweepers (deadlines,
 * decision re-sends, inquiries).
 */
@Module({})
export class TwoPhaseCommitModule {
  static coordinator(hooks: Type<CoordinatorHooks>): DynamicModule {
    return {
      module: TwoPhaseCommitModule,
      controllers: [CoordinatorMessages, UnfinishedTransactionsController],
      providers: [
        { provide: COORDINATOR_HOOKS, useClass: hooks },
        {
          provide: Coordinator,
          inject: [DataSource, COORDINATOR_HOOKS, SERVICE_CONFIG, ServiceMetrics],
          useFactory: (
            dataSource: DataSource,
            decisionHooks: CoordinatorHooks,
            config: ProtocolConfig,
            metrics: ServiceMetrics,
          ) =>
            new Coordinator({
              participants: PARTICIPANTS,
              dataSource,
              hooks: decisionHooks,
              logger: new Logger('Coordinator'),
              resendBaseMs: config.DECISION_RESEND_BASE_MS,
              resendCapMs: config.DECISION_RESEND_CAP_MS,
              observer: metrics,
            }),
        },
        CoordinatorRunner,
      ],
      exports: [Coordinator],
    };
  }

  static participant<P extends ParticipantName>(name: P, resource: Type<ParticipantResource<P>>): DynamicModule {
    return {
      module: TwoPhaseCommitModule,
      controllers: [ParticipantMessages],
      providers: [
        { provide: PARTICIPANT_RESOURCE, useClass: resource },
        {
          provide: Participant,
          inject: [DataSource, PARTICIPANT_RESOURCE, ServiceMetrics],
          useFactory: (dataSource: DataSource, participantResource: ParticipantResource<P>, metrics: ServiceMetrics) =>
            new Participant({
              name,
              dataSource,
              resource: participantResource,
              logger: new Logger('Participant'),
              observer: metrics,
            }),
        },
        ParticipantRunner,
      ],
      exports: [Participant],
    };
  }
}
