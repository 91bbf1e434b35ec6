import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { ApiBusyError } from './admission/admission-gate';
import { BrokerUnavailableError } from './broker/shard-publisher.service';
import { IdempotencyStoreUnavailableError } from './idempotency/idempotency.store';
import { RETRY_AFTER_SECONDS } from './shutdown/shutdown-gate.service';

/**
 * 503 with Retry-After when something the api depends on did not answer: the broker (unreachable,
 * refused, or no confirm in time) or the store of Idempotency-Keys (Redis); or when the api has all
 * the work in progress it takes (ApiBusyError). The request may be sent
 * again as it is. Registered globally in AppModule.
 */
@Catch(BrokerUnavailableError, IdempotencyStoreUnavailableError, ApiBusyError)
export class ServiceUnavailableFilter implements ExceptionFilter<Error> {
  private readonly logger = new Logger(ServiceUnavailableFilter.name);

  catch(error: BrokerUnavailableError | IdempotencyStoreUnavailableError | ApiBusyError, host: ArgumentsHost): void {
    this.logger.warn(`answered 503: ${error.message}`);
    void host
      .switchToHttp()
      .getResponse<FastifyReply>()
      .status(HttpStatus.SERVICE_UNAVAILABLE)
      .header('Retry-After', String(RETRY_AFTER_SECONDS))
      .send({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: 'Service Unavailable', message: error.message });
  }
}
