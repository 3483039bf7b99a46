/**
 * The table's shape from pg_catalog: columns (domains resolved to their
 * base type), the primary key or the URL's `key=`, and the DDL `create`
 * runs. Table names are `name` (found through search_path) or
 * `schema.name`, each part taken literally (case-sensitive) and quoted.
 */
import { TongbuError } from '../../core/errors.js';
import type { TableSchema } from '../table/table-schema.js';
import { rawQuery, type Connection, type Queryable } from './postgres-session.js';
import { nativeTypeFor, pgColumn, quoteIdent, quoteText, type PgColumn } from './postgres-types.js';

/** The quoted, possibly schema-qualified name of `table=`. */
export function qualifiedName(table: string): string {
  const dot = table.indexOf('.');
  return dot < 0
    ? quoteIdent(table)
    : `${quoteIdent(table.slice(0, dot))}.${quoteIdent(table.slice(dot + 1))}`;
}

export interface PgTableShape {
  readonly schema: TableSchema;
  readonly columns: readonly PgColumn[];
  /** The key columns, in key order. */
  readonly keyColumns: readonly PgColumn[];
}

const COLUMNS_SQL = `
SELECT a.attname, bt.typname,
       (CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END)::text,
       format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 't' ELSE 'f' END,
       CASE
         WHEN a.attcollation = 0 THEN ''
         WHEN a.attcollation = 100 THEN (
           SELECT CASE WHEN coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') = 'c' THEN d.datcollate ELSE '' END
           FROM pg_database d WHERE d.datname = current_database())
         ELSE (
           SELECT CASE WHEN co.collprovider = 'c' THEN coalesce(co.collcollate, '') ELSE '' END
           FROM pg_collation co WHERE co.oid = a.attcollation)
       END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

const PRIMARY_KEY_SQL = `
SELECT a.attname
FROM pg_index i
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = $1::oid AND i.indisprimary
ORDER BY k.ord`;

/** Reads the table's shape, or undefined when there is no such table. */
export async function readShape(
  q: Queryable,
  conn: Connection,
  table: string,
  key: readonly string[] | undefined,
): Promise<PgTableShape | undefined> {
  const found = await rawQuery(
    q,
    conn,
    `SELECT to_regclass(${quoteText(qualifiedName(table))})::oid::text`,
  );
  const oid = found[0]?.[0];
  if (oid === null || oid === undefined) return undefined;
  const rows = await rawQuery(q, conn, COLUMNS_SQL, [oid]);
  const columns = rows.map(([name, typname, typmod, native, notNull, collate]) =>
    pgColumn(name!, typname!, Number(typmod), native!, notNull === 't', collate ?? ''),
  );
  let keyNames = key;
  if (keyNames === undefined) {
    keyNames = (await rawQuery(q, conn, PRIMARY_KEY_SQL, [oid])).map((r) => r[0]!);
    if (keyNames.length === 0) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${conn.ctx.display}: table "${table}" has no primary key; name the key columns with key=col[,col]`,
        { data: { table } },
      );
    }
  }
  const keyColumns = keyNames.map((name) => {
    const c = columns.find((col) => col.column.name === name);
    if (c === undefined) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${conn.ctx.display}: key column "${name}" is not a column of "${table}"`,
        {
          data: { table, column: name },
        },
      );
    }
    return c;
  });
  return { schema: { columns: columns.map((c) => c.column), key: keyNames }, columns, keyColumns };
}

/** CREATE TABLE without the primary key (added at commit, after the bulk load). */
export function createTableSql(table: string, schema: TableSchema): string {
  const cols = schema.columns.map(
    (c) =>
      `${quoteIdent(c.name)} ${nativeTypeFor(c)}${c.nullable && !schema.key.includes(c.name) ? '' : ' NOT NULL'}`,
  );
  return `CREATE TABLE ${qualifiedName(table)} (${cols.join(', ')})`;
}

export function addPrimaryKeySql(table: string, key: readonly string[]): string {
  return `ALTER TABLE ${qualifiedName(table)} ADD PRIMARY KEY (${key.map(quoteIdent).join(', ')})`;
}
