/** Messages between the filesystem endpoint and its worker threads. */
import type { HashAlgorithm } from '../../core/hash.js';

/**
 * Files to copy, packed to cross threads cheaply (like WalkBatch): a copy
 * in flight costs the main thread no object and no path per file. File i
 * is keys[i], read from `${srcRoot}/${key}` and written through its temp
 * file beside `${dstRoot}/${key}` (see copyTarget in fs-temp.js), with
 * nums[4i..4i+3] = size, mtimeMs and mode as listed (a source that no
 * longer matches is FILE_CHANGED) and the temp file's number.
 */
export interface CopyBatch {
  srcRoot: string;
  dstRoot: string;
  keys: string[];
  nums: number[];
  /** The algorithm of the result hashes, except where a file has an expected hash. */
  algorithm: HashAlgorithm;
  /** [i, hash]: file i must hash to this (and its result is of that algorithm). */
  expected: [number, string][];
  /**
   * Files whose destination may hold the same content: compared first,
   * written only on a difference.
   */
  compare: number[];
  /**
   * Files at least this large are synced and renamed by the worker; the
   * caller makes the others durable in bulk, then renames them.
   */
  durableFrom: number;
}

export type WorkerError =
  | { code: 'SYSTEM'; errno: string; path: string; action: string; message: string }
  | { code: 'NOT_UTF8'; path: string; raw: Uint8Array }
  | { code: 'SPECIAL'; path: string }
  | { code: 'FILE_CHANGED' | 'HASH_MISMATCH' | 'ABORTED'; path: string };

/**
 * What a copy batch did: hashes[i] is the hash of file i, or '' where an
 * entry of `errors` says why it failed; `unchanged` lists the files that
 * compared equal (nothing written).
 */
export interface CopyResults {
  hashes: string[];
  unchanged: number[];
  errors: [number, WorkerError][];
}

export type HashResult =
  { ok: true; hash: string; size: number } | { ok: false; error: WorkerError };

export type RenameResult = { ok: true } | { ok: false; error: WorkerError };

export type WorkerRequest =
  | ({ type: 'copy'; id: number; bwlimit: number } & CopyBatch)
  | { type: 'hash'; id: number; paths: string[]; algorithm: HashAlgorithm }
  | ({ type: 'rename'; id: number } & RenameTask)
  | { type: 'walk'; id: number; root: string }
  | ({ type: 'diff'; id: number } & DiffTask);

/** Temp files of copies to rename into place: `temps[i]` becomes `${dstRoot}/${keys[i]}`. */
export interface RenameTask {
  dstRoot: string;
  keys: string[];
  temps: number[];
}

/**
 * A directory of a paired walk and where it is read: 0 only in the source
 * tree, 1 only in the destination tree, 2 in both (compared).
 */
export type WalkDir = [key: string, side: 0 | 1 | 2];

/** Part of a paired walk: `dirs` and everything below them; report directories and what differs. */
export interface DiffTask {
  srcRoot: string;
  dstRoot: string;
  dirs: WalkDir[];
  toleranceMs: number;
}

export interface DiffCounts {
  unchanged: number;
}

/**
 * Entries of a walk, packed to cross threads cheaply: entry i is keys[i]
 * with nums[4i..4i+3] = kind (0 file, 1 dir, 2 link), size, mtimeMs, mode;
 * links[j] is the index of a link and targets[j] its target.
 */
export interface WalkBatch {
  type: 'walk';
  id: number;
  /** 0: the walked tree or a diff's source; 1: a diff's destination. */
  side: 0 | 1;
  keys: string[];
  nums: Float64Array;
  links: number[];
  targets: string[];
  temps: string[];
  problems: WorkerError[];
}

export type WorkerReply =
  | { type: 'bytes'; id: number; bytes: number }
  | WalkBatch
  | {
      type: 'done';
      id: number;
      results: (CopyResults | HashResult | RenameResult | DiffCounts)[];
      bytes: number;
    };
