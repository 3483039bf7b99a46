/**
 * The local filesystem endpoint: a directory tree. Writes are atomic (temp
 * file in the same directory, hashed as written, synced, renamed); symlinks
 * are stored as links and never followed; names are kept byte-exact, and a
 * name that is not valid UTF-8 is refused with an error naming its bytes.
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fromSystemError, toTongbuError, TongbuError } from '../../core/errors.js';
import { ContentHasher, DEFAULT_HASH, type ContentHash } from '../../core/hash.js';
import { parentKey, quoteKey, validateKey, type Key } from '../../core/key.js';
import {
  writeAlgorithm,
  type Endpoint,
  type EndpointCapabilities,
  type Entry,
  type EntryKind,
  type EntryMeta,
  type HashOptions,
  type ListOptions,
  type LocalDiff,
  type LocalDiffOptions,
  type LocalCopyItem,
  type LocalCopyOptions,
  type WriteRequest,
  type WriteResult,
} from '../endpoint.js';
import { diffLocalTrees } from './local-diff.js';
import { workerErrorToTongbu } from './fs-entry.js';
import { FsWorkerPool } from './fs-worker-pool.js';
import { fsTime, statEntry, tempPathIn, unpackEntries } from './fs-entry.js';

const CAPABILITIES: EndpointCapabilities = {
  listedHashes: [],
  // libuv keeps microseconds, and times pass through floating point.
  mtimePrecisionMs: 0.002,
  symlinks: true,
  emptyDirs: true,
  modes: true,
  nameFolding: 'none',
  localPath: true,
  localCopy: true,
  atomicCommit: false,
  dedupWrites: false,
};

export interface FsEndpointOptions {
  /** Worker threads for copying, hashing and long walks, each started on first need. */
  readonly workers?: number;
}

export class FsEndpoint implements Endpoint {
  readonly capabilities = CAPABILITIES;
  readonly localPath: string;
  private pool: FsWorkerPool | undefined;
  private staleTemps: string[] = [];
  /** Directories known to exist as real directories (not links). */
  private readonly knownDirs = new Set<Key>();

  constructor(
    readonly url: string,
    private readonly options: FsEndpointOptions = {},
  ) {
    this.localPath = path.resolve(url);
  }

  async open({ create }: { readonly create: boolean }): Promise<void> {
    let stat: fs.Stats | undefined;
    try {
      stat = await fsp.stat(this.localPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw fromSystemError(err, this.url, 'cannot open');
      }
    }
    if (stat === undefined) {
      if (!create) {
        throw new TongbuError('SOURCE_NOT_FOUND', `source ${this.url} does not exist`, {
          data: { path: this.url },
        });
      }
      await fsp.mkdir(this.localPath, { recursive: true }).catch((err: unknown) => {
        throw fromSystemError(err, this.url, 'cannot create');
      });
      return;
    }
    if (!stat.isDirectory()) {
      throw new TongbuError('NOT_A_DIRECTORY', `${this.url} is not a directory`, {
        data: { path: this.url },
      });
    }
    await fsp
      .access(this.localPath, create ? fs.constants.W_OK : fs.constants.R_OK)
      .catch((err: unknown) => {
        throw fromSystemError(err, this.url, create ? 'cannot write to' : 'cannot read');
      });
  }

