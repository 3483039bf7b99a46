/**
 * The canonical row encoding: one JS value form and one text form per
 * canonical type, the same whichever engine a row came from. Rows hash on
 * the text form, so a row hashes alike in SQLite, PostgreSQL and MySQL, and
 * an engine may compute the same hash in SQL (see `rowHashText`).
 *
 * Text forms:
 * - int, bigint: decimal (`-12`).
 * - numeric: decimal without exponent, trailing fraction zeros trimmed, no
 *   `-0` (`12.5`, `0`, `-0.001`).
 * - float: the shortest round-trip digits (as ECMAScript finds them) in
 *   PostgreSQL's %g-like layout: exponent form `1e+20` when the exponent is
 *   < -4 or >= 15; `NaN`, `Infinity`. (PostgreSQL itself prints extra digits
 *   for some whole doubles between 2^54 and 2^86; its checksum SQL adjusts.)
 * - text: itself. blob: lowercase hex. bool: `t` / `f`.
 * - timestamp: `YYYY-MM-DD HH:MM:SS[.ffffff]`, fraction zeros trimmed.
 * - timestamptz: the UTC instant in the same form followed by `+00`.
 * - date: `YYYY-MM-DD`. json: canonical JSON (keys sorted, no spaces).
 * - uuid: lowercase `8-4-4-4-12`.
 */
import { createHash } from 'node:crypto';
import { TongbuError } from '../../core/errors.js';
import type { Column, ColumnType, TableSchema } from './table-schema.js';

export type CanonicalValue = null | boolean | number | bigint | string | Uint8Array;
/** Values in the order of the schema's columns. */
export type Row = readonly CanonicalValue[];
/** Values of the key columns, in key order. */
export type KeyTuple = readonly CanonicalValue[];

/** The text form of a non-null value of `type`. */
export function valueText(type: ColumnType, value: Exclude<CanonicalValue, null>): string {
  switch (type) {
    case 'int':
    case 'bigint':
      return String(value);
    case 'float':
      return floatText(value as number);
    case 'blob':
      return Buffer.from(value as Uint8Array).toString('hex');
    case 'bool':
      return value === true ? 't' : 'f';
    default:
      return value as string;
  }
}

/**
 * The string a row hashes on: per column `<utf8 length>:<text>`, or `~` for
 * NULL, concatenated. Unambiguous, and cheap to build in SQL.
 */
export function rowHashText(columns: readonly Column[], row: Row): string {
  let out = '';
  for (let i = 0; i < columns.length; i++) {
    const v = row[i];
    if (v === null || v === undefined) {
      out += '~';
    } else {
      const text = valueText(columns[i]!.type, v);
      out += `${Buffer.byteLength(text)}:${text}`;
    }
  }
  return out;
}

/** A row's hash: the first 60 bits of md5(rowHashText), as an integer. */
export function rowHash(columns: readonly Column[], row: Row): bigint {
  const hex = createHash('md5').update(rowHashText(columns, row)).digest('hex');
  return BigInt(`0x${hex.slice(0, 15)}`);
}

/** A segment's fingerprint: how many rows, and the exact sum of their hashes. */
export interface SegmentChecksum {
  readonly count: number;
  readonly sum: bigint;
}

export function checksumRows(columns: readonly Column[], rows: Iterable<Row>): SegmentChecksum {
  let count = 0;
  let sum = 0n;
  for (const row of rows) {
    count++;
    sum += rowHash(columns, row);
  }
  return { count, sum };
}

// ---------------------------------------------------------------- floats

