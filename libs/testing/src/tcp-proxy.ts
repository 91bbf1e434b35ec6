import { type AddressInfo, type Server, type Socket, createConnection, createServer } from 'node:net';

export interface TcpProxyTarget {
  host: string;
  port: number;
}

/**
 * A TCP proxy a test owns, on an ephemeral 127.0.0.1 port, forwarding to `target` (RabbitMQ by
 * default): `cut()` simulates losing the broker without touching the broker the other tests share.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  /** Each live connection as its [client, upstream] pair, to stop and resume forwarding. */
  private readonly pairs = new Set<[Socket, Socket]>();
  private isCut = false;
  private isStalled = false;
  private refused = 0;
  private closing?: Promise<void>;

  private constructor(private readonly target: TcpProxyTarget) {
    this.server = createServer((client) => this.accept(client));
  }

  /** Starts a proxy listening on an ephemeral port of 127.0.0.1. */
  static async start(target: TcpProxyTarget = { host: '127.0.0.1', port: 5672 }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => {
        proxy.server.off('error', reject);
        resolve();
      });
    });
    return proxy;
  }

  /** Starts a proxy to the broker of an amqp:// URL. */
  static forAmqpUrl(url: string): Promise<TcpProxy> {
    const { hostname, port } = new URL(url);
    return TcpProxy.start({ host: hostname || '127.0.0.1', port: Number(port || 5672) });
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `url` (credentials, vhost, query kept) pointed at this proxy instead of the broker. */
  amqpUrlFor(url: string): string {
    const proxied = new URL(url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(this.port);
    return proxied.toString();
  }

  /** Live client and upstream sockets; 0 once every connection through the proxy is gone. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Connections refused while cut, e.g. to see that a client keeps trying. */
  get refusedCount(): number {
    return this.refused;
  }

  /** Resets every live connection and refuses new ones until `restore()`. */
  cut(): void {
    this.isCut = true;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
    this.pairs.clear();
  }

  /**
   * Keeps every connection open but forwards nothing either way, as a network partition does:
   * what is sent waits in the proxy (and the peers' heartbeats eventually fail) until `restore()`.
   */
  stall(): void {
    this.isStalled = true;
    for (const pair of this.pairs) unpipe(pair);
  }

  /** Forwards new connections again, and resumes stalled ones. */
  restore(): void {
    this.isCut = false;
    if (this.isStalled) {
      this.isStalled = false;
      for (const pair of this.pairs) pipe(pair);
    }
  }

  /** Resets every connection and stops listening; safe to call twice. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve, reject) => {
      this.cut();
      this.server.close((error) => (error ? reject(error) : resolve()));
    });
    return this.closing;
  }

  private accept(client: Socket): void {
    client.on('error', () => client.destroy());
    if (this.isCut) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(this.target);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    for (const [from, to] of [pair, [upstream, client]]) {
      this.sockets.add(from);
      // One side gone takes the other with it, as a lost network would.
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        this.pairs.delete(pair);
        to.destroy();
      });
    }
    if (!this.isStalled) pipe(pair);
  }
}

function pipe([client, upstream]: [Socket, Socket]): void {
  client.pipe(upstream);
  upstream.pipe(client);
}

function unpipe([client, upstream]: [Socket, Socket]): void {
  client.unpipe(upstream);
  upstream.unpipe(client);
  client.pause();
  upstream.pause();
}
