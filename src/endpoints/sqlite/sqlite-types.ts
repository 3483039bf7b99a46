/**
 * SQLite declared column types ↔ canonical column types.
 *
 * SQLite stores any value in any column; the declared type only gives the
 * column an affinity. The canonical type of a column is read from its
 * declared type name (case-insensitive, `(p,s)` parsed):
 *
 *   INTEGER, BIGINT, INT8                       → bigint
 *   INT, SMALLINT, MEDIUMINT, TINYINT, INT2, INT4 → int
 *   NUMERIC, DECIMAL, DECIMAL_TEXT, NUMERIC_TEXT (p,s) → numeric
 *   REAL, DOUBLE, DOUBLE PRECISION, FLOAT, FLOAT4, FLOAT8 → float
 *   TEXT, VARCHAR(n), CHAR(n), CLOB, NVARCHAR(n), … → text (n = precision)
 *   BLOB, BYTEA, BINARY, VARBINARY               → blob
 *   BOOLEAN, BOOL                                → bool
 *   DATETIME, TIMESTAMP [WITHOUT TIME ZONE]      → timestamp
 *   TIMESTAMPTZ, TIMESTAMP WITH TIME ZONE        → timestamptz
 *   DATE → date; JSON, JSONB → json; UUID → uuid
 *   no declared type                             → text
 *   anything else by SQLite's affinity rules: a name containing INT →
 *   bigint; CHAR, CLOB or TEXT → text; BLOB → blob; REAL, FLOA or DOUB →
 *   float; the rest (NUMERIC affinity: MONEY, STRING, TIME…) → text.
 *
 * Tables tongbu creates declare (`declaredType`): int → INT, bigint →
 * INTEGER (a single bigint key becomes the rowid alias), numeric →
 * DECIMAL_TEXT(p,s), float → REAL, text → TEXT or VARCHAR(n), blob → BLOB,
 * bool → BOOLEAN, timestamp → DATETIME, timestamptz → TIMESTAMPTZ, date →
 * DATE, json → JSON, uuid → UUID.
 *
 * Why DECIMAL_TEXT: a name with DECIMAL or NUMERIC alone has NUMERIC
 * affinity, which turns the text '1.50' into the REAL 1.5 and keeps only 15
 * significant digits. DECIMAL_TEXT contains TEXT, so its affinity is TEXT and
 * the canonical decimal text is stored exactly; the name still reads back as
 * numeric with its precision and scale.
 */
import { TongbuError } from '../../core/errors.js';
import {
  keyIndexes,
  type Column,
  type ColumnType,
  type TableSchema,
} from '../table/table-schema.js';

type Parsed = Pick<Column, 'type' | 'precision' | 'scale'>;

const EXACT: Record<string, ColumnType> = {
  INTEGER: 'bigint',
  BIGINT: 'bigint',
  INT8: 'bigint',
  INT: 'int',
  SMALLINT: 'int',
  MEDIUMINT: 'int',
  TINYINT: 'int',
  INT2: 'int',
  INT4: 'int',
  NUMERIC: 'numeric',
  DECIMAL: 'numeric',
  DECIMAL_TEXT: 'numeric',
  NUMERIC_TEXT: 'numeric',
  REAL: 'float',
  DOUBLE: 'float',
  'DOUBLE PRECISION': 'float',
  FLOAT: 'float',
  FLOAT4: 'float',
  FLOAT8: 'float',
  TEXT: 'text',
  VARCHAR: 'text',
  CHAR: 'text',
  CLOB: 'text',
  NVARCHAR: 'text',
  NCHAR: 'text',
  CHARACTER: 'text',
  'CHARACTER VARYING': 'text',
  'VARYING CHARACTER': 'text',
  'NATIVE CHARACTER': 'text',
  '': 'text',
  BLOB: 'blob',
  BYTEA: 'blob',
  BINARY: 'blob',
  VARBINARY: 'blob',
  BOOLEAN: 'bool',
  BOOL: 'bool',
  DATETIME: 'timestamp',
  TIMESTAMP: 'timestamp',
  'TIMESTAMP WITHOUT TIME ZONE': 'timestamp',
  TIMESTAMPTZ: 'timestamptz',
  'TIMESTAMP WITH TIME ZONE': 'timestamptz',
  DATE: 'date',
  JSON: 'json',
  JSONB: 'json',
  UUID: 'uuid',
};

