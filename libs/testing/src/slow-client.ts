import { type Socket, connect } from 'node:net';

/**
 * A raw HTTP/1.1 client over one TCP connection that sends a request as slowly as a test wants:
 * headers and body a piece at a time, or never finished. It records what the server answered and
 * when it closed the connection.
 */
export class SlowClient {
  /** Everything the server sent, as text. */
  received = '';
  /** When the server closed the connection (epoch ms), once it has. */
  closedAt?: number;
  readonly closed: Promise<void>;
  private readonly socket: Socket;
  private trickling?: NodeJS.Timeout;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (this.received += chunk));
    // A reset after the answer is as good a close as any here.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closedAt = Date.now();
        this.stopTrickling();
        resolve();
      }),
    );
  }

  /** Connects to the host and port of `baseUrl`. */
  static connect(baseUrl: string): Promise<SlowClient> {
    const { hostname, port } = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.off('error', reject);
        resolve(new SlowClient(socket));
      });
      socket.once('error', reject);
    });
  }

  /** The head of a `POST /message` declaring `contentLength` bytes of JSON. */
  static postHead(contentLength: number, headers: Record<string, string> = {}): string {
    const lines = Object.entries({ 'content-type': 'application/json', ...headers }).map(([k, v]) => `${k}: ${v}`);
    return ['POST /message HTTP/1.1', 'host: test', `content-length: ${contentLength}`, ...lines, '', ''].join('\r\n');
  }

  get isClosed(): boolean {
    return this.closedAt !== undefined;
  }

  /** The status of the first answer, once its status line has arrived. */
  get status(): number | undefined {
    const match = /^HTTP\/1\.1 (\d{3}) /.exec(this.received);
    return match === null ? undefined : Number(match[1]);
  }

  /** A header of the first answer (name in lower case), once it has arrived. */
  header(name: string): string | undefined {
    const head = this.received.split('\r\n\r\n')[0];
    const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name}:`));
    return line?.slice(name.length + 1).trim();
  }

  write(text: string): void {
    if (!this.isClosed) this.socket.write(text);
  }

  /** Sends `text` one character every `everyMs`, until it is all sent or the connection closes. */
  trickle(text: string, everyMs: number): void {
    this.stopTrickling();
    let next = 0;
    this.trickling = setInterval(() => {
      if (next >= text.length || this.isClosed) return this.stopTrickling();
      this.write(text[next++]);
    }, everyMs);
  }

  /** Closes the connection from this side; safe to call after the server closed it. */
  destroy(): void {
    this.stopTrickling();
    this.socket.destroy();
  }

  private stopTrickling(): void {
    clearInterval(this.trickling);
    this.trickling = undefined;
  }
}
