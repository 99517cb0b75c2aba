import {
  applyDecorators,
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { CustomerId } from '@shop/contracts';
import type { CustomerAuthConfig } from './auth.config';
import { customerTokenKeys, KeySetUnavailable } from './auth/customer-token-keys';
import { DEVELOPMENT_JWT } from './development-token';
import { RetryLaterException } from './problem-details.filter';
import { SERVICE_CONFIG } from './tokens';

/** What a 401 on a customer route tells the client to send (RFC 6750). */
export const CUSTOMER_CHALLENGE = 'Bearer realm="shop"';

/** Why a token was refused, in words fit for the client (no token contents). */
export class InvalidCustomerToken extends Error {
  override readonly name = 'InvalidCustomerToken';
}

/** A failure of the identity provider's key set, or of the check itself: not the client's fault. */
const isKeySetFailure = (err: unknown) => err instanceof KeySetUnavailable || !(err instanceof errors.JOSEError);

/** A `typ` as RFC 8725 §3.11 compares it: case-insensitive, without the `application/` prefix. */
const mediaType = (typ: string) => typ.toLowerCase().replace(/^application\//, '');

/** Seconds a client waits before retrying while the key set cannot be had (jose refetches it then). */
const KEY_SET_RETRY_AFTER_SECONDS = 1;

/**
 * Verifies customer tokens: a JWT whose signature checks against the identity provider's keys
 * (JWT_JWKS_URL; unset, the development key), with one of the allowed asymmetric algorithms, the
 * configured `iss` and `aud`, a `typ` of JWT_TYPES, an `exp` not passed and no further off than
 * JWT_MAX_LIFETIME_SECONDS, and a `sub` that is a valid customer id: the
 * customer it speaks for. The one place that decides who a customer is; `CustomerOnly` guards
 * the routes with it.
 */
@Injectable()
export class CustomerTokens {
  /**
   * A client sends its token with every request, and checking a signature costs about 0.3 ms of
   * CPU (EdDSA), a few per cent of a checkout: a verified token's answer is kept this long, never
   * past its `exp`. A key withdrawn from the key set stops its tokens within this bound too.
   */
  static readonly REMEMBER_MS = 60_000;
  static readonly REMEMBERED_TOKENS = 10_000;

  private readonly logger = new Logger(CustomerTokens.name);
  private readonly keys: JWTVerifyGetKey;
  private readonly options: Parameters<typeof jwtVerify>[2];
  private readonly types: ReadonlySet<string>;
  private readonly maxLifetimeSeconds: number;
  private readonly clockToleranceSeconds: number;
  /** Tokens verified lately: their customer, and until when (ms) that answer holds. Oldest first. */
  private readonly verified = new Map<string, { customerId: string; until: number }>();

  constructor(@Inject(SERVICE_CONFIG) config: CustomerAuthConfig) {
    this.keys = customerTokenKeys(config);
    if (config.TRUST_DEVELOPMENT_JWT_KEY && config.JWT_JWKS_URL === undefined) {
      this.logger.warn(
        'TRUST_DEVELOPMENT_JWT_KEY=true: customer tokens signed with the DEVELOPMENT key are accepted; ' +
          'its private half is public, so ANYONE CAN ACT AS ANY CUSTOMER. A demo or a benchmark only, never a deployment.',
      );
    }
    this.options = {
      issuer: config.JWT_ISSUER ?? DEVELOPMENT_JWT.issuer,
      audience: config.JWT_AUDIENCE ?? DEVELOPMENT_JWT.audience,
      algorithms: config.JWT_ALGORITHMS,
      clockTolerance: config.JWT_CLOCK_TOLERANCE_SECONDS,
      requiredClaims: ['exp', 'sub'],
    };
    this.types = new Set(config.JWT_TYPES.map(mediaType));
    this.maxLifetimeSeconds = config.JWT_MAX_LIFETIME_SECONDS;
    this.clockToleranceSeconds = config.JWT_CLOCK_TOLERANCE_SECONDS;
  }

  /**
   * The customer id a token speaks for. Throws `InvalidCustomerToken` (saying why) for a token that
   * does not verify, and a 503 to retry when the identity provider's keys cannot be fetched.
   */
  async verify(token: string): Promise<string> {
    const now = Date.now();
    const remembered = this.verified.get(token);
    if (remembered && remembered.until > now) return remembered.customerId;
    this.verified.delete(token);
    const { customerId, expiresAt } = await this.check(token);
    if (this.verified.size >= CustomerTokens.REMEMBERED_TOKENS)
      this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(token, { customerId, until: Math.min(now + CustomerTokens.REMEMBER_MS, expiresAt) });
    return customerId;
  }

  /** Checks the token itself: signature, algorithm, claims, type, lifetime. */
  private async check(token: string): Promise<{ customerId: string; expiresAt: number }> {
    let subject: string | undefined;
    let expiresAt: number;
    try {
      const { payload, protectedHeader } = await jwtVerify(token, this.keys, this.options);
      if (protectedHeader.typ === undefined || !this.types.has(mediaType(protectedHeader.typ))) {
        throw new InvalidCustomerToken(`the token's "typ" is not one of ${[...this.types].join(', ')}`);
      }
      const exp = payload.exp!; // a required claim
      const now = Date.now() / 1000;
      const lifetime = Math.max(exp - (payload.iat ?? now), exp - now - this.clockToleranceSeconds);
      if (lifetime > this.maxLifetimeSeconds) {
        throw new InvalidCustomerToken(`the token is valid longer than ${this.maxLifetimeSeconds} s`);
      }
      subject = payload.sub;
      expiresAt = exp * 1000;
    } catch (err) {
      if (err instanceof InvalidCustomerToken) throw err;
      if (isKeySetFailure(err)) {
        // The cause (jose's words, the provider's status) is for the operator, not the client.
        this.logger.warn(`customer token keys unavailable: ${String((err as Error).cause ?? err)}`);
        throw new RetryLaterException(
          'the signing keys of customer tokens could not be fetched; retry',
          KEY_SET_RETRY_AFTER_SECONDS,
        );
      }
      throw new InvalidCustomerToken(
        err instanceof errors.JWTExpired ? 'the token has expired' : (err as Error).message,
      );
    }
    if (!CustomerId.safeParse(subject).success) {
      throw new InvalidCustomerToken('the token\'s "sub" is not a valid customer id');
    }
    return { customerId: subject!, expiresAt };
  }
}

type AuthenticatedRequest = Request & { customerId?: string };

/** `Bearer <token>` (the scheme in any case, RFC 7235), or undefined. */
function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header ?? '')?.[1];
}

