import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestBroker, type TempDir, tempDir, testPrefix } from '@app/testing';
import { TestApi } from './test-api';

const REDOCLY = join(__dirname, '..', '..', '..', 'node_modules', '.bin', 'redocly');

interface LintReport {
  totals: { errors: number; warnings: number };
  problems: { ruleId: string; severity: string; message: string }[];
}

/** `redocly lint` with its recommended rules (no config file), from the devDependency: no network. */
async function lint(file: string): Promise<LintReport> {
  const run = promisify(execFile);
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  // redocly exits 1 when it finds errors; the report is on stdout either way.
  const { stdout } = await run(REDOCLY, ['lint', file, '--format=json'], { env }).catch(
    (error: { stdout?: string }) => ({ stdout: error.stdout ?? '' }),
  );
  return JSON.parse(stdout) as LintReport;
}

describe('the served OpenAPI document (e2e)', () => {
  const prefix = testPrefix('api-openapi-lint');
  let folder: TempDir;

  beforeAll(async () => {
    folder = await tempDir('openapi-lint');
  });

  afterAll(async () => {
    await folder?.remove();
    const broker = await TestBroker.connect();
    await broker.deleteQueues(prefix, 5);
    await broker.close();
  });

  it.each([
    ['without API_TOKEN: no token asked for anywhere', '', []],
    ['with API_TOKEN: a bearer token on POST /message only', 'secret', [{ bearer: [] }]],
  ])('passes redocly lint with no errors, %s', async (_case, token, messageSecurity) => {
    const api = await TestApi.start({ QUEUE_PREFIX: prefix, API_TOKEN: token });
    try {
      const response = await api.request({ method: 'GET', url: '/docs-json' });
      expect(response.statusCode).toBe(200);
      const document = response.json();
      const file = join(folder.path, `openapi-${token || 'open'}.json`);
      await writeFile(file, response.body);

      const report = await lint(file);
      expect(report.problems.filter(({ severity }) => severity === 'error')).toEqual([]);
      expect(report.totals.errors).toBe(0);

      expect(document.servers).toEqual([{ url: '/', description: 'this api' }]);
      expect(document.paths['/message'].post.security).toEqual(messageSecurity);
      expect(document.paths['/health'].get).toMatchObject({ security: [], summary: expect.any(String) });
      expect(document.paths['/metrics'].get).toMatchObject({ security: [], summary: expect.any(String) });
      expect(Object.keys(document.components.securitySchemes ?? {})).toEqual(token ? ['bearer'] : []);
      expect(JSON.stringify(document)).not.toContain('secret');
    } finally {
      await api.close();
    }
  });
});
