import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { InjectOptions, LightMyRequestResponse as Response } from 'fastify';
import { readApiAppConfig } from '@app/config';
import { setEnv, waitFor } from '@app/testing';
import { createApiApp } from '../src/api.app';

/** The api built in-process exactly as main.ts builds it, answering requests without a socket. */
export class TestApi {
  private closing?: Promise<void>;

  private constructor(
    readonly app: NestFastifyApplication,
    private readonly restoreEnv: () => void,
  ) {}

  /** Builds and initialises the api with `env` over the test environment (quiet logs by default). */
  static async start(env: Record<string, string>): Promise<TestApi> {
    const restoreEnv = setEnv({ LOG_LEVEL: 'fatal', ...env });
    try {
      const app = await createApiApp(readApiAppConfig());
      await app.init();
      await app.getHttpAdapter().getInstance().ready();
      return new TestApi(app, restoreEnv);
    } catch (error) {
      restoreEnv();
      throw error;
    }
  }

  /** Listens on a free port of 127.0.0.1, for tests that need a real socket; resolves with the base URL. */
  async listen(): Promise<string> {
    await this.app.listen(0, '127.0.0.1');
    return this.app.getUrl();
  }

  request(options: InjectOptions): Promise<Response> {
    return this.app.inject(options);
  }

  /** POSTs `body` (serialised unless it is a string or bytes) to /message as JSON. */
  post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return this.request({
      method: 'POST',
      url: '/message',
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });
  }

  async healthStatus(): Promise<number> {
    return (await this.request({ method: 'GET', url: '/health' })).statusCode;
  }

  /** Polls /health until it answers `status`. */
  async waitForHealth(status: 200 | 503, timeoutMs = 15_000): Promise<void> {
    await waitFor(async () => (await this.healthStatus()) === status, {
      description: `GET /health to answer ${status}`,
      timeoutMs,
      intervalMs: 50,
    });
  }

  /** Closes the app and puts the environment back; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= this.app.close().finally(this.restoreEnv);
    return this.closing;
  }
}
