/**
 * A fault-injecting TCP proxy for fault tests: clients connect to it on
 * loopback, it forwards bytes both ways to one upstream `host:port`, and the
 * test changes the network at run time:
 *
 * - `setDelay(ms)`: every chunk is held `ms` before it is forwarded, in both
 *   directions, in order (chunks read already keep the delay they had).
 * - `setDrop(p)`: each new connection is, with probability p, accepted and
 *   reset at once (the kernel completes the handshake before the proxy sees
 *   it, so the client sees a connection that resets, not a refusal).
 * - `cut()`: a partition. Open connections are reset; new ones are accepted
 *   and reset; until `heal()`.
 * - `blackhole()`: a network that silently loses packets. Connections stay
 *   open and bytes are read but not forwarded, so requests hang; new
 *   connections are accepted but not connected upstream. The bytes are held,
 *   up to a window per direction, as TCP would retransmit them: after
 *   `heal()` they flow again, as after a partition shorter than TCP's
 *   timeout.
 *
 * Each connection pipes with backpressure: a side is paused while more than
 * {@link WINDOW_BYTES} wait to be forwarded. `stop()` resets every connection
 * and resolves once every socket is closed.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface FaultProxyOptions {
  readonly upstream: { readonly host?: string; readonly port: number };
  /** Port to listen on, on 127.0.0.1; 0 (the default) picks a free one. */
  readonly port?: number;
  /** Random numbers in [0, 1) for `setDrop` (Math.random by default). */
  readonly random?: () => number;
}

export type FaultMode = 'open' | 'cut' | 'blackhole';

export interface FaultProxyStats {
  /** Connections accepted, whatever became of them. */
  readonly accepted: number;
  /** Connections open now. */
  readonly active: number;
  /** New connections reset by `setDrop`. */
  readonly dropped: number;
  /** New connections reset during `cut()`. */
  readonly refused: number;
  /** Open connections reset by `cut()`. */
  readonly cut: number;
  readonly bytesToUpstream: number;
  readonly bytesToClient: number;
  /** Bytes read and not yet forwarded (delayed, held by a blackhole, or waiting for a slow reader). */
  readonly bytesHeld: number;
}

/** Bytes waiting to be forwarded, per direction, before the sender is paused. */
export const WINDOW_BYTES = 1 << 20;

export class FaultProxy {
  readonly #options: FaultProxyOptions;
  readonly #random: () => number;
  readonly #connections = new Set<Connection>();
  #server: Server | undefined;
  #state: 'idle' | 'listening' | 'stopped' = 'idle';
  #port = 0;
  #mode: FaultMode = 'open';
  #delayMs = 0;
  #drop = 0;
  #counts = { accepted: 0, dropped: 0, refused: 0, cut: 0, bytesToUpstream: 0, bytesToClient: 0 };

