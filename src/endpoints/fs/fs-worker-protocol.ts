/** Messages between the filesystem endpoint and its worker threads. */
import type { HashAlgorithm } from '../../core/hash.js';

export interface CopyJob {
  src: string;
  tmp: string;
  dst: string;
  /** Size and mtime as listed: a source that no longer matches is FILE_CHANGED. */
  size: number;
  mtimeMs: number;
  mode: number;
  expectedHash?: string;
  /** The algorithm of the result's hash (the expected hash's, when given). */
  algorithm: HashAlgorithm;
  /** fdatasync and rename in the worker (large files); otherwise the caller syncs in bulk. */
  durable: boolean;
  /** The destination may hold the same content: compare first, write only on a difference. */
  compare: boolean;
}

export type WorkerError =
  | { code: 'SYSTEM'; errno: string; path: string; action: string; message: string }
  | { code: 'NOT_UTF8'; path: string; raw: Uint8Array }
  | { code: 'SPECIAL'; path: string }
  | { code: 'FILE_CHANGED' | 'HASH_MISMATCH' | 'ABORTED'; path: string };

export type CopyResult =
  | { ok: true; hash: string; size: number; mtimeMs: number; unchanged: boolean }
  | { ok: false; error: WorkerError };

export type HashResult =
  { ok: true; hash: string; size: number } | { ok: false; error: WorkerError };

export type RenameResult = { ok: true } | { ok: false; error: WorkerError };

export type WorkerRequest =
  | { type: 'copy'; id: number; jobs: CopyJob[]; bwlimit: number }
  | { type: 'hash'; id: number; paths: string[]; algorithm: HashAlgorithm }
  | { type: 'rename'; id: number; pairs: [string, string][] }
  | { type: 'walk'; id: number; root: string }
  | ({ type: 'diff'; id: number } & DiffTask);

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
      results: (CopyResult | HashResult | RenameResult | DiffCounts)[];
      bytes: number;
    };
