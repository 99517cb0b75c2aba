import type { DataSource } from 'typeorm';
import { ServiceMetrics } from './metrics';

describe('gauges read on scrape', () => {
  const failingDatabase = { query: () => Promise.reject(new Error('database down')) } as unknown as DataSource;

  it('report NaN, not a reassuring 0, when their read fails', async () => {
    const metrics = new ServiceMetrics('order', failingDatabase);
    metrics.gaugeOnScrape('test_oldest_seconds', 'test', () => Promise.resolve(42));
    expect(await metrics.registry.metrics()).toMatch(/^test_oldest_seconds\{service="order"\} 42$/m);
    metrics.gaugeOnScrape('test_failing', 'test', () => Promise.reject(new Error('database down')));
    const text = await metrics.registry.metrics();
    // prom-client writes `Nan`; Prometheus reads NaN in any case.
    expect(text).toMatch(/^test_failing\{service="order"\} NaN$/im);
    expect(text).toMatch(/^checkout_outbox_unsent_messages\{service="order"\} NaN$/im);
  });
});
