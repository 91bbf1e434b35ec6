/** Extra time after SHUTDOWN_TIMEOUT_MS for closing channels and sockets before the backstop fires. */
const CLOSE_GRACE_MS = 5_000;

/**
 * A backstop for graceful shutdown: once SIGTERM or SIGINT arrives, the process exits with 1 if
 * it is still alive `shutdownTimeoutMs` (plus a grace for closing) later, e.g. because a socket
 * to a stalled broker never closes. The graceful path normally exits long before.
 */
export function exitIfShutdownHangs(app: string, shutdownTimeoutMs: number): void {
  let armed = false;
  // `on`, not `once`: a listener must stay, or a repeated signal after Nest removed its own
  // would kill the process by the signal instead of letting the drain finish.
  const arm = (signal: NodeJS.Signals) => {
    if (armed) return;
    armed = true;
    setTimeout(() => {
      process.stderr.write(
        `${app}: still shutting down ${shutdownTimeoutMs + CLOSE_GRACE_MS} ms after ${signal}; exiting with 1\n`,
      );
      process.exit(1);
    }, shutdownTimeoutMs + CLOSE_GRACE_MS).unref();
  };
  process.on('SIGTERM', arm);
  process.on('SIGINT', arm);
}