/** Shortest round-trip digits in PostgreSQL's %g-like float8 layout. */
export function floatText(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const abs = Math.abs(x);
  // JS prints this range the same way: shortest digits, no exponent.
  if (abs >= 1e-4 && abs < 1e15) return String(x);
  const [mantissa, expPart] = x.toExponential().split('e') as [string, string];
  const exp = Number(expPart);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  const sign = negative ? '-' : '';
  if (exp < -4 || exp >= 15) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    return `${sign}${m}e${exp < 0 ? '-' : '+'}${e < 10 ? `0${e}` : e}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  if (digits.length <= exp + 1) return `${sign}${digits}${'0'.repeat(exp + 1 - digits.length)}`;
  return `${sign}${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
}

// ---------------------------------------------------------------- normalizers

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/** Canonical decimal text of a numeric given as text (`"012.500"` → `"12.5"`). */
export function canonicalDecimal(text: string): string {
  const m = DECIMAL.exec(text.trim());
  if (m === null || (m[2] === '' && (m[3] ?? '') === '')) {
    throw new TongbuError('BAD_ARGUMENT', `"${text}" is not a decimal number`);
  }
  let intPart = m[2] ?? '';
  let frac = m[3] ?? '';
  const exp = Number(m[4] ?? '0');
  if (exp > 0) {
    frac = frac.padEnd(exp, '0');
    intPart += frac.slice(0, exp);
    frac = frac.slice(exp);
  } else if (exp < 0) {
    intPart = intPart.padStart(-exp + 1, '0');
    frac = intPart.slice(intPart.length + exp) + frac;
    intPart = intPart.slice(0, intPart.length + exp);
  }
  intPart = intPart.replace(/^0+(?=\d)/, '') || '0';
  frac = frac.replace(/0+$/, '');
  const body = frac === '' ? intPart : `${intPart}.${frac}`;
  return m[1] === '-' && body !== '0' ? `-${body}` : body;
}

/**
 * Canonical timestamp text from `YYYY-MM-DD[T ]HH:MM:SS[.f…]`: a space
 * between date and time, up to six fraction digits (rounded half up), the
 * trailing zeros trimmed.
 */
export function canonicalTimestamp(text: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?$/.exec(text);
  if (m === null) throw new TongbuError('BAD_ARGUMENT', `"${text}" is not a timestamp`);
  const frac = (m[3] ?? '').slice(0, 6).replace(/0+$/, '');
  return frac === '' ? `${m[1]} ${m[2]}` : `${m[1]} ${m[2]}.${frac}`;
}

/** Canonical timestamptz text of an instant given as epoch microseconds. */
export function timestamptzFromMicros(micros: bigint): string {
  return `${timestampFromMicros(micros)}+00`;
}

/** Canonical timestamp text of a wall-clock time given as microseconds since 1970-01-01 00:00:00. */
export function timestampFromMicros(micros: bigint): string {
  const ms = micros / 1000n - (micros % 1000n < 0n ? 1n : 0n);
  const sub = Number(micros - ms * 1000n);
  const iso = new Date(Number(ms)).toISOString(); // YYYY-MM-DDTHH:MM:SS.mmmZ
  if (iso.length !== 24)
    throw new TongbuError('BAD_ARGUMENT', `timestamp ${micros} µs is out of range`);
  const frac = `${iso.slice(20, 23)}${String(sub).padStart(3, '0')}`.replace(/0+$/, '');
  return frac === ''
    ? `${iso.slice(0, 10)} ${iso.slice(11, 19)}`
    : `${iso.slice(0, 10)} ${iso.slice(11, 19)}.${frac}`;
}

/** Microseconds since the epoch of a canonical timestamp text (read as UTC). */
export function microsFromTimestamp(text: string): bigint {
  const t = text.endsWith('+00') ? text.slice(0, -3) : text;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?$/.exec(t);
  if (m === null) throw new TongbuError('BAD_ARGUMENT', `"${text}" is not a canonical timestamp`);
  const ms = Date.parse(`${m[1]}T${m[2]}Z`);
  return BigInt(ms) * 1000n + BigInt((m[3] ?? '').padEnd(6, '0'));
}

/** Canonical JSON: object keys sorted by code unit, no whitespace. */
export function canonicalJson(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new TongbuError('BAD_ARGUMENT', `not valid JSON: ${text.slice(0, 60)}`, { cause: err });
  }
  return stringifySorted(parsed);
}

