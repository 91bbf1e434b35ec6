/**
 * Everything a benchmark run starts, as plain JavaScript in a folder of its own:
 * - a copy of the built apps (`dist/apps/<app>/main.js`), so that a rebuild meanwhile (`npm test`
 *   builds, and deletes `dist/apps/<app>` first) cannot pull them away mid-run;
 * - the framework-free baselines compiled from TypeScript, so that they run without ts-node,
 *   whose compiler would add about 60 MB to their memory and seconds to each start.
 * The folder is inside the repository (`.tmp/` is ignored) so that node_modules resolve from it.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ts from 'typescript';

export const ROOT = join(__dirname, '..', '..');

export interface BenchBuild {
  dir: string;
  apiMain: string;
  consumerMain: string;
  apiBaseline: string;
  drainBaseline: string;
  /** The consumer with its Dedupe provider overridden (disabled), to measure what exactly-once costs. */
  consumerNoDedupe: string;
  remove(): void;
}

const BASELINES = [
  'tools/bench/baselines/api-baseline.ts',
  'tools/bench/baselines/drain-baseline.ts',
  'tools/bench/baselines/consumer-no-dedupe.ts',
];

export interface PrepareOptions {
  /** Names the folder; the process id by default. */
  tag?: string;
  /** The apps to copy (both by default); the others' paths are left dangling. */
  apps?: ReadonlyArray<'api' | 'consumer'>;
}

/** Copies the built apps and compiles the baselines into `.tmp/bench-<tag>`. */
export function prepareBuild({
  tag = String(process.pid),
  apps = ['api', 'consumer'],
}: PrepareOptions = {}): BenchBuild {
  const dir = join(ROOT, '.tmp', `bench-${tag}`);
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  remove();
  try {
    for (const app of apps) {
      const built = join(ROOT, 'dist', 'apps', app, 'main.js');
      if (!existsSync(built)) throw new Error(`${built} is missing: run \`npm run build\` first`);
      mkdirSync(join(dir, app), { recursive: true });
      copyFileSync(built, join(dir, app, 'main.js'));
    }
    compileBaselines(join(dir, 'js'));
    return {
      dir,
      apiMain: join(dir, 'api', 'main.js'),
      consumerMain: join(dir, 'consumer', 'main.js'),
      apiBaseline: join(dir, 'js', 'tools', 'bench', 'baselines', 'api-baseline.js'),
      drainBaseline: join(dir, 'js', 'tools', 'bench', 'baselines', 'drain-baseline.js'),
      consumerNoDedupe: join(dir, 'js', 'tools', 'bench', 'baselines', 'consumer-no-dedupe.js'),
      remove,
    };
  } catch (error) {
    remove();
    throw error;
  }
}

/**
 * Emits the baselines and the libraries they import, without type checking (`npx tsc` checks
 * them), and makes each `@app/<lib>` path alias a package under `<out>/node_modules` that points
 * at the emitted library.
 */
function compileBaselines(out: string): void {
  const configPath = join(ROOT, 'tsconfig.json');
  const read: { config?: unknown; error?: ts.Diagnostic } = ts.readConfigFile(configPath, (path) =>
    ts.sys.readFile(path),
  );
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(read.config, ts.sys, ROOT, undefined, configPath);
  const program = ts.createProgram({
    rootNames: BASELINES.map((file) => join(ROOT, file)),
    options: {
      ...parsed.options,
      noCheck: true,
      outDir: out,
      rootDir: ROOT,
      sourceMap: false,
      declaration: false,
      incremental: false,
    },
  });
  const { emitSkipped, diagnostics } = program.emit();
  if (emitSkipped) {
    const text = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')).join('\n');
    throw new Error(`compiling the baselines failed:\n${text}`);
  }
  for (const [alias, [target]] of Object.entries(parsed.options.paths ?? {})) {
    if (alias.endsWith('/*')) continue;
    const shim = join(out, 'node_modules', alias, 'index.js');
    mkdirSync(dirname(shim), { recursive: true });
    writeFileSync(shim, `module.exports = require(${JSON.stringify(join(out, target))});\n`);
  }
}
