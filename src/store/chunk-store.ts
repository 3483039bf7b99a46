/**
 * The chunk store of a node: chunks and objects (manifests, tree nodes,
 * commits) addressed by the hash of their bytes. Writes are checked against
 * the hash before they are stored and become visible whole or not at all;
 * reads are verified. Durability is batched: `sync()` makes every write so
 * far durable, and a commit calls it before it moves a ref.
 */
import { TongbuError } from '../core/errors.js';
import { storeAddress, type ContentHash } from '../core/hash.js';
import type { ObjectStore } from './object-store.js';

/** The largest chunk or object accepted: larger content is split by the client. */
export const MAX_OBJECT_BYTES = 64 * 1024 * 1024;

export interface ChunkStoreStats {
  readonly objects: number;
  readonly bytes: number;
}

export interface StoredObject {
  readonly hash: ContentHash;
  readonly size: number;
  /** When it was last written or touched (ms since the epoch). */
  readonly mtimeMs: number;
}

export interface ChunkStore extends ObjectStore {
  readonly dir: string;
  /** Reads and verifies one object; NOT_FOUND, or HASH_MISMATCH on a damaged copy. */
  getSync(hash: ContentHash): Buffer;
  /** Stores bytes under their hash after checking it; a present object is only touched. */
  putSync(bytes: Uint8Array, expected?: ContentHash): ContentHash;
  /** The hash of bytes that may be stored: TOO_LARGE, or HASH_MISMATCH against `expected`. */
  checkBytes(bytes: Uint8Array, expected?: ContentHash): ContentHash;
  /** Stores bytes that `checkBytes` found to hash to `hash`. */
  storeChecked(bytes: Uint8Array, hash: ContentHash): void;
  /**
   * The hashes of `hashes` this store lacks. Present ones are touched, so a
   * garbage collection within its grace period keeps them for the upload
   * that was just told it need not send them.
   */
  missing(hashes: readonly ContentHash[]): ContentHash[];
  /** Optional: the hashes of `hashes` this store lacks, in one pass, touching nothing. */
  lacking?(hashes: readonly ContentHash[]): ContentHash[];
  /** Where the store spans several nodes: the hashes of `hashes` no node holds. */
  missingAnywhere?(hashes: readonly ContentHash[]): Promise<ContentHash[]>;
  /** Makes every write so far durable. */
  sync(): Promise<void>;
  /** Every stored object, for gc and recovery. */
  entries(): Iterable<StoredObject>;
  /**
   * Removes an object; with `untouchedSince`, only when it was not written
   * or touched since then (checked and done atomically where the store can).
   */
  remove(hash: ContentHash, untouchedSince?: number): void;
  stats(): ChunkStoreStats;
  /** After an unclean stop: re-hashes what was written since the last sync, drops what is damaged. */
  recover(): { checked: number; removed: ContentHash[] };
  close(): void;
  /** Reclaims the space of removed objects (pack stores rewrite sparse packs). */
  compact?(): Promise<{ readonly bytesReclaimed: number }>;
}

/** The hash of bytes that may be stored: TOO_LARGE, or HASH_MISMATCH against `expected`. */
export function checkObjectBytes(bytes: Uint8Array, expected?: ContentHash): ContentHash {
  if (bytes.length > MAX_OBJECT_BYTES) {
    throw new TongbuError(
      'TOO_LARGE',
      `chunk of ${bytes.length} bytes exceeds ${MAX_OBJECT_BYTES}`,
    );
  }
  const hash = storeAddress(bytes);
  if (expected !== undefined && hash !== expected) {
    throw new TongbuError('HASH_MISMATCH', `chunk bytes hash to ${hash}, not ${expected}`, {
      data: { expected, actual: hash },
      retryable: false,
    });
  }
  return hash;
}