function stringifySorted(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stringifySorted).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stringifySorted(obj[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function canonicalUuid(text: string): string {
  const hex = text.replace(/[{}-]/g, '').toLowerCase();
  if (!/^[0-9a-f]{32}$/.test(hex)) throw new TongbuError('BAD_ARGUMENT', `"${text}" is not a UUID`);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------- keys

/**
 * Orders two values of one column the way every engine is asked to order
 * keys: numbers by value, text by Unicode code point (= UTF-8 bytes, the
 * `C` / binary collation), blobs by bytes, false before true.
 */
export function compareValues(a: CanonicalValue, b: CanonicalValue): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  if (typeof a === 'string' && typeof b === 'string') return compareCodePoints(a, b);
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.compare(a, b);
  if (typeof a === 'number' && typeof b === 'number') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'bigint' || typeof b === 'bigint') {
    const x = typeof a === 'bigint' ? a : BigInt(a as number);
    const y = typeof b === 'bigint' ? b : BigInt(b as number);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (typeof a === 'boolean' && typeof b === 'boolean') return a ? 1 : -1;
  throw new TongbuError('INTERNAL', `cannot compare ${typeof a} with ${typeof b}`);
}

function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      // A surrogate (a code point above U+FFFF) sorts after every BMP unit.
      const xs = x >= 0xd800 && x <= 0xdfff;
      const ys = y >= 0xd800 && y <= 0xdfff;
      if (xs !== ys) return xs ? 1 : -1;
      return x - y;
    }
  }
  return a.length - b.length;
}

export function compareKeys(a: KeyTuple, b: KeyTuple): number {
  for (let i = 0; i < a.length; i++) {
    const c = compareValues(a[i]!, b[i]!);
    if (c !== 0) return c;
  }
  return 0;
}

/** The key of a row, given the positions of the key columns. */
export function rowKey(row: Row, keyIdx: readonly number[]): KeyTuple {
  return keyIdx.length === 1 ? [row[keyIdx[0]!]!] : keyIdx.map((i) => row[i]!);
}

/** A key as a short readable string for messages and JSON output. */
export function keyText(schema: TableSchema, key: KeyTuple): string {
  const parts = key.map((v, i) => {
    const col = schema.columns.find((c) => c.name === schema.key[i]);
    return v === null ? 'NULL' : valueText(col?.type ?? 'text', v);
  });
  return parts.length === 1 ? parts[0]! : `(${parts.join(', ')})`;
}

/** A half-open key range: from (inclusive) to (exclusive); open ends are undefined. */
export interface KeyRange {
  readonly from?: KeyTuple;
  readonly to?: KeyTuple;
}

export function inRange(key: KeyTuple, range: KeyRange): boolean {
  if (range.from !== undefined && compareKeys(key, range.from) < 0) return false;
  if (range.to !== undefined && compareKeys(key, range.to) >= 0) return false;
  return true;
}

/**
 * A string naming a key, equal for equal keys whichever engine read them
 * (an int read as a number and as a bigint name the same key).
 */
export function keyId(key: KeyTuple): string {
  let out = '';
  for (const v of key) {
    if (v === null) out += '\u0000n';
    else if (typeof v === 'number' || typeof v === 'bigint') out += `\u0000i${String(v)}`;
    else if (typeof v === 'string') out += `\u0000s${v}`;
    else if (typeof v === 'boolean') out += v ? '\u0000t' : '\u0000f';
    else out += `\u0000b${Buffer.from(v).toString('hex')}`;
  }
  return out;
}

/** The modulus of `TableEndpoint.keySums`. */
export const KEY_SUM_MODULUS = 2147483647n;

/** One key's term in `keySums`: `key % 2147483647`, with the key's sign. */
export function keySumTerm(key: KeyTuple): bigint {
  const v = key[0];
  if (typeof v !== 'bigint' && typeof v !== 'number') {
    throw new TongbuError('INTERNAL', 'keySums needs a single integer key');
  }
  return BigInt(v) % KEY_SUM_MODULUS;
}

/** The bucket of `keyBuckets`: floor(key / width). */
export function keyBucket(key: KeyTuple, width: bigint): bigint {
  const k = BigInt(key[0] as bigint | number);
  const r = ((k % width) + width) % width;
  return (k - r) / width;
}

/** SQL for `floor(k / w)` with integer operators that truncate toward zero. */
export function floorDivSql(k: string, w: string, div = '/'): string {
  return `((${k} - (((${k} % ${w}) + ${w}) % ${w})) ${div} ${w})`;
}
