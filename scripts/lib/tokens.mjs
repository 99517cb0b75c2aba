// Customer tokens signed with the DEVELOPMENT key (libs/service-kit/src/auth/development-jwt-key.json,
// public, refused in production): for `npm run token`, the benchmark and the demo. The services
// sign them the same way (libs/service-kit/src/development-token.ts).
import fs from 'node:fs';
import path from 'node:path';
import { importJWK, SignJWT } from 'jose';
import { ROOT } from './config.mjs';

const KEY_FILE = path.join(ROOT, 'libs/service-kit/src/auth/development-jwt-key.json');

let key;
function developmentKey() {
  key ??= JSON.parse(fs.readFileSync(KEY_FILE, 'utf8'));
  return key;
}

/**
 * A token for `customerId` (its `sub`), valid `lifetime` (a jose time span). Issuer and audience
 * default to JWT_ISSUER / JWT_AUDIENCE when set, else the development ones, as the services do.
 */
export async function signDevelopmentToken(customerId, { lifetime = '12h' } = {}) {
  const dev = developmentKey();
  return new SignJWT()
    .setProtectedHeader({ alg: dev.algorithm, kid: dev.privateJwk.kid, typ: 'JWT' })
    .setSubject(customerId)
    .setIssuer(process.env.JWT_ISSUER || dev.issuer)
    .setAudience(process.env.JWT_AUDIENCE || dev.audience)
    .setIssuedAt()
    .setExpirationTime(lifetime)
    .sign(await importJWK(dev.privateJwk, dev.algorithm));
}

/** `Authorization` header values per customer, all signed up front (none while load is measured). */
export async function authorizationsFor(customerIds) {
  const entries = await Promise.all(
    [...new Set(customerIds)].map(async (id) => [id, `Bearer ${await signDevelopmentToken(id)}`]),
  );
  return new Map(entries);
}
