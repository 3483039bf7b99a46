/**
 * Split points: keys that cut a range into parts of about equal row
 * counts. A single integer key splits by arithmetic on MIN and MAX (one
 * index lookup each; even for gappy keys the parts are fair enough for
 * checksums). Other keys stride through the key: when the key order is the
 * index order, one `LIMIT 1 OFFSET stride` step per point, each starting
 * after the last point, so the whole range is walked once in the server;
 * otherwise the sorted keys are streamed and every stride-th kept.
 */
import type { KeyRange, KeyTuple } from '../table/canonical.js';
import { orderBy, rangeConditions, tupleCompare, whereClause } from './mysql-sql.js';
import { conditions, countRows, nativeOf, readRows, type TableContext } from './mysql-read.js';
import { readerFor, selectExpr } from './mysql-values.js';

export async function splitPoints(
  ctx: TableContext,
  parts: number,
  range?: KeyRange,
): Promise<KeyTuple[]> {
  if (!(parts > 1)) return [];
  if (integerKey(ctx)) return integerSplit(ctx, Math.floor(parts), range, true);
  const n = await countRows(ctx, range);
  const positions: number[] = [];
  for (let p = 1; p < parts; p++) {
    const pos = Math.floor((p * n) / parts);
    if (pos > 0 && pos < n && pos !== positions[positions.length - 1]) positions.push(pos);
  }
  if (positions.length === 0) return [];
  return ctx.key.indexed ? strideSplit(ctx, positions, range) : streamSplit(ctx, positions, range);
}

export function integerKey(ctx: TableContext): boolean {
  const key = ctx.key.columns;
  return key.length === 1 && (key[0]!.type === 'int' || key[0]!.type === 'bigint');
}

/**
 * Integer split points from MIN and MAX of the key in the range; with
 * `filtered` false the URL's where= is ignored, so both are index lookups
 * whatever the filter costs (the checksums' own parallel split).
 */
export async function integerSplit(
  ctx: TableContext,
  parts: number,
  range: KeyRange | undefined,
  filtered: boolean,
): Promise<KeyTuple[]> {
  const id = ctx.keyIds[0]!;
  const conds = filtered ? conditions(ctx, range) : rangeConditions(ctx.key, range);
  const raw = await ctx.pool.use((s) =>
    s.query(
      `SELECT MIN(${id}), MAX(${id}) FROM ${ctx.sqlName}${whereClause(conds)}`,
      `split ${ctx.display}`,
    ),
  );
  const [lo, hi] = raw[0] ?? [];
  if (lo === null || lo === undefined || hi === null || hi === undefined) return [];
  const min = BigInt(lo as string | number);
  const span = BigInt(hi as string | number) - min + 1n;
  const asNumber = ctx.key.columns[0]!.type === 'int';
  const out: KeyTuple[] = [];
  let last = min;
  for (let p = 1; p < parts; p++) {
    const point = min + (span * BigInt(p)) / BigInt(parts);
    if (point > last) {
      out.push([asNumber ? Number(point) : point]);
      last = point;
    }
  }
  return out;
}

async function strideSplit(
  ctx: TableContext,
  positions: readonly number[],
  range?: KeyRange,
): Promise<KeyTuple[]> {
  const cols = ctx.key.columns;
  const exprs = cols.map((c) => selectExpr(c, nativeOf(ctx, c)));
  const readers = cols.map((c) => readerFor(c, nativeOf(ctx, c)));
  const base = conditions(ctx, range);
  const out: KeyTuple[] = [];
  let prev: { key: KeyTuple; pos: number } | undefined;
  for (const pos of positions) {
    const conds = prev === undefined ? base : [...base, tupleCompare(ctx.key, prev.key, '>')];
    const offset = prev === undefined ? pos : pos - prev.pos - 1;
    const raw = await ctx.pool.use((s) =>
      s.query(
        `SELECT ${exprs.join(', ')} FROM ${ctx.sqlName}${whereClause(conds)}${orderBy(ctx.key)} LIMIT 1 OFFSET ${offset}`,
        `split ${ctx.display}`,
      ),
    );
    const row = raw[0];
    if (row === undefined) break;
    const keyTuple = readers.map((r, i) => r(row[i]));
    out.push(keyTuple);
    prev = { key: keyTuple, pos };
  }
  return out;
}

async function streamSplit(
  ctx: TableContext,
  positions: readonly number[],
  range?: KeyRange,
): Promise<KeyTuple[]> {
  const out: KeyTuple[] = [];
  let seen = 0;
  let next = 0;
  for await (const batch of readRows(ctx, ctx.key.columns, {
    ...(range !== undefined ? { range } : {}),
    batchRows: 20_000,
  })) {
    for (const row of batch) {
      if (seen === positions[next]) {
        out.push(row);
        next++;
      }
      seen++;
    }
    if (next >= positions.length) break;
  }
  return out;
}
