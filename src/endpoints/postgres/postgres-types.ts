/**
 * PostgreSQL types ↔ canonical types, and the SQL each column is read,
 * hashed, ordered and compared through.
 *
 * Native → canonical (base type of a domain):
 *   smallint, integer → int          bigint → bigint
 *   numeric(p,s) → numeric (p, s)     real, double precision → float
 *   text, varchar(n) (precision n), char(n) (trailing blanks dropped) → text
 *   bytea → blob   boolean → bool   timestamp → timestamp
 *   timestamptz → timestamptz (UTC)  date → date   json, jsonb → json
 *   uuid → uuid
 *   anything else (arrays, interval, inet, enums, time, money, …) → text:
 *     the value's PostgreSQL text output, ordered by code point; nativeType
 *     says what it really is, and writing the text back parses it.
 * Canonical → native (create): int → integer, bigint → bigint, numeric →
 * numeric(p,s) or numeric, float → double precision, text → varchar(n) or
 * text, blob → bytea, bool → boolean, timestamp → timestamp(6),
 * timestamptz → timestamptz(6), date → date, json → jsonb, uuid → uuid.
 *
 * Lossy or refused: BC dates, years after 9999 and ±infinity in date and
 * timestamp columns are BAD_ARGUMENT naming the column (no canonical form);
 * numeric NaN/±Infinity likewise. A real is read as the double nearest its
 * shortest decimal text (0.1, not 0.100000001490116). char(n) loses its
 * trailing blanks. jsonb keeps no key order or duplicate keys (canonical
 * JSON sorts keys anyway).
 */
import { canonicalJson, floatText, valueText, type CanonicalValue } from '../table/canonical.js';
import { TongbuError } from '../../core/errors.js';
import type { Column, ColumnType } from '../table/table-schema.js';

/** How a column is handled, by its native base type. */
export type PgKind =
  | 'int'
  | 'bigint'
  | 'numeric'
  | 'float8'
  | 'float4'
  | 'text'
  | 'bpchar'
  | 'bytea'
  | 'bool'
  | 'timestamp'
  | 'timestamptz'
  | 'date'
  | 'json'
  | 'jsonb'
  | 'uuid'
  | 'other';

const KINDS: Record<string, PgKind> = {
  int2: 'int',
  int4: 'int',
  int8: 'bigint',
  numeric: 'numeric',
  float4: 'float4',
  float8: 'float8',
  text: 'text',
  varchar: 'text',
  bpchar: 'bpchar',
  bytea: 'bytea',
  bool: 'bool',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  date: 'date',
  json: 'json',
  jsonb: 'jsonb',
  uuid: 'uuid',
};

const CANONICAL: Record<PgKind, ColumnType> = {
  int: 'int',
  bigint: 'bigint',
  numeric: 'numeric',
  float8: 'float',
  float4: 'float',
  text: 'text',
  bpchar: 'text',
  bytea: 'blob',
  bool: 'bool',
  timestamp: 'timestamp',
  timestamptz: 'timestamptz',
  date: 'date',
  json: 'json',
  jsonb: 'json',
  uuid: 'uuid',
  other: 'text',
};

/** One column as this endpoint handles it. */
export interface PgColumn {
  /** The canonical column, with nativeType. */
  readonly column: Column;
  readonly kind: PgKind;
  /** The quoted identifier. */
  readonly ident: string;
  /** The SQL type a key value (text) is cast to for equality with the column. */
  readonly castType: string;
  /** Text whose collation already orders by code point (C, POSIX, libc C.UTF-8). */
  readonly codePointOrder: boolean;
}

