/**
 * Values between mysql2's text-protocol results and canonical JS values
 * (canonical.ts), and canonical values as SQL literals.
 *
 * Reads go through text forms chosen so nothing is lost: BIGINT and
 * DECIMAL arrive as strings, dates as strings (session time zone UTC), and
 * floats are selected as `CAST(x AS CHAR)` (MariaDB prints the shortest
 * round-trip digits; mysql2's own float parser rounds some values wrong).
 */
import { TongbuError } from '../../core/errors.js';
import { canonicalJson, type CanonicalValue } from '../table/canonical.js';
import type { Column } from '../table/table-schema.js';
import { quoteId, type NativeColumn } from './mysql-types.js';

export type Reader = (raw: unknown) => CanonicalValue;

/** A result value as text (mysql2 gives strings, numbers, or Buffers for binary strings). */
export function asText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v) ?? '';
}

/** The expression a scan selects for a column (its reader expects it). */
export function selectExpr(col: Column, n: NativeColumn): string {
  const id = quoteId(n.name);
  if (col.type === 'float') {
    return n.dataType === 'float' ? `CAST(CAST(${id} AS DOUBLE) AS CHAR)` : `CAST(${id} AS CHAR)`;
  }
  if (n.dataType === 'inet4' || n.dataType === 'inet6') return `CAST(${id} AS CHAR)`;
  return id;
}

/** Converts what mysql2 returns for `selectExpr(col)` into the canonical value. */
export function readerFor(col: Column, n: NativeColumn): Reader {
  const name = col.name;
  switch (col.type) {
    case 'int':
      return (v) => (v === null ? null : Number(v));
    case 'bigint':
      return (v) => (v === null ? null : BigInt(v as string | number));
    case 'numeric':
      return (col.scale ?? 0) > 0
        ? (v) => (v === null ? null : trimDecimal(v as string))
        : (v) => (v === null ? null : asText(v));
    case 'float':
      return (v) => (v === null ? null : Number(v));
    case 'bool':
      return (v) => (v === null ? null : Number(v) !== 0);
    case 'timestamp':
      return (v) => (v === null ? null : trimTimestamp(checkDate(v as string, name)));
    case 'timestamptz':
      return (v) => (v === null ? null : `${trimTimestamp(checkDate(v as string, name))}+00`);
    case 'date':
      return (v) => (v === null ? null : checkDate(v as string, name));
    case 'json':
      return (v) => (v === null ? null : canonicalJson(asText(v)));
    case 'uuid':
      return (v) => (v === null ? null : (v as string).toLowerCase());
    case 'blob':
      return (v) => (v === null ? null : (v as Buffer));
    case 'text':
      if (n.dataType === 'time' || TEXT_FROM_BUFFER.has(n.dataType)) {
        return (v) => (v === null ? null : asText(v));
      }
      return (v) => v as string | null;
  }
}

const TEXT_FROM_BUFFER = new Set(['enum', 'set', 'inet4', 'inet6']);

/** DECIMAL text with trailing fraction zeros (and a bare point) removed; never `-0`. */
export function trimDecimal(s: string): string {
  if (!s.includes('.')) return s === '-0' ? '0' : s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48) end--;
  if (s.charCodeAt(end - 1) === 46) end--;
  const out = end === s.length ? s : s.slice(0, end);
  return out === '-0' ? '0' : out;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` with fraction zeros trimmed. */
export function trimTimestamp(s: string): string {
  if (s.length <= 19) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48) end--;
  if (s.charCodeAt(end - 1) === 46) end--;
  return end === s.length ? s : s.slice(0, end);
}

/** Zero dates (`0000-00-00`, `2020-00-05`) have no canonical form: refuse them. */
function checkDate(s: string, column: string): string {
  if ((s[5] === '0' && s[6] === '0') || (s[8] === '0' && s[9] === '0')) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `column "${column}" holds the zero date ${s}, which has no canonical form (fix it, or leave such rows out with where=)`,
      { data: { column, value: s } },
    );
  }
  return s;
}

// ---------------------------------------------------------------- literals

const ESCAPES: Record<string, string> = {
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\\': '\\\\',
  "'": "\\'",
  '\x1a': '\\Z',
};
// eslint-disable-next-line no-control-regex -- ^Z (\x1a) must be escaped in MySQL string literals
const NEEDS_ESCAPE = /[\0\n\r\\'\x1a]/g;
const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/;

/** A quoted string literal (the session has backslash escapes on). */
export function quoteString(s: string): string {
  NEEDS_ESCAPE.lastIndex = 0;
  return NEEDS_ESCAPE.test(s) ? `'${s.replace(NEEDS_ESCAPE, (c) => ESCAPES[c]!)}'` : `'${s}'`;
}

/** A number's text; NaN and ±Infinity are refused (MySQL has no such values). */
export function finiteNumber(col: Column, v: number): string {
  if (!Number.isFinite(v)) {
    throw new TongbuError(
      'BAD_ARGUMENT',
      `column "${col.name}": MySQL/MariaDB cannot store the float ${v}`,
      {
        data: { column: col.name },
      },
    );
  }
  return String(v);
}

/** A canonical value of `col` as an SQL literal. */
export function sqlLiteral(col: Column, v: CanonicalValue): string {
  if (v === null || v === undefined) return 'NULL';
  switch (typeof v) {
    case 'boolean':
      return v ? '1' : '0';
    case 'bigint':
      return String(v);
    case 'number':
      return finiteNumber(col, v);
    case 'string':
      if (col.type === 'numeric' && DECIMAL_TEXT.test(v)) return v;
      if (col.type === 'timestamptz' && v.endsWith('+00')) return quoteString(v.slice(0, -3));
      return quoteString(v);
    default:
      return v.length === 0
        ? "X''"
        : `X'${Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex')}'`;
  }
}
