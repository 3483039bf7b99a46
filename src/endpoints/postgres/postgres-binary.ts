/**
 * COPY binary format for writes (`COPY … FROM STDIN WITH (FORMAT binary)`):
 * the server parses no text, which cuts its ingest CPU by more than half.
 * Each value is encoded by the native type of the target column (the
 * receive function of the column's base type reads it; a domain's checks
 * still run): int2/int4/int8, float4/float8, numeric, text/varchar/bpchar,
 * bytea, bool, timestamp/timestamptz, date, json/jsonb, uuid. A stream
 * with any other column type (arrays, enums, …: kind `other`) stays text.
 *
 * Values that are not the canonical JS form of the column's type (a bool
 * into an int column, a date into a timestamp column, …) are converted as
 * text COPY would have parsed them. What the text path left to the server
 * to refuse, the encoder refuses itself as BAD_ARGUMENT naming the column
 * (an int out of range never wraps; numeric NaN/Infinity has no canonical
 * form). Rows go into large buffers handed to `sink` when full, so a
 * load allocates about one buffer per MiB and nothing per value.
 */
import { TongbuError } from '../../core/errors.js';
import { canonicalDecimal, type CanonicalValue, type Row } from '../table/canonical.js';
import type { PgColumn } from './postgres-types.js';
import { parsed, parseTimestamp } from './postgres-binary-time.js';

/** Signature, flags (no OIDs), header extension length. */
const HEADER = Buffer.from([
  0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00, 0, 0, 0, 0, 0, 0, 0, 0,
]);
const CHUNK = 1 << 20;
const TWO_32 = 4_294_967_296;
const TWO_16 = 65_536;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const NUMERIC_MAX_DSCALE = 0x3fff;

type Value = Exclude<CanonicalValue, null>;
/** Writes one non-null field (length word and bytes). */
export type FieldWriter = (enc: BinaryEncoder, v: Value) => void;

/** Whether every column can go through binary COPY. */
export function binaryCopyable(cols: readonly PgColumn[]): boolean {
  return cols.every((c) => c.kind !== 'other');
}

/** Encodes rows into COPY binary data, handing full buffers to `sink`. */
export class BinaryEncoder {
  buf: Buffer;
  pos = 0;
  /** Set when `sink` returned false (the stream wants a 'drain'). */
  blocked = false;

  constructor(
    private readonly sink: (chunk: Buffer) => boolean,
    private readonly chunkSize = CHUNK,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(chunkSize, HEADER.length));
    HEADER.copy(this.buf, 0);
    this.pos = HEADER.length;
  }

  /** Room for `n` more bytes: hands the filled part to the sink when short. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.flush(n);
  }

  /** Hands everything encoded so far to the sink; the next buffer has room for `next` bytes. */
  flush(next = 0): void {
    const full = this.buf.subarray(0, this.pos);
    // The sink keeps `full` until it is sent: encode on into a new buffer.
    this.buf = Buffer.allocUnsafe(Math.max(next, this.chunkSize));
    this.pos = 0;
    if (full.length > 0 && !this.sink(full)) this.blocked = true;
  }

  /**
   * Encodes rows from `start` (values in the order of the writers'
   * columns) until all are done or the sink is blocked; returns the index
   * of the next row.
   */
  encodeRows(writers: readonly FieldWriter[], rows: readonly Row[], start: number): number {
    const width = writers.length;
    let r = start;
    while (r < rows.length && !this.blocked) {
      const row = rows[r++]!;
      if (this.pos + 2 > this.buf.length) this.flush(2);
      put16(this.buf, this.pos, width);
      this.pos += 2;
      for (let i = 0; i < width; i++) {
        const v = row[i];
        if (v === null || v === undefined) {
          if (this.pos + 4 > this.buf.length) this.flush(4);
          put32(this.buf, this.pos, -1);
          this.pos += 4;
        } else {
          writers[i]!(this, v);
        }
      }
    }
    return r;
  }

  /** The trailer, and everything handed to the sink. */
  finish(): void {
    this.ensure(2);
    put16(this.buf, this.pos, -1);
    const full = this.buf.subarray(0, this.pos + 2);
    this.buf = Buffer.alloc(0);
    this.pos = 0;
    if (!this.sink(full)) this.blocked = true;
  }

  /**
   * A field of `size` bytes: writes its length word and returns where the
   * bytes go, in `buf` as it is after the call (it may be a new buffer).
   */
  field(size: number): number {
    if (this.pos + 4 + size > this.buf.length) this.flush(4 + size);
    const at = this.pos;
    put32(this.buf, at, size);
    this.pos = at + 4 + size;
    return at + 4;
  }

  /** A UTF-8 string, after a version byte when one is given (jsonb). */
  text(s: string, version = -1): void {
    const n = s.length;
    const extra = version < 0 ? 0 : 1;
    // UTF-8 takes at most 3 bytes per UTF-16 unit; a long string is measured instead.
    const need = 4 + extra + (n > 65_536 ? Buffer.byteLength(s, 'utf8') : 3 * n);
    if (this.pos + need > this.buf.length) this.flush(need);
    const buf = this.buf;
    const lenAt = this.pos;
    let p = lenAt + 4;
    if (extra === 1) buf[p++] = version;
    const from = p;
    let i = 0;
    if (n <= 64) {
      // Short ASCII strings: a loop beats the native call.
      for (; i < n; i++) {
        const ch = s.charCodeAt(i);
        if (ch >= 0x80) break;
        buf[p++] = ch;
      }
    }
    if (i < n) p = from + buf.write(s, from, 'utf8');
    put32(buf, lenAt, p - lenAt - 4);
    this.pos = p;
  }

  bytes(b: Uint8Array): void {
    const at = this.field(b.length);
    this.buf.set(b, at);
  }
}

