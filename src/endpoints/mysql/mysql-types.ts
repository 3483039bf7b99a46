/**
 * MySQL/MariaDB column types ↔ canonical types (table-schema.ts).
 *
 * Native → canonical:
 *   tinyint(1)/bool/boolean → bool; tinyint, smallint, mediumint (signed or
 *   unsigned), int, year → int; int unsigned, bigint → bigint; bigint
 *   unsigned → numeric(20,0); decimal(p,s) → numeric(p,s); float, double →
 *   float (a FLOAT reads as the exact double of its single-precision value);
 *   char(n), varchar(n) → text (precision n); tinytext…longtext, enum, set,
 *   time, inet4, inet6 → text; binary, varbinary, *blob → blob; datetime →
 *   timestamp; timestamp → timestamptz (stored as UTC); date → date; json
 *   (MySQL) and MariaDB's LONGTEXT with a `json_valid` check → json;
 *   MariaDB's uuid → uuid (char(36) stays text). Other types (bit,
 *   geometry, vector…) are refused at open, naming the column.
 *
 * Canonical → native (for `create`), see `ddlType`.
 */
import { TongbuError } from '../../core/errors.js';
import type { Column, ColumnType } from '../table/table-schema.js';

/** A column as information_schema describes it. */
export interface NativeColumn {
  readonly name: string;
  /** DATA_TYPE, lower case (`int`, `varchar`, `uuid`). */
  readonly dataType: string;
  /** COLUMN_TYPE, lower case (`int(10) unsigned`, `varchar(32)`). */
  readonly columnType: string;
  readonly nullable: boolean;
  readonly charMaxLength: number | null;
  readonly numericPrecision: number | null;
  readonly numericScale: number | null;
  readonly charset: string | null;
  readonly collation: string | null;
  /** MariaDB: a LONGTEXT with a `json_valid(col)` check constraint. */
  readonly isJson: boolean;
}

export type Flavor = 'mariadb' | 'mysql';

/** The server's binary, no-pad utf8mb4 collation: code point order, trailing spaces count. */
export function binaryCollation(flavor: Flavor): string {
  return flavor === 'mariadb' ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';
}

const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext']);
const OTHER_TEXT = new Set(['enum', 'set', 'time', 'inet4', 'inet6']);
const BLOB_TYPES = new Set(['binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob']);

/** The canonical column of a native one; throws for types tongbu cannot carry. */
export function canonicalColumn(n: NativeColumn, table: string): Column {
  const base = { name: n.name, nullable: n.nullable, nativeType: n.columnType };
  const unsigned = n.columnType.includes('unsigned');
  const type = ((): Column | ColumnType => {
    switch (n.dataType) {
      case 'tinyint':
        return n.columnType.startsWith('tinyint(1)') ? 'bool' : 'int';
      case 'smallint':
      case 'mediumint':
      case 'year':
        return 'int';
      case 'int':
      case 'integer':
        return unsigned ? 'bigint' : 'int';
      case 'bigint':
        return unsigned ? { ...base, type: 'numeric', precision: 20, scale: 0 } : 'bigint';
      case 'decimal':
      case 'numeric':
        return {
          ...base,
          type: 'numeric',
          precision: n.numericPrecision ?? 10,
          scale: n.numericScale ?? 0,
        };
      case 'float':
      case 'double':
      case 'real':
        return 'float';
      case 'datetime':
        return 'timestamp';
      case 'timestamp':
        return 'timestamptz';
      case 'date':
        return 'date';
      case 'json':
        return 'json';
      case 'uuid':
        return 'uuid';
    }
    if (TEXT_TYPES.has(n.dataType)) {
      if (n.isJson) return 'json';
      if ((n.dataType === 'varchar' || n.dataType === 'char') && n.charMaxLength !== null) {
        return { ...base, type: 'text', precision: n.charMaxLength };
      }
      return 'text';
    }
    if (OTHER_TEXT.has(n.dataType)) return 'text';
    if (BLOB_TYPES.has(n.dataType)) return 'blob';
    throw new TongbuError(
      'BAD_ARGUMENT',
      `${table}: column "${n.name}" has type ${n.columnType}, which tongbu cannot sync`,
      { data: { table, column: n.name, type: n.columnType } },
    );
  })();
  return typeof type === 'string' ? { ...base, type } : type;
}

