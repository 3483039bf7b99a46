/**
 * Finds the rows two tables disagree on without reading equal parts: split
 * the key space into segments, compare each segment's checksum (row count
 * and sum of row hashes, computed by each engine where it can), and bisect
 * only the segments that differ, down to leaves small enough to read and
 * merge row by row (the data-diff idea). Equal tables cost one checksum
 * pass per side, both sides at once.
 */
import { TongbuError } from '../core/errors.js';
import {
  compareKeys,
  rowHashText,
  rowKey,
  type KeyRange,
  type KeyTuple,
  type Row,
  type SegmentChecksum,
} from '../endpoints/table/canonical.js';
import type { TableEndpoint } from '../endpoints/table/table-endpoint.js';
import { keyIndexes, type Column, type TableSchema } from '../endpoints/table/table-schema.js';

/** One difference, with the rows as each side holds them (in `columns` order). */
export type RowDifference =
  | { readonly kind: 'missing'; readonly key: KeyTuple; readonly source: Row }
  | { readonly kind: 'extra'; readonly key: KeyTuple; readonly dest: Row }
  | { readonly kind: 'changed'; readonly key: KeyTuple; readonly source: Row; readonly dest: Row };

export interface TableDiffOptions {
  /** The columns compared (present on both sides), key columns included. */
  readonly schema: TableSchema;
  /** Segments of the first pass. */
  readonly segments?: number;
  /** A differing segment of at most this many rows is read and merged. */
  readonly leafRows?: number;
  /** Sub-segments a differing segment is split into. */
  readonly fanout?: number;
  readonly signal?: AbortSignal;
  /** Differences, in batches, as they are found (not in key order overall). */
  readonly onDifferences: (diffs: readonly RowDifference[]) => Promise<void> | void;
  /** Rows proven equal or compared so far, for progress. */
  readonly onProgress?: (rowsDone: number) => void;
}

export interface TableDiffStats {
  /** Rows on each side, from the first pass. */
  readonly sourceRows: number;
  readonly destRows: number;
  /** Checksum queries per side, and rows read row by row in leaves. */
  readonly checksumQueries: number;
  readonly rowsRead: number;
  /** The checksum used: `portable` or the engines' shared native id. */
  readonly method: string;
}

export async function diffTables(
  source: TableEndpoint,
  dest: TableEndpoint,
  options: TableDiffOptions,
): Promise<TableDiffStats> {
  const columns = options.schema.columns;
  const leafRows = options.leafRows ?? 4000;
  const fanout = options.fanout ?? 16;
  const sum = pickChecksum(source, dest, columns);
  let queries = 0;
  let rowsRead = 0;
  let done = 0;

  const firstPoints = await source.splitPoints(options.segments ?? 32);
  let level = rangesFrom(firstPoints, {});
  let totals: [number, number] | undefined;
  while (level.length > 0) {
    options.signal?.throwIfAborted();
    queries += level.length;
    const [a, b] = await Promise.all([sum.source(level), sum.dest(level)]);
    totals ??= [total(a), total(b)];
    const next: KeyRange[] = [];
    const leaves: KeyRange[] = [];
    for (let i = 0; i < level.length; i++) {
      const x = a[i]!;
      const y = b[i]!;
      if (x.count === y.count && x.sum === y.sum) {
        done += x.count;
        continue;
      }
      const range = level[i]!;
      if (Math.max(x.count, y.count) <= leafRows) {
        leaves.push(range);
        continue;
      }
      const bigger = x.count >= y.count ? source : dest;
      const points = await bigger.splitPoints(fanout, range);
      if (points.length === 0) leaves.push(range);
      else next.push(...rangesFrom(points, range));
    }
    for (const range of leaves) {
      const read = await mergeLeaf(source, dest, options.schema, range, options);
      rowsRead += read;
      done += read;
    }
    options.onProgress?.(done);
    level = next;
  }
  return {
    sourceRows: totals?.[0] ?? 0,
    destRows: totals?.[1] ?? 0,
    checksumQueries: queries,
    rowsRead,
    method: sum.method,
  };
}

