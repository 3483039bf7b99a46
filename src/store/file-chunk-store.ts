/**
 * A chunk store of one file per chunk: every chunk and object is a file
 * `chunks/blake3/ab/cd/<hex>` named by the hash of its bytes. A write goes to
 * `tmp/`, is hashed and checked, then renamed into place, so a chunk is
 * visible whole or not at all and never under a wrong name.
 *
 * Durability is batched: chunk writes are not fsync'd one by one; `sync()`
 * (one syncfs of the data filesystem) runs before a commit moves a ref, so
 * everything a commit references is durable before the commit is. A crash of
 * the machine between a write and the next sync can leave a damaged file; the
 * time of the last sync is recorded in `synced-at`, and after an unclean stop
 * `recover()` re-hashes the files written since and removes the damaged ones.
 * (A killed process loses nothing: its writes are in the page cache.)
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fromSystemError, TongbuError } from '../core/errors.js';
import { algorithmOf, hashBytes, parseHash, type ContentHash } from '../core/hash.js';
import {
  checkObjectBytes,
  type ChunkStore,
  type ChunkStoreStats,
  type StoredObject,
} from './chunk-store.js';

const execFileAsync = promisify(execFile);

export class FileChunkStore implements ChunkStore {
  readonly dir: string;
  private readonly chunksDir: string;
  private readonly tmpDir: string;
  private readonly madeDirs = new Set<string>();
  private tmpCounter = 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.chunksDir = join(dir, 'chunks');
    this.tmpDir = join(dir, 'tmp');
  }

  /** Opens (creating) the store under `dir`; removes temp files a crash left. */
  static open(dir: string): FileChunkStore {
    const store = new FileChunkStore(dir);
    try {
      fs.mkdirSync(store.chunksDir, { recursive: true });
      fs.rmSync(store.tmpDir, { recursive: true, force: true });
      fs.mkdirSync(store.tmpDir, { recursive: true });
    } catch (err) {
      throw fromSystemError(err, dir, 'cannot open chunk store');
    }
    return store;
  }

  path(hash: ContentHash): string {
    const { algorithm, hex } = parseHash(hash);
    return join(this.chunksDir, algorithm, hex.slice(0, 2), hex.slice(2, 4), hex);
  }

  get(hash: ContentHash): Promise<Uint8Array> {
    return new Promise((resolve) => resolve(this.getSync(hash)));
  }

  /** Reads and verifies one object; NOT_FOUND, or HASH_MISMATCH on a damaged copy. */
  getSync(hash: ContentHash): Buffer {
    const path = this.path(hash);
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new TongbuError('NOT_FOUND', `no chunk ${hash}`, { data: { hash } });
      }
      throw fromSystemError(err, path, 'cannot read chunk');
    }
    const actual = hashBytes(bytes, algorithmOf(hash));
    if (actual !== hash) {
      throw new TongbuError(
        'HASH_MISMATCH',
        `stored chunk ${hash} is damaged (hashes to ${actual})`,
        {
          data: { hash, actual },
          retryable: false,
        },
      );
    }
    return bytes;
  }

  put(bytes: Uint8Array, expected?: ContentHash): Promise<ContentHash> {
    return new Promise((resolve) => resolve(this.putSync(bytes, expected)));
  }

  /** Stores bytes under their hash after checking it; a present chunk is only touched. */
  putSync(bytes: Uint8Array, expected?: ContentHash): ContentHash {
    const hash = this.checkBytes(bytes, expected);
    this.storeChecked(bytes, hash);
    return hash;
  }

  /** The hash of bytes that may be stored: TOO_LARGE, or HASH_MISMATCH against `expected`. */
  checkBytes(bytes: Uint8Array, expected?: ContentHash): ContentHash {
    return checkObjectBytes(bytes, expected);
  }

  /** Writes bytes that `checkBytes` found to hash to `hash`. */
  storeChecked(bytes: Uint8Array, hash: ContentHash): void {
    const path = this.path(hash);
    if (this.touch(path)) return;
    const tmp = join(this.tmpDir, `${process.pid}-${this.tmpCounter++}`);
    try {
      fs.writeFileSync(tmp, bytes);
      this.ensureDir(path);
      fs.renameSync(tmp, path);
    } catch (err) {
      fs.rmSync(tmp, { force: true });
      throw fromSystemError(err, path, 'cannot store chunk');
    }
  }

  has(hash: ContentHash): Promise<boolean> {
    return Promise.resolve(fs.existsSync(this.path(hash)));
  }

  /**
   * The hashes of `hashes` this store lacks. Present ones are touched, so a
   * garbage collection within its grace period keeps them for the upload
   * that was just told it need not send them.
   */
  missing(hashes: readonly ContentHash[]): ContentHash[] {
    return hashes.filter((h) => !this.touch(this.path(h)));
  }

  /** Makes every write so far durable: one syncfs of the data filesystem. */
  async sync(): Promise<void> {
    const started = Date.now();
    try {
      await execFileAsync('sync', ['-f', this.dir]);
    } catch (err) {
      throw fromSystemError(err, this.dir, 'cannot sync');
    }
    fs.writeFileSync(join(this.dir, 'synced-at'), String(started));
  }

  /** Every stored object with its size and mtime, for gc and recovery. */
  *entries(): Generator<StoredObject & { path: string }> {
    for (const algorithm of safeReaddir(this.chunksDir)) {
      const algDir = join(this.chunksDir, algorithm);
      for (const a of safeReaddir(algDir)) {
        for (const b of safeReaddir(join(algDir, a))) {
          const leaf = join(algDir, a, b);
          for (const name of safeReaddir(leaf)) {
            const path = join(leaf, name);
            const st = fs.statSync(path, { throwIfNoEntry: false });
            if (st)
              yield {
                hash: `${algorithm}:${name}` as ContentHash,
                path,
                size: st.size,
                mtimeMs: st.mtimeMs,
              };
          }
        }
      }
    }
  }

  remove(hash: ContentHash, untouchedSince?: number): void {
    const path = this.path(hash);
    if (untouchedSince !== undefined) {
      const st = fs.statSync(path, { throwIfNoEntry: false });
      if (!st || st.mtimeMs >= untouchedSince) return;
    }
    fs.rmSync(path, { force: true });
  }

  stats(): ChunkStoreStats {
    let objects = 0;
    let bytes = 0;
    for (const e of this.entries()) {
      objects++;
      bytes += e.size;
    }
    return { objects, bytes };
  }

  /**
   * After an unclean stop: re-hashes objects written since the last sync
   * (with a margin) and removes those that do not match their name.
   */
  recover(marginMs = 60_000): { checked: number; removed: ContentHash[] } {
    // (the margin covers clock steps and writes racing the sync)
    let since = 0;
    try {
      since = Number(fs.readFileSync(join(this.dir, 'synced-at'), 'utf8')) - marginMs;
    } catch {
      since = 0;
    }
    const removed: ContentHash[] = [];
    let checked = 0;
    for (const e of this.entries()) {
      if (e.mtimeMs < since) continue;
      checked++;
      if (hashBytes(fs.readFileSync(e.path), algorithmOf(e.hash)) !== e.hash) {
        fs.rmSync(e.path, { force: true });
        removed.push(e.hash);
      }
    }
    return { checked, removed };
  }

  close(): void {
    // nothing held open
  }

  /** Sets the mtime of a present file to now; false when absent. */
  private touch(path: string): boolean {
    try {
      const now = new Date();
      fs.utimesSync(path, now, now);
      return true;
    } catch {
      return false;
    }
  }

  private ensureDir(path: string): void {
    const dir = path.slice(0, path.lastIndexOf('/'));
    if (this.madeDirs.has(dir)) return;
    fs.mkdirSync(dir, { recursive: true });
    this.madeDirs.add(dir);
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}
