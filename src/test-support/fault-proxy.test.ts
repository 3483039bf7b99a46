import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultProxy, WINDOW_BYTES } from './fault-proxy.js';

/** An echo server on loopback. */
async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { server, port: typeof address === 'object' && address ? address.port : 0 };
}

/** A client connection, collecting what it receives and how it ended. */
interface Client {
  readonly socket: Socket;
  received(): Buffer;
  /** Resolves once `bytes` bytes arrived in all; rejects if the socket closes first. */
  waitFor(bytes: number): Promise<Buffer>;
  /** Resolves when the socket closes: with the error code, if any. */
  readonly closed: Promise<string | undefined>;
}

function open(port: number): Client {
  const socket = connect({ host: '127.0.0.1', port });
  const chunks: Buffer[] = [];
  let size = 0;
  let error: string | undefined;
  const waiters = new Set<() => void>();
  socket.on('data', (c: Buffer) => {
    chunks.push(c);
    size += c.length;
    for (const w of waiters) w();
  });
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
  const closed = new Promise<string | undefined>((resolve) =>
    socket.once('close', () => {
      resolve(error);
      for (const w of waiters) w();
    }),
  );
  const received = (): Buffer => Buffer.concat(chunks);
  return {
    socket,
    received,
    closed,
    waitFor: (bytes) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          if (size >= bytes) {
            waiters.delete(check);
            resolve(received());
          } else if (socket.destroyed) {
            waiters.delete(check);
            reject(new Error(`closed after ${size} of ${bytes} bytes (${error ?? 'no error'})`));
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

const sleep = (ms: number): Promise<'timeout'> =>
  new Promise((resolve) => setTimeout(() => resolve('timeout'), ms));

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('FaultProxy', () => {
  let echo: { server: Server; port: number };
  let proxy: FaultProxy;
  let port: number;
  const clients: Client[] = [];
  const client = (): Client => {
    const c = open(port);
    clients.push(c);
    return c;
  };
  const echoes = async (c: Client, text: string): Promise<void> => {
    const before = c.received().length;
    c.socket.write(text);
    const got = await c.waitFor(before + text.length);
    expect(got.subarray(before).toString()).toBe(text);
  };

  beforeEach(async () => {
    echo = await startEcho();
    proxy = new FaultProxy({ upstream: { port: echo.port } });
    ({ port } = await proxy.start());
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await proxy.stop();
    await new Promise((resolve) => echo.server.close(resolve));
  });

  it('passes 10 MiB both ways unchanged, with a half-close', async () => {
    const payload = randomBytes(10 << 20);
    const c = client();
    c.socket.end(payload);
    const got = await c.waitFor(payload.length);
    expect(await c.closed).toBeUndefined();
    expect(got.length).toBe(payload.length);
    expect(sha256(got)).toBe(sha256(payload));
    expect(proxy.stats).toMatchObject({
      accepted: 1,
      active: 0,
      bytesToUpstream: payload.length,
      bytesToClient: payload.length,
    });
  });

  it('holds back a sender while the receiver does not read', async () => {
    const payload = randomBytes(48 << 20);
    const c = client();
    c.socket.pause();
    c.socket.end(payload);
    await sleep(500);
    // The echo stalls, then the proxy, then the client: the proxy holds a
    // window per direction, not the payload.
    const { bytesToUpstream, bytesHeld } = proxy.stats;
    expect(bytesToUpstream).toBeLessThan(payload.length);
    expect(bytesHeld).toBeLessThanOrEqual(2 * (WINDOW_BYTES + (64 << 10)));
    c.socket.resume();
    const got = await c.waitFor(payload.length);
    expect(sha256(got)).toBe(sha256(payload));
  });

  it('delays every chunk both ways, in order', async () => {
    const c = client();
    await echoes(c, 'warm');
    proxy.setDelay(150);
    const t0 = performance.now();
    await echoes(c, 'ping');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(300);

    // Shortening the delay does not let later chunks overtake earlier ones.
    const sent = c.received().length;
    c.socket.write('a');
    await sleep(20);
    proxy.setDelay(0);
    c.socket.write('b');
    c.socket.write('c');
    const got = await c.waitFor(sent + 3);
    expect(got.subarray(sent).toString()).toBe('abc');
  });

  it('cut resets open connections and new ones until heal', async () => {
    const c = client();
    await echoes(c, 'before');
    proxy.cut();
    expect(await c.closed).toBe('ECONNRESET');

    const during = client();
    during.socket.write('lost');
    await during.closed;
    expect(during.received().length).toBe(0);
    expect(proxy.stats).toMatchObject({ cut: 1, refused: 1, active: 0 });

    proxy.heal();
    await echoes(client(), 'after');
  });

  it('blackhole makes requests hang, and heal lets them and new ones through', async () => {
    const before = client();
    await echoes(before, 'one');
    proxy.blackhole();
    before.socket.write('two');
    const during = client();
    during.socket.write('three');
    const hung = await Promise.race([before.waitFor(6), during.waitFor(5), sleep(300)]);
    expect(hung).toBe('timeout');
    expect(proxy.stats.bytesHeld).toBe('twothree'.length);
    expect(before.socket.destroyed || during.socket.destroyed).toBe(false);

    proxy.heal();
    await echoes(client(), 'four');
    expect((await before.waitFor(6)).toString()).toBe('onetwo');
    expect((await during.waitFor(5)).toString()).toBe('three');
  });

  it('drops new connections with the given probability', async () => {
    proxy.setDrop(1);
    const dropped = client();
    await dropped.closed;
    expect(dropped.received().length).toBe(0);
    expect(proxy.stats.dropped).toBe(1);
    proxy.setDrop(0);
    await echoes(client(), 'kept');
    expect(() => proxy.setDrop(2)).toThrow(RangeError);
  });

  it('stop closes every connection, upstream too, and the port', async () => {
    const a = client();
    const b = client();
    await echoes(a, 'a');
    await echoes(b, 'b');
    proxy.blackhole();
    const c = client(); // accepted, not connected upstream
    c.socket.write('c');
    await sleep(50);
    expect(proxy.stats.active).toBe(3);

    await proxy.stop();
    expect(proxy.stats.active).toBe(0);
    await Promise.all([a.closed, b.closed, c.closed]);
    const upstreamOpen = (): Promise<number> =>
      new Promise((resolve, reject) =>
        echo.server.getConnections((err, count) => (err ? reject(err) : resolve(count))),
      );
    // The echo server learns of the closes a moment later.
    for (let i = 0; i < 100 && (await upstreamOpen()) > 0; i++) await sleep(10);
    expect(await upstreamOpen()).toBe(0);
    expect(await client().closed).toBe('ECONNREFUSED');
  });
});
