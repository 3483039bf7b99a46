/**
 * Split points for a SQLite table: keys that cut a key range into parts of
 * roughly equal row counts. A single integer key whose values are dense
 * (at least one row per two key values) splits by arithmetic on min and
 * max; otherwise the points are every (count/parts)-th key, found by
 * stepping through the key index with `LIMIT 1 OFFSET n` from the previous
 * point, which reads the range's keys once.
 */
import type { KeyTuple } from '../table/canonical.js';
import { keyOrderBy, type TableInfo } from './sqlite-table-info.js';
import { quoteIdent } from './sqlite-types.js';
import type { BindValue, SqlValue } from './sqlite-values.js';

export interface SplitSource {
  readonly info: TableInfo;
  query(sql: string, params: readonly BindValue[]): SqlValue[][];
  /** The WHERE clause for the range (and the URL's where), optionally only keys after `after`. */
  filter(after?: readonly BindValue[]): { sql: string; params: BindValue[] };
  /** Raw key values → canonical key (the array given is not changed). */
  toKey(raw: readonly SqlValue[]): KeyTuple;
}

export function splitPoints(src: SplitSource, parts: number): KeyTuple[] {
  if (!(parts >= 2)) return [];
  const { info } = src;
  const keys = info.keyColumns.map((c) => quoteIdent(c.name)).join(', ');
  const base = src.filter();
  const keyType = info.keyColumns.length === 1 ? info.keyColumns[0]!.type : undefined;
  let count: number;
  if (keyType === 'int' || keyType === 'bigint') {
    const sql = `SELECT min(${keys}), max(${keys}), count(*) FROM ${info.quoted} ${base.sql}`;
    const [min, max, n] = src.query(sql, base.params)[0]!;
    count = Number(n);
    if (count < 2) return [];
    if (typeof min === 'bigint' && typeof max === 'bigint') {
      const span = max - min + 1n;
      if (BigInt(count) * 2n >= span) return arithmetic(min, max, span, parts, keyType === 'int');
    }
  } else {
    const sql = `SELECT count(*) FROM ${info.quoted} ${base.sql}`;
    count = Number(src.query(sql, base.params)[0]![0]);
  }
  const points: KeyTuple[] = [];
  const order = keyOrderBy(info);
  let prev: readonly BindValue[] | undefined;
  let prevAt = 0;
  for (let i = 1; i < parts; i++) {
    const at = Math.floor((i * count) / parts);
    if (at <= prevAt) continue;
    const f = prev === undefined ? base : src.filter(prev);
    const offset = prev === undefined ? at : at - prevAt - 1;
    const sql = `SELECT ${keys} FROM ${info.quoted} ${f.sql} ${order} LIMIT 1 OFFSET ?`;
    const row = src.query(sql, [...f.params, offset])[0];
    if (row === undefined) break;
    points.push(src.toKey(row));
    prev = row;
    prevAt = at;
  }
  return points;
}

function arithmetic(
  min: bigint,
  max: bigint,
  span: bigint,
  parts: number,
  asNumber: boolean,
): KeyTuple[] {
  const points: KeyTuple[] = [];
  let last = min;
  for (let i = 1; i < parts; i++) {
    const p = min + (span * BigInt(i)) / BigInt(parts);
    if (p <= last || p > max) continue;
    points.push([asNumber ? Number(p) : p]);
    last = p;
  }
  return points;
}
