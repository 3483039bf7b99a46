/**
 * A namespace of a tongbu node as an endpoint of the one sync engine. Reading
 * lists a commit (the head, or the ref in the URL) and fetches chunks,
 * verifying each. Writing uploads chunks the node lacks and collects entry
 * changes; `commit` applies them all at once, so readers see the old version
 * or the new one, never a mix.
 */
import { TongbuError } from '../../core/errors.js';
import { algorithmOf, hashStream, STORE_HASH, type ContentHash } from '../../core/hash.js';
import type { ChunkerOptions } from '../../core/fastcdc.js';
import type { Key } from '../../core/key.js';
import type { CommitResult, EntryChange } from '../../store/store.js';
import type { StoredEntry } from '../../store/stored-entry.js';
import type {
  CommitInfo,
  Endpoint,
  EndpointCapabilities,
  Entry,
  EntryKind,
  EntryMeta,
  HashOptions,
  ListOptions,
  ReadOptions,
  WriteRequest,
  WriteResult,
} from '../endpoint.js';
import { writeAlgorithm } from '../endpoint.js';
import { readContent } from './chunk-download.js';
import { ChunkPool } from './chunk-pool.js';
import { ManifestCache } from './manifest-cache.js';
import { uploadContent } from './chunk-upload.js';
import { encodeKeyPath } from './protocol.js';
import { fewestReplicas, TongbuClient, type ReplicationAnswer } from './tongbu-client.js';
import { parseTongbuUrl, type TongbuUrl } from './tongbu-url.js';

const CAPABILITIES: EndpointCapabilities = Object.freeze({
  // Entries name their whole-content hash: blake3 for what this client uploads (sha256 when the
  // source compares by sha256, as table snapshots do; entries stored by older clients are sha256).
  listedHashes: ['blake3'] as const,
  mtimePrecisionMs: 0.001,
  symlinks: true,
  emptyDirs: true,
  modes: true,
  nameFolding: 'none',
  localPath: false,
  localCopy: false,
  atomicCommit: true,
  dedupWrites: true,
});

export interface TongbuEndpointOptions {
  readonly token?: string;
  readonly transfers?: number;
  /** Tag the commit a sync makes. */
  readonly tag?: string;
  readonly message?: string;
  /** On a cluster: the replication mode of the writes (sync, quorum, async). */
  readonly replication?: string;
  /** `stale` lets any node answer ref reads from its possibly older view. */
  readonly consistency?: 'linearizable' | 'stale';
  /** Send lacked chunks whole, never as deltas against the version they replace. */
  readonly wholeFile?: boolean;
  /** A directory keeping the manifests uploaded, for the next upload of the same files. */
  readonly manifestCache?: string;
}

type Stored = StoredEntry & { readonly key: string };

/**
 * Files from this size on are chunked and hashed in worker threads; a
 * smaller one is done before a worker could take it.
 */
const POOL_FROM = 8 << 20;

export class TongbuEndpoint implements Endpoint {
  readonly url: string;
  readonly capabilities = CAPABILITIES;
  readonly target: TongbuUrl;
  private readonly client: TongbuClient;
  private readonly options: TongbuEndpointOptions;
  private chunker: ChunkerOptions | undefined;
  /** The commit read from, and the base of the commit written. */
  private base: ContentHash | undefined;
  private readonly listed = new Map<Key, Stored>();
  private readonly changes = new Map<string, EntryChange>();
  /** Worker threads that chunk and hash large files; started by the first one. */
  private pool: ChunkPool | undefined;
  private readonly manifests: ManifestCache | undefined;
  /** Kept manifests whose chunks this run did not ask the node about. */
  private readonly trusted = new Set<ContentHash>();
  sentBytes = 0;
  /** Chunks sent as deltas against the version they replace. */
  deltaChunks = 0;

  constructor(url: string, options: TongbuEndpointOptions = {}) {
    this.url = url;
    this.target = parseTongbuUrl(url);
    this.options = options;
    this.manifests = options.manifestCache ? new ManifestCache(options.manifestCache) : undefined;
    this.client = new TongbuClient(this.target, {
      ...(options.token !== undefined ? { token: options.token } : {}),
      connections: Math.max(4, options.transfers ?? 4),
      headers: {
        'x-tongbu-namespace': this.target.namespace,
        ...(options.replication !== undefined
          ? { 'x-tongbu-replication': options.replication }
          : {}),
        ...(options.consistency !== undefined
          ? { 'x-tongbu-consistency': options.consistency }
          : {}),
      },
    });
  }

  /** Bytes on the wire so far (request and response bodies). */
  get wireBytes(): { sent: number; received: number } {
    return { sent: this.client.sent, received: this.client.received };
  }

