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
import { TongbuError, type ErrorCode } from '../core/errors.js';
import { isContentHash, STORE_HASH } from '../core/hash.js';
import {
  API_PREFIX,
  decodeBaseRequests,
  decodeDeltaFrames,
  decodeDigests,
  encodeBaseSignatures,
  encodeBatch,
  encodeDigests,
  MAX_BATCH_BYTES,
  STORE_CHUNKER,
  type ChunkFrame,
  type HealthResponse,
} from '../endpoints/tongbu/protocol.js';
import { MAX_OBJECT_BYTES } from '../store/chunk-store.js';
import type { ClusterNode } from '../cluster/cluster-node.js';
import type { RangeQuery } from '../cluster/peer-client.js';
import { isReplicationMode } from '../cluster/placement.js';
import { validateNamespace } from '../store/commit.js';
import type { Catalog } from '../store/catalog.js';
import { Store } from '../store/store.js';
import type { ReplicationReport } from '../cluster/replicated-chunk-store.js';
import { allows, authenticate, requireAccess, type Principal } from './auth.js';
import { readBatch, readBody, sendBytes, sendError, sendJson, sendParts } from './http-util.js';
import { DeltaBases } from './delta-bases.js';
import { Metrics } from './metrics.js';
import { handleNamespace } from './namespace-routes.js';

export interface StoreServerOptions {
  readonly store: Store;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  readonly version: string;
  /** Set on a node of a replicated store: its chunks are `cluster.chunks`. */
  readonly cluster?: ClusterNode;
}

export class StoreServer {
  private readonly options: StoreServerOptions;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly principals = new Map<string, { principal: Principal; untilMs: number }>();
  readonly metrics = new Metrics();
  private readonly countRequest;
  private readonly countBytesIn;
  private readonly countBytesOut;
  private readonly countChunks;
  /** Bases and signatures for delta uploads, and the rebuilding of their chunks. */
  private readonly deltaBases: DeltaBases;
  private bytesIn = 0;
  private bytesOut = 0;
  state: 'idle' | 'running' | 'stopped' = 'idle';

  constructor(options: StoreServerOptions) {
    this.options = options;
    this.deltaBases = new DeltaBases((hash) => options.store.chunks.get(hash));
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
    const cluster = options.cluster;
    if (cluster) {
      m.gauge(
        'tongbu_cluster_members',
        'members of the cluster',
        () => cluster.view.members().length,
      );
      m.gauge(
        'tongbu_cluster_members_live',
        'members whose heartbeat is current',
        () => cluster.view.members().filter((x) => x.live).length,
      );
      m.gauge('tongbu_replication_lag_chunks', 'chunks queued here for a replica', () =>
        cluster.hints.total(),
      );
      m.gauge(
        'tongbu_under_replicated_chunks',
        'chunks held here with a replica on a node that is down',
        () => cluster.countUnderReplicated(),
      );
      m.gauge(
        'tongbu_read_repairs',
        'copies replaced here by reads from other replicas',
        () => cluster.readRepairs,
      );
      m.gauge(
        'tongbu_scrub_checked',
        'objects re-hashed by the last scrub',
        () => cluster.scrubber.last?.checked ?? 0,
      );
      m.gauge(
        'tongbu_scrub_damaged',
        'damaged copies the last scrub found',
        () => cluster.scrubber.last?.found ?? 0,
      );
      m.gauge(
        'tongbu_scrub_repaired',
        'damaged copies the last scrub replaced',
        () => cluster.scrubber.last?.repaired ?? 0,
      );
      m.gauge(
        'tongbu_repair_remaining',
        'copies anti-entropy found missing and has not pushed yet',
        () => cluster.antiEntropy.last?.remaining ?? 0,
      );
      m.gauge('tongbu_cluster_leader', 'this node runs the failure detector', () =>
        cluster.leader ? 1 : 0,
      );
    }
  }

