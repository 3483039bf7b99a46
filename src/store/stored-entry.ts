/**
 * What a namespace tree holds for each key: the entry's metadata and where
 * its content is. A file of one chunk points at that chunk (`data` equals
 * `hash`, `parts` 1); a larger one at its manifest; an empty file at nothing.
 */
import { TongbuError } from '../core/errors.js';
import { isContentHash, type ContentHash } from '../core/hash.js';
import type { TreeValue } from './prolly-tree.js';

export interface StoredEntry {
  readonly kind: 'file' | 'dir' | 'symlink';
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
  /** The hash of the whole content (files), named by algorithm: blake3 or sha256. */
  readonly hash?: ContentHash;
  /** The single chunk (parts = 1) or the manifest object (parts > 1). */
  readonly data?: ContentHash;
  /** Number of chunks: 0 for an empty file. */
  readonly parts?: number;
  /** A symlink's target. */
  readonly target?: string;
}

const KINDS = new Set(['file', 'dir', 'symlink']);

/** Checks a stored entry received from a client; BAD_ARGUMENT names the key. */
export function validateStoredEntry(key: string, value: unknown): StoredEntry {
  const bad = (why: string): never => {
    throw new TongbuError('BAD_ARGUMENT', `entry ${JSON.stringify(key)}: ${why}`, {
      data: { key },
    });
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (typeof v['kind'] !== 'string' || !KINDS.has(v['kind']))
    bad('kind must be file, dir or symlink');
  const num = (f: string): number => {
    const n = v[f];
    if (typeof n !== 'number' || !Number.isFinite(n)) return bad(`${f} must be a number`);
    return n;
  };
  const size = num('size');
  const mtimeMs = num('mtimeMs');
  const mode = num('mode');
  if (!Number.isSafeInteger(size) || size < 0) bad('size must be a non-negative integer');
  const entry: { -readonly [K in keyof StoredEntry]: StoredEntry[K] } = {
    kind: v['kind'] as StoredEntry['kind'],
    size,
    mtimeMs,
    mode: mode & 0o7777,
  };
  if (entry.kind === 'file') {
    const hash = v['hash'];
    const parts = v['parts'];
    if (typeof hash !== 'string' || !isContentHash(hash)) bad('hash must be a content hash');
    if (typeof parts !== 'number' || !Number.isSafeInteger(parts) || parts < 0)
      bad('parts must be a count');
    entry.hash = hash as ContentHash;
    entry.parts = parts as number;
    if ((parts as number) > 0) {
      const data = v['data'];
      if (typeof data !== 'string' || !isContentHash(data)) bad('data must be a content hash');
      entry.data = data as ContentHash;
    } else if (size !== 0) bad('a file with no chunks must be empty');
  }
  if (entry.kind === 'symlink') {
    if (typeof v['target'] !== 'string' || v['target'] === '') bad('a symlink needs a target');
    entry.target = v['target'] as string;
  }
  return entry;
}

export function toTreeValue(entry: StoredEntry): TreeValue {
  return entry as unknown as TreeValue;
}

export function fromTreeValue(value: TreeValue): StoredEntry {
  return value as unknown as StoredEntry;
}
