/**
 * The HTTP client of a tongbu node: keep-alive connections, bearer token,
 * errors decoded back into TongbuError, and fail-over to the next node when
 * one cannot be reached.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { TongbuError, type TongbuErrorJSON } from '../../core/errors.js';
import type { ContentHash } from '../../core/hash.js';
import {
  API_PREFIX,
  decodeBaseSignatures,
  decodeBatch,
  decodeDigests,
  encodeBaseRequests,
  encodeBatch,
  encodeDeltaFrames,
  encodeDigests,
  type BaseRequest,
  type BaseSignatures,
  type ChunkFrame,
  type DeltaFrame,
  type HealthResponse,
} from './protocol.js';
import type { TongbuUrl } from './tongbu-url.js';

export interface ClientOptions {
  readonly token?: string;
  readonly signal?: AbortSignal;
  /** Concurrent connections per node. */
  readonly connections?: number;
  /** Sent with every request (e.g. `x-tongbu-replication`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** A request with no answer within this time fails as UNAVAILABLE; none by default. */
  readonly timeoutMs?: number;
}

interface RawResponse {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

export class TongbuClient {
  readonly target: TongbuUrl;
  private readonly token: string | undefined;
  private readonly agent: HttpAgent;
  private readonly headers: Readonly<Record<string, string>>;
  private readonly timeoutMs: number | undefined;
  private current = 0;
  /** Bytes of request and response bodies, for the summary. */
  sent = 0;
  received = 0;
  /** Lacked chunks may go as deltas: false after a node that cannot take them said so. */
  deltas = true;
  /** On a cluster: the fewest replicas any uploaded chunk batch reached, and the mode. */
  uploadReplication: ReplicationAnswer | undefined;

  constructor(target: TongbuUrl, options: ClientOptions = {}) {
    this.target = target;
    this.token = options.token;
    this.headers = options.headers ?? {};
    this.timeoutMs = options.timeoutMs;
    const agentOptions = { keepAlive: true, maxSockets: options.connections ?? 8 };
    this.agent = target.tls ? new HttpsAgent(agentOptions) : new HttpAgent(agentOptions);
  }

  close(): void {
    this.agent.destroy();
  }

  nsPath(...parts: string[]): string {
    return [`${API_PREFIX}/ns/${encodeURIComponent(this.target.namespace)}`, ...parts].join('/');
  }

  async health(): Promise<HealthResponse> {
    return (await this.json('GET', `${API_PREFIX}/health`)) as HealthResponse;
  }

  async missing(hashes: readonly ContentHash[]): Promise<Set<ContentHash>> {
    if (hashes.length === 0) return new Set();
    const r = await this.call('POST', `${API_PREFIX}/chunks/missing`, [encodeDigests(hashes)]);
    return new Set(decodeDigests(r.body));
  }

  async putChunks(frames: readonly ChunkFrame[]): Promise<void> {
    if (frames.length === 0) return;
    const r = await this.call('POST', `${API_PREFIX}/chunks`, encodeBatch(frames));
    const answer = (JSON.parse(r.body.toString('utf8')) as { replication?: ReplicationAnswer })
      .replication;
    if (answer) this.uploadReplication = fewestReplicas(this.uploadReplication, answer);
  }

  /** The base the node picks for each request, with its block signatures. */
  async signatures(requests: readonly BaseRequest[]): Promise<BaseSignatures[]> {
    if (requests.length === 0) return [];
    const r = await this.call('POST', `${API_PREFIX}/chunks/signatures`, [
      encodeBaseRequests(requests),
    ]);
    const answers = decodeBaseSignatures(r.body);
    if (answers.length !== requests.length) {
      throw new TongbuError(
        'INTERNAL',
        `node answered ${answers.length} of ${requests.length} signature requests`,
      );
    }
    return answers;
  }

  /** Sends chunks as deltas; the node names those it could not rebuild (send them whole). */
  async putDeltas(frames: readonly DeltaFrame[]): Promise<ContentHash[]> {
    if (frames.length === 0) return [];
    const r = await this.call('POST', `${API_PREFIX}/chunks/delta`, encodeDeltaFrames(frames));
    const answer = JSON.parse(r.body.toString('utf8')) as {
      failed: ContentHash[];
      replication?: ReplicationAnswer;
    };
    if (answer.replication)
      this.uploadReplication = fewestReplicas(this.uploadReplication, answer.replication);
    return answer.failed;
  }

  async fetchChunks(hashes: readonly ContentHash[]): Promise<ChunkFrame[]> {
    const r = await this.call('POST', `${API_PREFIX}/chunks/fetch`, [encodeDigests(hashes)]);
    return decodeBatch(r.body);
  }

