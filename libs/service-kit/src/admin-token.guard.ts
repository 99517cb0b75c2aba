import { createHash, timingSafeEqual } from 'node:crypto';
import {
  applyDecorators,
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  Inject,
  Injectable,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import { ApiBearerAuth, ApiUnauthorizedResponse } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { BaseConfig } from './config';
import { SERVICE_CONFIG } from './tokens';

/** What a 401 tells the client to send (RFC 6750). */
export const ADMIN_CHALLENGE = 'Bearer realm="admin"';

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

/**
 * Which admin token a request presented, for the logs: the first 12 hex digits of its SHA-256
 * (`printf %s "$TOKEN" | sha256sum | cut -c1-12`), never the token. Tells the tokens of a
 * rotation list apart, and whose change it was when each operator has their own.
 */
export const adminTokenFingerprint = (digested: Buffer): string => digested.toString('hex').slice(0, 12);

type AdminRequest = Request & { adminFingerprint?: string };

/**
 * The admin token check, for every door that takes it (this guard, the order service's console):
 * answers the fingerprint of `presented` if it is one of `tokens`, else undefined. Tokens are
 * compared as SHA-256 digests, all of them, in constant time: neither the length of a token nor
 * which one matched shows in the timing.
 */
export function adminTokenCheck(tokens: readonly string[]): (presented: string) => string | undefined {
  const expected = tokens.map(digest);
  return (presented) => {
    const digested = digest(presented);
    let matched = false;
    for (const token of expected) matched = timingSafeEqual(digested, token) || matched;
    return matched ? adminTokenFingerprint(digested) : undefined;
  };
}

/**
 * Admin routes (set stock, balances, prices) need `Authorization: Bearer <token>`, the token one
 * of ADMIN_TOKEN's (several while one is rotated out), checked by `adminTokenCheck`.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly check: (presented: string) => string | undefined;

  constructor(@Inject(SERVICE_CONFIG) config: BaseConfig) {
    this.check = adminTokenCheck(config.ADMIN_TOKEN);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const request = http.getRequest<AdminRequest>();
    const header = request.headers.authorization ?? '';
    const fingerprint = this.check(header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '');
    if (fingerprint !== undefined) {
      request.adminFingerprint = fingerprint;
      return true;
    }
    http.getResponse<Response>().setHeader('WWW-Authenticate', ADMIN_CHALLENGE);
    throw new UnauthorizedException('this route needs Authorization: Bearer <admin token>');
  }
}

/** Marks a route as admin-only (and documents it so in OpenAPI). */
export const AdminOnly = () =>
  applyDecorators(
    UseGuards(AdminTokenGuard),
    ApiBearerAuth(),
    ApiUnauthorizedResponse({ description: 'No or wrong admin token' }),
  );

/** The admin of an `AdminOnly` route, as the logs name them: their token's fingerprint. */
export const CurrentAdmin = createParamDecorator((_data: unknown, context: ExecutionContext): string => {
  const admin = context.switchToHttp().getRequest<AdminRequest>().adminFingerprint;
  if (admin === undefined) throw new Error('CurrentAdmin needs the route to be AdminOnly');
  return admin;
});
