/**
 * `tongbu serve`: the HTTP API of a store node, as a service with start and
 * stop. node:http carries the bulk bytes (chunk batches, file downloads); the
 * few control routes are dispatched by hand, which a framework would not
 * make shorter. docs/API.md describes every route.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { TongbuError } from '../core/errors.js';
import { isContentHash } from '../core/hash.js';
import {
  API_PREFIX,
  decodeBatch,
  decodeDigests,
  encodeBatch,
  encodeDigests,
  MAX_BATCH_BYTES,
  STORE_CHUNKER,
  type HealthResponse,
} from '../endpoints/tongbu/protocol.js';
import { MAX_OBJECT_BYTES } from '../store/chunk-store.js';
import type { Store } from '../store/store.js';
import { allows, authenticate, requireAccess, type Principal } from './auth.js';
import { readBody, sendBytes, sendError, sendJson } from './http-util.js';
import { Metrics } from './metrics.js';
import { handleNamespace } from './namespace-routes.js';

export interface StoreServerOptions {
  readonly store: Store;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly version: string;
}

export class StoreServer {
  private readonly options: StoreServerOptions;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  readonly metrics = new Metrics();
  private readonly countRequest;
  private readonly countBytesIn;
  private readonly countBytesOut;
  private readonly countChunks;
  private bytesIn = 0;
  private bytesOut = 0;
  state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(options: StoreServerOptions) {
    this.options = options;
    const m = this.metrics;
    this.countRequest = m.counter(
      'tongbu_http_requests_total',
      'HTTP requests by route and status',
    );
    this.countBytesIn = m.counter(
      'tongbu_net_bytes_received_total',
      'bytes read from client sockets',
    );
    this.countBytesOut = m.counter(
      'tongbu_net_bytes_sent_total',
      'bytes written to client sockets',
    );
    this.countChunks = m.counter('tongbu_chunks_stored_total', 'chunks written by uploads');
    m.gauge('tongbu_up', 'the node is serving', () => 1);
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    const marker = join(this.options.dataDir, 'running');
    if (existsSync(marker)) this.options.store.chunks.recover();
    writeFileSync(marker, String(process.pid));
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    const server = this.options.tls
      ? createHttpsServer({ cert: this.options.tls.cert, key: this.options.tls.key }, handler)
      : createHttpServer(handler);
    server.keepAliveTimeout = 30_000;
    server.requestTimeout = 0;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => {
        this.sockets.delete(socket);
        this.countSocket(socket);
      });
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.state = 'running';
    return server.address() as AddressInfo;
  }

  /** Stops accepting, ends open connections, and marks the data as cleanly stopped. */
  async stop(): Promise<void> {
    if (this.state !== 'running' || !this.server) return;
    this.state = 'stopped';
    const server = this.server;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5_000).unref();
    await closed;
    await this.options.store.chunks.sync();
    this.options.store.chunks.close();
    await this.options.store.catalog.close();
    rmSync(join(this.options.dataDir, 'running'), { force: true });
  }

  private countSocket(socket: Socket): void {
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    const tagged = socket as Socket & { tongbuRead?: number; tongbuWritten?: number };
    this.countBytesIn({}, read - (tagged.tongbuRead ?? 0));
    this.countBytesOut({}, written - (tagged.tongbuWritten ?? 0));
    tagged.tongbuRead = read;
    tagged.tongbuWritten = written;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let route = 'unknown';
    const socket = req.socket;
    const done = (status: number): void => {
      this.countRequest({ route, status: String(status) });
      this.countSocket(socket);
    };
    res.once('finish', () => done(res.statusCode));
    try {
      const raw = req.url ?? '/';
      const url = new URL(raw, 'http://node');
      // Segments as sent: URL parsing would resolve `..` before the key check sees it.
      const query = raw.indexOf('?');
      const parts = (query < 0 ? raw : raw.slice(0, query)).split('/').slice(1);
      if (url.pathname === `${API_PREFIX}/health`) {
        route = 'health';
        const health: HealthResponse = {
          ok: true,
          version: this.options.version,
          chunker: STORE_CHUNKER,
        };
        sendJson(res, 200, health);
        return;
      }
      const principal = await authenticate(this.options.store.catalog, req.headers.authorization);
      if (url.pathname === '/metrics') {
        route = 'metrics';
        for (const s of this.sockets) this.countSocket(s);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.metrics.render());
        return;
      }
      if (parts[0] !== API_PREFIX.slice(1))
        throw new TongbuError('NOT_FOUND', `no route ${url.pathname}`);
      if (parts[1] === 'chunks' || parts[1] === 'objects') {
        route = parts[1];
        await this.handleChunks(req, res, principal, parts.slice(2));
        return;
      }
      if (parts[1] === 'ns' && parts.length === 2) {
        route = 'ns';
        const all = await this.options.store.catalog.listNamespaces();
        sendJson(res, 200, { namespaces: all.filter((ns) => allows(principal, 'read', ns)) });
        return;
      }
      if (parts[1] === 'ns' && parts.length >= 3) {
        route = `ns/${parts[3] ?? ''}`;
        await handleNamespace(this.options.store, {
          req,
          res,
          url,
          principal,
          namespace: decodeSegment(parts[2]!),
          rest: parts.slice(3).map(decodeSegment),
        });
        return;
      }
      throw new TongbuError('NOT_FOUND', `no route ${url.pathname}`);
    } catch (err) {
      sendError(res, err);
      if (!req.complete) req.resume();
    }
  }

  private async handleChunks(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    rest: readonly string[],
  ): Promise<void> {
    const chunks = this.options.store.chunks;
    const method = req.method ?? 'GET';
    if (rest[0] === 'missing' && method === 'POST') {
      requireAccess(principal, 'write');
      const asked = decodeDigests(await readBody(req, MAX_BATCH_BYTES));
      sendBytes(res, encodeDigests(chunks.missing(asked)));
      return;
    }
    if (rest[0] === 'fetch' && method === 'POST') {
      requireAccess(principal, 'read');
      const asked = decodeDigests(await readBody(req, MAX_BATCH_BYTES));
      const frames = asked.map((hash) => ({ hash, bytes: chunks.getSync(hash) }));
      const parts = encodeBatch(frames);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': parts.reduce((n, p) => n + p.length, 0),
      });
      for (const p of parts) res.write(p);
      res.end();
      return;
    }
    if (rest.length === 0 && method === 'POST') {
      requireAccess(principal, 'write');
      // The whole batch is checked before anything is written.
      const frames = decodeBatch(await readBody(req, MAX_BATCH_BYTES));
      for (const f of frames) chunks.checkBytes(f.bytes, f.hash);
      let bytes = 0;
      for (const f of frames) {
        chunks.storeChecked(f.bytes, f.hash);
        bytes += f.bytes.length;
      }
      this.countChunks({}, frames.length);
      sendJson(res, 200, { stored: frames.length, bytes });
      return;
    }
    const hash = rest.length === 1 ? rest[0]! : '';
    if (!isContentHash(hash))
      throw new TongbuError('BAD_ARGUMENT', `invalid chunk address ${JSON.stringify(hash)}`);
    if (method === 'PUT') {
      requireAccess(principal, 'write');
      chunks.putSync(await readBody(req, MAX_OBJECT_BYTES), hash);
      this.countChunks({}, 1);
      sendJson(res, 200, { stored: 1, hash });
      return;
    }
    if (method !== 'GET' && method !== 'HEAD')
      throw new TongbuError('BAD_ARGUMENT', `${method} not allowed on chunks`);
    requireAccess(principal, 'read');
    sendBytes(res, chunks.getSync(hash));
  }
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new TongbuError('BAD_KEY', `malformed percent-encoding in ${JSON.stringify(segment)}`);
  }
}

export function readTls(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(certFile), key: readFileSync(keyFile) };
}
