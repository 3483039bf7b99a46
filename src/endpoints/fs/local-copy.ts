/**
 * Bulk copy of local files into a local destination. Worker threads copy
 * each file to a temp file, hashing what they write. Large files are synced
 * and renamed one by one; small files are staged, made durable together by
 * one filesystem sync, then renamed: atomic visibility without an fsync per
 * file.
 */
import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { toTongbuError } from '../../core/errors.js';
import {
  algorithmOf,
  DEFAULT_HASH,
  type ContentHash,
  type HashAlgorithm,
} from '../../core/hash.js';
import type { LocalCopyItem, LocalCopyOptions, WriteResult } from '../endpoint.js';
import { tempPathIn, workerErrorToTongbu } from './fs-entry.js';
import type { FsWorkerPool } from './fs-worker-pool.js';
import type { CopyJob, CopyResult } from './fs-worker-protocol.js';

/** Files at least this large are synced and renamed on their own. */
const LARGE = 8 << 20;
/** A worker request carries at most this many small files or bytes. */
const GROUP_FILES = 64;
const GROUP_BYTES = 16 << 20;
/**
 * Staged small files are committed once there are this many, this much, or
 * the oldest has waited this long: a killed run loses at most that much.
 */
const STAGE_FILES = 8192;
const STAGE_BYTES = 256 << 20;
const STAGE_MS = 2000;

export interface LocalCopyContext {
  readonly pool: FsWorkerPool;
  readonly sourceRoot: string;
  readonly destRoot: string;
  readonly flush: () => Promise<void>;
}

interface Staged {
  readonly job: CopyJob;
  readonly item: LocalCopyItem;
  readonly result: WriteResult;
}

export async function copyLocalFiles(
  ctx: LocalCopyContext,
  items: readonly LocalCopyItem[],
  options: LocalCopyOptions,
): Promise<void> {
  const bwlimit = options.bwlimit ?? 0;
  const maxInflight = ctx.pool.size * 2;
  const inflight = new Set<Promise<void>>();
  let staged: Staged[] = [];
  let stagedBytes = 0;
  let stagedSince = 0;
  let committing = Promise.resolve();

  const commitStaged = (): void => {
    const batch = staged;
    staged = [];
    stagedBytes = 0;
    committing = committing.then(() => commitBatch(ctx, batch, options));
  };

  const handle = (jobs: CopyJob[], group: LocalCopyItem[], results: CopyResult[]): void => {
    results.forEach((r, i) => {
      const job = jobs[i]!;
      const item = group[i]!;
      if (!r.ok) {
        options.onOutcome({ ok: false, item, error: workerErrorToTongbu(r.error, 'cannot copy') });
        return;
      }
      // The worker checked size and mtime against the listing and set that
      // mtime: the listed entry describes the written file.
      const result: WriteResult = { hash: r.hash as ContentHash, entry: item.source };
      if (job.durable || r.unchanged) {
        options.onOutcome({ ok: true, item, result, unchanged: r.unchanged });
      } else {
        if (staged.length === 0) stagedSince = performance.now();
        staged.push({ job, item, result });
        stagedBytes += r.size;
        if (
          staged.length >= STAGE_FILES ||
          stagedBytes >= STAGE_BYTES ||
          performance.now() - stagedSince >= STAGE_MS
        ) {
          commitStaged();
        }
      }
    });
  };

  for (const group of groups(items)) {
    if (options.signal?.aborted) break;
    while (inflight.size >= maxInflight) await Promise.race(inflight);
    const jobs = group.map((item) => jobFor(ctx, item, options.algorithm ?? DEFAULT_HASH));
    const p = ctx.pool
      .copy(jobs, bwlimit, options.onBytes)
      .then(
        (results) => handle(jobs, group, results),
        (err: unknown) => {
          for (const item of group) {
            options.onOutcome({ ok: false, item, error: toTongbuError(err) });
          }
        },
      )
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  commitStaged();
  await committing;
}

function jobFor(ctx: LocalCopyContext, item: LocalCopyItem, algorithm: HashAlgorithm): CopyJob {
  const dst = path.join(ctx.destRoot, item.source.key);
  return {
    src: path.join(ctx.sourceRoot, item.source.key),
    dst,
    tmp: tempPathIn(path.dirname(dst)),
    size: item.source.size,
    mtimeMs: item.source.mtimeMs,
    mode: item.source.mode,
    durable: item.source.size >= LARGE,
    compare: item.compare ?? false,
    algorithm: item.expectedHash === undefined ? algorithm : algorithmOf(item.expectedHash),
    ...(item.expectedHash === undefined ? {} : { expectedHash: item.expectedHash }),
  };
}

/**
 * Large files alone; small ones in groups of one directory each, so a worker
 * request is worth its message. Groups of different directories alternate:
 * workers creating files in one directory at once queue on its lock.
 */
function* groups(items: readonly LocalCopyItem[]): Iterable<LocalCopyItem[]> {
  const byDir = new Map<string, { items: LocalCopyItem[]; bytes: number }[]>();
  for (const item of items) {
    if (item.source.size >= LARGE) {
      yield [item];
      continue;
    }
    const key = item.source.key;
    const dir = key.slice(0, Math.max(0, key.lastIndexOf('/')));
    let chunks = byDir.get(dir);
    if (chunks === undefined) byDir.set(dir, (chunks = []));
    let group = chunks[chunks.length - 1];
    if (group === undefined || group.items.length >= GROUP_FILES || group.bytes >= GROUP_BYTES) {
      chunks.push((group = { items: [], bytes: 0 }));
    }
    group.items.push(item);
    group.bytes += item.source.size;
  }
  const lists = [...byDir.values()];
  for (let round = 0; ; round++) {
    let live = 0;
    for (const chunks of lists) {
      const group = chunks[round];
      if (group === undefined) continue;
      live++;
      yield group.items;
    }
    if (live === 0) return;
  }
}

async function commitBatch(
  ctx: LocalCopyContext,
  batch: readonly Staged[],
  options: LocalCopyOptions,
): Promise<void> {
  if (batch.length === 0) return;
  try {
    await ctx.flush();
  } catch (err) {
    for (const s of batch) {
      await rm(s.job.tmp, { force: true }).catch(() => undefined); // else left for cleanup
      options.onOutcome({ ok: false, item: s.item, error: toTongbuError(err) });
    }
    return;
  }
  const results = await ctx.pool.rename(batch.map((s) => [s.job.tmp, s.job.dst]));
  batch.forEach((s, i) => {
    const r = results[i]!;
    if (r.ok) options.onOutcome({ ok: true, item: s.item, result: s.result, unchanged: false });
    else
      options.onOutcome({
        ok: false,
        item: s.item,
        error: workerErrorToTongbu(r.error, 'cannot rename'),
      });
  });
}
