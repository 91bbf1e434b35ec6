import { ConfigValidationError } from './env';

/**
 * Reads configuration before Nest starts, so that a bad variable stops the process with one
 * clear line and exit code 1 instead of a stack trace from deep inside the module graph.
 */
export function readConfigOrExit<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`Configuration error: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}
