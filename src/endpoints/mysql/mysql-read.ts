/**
 * Key-ordered reads. When ORDER BY the key walks the primary key index
 * (numbers, dates, bytes, text in a binary no-pad collation), rows come in
 * keyset pages (`WHERE key > last ORDER BY key LIMIT n`), each page a
 * short query, the next one already running while the caller handles the
 * current. Otherwise (text in another collation, MariaDB's UUID, which
 * sorts differently from its text) one query sorts by the canonical order
 * and streams, so the sort happens once, not once per page.
 */
import { TongbuError } from '../../core/errors.js';
import {
  compareKeys,
  floorDivSql,
  keyId,
  type CanonicalValue,
  type KeyRange,
  type KeyTuple,
  type Row,
  type SegmentChecksum,
} from '../table/canonical.js';
import type { ScanOptions } from '../table/table-endpoint.js';
import type { Column, TableSchema } from '../table/table-schema.js';
import type { MysqlPool, ResultRows } from './mysql-pool.js';
import {
  keyListCondition,
  orderBy,
  rangeConditions,
  tupleCompare,
  whereClause,
  type KeySql,
} from './mysql-sql.js';
import { keyOrderExpr, quoteId, type Flavor, type NativeColumn } from './mysql-types.js';
import { readerFor, selectExpr, sqlLiteral, type Reader } from './mysql-values.js';

/** What every read needs to know about the open table. */
export interface TableContext {
  readonly pool: MysqlPool;
  readonly sqlName: string;
  readonly display: string;
  readonly schema: TableSchema;
  readonly natives: ReadonlyMap<string, NativeColumn>;
  readonly key: KeySql;
  /** Quoted key column names. */
  readonly keyIds: readonly string[];
  readonly where: string | undefined;
  readonly flavor: Flavor;
  readonly version: number;
}

export const DEFAULT_BATCH = 5000;

export function nativeOf(ctx: TableContext, col: Column): NativeColumn {
  const n = ctx.natives.get(col.name);
  if (n === undefined) {
    throw new TongbuError('SCHEMA_MISMATCH', `${ctx.display}: no column "${col.name}"`);
  }
  return n;
}

/** The schema's own column of a name (callers may pass look-alikes). */
export function schemaColumn(ctx: TableContext, name: string): Column {
  const col = ctx.schema.columns.find((c) => c.name === name);
  if (col === undefined)
    throw new TongbuError('SCHEMA_MISMATCH', `${ctx.display}: no column "${name}"`);
  return col;
}

/** Filters shared by every read: the URL's where=, the range, extra conditions. */
export function conditions(
  ctx: TableContext,
  range: KeyRange | undefined,
  extra: string[] = [],
): string[] {
  return [
    ...(ctx.where !== undefined ? [ctx.where] : []),
    ...rangeConditions(ctx.key, range),
    ...extra,
  ];
}

function checkAbort(signal: AbortSignal | undefined, ctx: TableContext): void {
  if (signal?.aborted === true) {
    throw new TongbuError('ABORTED', `${ctx.display}: read aborted`, { cause: signal.reason });
  }
}

/**
 * Rows of `columns` (canonical values, in that order) in key order, in
 * batches. Key columns not among `columns` are read for the cursor and
 * left out of the rows.
 */
export async function* readRows(
  ctx: TableContext,
  columns: readonly Column[],
  options: ScanOptions = {},
): AsyncGenerator<Row[]> {
  const width = columns.length;
  const selected = [...columns];
  const keyPos = ctx.key.columns.map((k) => {
    const i = selected.findIndex((c) => c.name === k.name);
    if (i >= 0) return i;
    selected.push(k);
    return selected.length - 1;
  });
  const readers: Reader[] = selected.map((c) => readerFor(c, nativeOf(ctx, c)));
  const exprs = selected.map((c) => selectExpr(c, nativeOf(ctx, c)));
  const extra: string[] = [];
  if (options.since !== undefined) {
    const col = schemaColumn(ctx, options.since.column);
    const expr = keyOrderExpr(nativeOf(ctx, col), col.type, ctx.flavor);
    extra.push(`${expr} >= ${sqlLiteral(col, options.since.value)}`);
  }
  const base = conditions(ctx, options.range, extra);
  const select = `SELECT ${exprs.join(', ')} FROM ${ctx.sqlName}`;
  const batch = Math.max(1, Math.floor(options.batchRows ?? DEFAULT_BATCH));
  const convert = (raw: ResultRows): Row[] => {
    const n = readers.length;
    for (const r of raw) for (let i = 0; i < n; i++) r[i] = readers[i]!(r[i]);
    if (selected.length > width) for (const r of raw) r.length = width;
    return raw as Row[];
  };

  if (!ctx.key.indexed) {
    const session = await ctx.pool.acquire();
    try {
      const sql = `${select}${whereClause(base)}${orderBy(ctx.key)}`;
      for await (const raw of session.stream(sql, batch, `read ${ctx.display}`)) {
        checkAbort(options.signal, ctx);
        yield convert(raw);
      }
    } finally {
      ctx.pool.release(session);
    }
    return;
  }

  const page = (after: KeyTuple | undefined): Promise<ResultRows> => {
    const conds = after === undefined ? base : [...base, tupleCompare(ctx.key, after, '>')];
    const sql = `${select}${whereClause(conds)}${orderBy(ctx.key)} LIMIT ${batch}`;
    const p = ctx.pool.use((s) => s.query(sql, `read ${ctx.display}`));
    p.catch(() => undefined);
    return p;
  };
  let next: Promise<ResultRows> | undefined = page(undefined);
  while (next !== undefined) {
    checkAbort(options.signal, ctx);
    const raw = await next;
    next = undefined;
    if (raw.length === 0) break;
    // Read the cursor before convert() may cut key columns off.
    const last = raw[raw.length - 1]!;
    const lastKey = keyPos.map((i) => readers[i]!(last[i]));
    if (raw.length === batch) next = page(lastKey);
    const rows = convert(raw);
    yield rows;
  }
}