  async open(options: { readonly create: boolean }): Promise<void> {
    const health = await this.client.health();
    if ((health.hash ?? 'sha256') !== STORE_HASH) {
      throw new TongbuError(
        'SCHEMA_MISMATCH',
        `${this.url}: the node (tongbu ${health.version}) addresses chunks by ${health.hash ?? 'sha256'}, this client by ${STORE_HASH}; run the same tongbu version on both`,
      );
    }
    this.chunker = health.chunker;
    if (options.create && this.target.ref !== undefined && !this.target.ref.startsWith('heads/')) {
      throw new TongbuError(
        'BAD_URL',
        `${this.url}: cannot write to a tag or commit; drop @${this.target.ref} (use --tag)`,
      );
    }
    try {
      const r = (await this.client.json(
        'GET',
        this.client.nsPath('refs', this.target.ref ?? 'heads/main'),
      )) as {
        commit: ContentHash;
      };
      this.base = r.commit;
    } catch (err) {
      const notFound = err instanceof TongbuError && err.code === 'NOT_FOUND';
      if (!notFound || !options.create || this.target.ref !== undefined) {
        if (notFound)
          throw new TongbuError('SOURCE_NOT_FOUND', `${this.url}: ${err.message}`, {
            data: { url: this.url },
          });
        throw err;
      }
      this.base = undefined;
    }
  }

  async *list(options: ListOptions = {}): AsyncIterable<readonly Entry[]> {
    if (this.base === undefined) return;
    const prefix = this.target.prefix ? `${this.target.prefix}/` : '';
    let after: string | undefined;
    for (;;) {
      options.signal?.throwIfAborted();
      const q = new URLSearchParams({ ref: this.base, limit: '20000' });
      if (prefix) q.set('prefix', prefix);
      if (after !== undefined) q.set('after', after);
      const page = (await this.client.json(
        'GET',
        `${this.client.nsPath('entries')}?${q.toString()}`,
      )) as {
        entries: Stored[];
        next: string | null;
      };
      const out: Entry[] = [];
      for (const s of page.entries) {
        const key = s.key.slice(prefix.length);
        if (key === '') continue;
        this.listed.set(key, s);
        out.push(toEntry(key, s));
      }
      if (out.length > 0) yield out;
      if (page.next === null) return;
      after = page.next;
    }
  }

  async stat(key: Key): Promise<Entry | undefined> {
    const pending = this.changes.get(this.fullKey(key));
    if (pending) return pending.entry ? toEntry(key, pending.entry) : undefined;
    const s = await this.lookup(key);
    return s ? toEntry(key, s) : undefined;
  }

  async *read(key: Key, options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const s = await this.lookup(key);
    if (!s || s.kind !== 'file')
      throw new TongbuError('NOT_FOUND', `${this.url}: no file ${key}`, { data: { key } });
    yield* readContent(this.client, s, this.requireChunker(), options);
  }

  /** The stored hash when it is in `algorithm`; otherwise the content is read and hashed. */
  async hash(keys: readonly Key[], options: HashOptions = {}): Promise<ContentHash[]> {
    const algorithm = options.algorithm ?? 'sha256';
    return Promise.all(
      keys.map(async (k) => {
        const s = await this.lookup(k);
        if (!s?.hash)
          throw new TongbuError('NOT_FOUND', `${this.url}: no file ${k}`, { data: { key: k } });
        if (algorithmOf(s.hash) === algorithm) return s.hash;
        return (await hashStream(this.read(k), algorithm)).hash;
      }),
    );
  }

