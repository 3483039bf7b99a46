/**
 * Content-addressed objects: chunks of file content, manifests, tree nodes
 * and commits all live in one store, each under the hash of its bytes. The
 * disk implementation is ChunkStore (chunk-store.ts); the memory one here is
 * for unit tests and counts reads, so tests can show what an operation costs.
 */
import { TongbuError } from '../core/errors.js';
import { storeAddress, type ContentHash } from '../core/hash.js';

export interface ObjectStore {
  /** The bytes stored under `hash`; NOT_FOUND when absent. */
  get(hash: ContentHash): Promise<Uint8Array>;
  /**
   * Stores bytes under their hash and returns it. Idempotent. With `expected`
   * the bytes must hash to it (HASH_MISMATCH otherwise, nothing stored).
   */
  put(bytes: Uint8Array, expected?: ContentHash): Promise<ContentHash>;
  has(hash: ContentHash): Promise<boolean>;
}

/** An ObjectStore in memory that counts its reads and writes. */
export class MemoryObjectStore implements ObjectStore {
  readonly objects = new Map<ContentHash, Uint8Array>();
  reads = 0;
  writes = 0;

  get(hash: ContentHash): Promise<Uint8Array> {
    this.reads++;
    const bytes = this.objects.get(hash);
    if (!bytes) return Promise.reject(new TongbuError('NOT_FOUND', `no object ${hash}`));
    return Promise.resolve(bytes);
  }

  put(bytes: Uint8Array, expected?: ContentHash): Promise<ContentHash> {
    const hash = storeAddress(bytes);
    if (expected !== undefined && expected !== hash) {
      return Promise.reject(
        new TongbuError('HASH_MISMATCH', `bytes hash to ${hash}, not ${expected}`, {
          data: { expected, actual: hash },
        }),
      );
    }
    this.writes++;
    if (!this.objects.has(hash)) this.objects.set(hash, bytes.slice());
    return Promise.resolve(hash);
  }

  has(hash: ContentHash): Promise<boolean> {
    return Promise.resolve(this.objects.has(hash));
  }
}