  async getObject(hash: ContentHash): Promise<Buffer> {
    return (await this.call('GET', `${API_PREFIX}/objects/${hash}`)).body;
  }

  async json(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? [] : [Buffer.from(JSON.stringify(body))];
    const r = await this.call(
      method,
      path,
      payload,
      body === undefined ? undefined : 'application/json',
    );
    return JSON.parse(r.body.toString('utf8')) as unknown;
  }

  /** One request, failing over to the next node when this one is unreachable. */
  async call(
    method: string,
    path: string,
    body: readonly Buffer[] = [],
    type?: string,
  ): Promise<RawResponse> {
    let lastError: TongbuError | undefined;
    for (let tries = 0; tries < this.target.hosts.length; tries++) {
      const host = this.target.hosts[this.current]!;
      try {
        return await this.once(host, method, path, body, type);
      } catch (err) {
        if (!(err instanceof TongbuError) || err.code !== 'UNAVAILABLE') throw err;
        lastError = err;
        this.current = (this.current + 1) % this.target.hosts.length;
      }
    }
    throw lastError ?? new TongbuError('UNAVAILABLE', `${this.target.url}: no node reachable`);
  }

  private once(
    host: string,
    method: string,
    path: string,
    body: readonly Buffer[],
    type?: string,
  ): Promise<RawResponse> {
    const length = body.reduce((n, b) => n + b.length, 0);
    const colon = host.lastIndexOf(':');
    const hostname = host.slice(0, colon).replace(/^\[|\]$/g, '');
    const send = this.target.tls ? httpsRequest : httpRequest;
    return new Promise<RawResponse>((resolve, reject) => {
      const req = send(
        {
          host: hostname,
          port: Number(host.slice(colon + 1)),
          method,
          path,
          agent: this.agent,
          headers: {
            ...this.headers,
            'content-length': length,
            ...(type
              ? { 'content-type': type }
              : length > 0
                ? { 'content-type': 'application/octet-stream' }
                : {}),
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('error', (err) => reject(unreachable(host, err)));
          res.on('end', () => {
            const resBody = Buffer.concat(parts);
            this.received += resBody.length;
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300)
              resolve({ status, headers: res.headers, body: resBody });
            else reject(decodeError(host, method, path, status, resBody));
          });
        },
      );
      req.on('error', (err) => reject(unreachable(host, err)));
      if (this.timeoutMs !== undefined) {
        const ms = this.timeoutMs;
        req.setTimeout(ms, () => {
          const err = new Error(`no answer within ${ms} ms`) as NodeJS.ErrnoException;
          err.code = 'ETIMEDOUT';
          req.destroy(err);
        });
      }
      // A batch is two buffers a chunk: corked, they leave in a few writev calls instead of thousands of writes.
      req.cork();
      for (const b of body) req.write(b);
      req.uncork();
      this.sent += length;
      req.end();
    });
  }
}

/** What a cluster node says of a replicated write. */
export interface ReplicationAnswer {
  readonly mode: string;
  /** The fewest replicas any chunk of the write reached. */
  readonly replicas: number;
  /** R. */
  readonly wanted: number;
}

export function fewestReplicas(
  a: ReplicationAnswer | undefined,
  b: ReplicationAnswer | undefined,
): ReplicationAnswer | undefined {
  if (!a || !b) return a ?? b;
  return a.replicas <= b.replicas ? a : b;
}

function unreachable(host: string, err: Error): TongbuError {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (UNREACHABLE.has(code) || err.message === 'socket hang up') {
    return new TongbuError('UNAVAILABLE', `tongbu node ${host} unreachable: ${err.message}`, {
      data: { host },
      cause: err,
    });
  }
  return new TongbuError('IO', `tongbu node ${host}: ${err.message}`, {
    data: { host },
    cause: err,
  });
}

function decodeError(
  host: string,
  method: string,
  path: string,
  status: number,
  body: Buffer,
): TongbuError {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: TongbuErrorJSON };
    if (parsed.error?.code) return TongbuError.fromJSON(parsed.error);
  } catch {
    // not a tongbu error body
  }
  const code =
    status === 401
      ? 'UNAUTHORIZED'
      : status === 403
        ? 'PERMISSION_DENIED'
        : status === 404
          ? 'NOT_FOUND'
          : status >= 500
            ? 'UNAVAILABLE'
            : 'BAD_ARGUMENT';
  return new TongbuError(code, `${host}: ${method} ${path} answered ${status}`, {
    data: { status },
  });
}
