import { z } from 'zod';
import { type DeploymentConfig, refusesDevelopmentSecrets } from './deployment.config';
import { flag, httpUrl, unsetIfEmpty } from './setting-schemas';

/** The admin token of local development (and the tests); refused in production. */
export const DEVELOPMENT_ADMIN_TOKEN = 'dev-admin-token';

/** The admin tokens this repository ships (here and in docker-compose.yml): refused in production. */
const DEVELOPMENT_ADMIN_TOKENS: readonly string[] = [DEVELOPMENT_ADMIN_TOKEN, 'compose-dev-admin-token'];

/** Admin routes (`@AdminOnly()`): every service has some. */
export const AdminAuthConfig = z.object({
  /**
   * Bearer tokens for admin routes, comma-separated: any of them is accepted, so a new one can be
   * rolled out before the old one is removed. The default is for local development only.
   */
  ADMIN_TOKEN: z
    .string()
    .default(DEVELOPMENT_ADMIN_TOKEN)
    .transform((list) => list.split(',').map((token) => token.trim()))
    .pipe(z.array(z.string().min(12, 'each token at least 12 characters')).min(1)),
});
export type AdminAuthConfig = z.infer<typeof AdminAuthConfig>;

/**
 * Signature algorithms a customer token may use: asymmetric only, so a service that verifies
 * tokens cannot sign one (`none` and the HMAC family are refused whatever the setting says).
 */
export const JWT_ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'PS256',
  'PS384',
  'PS512',
  'RS256',
] as const;

/**
 * Customer tokens (JWT, `Authorization: Bearer`), for services with customer routes: they extend
 * their schema with this one. Unset issuer, audience and key set mean the development ones
 * (libs/service-kit/src/auth/development-jwt-key.json), refused in production.
 */
export const CustomerAuthConfig = z.object({
  /** The identity provider's JSON Web Key Set (its signing keys, fetched and cached). Required in production. */
  JWT_JWKS_URL: unsetIfEmpty(httpUrl().optional()),
  /** The `iss` a token must carry: the identity provider. Required in production. */
  JWT_ISSUER: unsetIfEmpty(z.string().min(1).optional()),
  /** The `aud` a token must carry: this shop's API. Required in production. */
  JWT_AUDIENCE: unsetIfEmpty(z.string().min(1).optional()),
  /** The signature algorithms accepted, comma-separated (asymmetric ones only). */
  JWT_ALGORITHMS: z
    .string()
    .default('EdDSA,ES256')
    .transform((list) => list.split(',').map((alg) => alg.trim()))
    .pipe(z.array(z.enum(JWT_ALGORITHMS)).min(1)),
  /** Clock skew allowed when checking `exp` and `nbf`, in seconds. */
  JWT_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
  /**
   * The `typ` header a token must carry, comma-separated (case-insensitive, `application/` aside):
   * an access token (`at+jwt`, RFC 9068) or a plain `JWT`, so that the provider's other tokens
   * (logout, events, DPoP proofs) are not taken for one.
   */
  JWT_TYPES: z
    .string()
    .default('at+jwt,JWT')
    .transform((list) => list.split(',').map((typ) => typ.trim()))
    .pipe(z.array(z.string().min(1)).min(1)),
  /**
   * The longest a token may be valid, in seconds: `exp - iat`, and `exp` from now (a token with
   * no `iat`, or one dated ahead). A stolen token stops working within this bound. Default 24 h
   * (development tokens last 12 h; identity providers' access tokens minutes to an hour).
   */
  JWT_MAX_LIFETIME_SECONDS: z.coerce.number().int().min(60).default(86_400),
  /**
   * In production, accept tokens signed with the development key (whose private half is in the
   * repository: anyone can then act as any customer) in place of JWT_JWKS_URL, JWT_ISSUER and
   * JWT_AUDIENCE. For the benchmark and the compose demo only; logged at boot. Distinct from
   * ALLOW_DEVELOPMENT_SECRETS, which only lets the development passwords connect.
   */
  TRUST_DEVELOPMENT_JWT_KEY: flag('false'),
});
export type CustomerAuthConfig = z.infer<typeof CustomerAuthConfig>;

/**
 * In production, the development admin tokens and (for a service with customer routes) the
 * development token key are refused; in production or with REQUIRE_TLS, the key set is fetched
 * over https only.
 */
export function authConfigProblems(config: DeploymentConfig & AdminAuthConfig & Partial<CustomerAuthConfig>): string[] {
  const problems: string[] = [];
  const hasCustomerRoutes = config.JWT_ALGORITHMS !== undefined;
  if (refusesDevelopmentSecrets(config)) {
    if (config.ADMIN_TOKEN.some((token) => DEVELOPMENT_ADMIN_TOKENS.includes(token))) {
      problems.push('  ADMIN_TOKEN: must be set in production (a development default is for development only)');
    }
  }
  // Without these, tokens are checked against the development key pair, whose private half is
  // public: in production only when that is asked for by name (not by ALLOW_DEVELOPMENT_SECRETS).
  if (hasCustomerRoutes && config.NODE_ENV === 'production') {
    if (config.TRUST_DEVELOPMENT_JWT_KEY && config.JWT_JWKS_URL !== undefined) {
      problems.push('  TRUST_DEVELOPMENT_JWT_KEY: true beside JWT_JWKS_URL; one key set or the other');
    }
    for (const setting of ['JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE'] as const) {
      if (!config.TRUST_DEVELOPMENT_JWT_KEY && config[setting] === undefined) {
        problems.push(`  ${setting}: must be set in production (unset, customer tokens use the development key)`);
      }
    }
  }
  // Over plain http, whoever is on the path can serve their own keys, then sign any customer's token.
  if (config.JWT_JWKS_URL?.startsWith('http://')) {
    if (config.REQUIRE_TLS) problems.push(`  JWT_JWKS_URL: REQUIRE_TLS is set: an https:// URL`);
    else if (config.NODE_ENV === 'production') problems.push(`  JWT_JWKS_URL: an https:// URL in production`);
  }
  return problems;
}
