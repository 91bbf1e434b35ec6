import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';

const ROOT = join(__dirname, '..', '..');

interface Healthcheck {
  test: string[];
}

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment: Record<string, string>;
  ports?: Array<string | { published?: number | string; target: number }>;
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  stop_grace_period?: string;
}

interface ComposeConfig {
  services: Record<string, ComposeService>;
  volumes: Record<string, unknown>;
}

/** `${NAME:-default}`, `${NAME:?error}`, `${NAME}` and the escape `$$` as compose fills them in, from `env`. */
function interpolate(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}/g, (match, name?: string, kind?: string, word?: string) => {
    if (match === '$$') return '$';
    const value = env[name ?? ''];
    if (value !== undefined && value !== '') return value;
    if (kind === '?') throw new Error(`compose refuses to start: ${name} is not set: ${word}`);
    return kind === '-' ? (word ?? '') : '';
  });
}

/** The variables `.env.example` sets (its commented lines left out), as compose reads a `.env`. */
async function exampleEnv(): Promise<Record<string, string>> {
  const text = await readFile(join(ROOT, '.env.example'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .map((line) => /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line))
      .flatMap((match) => (match === null ? [] : [[match[1], match[2]]])),
  );
}

/**
 * The file as compose resolves it, with no compose binary: variables filled in from `env` (by
 * default what `.env.example` sets, as after `cp .env.example .env`), anchors and `<<` merge keys
 * applied. `npm run check:compose` runs the real `docker-compose config -q` where compose is
 * installed (CI does).
 */
async function resolvedConfig(env?: NodeJS.ProcessEnv): Promise<ComposeConfig> {
  env ??= await exampleEnv();
  const text = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
  const config = parse(interpolate(text, env), { merge: true }) as ComposeConfig;
  // Compose hands every environment value to the container as a string.
  for (const service of Object.values(config.services)) {
    service.environment = Object.fromEntries(
      Object.entries(service.environment ?? {}).map(([name, value]) => [name, String(value)]),
    );
  }
  return config;
}

