/**
 * One-way table sync (`sync` mirrors, `copy` never deletes). Three paths:
 * - the destination table is absent: create it with mapped types and copy
 *   every row on the destination's bulk path;
 * - incremental with a cursor column and a saved cursor: read the rows
 *   whose cursor is >= the saved one (so rows sharing a cursor value are
 *   never skipped), then compare the key sets segment by segment (counts,
 *   bisected down to key lists) so deletes and rows the cursor missed are
 *   found too;
 * - otherwise (full mode, no cursor, first run): compare the tables by
 *   segment checksums and move only the differing rows (table-diff.ts).
 * Every path writes in one destination transaction, after the mass-delete
 * guard, so readers see all of a run or none of it.
 */
import { TongbuError } from '../core/errors.js';
import { ProgressMeter, type ProgressListener } from '../core/progress.js';
import {
  compareKeys,
  inRange,
  keyBucket,
  keyId,
  keySumTerm,
  rowHashText,
  rowKey,
  type CanonicalValue,
  type KeyRange,
  type KeyTuple,
  type Row,
  type SegmentChecksum,
} from '../endpoints/table/canonical.js';
import type { TableEndpoint, TableWriter } from '../endpoints/table/table-endpoint.js';
import {
  checkWritable,
  commonSchema,
  keyIndexes,
  type TableSchema,
} from '../endpoints/table/table-schema.js';
import { checkDeleteLimit } from './delete-guard.js';
import { diffTables, projection, rangesFrom, type RowDifference } from './table-diff.js';
import { TableSyncState } from './table-state.js';

export interface TableSyncRequest {
  readonly command: 'sync' | 'copy';
  readonly source: TableEndpoint;
  readonly dest: TableEndpoint;
  readonly mode: 'incremental' | 'full';
  /** The cursor column of incremental sync (`--cursor`). */
  readonly cursor?: string;
  readonly dryRun: boolean;
  readonly maxDelete?: string;
  readonly force: boolean;
  /** The state file (--state). */
  readonly statePath: string;
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressListener;
}

export interface TableSyncSummary {
  command: 'sync' | 'copy';
  source: string;
  destination: string;
  mode: 'incremental' | 'full';
  /** How the run found what to move. */
  method: 'create' | 'cursor' | 'compare';
  dryRun: boolean;
  created: boolean;
  rows: { inserted: number; updated: number; deleted: number; unchanged: number; read: number };
  cursor?: { column: string; from: string | null; to: string | null };
  durationMs: number;
  /** With --dry-run: what would change, first 1000 keys. */
  plan?: { action: 'insert' | 'update' | 'delete'; key: string }[];
}

const PLAN_LIMIT = 1000;
const BATCH = 10_000;

export async function syncTable(req: TableSyncRequest): Promise<TableSyncSummary> {
  const started = performance.now();
  const state = TableSyncState.open(req.statePath, req.source.url, req.dest.url, {
    readOnly: req.dryRun,
  });
  try {
    await Promise.all([req.source.open(), req.dest.open()]);
    const src = req.source.schema;
    if (src === undefined) {
      throw new TongbuError(
        'SOURCE_NOT_FOUND',
        `${req.source.url}: table "${req.source.table}" does not exist`,
      );
    }
    if (req.cursor !== undefined && !src.columns.some((c) => c.name === req.cursor)) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `--cursor ${req.cursor}: the source table has no such column`,
      );
    }
    const summary: TableSyncSummary = {
      command: req.command,
      source: req.source.url,
      destination: req.dest.url,
      mode: req.mode,
      method: 'compare',
      dryRun: req.dryRun,
      created: false,
      rows: { inserted: 0, updated: 0, deleted: 0, unchanged: 0, read: 0 },
      durationMs: 0,
      ...(req.dryRun ? { plan: [] } : {}),
    };
    const meter = new ProgressMeter(req.onProgress);
    meter.unit = 'rows';
    // The cursor a later run starts from is read before any row is, so rows
    // written during this run are read again next time rather than missed.
    const cursorTo = req.cursor === undefined ? undefined : await req.source.maxValue(req.cursor);
    const dst = req.dest.schema;
    if (dst === undefined) {
      summary.method = 'create';
      await createAndCopy(req, src, summary, meter);
    } else {
      checkWritable(src, dst, { source: req.source.url, dest: req.dest.url });
      const from = req.cursor === undefined ? undefined : state.cursor(req.cursor);
      if (req.mode === 'incremental' && req.cursor !== undefined && from !== undefined) {
        summary.method = 'cursor';
        await cursorSync(req, commonSchema(src, dst), req.cursor, from, summary, meter);
      } else {
        await compareSync(req, commonSchema(src, dst), summary, meter);
      }
    }
    if (req.cursor !== undefined) {
      summary.cursor = {
        column: req.cursor,
        from: showValue(state.cursor(req.cursor)),
        to: showValue(cursorTo ?? null),
      };
    }
    if (!req.dryRun)
      state.setCursor(req.cursor, req.cursor === undefined ? undefined : (cursorTo ?? undefined));
    meter.finish();
    summary.durationMs = performance.now() - started;
    return summary;
  } finally {
    state.close();
  }
}