function put16(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 8;
  buf[at + 1] = v;
}

function put32(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = v >>> 16;
  buf[at + 2] = v >>> 8;
  buf[at + 3] = v;
}

/** An int64 given as an integral number with |v| <= 2^63. */
function put64(buf: Buffer, at: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  put32(buf, at, hi);
  put32(buf, at + 4, v - hi * TWO_32);
}

/** The int64 `secs * 1e6 + micros` (secs integral, |secs| < 2^40, 0 <= micros < 1e6). */
function putMicros(buf: Buffer, at: number, secs: number, micros: number): void {
  // Exact without BigInt: secs = a·2^16 + b, so the value is (a·1e6 + carry)·2^16 + rest.
  const a = Math.floor(secs / TWO_16);
  const y = (secs - a * TWO_16) * 1e6 + micros;
  const yh = Math.floor(y / TWO_16);
  const x = a * 1e6 + yh;
  const hi = Math.floor(x / TWO_16);
  put32(buf, at, hi);
  put32(buf, at + 4, (x - hi * TWO_16) * TWO_16 + (y - yh * TWO_16));
}

/** The field writer of each column, by its native type. */
export function fieldWriters(cols: readonly PgColumn[]): FieldWriter[] {
  return cols.map(fieldWriter);
}

function fieldWriter(c: PgColumn): FieldWriter {
  switch (c.kind) {
    case 'int':
      return c.castType === 'int2'
        ? intWriter(c, 2, -32768, 32767)
        : intWriter(c, 4, -(2 ** 31), 2 ** 31 - 1);
    case 'bigint':
      return bigintWriter(c);
    case 'float8':
    case 'float4':
      return floatWriter(c, c.kind === 'float4');
    case 'numeric':
      return (enc, v) => numeric(enc, c, numericText(c, v));
    case 'text':
    case 'bpchar':
    case 'json':
      return (enc, v) => enc.text(typeof v === 'string' ? v : textOf(c, v));
    case 'jsonb':
      return (enc, v) => enc.text(typeof v === 'string' ? v : textOf(c, v), 1);
    case 'bytea':
      return (enc, v) => enc.bytes(v instanceof Uint8Array ? v : byteaOf(c, v));
    case 'bool':
      return (enc, v) => {
        const at = enc.field(1);
        enc.buf[at] = (typeof v === 'boolean' ? v : boolOf(c, v)) ? 1 : 0;
      };
    case 'timestamp':
    case 'timestamptz': {
      // A timestamp column ignores an offset, as timestamp_in does.
      const zoned = c.kind === 'timestamptz';
      return (enc, v) => {
        const secs = typeof v === 'string' ? parseTimestamp(v, false, zoned) : NaN;
        if (Number.isNaN(secs)) throw badValue(c, v);
        const at = enc.field(8); // may start a new buffer: take enc.buf after it
        putMicros(enc.buf, at, secs, parsed[0]!);
      };
    }
    case 'date':
      return (enc, v) => {
        const secs = typeof v === 'string' ? parseTimestamp(v, true, false) : NaN;
        if (Number.isNaN(secs)) throw badValue(c, v);
        const at = enc.field(4);
        put32(enc.buf, at, secs / 86_400);
      };
    case 'uuid':
      return (enc, v) => uuid(enc, c, typeof v === 'string' ? v : textOf(c, v));
    case 'other':
      throw new TongbuError('INTERNAL', `column "${c.column.name}" has no binary COPY form`);
  }
}

