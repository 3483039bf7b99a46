/**
 * Bulk copy of local files into a local destination. Worker threads copy
 * each file to a temp file, hashing what they write. Large files are synced
 * and renamed one by one; small files are staged, made durable together by
 * one filesystem sync, then renamed: atomic visibility without an fsync per
 * file.
 */
import { rm } from 'node:fs/promises';
import { toTongbuError } from '../../core/errors.js';
import { DEFAULT_HASH, type ContentHash, type HashAlgorithm } from '../../core/hash.js';
import type { LocalCopyItem, LocalCopyOptions } from '../endpoint.js';
import { nextTemp, TEMP_TAG, workerErrorToTongbu } from './fs-entry.js';
import { copyTarget } from './fs-temp.js';
import type { FsWorkerPool } from './fs-worker-pool.js';
import type { CopyBatch, CopyResults } from './fs-worker-protocol.js';

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

/**
 * Small files copied and waiting for the next sync. A batch outlives the
 * main thread's young-generation collections, so what it keeps per file
 * stays in the old generation until a full collection: only the item (the
 * caller holds it anyway), the temp file's number and the hash, in arrays.
 */
class Stage {
  readonly items: LocalCopyItem[] = [];
  readonly temps: number[] = [];
  readonly hashes: ContentHash[] = [];
  private bytes = 0;
  private readonly since = performance.now();

  add(item: LocalCopyItem, temp: number, hash: ContentHash, bytes: number): void {
    this.items.push(item);
    this.temps.push(temp);
    this.hashes.push(hash);
    this.bytes += bytes;
  }

  get full(): boolean {
    return (
      this.items.length >= STAGE_FILES ||
      this.bytes >= STAGE_BYTES ||
      performance.now() - this.since >= STAGE_MS
    );
  }
}

export async function copyLocalFiles(
  ctx: LocalCopyContext,
  items: readonly LocalCopyItem[],
  options: LocalCopyOptions,
): Promise<void> {
  const algorithm = options.algorithm ?? DEFAULT_HASH;
  const bwlimit = options.bwlimit ?? 0;
  const maxInflight = ctx.pool.size * 2;
  const inflight = new Set<Promise<void>>();
  let stage: Stage | undefined;
  let committing = Promise.resolve();

  const commitStaged = (): void => {
    const batch = stage;
    stage = undefined;
    if (batch) committing = committing.then(() => commitBatch(ctx, batch, options));
  };

  const handle = (group: LocalCopyItem[], batch: CopyBatch, results: CopyResults): void => {
    const errors = new Map(results.errors);
    const unchanged = new Set(results.unchanged);
    group.forEach((item, i) => {
      const error = errors.get(i);
      if (error !== undefined) {
        options.onOutcome({ ok: false, item, error: workerErrorToTongbu(error, 'cannot copy') });
        return;
      }
      // The worker checked size and mtime against the listing and set that
      // mtime: the listed entry describes the written file.
      const hash = results.hashes[i] as ContentHash;
      if (item.source.size >= LARGE || unchanged.has(i)) {
        const result = { hash, entry: item.source };
        options.onOutcome({ ok: true, item, result, unchanged: unchanged.has(i) });
      } else {
        stage ??= new Stage();
        stage.add(item, batch.nums[4 * i + 3]!, hash, item.source.size);
        if (stage.full) commitStaged();
      }
    });
  };

  for (const group of groups(items)) {
    if (options.signal?.aborted) break;
    while (inflight.size >= maxInflight) await Promise.race(inflight);
    const batch = packBatch(ctx, group, algorithm);
    const p = ctx.pool
      .copy(batch, bwlimit, options.onBytes)
      .then(
        (results) => handle(group, batch, results),
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

/** A group of items as a worker request (see CopyBatch), each with a new temp file number. */
function packBatch(
  ctx: LocalCopyContext,
  group: readonly LocalCopyItem[],
  algorithm: HashAlgorithm,
): CopyBatch {
  const nums: number[] = [];
  const expected: [number, string][] = [];
  const compare: number[] = [];
  group.forEach(({ source, expectedHash, compare: same }, i) => {
    nums.push(source.size, source.mtimeMs, source.mode, nextTemp());
    if (expectedHash !== undefined) expected.push([i, expectedHash]);
    if (same === true) compare.push(i);
  });
  return {
    srcRoot: ctx.sourceRoot,
    dstRoot: ctx.destRoot,
    keys: group.map((item) => item.source.key),
    nums,
    algorithm,
    expected,
    compare,
    durableFrom: LARGE,
  };
}

/**
 * Large files alone; small ones in groups of one directory each, so a worker
 * request is worth its message. Groups of different directories alternate:
 * workers creating files in one directory at once queue on its lock. A
 * group is a run of neighbouring items (a listing keeps the entries of a
 * directory together): until it is sent, only its bounds are kept.
 */
function* groups(items: readonly LocalCopyItem[]): Iterable<LocalCopyItem[]> {
  // Per directory: start and end of each of its groups, in turn.
  const bounds = new Map<string, number[]>();
  let dir = '';
  let start = 0;
  let bytes = 0;
  const close = (end: number): void => {
    if (end === start) return;
    const list = bounds.get(dir);
    if (list === undefined) bounds.set(dir, [start, end]);
    else list.push(start, end);
  };
  for (let i = 0; i < items.length; i++) {
    const item = items[i]!;
    const { source } = item;
    if (source.size >= LARGE) {
      close(i);
      start = i + 1;
      bytes = 0;
      yield [item];
      continue;
    }
    const at = source.key.slice(0, Math.max(0, source.key.lastIndexOf('/')));
    if (at !== dir || i - start >= GROUP_FILES || bytes >= GROUP_BYTES) {
      close(i);
      dir = at;
      start = i;
      bytes = 0;
    }
    bytes += source.size;
  }
  close(items.length);
  const lists = [...bounds.values()];
  for (let round = 0; ; round += 2) {
    let live = 0;
    for (const list of lists) {
      if (round >= list.length) continue;
      live++;
      yield items.slice(list[round], list[round + 1]);
    }
    if (live === 0) return;
  }
}

async function commitBatch(
  ctx: LocalCopyContext,
  batch: Stage,
  options: LocalCopyOptions,
): Promise<void> {
  const { items, temps, hashes } = batch;
  try {
    await ctx.flush();
  } catch (err) {
    for (const [i, item] of items.entries()) {
      const { tmp } = copyTarget(ctx.destRoot, item.source.key, TEMP_TAG, temps[i]!);
      await rm(tmp, { force: true }).catch(() => undefined); // else left for cleanup
      options.onOutcome({ ok: false, item, error: toTongbuError(err) });
    }
    return;
  }
  const keys = items.map((item) => item.source.key);
  const results = await ctx.pool.rename({ dstRoot: ctx.destRoot, keys, temps });
  items.forEach((item, i) => {
    const r = results[i]!;
    if (r.ok) {
      const result = { hash: hashes[i]!, entry: item.source };
      options.onOutcome({ ok: true, item, result, unchanged: false });
    } else {
      const error = workerErrorToTongbu(r.error, 'cannot rename');
      options.onOutcome({ ok: false, item, error });
    }
  });
}