function showValue(v: CanonicalValue | undefined): string | null {
  if (v === undefined || v === null) return null;
  return v instanceof Uint8Array ? Buffer.from(v).toString('hex') : String(v);
}

/** The destination table is absent: create it and copy every row. */
async function createAndCopy(
  req: TableSyncRequest,
  schema: TableSchema,
  summary: TableSyncSummary,
  meter: ProgressMeter,
): Promise<void> {
  summary.created = true;
  const total = await req.source.count();
  meter.start('transfer', { files: total });
  if (req.dryRun) {
    summary.rows.inserted = total;
    return;
  }
  const writer = await req.dest.beginWrite({ create: schema });
  await withWriter(writer, async () => {
    // Read the next batch while the destination writes this one.
    const it = req.source.scan({ batchRows: BATCH, ...(req.signal ? { signal: req.signal } : {}) });
    const iterator = it[Symbol.asyncIterator]();
    let next = iterator.next();
    for (;;) {
      const r = await next;
      if (r.done === true) break;
      next = iterator.next();
      await writer.insert(schema.columns, r.value);
      summary.rows.inserted += r.value.length;
      summary.rows.read += r.value.length;
      meter.add(r.value.length, 0);
    }
  });
}

/** Runs `work` then commits; on any failure rolls back and rethrows. */
async function withWriter(writer: TableWriter, work: () => Promise<void>): Promise<void> {
  try {
    await work();
    await writer.commit();
  } catch (err) {
    await writer.rollback().catch(() => undefined);
    throw err;
  }
}

/** Compares everything by segment checksums and moves the differences. */
async function compareSync(
  req: TableSyncRequest,
  schema: TableSchema,
  summary: TableSyncSummary,
  meter: ProgressMeter,
): Promise<void> {
  const diffs: RowDifference[] = [];
  meter.start('plan');
  let reported = 0;
  const stats = await diffTables(req.source, req.dest, {
    schema,
    ...(req.signal ? { signal: req.signal } : {}),
    onDifferences: (batch) => {
      diffs.push(...batch);
    },
    onProgress: (rows) => {
      meter.add(rows - reported, 0);
      reported = rows;
    },
  });
  summary.rows.read = stats.rowsRead;
  const upserts = diffs.flatMap((d) => (d.kind === 'extra' ? [] : [d.source]));
  const deletes =
    req.command === 'sync' ? diffs.filter((d) => d.kind === 'extra').map((d) => d.key) : [];
  summary.rows.unchanged = stats.sourceRows - upserts.length;
  await apply(req, schema, diffs, upserts, deletes, stats.destRows, summary);
}

