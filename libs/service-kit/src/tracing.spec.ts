import { samplerFromEnv } from './tracing';

describe('samplerFromEnv', () => {
  it('is parent-based, always on, by default and for a name it does not know', () => {
    expect(samplerFromEnv({}).toString()).toBe(
      'ParentBased{root=AlwaysOnSampler, remoteParentSampled=AlwaysOnSampler, remoteParentNotSampled=AlwaysOffSampler, localParentSampled=AlwaysOnSampler, localParentNotSampled=AlwaysOffSampler}',
    );
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'nonsense' }).toString()).toMatch(
      /^ParentBased\{root=AlwaysOnSampler/,
    );
  });

  it('follows OTEL_TRACES_SAMPLER and its ratio argument', () => {
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' }).toString()).toBe('AlwaysOffSampler');
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).toString()).toBe(
      'TraceIdRatioBased{0.25}',
    );
    expect(
      samplerFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.1' }).toString(),
    ).toMatch(/^ParentBased\{root=TraceIdRatioBased\{0.1\}/);
    expect(samplerFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }).toString()).toBe(
      'TraceIdRatioBased{1}',
    );
  });
});
