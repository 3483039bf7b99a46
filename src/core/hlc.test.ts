import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTongbuError } from './errors.js';
import {
  compareHlc,
  formatHlc,
  HybridClock,
  MAX_LOGICAL,
  MAX_WALL_MS,
  parseHlc,
  type HlcTimestamp,
} from './hlc.js';

/** A physical clock the test sets by hand. */
function manualClock(start: number): { clock: () => number; set(ms: number): void } {
  let now = start;
  return { clock: () => now, set: (ms) => (now = ms) };
}

const T0 = 1_700_000_000_000;

const arbNode = fc.stringMatching(/^[\x21-\x7e]{1,12}$/);
const arbHlc: fc.Arbitrary<HlcTimestamp> = fc.record({
  wallMs: fc.oneof(fc.integer({ min: 0, max: MAX_WALL_MS }), fc.integer({ min: T0, max: T0 + 3 })),
  logical: fc.oneof(fc.integer({ min: 0, max: MAX_LOGICAL }), fc.integer({ min: 0, max: 3 })),
  node: fc.oneof(arbNode, fc.constantFrom('a', 'b', 'ab', 'a-b', 'B')),
});

describe('HybridClock', () => {
  it('stays monotonic when the physical clock goes backwards', () => {
    const physical = manualClock(T0);
    const clock = new HybridClock('n1', { physicalClock: physical.clock });
    const a = clock.now();
    expect(a).toEqual({ wallMs: T0, logical: 0, node: 'n1' });
    physical.set(T0 - 5_000);
    const b = clock.now();
    const c = clock.now();
    expect(b).toEqual({ wallMs: T0, logical: 1, node: 'n1' });
    expect(c).toEqual({ wallMs: T0, logical: 2, node: 'n1' });
    physical.set(T0 + 1);
    expect(clock.now()).toEqual({ wallMs: T0 + 1, logical: 0, node: 'n1' });
  });

  it('issues strictly increasing timestamps under any clock', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -2000, max: 2000 }), { maxLength: 200 }), (steps) => {
        const physical = manualClock(T0);
        const clock = new HybridClock('n1', { physicalClock: physical.clock });
        let last = clock.now();
        let pt = T0;
        for (const step of steps) {
          pt += step;
          physical.set(pt);
          const next = clock.now();
          expect(compareHlc(last, next)).toBe(-1);
          expect(next.wallMs).toBeGreaterThanOrEqual(pt);
          last = next;
        }
      }),
    );
  });

  it('update() returns a timestamp above both the remote and the local clock', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -120_000, max: 60_000 }),
        fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: MAX_LOGICAL })),
        arbNode,
        fc.integer({ min: -1000, max: 1000 }),
        (ahead, logical, node, skew) => {
          const physical = manualClock(T0);
          const clock = new HybridClock('local', { physicalClock: physical.clock });
          const before = clock.now();
          physical.set(T0 + skew);
          const remote = { wallMs: T0 + skew + ahead, logical, node };
          const merged = clock.update(remote);
          expect(compareHlc(merged, remote)).toBe(1);
          expect(compareHlc(merged, before)).toBe(1);
          expect(merged.node).toBe('local');
          // One ms more only when the remote's logical counter overflowed.
          const wall = Math.max(T0, T0 + skew, remote.wallMs);
          const overflow = wall === remote.wallMs && logical === MAX_LOGICAL;
          expect(merged.wallMs).toBe(overflow ? wall + 1 : wall);
          expect(compareHlc(clock.now(), merged)).toBe(1);
        },
      ),
    );
  });

  it('follows the HLC receive rule', () => {
    const physical = manualClock(T0);
    const clock = new HybridClock('a', { physicalClock: physical.clock });
    clock.now(); // (T0, 0)
    expect(clock.update({ wallMs: T0, logical: 7, node: 'b' })).toMatchObject({
      wallMs: T0,
      logical: 8,
    });
    expect(clock.update({ wallMs: T0 + 10, logical: 3, node: 'b' })).toMatchObject({
      wallMs: T0 + 10,
      logical: 4,
    });
    expect(clock.update({ wallMs: T0 - 10, logical: 99, node: 'b' })).toMatchObject({
      wallMs: T0 + 10,
      logical: 5,
    });
    physical.set(T0 + 20);
    expect(clock.update({ wallMs: T0 + 15, logical: 0, node: 'b' })).toMatchObject({
      wallMs: T0 + 20,
      logical: 0,
    });
  });

  it('refuses a remote too far ahead, leaving the clock unchanged', () => {
    const physical = manualClock(T0);
    const clock = new HybridClock('a', { physicalClock: physical.clock, maxDriftMs: 1000 });
    const before = clock.now();
    expect(clock.update({ wallMs: T0 + 1000, logical: 0, node: 'b' }).wallMs).toBe(T0 + 1000);
    let error: unknown;
    try {
      clock.update({ wallMs: T0 + 1002, logical: 0, node: 'far' });
    } catch (err) {
      error = err;
    }
    expect(isTongbuError(error, 'BAD_ARGUMENT')).toBe(true);
    expect((error as Error).message).toMatch(/"far" is 1002 ms ahead.*limit 1000 ms/);
    expect(compareHlc(clock.peek(), before)).toBe(1);
    expect(clock.peek().wallMs).toBe(T0 + 1000);
  });

  it('uses a 60 s drift limit by default', () => {
    const clock = new HybridClock('a', { physicalClock: () => T0 });
    expect(() => clock.update({ wallMs: T0 + 60_000, logical: 0, node: 'b' })).not.toThrow();
    expect(() => clock.update({ wallMs: T0 + 60_001, logical: 0, node: 'b' })).toThrow(
      /ahead of the local clock/,
    );
  });

  it('carries an overflowing logical counter into wallMs', () => {
    const clock = new HybridClock('a', {
      physicalClock: () => T0,
      last: { wallMs: T0, logical: MAX_LOGICAL, node: 'a' },
    });
    expect(clock.now()).toEqual({ wallMs: T0 + 1, logical: 0, node: 'a' });
    expect(clock.now()).toEqual({ wallMs: T0 + 1, logical: 1, node: 'a' });
  });

  it('rejects bad node ids, remotes and options', () => {
    expect(() => new HybridClock('')).toThrow(/node id/);
    expect(() => new HybridClock('has space')).toThrow(/node id/);
    expect(() => new HybridClock('a', { maxDriftMs: -1 })).toThrow(/maxDriftMs/);
    const clock = new HybridClock('a', { physicalClock: () => T0 });
    expect(() => clock.update({ wallMs: T0, logical: -1, node: 'b' })).toThrow(/logical/);
    expect(() => clock.update({ wallMs: 1.5, logical: 0, node: 'b' })).toThrow(/wallMs/);
    expect(() => clock.update({ wallMs: T0, logical: 0, node: 'é' })).toThrow(/node id/);
  });
});

