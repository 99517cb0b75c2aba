#!/usr/bin/env node
// `npm run token -- alice`: prints a customer token for alice, signed with the development key,
// for curl (`-H "authorization: Bearer $(npm run -s token -- alice)"`). Offline: no service needed.
// Development only: a production service (JWT_JWKS_URL set) refuses it.
import { signDevelopmentToken } from './lib/tokens.mjs';

// A customer id as CustomerId in libs/contracts/src/messages/common.ts accepts it.
const CustomerId = /^[A-Za-z0-9._@-]{1,64}$/;

const [customerId, ...rest] = process.argv.slice(2);
if (!customerId || rest.length || !CustomerId.test(customerId)) {
  console.error('usage: npm run token -- <customerId>   (letters, digits, ".", "_", "@" or "-"; at most 64)');
  process.exit(2);
}
console.log(await signDevelopmentToken(customerId));
