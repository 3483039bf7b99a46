/**
 * Store nodes for end-to-end tests: `tongbu serve` in a real process on a
 * free loopback port, with its admin token, raw HTTP requests against it
 * (no URL normalization, so `..` reaches the server as sent), its metrics,
 * and the bytes of object data in its data directory. Every node started here
 * is tracked and ended by PID in {@link stopAllNodes}.
 */
import * as fs from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { storeAddress } from '../core/hash.js';
import { makeTempDir, startCli, type CliResult, type RunningCli } from './cli.js';

export interface StoreNodeOptions {
  /** Data directory; a fresh temp directory by default. */
  readonly dataDir?: string;
  /** Port to listen on; a free one by default. */
  readonly port?: number;
  /** Serve HTTPS with this certificate and key (PEM files). */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly env?: NodeJS.ProcessEnv;
  /** More `tongbu serve` arguments (a cluster node's --catalog, --node-id…). */
  readonly args?: readonly string[];
}

export interface StoreNode {
  /** `http://127.0.0.1:PORT` (https with TLS). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** The admin token of the node (`*:admin`). */
  readonly token: string;
  readonly tls: boolean;
  /** PID of the current server process. */
  readonly pid: number;
  /** `tongbu://127.0.0.1:PORT/<rest>` (tongbus:// with TLS). */
  tongbuUrl(rest: string): string;
  /** Sends a signal to the server process and waits for it to exit. */
  kill(signal: NodeJS.Signals): Promise<CliResult>;
  /** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. */
  stop(): Promise<CliResult>;
  /** Starts a new server process on the same data directory and port. */
  restart(): Promise<void>;
  /** Everything the current process wrote on stderr so far. */
  stderr(): string;
}

const LISTENING = /listening on (https?):\/\/127\.0\.0\.1:(\d+)/;
const START_TIMEOUT_MS = 20_000;
const running = new Set<RunningCli>();

/** A port that was free a moment ago: bound on port 0, then released. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `tongbu serve` and waits for its "listening" line. */
export async function startStoreNode(options: StoreNodeOptions = {}): Promise<StoreNode> {
  const dataDir = options.dataDir ?? path.join(await makeTempDir('tongbu-node-'), 'data');
  let port = options.port ?? 0;
  let proc: RunningCli | undefined;
  let err: string[] = [];
  const tlsArgs = [
    ...(options.tls ? ['--tls-cert', options.tls.cert, '--tls-key', options.tls.key] : []),
    ...(options.args ?? []),
  ];

  const launch = async (fixedPort: boolean): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      if (!fixedPort) port = await freePort();
      const started = await spawnNode(dataDir, port, tlsArgs, options.env);
      if (started.ok) {
        proc = started.proc;
        err = started.stderr;
        return;
      }
      // Another process took the port between the probe and the bind: try again.
      const inUse = started.stderr.join('').includes('EADDRINUSE');
      if (!inUse || attempt >= 5) {
        throw new Error(`tongbu serve did not start on port ${port}:\n${started.stderr.join('')}`);
      }
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  };
  await launch(options.port !== undefined);

  const token = fs.readFileSync(path.join(dataDir, 'admin.token'), 'utf8').trim();
  const current = (): RunningCli => {
    if (!proc) throw new Error('no server process');
    return proc;
  };
  const kill = async (signal: NodeJS.Signals): Promise<CliResult> => {
    const p = current();
    if (p.child.exitCode === null && p.child.signalCode === null)
      process.kill(p.child.pid!, signal);
    const result = await p.done;
    running.delete(p);
    return result;
  };
  const node: StoreNode = {
    get url() {
      return `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dataDir,
    token,
    tls: options.tls !== undefined,
    get pid() {
      return current().child.pid!;
    },
    tongbuUrl: (rest) => `${options.tls ? 'tongbus' : 'tongbu'}://127.0.0.1:${port}/${rest}`,
    kill,
    stop: () => endProcess(current()),
    restart: () => launch(true),
    stderr: () => err.join(''),
  };
  return node;
}

