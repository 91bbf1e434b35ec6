import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { NodeProcess, REPO_ROOT } from './node-process';

export type AppName = 'api' | 'consumer';

export interface AppEntry {
  /**
   * A TypeScript entry point run through ts-node instead of the built app: a test build of the
   * app, e.g. the consumer with one provider overridden. Test code only; products have no seams.
   */
  entry?: string;
  /** Arguments after the entry point. */
  args?: string[];
}

/** A built app (`dist/apps/<name>/main.js`) running as a real child process, as a container runs it. */
export class AppProcess extends NodeProcess {
  /** Starts the app with `env` on top of this process's environment. */
  static start(
    name: AppName,
    env: Record<string, string | undefined> = {},
    { entry, args = [] }: AppEntry = {},
  ): AppProcess {
    const main = entry ?? join(REPO_ROOT, 'dist', 'apps', name, 'main.js');
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first (npm test does)`);
    const runner =
      entry === undefined ? [] : ['-r', 'ts-node/register/transpile-only', '-r', 'tsconfig-paths/register'];
    const options = { name, args: [...runner, main, ...args], env: { LOG_FORMAT: 'pretty', ...env } };
    return new AppProcess(name, NodeProcess.spawn(options), options);
  }

  /** The address its ready line names (`listening at http://127.0.0.1:<port>: ...`), once it is listening. */
  async listeningUrl(timeoutMs = 20_000): Promise<string> {
    const [, url] = await this.waitForLog(/listening at (http:\/\/\S+?): /, timeoutMs);
    return url;
  }
}