// ---------------------------------------------------------------- numbers

function intWriter(c: PgColumn, size: 2 | 4, min: number, max: number): FieldWriter {
  return (enc, v) => {
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'boolean') n = v ? 1 : 0;
    else {
      const b = integerOf(c, v);
      if (b < BigInt(min) || b > BigInt(max)) throw outOfRange(c, v);
      n = Number(b);
    }
    if (!Number.isInteger(n)) throw badValue(c, v);
    if (n < min || n > max) throw outOfRange(c, v);
    const at = enc.field(size);
    if (size === 2) put16(enc.buf, at, n);
    else put32(enc.buf, at, n);
  };
}

function bigintWriter(c: PgColumn): FieldWriter {
  return (enc, v) => {
    let n: number;
    if (typeof v === 'bigint') {
      n = Number(v);
      // Not safe: maybe rounded; write the bigint itself.
      if (!Number.isSafeInteger(n)) {
        if (v < INT64_MIN || v > INT64_MAX) throw outOfRange(c, v);
        const at = enc.field(8);
        enc.buf.writeBigInt64BE(v, at);
        return;
      }
    } else if (typeof v === 'number') {
      n = v;
      if (!Number.isInteger(n)) throw badValue(c, v);
      if (n < -(2 ** 63) || n >= 2 ** 63) throw outOfRange(c, v);
    } else if (typeof v === 'boolean') {
      n = v ? 1 : 0;
    } else {
      const b = integerOf(c, v);
      if (b < INT64_MIN || b > INT64_MAX) throw outOfRange(c, v);
      const at = enc.field(8);
      enc.buf.writeBigInt64BE(b, at);
      return;
    }
    const at = enc.field(8);
    put64(enc.buf, at, n);
  };
}

const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;

/** An integer given as anything but a number or boolean (text COPY would parse its text). */
function integerOf(c: PgColumn, v: Value): bigint {
  if (typeof v === 'bigint') return v;
  const s = textOf(c, v);
  if (!INTEGER_TEXT.test(s)) throw badValue(c, v);
  return BigInt(s.trim());
}

const FLOAT_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const FLOAT_WORDS: Record<string, number> = {
  nan: NaN,
  infinity: Infinity,
  '+infinity': Infinity,
  '-infinity': -Infinity,
  inf: Infinity,
  '+inf': Infinity,
  '-inf': -Infinity,
};

function floatWriter(c: PgColumn, single: boolean): FieldWriter {
  return (enc, v) => {
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'bigint') n = Number(v);
    else {
      const s = textOf(c, v).trim();
      const word = FLOAT_WORDS[s.toLowerCase()];
      if (word !== undefined) n = word;
      else if (FLOAT_TEXT.test(s)) {
        n = Number(s);
        if (!Number.isFinite(n)) throw outOfRange(c, v);
      } else throw badValue(c, v);
    }
    if (single) {
      const f = Math.fround(n);
      // float4in refuses what overflows to infinity or underflows to zero.
      if ((Number.isFinite(n) && !Number.isFinite(f)) || (n !== 0 && f === 0)) {
        throw outOfRange(c, v);
      }
      const at = enc.field(4);
      enc.buf.writeFloatBE(f, at);
    } else {
      const at = enc.field(8);
      enc.buf.writeDoubleBE(n, at);
    }
  };
}

