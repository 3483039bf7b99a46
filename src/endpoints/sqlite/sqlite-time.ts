/**
 * Reading the times other tools leave in SQLite: ISO 8601 text with a `T`
 * or a space, with or without seconds, fraction, `Z` or an offset, and unix
 * epoch seconds stored as INTEGER or REAL. Everything becomes canonical
 * text (canonical.ts). tongbu itself writes the canonical text, which takes
 * the fast path.
 */
import { TongbuError } from '../../core/errors.js';
import { timestampFromMicros } from '../table/canonical.js';

const CANONICAL_DATE = /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])$/;
const CANONICAL_TIMESTAMP =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{0,5}[1-9])?$/;
const CANONICAL_TIMESTAMPTZ =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{0,5}[1-9])?\+00$/;
/** Canonical but for trailing fraction zeros (`…:05.120000`), as many tools write. */
const PADDED_TIMESTAMP =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]) (?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{1,6}$/;
const LOOSE =
  /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)? ?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

const DAY_MICROS = 86_400_000_000n;

/**
 * Microseconds since the epoch of a loosely written time (read as UTC when
 * it carries no offset), or undefined when the text is no such time.
 * Fraction digits past the sixth are dropped, as canonicalTimestamp does.
 */
export function looseMicros(text: string): bigint | undefined {
  const m = LOOSE.exec(text.trim());
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) =>
    Number(m[i] ?? 0),
  ) as [number, number, number, number, number, number];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month - 1 || d.getUTCDate() !== day)
    return undefined;
  let micros = BigInt(d.getTime()) * 1000n + BigInt((m[7] ?? '').slice(0, 6).padEnd(6, '0'));
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const minutes = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2) || '0');
    micros -= BigInt(zone.startsWith('-') ? -minutes : minutes) * 60_000_000n;
  }
  return micros;
}

function epochMicros(value: bigint | number): bigint | undefined {
  if (typeof value === 'bigint') return value * 1_000_000n;
  return Number.isFinite(value) ? BigInt(Math.round(value * 1e6)) : undefined;
}

function bad(value: unknown, what: string): TongbuError {
  const shown = typeof value === 'string' ? `"${value.slice(0, 60)}"` : String(value);
  return new TongbuError('BAD_ARGUMENT', `${shown} is not a valid ${what}`);
}

/** For text that passed a CANONICAL_* pattern: the day exists in its month (no Feb 30). */
function dayExists(text: string): boolean {
  const day = (text.charCodeAt(8) - 48) * 10 + (text.charCodeAt(9) - 48);
  if (day <= 28) return true;
  const year = Number(text.slice(0, 4));
  const month = Number(text.slice(5, 7));
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0); // day 0 of the next month: the last day of this one
  return day <= d.getUTCDate();
}

function trimFraction(text: string): string {
  let end = text.length;
  while (text.charCodeAt(end - 1) === 48) end--;
  if (text.charCodeAt(end - 1) === 46) end--;
  return text.slice(0, end);
}

/** A stored value as canonical timestamp text. */
export function readTimestamp(value: unknown): string {
  if (typeof value === 'string') {
    if (CANONICAL_TIMESTAMP.test(value) && dayExists(value)) return value;
    if (PADDED_TIMESTAMP.test(value) && dayExists(value)) return trimFraction(value);
    const micros = looseMicros(value);
    if (micros !== undefined) return timestampFromMicros(micros);
  } else if (typeof value === 'bigint' || typeof value === 'number') {
    const micros = epochMicros(value);
    if (micros !== undefined) return timestampFromMicros(micros);
  }
  throw bad(value, 'timestamp');
}

/** A stored value as canonical timestamptz text (UTC, `+00`). */
export function readTimestamptz(value: unknown): string {
  if (typeof value === 'string') {
    if (CANONICAL_TIMESTAMPTZ.test(value) && dayExists(value)) return value;
    const micros = looseMicros(value);
    if (micros !== undefined) return `${timestampFromMicros(micros)}+00`;
  } else if (typeof value === 'bigint' || typeof value === 'number') {
    const micros = epochMicros(value);
    if (micros !== undefined) return `${timestampFromMicros(micros)}+00`;
  }
  throw bad(value, 'timestamp with time zone');
}

/** A stored value as canonical date text: `YYYY-MM-DD`, or a time at midnight. */
export function readDate(value: unknown): string {
  if (typeof value === 'string') {
    if (CANONICAL_DATE.test(value) && dayExists(value)) return value;
    const micros = looseMicros(value);
    if (micros !== undefined && micros % DAY_MICROS === 0n)
      return timestampFromMicros(micros).slice(0, 10);
  }
  throw bad(value, 'date');
}