/** Writes the planned changes in one transaction (or lists them, dry run). */
async function apply(
  req: TableSyncRequest,
  schema: TableSchema,
  diffs: readonly { kind: RowDifference['kind']; key: KeyTuple }[],
  upserts: readonly Row[],
  deletes: readonly KeyTuple[],
  destRows: number,
  summary: TableSyncSummary,
): Promise<void> {
  summary.rows.inserted = diffs.filter((d) => d.kind === 'missing').length;
  summary.rows.updated = diffs.filter((d) => d.kind === 'changed').length;
  summary.rows.deleted = deletes.length;
  checkDeleteLimit(deletes.length, destRows, req, req.dest.url);
  if (req.dryRun) {
    const show = (k: KeyTuple): string => k.map((v) => showValue(v) ?? 'NULL').join(',');
    for (const d of diffs.slice(0, PLAN_LIMIT)) {
      if (d.kind === 'extra' && req.command !== 'sync') continue;
      summary.plan?.push({
        action: d.kind === 'missing' ? 'insert' : d.kind === 'changed' ? 'update' : 'delete',
        key: show(d.key),
      });
    }
    return;
  }
  if (upserts.length === 0 && deletes.length === 0) return;
  const writer = await req.dest.beginWrite();
  await withWriter(writer, async () => {
    for (let i = 0; i < upserts.length; i += BATCH)
      await writer.upsert(schema.columns, upserts.slice(i, i + BATCH));
    for (let i = 0; i < deletes.length; i += BATCH)
      await writer.delete(deletes.slice(i, i + BATCH));
  });
}

/** Incremental by cursor: changed rows, then the key sets compared by counts. */
async function cursorSync(
  req: TableSyncRequest,
  schema: TableSchema,
  column: string,
  from: CanonicalValue,
  summary: TableSyncSummary,
  meter: ProgressMeter,
): Promise<void> {
  const srcSchema = req.source.schema!;
  const pick = projection(srcSchema, schema.columns);
  const idx = keyIndexes(schema);
  meter.start('scan');
  // The destination counts its key set while the source is read.
  const fingerprint = keyFingerprint(req);
  const destWhole = fingerprint.dest([WHOLE]);
  destWhole.catch(() => undefined);
  const changed: Row[] = [];
  for await (const batch of req.source.scan({ since: { column, value: from }, batchRows: BATCH })) {
    for (const r of batch) changed.push(pick(r));
    meter.add(batch.length, 0);
  }
  summary.rows.read = changed.length;
  // Which of them the destination holds already, and as what.
  const destByKey = new Map<string, Row>();
  const dpick = projection(req.dest.schema!, schema.columns);
  for (let i = 0; i < changed.length; i += 20_000) {
    const keys = changed.slice(i, i + 20_000).map((r) => rowKey(r, idx));
    for (const r of await req.dest.fetch(keys))
      destByKey.set(keyId(rowKey(dpick(r), idx)), dpick(r));
  }
  const diffs: RowDifference[] = [];
  const newKeys: KeyTuple[] = [];
  for (const row of changed) {
    const key = rowKey(row, idx);
    const old = destByKey.get(keyId(key));
    if (old === undefined) {
      diffs.push({ kind: 'missing', key, source: row });
      newKeys.push(key);
    } else if (rowHashText(schema.columns, old) !== rowHashText(schema.columns, row)) {
      diffs.push({ kind: 'changed', key, source: row, dest: old });
    } else {
      summary.rows.unchanged++;
    }
  }
  // Key sets: what the destination should count once the new rows land.
  const found = await compareKeySets(req, newKeys, fingerprint, destWhole);
  summary.rows.read += found.keysRead;
  const missed = await req.source.fetch(found.missing);
  for (const r of missed) {
    const row = pick(r);
    diffs.push({ kind: 'missing', key: rowKey(row, idx), source: row });
  }
  const deletes = req.command === 'sync' ? found.extra : [];
  for (const key of deletes) diffs.push({ kind: 'extra', key, dest: [] });
  const upserts = diffs.flatMap((d) => (d.kind === 'extra' ? [] : [d.source]));
  await apply(req, schema, diffs, upserts, deletes, found.destRows, summary);
}

/**
 * Finds keys the destination has and the source lacks (`extra`) and keys
 * the source has that the destination lacks beyond `incoming` (`missing`):
 * counts per segment, bisected where they disagree, key lists at the leaves.
 */
