import { createLogger, logEvent, nestLogLevels } from './logger';

function capture(format: 'json' | 'pretty', write: (logger: ReturnType<typeof createLogger>) => void): string[] {
  const lines: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    write(createLogger({ logFormat: format, logLevel: 'info' }, 'test'));
  } finally {
    spy.mockRestore();
  }
  return lines;
}

describe('logger', () => {
  it('maps our levels onto Nest levels, each including the ones above it', () => {
    expect(nestLogLevels('info')).toEqual(['fatal', 'error', 'warn', 'log']);
    expect(nestLogLevels('error')).toEqual(['fatal', 'error']);
    expect(nestLogLevels('verbose')).toHaveLength(6);
  });

  it('prints one JSON object per line, with the fields of a log event at the top level', () => {
    const lines = capture('json', (logger) => {
      logger.log(logEvent('worker 2-4 wrote 5 entries', { worker: '2-4', shard: 2, entries: 5 }), 'Shard 2');
      logger.log('plain text', 'Ctx');
    });
    expect(lines).toHaveLength(2);
    const [event, plain] = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(event).toMatchObject({
      level: 'log',
      message: 'worker 2-4 wrote 5 entries',
      context: 'Shard 2',
      worker: '2-4',
      shard: 2,
      entries: 5,
    });
    expect(plain).toMatchObject({ message: 'plain text', context: 'Ctx' });
  });

  it('prints a log event as its text for a person', () => {
    const [line] = capture('pretty', (logger) =>
      logger.log(logEvent('worker 2-4 wrote 5 entries', { shard: 2 }), 'Shard 2'),
    );
    expect(line).toContain('[Shard 2] worker 2-4 wrote 5 entries');
    expect(line).not.toContain('shard: 2');
  });

  it("prints Nest's module and route wiring at debug only, and the app's own lines at info", () => {
    const lines = capture('pretty', (logger) => {
      logger.log('AppModule dependencies initialized', 'InstanceLoader');
      logger.log('Mapped {/message, POST} route', 'RouterExplorer');
      logger.log('Nest application successfully started', 'NestApplication');
      logger.log('listening at http://127.0.0.1:3000: POST /message', 'Ready');
    });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('listening at http://127.0.0.1:3000');
  });
});
