/**
 * WHERE and ORDER BY pieces for key-ordered reads: key ranges, keyset
 * cursors, key lists. Composite keys compare in the expanded form
 * `a >= x AND (a > x OR b > y)`, which MariaDB turns into an index range
 * (it does not for row constructors like `(a, b) > (x, y)`).
 */
import type { CanonicalValue, KeyRange, KeyTuple } from '../table/canonical.js';
import type { Column } from '../table/table-schema.js';
import { sqlLiteral } from './mysql-values.js';

/** The key as the SQL sees it. */
export interface KeySql {
  readonly columns: readonly Column[];
  /** Per key column, the expression whose order is the canonical order. */
  readonly exprs: readonly string[];
  /** Whether ORDER BY exprs walks the primary key index (no sort). */
  readonly indexed: boolean;
}

type Op = '>' | '>=' | '<';

/** `key op tuple` for a full or leading-prefix tuple. */
export function tupleCompare(key: KeySql, tuple: KeyTuple, op: Op): string {
  const n = Math.min(tuple.length, key.exprs.length);
  const lit = (i: number) => sqlLiteral(key.columns[i]!, tuple[i] as CanonicalValue);
  const strict = op === '<' ? '<' : '>';
  const build = (i: number): string => {
    const e = key.exprs[i]!;
    if (i === n - 1) return `${e} ${op} ${lit(i)}`;
    return `${e} ${strict} ${lit(i)} OR (${e} = ${lit(i)} AND (${build(i + 1)}))`;
  };
  if (n === 0) return '1=1';
  if (n === 1) return build(0);
  const outer = op === '<' ? '<=' : '>=';
  return `${key.exprs[0]!} ${outer} ${lit(0)} AND (${build(0)})`;
}

export function rangeConditions(key: KeySql, range: KeyRange | undefined): string[] {
  const out: string[] = [];
  if (range?.from !== undefined) out.push(tupleCompare(key, range.from, '>='));
  if (range?.to !== undefined) out.push(tupleCompare(key, range.to, '<'));
  return out;
}

/** `key IN (…)` for a list of keys (rows with the key equal to one of them). */
export function keyListCondition(
  key: KeySql,
  keys: readonly KeyTuple[],
  ids: readonly string[],
): string {
  if (key.columns.length === 1) {
    return `${ids[0]!} IN (${keys.map((k) => sqlLiteral(key.columns[0]!, k[0] ?? null)).join(',')})`;
  }
  return keys
    .map(
      (k) =>
        `(${ids.map((id, i) => `${id} = ${sqlLiteral(key.columns[i]!, k[i] ?? null)}`).join(' AND ')})`,
    )
    .join(' OR ');
}

export function whereClause(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : ` WHERE ${conditions.map((c) => `(${c})`).join(' AND ')}`;
}

export function orderBy(key: KeySql): string {
  return ` ORDER BY ${key.exprs.join(', ')}`;
}
