/**
 * The SQL text of reads on one table: WHERE clauses for a key range (row
 * comparisons on the key, text compared under COLLATE "C" so the order is
 * `compareKeys` order), the incremental cursor and the URL's `where=`, and
 * the key order. Values are inlined as typed literals because COPY takes
 * no parameters.
 */
import { TongbuError } from '../../core/errors.js';
import type { CanonicalValue, KeyRange, KeyTuple } from '../table/canonical.js';
import { qualifiedName, type PgTableShape } from './postgres-catalog.js';
import { literal, selectExpr, sortExpr, valueOrderExpr, type PgColumn } from './postgres-types.js';

export interface ReadFilter {
  readonly range?: KeyRange | undefined;
  readonly since?: { readonly column: string; readonly value: CanonicalValue } | undefined;
  /** Extra conditions, already SQL. */
  readonly extra?: readonly string[];
}

export class TableSql {
  readonly from: string;

  constructor(
    readonly table: string,
    readonly shape: PgTableShape,
    private readonly where: string | undefined,
  ) {
    this.from = qualifiedName(table);
  }

  column(name: string): PgColumn {
    const c = this.shape.columns.find((col) => col.column.name === name);
    if (c === undefined) {
      throw new TongbuError('BAD_ARGUMENT', `table "${this.table}" has no column "${name}"`, {
        data: { table: this.table, column: name },
      });
    }
    return c;
  }

  /** ` WHERE …` for the filter and the URL's where=, or ''. */
  whereClause(filter: ReadFilter = {}): string {
    const conds: string[] = [];
    if (this.where !== undefined) conds.push(`(${this.where})`);
    if (filter.range?.from !== undefined) conds.push(this.keyCompare('>=', filter.range.from));
    if (filter.range?.to !== undefined) conds.push(this.keyCompare('<', filter.range.to));
    if (filter.since !== undefined) {
      const c = this.column(filter.since.column);
      conds.push(`${valueOrderExpr(c)} >= ${literal(c, filter.since.value, false)}`);
    }
    if (filter.extra !== undefined) conds.push(...filter.extra);
    return conds.length === 0 ? '' : ` WHERE ${conds.join(' AND ')}`;
  }

  keyCompare(op: '>=' | '<' | '>' | '<=', key: KeyTuple): string {
    const cols = this.shape.keyColumns.slice(0, key.length);
    if (cols.length === 0) throw new TongbuError('BAD_ARGUMENT', 'an empty key bound');
    if (cols.length === 1) return `${sortExpr(cols[0]!)} ${op} ${literal(cols[0]!, key[0]!)}`;
    const left = cols.map(sortExpr).join(', ');
    const right = cols.map((c, i) => literal(c, key[i]!)).join(', ');
    return `(${left}) ${op} (${right})`;
  }

  orderBy(direction: '' | ' DESC' = ''): string {
    return ` ORDER BY ${this.shape.keyColumns.map((c) => `${sortExpr(c)}${direction}`).join(', ')}`;
  }

  /** SELECT of `cols` (their select expressions) in key order. */
  select(cols: readonly PgColumn[], filter: ReadFilter = {}, tail = ''): string {
    const list = cols.map(selectExpr).join(', ');
    return `SELECT ${list} FROM ${this.from}${this.whereClause(filter)}${this.orderBy()}${tail}`;
  }
}
