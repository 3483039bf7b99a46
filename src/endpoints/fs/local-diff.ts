/**
 * The paired walk of a local source tree and a local destination tree. The
 * main thread walks it, a slice at a time; when what is left looks long
 * enough to pay for starting workers, workers join (one per other core) and
 * take shares of the directories still to walk. A small tree is walked by
 * the main thread alone. Only directories and differing entries are handled
 * one by one.
 */
import { availableParallelism } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { toTongbuError, type TongbuError } from '../../core/errors.js';
import type { Key } from '../../core/key.js';
import type { Entry, LocalDiff, LocalDiffOptions } from '../endpoint.js';
import { unpackEntries, workerErrorToTongbu } from './fs-entry.js';
import { Batcher, BOTH, walkDirs } from './fs-tree.js';
import type { FsWorkerPool } from './fs-worker-pool.js';
import type { WalkBatch, WalkDir } from './fs-worker-protocol.js';

export interface WalkPace {
  /** The main thread walks this long before it looks at its workers and the abort signal again. */
  readonly sliceMs: number;
  /**
   * Workers join when the directories left would take the main thread this
   * long at its pace so far: a shorter walk is over before a worker (some
   * 30 ms to start) could help.
   */
  readonly helpFromMs: number;
}

const PACE: WalkPace = { sliceMs: 2, helpFromMs: 50 };

export async function diffLocalTrees(
  pool: FsWorkerPool,
  srcRoot: string,
  dstRoot: string,
  options: LocalDiffOptions,
  onDestTemps: (paths: readonly string[]) => void,
  pace: WalkPace = PACE,
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
  const { signal } = options;
  const roots = { srcRoot, dstRoot, toleranceMs: options.toleranceMs };
  const dirs: WalkDir[] = [['', BOTH]];
  const src = new Batcher({ postMessage: onBatch }, 0, 0);
  const dst = new Batcher({ postMessage: onBatch }, 0, 1);
  const walkers = 1 + Math.min(pool.size, availableParallelism() - 1);
  let unchanged = 0;
  let failure: TongbuError | undefined;
  const stopped = (): boolean => signal?.aborted === true || failure !== undefined;
  // Shares handed to workers and not yet walked.
  const shares = new Set<Promise<void>>();
  // A worker takes nothing while it starts (some 30 ms): a walk that ends
  // first does not wait for it. Then it takes shares of what is left from
  // the bottom of the stack (near the top of the trees), smaller and smaller.
  const help = async (): Promise<void> => {
    await pool.diff({ ...roots, dirs: [] }, onBatch);
    while (dirs.length > 0 && !stopped()) {
      const share = pool
        .diff({ ...roots, dirs: dirs.splice(0, Math.ceil(dirs.length / (2 * walkers))) }, onBatch)
        .then((counts) => void (unchanged += counts.unchanged));
      shares.add(share);
      await share;
      shares.delete(share);
    }
  };
  let helping = false;
  const onAbort = (): void => pool.abortAll();
  signal?.addEventListener('abort', onAbort);
  try {
    const started = performance.now();
    let walked = 0;
    while (dirs.length > 0 && !stopped()) {
      const until = performance.now() + pace.sliceMs;
      unchanged += walkDirs(roots, dirs, src, dst, () => {
        walked++;
        return performance.now() > until;
      });
      const left = ((performance.now() - started) / walked) * dirs.length;
      if (!helping && dirs.length > 0 && left >= pace.helpFromMs) {
        helping = true;
        for (let i = 1; i < walkers; i++) {
          help().catch((err: unknown) => void (failure ??= toTongbuError(err)));
        }
      }
      await nextTurn();
    }
    src.post();
    dst.post();
    await Promise.all(shares);
    if (helping) await pool.retireIdle();
    if (failure !== undefined) throw failure;
    signal?.throwIfAborted();
    return { source, dest, unchanged };
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
