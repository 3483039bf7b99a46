import { describe, expect, it } from 'vitest';
import type { CanonicalValue } from '../table/canonical.js';
import type { ColumnType } from '../table/table-schema.js';
import { readDate, readTimestamp, readTimestamptz } from './sqlite-time.js';
import { readerFor, writerFor, type SqlValue } from './sqlite-values.js';

const read = (type: ColumnType, v: Exclude<SqlValue, null>): CanonicalValue =>
  readerFor({ name: 'c', type, nullable: true }, 'keys')(v);

describe('reading stored SQLite values', () => {
  it.each([
    ['2026-01-02 03:04:05', '2026-01-02 03:04:05'],
    ['2026-01-02T03:04:05Z', '2026-01-02 03:04:05'],
    ['2026-01-02t03:04:05.120z', '2026-01-02 03:04:05.12'],
    ['2026-01-02 03:04', '2026-01-02 03:04:00'],
    ['2026-01-02', '2026-01-02 00:00:00'],
    ['2026-01-02T03:04:05,5', '2026-01-02 03:04:05.5'],
    ['2026-01-02T03:04:05.1234567', '2026-01-02 03:04:05.123456'],
    ['2026-01-02T03:04:05+02:00', '2026-01-02 01:04:05'],
    ['2026-01-02T03:04:05-0530', '2026-01-02 08:34:05'],
    ['1969-12-31 23:59:59.999999', '1969-12-31 23:59:59.999999'],
    ['2023-01-01 00:00:43.152880', '2023-01-01 00:00:43.15288'],
    ['2023-01-01 00:00:43.000000', '2023-01-01 00:00:43'],
    ['2023-02-29 00:00:43.500000', undefined],
    [0n, '1970-01-01 00:00:00'],
    [-1n, '1969-12-31 23:59:59'],
    [1.000001, '1970-01-01 00:00:01.000001'],
  ])('timestamp %s → %s', (stored, canonical) => {
    if (canonical === undefined)
      expect(() => readTimestamp(stored)).toThrow(/not a valid timestamp/);
    else expect(readTimestamp(stored)).toBe(canonical);
  });

  it('timestamptz is the UTC instant', () => {
    expect(readTimestamptz('2026-01-02 03:04:05+00')).toBe('2026-01-02 03:04:05+00');
    expect(readTimestamptz('2026-01-01T23:30:00-01:00')).toBe('2026-01-02 00:30:00+00');
    expect(readTimestamptz('2026-01-02 03:04:05')).toBe('2026-01-02 03:04:05+00');
    expect(readTimestamptz(86400n)).toBe('1970-01-02 00:00:00+00');
  });

  it('dates are days, or times at midnight', () => {
    expect(readDate('2026-01-02')).toBe('2026-01-02');
    expect(readDate('2026-01-02T00:00:00Z')).toBe('2026-01-02');
    expect(() => readDate('2026-01-02 12:00:00')).toThrow(/not a valid date/);
  });

  it.each(['2026-02-30 00:00:00', '2026-13-01', '2026-01-02 24:00:00', 'yesterday', '1767322800'])(
    'rejects %s as a timestamp',
    (text) => {
      expect(() => readTimestamp(text)).toThrow(/not a valid timestamp/);
    },
  );

  it('converts numbers, bools and uuids tolerantly, and refuses what does not fit', () => {
    expect(read('numeric', 1e-7)).toBe('0.0000001');
    expect(read('numeric', 12n)).toBe('12');
    expect(read('numeric', '-0.0')).toBe('0');
    expect(read('numeric', ' 01.50 ')).toBe('1.5');
    expect(() => read('numeric', 'abc')).toThrow(/numeric/);
    expect(read('int', '42')).toBe(42);
    expect(() => read('int', 2n ** 31n)).toThrow(/32-bit/);
    expect(read('bigint', '-9223372036854775808')).toBe(-(2n ** 63n));
    expect(() => read('bigint', '9223372036854775808')).toThrow(/bigint/);
    expect(() => read('bigint', 1.5)).toThrow(/bigint/);
    expect(read('float', 'Infinity')).toBe(Infinity);
    expect(read('float', '1e3')).toBe(1000);
    expect(read('bool', 'TRUE')).toBe(true);
    expect(read('bool', 'f')).toBe(false);
    expect(() => read('bool', 2n)).toThrow(/bool/);
    expect(read('uuid', 'A0EEBC999C0B4EF8BB6D6BB9BD380A11')).toBe(
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    );
    expect(read('text', 12n)).toBe('12');
    expect(read('text', Buffer.from('ü'))).toBe('ü');
    expect(() => read('text', Buffer.from([0xff]))).toThrow(/UTF-8/);
    expect(read('json', 5n)).toBe('5');
    expect(() => read('json', '{')).toThrow(/json/);
  });
});

describe('writing canonical values', () => {
  it('binds the widenings the engine allows', () => {
    expect(writerFor('int', 'bool')!(true)).toBe(1);
    expect(writerFor('numeric', 'bigint')!(2n ** 70n)).toBe(String(2n ** 70n));
    expect(writerFor('float', 'float')!(NaN)).toBe('NaN');
    expect(writerFor('timestamp', 'timestamptz')!('2026-01-01 00:00:00.5+00')).toBe(
      '2026-01-01 00:00:00.5',
    );
    expect(writerFor('timestamp', 'date')!('2026-01-01')).toBe('2026-01-01 00:00:00');
    expect(writerFor('json', 'text')!('[1, 2]')).toBe('[1,2]');
    expect(writerFor('text', 'uuid')!('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')).toBe(
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    );
    expect(writerFor('bigint', 'bigint')).toBeUndefined();
  });
});
