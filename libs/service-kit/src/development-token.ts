import { importJWK, SignJWT } from 'jose';
import developmentKey from './auth/development-jwt-key.json';

/**
 * DEVELOPMENT ONLY: the key pair in `auth/development-jwt-key.json` is public (it is in the
 * repository), so anyone can sign a customer token with it. Local development, the tests and the
 * benchmark use it; production refuses it (see CustomerAuthConfig in config.ts).
 */
export const DEVELOPMENT_JWT = {
  issuer: developmentKey.issuer,
  audience: developmentKey.audience,
  algorithm: developmentKey.algorithm,
  publicJwk: developmentKey.publicJwk,
} as const;

/** How long a development token is valid. */
export const DEVELOPMENT_TOKEN_LIFETIME = '12h';

export interface DevelopmentTokenOptions {
  issuer?: string;
  audience?: string;
  /** A jose time span (`'12h'`, `'-1h'` for one already expired) or seconds since the epoch. */
  expiresAt?: string | number;
}

/** A customer token for `customerId` (its `sub`), signed with the development key. */
export async function signDevelopmentToken(customerId: string, options: DevelopmentTokenOptions = {}): Promise<string> {
  const key = await importJWK(developmentKey.privateJwk, developmentKey.algorithm);
  return new SignJWT()
    .setProtectedHeader({ alg: developmentKey.algorithm, kid: developmentKey.privateJwk.kid, typ: 'JWT' })
    .setSubject(customerId)
    .setIssuer(options.issuer ?? DEVELOPMENT_JWT.issuer)
    .setAudience(options.audience ?? DEVELOPMENT_JWT.audience)
    .setIssuedAt()
    .setExpirationTime(options.expiresAt ?? DEVELOPMENT_TOKEN_LIFETIME)
    .sign(key);
}