const CODE_POINT_COLLATIONS = /^(C|POSIX|C\.UTF-?8)$/i;

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal (the session runs with standard_conforming_strings on). */
export function quoteText(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/** A column read from the catalog: base type name, typmod, format_type text. */
export function pgColumn(
  name: string,
  typname: string,
  typmod: number,
  nativeType: string,
  notNull: boolean,
  /** The libc collation (collcollate) of a text column, '' for none or ICU. */
  collate = '',
): PgColumn {
  const kind = KINDS[typname] ?? 'other';
  const extra: { precision?: number; scale?: number } = {};
  if (kind === 'numeric' && typmod >= 4) {
    extra.precision = ((typmod - 4) >> 16) & 0xffff;
    extra.scale = (typmod - 4) & 0xffff;
  } else if (typname === 'varchar' && typmod >= 4) {
    extra.precision = typmod - 4;
  }
  const column: Column = { name, type: CANONICAL[kind], nullable: !notNull, ...extra, nativeType };
  const castType =
    kind === 'text' || kind === 'bpchar' ? 'text' : kind === 'other' ? nativeType : typname;
  const codePointOrder = CODE_POINT_COLLATIONS.test(collate);
  return { column, kind, ident: quoteIdent(name), castType, codePointOrder };
}

/** The native type `create` gives a canonical column. */
export function nativeTypeFor(col: Column): string {
  switch (col.type) {
    case 'int':
      return 'integer';
    case 'bigint':
      return 'bigint';
    case 'numeric':
      return col.precision !== undefined && col.precision > 0
        ? `numeric(${col.precision},${col.scale ?? 0})`
        : 'numeric';
    case 'float':
      return 'double precision';
    case 'text':
      return col.precision !== undefined && col.precision > 0
        ? `varchar(${col.precision})`
        : 'text';
    case 'blob':
      return 'bytea';
    case 'bool':
      return 'boolean';
    case 'timestamp':
      return 'timestamp(6)';
    case 'timestamptz':
      return 'timestamptz(6)';
    case 'date':
      return 'date';
    case 'json':
      return 'jsonb';
    case 'uuid':
      return 'uuid';
  }
}

/** What a scan selects: text whose COPY output `decoder` turns canonical. */
export function selectExpr(c: PgColumn): string {
  switch (c.kind) {
    case 'numeric':
      return `trim_scale(${c.ident})`;
    case 'bytea':
      return `encode(${c.ident}, 'hex')`;
    case 'bpchar':
      return `${c.ident}::text`;
    default:
      return c.ident;
  }
}

/**
 * A value of a type read as text, as its output function prints it (what
 * COPY and psql show; `::text` differs for some types: inet adds `/32`).
 */
export function outputText(c: PgColumn): string {
  return `(CASE WHEN ${c.ident} IS NOT NULL THEN concat(${c.ident}) END)`;
}

/**
 * The expression keys are ordered and compared by: `compareKeys` order.
 * Text sorts by code point (COLLATE "C" unless the column's collation
 * already does); a numeric key is a decimal
 * string to `compareKeys`, so it sorts as its canonical text too.
 */
export function sortExpr(c: PgColumn): string {
  if (c.kind === 'text' || c.kind === 'bpchar') {
    // The column's own collation when it already is code point order: the index serves.
    return c.codePointOrder ? c.ident : `${c.ident} COLLATE "C"`;
  }
  if (c.kind === 'other') return `${outputText(c)} COLLATE "C"`;
  if (c.kind === 'numeric') return `(trim_scale(${c.ident})::text) COLLATE "C"`;
  return c.ident;
}

/** The expression a cursor (`since`, `maxValue`) orders by: numbers by value, text by code point. */
export function valueOrderExpr(c: PgColumn): string {
  return c.kind === 'numeric' ? c.ident : sortExpr(c);
}

/** Whether COPY text output of the select expression may hold backslash escapes. */
export function mayBeEscaped(c: PgColumn): boolean {
  return (
    c.kind === 'text' ||
    c.kind === 'bpchar' ||
    c.kind === 'other' ||
    c.kind === 'json' ||
    c.kind === 'jsonb'
  );
}

function refuse(c: PgColumn, text: string): never {
  throw new TongbuError(
    'BAD_ARGUMENT',
    `column "${c.column.name}" holds ${text}, which has no canonical ${c.column.type} form ` +
      '(BC dates, years after 9999, infinity and NaN are not supported)',
    { data: { column: c.column.name, value: text } },
  );
}

/** Converts the (unescaped) text of `selectExpr` to the canonical value. */
export function decoder(c: PgColumn): (text: string) => CanonicalValue {
  switch (c.kind) {
    case 'int':
    case 'float8':
    case 'float4':
      return Number;
    case 'bigint':
      return BigInt;
    case 'numeric':
      return (s) => (s.charCodeAt(s.length - 1) <= 57 ? s : refuse(c, s)); // NaN, Infinity
    case 'bytea':
      return (s) => Buffer.from(s, 'hex');
    case 'bool':
      return (s) => s === 't';
    case 'timestamp':
      return (s) =>
        s.charCodeAt(4) === 45 && s.charCodeAt(s.length - 1) !== 67 ? s : refuse(c, s);
    case 'timestamptz':
      return (s) => (s.charCodeAt(4) === 45 && s.endsWith('+00') ? s : refuse(c, s));
    case 'date':
      return (s) => (s.length === 10 && s.charCodeAt(4) === 45 ? s : refuse(c, s));
    case 'json':
    case 'jsonb':
      return canonicalJson;
    default:
      return (s) => s;
  }
}

/**
 * A literal of a canonical value, typed to compare with `sortExpr` (for a
 * key) or `valueOrderExpr` (for a cursor).
 */
export function literal(c: PgColumn, value: CanonicalValue, forKey = true): string {
  if (value === null) return 'NULL';
  if (c.kind === 'bytea') {
    if (!(value instanceof Uint8Array)) throw badValue(c, value);
    return `'\\x${Buffer.from(value).toString('hex')}'::bytea`;
  }
  const asText = c.kind === 'text' || c.kind === 'bpchar' || c.kind === 'other';
  const type = asText || (forKey && c.kind === 'numeric') ? 'text' : c.castType;
  return `${quoteText(keyText(c, value))}::${type}`;
}

/** The text form a key value is passed as in a text[] parameter. */
export function keyText(c: PgColumn, value: Exclude<CanonicalValue, null>): string {
  if (typeof value === 'number')
    return c.kind === 'float4' || c.kind === 'float8' ? floatText(value) : String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  return valueText(c.column.type, value);
}

/** SQL turning a text parameter element `expr` into this column's type. */
export function fromTextParam(c: PgColumn, expr: string): string {
  return c.kind === 'bytea' ? `decode(${expr}, 'hex')` : `${expr}::${c.castType}`;
}

function badValue(c: PgColumn, value: CanonicalValue): TongbuError {
  return new TongbuError(
    'BAD_ARGUMENT',
    `column "${c.column.name}" cannot take the ${typeof value} value ${String(value)}`,
    {
      data: { column: c.column.name },
    },
  );
}

const COPY_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '\t': '\\t',
  '\n': '\\n',
  '\r': '\\r',
};

/** A value as one field of COPY text format. */
export function copyField(c: PgColumn, value: CanonicalValue): string {
  if (value === null) return '\\N';
  switch (typeof value) {
    case 'string':
      return /[\\\t\n\r]/.test(value)
        ? value.replace(/[\\\t\n\r]/g, (ch) => COPY_ESCAPES[ch]!)
        : value;
    case 'number':
      // Any exact text will do for input: JS's shortest digits, and -0 kept.
      return value === 0 && Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return String(value);
    case 'boolean':
      if (c.kind === 'int' || c.kind === 'bigint' || c.kind === 'numeric') return value ? '1' : '0';
      return value ? 't' : 'f';
    default:
      if (value instanceof Uint8Array) return `\\\\x${Buffer.from(value).toString('hex')}`;
      throw badValue(c, value);
  }
}

const COPY_UNESCAPES: Record<string, string> = {
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/** Undoes COPY text escaping (only what COPY TO ever writes). */
export function copyUnescape(field: string): string {
  return field.replace(/\\([\s\S])/g, (_m, ch: string) => COPY_UNESCAPES[ch] ?? ch);
}
