/**
 * Reads a table's shape from information_schema: columns with native and
 * canonical types, and the key (the primary key, or the URL's `key=`).
 */
import { TongbuError } from '../../core/errors.js';
import type { TableSchema } from '../table/table-schema.js';
import type { MysqlSession } from './mysql-pool.js';
import { canonicalColumn, type Flavor, type NativeColumn } from './mysql-types.js';
import { asText, quoteString } from './mysql-values.js';

export interface ReadSchema {
  readonly schema: TableSchema;
  /** Native descriptions, by column name. */
  readonly natives: ReadonlyMap<string, NativeColumn>;
  /** The primary key's columns (empty without one), whatever `key=` says. */
  readonly primary: readonly string[];
}

/** The server: MariaDB or MySQL, and its version as a number (10.11.6 → 101106). */
export async function serverFlavor(
  session: MysqlSession,
): Promise<{ flavor: Flavor; version: number }> {
  const rows = await session.query('SELECT VERSION()', 'read the server version');
  const text = asText(rows[0]?.[0] ?? '');
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(text);
  const version = m === null ? 0 : Number(m[1]) * 10000 + Number(m[2]) * 100 + Number(m[3]);
  return { flavor: /mariadb/i.test(text) ? 'mariadb' : 'mysql', version };
}

export async function readSchema(
  session: MysqlSession,
  where: {
    db: string;
    name: string;
    display: string;
    key: readonly string[] | undefined;
    flavor: Flavor;
  },
): Promise<ReadSchema | undefined> {
  const db = quoteString(where.db);
  const name = quoteString(where.name);
  const action = `read the columns of ${where.display}`;
  const rows = await session.query(
    `SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, CHARACTER_MAXIMUM_LENGTH,
            NUMERIC_PRECISION, NUMERIC_SCALE, CHARACTER_SET_NAME, COLLATION_NAME
       FROM information_schema.COLUMNS
      WHERE TABLE_SCHEMA = ${db} AND TABLE_NAME = ${name}
      ORDER BY ORDINAL_POSITION`,
    action,
  );
  if (rows.length === 0) return undefined;
  const jsonColumns = new Set<string>();
  if (where.flavor === 'mariadb') {
    const checks = await session.query(
      `SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS
        WHERE CONSTRAINT_SCHEMA = ${db} AND TABLE_NAME = ${name}`,
      action,
    );
    for (const [constraint, clause] of checks) {
      const c = String(constraint);
      if (String(clause).replace(/\s+/g, '') === `json_valid(\`${c.replace(/`/g, '``')}\`)`)
        jsonColumns.add(c);
    }
  }
  const natives = new Map<string, NativeColumn>();
  const columns = rows.map((r) => {
    const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    const str = (v: unknown) => (v === null || v === undefined ? null : asText(v));
    const n: NativeColumn = {
      name: String(r[0]),
      dataType: String(r[1]).toLowerCase(),
      columnType: String(r[2]).toLowerCase(),
      nullable: r[3] === 'YES',
      charMaxLength: num(r[4]),
      numericPrecision: num(r[5]),
      numericScale: num(r[6]),
      charset: str(r[7]),
      collation: str(r[8]),
      isJson: jsonColumns.has(String(r[0])),
    };
    natives.set(n.name, n);
    return canonicalColumn(n, where.display);
  });
  const pk = await session.query(
    `SELECT COLUMN_NAME FROM information_schema.STATISTICS
      WHERE TABLE_SCHEMA = ${db} AND TABLE_NAME = ${name} AND INDEX_NAME = 'PRIMARY'
      ORDER BY SEQ_IN_INDEX`,
    action,
  );
  const primary = pk.map((r) => String(r[0]));
  let key = where.key;
  if (key === undefined) {
    key = primary;
    if (key.length === 0) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${where.display}: table ${where.name} has no primary key; name the key columns with key=col[,col]`,
        { data: { table: where.name } },
      );
    }
  }
  for (const k of key) {
    if (!natives.has(k)) {
      throw new TongbuError(
        'BAD_ARGUMENT',
        `${where.display}: key column "${k}" is not a column of ${where.name}`,
        {
          data: { table: where.name, column: k },
        },
      );
    }
  }
  return { schema: { columns, key: [...key] }, natives, primary };
}
