/**
 * The one-way sync engine behind `tongbu sync` and `tongbu copy`: list both
 * sides, plan against the saved state, guard deletes, then apply in an order
 * that never exposes a half-done entry, recording state as entries land so
 * that a re-run after a crash redoes nothing already verified.
 */
import { errorSubject, TongbuError, toTongbuError } from '../core/errors.js';
import type { ContentHash } from '../core/hash.js';
import { findCollisions, parentKey, type Key } from '../core/key.js';
import { ProgressMeter, type ProgressListener } from '../core/progress.js';
import { syncHashAlgorithm, type Endpoint, type Entry } from '../endpoints/endpoint.js';
import { checkDeleteLimit } from './delete-guard.js';
import { createFilter } from './filter.js';
import { planSync, type Plan } from './planner.js';
import { listAll, checkDisjoint } from './scan.js';
import { parseSize, type SyncOptions } from './sync-options.js';
import { SyncState } from './sync-state.js';
import { emptySummary, planActions, type SyncSummary } from './sync-summary.js';
import { transferFiles } from './transfer.js';

export interface SyncRequest {
  readonly command: 'sync' | 'copy';
  readonly source: Endpoint;
  readonly destination: Endpoint;
  readonly options: SyncOptions;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export async function runSync(request: SyncRequest): Promise<SyncSummary> {
  const { source, destination, options } = request;
  const started = performance.now();
  const summary = emptySummary(request.command, source.url, destination.url, options);
  const meter = new ProgressMeter(request.onProgress);
  const fail = (key: Key, err: unknown): void => {
    const e = toTongbuError(err);
    summary.errors.push({ key, code: e.code, message: e.message });
  };

  await source.open({ create: false });
  await checkDisjoint(source, destination);
  // The state opens before the destination, so a bad --state creates nothing.
  const state = SyncState.open(
    options.state,
    source.localPath ?? source.url,
    destination.localPath ?? destination.url,
    { readOnly: options.dryRun },
  );
  try {
    await syncWithState(request, state, summary, meter, fail);
  } finally {
    state.close();
  }
  meter.start('done');
  summary.durationMs = Math.round(performance.now() - started);
  return summary;
}

interface Listings {
  readonly source: Map<Key, Entry>;
  readonly dest: Map<Key, Entry>;
  /** Entries equal on both sides that a paired walk left out. */
  readonly omitted: number;
  readonly sourceProblems: readonly TongbuError[];
}

/**
 * Lists both sides. Two local trees in incremental mode without filters are
 * walked together and only what differs comes back; otherwise each side is
 * listed whole, in parallel.
 */
async function listSides(
  request: SyncRequest,
  destExists: boolean,
  tolerance: number,
  meter: ProgressMeter,
  fail: (key: Key, err: unknown) => void,
): Promise<Listings> {
  const { source, destination, options, signal } = request;
  const sourceProblems: TongbuError[] = [];
  const paired =
    destExists &&
    options.include.length + options.exclude.length === 0 &&
    options.mode === 'incremental' &&
    !options.checksum &&
    source.localPath !== undefined &&
    destination.diffFromLocal !== undefined &&
    destination.capabilities.nameFolding === 'none';
  if (paired && source.localPath !== undefined && destination.diffFromLocal) {
    const diff = await destination.diffFromLocal(source.localPath, {
      toleranceMs: tolerance,
      ...(signal ? { signal } : {}),
      onProblem: (side, e) => (side === 'source' ? sourceProblems.push(e) : fail('', e)),
    });
    return { source: diff.source, dest: diff.dest, omitted: diff.unchanged, sourceProblems };
  }
  const [src, dst] = await Promise.all([
    listAll(source, meter, signal, (e) => sourceProblems.push(e)),
    destExists ? listAll(destination, meter, signal, (e) => fail('', e)) : new Map<Key, Entry>(),
  ]);
  return { source: src, dest: dst, omitted: 0, sourceProblems };
}

async function syncWithState(
  request: SyncRequest,
  state: SyncState,
  summary: SyncSummary,
  meter: ProgressMeter,
  fail: (key: Key, err: unknown) => void,
): Promise<void> {
  const { destination, options } = request;
  const destExists = await openDestination(destination, options.dryRun);
  const planned = await listAndPlan(request, state, destExists, summary, meter, fail);
  const { plan } = planned;
  for (const e of plan.blocked) {
    const why = `${destination.url}: ${e.key} is a directory; copy does not replace it (use sync)`;
    fail(e.key, new TongbuError('BLOCKED', why));
  }
  let deletes = plan.deletes;
  if (deletes.length > 0 && !planned.sourceComplete) {
    summary.warnings.push('source could not be read completely: no deletions this run');
    deletes = [];
  }
  checkDeleteLimit(deletes.length, plan.destinationCount, options, destination.url);
  summary.totals = {
    files: plan.copies.length,
    bytes: plan.copies.reduce((n, c) => n + c.source.size, 0),
  };
  if (options.dryRun) {
    summary.plan = planActions(plan, deletes);
    countPlanned(summary, plan, deletes);
    return;
  }
  summary.removedTemps = await destination.cleanup();
  await apply(request, plan, deletes, planned.dest, state, summary, meter, fail);
  await commitDestination(destination, summary, options.message);
  state.finishRun();
}

/**
 * Lists both sides and plans the run. Only the plan and the destination
 * listing outlive it: the source listing of a large tree is let go before
 * anything is copied (the plan holds the entries it needs).
 */
async function listAndPlan(
  request: SyncRequest,
  state: SyncState,
  destExists: boolean,
  summary: SyncSummary,
  meter: ProgressMeter,
  fail: (key: Key, err: unknown) => void,
): Promise<{ plan: Plan; dest: ReadonlyMap<Key, Entry>; sourceComplete: boolean }> {
  const { source, destination, options } = request;
  const tolerance = Math.max(
    source.capabilities.mtimePrecisionMs,
    destination.capabilities.mtimePrecisionMs,
  );
  meter.start('scan');
  const listed = await listSides(request, destExists, tolerance, meter, fail);
  meter.finish();
  for (const e of listed.sourceProblems) fail(errorSubject(e), e);
  const folding = destination.capabilities.nameFolding;
  for (const group of findCollisions(listed.source.keys(), folding)) {
    const names = group.map((k) => JSON.stringify(k)).join(', ');
    summary.warnings.push(`names collide on ${destination.url} (${folding}): ${names}`);
  }

  meter.start('plan');
  const plan = planSync(
    listed.source,
    listed.dest,
    options.mode === 'incremental' ? (key) => state.get(key) : () => undefined,
    {
      mode: options.mode,
      checksum: options.checksum,
      deleteExtraneous: request.command === 'sync',
      filter: createFilter(options.include, options.exclude),
      filtered: options.include.length + options.exclude.length > 0,
      omitted: listed.omitted,
      pruneEmptyDirs: options.include.length > 0,
      mtimeToleranceMs: tolerance,
    },
  );
  return { plan, dest: listed.dest, sourceComplete: listed.sourceProblems.length === 0 };
}

async function openDestination(destination: Endpoint, dryRun: boolean): Promise<boolean> {
  if (!dryRun) {
    await destination.open({ create: true });
    return true;
  }
  try {
    await destination.open({ create: false });
    return true;
  } catch (err) {
    if (err instanceof TongbuError && err.code === 'SOURCE_NOT_FOUND') return false;
    throw err;
  }
}

async function apply(
  request: SyncRequest,
  plan: Plan,
  deletes: readonly Entry[],
  destEntries: ReadonlyMap<Key, Entry>,
  state: SyncState,
  summary: SyncSummary,
  meter: ProgressMeter,
  fail: (key: Key, err: unknown) => void,
): Promise<void> {
  const { source, destination, options, signal } = request;
  const touched = new Set<Key>();
  const removed = new Set<Key>();
  const touch = (key: Key): void => void touched.add(parentKey(key));
  const record = (src: Entry, dst: Entry, hash: ContentHash | null): void =>
    state.put({
      key: src.key,
      kind: src.kind,
      size: src.size,
      mode: src.mode,
      hash,
      target: src.target ?? null,
      srcMtimeMs: src.mtimeMs,
      dstMtimeMs: dst.mtimeMs,
    });

  summary.files.unchanged = plan.unchanged;

  for (const d of plan.replaces) {
    await guarded(fail, d.key, async () => {
      if (d.kind === 'dir') {
        summary.files.deleted += await removeTree(destination, d.key, deletes, removed);
      }
      await destination.remove(d.key, d.kind);
      state.forget(d.key);
      touch(d.key);
    });
  }
  for (const dir of plan.mkdirs) {
    signal?.throwIfAborted();
    await guarded(fail, dir.key, async () => {
      await destination.mkdir(dir.key, { mode: dir.mode, mtimeMs: dir.mtimeMs });
      summary.files.dirsCreated++;
      touched.add(dir.key);
      touch(dir.key);
    });
  }

  const pendingMeta: { entry: Entry; hash: ContentHash | null }[] = [];
  meter.start('transfer', { files: plan.copies.length, bytes: summary.totals.bytes });
  await transferFiles(source, destination, plan.copies, {
    transfers: options.transfers,
    algorithm: syncHashAlgorithm(source.capabilities, destination.capabilities),
    bwlimit: options.bwlimit === undefined ? undefined : parseSize(options.bwlimit, '--bwlimit'),
    signal,
    onBytes: (n) => meter.add(0, n),
    onError: (entry, err) => fail(entry.key, err),
    onDone: (done) => {
      meter.add(1, 0, done.source.key);
      if (!done.unchanged) {
        summary.files.copied++;
        summary.bytes.copied += done.result.entry.size;
        record(done.source, done.result.entry, done.result.hash);
        touch(done.source.key);
        return;
      }
      // Compared equal: only metadata may be left to set.
      const dest = destEntries.get(done.source.key);
      const settled =
        dest !== undefined &&
        dest.mode === done.source.mode &&
        Math.abs(dest.mtimeMs - done.source.mtimeMs) <= destination.capabilities.mtimePrecisionMs;
      if (!settled) pendingMeta.push({ entry: done.source, hash: done.result.hash });
      else {
        summary.files.unchanged++;
        record(done.source, dest, done.result.hash);
      }
    },
  });
  signal?.throwIfAborted();

  for (const link of plan.links) {
    await guarded(fail, link.key, async () => {
      await destination.symlink(link.key, link.target ?? '', { mode: 0, mtimeMs: link.mtimeMs });
      const stored = await destination.stat(link.key);
      if (stored) record(link, stored, null);
      summary.files.links++;
      touch(link.key);
    });
  }
  for (const m of [...plan.metas.map((x) => ({ entry: x.entry, hash: null })), ...pendingMeta]) {
    await guarded(fail, m.entry.key, async () => {
      const stored = await destination.setMeta(m.entry.key, {
        mode: m.entry.mode,
        mtimeMs: m.entry.mtimeMs,
      });
      if (m.entry.kind !== 'dir') record(m.entry, stored, m.hash);
      summary.files.updated++;
    });
  }

  meter.start('delete', { files: deletes.length });
  for (const d of deletes) {
    signal?.throwIfAborted();
    if (removed.has(d.key)) continue;
    await guarded(fail, d.key, async () => {
      await destination.remove(d.key, d.kind);
      state.forget(d.key);
      summary.files.deleted++;
      touch(d.key);
      meter.add(1, 0, d.key);
    });
  }

  for (const { entry: dir, dest } of plan.dirs) {
    const settled =
      dest !== undefined &&
      dest.mode === dir.mode &&
      Math.abs(dest.mtimeMs - dir.mtimeMs) <= destination.capabilities.mtimePrecisionMs;
    if (!touched.has(dir.key) && settled) continue;
    await guarded(fail, dir.key, async () => {
      const stored = await destination.setMeta(dir.key, { mode: dir.mode, mtimeMs: dir.mtimeMs });
      record(dir, stored, null);
    });
  }
  const wrote =
    summary.files.copied +
      summary.files.updated +
      summary.files.deleted +
      summary.files.dirsCreated +
      summary.files.links >
      0 ||
    plan.replaces.length > 0 ||
    touched.size > 0;
  if (wrote) await destination.flush();
}

/**
 * On a destination that commits atomically, one commit makes the run
 * visible, and only a run without errors commits: a failed run leaves the
 * old version in place (the chunks it sent are kept, so a re-run is cheap).
 */
async function commitDestination(
  destination: Endpoint,
  summary: SyncSummary,
  message: string | undefined,
): Promise<void> {
  if (!destination.capabilities.atomicCommit || !destination.commit) return;
  if (summary.errors.length > 0) {
    summary.warnings.push(
      `${summary.errors.length} error(s): nothing committed to ${destination.url}; re-run to finish`,
    );
    return;
  }
  const info = await destination.commit(message);
  if (info) summary.commit = info;
}

async function guarded(
  fail: (key: Key, err: unknown) => void,
  key: Key,
  fn: () => Promise<void>,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof TongbuError && err.code === 'ABORTED') throw err;
    fail(key, err);
  }
}

/** Removes the destination entries below a directory being replaced. */
async function removeTree(
  destination: Endpoint,
  dir: Key,
  deletes: readonly Entry[],
  removed: Set<Key>,
): Promise<number> {
  let count = 0;
  for (const d of deletes) {
    if (!d.key.startsWith(`${dir}/`) || removed.has(d.key)) continue;
    await destination.remove(d.key, d.kind);
    removed.add(d.key);
    count++;
  }
  return count;
}
function countPlanned(summary: SyncSummary, plan: Plan, deletes: readonly Entry[]): void {
  summary.files.copied = plan.copies.length;
  summary.bytes.copied = summary.totals.bytes;
  summary.files.deleted = deletes.length;
  summary.files.dirsCreated = plan.mkdirs.length;
  summary.files.links = plan.links.length;
  summary.files.updated = plan.metas.length;
  summary.files.unchanged = plan.unchanged;
}
