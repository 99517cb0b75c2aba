import { BaseConfig, ConfigError, loadConfig } from './config';

const required = { PORT: '3000', DATABASE_URL: 'postgres://u:p@h/db', AMQP_URL: 'amqp://u:p@h/v' };

describe('observability settings', () => {
  it('default to info logs, the format chosen by the terminal, and no trace export', () => {
    expect(loadConfig(BaseConfig, required)).toMatchObject({ LOG_LEVEL: 'info' });
    expect(loadConfig(BaseConfig, required).LOG_FORMAT).toBeUndefined();
    expect(loadConfig(BaseConfig, required).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
  });

  it('take `NAME=` (as in an env file) as not set', () => {
    const config = loadConfig(BaseConfig, { ...required, LOG_FORMAT: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' });
    expect(config.LOG_FORMAT).toBeUndefined();
    expect(config.OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
  });

  it('accept valid values', () => {
    const config = loadConfig(BaseConfig, {
      ...required,
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    });
    expect(config).toMatchObject({
      LOG_LEVEL: 'debug',
      LOG_FORMAT: 'pretty',
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
    });
  });

  it('refuse wrong ones at boot, naming each', () => {
    const load = () =>
      loadConfig(BaseConfig, {
        ...required,
        LOG_LEVEL: 'loud',
        LOG_FORMAT: 'xml',
        OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318',
      });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/LOG_LEVEL: .*\n.*LOG_FORMAT: .*\n.*OTEL_EXPORTER_OTLP_ENDPOINT: an http\(s\):\/\/ URL/);
  });
});

describe('the broker setting', () => {
  it('takes one URL, or the nodes of a cluster comma-separated', () => {
    expect(loadConfig(BaseConfig, required).AMQP_URL).toEqual(['amqp://u:p@h/v']);
    const cluster = 'amqp://u:p@rabbit-1/v, amqp://u:p@rabbit-2/v,amqp://u:p@rabbit-3/v';
    expect(loadConfig(BaseConfig, { ...required, AMQP_URL: cluster }).AMQP_URL).toEqual([
      'amqp://u:p@rabbit-1/v',
      'amqp://u:p@rabbit-2/v',
      'amqp://u:p@rabbit-3/v',
    ]);
  });

  it('refuses anything that is not a list of amqp(s) URLs', () => {
    for (const AMQP_URL of ['', ',', 'http://h/v', 'amqp://u:p@h/v,rabbit-2'])
      expect(() => loadConfig(BaseConfig, { ...required, AMQP_URL })).toThrow(/AMQP_URL/);
  });
});

describe('the pool and the prefetch', () => {
  it('by default leave the handlers a connection beside the requests’ share and the background work', () => {
    const config = loadConfig(BaseConfig, required);
    expect(config.DB_POOL_SIZE - config.DB_REQUEST_CONNECTIONS - 3).toBeGreaterThanOrEqual(1);
    expect(config.AMQP_PREFETCH).toBeLessThanOrEqual(2 * config.MESSAGE_BATCH_SIZE);
  });

  it('refuse a pool that leaves the handlers nothing, or a prefetch beyond two batches, naming the settings', () => {
    const noneLeft = () => loadConfig(BaseConfig, { ...required, DB_POOL_SIZE: '8', DB_REQUEST_CONNECTIONS: '5' });
    expect(noneLeft).toThrow(ConfigError);
    expect(noneLeft).toThrow(/DB_REQUEST_CONNECTIONS: 5 leaves the message handlers no connection \(DB_POOL_SIZE 8/);
    const tooMuch = () => loadConfig(BaseConfig, { ...required, MESSAGE_BATCH_SIZE: '20', AMQP_PREFETCH: '41' });
    expect(tooMuch).toThrow(/AMQP_PREFETCH: 41 exceeds two batches \(2 × MESSAGE_BATCH_SIZE 20\)/);
    expect(loadConfig(BaseConfig, { ...required, MESSAGE_BATCH_SIZE: '20', AMQP_PREFETCH: '40' }).AMQP_PREFETCH).toBe(
      40,
    );
  });
});