function seconds(duration: string | undefined): number {
  const match = /^(\d+)(s|m)$/.exec(duration ?? '');
  if (match === null) throw new Error(`unexpected duration ${duration}`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

function publishedPorts(service: ComposeService): string[] {
  return (service.ports ?? []).map((port) =>
    typeof port === 'string' ? port : `${port.published ?? ''}:${port.target}`,
  );
}

describe('docker-compose.yml', () => {
  let config: ComposeConfig;

  beforeAll(async () => {
    config = await resolvedConfig();
  });

  it('runs RabbitMQ 3.12 with management and a health check, the api and the consumer', () => {
    expect(Object.keys(config.services).sort()).toEqual(['api', 'consumer', 'credentials', 'rabbitmq', 'redis']);
    const { rabbitmq } = config.services;
    expect(rabbitmq.image).toBe('rabbitmq:3.12-management');
    expect(rabbitmq.healthcheck?.test).toEqual(['CMD', 'rabbitmq-diagnostics', '-q', 'ping']);
    expect(publishedPorts(rabbitmq)).toEqual(['127.0.0.1:5672:5672', '127.0.0.1:15672:15672']);
  });

  it('runs Redis with a health check and persistence, and the api keeps its Idempotency-Keys there', () => {
    const { redis, api } = config.services;
    expect(redis.image).toMatch(/^redis:7/);
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(publishedPorts(redis)).toEqual(['127.0.0.1:6379:6379']);
    expect(redis.volumes).toEqual(['redis-data:/data']);
    expect(api.environment.REDIS_URL).toBe('redis://redis:6379');
    expect(api.depends_on?.redis.condition).toBe('service_healthy');
  });

  it('publishes every port on the loopback interface only, unless BIND_ADDRESS says otherwise', async () => {
    const ports = Object.values(config.services).flatMap(publishedPorts);
    expect(ports.length).toBeGreaterThanOrEqual(4);
    for (const port of ports) expect(port).toMatch(/^127\.0\.0\.1:/);
    const open = await resolvedConfig({ ...(await exampleEnv()), BIND_ADDRESS: '0.0.0.0' });
    expect(publishedPorts(open.services.api)).toEqual(['0.0.0.0:3000:3000']);
  });

  it('holds no credentials: a first service chooses them, from the environment or at random', async () => {
    const text = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
    expect(text).not.toMatch(/guest|RABBITMQ_DEFAULT_(USER|PASS)/i);
    // A bare `docker compose up` resolves: nothing is required from the shell or an .env file.
    const bare = await resolvedConfig({});
    const { credentials, rabbitmq } = bare.services;
    expect(credentials.command).toEqual(['node', 'docker/compose-credentials.js']);
    expect(credentials.volumes).toEqual(['credentials:/credentials']);
    // The broker reads the generated configuration as its conf.d, once the credentials are chosen.
    expect(rabbitmq.volumes).toContain('credentials:/etc/rabbitmq/conf.d:ro');
    expect(rabbitmq.depends_on?.credentials.condition).toBe('service_completed_successfully');

    const chosen = await resolvedConfig({ RABBITMQ_USER: 'ingest', RABBITMQ_PASSWORD: 's3cret' });
    expect(chosen.services.credentials.environment).toEqual({ RABBITMQ_USER: 'ingest', RABBITMQ_PASSWORD: 's3cret' });
  });

  it('has both apps connect with RABBITMQ_URL when set, else with the generated URL', async () => {
    for (const name of ['api', 'consumer']) {
      const service = config.services[name];
      expect(service.volumes).toContain('credentials:/run/credentials:ro');
      expect(service.environment.RABBITMQ_URL).toBe('');
      const chosen = await resolvedConfig({ ...(await exampleEnv()), RABBITMQ_URL: 'amqp://u:p@elsewhere:5672' });
      expect(chosen.services[name].environment.RABBITMQ_URL).toBe('amqp://u:p@elsewhere:5672');
    }
  });

  it('generates credentials once, keeps them, and refuses characters an amqp:// URL would mangle', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { execFile } = await import('node:child_process');
    const { promisify } = await import('node:util');
    const dir = await mkdtemp(join(tmpdir(), 'credentials-'));
    const script = join(ROOT, 'docker', 'compose-credentials.js');
    const run = (env: Record<string, string>) =>
      promisify(execFile)(process.execPath, [script], { env: { CREDENTIALS_DIR: dir, ...env } });
    try {
      await run({});
      const url = new URL((await readFile(join(dir, 'amqp-url'), 'utf8')).trim());
      expect(url.username).toBe('pipeline');
      expect(url.password.length).toBeGreaterThanOrEqual(40);
      expect(url.host).toBe('rabbitmq:5672');
      const conf = await readFile(join(dir, '10-pipeline.conf'), 'utf8');
      expect(conf).toContain(`default_pass = ${url.password}\n`);
      await run({});
      expect((await readFile(join(dir, 'amqp-url'), 'utf8')).trim()).toBe(url.href);
      await run({ RABBITMQ_USER: 'ingest', RABBITMQ_PASSWORD: 's3cret' });
      expect((await readFile(join(dir, 'amqp-url'), 'utf8')).trim()).toBe('amqp://ingest:s3cret@rabbitmq:5672');
      await expect(run({ RABBITMQ_PASSWORD: 'with space' })).rejects.toThrow(/RABBITMQ_PASSWORD may hold only/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['api', 'dist/apps/api/main.js', 3000],
    ['consumer', 'dist/apps/consumer/main.js', 3001],
  ])('starts the %s from the Dockerfile once RabbitMQ is healthy, and checks its /health', (name, main, port) => {
    const service = config.services[name];
    expect(service.build).toBeDefined();
    expect(service.command?.slice(0, 2)).toEqual(['sh', '-c']);
    expect(service.command?.[2]).toBe(
      `RABBITMQ_URL="\${RABBITMQ_URL:-$(cat /run/credentials/amqp-url)}" exec node ${main}`,
    );
    expect(service.depends_on?.rabbitmq.condition).toBe('service_healthy');
    const check = service.healthcheck?.test.join(' ') ?? '';
    expect(check).toContain(`http://127.0.0.1:${port}/health`);
    // A graceful drain gets all of SHUTDOWN_TIMEOUT_MS before Docker's SIGKILL.
    const shutdownMs = Number(service.environment.SHUTDOWN_TIMEOUT_MS);
    expect(seconds(service.stop_grace_period) * 1000).toBeGreaterThan(shutdownMs);
  });

  it('passes settings from the shell to both apps, as compose does', async () => {
    const quorum = await resolvedConfig({ ...(await exampleEnv()), QUEUE_TYPE: 'quorum', SHARDS_COUNT: '8' });
    for (const name of ['api', 'consumer']) {
      expect(quorum.services[name].environment).toMatchObject({ QUEUE_TYPE: 'quorum', SHARDS_COUNT: '8' });
    }
  });

  it('gives both apps the same broker and shard layout', () => {
    const { api, consumer } = config.services;
    for (const variable of ['RABBITMQ_URL', 'SHARDS_COUNT', 'QUEUE_PREFIX', 'QUEUE_TYPE']) {
      expect(`${variable}=${consumer.environment[variable]}`).toBe(`${variable}=${api.environment[variable]}`);
    }
  });

  it('publishes the api on 3000, and the consumer on no fixed host port so that it can scale', () => {
    expect(publishedPorts(config.services.api)).toEqual(['127.0.0.1:3000:3000']);
    expect(publishedPorts(config.services.consumer)).toEqual(['127.0.0.1::3001']);
  });

  it('writes the batch files to a named volume', () => {
    const { consumer } = config.services;
    const dataDir = consumer.environment.DATA_OUTPUT_DIR;
    const mount = consumer.volumes?.find((volume) => volume.split(':')[1] === dataDir);
    expect(mount).toBeDefined();
    expect(Object.keys(config.volumes)).toContain(mount?.split(':')[0]);
  });
});

describe('Dockerfile', () => {
  let dockerfile: string;
  beforeAll(async () => {
    dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  });

  it('builds in one stage and runs production dependencies only, as a user other than root', () => {
    const [, build, runtime] = dockerfile.split(/^FROM /m);
    expect(build).toMatch(/^node:20\S* AS build\n/);
    expect(build).toMatch(/^RUN npm ci\b/m);
    expect(build).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^node:20\S* AS runtime\n/);
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^USER (?!root\b)\w+$/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/apps\/api\/main\.js"\]$/m);
  });

  it('has in `dependencies` every package the built apps load (webpack leaves node_modules out)', async () => {
    const { builtinModules } = await import('node:module');
    const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    for (const app of ['api', 'consumer']) {
      const bundle = await readFile(join(ROOT, 'dist', 'apps', app, 'main.js'), 'utf8').catch(() => {
        throw new Error(`dist/apps/${app}/main.js is missing: run \`npm run build\` first (npm test does)`);
      });
      const required = [...bundle.matchAll(/require\(["']([^"']+)["']\)/g)].map((match) => match[1]);
      expect(required.length).toBeGreaterThan(0);
      const packages = required
        .filter((id) => !id.startsWith('node:') && !builtinModules.includes(id) && !id.startsWith('.'))
        .map((id) => (id.startsWith('@') ? id.split('/').slice(0, 2).join('/') : id.split('/')[0]));
      const missing = [...new Set(packages)].filter((name) => manifest.dependencies[name] === undefined);
      expect(`${app} loads ${missing.join(', ') || 'nothing'} from outside dependencies`).toBe(
        `${app} loads nothing from outside dependencies`,
      );
    }
  });
});