async function compareKeySets(
  req: TableSyncRequest,
  incoming: readonly KeyTuple[],
  fingerprint: KeyFingerprint,
  destWhole: Promise<SegmentChecksum[]>,
): Promise<{ extra: KeyTuple[]; missing: KeyTuple[]; destRows: number; keysRead: number }> {
  const leafRows = 5000;
  const sorted = [...incoming].sort(compareKeys);
  const incomingIds = new Set(sorted.map(keyId));
  // What the incoming rows add to a range of the destination.
  const adds = (range: KeyRange): SegmentChecksum => {
    let count = 0;
    let sum = 0n;
    for (const k of sorted) {
      if (!inRange(k, range)) continue;
      count++;
      if (fingerprint.sums) sum += keySumTerm(k);
    }
    return { count, sum };
  };
  const extra: KeyTuple[] = [];
  const missing: KeyTuple[] = [];
  let keysRead = 0;
  let destRows: number | undefined;
  // One range first: when the fingerprints agree (no deletes), one query per side.
  let level: KeyRange[] = [WHOLE];
  const leaves: KeyRange[] = [];
  while (level.length > 0) {
    // The destination's query first: a remote server works while an
    // in-process source (SQLite) computes its own.
    const dstP = level.length === 1 && level[0] === WHOLE ? destWhole : fingerprint.dest(level);
    const [dst, src] = await Promise.all([dstP, fingerprint.source(level)]);
    destRows ??= dst.reduce((n, d) => n + d.count, 0);
    const next: KeyRange[] = [];
    for (let i = 0; i < level.length; i++) {
      const range = level[i]!;
      const add = adds(range);
      const s = src[i]!;
      const d = dst[i]!;
      if (s.count === d.count + add.count && s.sum === d.sum + add.sum) continue;
      if (range === WHOLE && fingerprint.buckets !== undefined && s.count > leafRows) {
        // Scattered deletes would make bisection read every key: compare
        // buckets of ~64 keys in one pass per side instead.
        leaves.push(...(await fingerprint.buckets(Math.max(s.count, d.count), sorted)));
        continue;
      }
      if (Math.max(s.count, d.count) > leafRows) {
        const points = await req.source.splitPoints(16, range);
        if (points.length > 0) {
          next.push(...rangesFrom(points, range));
          continue;
        }
      }
      leaves.push(range);
    }
    level = next;
  }
  // Key lists of the differing leaves, compared a group of ranges at a time
  // (the ranges are disjoint, so a key's range does not matter).
  const intKey = fingerprint.buckets !== undefined;
  const group = intKey ? LEAVES_PER_QUERY : 4;
  for (let i = 0; i < leaves.length; i += group) {
    const part = leaves.slice(i, i + group);
    const [a, b] = await Promise.all([
      keysIn(req.source, part, intKey),
      keysIn(req.dest, part, intKey),
    ]);
    keysRead += a.length + b.length;
    const inSource = new Set(a.map(keyId));
    const inDest = new Set(b.map(keyId));
    for (const k of b) if (!inSource.has(keyId(k))) extra.push(k);
    for (const k of a) if (!inDest.has(keyId(k)) && !incomingIds.has(keyId(k))) missing.push(k);
  }
  return { extra, missing, destRows: destRows ?? 0, keysRead };
}

const WHOLE: KeyRange = {};

interface KeyFingerprint {
  /** Sums are compared too (a single integer key on both sides). */
  readonly sums: boolean;
  source(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]>;
  dest(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]>;
  /**
   * With keyBuckets on both sides: the key ranges of the buckets whose
   * fingerprints differ (after adding `incoming` to the destination's),
   * adjacent buckets merged.
   */
  buckets?(rows: number, incoming: readonly KeyTuple[]): Promise<KeyRange[]>;
}

/** Keys per bucket when comparing by buckets. */
const BUCKET_ROWS = 64;

