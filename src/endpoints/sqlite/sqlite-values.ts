/**
 * Stored SQLite values ↔ canonical values (canonical.ts).
 *
 * Storage tongbu writes: int, bigint as INTEGER; numeric as TEXT (the
 * canonical decimal, exact); float as REAL (NaN as the TEXT 'NaN', which a
 * REAL column keeps, where a bound NaN would become NULL); text TEXT; blob
 * BLOB; bool INTEGER 0/1; timestamp, timestamptz, date as canonical TEXT;
 * json canonical TEXT (a JSON column's NUMERIC affinity may turn a bare
 * number into INTEGER or REAL, which reads back to the same JSON); uuid
 * lowercase TEXT.
 *
 * Reads are tolerant of what other tools store: numerics as INTEGER or REAL,
 * bools as 't'/'f'/'true'/'false'/'0'/'1', times as ISO text with `T`, `Z` or
 * an offset or as unix epoch seconds, uuids in upper case, braces or as
 * 16-byte BLOBs, integers written as text. A value that does not convert is
 * BAD_ARGUMENT (the caller adds the column and key). Better-sqlite3 runs with
 * safeIntegers, so every INTEGER arrives as a bigint.
 */
import { TongbuError } from '../../core/errors.js';
import {
  canonicalDecimal,
  canonicalJson,
  canonicalUuid,
  floatText,
  valueText,
  type CanonicalValue,
} from '../table/canonical.js';
import type { Column, ColumnType } from '../table/table-schema.js';
import { readDate, readTimestamp, readTimestamptz } from './sqlite-time.js';
import { quoteIdent } from './sqlite-types.js';

/** A value as better-sqlite3 returns it (safeIntegers on). */
export type SqlValue = null | bigint | number | string | Buffer;
/** A value better-sqlite3 binds. */
export type BindValue = null | bigint | number | string | Uint8Array;
/** Stored (non-null) value → canonical value; throws BAD_ARGUMENT. */
export type Reader = (value: Exclude<SqlValue, null>) => CanonicalValue;
/** Canonical (non-null) value → the value to bind. */
export type Writer = (value: Exclude<CanonicalValue, null>) => BindValue;

const INT_TEXT = /^\s*[+-]?\d+\s*$/;
const FLOAT_TEXT = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
const DECIMAL_CANONICAL = /^-?(?:0|[1-9]\d*)(?:\.\d*[1-9])?$/;
const UUID_CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const SPECIAL_FLOATS: Record<string, number> = {
  nan: NaN,
  infinity: Infinity,
  '+infinity': Infinity,
  '-infinity': -Infinity,
  inf: Infinity,
  '-inf': -Infinity,
};
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Blobs up to this size are selected as hex text: cheaper than a Buffer each. */
const HEX_BLOB_MAX = 512;

function bad(value: unknown, what: string): TongbuError {
  const shown =
    typeof value === 'string'
      ? `"${value.length > 60 ? `${value.slice(0, 60)}…` : value}"`
      : value instanceof Uint8Array
        ? `a ${value.length}-byte blob`
        : String(value);
  return new TongbuError('BAD_ARGUMENT', `${shown} is not a valid ${what}`);
}

function readInt(v: Exclude<SqlValue, null>): number {
  const n =
    typeof v === 'bigint' || typeof v === 'number'
      ? Number(v)
      : INT_TEXT.test(v as string)
        ? Number(v)
        : NaN;
  if (Number.isInteger(n) && n >= -2147483648 && n <= 2147483647) return n;
  throw bad(v, 'int (32-bit integer)');
}

function readBigint(v: Exclude<SqlValue, null>): bigint {
  if (typeof v === 'bigint') return v;
  let b: bigint | undefined;
  if (typeof v === 'number' && Number.isInteger(v)) b = BigInt(v);
  else if (typeof v === 'string' && INT_TEXT.test(v)) b = BigInt(v.trim());
  if (b !== undefined && b >= INT64_MIN && b <= INT64_MAX) return b;
  throw bad(v, 'bigint');
}

function readNumeric(v: Exclude<SqlValue, null>): string {
  if (typeof v === 'string') {
    if (DECIMAL_CANONICAL.test(v) && v !== '-0') return v;
    try {
      return canonicalDecimal(v);
    } catch {
      throw bad(v, 'numeric');
    }
  }
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'number' && Number.isFinite(v)) {
    const abs = Math.abs(v);
    // JS prints this range without an exponent: already canonical (-0 aside).
    if ((abs >= 1e-6 && abs < 1e21) || v === 0) return v === 0 ? '0' : String(v);
    return canonicalDecimal(String(v));
  }
  throw bad(v, 'numeric');
}

function readFloat(v: Exclude<SqlValue, null>): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string') {
    if (FLOAT_TEXT.test(v)) return Number(v);
    const special = SPECIAL_FLOATS[v.trim().toLowerCase()];
    if (special !== undefined) return special;
  }
  throw bad(v, 'float');
}

function readText(v: Exclude<SqlValue, null>): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'number') return floatText(v);
  try {
    return utf8.decode(v);
  } catch {
    throw bad(v, 'text (the blob is not UTF-8)');
  }
}

/** A blob column selected as is: a BLOB, or TEXT taken as its UTF-8 bytes. */
function readBlob(v: Exclude<SqlValue, null>): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (v instanceof Uint8Array) return v;
  throw bad(v, 'blob');
}

/** A blob column selected with `blobSelect` (hex text, or the BLOB when large). */
function readBlobHex(v: Exclude<SqlValue, null>): Uint8Array {
  if (typeof v === 'string') return Buffer.from(v, 'hex');
  if (v instanceof Uint8Array) return v;
  throw bad(v, 'blob');
}

