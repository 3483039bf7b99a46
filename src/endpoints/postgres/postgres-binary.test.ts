import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTongbuError } from '../../core/errors.js';
import type { Row } from '../table/canonical.js';
import { BinaryEncoder, binaryCopyable, fieldWriters } from './postgres-binary.js';
import { pgColumn, type PgColumn } from './postgres-types.js';

const col = (name: string, typname: string, native = typname): PgColumn =>
  pgColumn(name, typname, -1, native, false);

const ALL: PgColumn[] = [
  col('i2', 'int2', 'smallint'),
  col('i4', 'int4', 'integer'),
  col('i8', 'int8', 'bigint'),
  col('n', 'numeric'),
  col('f4', 'float4', 'real'),
  col('f8', 'float8', 'double precision'),
  col('t', 'text'),
  col('b', 'bytea'),
  col('ok', 'bool', 'boolean'),
  col('ts', 'timestamp'),
  col('tz', 'timestamptz'),
  col('d', 'date'),
  col('j', 'json'),
  col('jb', 'jsonb'),
  col('u', 'uuid'),
];

const SAMPLE: Row[] = [
  [
    1,
    -2,
    3n,
    '-12.5',
    1.5,
    0.1,
    'héllo 😀',
    Buffer.from([0, 255]),
    true,
    '2024-02-29 12:00:00.5',
    '1999-12-31 23:59:59.999999+00',
    '1600-03-01',
    '{"a":1}',
    '[true]',
    '0123abcd-0000-4000-8000-00000000ffff',
  ],
  Array.from({ length: ALL.length }, () => null),
  [
    -32768,
    2147483647,
    -(2n ** 63n),
    '0.0001',
    -0,
    -1e308,
    'x'.repeat(200),
    Buffer.alloc(0),
    false,
    '0001-01-01 00:00:00',
    '9999-12-31 23:59:59.999999+00',
    '9999-12-31',
    '""',
    '{}',
    'ffffffff-ffff-ffff-ffff-ffffffffffff',
  ],
];

/** Everything the encoder hands out, for rows written in batches of `batch`. */
function encode(cols: PgColumn[], rows: readonly Row[], chunk?: number, batch = 2): Buffer {
  const out: Buffer[] = [];
  const enc = new BinaryEncoder((b) => {
    out.push(Buffer.from(b));
    return true;
  }, chunk);
  const writers = fieldWriters(cols);
  for (let at = 0; at < rows.length; at += batch) {
    expect(enc.encodeRows(writers, rows.slice(at, at + batch), 0)).toBe(
      Math.min(batch, rows.length - at),
    );
  }
  enc.finish();
  return Buffer.concat(out);
}

/** The fields of each tuple (null for NULL). */
function tuples(data: Buffer): (Buffer | null)[][] {
  expect(data.subarray(0, 11).toString('latin1')).toBe('PGCOPY\n\xff\r\n\0');
  expect(data.readInt32BE(11)).toBe(0);
  expect(data.readInt32BE(15)).toBe(0);
  let p = 19;
  const rows: (Buffer | null)[][] = [];
  for (;;) {
    const n = data.readInt16BE(p);
    p += 2;
    if (n === -1) break;
    const fields: (Buffer | null)[] = [];
    for (let i = 0; i < n; i++) {
      const len = data.readInt32BE(p);
      p += 4;
      if (len < 0) fields.push(null);
      else {
        fields.push(data.subarray(p, p + len));
        p += len;
      }
    }
    rows.push(fields);
  }
  expect(p).toBe(data.length);
  return rows;
}