async function differingBuckets(
  source: TableEndpoint,
  dest: TableEndpoint,
  rows: number,
  incoming: readonly KeyTuple[],
): Promise<KeyRange[]> {
  const column = source.schema!.key[0]!;
  const isInt = source.schema!.columns.find((c) => c.name === column)?.type === 'int';
  const bound = (v: bigint): KeyTuple => [isInt ? Number(v) : v];
  const max = await source.maxValue(column);
  const top = typeof max === 'bigint' || typeof max === 'number' ? BigInt(max) : 1n;
  const span = top < 0n ? -top : top;
  const width = span / BigInt(Math.max(1, Math.ceil(rows / BUCKET_ROWS))) + 1n;
  const dstP = dest.keyBuckets!(width);
  const [d, s] = await Promise.all([dstP, source.keyBuckets!(width)]);
  for (const k of incoming) {
    const b = keyBucket(k, width);
    const old = d.get(b) ?? { count: 0, sum: 0n };
    d.set(b, { count: old.count + 1, sum: old.sum + keySumTerm(k) });
  }
  const differ = new Set<bigint>();
  for (const [b, x] of s) {
    const y = d.get(b);
    if (y === undefined || y.count !== x.count || y.sum !== x.sum) differ.add(b);
  }
  for (const b of d.keys()) if (!s.has(b)) differ.add(b);
  const sortedBuckets = [...differ].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  const ranges: KeyRange[] = [];
  let from: bigint | undefined;
  let to: bigint | undefined;
  for (const b of sortedBuckets) {
    if (to !== undefined && b === to) {
      to = b + 1n;
      continue;
    }
    if (from !== undefined) ranges.push({ from: bound(from * width), to: bound(to! * width) });
    from = b;
    to = b + 1n;
  }
  if (from !== undefined) ranges.push({ from: bound(from * width), to: bound(to! * width) });
  return ranges;
}

/**
 * Per range, what the key sets are compared on: the count and the sum of
 * `key % 2^31-1` when both sides can compute it (a single integer key), so
 * a delete and a row the cursor missed in one range do not cancel out;
 * else the count alone.
 */
function keyFingerprint(req: TableSyncRequest): KeyFingerprint {
  const s = req.source;
  const d = req.dest;
  const integerKey = (ep: TableEndpoint): boolean => {
    const schema = ep.schema;
    if (schema?.key.length !== 1) return false;
    const col = schema.columns.find((c) => c.name === schema.key[0]);
    return col?.type === 'int' || col?.type === 'bigint';
  };
  if (s.keySums !== undefined && d.keySums !== undefined && integerKey(s) && integerKey(d)) {
    return {
      sums: true,
      source: (r) => s.keySums!(r),
      dest: (r) => d.keySums!(r),
      ...(s.keyBuckets !== undefined && d.keyBuckets !== undefined
        ? {
            buckets: (rows: number, incoming: readonly KeyTuple[]) =>
              differingBuckets(s, d, rows, incoming),
          }
        : {}),
    };
  }
  const counts = (ep: TableEndpoint) => async (ranges: readonly KeyRange[]) =>
    Promise.all(ranges.map(async (r) => ({ count: await ep.count(r), sum: 0n })));
  return { sums: false, source: counts(s), dest: counts(d) };
}

/** Bucket ranges listed per keysIn call (~64 keys each). */
const LEAVES_PER_QUERY = 4096;

/**
 * The keys in these ranges: one keysIn call when the key is one integer
 * column (`intKey`), else one scan per range.
 */
async function keysIn(
  ep: TableEndpoint,
  ranges: readonly KeyRange[],
  intKey: boolean,
): Promise<KeyTuple[]> {
  if (intKey && ep.keysIn !== undefined) return ep.keysIn(ranges);
  const lists = await Promise.all(ranges.map((range) => keysOf(ep, range)));
  return lists.flat();
}

async function keysOf(ep: TableEndpoint, range: KeyRange): Promise<KeyTuple[]> {
  const out: KeyTuple[] = [];
  for await (const batch of ep.scanKeys({ range, batchRows: BATCH })) out.push(...batch);
  return out;
}