function readBool(v: Exclude<SqlValue, null>): boolean {
  if (v === 0n || v === 0) return false;
  if (v === 1n || v === 1) return true;
  if (typeof v === 'string') {
    const t = v.trim().toLowerCase();
    if (t === 't' || t === 'true' || t === '1') return true;
    if (t === 'f' || t === 'false' || t === '0') return false;
  }
  throw bad(v, 'bool');
}

function readJson(v: Exclude<SqlValue, null>): string {
  const text = typeof v === 'string' ? v : v instanceof Uint8Array ? readText(v) : String(v);
  try {
    return canonicalJson(text);
  } catch {
    throw bad(v, 'json');
  }
}

function readUuid(v: Exclude<SqlValue, null>): string {
  if (typeof v === 'string') {
    if (UUID_CANONICAL.test(v)) return v;
    try {
      return canonicalUuid(v);
    } catch {
      throw bad(v, 'uuid');
    }
  }
  if (v instanceof Uint8Array && v.length === 16)
    return canonicalUuid(Buffer.from(v).toString('hex'));
  throw bad(v, 'uuid');
}

const READERS: Record<ColumnType, Reader> = {
  int: readInt,
  bigint: readBigint,
  numeric: readNumeric,
  float: readFloat,
  text: readText,
  blob: readBlob,
  bool: readBool,
  timestamp: readTimestamp,
  timestamptz: readTimestamptz,
  date: readDate,
  json: readJson,
  uuid: readUuid,
};

/**
 * How a column is selected and read. `rows`: canonical values (small blobs
 * as hex, which is cheaper); `keys`: as stored, so a key can be bound back
 * as it is; `hash`: the canonical text form (blobs as lowercase hex in SQL).
 */
export type SelectMode = 'rows' | 'keys' | 'hash';

/** The select-list expression for a column. */
export function selectExpr(col: Column, mode: SelectMode): string {
  const q = quoteIdent(col.name);
  if (col.type !== 'blob' || mode === 'keys') return q;
  if (mode === 'hash')
    return `CASE WHEN typeof(${q}) IN ('blob','text') THEN lower(hex(${q})) ELSE ${q} END`;
  return `CASE WHEN typeof(${q}) = 'blob' AND length(${q}) > ${HEX_BLOB_MAX} THEN ${q} WHEN typeof(${q}) IN ('blob','text') THEN hex(${q}) ELSE ${q} END`;
}

/** The reader for a column selected with `selectExpr(col, mode)`, mode rows or keys. */
export function readerFor(col: Column, mode: Exclude<SelectMode, 'hash'>): Reader {
  return col.type === 'blob' && mode === 'rows' ? readBlobHex : READERS[col.type];
}

/** Stored value → canonical text form (`valueText`), for a column selected in hash mode. */
export function textReaderFor(col: Column): (value: Exclude<SqlValue, null>) => string {
  const type = col.type;
  switch (type) {
    case 'blob':
      return (v) => (typeof v === 'string' ? v : Buffer.from(readBlob(v)).toString('hex'));
    case 'float':
      return (v) => fastFloatText(readFloat(v));
    case 'text':
      return readText;
    case 'numeric':
      return readNumeric;
    case 'timestamp':
      return readTimestamp;
    case 'timestamptz':
      return readTimestamptz;
    case 'date':
      return readDate;
    case 'json':
      return readJson;
    case 'uuid':
      return readUuid;
    default: {
      const read = READERS[type];
      return (v) => valueText(type, read(v) as Exclude<CanonicalValue, null>);
    }
  }
}

/**
 * `floatText` with a fast path: for 1e-4 <= |x| < 1e15, PostgreSQL's layout
 * is fixed-point with the shortest round-trip digits, which is exactly what
 * `String(x)` gives.
 */
export function fastFloatText(x: number): string {
  const a = Math.abs(x);
  return a >= 1e-4 && a < 1e15 ? String(x) : floatText(x);
}

function boolToInt(v: Exclude<CanonicalValue, null>): BindValue {
  return v === true ? 1 : v === false ? 0 : v;
}

/**
 * Canonical value of a `source` column → the value stored in a `dest`
 * column, including the widenings checkWritable allows (bool → int,
 * int → numeric, timestamptz or date → timestamp, text → json, …).
 * Undefined when values bind as they are.
 */
export function writerFor(dest: ColumnType, source: ColumnType): Writer | undefined {
  if (source === 'bool') return boolToInt;
  switch (dest) {
    case 'float':
      return (v) =>
        typeof v === 'number' && Number.isNaN(v)
          ? 'NaN'
          : typeof v === 'bigint'
            ? Number(v)
            : boolToInt(v);
    case 'numeric':
      return source === 'numeric'
        ? undefined
        : (v) => (typeof v === 'string' ? v : valueText(source, v));
    case 'timestamp':
      if (source === 'timestamptz') return (v) => (v as string).replace(/\+00$/, '');
      if (source === 'date') return (v) => `${v as string} 00:00:00`;
      return undefined;
    case 'json':
      return source === 'json'
        ? undefined
        : (v) => canonicalJson(typeof v === 'string' ? v : valueText(source, v));
    case 'text':
      return source === 'text'
        ? undefined
        : (v) => (typeof v === 'string' ? v : valueText(source, v));
    default:
      return undefined;
  }
}

/** Canonical key or cursor values of `columns` → bind values. */
export function bindValues(
  columns: readonly Column[],
  values: readonly CanonicalValue[],
): BindValue[] {
  return values.map((v, i) => {
    if (v === null || v === undefined) return null;
    const type = columns[i]!.type;
    const w = writerFor(type, type);
    return w === undefined ? (v as BindValue) : w(v);
  });
}