  constructor(options: FaultProxyOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  /** The port clients connect to (0 before `start`). */
  get port(): number {
    return this.#port;
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  get stats(): FaultProxyStats {
    let bytesHeld = 0;
    for (const c of this.#connections) bytesHeld += c.bytesHeld;
    return { ...this.#counts, active: this.#connections.size, bytesHeld };
  }

  async start(): Promise<{ port: number }> {
    if (this.#state !== 'idle') throw new Error(`fault proxy is ${this.#state}`);
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      this.#accept(socket),
    );
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    this.#port = typeof address === 'object' && address ? address.port : 0;
    this.#state = 'listening';
    return { port: this.#port };
  }

  /** Resets every connection and stops listening; resolves when all sockets are closed. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    const server = this.#server;
    const closing = [...this.#connections].map((c) => c.closed);
    for (const c of this.#connections) c.destroy();
    await Promise.all([
      ...closing,
      server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined,
    ]);
  }

  setDelay(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`delay must be >= 0, got ${ms}`);
    this.#delayMs = ms;
  }

  setDrop(probability: number): void {
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError(`drop probability must be in [0, 1], got ${probability}`);
    }
    this.#drop = probability;
  }

  cut(): void {
    this.#mode = 'cut';
    for (const c of this.#connections) {
      this.#counts.cut++;
      c.destroy();
    }
  }

  blackhole(): void {
    this.#mode = 'blackhole';
  }

  heal(): void {
    this.#mode = 'open';
    for (const c of this.#connections) c.resume();
  }

  #accept(socket: Socket): void {
    this.#counts.accepted++;
    socket.on('error', () => undefined); // a reset below may surface as an error
    if (this.#state !== 'listening' || this.#mode === 'cut') {
      this.#counts.refused++;
      socket.resetAndDestroy();
      return;
    }
    if (this.#drop > 0 && this.#random() < this.#drop) {
      this.#counts.dropped++;
      socket.resetAndDestroy();
      return;
    }
    const connection = new Connection(socket, {
      upstream: this.#options.upstream,
      delayMs: () => this.#delayMs,
      held: () => this.#mode === 'blackhole',
      count: (toUpstream, bytes) => {
        if (toUpstream) this.#counts.bytesToUpstream += bytes;
        else this.#counts.bytesToClient += bytes;
      },
    });
    this.#connections.add(connection);
    void connection.closed.then(() => this.#connections.delete(connection));
  }
}

interface Network {
  readonly upstream: FaultProxyOptions['upstream'];
  delayMs(): number;
  /** Blackholed: hold every byte. */
  held(): boolean;
  count(toUpstream: boolean, bytes: number): void;
}

/** One client connection and its upstream connection (once connected). */
class Connection {
  readonly closed: Promise<void>;
  readonly #client: Socket;
  readonly #network: Network;
  readonly #toUpstream: Pipe;
  readonly #toClient: Pipe;
  #upstream: Socket | undefined;
  #upstreamClosed: Promise<void> = Promise.resolve();
  #destroyed = false;

  constructor(client: Socket, network: Network) {
    this.#client = client;
    this.#network = network;
    this.#toUpstream = new Pipe(client, () => this.#upstream, network, true);
    this.#toClient = new Pipe(undefined, () => client, network, false);
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    this.closed = clientClosed.then(() => this.#upstreamClosed);
    client.on('data', (chunk: Buffer) => this.#toUpstream.push(chunk));
    client.on('end', () => this.#toUpstream.end());
    client.on('error', () => this.destroy());
    client.on('close', () => {
      if (!this.#toUpstream.ended || !this.#toClient.finished) this.destroy();
    });
    if (!network.held()) this.#connect();
  }

  get bytesHeld(): number {
    return this.#toUpstream.bytes + this.#toClient.bytes;
  }

  /** After a blackhole: connect if not yet, and forward what was held. */
  resume(): void {
    if (this.#destroyed) return;
    if (!this.#upstream) this.#connect();
    this.#toUpstream.pump();
    this.#toClient.pump();
  }

  /** Resets the client and closes upstream, abruptly, dropping anything held. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#toUpstream.stop();
    this.#toClient.stop();
    if (!this.#client.destroyed) this.#client.resetAndDestroy();
    this.#upstream?.destroy();
  }

  #connect(): void {
    const { host = '127.0.0.1', port } = this.#network.upstream;
    const upstream = connect({ host, port, allowHalfOpen: true, noDelay: true });
    this.#upstream = upstream;
    this.#toClient.source = upstream;
    this.#upstreamClosed = new Promise((resolve) => upstream.once('close', () => resolve()));
    upstream.on('data', (chunk: Buffer) => this.#toClient.push(chunk));
    upstream.on('end', () => this.#toClient.end());
    upstream.on('error', () => this.destroy());
    upstream.on('close', () => {
      if (!this.#toClient.ended || !this.#toUpstream.finished) this.destroy();
    });
    this.#toUpstream.pump();
  }
}

/** One direction of a connection: a FIFO of chunks, each with the time it may leave. */
class Pipe {
  source: Socket | undefined;
  /** The source sent its FIN. */
  ended = false;
  /** The FIN was passed on. */
  finished = false;
  readonly #destination: () => Socket | undefined;
  readonly #network: Network;
  readonly #toUpstream: boolean;
  #queue: { chunk: Buffer; due: number }[] = [];
  #head = 0;
  #bytes = 0;
  #lastDue = 0;
  #draining = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    source: Socket | undefined,
    destination: () => Socket | undefined,
    network: Network,
    toUpstream: boolean,
  ) {
    this.source = source;
    this.#destination = destination;
    this.#network = network;
    this.#toUpstream = toUpstream;
  }

  /** Bytes waiting to be forwarded. */
  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: Buffer): void {
    const due = Math.max(performance.now() + this.#network.delayMs(), this.#lastDue);
    this.#lastDue = due;
    this.#queue.push({ chunk, due });
    this.#bytes += chunk.length;
    if (this.#bytes > WINDOW_BYTES) this.source?.pause();
    this.pump();
  }

  end(): void {
    this.ended = true;
    this.pump();
  }

  /** Forwards what is due, unless held, stopped or waiting for the destination to drain. */
  pump(): void {
    const destination = this.#destination();
    if (this.#stopped || this.#draining || !destination || this.#network.held()) return;
    while (this.#head < this.#queue.length) {
      const { chunk, due } = this.#queue[this.#head]!;
      const wait = due - performance.now();
      if (wait > 0) {
        this.#timer ??= setTimeout(() => {
          this.#timer = undefined;
          this.pump();
        }, Math.ceil(wait));
        break;
      }
      this.#head++;
      this.#bytes -= chunk.length;
      this.#network.count(this.#toUpstream, chunk.length);
      if (!destination.write(chunk)) {
        this.#draining = true;
        destination.once('drain', () => {
          this.#draining = false;
          this.pump();
        });
        break;
      }
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    if (this.#bytes <= WINDOW_BYTES / 2 && this.source?.isPaused()) this.source.resume();
    if (this.ended && !this.finished && this.#head === this.#queue.length) {
      this.finished = true;
      destination.end();
    }
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#queue = [];
  }
}
