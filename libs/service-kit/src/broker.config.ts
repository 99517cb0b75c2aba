import { z } from 'zod';
import { parseBrokerUrls } from '@shop/messaging';
import { type DeploymentConfig, hasDevelopmentPassword, refusesDevelopmentSecrets } from './deployment.config';
import { parsedUrl } from './setting-schemas';

/** The RabbitMQ broker the service connects to. */
export const BrokerConfig = z.object({
  /** One amqp(s):// URL, or the nodes of a cluster comma-separated (tried in order, failed over). */
  AMQP_URL: z
    .string()
    .transform(parseBrokerUrls)
    .pipe(
      z.array(z.string().regex(/^amqps?:\/\//, 'amqp:// or amqps:// URLs, comma-separated')).min(1, 'at least one URL'),
    ),
});
export type BrokerConfig = z.infer<typeof BrokerConfig>;

/** In production, no development password; with REQUIRE_TLS, amqps:// nodes only. */
export function brokerConfigProblems(config: DeploymentConfig & BrokerConfig): string[] {
  const problems: string[] = [];
  if (refusesDevelopmentSecrets(config) && config.AMQP_URL.some(hasDevelopmentPassword)) {
    problems.push(`  AMQP_URL: its password is a development default; give the production one`);
  }
  const plain = config.AMQP_URL.filter((url) => !url.startsWith('amqps://'));
  if (config.REQUIRE_TLS && plain.length) {
    const hosts = plain.map((url) => parsedUrl(url)?.host ?? '?').join(', ');
    problems.push(`  AMQP_URL: REQUIRE_TLS is set: amqps:// URLs only (plain amqp:// to ${hosts})`);
  }
  return problems;
}
