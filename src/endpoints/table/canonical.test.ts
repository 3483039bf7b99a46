import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  canonicalDecimal,
  canonicalJson,
  canonicalTimestamp,
  canonicalUuid,
  compareKeys,
  floatText,
  keyId,
  microsFromTimestamp,
  timestampFromMicros,
} from './canonical.js';

describe('canonical forms', () => {
  it('floats print as PostgreSQL float8 does', () => {
    const cases: [number, string][] = [
      [0.1, '0.1'],
      [1e-4, '0.0001'],
      [1e-5, '1e-05'],
      [-1.5e-7, '-1.5e-07'],
      [123456789012345, '123456789012345'],
      [1e15, '1e+15'],
      [1.5e20, '1.5e+20'],
      [1e21, '1e+21'],
      [-0, '-0'],
      [Number.NaN, 'NaN'],
      [-Infinity, '-Infinity'],
      [5e-324, '5e-324'],
      [1.7976931348623157e308, '1.7976931348623157e+308'],
    ];
    for (const [x, text] of cases) expect(floatText(x)).toBe(text);
  });

  it('float text reads back as the same double', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (x) => {
        expect(Object.is(Number(floatText(x)), x)).toBe(true);
      }),
    );
  });

  it('decimals, timestamps, JSON and UUIDs normalize', () => {
    expect(canonicalDecimal('012.500')).toBe('12.5');
    expect(canonicalDecimal('-0.000')).toBe('0');
    expect(canonicalDecimal('1.5e3')).toBe('1500');
    expect(canonicalDecimal('-25e-4')).toBe('-0.0025');
    expect(() => canonicalDecimal('1.2.3')).toThrow(/not a decimal/);
    expect(canonicalTimestamp('2026-01-02T03:04:05.120000')).toBe('2026-01-02 03:04:05.12');
    expect(canonicalTimestamp('2026-01-02 03:04:05.000')).toBe('2026-01-02 03:04:05');
    expect(canonicalJson('{ "b": [1, {"d":1,"c":2}], "a": null }')).toBe(
      '{"a":null,"b":[1,{"c":2,"d":1}]}',
    );
    expect(canonicalUuid('{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}')).toBe(
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    );
  });

  it('timestamps round-trip through microseconds', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -62135596800000000n, max: 253402300799999999n }), (us) => {
        expect(microsFromTimestamp(timestampFromMicros(us))).toBe(us);
      }),
    );
  });

  it('keys order by code point and name equal keys alike across engines', () => {
    const names = ['a', 'B', 'é', '😀', '\uffff', ''];
    const sorted = [...names].sort((x, y) => compareKeys([x], [y]));
    expect(sorted).toEqual(['', 'B', 'a', 'é', '\uffff', '😀']);
    expect(keyId([5])).toBe(keyId([5n]));
    expect(keyId(['5'])).not.toBe(keyId([5]));
  });
});