/** The decimal text of a numeric value. */
function numericText(c: PgColumn, v: Value): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw noCanonical(c, String(v));
    const s = String(v);
    return s.includes('e') ? canonicalDecimal(s) : s;
  }
  return textOf(c, v);
}

const NUMERIC_WORDS = /^\s*[+-]?(nan|inf)/i;
/** Base-10000 digits of the numeric being encoded. */
let groupScratch = new Uint16Array(1024);

/**
 * PostgreSQL's binary numeric: ndigits, weight (of the first base-10000
 * digit), sign, dscale (digits after the point, as written), then the
 * base-10000 digits without leading or trailing zero groups.
 */
function numeric(enc: BinaryEncoder, c: PgColumn, s: string): void {
  const n = s.length;
  let i = 0;
  let negative = false;
  const first = s.charCodeAt(0);
  if (first === 45 || first === 43) {
    negative = first === 45;
    i = 1;
  }
  const digitsStart = i;
  while (i < n && s.charCodeAt(i) === 48) i++; // leading zeros
  const intStart = i;
  while (i < n && isDigit(s.charCodeAt(i))) i++;
  const intEnd = i;
  let fracStart = i;
  let fracEnd = i;
  if (i < n && s.charCodeAt(i) === 46) {
    fracStart = ++i;
    while (i < n && isDigit(s.charCodeAt(i))) i++;
    fracEnd = i;
  }
  if (i < n || (intEnd === digitsStart && fracEnd === fracStart)) {
    // Not plain decimal text: NaN / Infinity, an exponent, blanks.
    if (NUMERIC_WORDS.test(s)) throw noCanonical(c, s);
    let canonical: string;
    try {
      canonical = canonicalDecimal(s);
    } catch {
      throw badValue(c, s);
    }
    numeric(enc, c, canonical);
    return;
  }
  const nInt = intEnd - intStart;
  const dscale = fracEnd - fracStart;
  if (dscale > NUMERIC_MAX_DSCALE) throw outOfRange(c, s);
  // The integer part is left-padded to whole groups of four digits; the fraction right-padded.
  const pad = (4 - (nInt % 4)) % 4;
  const intGroups = (nInt + pad) / 4;
  const groups = intGroups + ((dscale + 3) >> 2);
  if (groups > groupScratch.length) groupScratch = new Uint16Array(groups);
  const scratch = groupScratch;
  let g = 0;
  let acc = 0;
  let k = pad;
  for (let j = intStart; j < intEnd; j++) {
    acc = acc * 10 + s.charCodeAt(j) - 48;
    if (++k === 4) {
      scratch[g++] = acc;
      acc = 0;
      k = 0;
    }
  }
  for (let j = fracStart; j < fracEnd; j++) {
    acc = acc * 10 + s.charCodeAt(j) - 48;
    if (++k === 4) {
      scratch[g++] = acc;
      acc = 0;
      k = 0;
    }
  }
  if (k > 0) {
    for (; k < 4; k++) acc *= 10;
    scratch[g++] = acc;
  }
  let lo = 0;
  while (lo < groups && scratch[lo] === 0) lo++;
  let hi = groups - 1;
  while (hi >= lo && scratch[hi] === 0) hi--;
  const ndigits = hi - lo + 1;
  const weight = ndigits === 0 ? 0 : intGroups - 1 - lo;
  // The weight is an int16 (numeric_in refuses the same values: 131072 digits before the point).
  if (weight > 32767 || weight < -32768) throw outOfRange(c, s);
  const at = enc.field(8 + 2 * ndigits);
  const buf = enc.buf;
  put16(buf, at, ndigits);
  put16(buf, at + 2, weight);
  put16(buf, at + 4, negative && ndigits > 0 ? 0x4000 : 0);
  put16(buf, at + 6, dscale);
  for (let q = lo, p = at + 8; q <= hi; q++, p += 2) put16(buf, p, scratch[q]!);
}