function total(sums: readonly SegmentChecksum[]): number {
  return sums.reduce((n, s) => n + s.count, 0);
}

/** The ranges between consecutive points, inside `outer`. */
export function rangesFrom(points: readonly KeyTuple[], outer: KeyRange): KeyRange[] {
  const ranges: KeyRange[] = [];
  let from = outer.from;
  for (const p of points) {
    ranges.push({ ...(from !== undefined ? { from } : {}), to: p });
    from = p;
  }
  ranges.push({
    ...(from !== undefined ? { from } : {}),
    ...(outer.to !== undefined ? { to: outer.to } : {}),
  });
  return ranges;
}

interface ChecksumPair {
  readonly method: string;
  source(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]>;
  dest(ranges: readonly KeyRange[]): Promise<SegmentChecksum[]>;
}

/** The engines' native checksum when both offer the same one, else the portable one. */
function pickChecksum(
  source: TableEndpoint,
  dest: TableEndpoint,
  columns: readonly Column[],
): ChecksumPair {
  const sn = source.native;
  const dn = dest.native;
  if (sn !== undefined && dn !== undefined) {
    // Native ids embed the native column types; compare them by column name.
    const srcCols = source.schema?.columns ?? [];
    const dstCols = dest.schema?.columns ?? [];
    const mine = columns.map((c) => srcCols.find((x) => x.name === c.name) ?? c);
    const theirs = columns.map((c) => dstCols.find((x) => x.name === c.name) ?? c);
    const id = sn.nativeChecksumId(mine);
    if (id === dn.nativeChecksumId(theirs)) {
      return {
        method: id,
        source: (r) => sn.nativeChecksums(mine, r),
        dest: (r) => dn.nativeChecksums(theirs, r),
      };
    }
  }
  return {
    method: 'portable',
    source: (r) => source.checksums(columns, r),
    dest: (r) => dest.checksums(columns, r),
  };
}

/** Reads one range from both sides and merges them by key. Returns rows read. */
async function mergeLeaf(
  source: TableEndpoint,
  dest: TableEndpoint,
  schema: TableSchema,
  range: KeyRange,
  options: TableDiffOptions,
): Promise<number> {
  const [a, b] = await Promise.all([
    readRange(source, schema, range),
    readRange(dest, schema, range),
  ]);
  const idx = keyIndexes(schema);
  const diffs: RowDifference[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    const c =
      x === undefined ? 1 : y === undefined ? -1 : compareKeys(rowKey(x, idx), rowKey(y, idx));
    if (c < 0) {
      diffs.push({ kind: 'missing', key: rowKey(x!, idx), source: x! });
      i++;
    } else if (c > 0) {
      diffs.push({ kind: 'extra', key: rowKey(y!, idx), dest: y! });
      j++;
    } else {
      if (rowHashText(schema.columns, x!) !== rowHashText(schema.columns, y!)) {
        diffs.push({ kind: 'changed', key: rowKey(x!, idx), source: x!, dest: y! });
      }
      i++;
      j++;
    }
  }
  if (diffs.length > 0) await options.onDifferences(diffs);
  return a.length + b.length;
}

/** The rows of a range, projected onto `schema`'s columns. */
export async function readRange(
  ep: TableEndpoint,
  schema: TableSchema,
  range: KeyRange,
): Promise<Row[]> {
  const own = ep.schema;
  if (own === undefined) throw new TongbuError('SOURCE_NOT_FOUND', `${ep.url}: no such table`);
  const pick = projection(own, schema.columns);
  const rows: Row[] = [];
  for await (const batch of ep.scan({ range })) for (const r of batch) rows.push(pick(r));
  return rows;
}

/** A function taking a row of `from` to the values of `columns`, in order. */
export function projection(from: TableSchema, columns: readonly Column[]): (row: Row) => Row {
  const idx = columns.map((c) => from.columns.findIndex((x) => x.name === c.name));
  if (idx.some((i) => i < 0))
    throw new TongbuError('SCHEMA_MISMATCH', 'column missing on one side');
  const identity = idx.length === from.columns.length && idx.every((v, i) => v === i);
  return identity ? (row) => row : (row) => idx.map((i) => row[i]!);
}