  /** Starts listening; resolves with the bound address. */
  async start(): Promise<AddressInfo> {
    const marker = join(this.options.dataDir, 'running');
    if (existsSync(marker)) this.options.store.chunks.recover();
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
      const failed = (err: NodeJS.ErrnoException) => reject(listenError(err, this.options));
      server.once('error', failed);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', failed);
        resolve();
      });
    });
    // From here until a clean stop, a restart re-checks what was written.
    writeFileSync(marker, String(process.pid));
    // Joins the cluster once peers can reach it.
    try {
      await this.options.cluster?.start();
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
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
    await this.options.cluster?.stop();
    this.options.store.chunks.close();
    await this.options.store.catalog.close();
    rmSync(join(this.options.dataDir, 'running'), { force: true });
  }

  /**
   * On a cluster node tokens live in the shared catalog (etcd: a network
   * round trip); a token seen in the last 2 s is not looked up again, so a
   * revocation takes effect within 2 s.
   */
  private async principalOf(header: string | undefined): Promise<Principal> {
    if (!this.options.cluster) return authenticate(this.options.store.catalog, header);
    const key = header ?? '';
    const hit = this.principals.get(key);
    if (hit && hit.untilMs > Date.now()) return hit.principal;
    const principal = await authenticate(this.options.store.catalog, header);
    if (this.principals.size >= 10_000) this.principals.clear();
    this.principals.set(key, { principal, untilMs: Date.now() + TOKEN_CACHE_MS });
    return principal;
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
          hash: STORE_HASH,
        };
        sendJson(res, 200, health);
        return;
      }
      const principal = await this.principalOf(req.headers.authorization);
      if (url.pathname === '/metrics') {
        route = 'metrics';
        for (const s of this.sockets) this.countSocket(s);
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
        res.end(this.metrics.render());
        return;
      }
      if (parts[0] !== API_PREFIX.slice(1))
        throw new TongbuError('NOT_FOUND', `no route ${url.pathname}`);
      const cluster = this.options.cluster;
      if (parts[1] === 'internal' && cluster) {
        route = `internal/${parts[2] ?? ''}`;
        requireAccess(principal, 'admin');
        await this.handleInternal(req, res, cluster, parts.slice(2));
        return;
      }
      if (parts[1] === 'cluster' && cluster) {
        route = 'cluster';
        await this.handleCluster(req, res, cluster, principal, parts.slice(2));
        return;
      }
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
        const namespace = decodeSegment(parts[2]!);
        const stale = header(req, 'x-tongbu-consistency') === 'stale';
        await handleNamespace(stale ? this.staleStore() : this.options.store, {
          req,
          res,
          url,
          principal,
          namespace,
          rest: parts.slice(3).map(decodeSegment),
          ...(cluster
            ? {
                replicate: async <T>(fn: () => Promise<T>) => {
                  const mode = await cluster.modeFor(
                    namespace,
                    header(req, 'x-tongbu-replication'),
                  );
                  return cluster.chunks.withWrite(mode, fn);
                },
              }
            : {}),
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
    const cluster = this.options.cluster;
    const method = req.method ?? 'GET';
    if (rest[0] === 'missing' && method === 'POST') {
      requireAccess(principal, 'write');
      const asked = decodeDigests(await readBody(req, MAX_BATCH_BYTES));
      const lacking = cluster
        ? await cluster.chunks.missingForUpload(asked)
        : chunks.missing(asked);
      sendBytes(res, encodeDigests(lacking));
      return;
    }
    if (rest[0] === 'fetch' && method === 'POST') {
      requireAccess(principal, 'read');
      const asked = decodeDigests(await readBody(req, MAX_BATCH_BYTES));
      const frames = [];
      for (const hash of asked) frames.push({ hash, bytes: await chunks.get(hash) });
      sendParts(res, encodeBatch(frames));
      return;
    }
    if (rest[0] === 'signatures' && method === 'POST') {
      // Signatures tell something of a base's bytes: the token must be able to read.
      requireAccess(principal, 'read');
      requireAccess(principal, 'write');
      const asked = decodeBaseRequests(await readBody(req, MAX_BATCH_BYTES));
      sendBytes(res, encodeBaseSignatures(await this.deltaBases.signatures(asked)));
      return;
    }
    if (rest[0] === 'delta' && method === 'POST') {
      requireAccess(principal, 'read');
      requireAccess(principal, 'write');
      const frames = decodeDeltaFrames(await readBody(req, MAX_BATCH_BYTES));
      const { ok, failed } = await this.deltaBases.rebuild(frames);
      const stored = await this.storeFrames(req, ok);
      sendJson(res, 200, { ...stored, failed });
      return;
    }
    if (rest.length === 0 && method === 'POST') {
      requireAccess(principal, 'write');
      // The whole batch is checked before anything is written.
      const frames = await readBatch(req, MAX_BATCH_BYTES);
      const chunks = this.options.store.chunks;
      if (!cluster) for (const f of frames) chunks.checkBytes(f.bytes, f.hash);
      sendJson(res, 200, await this.storeFrames(req, frames));
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
    sendBytes(res, Buffer.from(await chunks.get(hash)));
  }

  /**
   * Stores frames whose bytes were checked against their addresses (on a
   * cluster, the replicated store checks them) and counts them.
   */
  private async storeFrames(
    req: IncomingMessage,
    frames: readonly ChunkFrame[],
  ): Promise<{ stored: number; bytes: number; replication?: ReplicationReport }> {
    const bytes = frames.reduce((n, f) => n + f.bytes.length, 0);
    const cluster = this.options.cluster;
    if (cluster) {
      const mode = await cluster.modeFor(
        header(req, 'x-tongbu-namespace'),
        header(req, 'x-tongbu-replication'),
      );
      const replication = await cluster.chunks.storeBatch(frames, mode);
      this.countChunks({}, frames.length);
      return { stored: frames.length, bytes, replication };
    }
    const chunks = this.options.store.chunks;
    for (const f of frames) chunks.storeChecked(f.bytes, f.hash);
    this.countChunks({}, frames.length);
    return { stored: frames.length, bytes };
  }

  /** The routes nodes use with each other (node token, admin scope). */
  private async handleInternal(
    req: IncomingMessage,
    res: ServerResponse,
    cluster: ClusterNode,
    rest: readonly string[],
  ): Promise<void> {
    const local = cluster.chunks.local;
    const method = req.method ?? 'GET';
    const what = rest.join('/');
    if (what === 'chunks' && method === 'POST') {
      const frames = await readBatch(req, MAX_BATCH_BYTES);
      for (const f of frames) local.checkBytes(f.bytes, f.hash);
      for (const f of frames) local.storeChecked(f.bytes, f.hash);
      // A replica acknowledges only what is durable.
      await local.sync();
      this.countChunks({}, frames.length);
      sendJson(res, 200, { stored: frames.length });
    } else if (what === 'missing' && method === 'POST') {
      const asked = decodeDigests(await readBody(req, MAX_BATCH_BYTES));
      sendBytes(res, encodeDigests(local.missing(asked)));
    } else if (what === 'fetch' && method === 'POST') {
      const asked = decodeDigests(await readBody(req, MAX_BATCH_BYTES));
      const frames = [];
      for (const hash of asked) {
        try {
          frames.push({ hash, bytes: local.getSync(hash) });
        } catch {
          // absent or damaged here: the asker tries another replica
        }
      }
      const parts = encodeBatch(frames);
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': parts.reduce((n, p) => n + p.length, 0),
      });
      for (const p of parts) res.write(p);
      res.end();
    } else if (what === 'ranges' && method === 'POST') {
      const query = rangeQuery(JSON.parse((await readBody(req, MAX_BATCH_BYTES)).toString('utf8')));
      sendJson(res, 200, { ranges: cluster.rangeDigests(query) });
    } else if (what === 'range-hashes' && method === 'POST') {
      const body = JSON.parse((await readBody(req, MAX_BATCH_BYTES)).toString('utf8')) as {
        range?: unknown;
      };
      const range = Number(body.range);
      if (!Number.isInteger(range) || range < 0 || range > 255)
        throw new TongbuError('BAD_ARGUMENT', 'range must be 0..255');
      sendBytes(res, encodeDigests(cluster.rangeHashes(rangeQuery(body), range)));
    } else if (what === 'status' && method === 'GET') {
      sendJson(res, 200, cluster.status());
    } else {
      throw new TongbuError('NOT_FOUND', `no route ${method} ${INTERNAL_PREFIX}/${what}`);
    }
  }

  /**
   * `GET /v1/cluster`, `POST /v1/cluster/repair|scrub`, `PUT /v1/cluster/replication/NS`
   * (`{mode}`, null to clear), `DELETE /v1/cluster/members/ID`.
   */
  private async handleCluster(
    req: IncomingMessage,
    res: ServerResponse,
    cluster: ClusterNode,
    principal: Principal,
    rest: readonly string[],
  ): Promise<void> {
    const method = req.method ?? 'GET';
    if (rest.length === 0 && method === 'GET') {
      requireAccess(principal, 'read');
      sendJson(res, 200, await cluster.clusterStatus());
    } else if (rest.length === 1 && rest[0] === 'repair' && method === 'POST') {
      requireAccess(principal, 'admin');
      sendJson(res, 200, await cluster.repair());
    } else if (rest.length === 1 && rest[0] === 'scrub' && method === 'POST') {
      requireAccess(principal, 'admin');
      sendJson(res, 200, await cluster.scrub());
    } else if (rest.length === 2 && rest[0] === 'replication' && method === 'PUT') {
      const namespace = validateNamespace(decodeSegment(rest[1]!));
      requireAccess(principal, 'admin', namespace);
      const body = JSON.parse((await readBody(req, 64 * 1024)).toString('utf8') || '{}') as {
        mode?: unknown;
      };
      const mode =
        typeof body.mode === 'string'
          ? body.mode
          : body.mode == null
            ? undefined
            : JSON.stringify(body.mode);
      if (mode !== undefined && !isReplicationMode(mode)) {
        throw new TongbuError(
          'BAD_ARGUMENT',
          `mode must be sync, quorum or async, not ${JSON.stringify(mode)}`,
        );
      }
      await cluster.options.catalog.putSetting(`replication/${namespace}`, mode);
      sendJson(res, 200, { namespace, mode: mode ?? null });
    } else if (rest.length === 2 && rest[0] === 'members' && method === 'DELETE') {
      requireAccess(principal, 'admin');
      const id = decodeSegment(rest[1]!);
      if (!(await cluster.removeMember(id)))
        throw new TongbuError('NOT_FOUND', `no member ${JSON.stringify(id)}`);
      sendJson(res, 200, { removed: id });
    } else {
      throw new TongbuError(
        'NOT_FOUND',
        `no route ${method} ${API_PREFIX}/cluster/${rest.join('/')}`,
      );
    }
  }

  private staleStore(): Store {
    const catalog = this.options.store.catalog;
    const stale = Object.create(catalog) as Catalog;
    stale.getRef = (namespace, name) => catalog.getRef(namespace, name, { consistency: 'stale' });
    return new Store(this.options.store.chunks, stale);
  }
}