/** Rows with these keys, in key order. */
export async function fetchRows(ctx: TableContext, keys: readonly KeyTuple[]): Promise<Row[]> {
  const cols = ctx.schema.columns;
  const readers = cols.map((c) => readerFor(c, nativeOf(ctx, c)));
  const exprs = cols.map((c) => selectExpr(c, nativeOf(ctx, c)));
  const keyIdx = ctx.key.columns.map((k) => cols.findIndex((c) => c.name === k.name));
  const wanted = new Set(keys.map(keyId));
  const out: Row[] = [];
  const CHUNK = 1000;
  for (let i = 0; i < keys.length; i += CHUNK) {
    const chunk = keys.slice(i, i + CHUNK);
    const conds = conditions(ctx, undefined, [keyListCondition(ctx.key, chunk, ctx.keyIds)]);
    const raw = await ctx.pool.use((s) =>
      s.query(
        `SELECT ${exprs.join(', ')} FROM ${ctx.sqlName}${whereClause(conds)}`,
        `read ${ctx.display}`,
      ),
    );
    for (const r of raw) {
      for (let j = 0; j < readers.length; j++) r[j] = readers[j]!(r[j]);
      // The column's collation may match more than asked ('A' for 'a'): keep exact keys only.
      if (wanted.has(keyId(keyIdx.map((j) => r[j] as CanonicalValue)))) out.push(r as Row);
    }
  }
  const seen = new Set<string>();
  return out
    .filter((r) => {
      const id = keyId(keyIdx.map((j) => r[j]!));
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    })
    .sort((a, b) =>
      compareKeys(
        keyIdx.map((j) => a[j]!),
        keyIdx.map((j) => b[j]!),
      ),
    );
}

export async function countRows(ctx: TableContext, range: KeyRange | undefined): Promise<number> {
  const raw = await ctx.pool.use((s) =>
    s.query(
      `SELECT COUNT(*) FROM ${ctx.sqlName}${whereClause(conditions(ctx, range))}`,
      `count ${ctx.display}`,
    ),
  );
  return Number(raw[0]?.[0] ?? 0);
}

/** Count and sum of `key % 2147483647` per range (a single integer key). */
export async function keySums(
  ctx: TableContext,
  ranges: readonly KeyRange[],
): Promise<SegmentChecksum[]> {
  if (ctx.key.columns.length !== 1)
    throw new TongbuError('INTERNAL', 'keySums needs a single integer key');
  const k = ctx.key.exprs[0]!;
  return Promise.all(
    ranges.map(async (range) => {
      const raw = await ctx.pool.use((s) =>
        s.query(
          `SELECT COUNT(*), CAST(COALESCE(SUM(${k} % 2147483647), 0) AS CHAR) FROM ${ctx.sqlName}${whereClause(conditions(ctx, range))}`,
          `count ${ctx.display}`,
        ),
      );
      return {
        count: Number(raw[0]?.[0] ?? 0),
        sum: BigInt((raw[0]?.[1] as string | null | undefined) ?? '0'),
      };
    }),
  );
}

/** `keySums` per bucket floor(key / width), one query (a single integer key). */
export async function keyBuckets(
  ctx: TableContext,
  width: bigint,
): Promise<Map<bigint, SegmentChecksum>> {
  if (ctx.key.columns.length !== 1)
    throw new TongbuError('INTERNAL', 'keyBuckets needs a single integer key');
  const k = `CAST(${ctx.key.exprs[0]!} AS SIGNED)`;
  const raw = await ctx.pool.use((s) =>
    s.query(
      `SELECT CAST(${floorDivSql(k, String(width), 'DIV')} AS CHAR), COUNT(*), CAST(SUM(${k} % 2147483647) AS CHAR) FROM ${ctx.sqlName}${whereClause(conditions(ctx, undefined))} GROUP BY 1`,
      `count ${ctx.display}`,
    ),
  );
  const out = new Map<bigint, SegmentChecksum>();
  for (const row of raw) {
    out.set(BigInt(row[0] as string), { count: Number(row[1]), sum: BigInt(row[2] as string) });
  }
  return out;
}

export async function maxValue(ctx: TableContext, name: string): Promise<CanonicalValue> {
  const col = schemaColumn(ctx, name);
  const n = nativeOf(ctx, col);
  const id = quoteId(n.name);
  const expr =
    col.type === 'float'
      ? `CAST(MAX(${n.dataType === 'float' ? `CAST(${id} AS DOUBLE)` : id}) AS CHAR)`
      : `MAX(${keyOrderExpr(n, col.type, ctx.flavor)})`;
  const raw = await ctx.pool.use((s) =>
    s.query(
      `SELECT ${expr} FROM ${ctx.sqlName}${whereClause(conditions(ctx, undefined))}`,
      `read ${ctx.display}`,
    ),
  );
  return readerFor(col, n)(raw[0]?.[0] ?? null);
}