const TYPE_NAME = /^\s*(.*?)\s*(?:\(\s*([+-]?\d+)\s*(?:,\s*([+-]?\d+)\s*)?\))?\s*$/s;

/** The canonical type of a column declared as `declared`. */
export function canonicalType(declared: string): Parsed {
  const m = TYPE_NAME.exec(declared);
  const name = (m?.[1] ?? declared).toUpperCase().replace(/\s+/g, ' ');
  const p = m?.[2] === undefined ? undefined : Number(m[2]);
  const s = m?.[3] === undefined ? undefined : Number(m[3]);
  const type = EXACT[name] ?? byAffinity(name);
  if (type === 'numeric' && p !== undefined) return { type, precision: p, scale: s ?? 0 };
  if (type === 'text' && p !== undefined && /CHAR/.test(name)) return { type, precision: p };
  return { type };
}

/** SQLite's affinity rules (datatype3.html §3.1), mapped to canonical types. */
function byAffinity(name: string): ColumnType {
  if (name.includes('INT')) return 'bigint';
  if (/CHAR|CLOB|TEXT/.test(name)) return 'text';
  if (name.includes('BLOB')) return 'blob';
  if (/REAL|FLOA|DOUB/.test(name)) return 'float';
  return 'text';
}

/** The declared type tongbu gives a canonical column in CREATE TABLE. */
export function declaredType(col: Column): string {
  switch (col.type) {
    case 'int':
      return 'INT';
    case 'bigint':
      return 'INTEGER';
    case 'numeric':
      if (col.precision === undefined) return 'DECIMAL_TEXT';
      return `DECIMAL_TEXT(${col.precision},${col.scale ?? 0})`;
    case 'float':
      return 'REAL';
    case 'text':
      return col.precision === undefined ? 'TEXT' : `VARCHAR(${col.precision})`;
    case 'blob':
      return 'BLOB';
    case 'bool':
      return 'BOOLEAN';
    case 'timestamp':
      return 'DATETIME';
    case 'timestamptz':
      return 'TIMESTAMPTZ';
    case 'date':
      return 'DATE';
    case 'json':
      return 'JSON';
    case 'uuid':
      return 'UUID';
  }
}

/** An identifier quoted for SQLite. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * CREATE TABLE for a canonical schema: the key as PRIMARY KEY, NOT NULL
 * where the schema says so. A single bigint key becomes the rowid alias
 * (INTEGER PRIMARY KEY); any other key makes a WITHOUT ROWID table, so rows
 * are stored in key order and key-ordered scans read the table in place.
 */
export function createTableSql(table: string, schema: TableSchema): string {
  const keyCols = keyIndexes(schema).map((i) => schema.columns[i]!);
  if (keyCols.length === 0)
    throw new TongbuError('BAD_ARGUMENT', `table "${table}": a table needs a key`);
  const defs = schema.columns.map((c) => {
    const notNull = !c.nullable || schema.key.includes(c.name);
    return `${quoteIdent(c.name)} ${declaredType(c)}${notNull ? ' NOT NULL' : ''}`;
  });
  const rowid = keyCols.length === 1 && keyCols[0]!.type === 'bigint';
  const key = `PRIMARY KEY (${schema.key.map(quoteIdent).join(', ')})`;
  return `CREATE TABLE ${quoteIdent(table)} (${[...defs, key].join(', ')})${rowid ? '' : ' WITHOUT ROWID'}`;
}
