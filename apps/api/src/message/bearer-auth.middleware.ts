import { Inject, Injectable, type NestMiddleware, UnauthorizedException } from '@nestjs/common';
import { type ConfigType } from '@nestjs/config';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { apiConfig } from '@app/config';

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/**
 * With API_TOKEN set, requires `Authorization: Bearer <token>`. A middleware, not a guard: it
 * runs before the body is read, so a caller without the token gets 401 before any 413 or 415.
 */
@Injectable()
export class BearerAuthMiddleware implements NestMiddleware<IncomingMessage> {
  private readonly expected?: Buffer;

  constructor(@Inject(apiConfig.KEY) config: ConfigType<typeof apiConfig>) {
    this.expected = config.token === undefined ? undefined : digest(config.token);
  }

  use(request: IncomingMessage, _response: unknown, next: () => void): void {
    if (this.expected === undefined) return next();
    const match = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? '');
    // Hashing first makes the comparison constant-time whatever the token's length.
    if (match === null || !timingSafeEqual(digest(match[1].trim()), this.expected)) {
      throw new UnauthorizedException('a valid bearer token is required');
    }
    next();
  }
}
