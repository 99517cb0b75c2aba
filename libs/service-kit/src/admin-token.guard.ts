import { createHash, timingSafeEqual } from 'node:crypto';
import {
  applyDecorators,
  CanActivate,
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
 * Admin routes (set stock, balances, prices) need `Authorization: Bearer <token>`, the token one
 * of ADMIN_TOKEN's (several while one is rotated out). Tokens are compared as SHA-256 digests, all
 * of them, in constant time: neither the length of a token nor which one matched shows in the timing.
 */
@Injectable()
export class AdminTokenGuard implements CanActivate {
  private readonly expected: Buffer[];

  constructor(@Inject(SERVICE_CONFIG) config: BaseConfig) {
    this.expected = config.ADMIN_TOKEN.map(digest);
  }

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const header = http.getRequest<Request>().headers.authorization ?? '';
    const presented = digest(header.startsWith('Bearer ') ? header.slice('Bearer '.length) : '');
    let matched = false;
    for (const expected of this.expected) matched = timingSafeEqual(presented, expected) || matched;
    if (matched) return true;
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