describe('formatHlc / parseHlc', () => {
  it('writes fixed-width fields', () => {
    expect(formatHlc({ wallMs: T0, logical: 42, node: 'node-1' })).toBe(
      '1700000000000-00002a-node-1',
    );
    expect(formatHlc({ wallMs: 5, logical: 0, node: 'x' })).toBe('0000000000005-000000-x');
  });

  it('round-trips', () => {
    fc.assert(
      fc.property(arbHlc, (ts) => {
        expect(parseHlc(formatHlc(ts))).toEqual(ts);
      }),
    );
  });

  it('sorts as strings in compareHlc order', () => {
    fc.assert(
      fc.property(arbHlc, arbHlc, (a, b) => {
        const sa = formatHlc(a);
        const sb = formatHlc(b);
        const byString = sa < sb ? -1 : sa > sb ? 1 : 0;
        expect(byString).toBe(compareHlc(a, b));
        expect(Buffer.compare(Buffer.from(sa), Buffer.from(sb))).toBe(byString);
      }),
    );
  });

  it('rejects malformed strings', () => {
    for (const text of [
      '',
      '1700000000000-00002a-',
      '170000000000-00002a-n',
      '1700000000000-00002A-n',
      '1700000000000-0002a-n',
      '1700000000000-00002a-a b',
    ]) {
      expect(() => parseHlc(text), text).toThrow(/invalid HLC timestamp/);
    }
  });
});
