import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { RETRY_AFTER_SECONDS } from '../shutdown/shutdown-gate.service';
import { BrokerUnavailableError } from './shard-publisher.service';

/**
 * 503 with Retry-After for a BrokerUnavailableError: the request may be sent again as it is.
 * Registered globally in AppModule.
 */
@Catch(BrokerUnavailableError)
export class BrokerUnavailableFilter implements ExceptionFilter<BrokerUnavailableError> {
  private readonly logger = new Logger(BrokerUnavailableFilter.name);

  catch(error: BrokerUnavailableError, host: ArgumentsHost): void {
    this.logger.warn(`answered 503: ${error.message}`);
    void host
      .switchToHttp()
      .getResponse<FastifyReply>()
      .status(HttpStatus.SERVICE_UNAVAILABLE)
      .header('Retry-After', String(RETRY_AFTER_SECONDS))
      .send({ statusCode: HttpStatus.SERVICE_UNAVAILABLE, error: 'Service Unavailable', message: error.message });
  }
}