/**
 * Whether ORDER BY on the bare column gives canonical key order (and can
 * walk the index): numbers, dates, bytes, and text in a binary no-pad
 * utf8 collation. Otherwise key order needs `keyOrderExpr` and a sort.
 */
export function orderedNatively(n: NativeColumn, type: ColumnType): boolean {
  switch (type) {
    case 'text':
      return (
        (n.dataType === 'varchar' || (TEXT_TYPES.has(n.dataType) && n.dataType !== 'char')) &&
        n.collation !== null &&
        /^utf8(mb[34])?_(nopad_bin|0900_bin)$/.test(n.collation)
      );
    case 'uuid':
    case 'json':
      return false;
    default:
      return true;
  }
}

/** The SQL expression whose order is the canonical key order of a column. */
export function keyOrderExpr(n: NativeColumn, type: ColumnType, flavor: Flavor): string {
  const id = quoteId(n.name);
  if (orderedNatively(n, type)) return id;
  return `CONVERT(${id} USING utf8mb4) COLLATE ${binaryCollation(flavor)}`;
}

/**
 * The native type `create` gives a canonical column. Lossy or bounded:
 * numeric without precision → DECIMAL(65,30) (35 integer and 30 fraction
 * digits at most); text key → VARCHAR(precision ?? 255) and blob key →
 * VARBINARY(precision ?? 255) (an index needs a bounded length); text with
 * precision > 1000 → LONGTEXT (row size limit); timestamptz → TIMESTAMP(6),
 * which holds only 1970-01-01 00:00:01 … 2038-01-19 03:14:07.999999 UTC
 * (other values fail the write); uuid → UUID on MariaDB ≥ 10.7, else
 * CHAR(36). Floats: NaN and ±Infinity cannot be stored, -0 reads back as 0.
 */
export function ddlType(col: Column, isKey: boolean, flavor: Flavor, hasUuid: boolean): string {
  const type = ((): string => {
    switch (col.type) {
      case 'int':
        return 'INT';
      case 'bigint':
        return 'BIGINT';
      case 'numeric': {
        const p = col.precision ?? 65;
        const s = col.scale ?? (col.precision === undefined ? 30 : 0);
        if (p > 65 || s > 30 || s > p) {
          throw new TongbuError(
            'BAD_ARGUMENT',
            `column "${col.name}": DECIMAL(${p},${s}) is beyond MySQL/MariaDB (at most 65 digits, 30 after the point)`,
          );
        }
        return `DECIMAL(${p},${s})`;
      }
      case 'float':
        return 'DOUBLE';
      case 'text':
        if (isKey) return `VARCHAR(${col.precision ?? 255})`;
        return col.precision !== undefined && col.precision <= 1000
          ? `VARCHAR(${col.precision})`
          : 'LONGTEXT';
      case 'blob':
        return isKey ? `VARBINARY(${col.precision ?? 255})` : 'LONGBLOB';
      case 'bool':
        return 'BOOLEAN';
      case 'timestamp':
        return 'DATETIME(6)';
      case 'timestamptz':
        return 'TIMESTAMP(6)';
      case 'date':
        return 'DATE';
      case 'json':
        return 'JSON';
      case 'uuid':
        return hasUuid ? 'UUID' : 'CHAR(36)';
    }
  })();
  const collate = col.type === 'text' ? ` COLLATE ${binaryCollation(flavor)}` : '';
  return `${type}${collate}${col.nullable && !isKey ? ' NULL' : ' NOT NULL'}`;
}

export function quoteId(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** `db`.`table` from a table name as given (`runs` or `db.runs`). */
export function splitTableName(table: string, database: string): { db: string; name: string } {
  const dot = table.indexOf('.');
  return dot < 0
    ? { db: database, name: table }
    : { db: table.slice(0, dot), name: table.slice(dot + 1) };
}