async function spawnNode(
  dataDir: string,
  port: number,
  tlsArgs: readonly string[],
  env: NodeJS.ProcessEnv | undefined,
): Promise<{ ok: boolean; proc: RunningCli; stderr: string[] }> {
  const proc = startCli(
    ['serve', '--data', dataDir, '--listen', `127.0.0.1:${port}`, ...tlsArgs],
    env ? { env } : {},
  );
  running.add(proc);
  const stderr: string[] = [];
  const ok = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS);
    proc.child.stderr?.on('data', (b: Buffer) => {
      stderr.push(b.toString('utf8'));
      if (LISTENING.test(stderr.join(''))) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void proc.done.then(() => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (!ok) await endProcess(proc);
  return { ok, proc, stderr };
}

/** SIGTERM, SIGKILL after 10 s; by PID, only processes started here. */
async function endProcess(proc: RunningCli): Promise<CliResult> {
  const alive = (): boolean => proc.child.exitCode === null && proc.child.signalCode === null;
  if (alive()) process.kill(proc.child.pid!, 'SIGTERM');
  const timer = setTimeout(() => {
    if (alive()) process.kill(proc.child.pid!, 'SIGKILL');
  }, 10_000);
  try {
    return await proc.done;
  } finally {
    clearTimeout(timer);
    running.delete(proc);
  }
}

/** Ends every node process this module started that is still running. */
export async function stopAllNodes(): Promise<void> {
  await Promise.all([...running].map((p) => endProcess(p)));
}

export interface HttpReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
  /** `error.code` of a JSON error body. */
  readonly errorCode: string | undefined;
}

export interface HttpOptions {
  readonly method?: string;
  readonly body?: Buffer | string | object;
  readonly headers?: Record<string, string | number>;
  /** Bearer token; the node's admin token by default, null for none. */
  readonly token?: string | null;
  /** CA certificate for a TLS node. */
  readonly ca?: Buffer;
}

/** One HTTP request to a node; `pathAndQuery` is sent exactly as given. */
export function httpCall(
  node: StoreNode,
  pathAndQuery: string,
  options: HttpOptions = {},
): Promise<HttpReply> {
  const raw = options.body;
  const body =
    raw === undefined
      ? undefined
      : Buffer.isBuffer(raw)
        ? raw
        : typeof raw === 'string'
          ? Buffer.from(raw)
          : Buffer.from(JSON.stringify(raw));
  const token = options.token === undefined ? node.token : options.token;
  const send = node.tls ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      {
        host: '127.0.0.1',
        port: node.port,
        method: options.method ?? (body ? 'POST' : 'GET'),
        path: pathAndQuery,
        agent: false,
        ...(options.ca ? { ca: options.ca } : {}),
        headers: {
          ...(body ? { 'content-length': body.length } : {}),
          ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('error', reject);
        res.on('end', () => resolve(reply(res.statusCode ?? 0, res.headers, Buffer.concat(parts))));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export function reply(status: number, headers: IncomingHttpHeaders, body: Buffer): HttpReply {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    json = undefined;
  }
  const code = (json as { error?: { code?: unknown } } | undefined)?.error?.code;
  return { status, headers, body, json, errorCode: typeof code === 'string' ? code : undefined };
}

/** A counter or gauge of GET /metrics, summed over its label sets. */
export async function metric(node: StoreNode, name: string): Promise<number> {
  const r = await httpCall(node, '/metrics');
  if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.body.toString()}`);
  let total = 0;
  for (const line of r.body.toString('utf8').split('\n')) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) total += Number(m[2]);
  }
  return total;
}

/** Files of a data directory that hold no object data: catalogs, indexes, markers, temp files. */
const NOT_OBJECT_DATA = /(\.db(-wal|-shm|-journal)?|^admin\.token|^running|^synced-at)$/;

/**
 * Bytes of object data in a node's data directory, whatever its layout (one
 * file per chunk, or pack files): every file but catalogs, indexes, markers
 * and temp files. Any object written makes it grow.
 */
export function storedBytes(dataDir: string): number {
  let bytes = 0;
  const walk = (dir: string): void => {
    let names: fs.Dirent[];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of names) {
      const p = path.join(dir, d.name);
      if (d.isDirectory()) {
        if (d.name !== 'tmp') walk(p);
      } else if (!NOT_OBJECT_DATA.test(d.name)) {
        bytes += fs.statSync(p, { throwIfNoEntry: false })?.size ?? 0;
      }
    }
  };
  walk(dataDir);
  return bytes;
}

/** The store address (`blake3:<hex>`) of bytes: the address of a chunk. */
export function chunkAddress(bytes: Uint8Array): string {
  return storeAddress(bytes);
}

/** Stores one chunk with PUT /v1/chunks/<hash>; returns its address. */
export async function putChunk(node: StoreNode, bytes: Buffer): Promise<string> {
  const hash = chunkAddress(bytes);
  const r = await httpCall(node, `/v1/chunks/${hash}`, { method: 'PUT', body: bytes });
  if (r.status !== 200) throw new Error(`PUT chunk: ${r.status} ${r.body.toString()}`);
  return hash;
}

/** The stored entry of a file whose content is one chunk (see stored-entry.ts). */
export function fileEntry(
  bytes: Uint8Array,
  meta: { mtimeMs?: number; mode?: number } = {},
): Record<string, unknown> {
  const hash = chunkAddress(bytes);
  return {
    kind: 'file',
    size: bytes.length,
    mtimeMs: meta.mtimeMs ?? 1_600_000_000_000,
    mode: meta.mode ?? 0o644,
    hash,
    ...(bytes.length > 0 ? { data: hash, parts: 1 } : { parts: 0 }),
  };
}