  async write(
    request: WriteRequest,
    content: AsyncIterable<Uint8Array>,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<WriteResult> {
    const pool = request.size >= POOL_FROM ? (this.pool ??= new ChunkPool()) : undefined;
    const listed = this.listed.get(request.key);
    const old = listed?.kind === 'file' ? listed.data : undefined;
    const oldManifest = old !== undefined && (listed?.parts ?? 1) > 1;
    const file =
      pool && request.sourcePath !== undefined
        ? { path: request.sourcePath, size: request.size, mtimeMs: request.mtimeMs }
        : undefined;
    const oldChunks =
      file && oldManifest && this.manifests ? await this.manifests.get(old) : undefined;
    if (oldChunks) this.trusted.add(old!);
    const up = await uploadContent(this.client, this.requireChunker(), content, {
      ...options,
      ...(old !== undefined && !this.options.wholeFile
        ? { base: { object: old, manifest: oldManifest } }
        : {}),
      ...(oldChunks ? { old: oldChunks } : {}),
      algorithm: writeAlgorithm(request),
      ...(pool ? { pool } : {}),
      ...(file ? { file } : {}),
    });
    if (up.manifest && up.data && this.manifests) await this.manifests.put(up.data, up.manifest);
    if (up.size !== request.size) {
      throw new TongbuError(
        'FILE_CHANGED',
        `${request.key}: read ${up.size} bytes, expected ${request.size}`,
        {
          data: { key: request.key },
        },
      );
    }
    if (request.expectedHash !== undefined && up.hash !== request.expectedHash) {
      throw new TongbuError(
        'HASH_MISMATCH',
        `${request.key}: content hashes to ${up.hash}, expected ${request.expectedHash}`,
        {
          data: { key: request.key },
        },
      );
    }
    this.sentBytes += up.sentBytes;
    this.deltaChunks += up.deltaChunks;
    const entry: StoredEntry = {
      kind: 'file',
      size: up.size,
      mtimeMs: request.mtimeMs,
      mode: request.mode,
      hash: up.hash,
      parts: up.parts,
      ...(up.data ? { data: up.data } : {}),
    };
    this.stage(request.key, entry);
    return { entry: toEntry(request.key, entry), hash: up.hash };
  }

  mkdir(key: Key, meta: EntryMeta): Promise<void> {
    this.stage(key, { kind: 'dir', size: 0, mtimeMs: meta.mtimeMs, mode: meta.mode });
    return Promise.resolve();
  }

  symlink(key: Key, target: string, meta: EntryMeta): Promise<void> {
    this.stage(key, { kind: 'symlink', size: 0, mtimeMs: meta.mtimeMs, mode: 0, target });
    return Promise.resolve();
  }

  async setMeta(key: Key, meta: EntryMeta): Promise<Entry> {
    const pending = this.changes.get(this.fullKey(key));
    const current = pending ? pending.entry : await this.lookup(key);
    if (!current)
      throw new TongbuError('NOT_FOUND', `${this.url}: no entry ${key}`, { data: { key } });
    const next: StoredEntry = { ...storedFields(current), mtimeMs: meta.mtimeMs, mode: meta.mode };
    this.stage(key, next);
    return toEntry(key, next);
  }

  remove(key: Key, _kind: EntryKind): Promise<void> {
    const full = this.fullKey(key);
    this.changes.set(full, { key: full });
    return Promise.resolve();
  }

  cleanup(): Promise<number> {
    return Promise.resolve(0);
  }

  /** Writes are invisible until commit; nothing to flush. */
  flush(): Promise<void> {
    return Promise.resolve();
  }

  /** Applies every staged change in one commit (and the tag, if asked). */
  async commit(message?: string): Promise<CommitInfo | undefined> {
    const tag = this.options.tag;
    // Nothing to record, unless the namespace is new: an empty source makes its first, empty version.
    if (this.changes.size === 0 && tag === undefined && this.base !== undefined) return undefined;
    const body = {
      base: this.base ?? null,
      changes: [...this.changes.values()].map((c) => ({ key: c.key, entry: c.entry ?? null })),
      message: message ?? this.options.message ?? '',
      ...(tag !== undefined ? { tag } : {}),
    };
    const r = (await this.client
      .json('POST', this.client.nsPath('commits'), body)
      .catch(async (err: unknown) => {
        // The node lacks a chunk of a version it lists (damage it could not repair): the kept
        // manifests said it had them, so forget those; the re-run asks about every chunk.
        if (err instanceof TongbuError && /names missing chunk/.test(err.message)) {
          for (const m of this.trusted) await this.manifests?.forget(m);
        }
        throw err;
      })) as CommitResult & {
      replication?: ReplicationAnswer;
    };
    this.changes.clear();
    this.base = r.commit;
    const replication = fewestReplicas(this.client.uploadReplication, r.replication);
    return {
      commit: r.commit,
      entries: r.entries,
      merged: r.merged,
      uploadedBytes: this.sentBytes,
      ...(replication ? { replication } : {}),
      ...(r.tag !== undefined ? { tag: r.tag } : {}),
    };
  }

  async close(): Promise<void> {
    await this.manifests?.trim();
    this.client.close();
    await this.pool?.close();
  }

  private stage(key: Key, entry: StoredEntry): void {
    const full = this.fullKey(key);
    this.changes.set(full, { key: full, entry });
  }

  private fullKey(key: Key): string {
    return this.target.prefix ? `${this.target.prefix}/${key}` : key;
  }

  private async lookup(key: Key): Promise<Stored | undefined> {
    const known = this.listed.get(key);
    if (known || this.base === undefined) return known;
    const q = new URLSearchParams({ ref: this.base });
    try {
      const s = (await this.client.json(
        'GET',
        `${this.client.nsPath('entry', encodeKeyPath(this.fullKey(key)))}?${q.toString()}`,
      )) as Stored;
      this.listed.set(key, s);
      return s;
    } catch (err) {
      if (err instanceof TongbuError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  private requireChunker(): ChunkerOptions {
    if (!this.chunker) throw new TongbuError('INTERNAL', `${this.url}: write before open`);
    return this.chunker;
  }
}

function toEntry(key: Key, s: StoredEntry): Entry {
  return {
    key,
    kind: s.kind,
    size: s.size,
    mtimeMs: s.mtimeMs,
    mode: s.mode,
    ...(s.target !== undefined ? { target: s.target } : {}),
    ...(s.hash !== undefined ? { hash: s.hash } : {}),
  };
}

/** The fields of a stored entry, without what a listing adds (key, commit, chunks). */
function storedFields(s: StoredEntry): StoredEntry {
  return {
    kind: s.kind,
    size: s.size,
    mtimeMs: s.mtimeMs,
    mode: s.mode,
    ...(s.hash !== undefined ? { hash: s.hash } : {}),
    ...(s.data !== undefined ? { data: s.data } : {}),
    ...(s.parts !== undefined ? { parts: s.parts } : {}),
    ...(s.target !== undefined ? { target: s.target } : {}),
  };
}
