import { Inject, Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { COORDINATOR, PARTICIPANTS } from '@shop/contracts';
import { CheckoutMessaging } from '@shop/checkout-transport';
import { BrokerConnection, DeadLetters } from '@shop/messaging';
import { adminTokenCheck, ManagementServer, SERVICE_CONFIG } from '@shop/service-kit';
import type { OrderConfig } from '../config';
import { AdmissionControl } from '../orders/admission-control';
import { DecisionListener } from '../orders/decision-listener';
import { ConsolePages } from './console-pages';
import { ConsoleRoutes } from './console-routes';
import { DeadLetterDesk } from './dead-letter-desk';
import { LiveSampler } from './live-sampler';
import { ParticipantsClient } from './participants-client';
import { ConsoleSessions } from './sessions';
import { SseHub } from './sse-hub';

/**
 * The console (docs/console.md), assembled from the order process's own parts and mounted on its
 * management port: sessions and streams in memory, one sampler a second, the participants asked
 * through their operator API. Lanes and participants come from services.json (`PARTICIPANTS`).
 */
@Injectable()
export class ConsoleMount implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('Console');
  private readonly hub: SseHub;
  private readonly sampler: LiveSampler;
  private readonly routes: ConsoleRoutes;
  private unsubscribe: (() => void) | undefined;

  constructor(
    @Inject(SERVICE_CONFIG) config: OrderConfig,
    private readonly management: ManagementServer,
    private readonly decisions: DecisionListener,
    admission: AdmissionControl,
    registry: Registry,
    dataSource: DataSource,
    broker: BrokerConnection,
    messaging: CheckoutMessaging,
  ) {
    this.hub = new SseHub(config.CONSOLE_MAX_STREAMS);
    this.sampler = new LiveSampler(registry, admission, dataSource, this.hub);
    const client = new ParticipantsClient(config.CONSOLE_PARTICIPANT_URLS, config.ADMIN_TOKEN[0]);
    const own = { service: COORDINATOR, deadLetters: new DeadLetters(broker, messaging.topology) };
    const pages = new ConsolePages({
      db: dataSource,
      sampler: this.sampler,
      client,
      desk: new DeadLetterDesk(own, PARTICIPANTS, client, this.logger),
      services: [COORDINATOR, ...PARTICIPANTS],
      firstStage: config.PREPARE_FIRST,
      timings: config,
      traceUrl: config.CONSOLE_TRACE_URL,
    });
    this.routes = new ConsoleRoutes({
      checkToken: adminTokenCheck(config.ADMIN_TOKEN),
      sessions: new ConsoleSessions(config.CONSOLE_SESSION_IDLE_MS),
      hub: this.hub,
      pages,
      logger: this.logger,
    });
  }

  onModuleInit(): void {
    this.management.mount(this.routes);
  }

  onApplicationBootstrap(): void {
    this.unsubscribe = this.decisions.subscribe(this.sampler);
    this.sampler.start();
  }

  async onModuleDestroy(): Promise<void> {
    this.unsubscribe?.();
    await this.sampler.stop();
    this.hub.closeAll();
  }
}
