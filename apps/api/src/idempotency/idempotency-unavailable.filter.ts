import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { RETRY_AFTER_SECONDS } from '../shutdown/shutdown-gate.service';
import { IdempotencyStoreUnavailableError } from './idempotency.store';

/**
 * 503 with Retry-After when the store of Idempotency-Keys (Redis) does not answer: nothing was
 * published, the request may be sent again as it is. Registered globally in AppModule.
 */
@Catch(IdempotencyStoreUnavailableError)
export class IdempotencyUnavailableFilter implements ExceptionFilter<IdempotencyStoreUnavailableError> {
  private readonly logger = new Logger(IdempotencyUnavailableFilter.name);

  catch(error: IdempotencyStoreUnavailableError, host: ArgumentsHost): void {
    this.logger.warn(`answered 503: ${error.message}`);
    void host
      .switchToHttp()
      .getResponse<FastifyReply>()
      .status(HttpStatus.SERVICE_UNAVAILABLE)
      .header('Retry-After', String(RETRY_AFTER_SECONDS))
      .send({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: 'Service Unavailable', message: error.message });
  }
}