/** The decimal text of a binary numeric (trailing fraction zeros kept to dscale). */
function numericText(f: Buffer): string {
  const ndigits = f.readInt16BE(0);
  const weight = f.readInt16BE(2);
  const sign = f.readUInt16BE(4);
  const dscale = f.readInt16BE(6);
  expect(f.length).toBe(8 + 2 * ndigits);
  const groups = Array.from({ length: ndigits }, (_x, i) => f.readInt16BE(8 + 2 * i));
  for (const g of groups) expect(g >= 0 && g < 10_000).toBe(true);
  if (ndigits > 0) {
    expect(groups[0]).not.toBe(0);
    expect(groups.at(-1)).not.toBe(0);
  }
  let intPart = '';
  for (let w = Math.max(weight, 0); w >= 0; w--) {
    const i = weight - w;
    intPart += String(i >= 0 && i < ndigits ? groups[i]! : 0).padStart(4, '0');
  }
  let frac = '';
  for (let k = 1; frac.length < dscale; k++) {
    const i = weight + k;
    frac += String(i >= 0 && i < ndigits ? groups[i]! : 0).padStart(4, '0');
  }
  // Every significant digit fits within dscale.
  expect(frac.slice(dscale).replace(/0/g, '')).toBe('');
  const body = `${intPart.replace(/^0+(?=\d)/, '')}${dscale > 0 ? `.${frac.slice(0, dscale)}` : ''}`;
  return sign === 0x4000 ? `-${body}` : body;
}