  async *list(options: ListOptions = {}): AsyncIterable<readonly Entry[]> {
    this.staleTemps = [];
    const queue: Entry[][] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failure: unknown;
    const pool = this.workers();
    const onAbort = (): void => pool.abortAll();
    options.signal?.addEventListener('abort', onAbort);
    pool
      .walk(this.localPath, (batch) => {
        this.staleTemps.push(...batch.temps);
        try {
          for (const p of batch.problems) {
            const err = workerErrorToTongbu(p, 'cannot list');
            if (!options.onProblem) throw err;
            options.onProblem(err);
          }
        } catch (err) {
          failure ??= err;
        }
        queue.push(unpackEntries(batch));
        wake?.();
      })
      .then(
        () => (done = true),
        (err: unknown) => {
          failure ??= err;
          done = true;
        },
      )
      .finally(() => wake?.());
    try {
      for (;;) {
        if (failure !== undefined) throw toTongbuError(failure);
        const batch = queue.shift();
        if (batch !== undefined) yield batch;
        else if (done) break;
        else await new Promise<void>((resolve) => (wake = resolve));
      }
      options.signal?.throwIfAborted();
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  async stat(key: Key): Promise<Entry | undefined> {
    const p = this.pathOf(key);
    try {
      return await statEntry(key, p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw fromSystemError(err, p, 'cannot stat');
    }
  }

  async *read(key: Key, options: { signal?: AbortSignal } = {}): AsyncIterable<Uint8Array> {
    const p = this.pathOf(key);
    try {
      const stream = fs.createReadStream(p, {
        highWaterMark: 1 << 20,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      for await (const chunk of stream) yield chunk as Buffer;
    } catch (err) {
      throw fromSystemError(err, p, 'cannot read');
    }
  }

  async hash(keys: readonly Key[], options: HashOptions = {}): Promise<ContentHash[]> {
    const algorithm = options.algorithm ?? DEFAULT_HASH;
    const pool = this.workers();
    const batches: Promise<ContentHash[]>[] = [];
    for (let i = 0; i < keys.length; i += 32) {
      const paths = keys.slice(i, i + 32).map((k) => this.pathOf(k));
      batches.push(
        pool.hash(paths, algorithm).then((results) =>
          results.map((r) => {
            if (r.ok) return r.hash as ContentHash;
            throw workerErrorToTongbu(r.error, 'cannot hash');
          }),
        ),
      );
    }
    return (await Promise.all(batches)).flat();
  }

  async write(
    request: WriteRequest,
    content: AsyncIterable<Uint8Array>,
    options: { signal?: AbortSignal } = {},
  ): Promise<WriteResult> {
    const dst = this.pathOf(request.key);
    await this.ensureDir(parentKey(request.key));
    const tmp = tempPathIn(path.dirname(dst));
    let handle: fsp.FileHandle | undefined;
    try {
      options.signal?.throwIfAborted();
      handle = await fsp.open(tmp, 'wx', 0o600);
      const hasher = new ContentHasher(writeAlgorithm(request));
      for await (const chunk of content) {
        options.signal?.throwIfAborted();
        hasher.update(chunk);
        await handle.write(chunk);
      }
      const hash = hasher.digest();
      checkWritten(request, hasher.bytes, hash);
      await handle.chmod(request.mode);
      await handle.utimes(new Date(), fsTime(request.mtimeMs));
      await handle.datasync();
      const stored = await handle.stat();
      await handle.close();
      handle = undefined;
      await fsp.rename(tmp, dst);
      const entry: Entry = {
        key: request.key,
        kind: 'file',
        size: stored.size,
        mtimeMs: stored.mtimeMs,
        mode: stored.mode & 0o7777,
      };
      return { entry, hash };
    } catch (err) {
      await handle?.close().catch(() => undefined);
      await fsp.rm(tmp, { force: true });
      if (options.signal?.aborted) {
        throw new TongbuError('ABORTED', `write of ${quoteKey(request.key)} aborted`);
      }
      throw fromSystemError(err, dst, 'cannot write');
    }
  }

  async mkdir(key: Key, meta: EntryMeta): Promise<void> {
    await this.ensureDir(validateKey(key), meta);
  }

  /**
   * Creates directory `key` and its missing parents, never through a link:
   * a symlink where a directory should be is an error, not a way out of the
   * root. `meta` applies to `key` when it is created.
   */
  private async ensureDir(key: Key, meta?: EntryMeta): Promise<void> {
    if (key === '' || this.knownDirs.has(key)) return;
    await this.ensureDir(parentKey(key));
    const p = this.pathOf(key);
    let created = false;
    try {
      await fsp.mkdir(p, { mode: 0o700 });
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw fromSystemError(err, p, 'cannot create directory');
      }
    }
    const stat = await fsp.lstat(p);
    if (!stat.isDirectory()) {
      const what = stat.isSymbolicLink() ? 'a symlink, never followed' : 'not a directory';
      throw new TongbuError('NOT_A_DIRECTORY', `cannot create directory ${p}: it is ${what}`, {
        data: { path: p },
      });
    }
    if (created) {
      // Owner-writable until the run sets final modes, so a read-only
      // directory can still be filled.
      await fsp.chmod(p, (meta?.mode || 0o755) | 0o700);
      if (meta) await fsp.utimes(p, fsTime(meta.mtimeMs), fsTime(meta.mtimeMs));
    }
    this.knownDirs.add(key);
  }

  async symlink(key: Key, target: string, meta: EntryMeta): Promise<void> {
    const p = this.pathOf(key);
    const tmp = tempPathIn(path.dirname(p));
    try {
      await this.ensureDir(parentKey(key));
      this.knownDirs.delete(key);
      await fsp.symlink(target, tmp);
      await fsp.lutimes(tmp, fsTime(meta.mtimeMs), fsTime(meta.mtimeMs));
      await fsp.rename(tmp, p);
    } catch (err) {
      await fsp.rm(tmp, { force: true });
      throw fromSystemError(err, p, 'cannot create link');
    }
  }

  async setMeta(key: Key, meta: EntryMeta): Promise<Entry> {
    const p = this.pathOf(key);
    try {
      const stat = await fsp.lstat(p);
      if (stat.isSymbolicLink()) {
        await fsp.lutimes(p, fsTime(meta.mtimeMs), fsTime(meta.mtimeMs));
      } else {
        if ((stat.mode & 0o7777) !== meta.mode) await fsp.chmod(p, meta.mode);
        await fsp.utimes(p, fsTime(stat.atimeMs), fsTime(meta.mtimeMs));
      }
      return await statEntry(key, p);
    } catch (err) {
      throw fromSystemError(err, p, 'cannot set metadata of');
    }
  }

  async remove(key: Key, kind: EntryKind): Promise<void> {
    const p = this.pathOf(key);
    this.knownDirs.clear();
    try {
      if (kind === 'dir') await fsp.rmdir(p);
      else await fsp.unlink(p);
    } catch (err) {
      // Absent already, or below something that is no longer a directory.
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'ENOENT') return;
      if (errno === 'ENOTDIR' && (await fsp.lstat(p).catch(() => undefined)) === undefined) return;
      throw fromSystemError(err, p, 'cannot remove');
    }
  }

  async cleanup(): Promise<number> {
    const temps = this.staleTemps;
    this.staleTemps = [];
    await Promise.all(temps.map((t) => fsp.rm(t, { force: true })));
    return temps.length;
  }

  /** One filesystem-wide sync (syncfs) instead of an fsync per file. */
  async flush(): Promise<void> {
    // Loaded here: a run that wrote nothing never flushes.
    const { execFile } = await import('node:child_process');
    try {
      await promisify(execFile)('sync', ['-f', this.localPath]);
    } catch (err) {
      throw fromSystemError(err, this.localPath, 'cannot sync');
    }
  }

  async close(): Promise<void> {
    await this.pool?.close();
    this.pool = undefined;
  }

  diffFromLocal(sourceRoot: string, options: LocalDiffOptions): Promise<LocalDiff> {
    this.staleTemps = [];
    return diffLocalTrees(this.workers(), sourceRoot, this.localPath, options, (temps) =>
      this.staleTemps.push(...temps),
    );
  }

  async copyFromLocal(
    sourceRoot: string,
    items: readonly LocalCopyItem[],
    options: LocalCopyOptions,
  ): Promise<void> {
    // Loaded here: a run with nothing to copy never needs it.
    const { copyLocalFiles } = await import('./local-copy.js');
    return copyLocalFiles(
      {
        pool: this.workers(),
        sourceRoot,
        destRoot: this.localPath,
        flush: () => this.flush(),
      },
      items,
      options,
    );
  }

  private workers(): FsWorkerPool {
    this.pool ??= new FsWorkerPool(this.options.workers ?? 4);
    return this.pool;
  }

  private pathOf(key: Key): string {
    return path.join(this.localPath, validateKey(key));
  }
}

function checkWritten(request: WriteRequest, bytes: number, hash: ContentHash): void {
  if (bytes !== request.size) {
    throw new TongbuError(
      'HASH_MISMATCH',
      `${quoteKey(request.key)}: received ${bytes} bytes, expected ${request.size}`,
      { data: { key: request.key } },
    );
  }
  if (request.expectedHash !== undefined && hash !== request.expectedHash) {
    throw new TongbuError(
      'HASH_MISMATCH',
      `${quoteKey(request.key)}: content hashes to ${hash}, expected ${request.expectedHash}`,
      { data: { key: request.key } },
    );
  }
}