const INTERNAL_PREFIX = `${API_PREFIX}/internal`;
const TOKEN_CACHE_MS = 2_000;

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function rangeQuery(body: unknown): RangeQuery {
  const b = body as Partial<RangeQuery>;
  if (
    typeof b.requester !== 'string' ||
    !Array.isArray(b.members) ||
    !b.members.every((m) => typeof m === 'string') ||
    !Number.isInteger(b.replicas)
  ) {
    throw new TongbuError('BAD_ARGUMENT', 'a range query needs requester, members and replicas');
  }
  return { requester: b.requester, members: b.members, replicas: b.replicas! };
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

/** Why the node cannot listen, in the user's terms: the address is taken, not local, or privileged. */
function listenError(
  err: NodeJS.ErrnoException,
  where: { readonly host: string; readonly port: number },
): TongbuError {
  const address = `${where.host}:${where.port}`;
  const says: Record<string, [ErrorCode, string]> = {
    EADDRINUSE: ['BAD_ARGUMENT', 'the address is already in use (another node or program)'],
    EADDRNOTAVAIL: ['BAD_ARGUMENT', 'the host is not an address of this machine'],
    EACCES: ['PERMISSION_DENIED', 'ports below 1024 need privileges'],
  };
  const [code, words] = says[err.code ?? ''] ?? ['IO', err.message];
  return new TongbuError(code, `cannot listen on ${address}: ${words}`, { cause: err });
}
