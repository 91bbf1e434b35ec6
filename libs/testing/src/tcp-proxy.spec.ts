import { type AddressInfo, type Server, type Socket, createConnection, createServer } from 'node:net';
import { TcpProxy } from './tcp-proxy';
import { waitFor } from './wait-for';

/** Connects through the proxy and resolves with the first reply to `text`, or with 'closed'. */
function roundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => socket.write(text));
    socket.once('data', (data) => {
      resolve(data.toString());
      socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.once('close', () => resolve('closed'));
  });
}

describe('TcpProxy', () => {
  let echo: Server;
  let proxy: TcpProxy;

  beforeEach(async () => {
    echo = createServer((socket) => socket.on('error', () => socket.destroy()).pipe(socket));
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    proxy = await TcpProxy.start({ host: '127.0.0.1', port: (echo.address() as AddressInfo).port });
  });

  afterEach(async () => {
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  it('forwards both ways', async () => {
    await expect(roundTrip(proxy.port, 'ping')).resolves.toBe('ping');
  });

  it('cut() resets live connections and refuses new ones until restore()', async () => {
    const live: Socket = createConnection({ host: '127.0.0.1', port: proxy.port });
    live.on('error', () => undefined);
    const closed = new Promise((resolve) => live.once('close', resolve));
    await waitFor(() => proxy.connectionCount === 2, { description: 'the live connection', timeoutMs: 2_000 });

    proxy.cut();
    await closed;
    expect(proxy.connectionCount).toBe(0);
    await expect(roundTrip(proxy.port, 'ping')).resolves.toBe('closed');
    expect(proxy.refusedCount).toBe(1);

    proxy.restore();
    await expect(roundTrip(proxy.port, 'pong')).resolves.toBe('pong');
  });

  it('stall() holds what is sent, on open connections, until restore()', async () => {
    const socket = createConnection({ host: '127.0.0.1', port: proxy.port });
    socket.on('error', () => undefined);
    const received: string[] = [];
    socket.on('data', (data) => received.push(data.toString()));
    await waitFor(() => proxy.connectionCount === 2, { description: 'the connection', timeoutMs: 2_000 });
    socket.write('one');
    await waitFor(() => received.join('') === 'one', { description: 'the first echo', timeoutMs: 2_000 });

    proxy.stall();
    socket.write('two');
    // Nothing to poll for: a stalled proxy's promise is that nothing arrives in the meantime.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received.join('')).toBe('one');
    expect(proxy.connectionCount).toBe(2);

    proxy.restore();
    await waitFor(() => received.join('') === 'onetwo', { description: 'the held echo', timeoutMs: 2_000 });
    socket.destroy();
  });

  it('rewrites an amqp URL to go through it', () => {
    expect(proxy.amqpUrlFor('amqp://guest:secret@localhost:5672/vhost?heartbeat=5')).toBe(
      `amqp://guest:secret@127.0.0.1:${proxy.port}/vhost?heartbeat=5`,
    );
  });

  it('close() can be called twice', async () => {
    await proxy.close();
    await expect(proxy.close()).resolves.toBeUndefined();
  });
});