/** RFC 6750's error_description allows no `"` or `\`. */
const quotable = (text: string) => text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?');

/** Lets a request through only with a valid customer token, and records its customer on the request. */
@Injectable()
export class CustomerTokenGuard implements CanActivate {
  constructor(private readonly tokens: CustomerTokens) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<AuthenticatedRequest>();
    const response = http.getResponse<Response>();
    const token = bearerToken(request.headers.authorization);
    if (token === undefined) {
      response.setHeader('WWW-Authenticate', CUSTOMER_CHALLENGE);
      throw new UnauthorizedException('this route needs Authorization: Bearer <customer token>');
    }
    try {
      request.customerId = await this.tokens.verify(token);
      return true;
    } catch (err) {
      if (!(err instanceof InvalidCustomerToken)) throw err;
      const challenge = `${CUSTOMER_CHALLENGE}, error="invalid_token", error_description="${quotable(err.message)}"`;
      response.setHeader('WWW-Authenticate', challenge);
      throw new UnauthorizedException(`the customer token is not valid: ${err.message}`);
    }
  }
}

/** Marks a route as a customer's (and documents it so in OpenAPI): `CurrentCustomer` then gives who. */
export const CustomerOnly = () =>
  applyDecorators(
    UseGuards(CustomerTokenGuard),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'No customer token, or one that is expired or not valid' }),
  );

/** The customer of a `CustomerOnly` route: the verified token's `sub`. */
export const CurrentCustomer = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const customerId = context.switchToHttp().getRequest<AuthenticatedRequest>().customerId;
  if (customerId === undefined) throw new Error('CurrentCustomer needs the route to be CustomerOnly');
  return customerId;
});
