import {
  DynamicModule,
  Injectable,
  Logger,
  Module,
  OnApplicationBootstrap,
  OnModuleDestroy,
  Type,
} from '@nestjs/common';
import { PARTICIPANTS, type Participant as ParticipantName } from '@shop/contracts';
import { PeriodicTask } from '@shop/messaging';
import { Transactions } from '@shop/outbox';
import { Coordinator, CoordinatorHooks, CoordinatorMessages } from './coordinator';
import { Participant, ParticipantMessages } from './participant';
import type { ParticipantResource } from './participant-resource';
import type { CoordinatorConfig, ProtocolConfig } from './protocol-config';
import { ProtocolMetrics } from './protocol-metrics';

export const COORDINATOR_HOOKS = Symbol('COORDINATOR_HOOKS');
export const PARTICIPANT_RESOURCE = Symbol('PARTICIPANT_RESOURCE');

/** The sweeps of one side of the protocol, every SWEEP_INTERVAL_MS while the app runs. */
class Sweeps implements OnApplicationBootstrap, OnModuleDestroy {
  constructor(private readonly task: PeriodicTask) {}

  onApplicationBootstrap(): void {
    this.task.start();
  }

  onModuleDestroy(): Promise<void> {
    return this.task.stop();
  }
}

/** The coordinator's sweeps: deadlines passed (abort, TIMEOUT), commits not acknowledged (re-send; an abort needs no ack). */
@Injectable()
class CoordinatorSweeps extends Sweeps {
  constructor(coordinator: Coordinator, config: ProtocolConfig) {
    super(
      new PeriodicTask(
        'coordinator sweep',
        config.SWEEP_INTERVAL_MS,
        async () => {
          await coordinator.abortExpired();
          await coordinator.resendUnacked();
        },
        new Logger('Coordinator'),
      ),
    );
  }
}

/** A participant's sweep: transactions held prepared too long (an inquiry to the coordinator). */
@Injectable()
class ParticipantSweeps extends Sweeps {
  constructor(participant: Participant<ParticipantName>, config: ProtocolConfig) {
    super(
      new PeriodicTask(
        'participant sweep',
        config.SWEEP_INTERVAL_MS,
        () => participant.inquireInDoubt(config.INQUIRY_AFTER_MS, config.INQUIRY_EVERY_MS),
        new Logger('Participant'),
      ),
    );
  }
}

/**
 * Wires the two-phase-commit kit into a service: the coordinator with the app's decision hooks,
 * or a participant with the app's resource (its prepare / commit / abort). Its message handlers
 * are batch `@EventPattern`s (the checkout transport calls them with each batch's unit of work);
 * it runs the sweeps (deadlines, decision re-sends, inquiries) and reports the protocol's metrics.
 * Needs the platform's `Transactions` and metrics `Registry` (the service kit provides both).
 */
@Module({})
export class TwoPhaseCommitModule {
  static coordinator(hooks: Type<CoordinatorHooks>, config: CoordinatorConfig): DynamicModule {
    return {
      module: TwoPhaseCommitModule,
      controllers: [CoordinatorMessages],
      providers: [
        { provide: COORDINATOR_HOOKS, useClass: hooks },
        ProtocolMetrics,
        {
          provide: Coordinator,
          inject: [Transactions, COORDINATOR_HOOKS, ProtocolMetrics],
          useFactory: (transactions: Transactions, decisionHooks: CoordinatorHooks, metrics: ProtocolMetrics) =>
            new Coordinator({
              participants: PARTICIPANTS,
              stages: [config.PREPARE_FIRST],
              transactions,
              hooks: decisionHooks,
              logger: new Logger('Coordinator'),
              resendBaseMs: config.DECISION_RESEND_BASE_MS,
              resendCapMs: config.DECISION_RESEND_CAP_MS,
              observer: metrics,
            }),
        },
        {
          provide: CoordinatorSweeps,
          inject: [Coordinator],
          useFactory: (coordinator: Coordinator) => new CoordinatorSweeps(coordinator, config),
        },
      ],
      exports: [Coordinator],
    };
  }

  static participant<P extends ParticipantName>(
    name: P,
    resource: Type<ParticipantResource<P>>,
    config: ProtocolConfig,
  ): DynamicModule {
    return {
      module: TwoPhaseCommitModule,
      controllers: [ParticipantMessages],
      providers: [
        { provide: PARTICIPANT_RESOURCE, useClass: resource },
        ProtocolMetrics,
        {
          provide: Participant,
          inject: [Transactions, PARTICIPANT_RESOURCE, ProtocolMetrics],
          useFactory: (
            transactions: Transactions,
            participantResource: ParticipantResource<P>,
            metrics: ProtocolMetrics,
          ) =>
            new Participant({
              name,
              transactions,
              resource: participantResource,
              logger: new Logger('Participant'),
              observer: metrics,
            }),
        },
        {
          provide: ParticipantSweeps,
          inject: [Participant],
          useFactory: (participant: Participant<ParticipantName>) => new ParticipantSweeps(participant, config),
        },
      ],
      exports: [Participant],
    };
  }
}