async function failure(
  fn: () => unknown,
): Promise<{ code: string; message: string; data?: unknown }> {
  try {
    await fn();
  } catch (err) {
    if (isTongbuError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

/** Microseconds since 2000-01-01 of a timestamp text, computed through Date (UTC). */
function expectedMicros(text: string): bigint {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?: (\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?(?:([+-])(\d\d))?$/.exec(
    text,
  )!;
  const d = new Date(0);
  d.setUTCFullYear(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  d.setUTCHours(Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0), 0);
  const off = m[8] === undefined ? 0 : (m[8] === '-' ? -1 : 1) * Number(m[9]) * 3600;
  return (
    (BigInt(d.getTime()) - BigInt(off) * 1000n) * 1000n +
    BigInt((m[7] ?? '').padEnd(6, '0')) -
    946_684_800_000_000n
  );
}

describe('COPY binary encoder', () => {
  it('writes the same bytes whatever the buffer size and batching', () => {
    const rows = Array.from({ length: 30 }, (_x, i) => SAMPLE[i % SAMPLE.length]!);
    const big = encode(ALL, rows);
    expect(tuples(big)).toHaveLength(30);
    for (const chunk of [1, 3, 7, 19, 64, 1000]) {
      for (const batch of [1, 7, 30]) expect(encode(ALL, rows, chunk, batch)).toEqual(big);
    }
  });

  it('encodes fixed-size types as PostgreSQL receives them', () => {
    const [row, nulls, edge] = tuples(encode(ALL, SAMPLE));
    expect(nulls!.every((f) => f === null)).toBe(true);
    const r = row!;
    expect(r[0]!.readInt16BE(0)).toBe(1);
    expect(r[1]!.readInt32BE(0)).toBe(-2);
    expect(r[2]!.readBigInt64BE(0)).toBe(3n);
    expect(r[4]!.readFloatBE(0)).toBe(1.5);
    expect(r[5]!.readDoubleBE(0)).toBe(0.1);
    expect(r[6]!.toString('utf8')).toBe('héllo 😀');
    expect(r[7]).toEqual(Buffer.from([0, 255]));
    expect(r[8]).toEqual(Buffer.from([1]));
    expect(r[12]!.toString()).toBe('{"a":1}');
    expect(r[13]).toEqual(Buffer.from('\u0001[true]'));
    expect(r[14]!.toString('hex')).toBe('0123abcd00004000800000000000ffff');
    const e = edge!;
    expect(e[0]!.readInt16BE(0)).toBe(-32768);
    expect(e[1]!.readInt32BE(0)).toBe(2147483647);
    expect(e[2]!.readBigInt64BE(0)).toBe(-(2n ** 63n));
    expect(Object.is(e[4]!.readFloatBE(0), -0)).toBe(true);
    expect(e[7]).toEqual(Buffer.alloc(0));
    expect(e[8]).toEqual(Buffer.from([0]));
    expect(e[14]!.toString('hex')).toBe('f'.repeat(32));
  });

  it('encodes dates and timestamps as days and microseconds since 2000-01-01', () => {
    const cases = [
      '0001-01-01 00:00:00',
      '1999-12-31 23:59:59.999999',
      '2000-01-01 00:00:00',
      '2000-01-01 00:00:00.000001',
      '1969-12-31 23:59:59.5',
      '1600-02-29 01:02:03.04',
      '9999-12-31 23:59:59.999999',
      '2024-02-29 12:00:00',
    ];
    const ts = [col('ts', 'timestamp'), col('tz', 'timestamptz'), col('d', 'date')];
    const rows: Row[] = cases.map((c) => [c, `${c}+00`, c.slice(0, 10)]);
    for (const [i, t] of tuples(encode(ts, rows)).entries()) {
      const want = expectedMicros(cases[i]!);
      expect(t[0]!.readBigInt64BE(0)).toBe(want);
      expect(t[1]!.readBigInt64BE(0)).toBe(want);
      expect(t[2]!.readInt32BE(0)).toBe(
        Number(expectedMicros(cases[i]!.slice(0, 10)) / 86_400_000_000n),
      );
    }
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0001-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59Z'),
          noInvalidDate: true,
        }),
        fc.integer({ min: 0, max: 999_999 }),
        fc.integer({ min: -12, max: 14 }),
        (d, micros, offset) => {
          const text = `${d.toISOString().slice(0, 19).replace('T', ' ')}.${String(micros).padStart(6, '0')}`;
          const zone = `${offset < 0 ? '-' : '+'}${String(Math.abs(offset)).padStart(2, '0')}`;
          const [t] = tuples(encode(ts.slice(0, 2), [[text, `${text}${zone}`]]));
          expect(t![0]!.readBigInt64BE(0)).toBe(expectedMicros(text));
          expect(t![1]!.readBigInt64BE(0)).toBe(expectedMicros(`${text}${zone}`));
        },
      ),
    );
  });

  it('takes the other forms text COPY took: T, offsets, dates into timestamps, long fractions', () => {
    const ts = [col('ts', 'timestamp'), col('tz', 'timestamptz')];
    const rows: Row[] = [
      ['2020-01-02T03:04:05', '2020-01-02 03:04:05Z'],
      ['2020-01-02', '2020-01-02 05:34:05+02:30'],
      ['2020-01-02 03:04:05+05', '2020-01-02 03:04:05.1234565+00'],
      ['2020-01-01 24:00:00', '2020-01-02 03:04:05.9999996+00'],
    ];
    const got = tuples(encode(ts, rows)).map((t) => t.map((f) => f!.readBigInt64BE(0)));
    expect(got[0]).toEqual([
      expectedMicros('2020-01-02 03:04:05'),
      expectedMicros('2020-01-02 03:04:05'),
    ]);
    expect(got[1]).toEqual([expectedMicros('2020-01-02'), expectedMicros('2020-01-02 03:04:05')]);
    // A timestamp column ignores the offset, as timestamp_in does.
    expect(got[2]).toEqual([
      expectedMicros('2020-01-02 03:04:05'),
      expectedMicros('2020-01-02 03:04:05.123457'),
    ]);
    expect(got[3]).toEqual([
      expectedMicros('2020-01-02 00:00:00'),
      expectedMicros('2020-01-02 03:04:06'),
    ]);
  });

  it('encodes numeric as base-10000 digits with weight, sign and dscale', () => {
    const values = [
      '0',
      '-0',
      '0.000',
      '-0.0001',
      '12345678901234567890.123456789',
      '1',
      '10000',
      '100000000',
      '-9999.9999',
      '0.5',
      '00012.50',
      '.5',
      '5.',
      `0.${'0'.repeat(300)}1`,
      `1${'0'.repeat(1000)}`,
      '3.14159265358979323846264338327950288419716939937510',
    ];
    const n = [col('n', 'numeric')];
    const got = tuples(
      encode(
        n,
        values.map((v) => [v]),
      ),
    ).map((t) => numericText(t[0]!));
    const norm = (v: string): string => {
      const neg = v.startsWith('-');
      const [whole = '', f] = v.replace(/^[+-]/, '').split('.');
      const i = whole.replace(/^0+/, '') || '0';
      const body = f === undefined || f === '' ? i : `${i}.${f}`;
      return neg && /[1-9]/.test(body) ? `-${body}` : body;
    };
    expect(got).toEqual(values.map(norm));
    const [first] = tuples(encode(n, [['12345678901234567890.123456789']]));
    const f = first![0]!;
    expect([f.readInt16BE(0), f.readInt16BE(2), f.readUInt16BE(4), f.readInt16BE(6)]).toEqual([
      8, 4, 0, 9,
    ]);
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.stringMatching(/^[0-9]{1,40}$/),
        fc.stringMatching(/^[0-9]{0,40}$/),
        (neg, i, frac) => {
          const v = `${neg ? '-' : ''}${i}${frac === '' ? '' : `.${frac}`}`;
          const [t] = tuples(encode(n, [[v]]));
          expect(numericText(t![0]!)).toBe(norm(v));
        },
      ),
    );
    // Numbers, bigints and exponent forms go through their decimal text.
    const more = tuples(encode(n, [[12], [2n ** 70n], [1e21], [1.5e-7], [true]])).map((t) =>
      numericText(t[0]!),
    );
    expect(more).toEqual(['12', String(2n ** 70n), `1${'0'.repeat(21)}`, '0.00000015', '1']);
  });

  it('refuses what has no binary form or is out of range, naming the column', async () => {
    const cases: [PgColumn, unknown][] = [
      [col('small', 'int2', 'smallint'), 32768],
      [col('small', 'int2', 'smallint'), -32769],
      [col('w', 'int4', 'integer'), 2 ** 31],
      [col('w', 'int4', 'integer'), 2n ** 31n],
      [col('w', 'int4', 'integer'), 1.5],
      [col('big', 'int8', 'bigint'), 2n ** 63n],
      [col('big', 'int8', 'bigint'), -(2n ** 63n) - 1n],
      [col('big', 'int8', 'bigint'), 2 ** 63],
      [col('r', 'float4', 'real'), 1e39],
      [col('r', 'float4', 'real'), 1e-50],
      [col('n', 'numeric'), 'NaN'],
      [col('n', 'numeric'), '-Infinity'],
      [col('n', 'numeric'), NaN],
      [col('n', 'numeric'), '1.2.3'],
      [col('n', 'numeric'), `1${'0'.repeat(131_072)}`],
      [col('ts', 'timestamp'), '2021-02-29 00:00:00'],
      [col('ts', 'timestamp'), '0000-01-01 00:00:00'],
      [col('ts', 'timestamp'), '10000-01-01 00:00:00'],
      [col('ts', 'timestamp'), '2021-01-01 12:60:00'],
      [col('ts', 'timestamp'), 'infinity'],
      [col('tz', 'timestamptz'), '2021-01-01 00:00:00+ab'],
      [col('d', 'date'), '2021-01-01 00:00:00'],
      [col('d', 'date'), 20210101],
      [col('u', 'uuid'), 'not-a-uuid'],
      [col('u', 'uuid'), '0123abcd-0000-4000-8000-00000000fffg'],
      [col('ok', 'bool', 'boolean'), 'maybe'],
    ];
    for (const [c, v] of cases) {
      const err = await failure(() => encode([c], [[v as Row[number]]]));
      expect(err.code, `${c.column.name} ${String(v)}`).toBe('BAD_ARGUMENT');
      expect(err.message).toContain(`"${c.column.name}"`);
    }
  });

  it('converts values of widened types as text COPY parsed them', () => {
    const cols = [
      col('i', 'int4', 'integer'),
      col('big', 'int8', 'bigint'),
      col('f', 'float8'),
      col('t', 'text'),
      col('ok', 'bool', 'boolean'),
      col('u', 'uuid'),
      col('b', 'bytea'),
    ];
    const [t] = tuples(
      encode(cols, [[true, 7, 5n, 12, 't', '{0123ABCD00004000800000000000FFFF}', '\\x0aff']]),
    );
    expect(t![0]!.readInt32BE(0)).toBe(1);
    expect(t![1]!.readBigInt64BE(0)).toBe(7n);
    expect(t![2]!.readDoubleBE(0)).toBe(5);
    expect(t![3]!.toString()).toBe('12');
    expect(t![4]).toEqual(Buffer.from([1]));
    expect(t![5]!.toString('hex')).toBe('0123abcd00004000800000000000ffff');
    expect(t![6]).toEqual(Buffer.from([10, 255]));
  });

  it('leaves types without a binary form to text COPY', () => {
    expect(binaryCopyable(ALL)).toBe(true);
    expect(binaryCopyable([...ALL, col('a', '_int4', 'integer[]')])).toBe(false);
    expect(binaryCopyable([col('m', 'mood')])).toBe(false);
  });
});
