#!/usr/bin/env node
'use strict';
/**
 * `npm start` (after `npm run build`): runs the built api and consumer in one terminal, each line
 * prefixed with `[api]` or `[consumer]` in its own colour (once: the app's own prefix is dropped). Ctrl-C or SIGTERM reaches both apps
 * once, and they drain and exit; if one app exits on its own, the other is stopped gracefully and
 * this exits with 1. It exits with 0 only when both apps stopped cleanly on a signal.
 *
 * It reads RABBITMQ_URL only to say early, in one line, that no broker answers there (no node of
 * a cluster's node list): the apps start anyway, keep retrying, and the api answers 503 until the
 * broker is up.
 */
const { spawn } = require('node:child_process');
const { existsSync } = require('node:fs');
const { connect } = require('node:net');
const { join } = require('node:path');
const { LogError, LogOutput, Logger, createConcurrently } = require('concurrently');

const ROOT = join(__dirname, '..');
/** The apps' own default (libs/config), so the probe looks where they will connect. */
const DEFAULT_RABBITMQ_URL = 'amqp://guest:guest@localhost:5672';
const PROBE_TIMEOUT_MS = 1500;
const APPS = [
  { name: 'api', prefixColor: 'cyan.bold' },
  { name: 'consumer', prefixColor: 'magenta.bold' },
];
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'];
const REPEAT_SIGNAL_QUIET_MS = 1000;

function say(line) {
  process.stderr.write(`[start] ${line}\n`);
}

function redact(url) {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

/** Resolves with undefined when a TCP connection to the broker's host:port opens, else with why not. */
function probeBroker(url) {
  let target;
  try {
    const parsed = new URL(url);
    const host = parsed.hostname.replace(/^\[|\]$/g, '') || 'localhost';
    target = { host, port: Number(parsed.port || (parsed.protocol === 'amqps:' ? 5671 : 5672)) };
  } catch {
    // Not a URL: the apps refuse it at start with a line naming RABBITMQ_URL.
    return Promise.resolve(undefined);
  }
  return new Promise((resolve) => {
    const socket = connect(target);
    const done = (problem) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(`no answer within ${PROBE_TIMEOUT_MS} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (error) => done(error.code ?? error.message));
  });
}

/** concurrently's logger, without the `[api] ` an app's own logger puts at the start of each line. */
class OnePrefixLogger extends Logger {
  logCommandText(text, command) {
    super.logCommandText(text.replace(new RegExp(`(^|\\n)\\[${command.name}\\] `, 'g'), '$1'), command);
  }
}

/**
 * concurrently's own spawn, but each app in its own process group: a terminal's Ctrl-C then
 * reaches the apps only through this script, once. Twice (the terminal's and a forwarded one) can
 * land after Nest has finished draining and removed its handler, killing the app with SIGINT.
 */
function spawnInOwnGroup(command, options) {
  return spawn('/bin/sh', ['-c', command], { ...options, detached: true });
}

async function main() {
  const missing = APPS.map(({ name }) => join(ROOT, 'dist', 'apps', name, 'main.js')).filter(
    (file) => !existsSync(file),
  );
  if (missing.length > 0) {
    say(`${missing.join(', ')} missing: run \`npm run build\` first (\`npm start\` does)`);
    return 1;
  }

  const url = process.env.RABBITMQ_URL?.trim() || DEFAULT_RABBITMQ_URL;
  // A cluster's node list: one line only when no node answers.
  const problems = await Promise.all(url.split(',').map((node) => probeBroker(node.trim())));
  const problem = problems.includes(undefined) ? undefined : [...new Set(problems)].join(', ');
  if (problem !== undefined) {
    say(
      `RabbitMQ is not reachable at ${redact(url)} (${problem}); starting both apps anyway, they connect once it is up ` +
        '(the api answers 503 until then). Start one with `docker compose up -d rabbitmq`, or on Debian `rabbitmq-server -detached`.',
    );
  }

  const logger = new OnePrefixLogger({ prefixFormat: 'name' });
  logger.setPrefixLength(Math.max(...APPS.map(({ name }) => name.length)));
  const { commands, result } = createConcurrently(
    // `exec` replaces the shell, so signals and exit codes reach node directly.
    APPS.map(({ name, prefixColor }) => ({
      name,
      prefixColor,
      command: `exec ${JSON.stringify(process.execPath)} dist/apps/${name}/main.js`,
    })),
    {
      cwd: ROOT,
      logger,
      outputStream: process.stdout,
      spawn: spawnInOwnGroup,
      controllers: [new LogError({ logger }), new LogOutput({ logger })],
    },
  );

  /** Why the apps are stopping: a signal's name, or the app that exited first. */
  let stopping;
  /** Raw exit code or signal of each app that has exited. */
  const exits = new Map();
  const stopAll = (signal) => {
    for (const command of commands) if (!exits.has(command.name)) command.process?.kill(signal);
  };
  let signalledAt = 0;
  for (const signal of SIGNALS) {
    process.on(signal, () => {
      if (stopping !== undefined) {
        // A terminal's Ctrl-C reaches npm and this script both, and npm forwards it: say nothing then.
        if (Date.now() - signalledAt > REPEAT_SIGNAL_QUIET_MS) {
          say(`${signal} again: the apps are already stopping (draining takes at most SHUTDOWN_TIMEOUT_MS)`);
        }
        return;
      }
      stopping = signal;
      signalledAt = Date.now();
      // The apps drain on SIGINT and SIGTERM; a hang-up asks for the same graceful stop.
      stopAll(signal === 'SIGHUP' ? 'SIGTERM' : signal);
    });
  }

  for (const command of commands) {
    command.process?.once('exit', (code, signal) => exits.set(command.name, code ?? signal));
    command.close.subscribe(({ exitCode }) => {
      logger.logCommandEvent(`exited with ${exitCode}`, command);
      if (stopping !== undefined) return;
      stopping = `${command.name} exiting`;
      const others = commands.filter((other) => !exits.has(other.name));
      if (others.length === 0) return;
      say(`${command.name} exited on its own; stopping ${others.map((other) => other.name).join(', ')}`);
      stopAll('SIGTERM');
    });
  }

  await result.catch(() => undefined);
  if (!SIGNALS.includes(stopping)) return 1;
  const failed = [...exits].filter(([, code]) => code !== 0);
  if (failed.length > 0) {
    say(`not a clean stop: ${failed.map(([name, code]) => `${name} exited with ${code}`).join(', ')}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    say(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    process.exitCode = 1;
  },
);
