import { generateKeyPair, SignJWT } from 'jose';
import { DEVELOPMENT_JWT, signDevelopmentToken } from '@shop/service-kit/development-token';

/** Every suite's customer tokens: made once per customer, then reused (signing is not free). */
const tokens = new Map<string, Promise<string>>();

/**
 * A customer token for `customerId`, signed with the development key: what the services under
 * test accept (they run without JWT_JWKS_URL), and what `POST /dev/tokens` would give.
 */
export function customerToken(customerId: string): Promise<string> {
  let token = tokens.get(customerId);
  if (!token) {
    token = signDevelopmentToken(customerId);
    tokens.set(customerId, token);
  }
  return token;
}

/** `Authorization: Bearer <customer token>`. */
export async function customerAuthorization(customerId: string): Promise<string> {
  return `Bearer ${await customerToken(customerId)}`;
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const inSeconds = (seconds: number) => Math.floor(Date.now() / 1000) + seconds;

/** The claims of a development token for `customerId`, valid ten minutes. */
function claimsFor(customerId: string) {
  return { sub: customerId, iss: DEVELOPMENT_JWT.issuer, aud: DEVELOPMENT_JWT.audience, exp: inSeconds(600) };
}

/**
 * Tokens for `customerId` that must be refused (401), each with what the refusal should mention:
 * a forged signature, expired, another issuer or audience, unsigned (`alg: none`), and HS256
 * keyed with the public key (the classic algorithm-confusion attack).
 */
export const INVALID_TOKENS: ReadonlyArray<{
  name: string;
  make: (customerId: string) => Promise<string>;
  why: RegExp;
}> = [
  {
    name: 'signed with another key (same kid)',
    make: async (customerId) => {
      const { privateKey } = await generateKeyPair('EdDSA');
      return new SignJWT(claimsFor(customerId))
        .setProtectedHeader({ alg: 'EdDSA', kid: DEVELOPMENT_JWT.publicJwk.kid })
        .sign(privateKey);
    },
    why: /signature verification failed/,
  },
  {
    name: 'expired',
    make: (customerId) => signDevelopmentToken(customerId, { expiresAt: inSeconds(-3600) }),
    why: /expired/,
  },
  {
    name: 'from another issuer',
    make: (customerId) => signDevelopmentToken(customerId, { issuer: 'https://evil.example' }),
    why: /iss/,
  },
  {
    name: 'for another audience',
    make: (customerId) => signDevelopmentToken(customerId, { audience: 'another-api' }),
    why: /aud/,
  },
  {
    name: 'unsigned (alg none)',
    make: (customerId) =>
      Promise.resolve(`${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claimsFor(customerId))}.`),
    why: /alg|JWS/,
  },
  {
    name: 'HS256 with the public key as the secret',
    make: (customerId) =>
      new SignJWT(claimsFor(customerId))
        .setProtectedHeader({ alg: 'HS256' })
        .sign(Buffer.from(JSON.stringify(DEVELOPMENT_JWT.publicJwk))),
    why: /alg/,
  },
];