function isDigit(ch: number): boolean {
  return ch >= 48 && ch <= 57;
}

function uuid(enc: BinaryEncoder, c: PgColumn, s: string): void {
  let hex = s;
  if (
    s.length !== 36 ||
    s.charCodeAt(8) !== 45 ||
    s.charCodeAt(13) !== 45 ||
    s.charCodeAt(18) !== 45 ||
    s.charCodeAt(23) !== 45
  ) {
    hex = s
      .trim()
      .replace(/^\{|\}$/g, '')
      .replace(/-/g, '');
    if (hex.length !== 32) throw badValue(c, s);
  }
  const at = enc.field(16);
  const buf = enc.buf;
  let p = at;
  for (let i = 0; i < hex.length; i++) {
    const hi = hexValue(hex.charCodeAt(i));
    if (hi === -2) continue; // a dash of the 8-4-4-4-12 form
    const lo = hexValue(hex.charCodeAt(++i));
    if (hi < 0 || lo < 0) throw badValue(c, s);
    buf[p++] = hi * 16 + lo;
  }
  if (p !== at + 16) throw badValue(c, s);
}

/** 0–15, -2 for a dash, -1 otherwise. */
function hexValue(ch: number): number {
  if (ch >= 48 && ch <= 57) return ch - 48;
  if (ch >= 97 && ch <= 102) return ch - 87;
  if (ch >= 65 && ch <= 70) return ch - 55;
  return ch === 45 ? -2 : -1;
}

const BOOL_WORDS: Record<string, boolean> = {
  t: true,
  true: true,
  y: true,
  yes: true,
  on: true,
  '1': true,
  f: false,
  false: false,
  n: false,
  no: false,
  off: false,
  '0': false,
};

function boolOf(c: PgColumn, v: Value): boolean {
  const b = BOOL_WORDS[textOf(c, v).trim().toLowerCase()];
  if (b === undefined) throw badValue(c, v);
  return b;
}

const HEX_TEXT = /^\\x([0-9a-fA-F]{2})*$/;

/** bytea from text as bytea_in reads it: `\x` hex, or bytes without escapes. */
function byteaOf(c: PgColumn, v: Value): Uint8Array {
  const s = textOf(c, v);
  if (HEX_TEXT.test(s)) return Buffer.from(s.slice(2), 'hex');
  if (s.includes('\\')) throw badValue(c, v);
  return Buffer.from(s, 'utf8');
}

/** The text a value would have been written as in COPY text format (unescaped). */
function textOf(c: PgColumn, v: Value): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
      return v === 0 && Object.is(v, -0) ? '-0' : String(v);
    case 'bigint':
      return String(v);
    case 'boolean':
      if (c.kind === 'int' || c.kind === 'bigint' || c.kind === 'numeric') return v ? '1' : '0';
      return v ? 't' : 'f';
    default:
      return `\\x${Buffer.from(v).toString('hex')}`;
  }
}

// ---------------------------------------------------------------- errors

function show(v: Value): string {
  if (v instanceof Uint8Array) return `${v.length} bytes`;
  const s = String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

function describe(c: PgColumn): string {
  return `column "${c.column.name}" (${c.column.nativeType ?? c.castType})`;
}

function badValue(c: PgColumn, v: Value): TongbuError {
  return new TongbuError(
    'BAD_ARGUMENT',
    `${describe(c)} cannot take the ${typeof v} value ${show(v)}`,
    { data: { column: c.column.name, value: show(v) } },
  );
}

function outOfRange(c: PgColumn, v: Value): TongbuError {
  return new TongbuError('BAD_ARGUMENT', `${describe(c)}: value ${show(v)} is out of range`, {
    data: { column: c.column.name, value: show(v) },
  });
}

function noCanonical(c: PgColumn, text: string): TongbuError {
  return new TongbuError(
    'BAD_ARGUMENT',
    `${describe(c)} cannot take ${text}, which has no canonical ${c.column.type} form ` +
      '(infinity and NaN are not supported)',
    { data: { column: c.column.name, value: text } },
  );
}
