import { z } from 'zod';
import { AdminAuthConfig, authConfigProblems } from './auth.config';
import { BrokerConfig, brokerConfigProblems } from './broker.config';
import { DatabaseConfig, databaseConfigProblems } from './database.config';
import { DeploymentConfig } from './deployment.config';
import { HttpConfig, httpConfigProblems } from './http.config';
import { MessagingConfig, messagingConfigProblems } from './messaging.config';
import { ObservabilityConfig } from './observability.config';

/**
 * Settings every service reads from its environment, one concern per file (deployment, admin
 * auth, HTTP, database, broker, messaging, observability). Services extend this schema with
 * their own (e.g. `CustomerAuthConfig`, the protocol's).
 */
export const BaseConfig = z.object({
  ...DeploymentConfig.shape,
  ...AdminAuthConfig.shape,
  ...HttpConfig.shape,
  ...DatabaseConfig.shape,
  ...BrokerConfig.shape,
  ...MessagingConfig.shape,
  ...ObservabilityConfig.shape,
});
export type BaseConfig = z.infer<typeof BaseConfig>;

/** What each concern refuses beyond its schema: settings valid alone that do not hold together or do not suit the setup. */
const PROBLEMS: ReadonlyArray<(config: BaseConfig) => string[]> = [
  authConfigProblems,
  databaseConfigProblems,
  brokerConfigProblems,
  messagingConfigProblems,
  httpConfigProblems,
];

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Validates the environment at boot; a wrong or missing setting fails the start and is named. */
export function loadConfig<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  const result = schema.safeParse(env);
  const problems = result.success
    ? PROBLEMS.flatMap((problemsOf) => problemsOf(result.data as BaseConfig))
    : result.error.issues.map((issue) => `  ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  if (result.success && problems.length === 0) return result.data;
  throw new ConfigError(`invalid configuration:\n${problems.join('\n')}`);
}
