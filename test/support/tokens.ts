import { signDevelopmentToken } from '@shop/service-kit/development-token';

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
