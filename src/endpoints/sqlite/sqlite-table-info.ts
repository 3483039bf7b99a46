/**
 * What the SQLite endpoint knows about a table once it is open: the
 * canonical schema (from PRAGMA table_xinfo), how its key may be compared
 * and ordered in SQL, and whether the key is unique (so upserts may use
 * ON CONFLICT). Generated and hidden columns are left out: they are derived
 * data, neither read nor written.
 */
import type Database from 'better-sqlite3';
import { TongbuError } from '../../core/errors.js';
import { keyIndexes, type Column, type TableSchema } from '../table/table-schema.js';
import { canonicalType, quoteIdent } from './sqlite-types.js';

export interface TableInfo {
  /** The table's name as SQLite spells it. */
  readonly name: string;
  readonly quoted: string;
  readonly schema: TableSchema;
  readonly keyIdx: readonly number[];
  readonly keyColumns: readonly Column[];
  /**
   * Every key column compares with the BINARY collation (no COLLATE NOCASE
   * or RTRIM on a text key), so plain `(a, b) > (?, ?)` both orders by code
   * point and can use the key's index.
   */
  readonly binaryKeys: boolean;
  /** Ordering by the key needs a sort: no index serves it. */
  readonly keySorts: boolean;
  /** A PRIMARY KEY or UNIQUE index covers exactly the key columns. */
  readonly keyUnique: boolean;
  readonly view: boolean;
}

interface ListRow {
  name: string;
  type: string;
  wr: number;
}
interface XInfoRow {
  name: string;
  type: string;
  notnull: number;
  pk: number;
  hidden: number;
}

/** Reads the table `table`, or undefined when the database has none of that name. */
export function readTableInfo(
  db: Database.Database,
  table: string,
  urlKey: readonly string[] | undefined,
  display: string,
): TableInfo | undefined {
  const t = db
    .prepare(
      "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'view') AND name = ? COLLATE NOCASE",
    )
    .get(table) as ListRow | undefined;
  if (t === undefined) return undefined;
  const view = t.type === 'view';
  const xinfo = (
    db
      .prepare('SELECT name, type, "notnull", pk, hidden FROM pragma_table_xinfo(?)')
      .all(t.name) as XInfoRow[]
  ).filter((c) => c.hidden === 0);
  const pk = xinfo.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
  const rowidAlias = t.wr === 0 && pk.length === 1 && pk[0]!.type.toUpperCase() === 'INTEGER';
  const columns: Column[] = xinfo.map((c) => ({
    name: c.name,
    ...canonicalType(c.type),
    nullable: c.notnull === 0 && !(c.pk > 0 && (t.wr === 1 || rowidAlias)),
    ...(c.type === '' ? {} : { nativeType: c.type }),
  }));
  const key =
    urlKey === undefined
      ? pk.map((c) => c.name)
      : urlKey.map((k) => columnName(columns, k, display));
  if (key.length === 0) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `${display}: ${view ? 'view' : 'table'} "${t.name}" has no primary key; name the key columns with ?key=col[,col]`,
      { data: { table: t.name } },
    );
  }
  const schema: TableSchema = { columns, key };
  const keyIdx = keyIndexes(schema);
  const keyColumns = keyIdx.map((i) => columns[i]!);
  const quoted = quoteIdent(t.name);
  const sameSet = (names: readonly string[]): boolean =>
    names.length === key.length &&
    names.every((n) => key.some((k) => k.toLowerCase() === n.toLowerCase()));
  const keyUnique =
    !view && (sameSet(pk.map((c) => c.name)) || uniqueIndexes(db, t.name).some(sameSet));
  const binaryKeys =
    !view && keyCollationsBinary(db, t.name, keyColumns, rowidAlias && sameSet([pk[0]!.name]));
  const info = { name: t.name, quoted, schema, keyIdx, keyColumns, binaryKeys, keyUnique, view };
  const plan = db
    .prepare(`EXPLAIN QUERY PLAN SELECT 1 FROM ${quoted} ${keyOrderBy(info)}`)
    .all() as { detail: string }[];
  return { ...info, keySorts: plan.some((p) => p.detail.includes('TEMP B-TREE')) };
}

function columnName(columns: readonly Column[], name: string, display: string): string {
  const hit =
    columns.find((c) => c.name === name) ??
    columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
  if (hit === undefined) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `${display}: key column "${name}" is not a column of the table`,
      {
        data: { column: name },
      },
    );
  }
  return hit.name;
}

function uniqueIndexes(db: Database.Database, table: string): string[][] {
  const list = db
    .prepare('SELECT name FROM pragma_index_list(?) WHERE "unique" = 1 AND partial = 0')
    .pluck()
    .all(table) as string[];
  return list.map(
    (index) =>
      db
        .prepare('SELECT name FROM pragma_index_info(?) ORDER BY seqno')
        .pluck()
        .all(index) as string[],
  );
}

/**
 * Whether every key column compares by BINARY. A table whose SQL never says
 * COLLATE is all BINARY; otherwise the collations come from an index whose
 * columns are the key (the primary key's or a unique one), and without such
 * an index the answer is a conservative no.
 */
function keyCollationsBinary(
  db: Database.Database,
  table: string,
  keyColumns: readonly Column[],
  rowid: boolean,
): boolean {
  if (rowid) return true;
  const sql = db
    .prepare("SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?")
    .pluck()
    .get(table) as string | null | undefined;
  if (typeof sql === 'string' && !/collate/i.test(sql)) return true;
  const indexes = db
    .prepare('SELECT name FROM pragma_index_list(?)')
    .pluck()
    .all(table) as string[];
  for (const index of indexes) {
    const cols = db
      .prepare('SELECT name, coll FROM pragma_index_xinfo(?) WHERE key = 1')
      .all(index) as {
      name: string | null;
      coll: string;
    }[];
    const found = keyColumns.map((k) => cols.find((c) => c.name === k.name));
    if (found.every((c) => c !== undefined))
      return found.every((c) => c.coll.toUpperCase() === 'BINARY');
  }
  return false;
}

/** The key columns as SQL terms: with COLLATE BINARY when the table's collation is not binary. */
export function keyTerms(info: Pick<TableInfo, 'keyColumns' | 'binaryKeys'>): string[] {
  return info.keyColumns.map((c) =>
    info.binaryKeys ? quoteIdent(c.name) : `${quoteIdent(c.name)} COLLATE BINARY`,
  );
}

export function keyOrderBy(info: Pick<TableInfo, 'keyColumns' | 'binaryKeys'>): string {
  return `ORDER BY ${keyTerms(info).join(', ')}`;
}

/** `key op ?` for one key column, `(a, b) op (?, ?)` for a composite key. */
export function keyCompare(
  info: Pick<TableInfo, 'keyColumns' | 'binaryKeys'>,
  op: '<' | '<=' | '>' | '>=' | '=',
): string {
  const terms = keyTerms(info);
  if (terms.length === 1) return `${terms[0]!} ${op} ?`;
  return `(${terms.join(', ')}) ${op} (${terms.map(() => '?').join(', ')})`;
}
