import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTVerifyGetKey } from 'jose';
import type { CustomerAuthConfig } from '../auth.config';
import { DEVELOPMENT_JWT } from '../development-token';

/**
 * The identity provider's key set could not be had (unreachable, slow, a 5xx, a redirect, not
 * JSON, malformed): not the client's fault, so a 503 to retry, never a 401. `cause` is for the
 * log only: the client is told nothing of it.
 */
export class KeySetUnavailable extends Error {
  override readonly name = 'KeySetUnavailable';
}

/** What the key set answers about the token itself: it names no key of the set. The client's fault. */
const isTokenFault = (err: unknown) =>
  err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys;

/**
 * The keys customer tokens are checked against: the identity provider's (JWT_JWKS_URL, fetched
 * and cached by jose), or, without one, the development key (whose private half is public: only
 * where the configuration allows it, see authConfigProblems). Every failure of the key set that
 * is not about the token is a `KeySetUnavailable`.
 */
export function customerTokenKeys(config: Pick<CustomerAuthConfig, 'JWT_JWKS_URL'>): JWTVerifyGetKey {
  const keys = config.JWT_JWKS_URL
    ? createRemoteJWKSet(new URL(config.JWT_JWKS_URL))
    : createLocalJWKSet({ keys: [DEVELOPMENT_JWT.publicJwk] });
  return async (header, token) => {
    try {
      return await keys(header, token);
    } catch (err) {
      if (isTokenFault(err)) throw err;
      throw new KeySetUnavailable('the key set of customer tokens could not be fetched', { cause: err });
    }
  };
}
