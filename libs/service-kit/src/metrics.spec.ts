import { ManagementDatabase } from './management-database';
import { ServiceMetrics } from './metrics';

describe('gauges read on scrape', () => {
  // Nothing listens on port 1: every database read fails.
  const failingDatabase = new ManagementDatabase('postgres://x:y@127.0.0.1:1/none', 'metrics test');
  afterAll(() => failingDatabase.stop());

  it('report NaN, not a reassuring 0, when their read fails', async () => {
    const metrics = new ServiceMetrics('order', failingDatabase);
    await failingDatabase.refresh();
    metrics.gaugeOnScrape('test_oldest_seconds', 'test', () => Promise.resolve(42));
    expect(await metrics.registry.metrics()).toMatch(/^test_oldest_seconds\{service="order"\} 42$/m);
    metrics.gaugeOnScrape('test_failing', 'test', () => Promise.reject(new Error('database down')));
    const text = await metrics.registry.metrics();
    // prom-client writes `Nan`; Prometheus reads NaN in any case.
    expect(text).toMatch(/^test_failing\{service="order"\} NaN$/im);
    expect(text).toMatch(/^checkout_outbox_unsent_messages\{service="order"\} NaN$/im);
  });

  it('read database gauges on the timer only: no scrape runs their query', async () => {
    const metrics = new ServiceMetrics('order', failingDatabase);
    let reads = 0;
    metrics.databaseGauge('test_backlog', 'test', () => Promise.resolve(++reads * 10));
    for (let i = 0; i < 20; i++) await metrics.registry.metrics();
    expect(reads).toBe(0);
    expect(await metrics.registry.metrics()).toMatch(/^test_backlog\{service="order"\} NaN$/im);
    await failingDatabase.refresh();
    expect(reads).toBe(1);
    expect(await metrics.registry.metrics()).toMatch(/^test_backlog\{service="order"\} 10$/m);
  });
});
