import { type INestApplication, Logger } from '@nestjs/common';

/**
 * The last line of an app's start-up: the address it listens at (the port it got, when asked for
 * port 0) and what it serves there, e.g.
 * `listening at http://127.0.0.1:3000: POST /message, /docs, /health, /metrics`.
 */
export async function logReady(app: INestApplication, serves: string): Promise<void> {
  new Logger('Ready').log(`listening at ${await app.getUrl()}: ${serves}`);
}
