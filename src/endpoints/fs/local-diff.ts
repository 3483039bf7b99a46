/**
 * The paired walk of a local source tree and a local destination tree,
 * split across the worker pool: directories near the top are compared
 * shallowly, the subtrees below them in parallel. Only directories and
 * differing entries reach the main thread.
 */
import * as fs from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Key } from '../../core/key.js';
import type { Entry, LocalDiff, LocalDiffOptions } from '../endpoint.js';
import { unpackEntries, workerErrorToTongbu } from './fs-entry.js';
import type { FsWorkerPool } from './fs-worker-pool.js';
import type { DiffTask, WalkBatch } from './fs-worker-protocol.js';

/** Split until there are this many subtrees per worker, or this deep. */
const SUBTREES_PER_WORKER = 4;
const MAX_SPLIT_DEPTH = 3;

export async function diffLocalTrees(
  pool: FsWorkerPool,
  srcRoot: string,
  dstRoot: string,
  options: LocalDiffOptions,
  onDestTemps: (paths: readonly string[]) => void,
): Promise<LocalDiff> {
  const source = new Map<Key, Entry>();
  const dest = new Map<Key, Entry>();
  const onBatch = (batch: WalkBatch): void => {
    const side = batch.side === 0 ? 'source' : 'destination';
    for (const p of batch.problems) options.onProblem(side, workerErrorToTongbu(p, 'cannot list'));
    if (batch.side === 1) onDestTemps(batch.temps);
    const into = batch.side === 0 ? source : dest;
    for (const entry of unpackEntries(batch)) into.set(entry.key, entry);
  };
  const onAbort = (): void => pool.abortAll();
  options.signal?.addEventListener('abort', onAbort);
  try {
    const { shallow, deep } = splitTrees(srcRoot, dstRoot, pool.size * SUBTREES_PER_WORKER);
    const base = { srcRoot, dstRoot, toleranceMs: options.toleranceMs };
    const tasks: DiffTask[] = [];
    if (shallow.length > 0) tasks.push({ ...base, dirs: shallow, recurse: false });
    // Walking is CPU-bound here (cached metadata): one share per core.
    const width = Math.min(pool.size, availableParallelism(), deep.length);
    const shares: string[][] = Array.from({ length: width }, () => []);
    deep.forEach((key, i) => shares[i % shares.length]!.push(key));
    for (const dirs of shares) tasks.push({ ...base, dirs, recurse: true });
    const counts = await Promise.all(tasks.map((t) => pool.diff(t, onBatch)));
    options.signal?.throwIfAborted();
    return { source, dest, unchanged: counts.reduce((n, c) => n + c.unchanged, 0) };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Directories to compare shallowly (their own contents only) and the
 * subtrees to compare whole, so that there are enough subtrees to share.
 */
function splitTrees(
  srcRoot: string,
  dstRoot: string,
  wanted: number,
): { shallow: Key[]; deep: Key[] } {
  const shallow: Key[] = [];
  let deep: Key[] = [''];
  for (let depth = 0; depth < MAX_SPLIT_DEPTH && deep.length < wanted; depth++) {
    const next: Key[] = [];
    for (const key of deep) {
      const names = new Set([...childDirs(srcRoot, key), ...childDirs(dstRoot, key)]);
      shallow.push(key);
      for (const name of names) next.push(key === '' ? name : `${key}/${name}`);
    }
    if (next.length === 0) return { shallow, deep: [] };
    deep = next;
  }
  return { shallow, deep };
}

function childDirs(root: string, key: Key): string[] {
  try {
    return fs
      .readdirSync(key === '' ? root : `${root}/${key}`, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name);
  } catch {
    return []; // missing or unreadable: the worker reports it
  }
}
