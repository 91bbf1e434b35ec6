import { ConfigValidationError } from '@app/config';

/** Prints why the app cannot start, in one line for a configuration error, and exits with 1. */
export function exitOnBootError(app: string): (error: unknown) => never {
  return (error: unknown) => {
    if (error instanceof ConfigValidationError) {
      process.stderr.write(`${app}: configuration error: ${error.message}\n`);
    } else {
      process.stderr.write(
        `${app} failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
      );
    }
    process.exit(1);
  };
}

/**
 * Reads configuration before Nest starts, so that a bad variable stops the process with one
 * clear line and exit code 1 instead of a stack trace from deep inside the module graph.
 */
export function readConfigOrExit<T>(app: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    return exitOnBootError(app)(error);
  }
}
