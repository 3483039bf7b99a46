/** Messages between the filesystem endpoint and its worker threads. */

export interface CopyJob {
  src: string;
  tmp: string;
  dst: string;
  /** Size and mtime as listed: a source that no longer matches is FILE_CHANGED. */
  size: number;
  mtimeMs: number;
  mode: number;
  expectedHash?: string;
  /** fdatasync and rename in the worker (large files); otherwise the caller syncs in bulk. */
  durable: boolean;
  /** The destination may hold the same content: compare first, write only on a difference. */
  compare: boolean;
}

export type WorkerError =
  | { code: 'SYSTEM'; errno: string; path: string; action: string; message: string }
  | { code: 'FILE_CHANGED' | 'HASH_MISMATCH' | 'ABORTED'; path: string };

export type CopyResult =
  | { ok: true; hash: string; size: number; mtimeMs: number; unchanged: boolean }
  | { ok: false; error: WorkerError };

export type HashResult =
  { ok: true; hash: string; size: number } | { ok: false; error: WorkerError };

export type WorkerRequest =
  | { type: 'copy'; id: number; jobs: CopyJob[]; bwlimit: number }
  | { type: 'hash'; id: number; paths: string[] };

export type WorkerReply =
  | { type: 'bytes'; id: number; bytes: number }
  | { type: 'done'; id: number; results: (CopyResult | HashResult)[]; bytes: number };
