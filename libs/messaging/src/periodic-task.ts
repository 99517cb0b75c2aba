import type { Logger } from './logger';

/**
 * Runs `run` every `intervalMs`, never overlapping itself, until stopped; `wake()` runs it now
 * (or right after the run in progress). A failure is logged and the next round comes as usual.
 * The one timer loop of the project: sweepers, the relay's poll, pruning and admission ticks.
 */
export class PeriodicTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly run: () => unknown,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule();
  }

  /** Runs now, or once more right after the run in progress. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) this.again = true;
    else this.tick();
  }

  /** Stops the timer and waits for the run in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** Whether a run is in progress. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  private tick(): void {
    clearTimeout(this.timer);
    this.running = Promise.resolve()
      .then(() => this.run())
      .then(
        () => undefined,
        (err: unknown) => this.logger.warn(`${this.name} failed: ${err instanceof Error ? err.message : String(err)}`),
      )
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.tick();
        } else this.schedule();
      });
  }
}
