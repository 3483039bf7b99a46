import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyDelta,
  blockSignatures,
  computeDelta,
  deltaBlockFor,
  encodeDelta,
  sliceDelta,
  type DeltaOp,
} from './delta.js';
import { isTongbuError } from './errors.js';

function rebuild(next: Uint8Array, base: Uint8Array, block: number): Buffer {
  const ops = computeDelta(next, base.length, blockSignatures(base, block), block);
  return applyDelta(encodeDelta(ops, next), base, next.length);
}

function literalBytes(ops: readonly DeltaOp[]): number {
  return ops.reduce((n, op) => n + (op.copy ? 0 : op.length), 0);
}

/** An edit of a base: replace, insert or delete `length` bytes at `at` (clamped). */
const editArb = fc.record({
  kind: fc.constantFrom('replace', 'insert', 'delete'),
  at: fc.nat(),
  length: fc.integer({ min: 1, max: 3000 }),
  fill: fc.integer({ min: 0, max: 255 }),
});

interface Edit {
  kind: string;
  at: number;
  length: number;
  fill: number;
}

function applyEdits(base: Buffer, edits: readonly Edit[]): Buffer {
  let out = Buffer.from(base);
  for (const e of edits) {
    const at = out.length === 0 ? 0 : e.at % (out.length + 1);
    const bytes = Buffer.alloc(e.length, e.fill);
    if (e.kind === 'insert') out = Buffer.concat([out.subarray(0, at), bytes, out.subarray(at)]);
    else if (e.kind === 'delete')
      out = Buffer.concat([out.subarray(0, at), out.subarray(at + e.length)]);
    else
      out = Buffer.concat([
        out.subarray(0, at),
        bytes.subarray(0, Math.max(0, out.length - at)),
        out.subarray(at + e.length),
      ]);
  }
  return out;
}

describe('block delta', () => {
  it('rebuilds any edited string from its base, whatever the block size', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 40_000 }),
        fc.array(editArb, { maxLength: 6 }),
        fc.constantFrom(16, 64, 512, 4096),
        fc.integer(),
        (size, edits, block, seed) => {
          const base = Buffer.alloc(size);
          for (let i = 0; i < size; i++) base[i] = (Math.imul(i + seed, 2654435761) >>> 13) & 0xff;
          const next = applyEdits(base, edits);
          expect(rebuild(next, base, block).equals(next)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('sends about the changed bytes and a block each: a 64 KiB region in 256 KiB', () => {
    const base = randomBytes(256 * 1024);
    const next = Buffer.from(base);
    randomBytes(64 * 1024).copy(next, 100_000);
    const block = 1024;
    const ops = computeDelta(next, base.length, blockSignatures(base, block), block);
    const literal = literalBytes(ops);
    expect(literal).toBeGreaterThanOrEqual(64 * 1024);
    expect(literal).toBeLessThanOrEqual(64 * 1024 + 2 * block);
    expect(applyDelta(encodeDelta(ops, next), base, next.length).equals(next)).toBe(true);
  });

  it('finds shifted content and the base end that is not a whole block', () => {
    const base = randomBytes(10_000 + 37);
    const next = Buffer.concat([randomBytes(333), base]);
    const ops = computeDelta(next, base.length, blockSignatures(base, 256), 256);
    expect(literalBytes(ops)).toBe(333);
    expect(ops.filter((o) => o.copy)).toEqual([{ copy: true, from: 0, length: base.length }]);
  });

  it('sends a lone matching block among changed bytes literally (a weak hash may lie)', () => {
    const base = randomBytes(8192);
    const lone = Buffer.concat([randomBytes(2000), base.subarray(1024, 2048), randomBytes(2000)]);
    const ops = computeDelta(lone, base.length, blockSignatures(base, 1024), 1024);
    expect(ops).toEqual([{ copy: false, at: 0, length: lone.length }]);
    const two = Buffer.concat([randomBytes(2000), base.subarray(1024, 3072), randomBytes(2000)]);
    const kept = computeDelta(two, base.length, blockSignatures(base, 1024), 1024);
    expect(kept.filter((o) => o.copy)).toEqual([{ copy: true, from: 1024, length: 2048 }]);
    expect(applyDelta(encodeDelta(kept, two), base, two.length).equals(two)).toBe(true);
  });

  it('cuts a delta into per-chunk slices that rebuild each chunk', () => {
    const base = randomBytes(50_000);
    const next = Buffer.from(base);
    randomBytes(5000).copy(next, 20_000);
    const ops = computeDelta(next, base.length, blockSignatures(base, 512), 512);
    const cuts = [0, 7_000, 21_000, 35_123, 50_000];
    for (let i = 0; i + 1 < cuts.length; i++) {
      const piece = next.subarray(cuts[i], cuts[i + 1]);
      const part = sliceDelta(ops, cuts[i]!, cuts[i + 1]!);
      const wire = encodeDelta(part, piece);
      expect(applyDelta(wire, base, piece.length).equals(piece)).toBe(true);
    }
  });

  it('refuses a delta that reads past its base or rebuilds too much', () => {
    const base = randomBytes(1000);
    const past = encodeDelta([{ copy: true, from: 900, length: 200 }], Buffer.alloc(0));
    expect(() => applyDelta(past, base, 10_000)).toThrow(
      /copies bytes 900..1100 of a base of 1000/,
    );
    const long = encodeDelta([{ copy: false, at: 0, length: 600 }], randomBytes(600));
    try {
      applyDelta(long, base, 500);
      expect.unreachable();
    } catch (err) {
      expect(isTongbuError(err) && err.code).toBe('BAD_ARGUMENT');
    }
    expect(() => applyDelta(Buffer.from([0x81]), base, 100)).toThrow(/truncated or malformed/);
  });

  it('hashes and matches the same in C and in JavaScript: fixed vectors', () => {
    // Computed with TONGBU_NATIVE=0; the native module (when built) must agree, or deltas
    // between a node and a client built differently would never match.
    const data = new Uint8Array(1000);
    let x = 1;
    for (let i = 0; i < data.length; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      data[i] = x >>> 24;
    }
    expect([...blockSignatures(data, 256)]).toEqual([
      3510458429, 1364998450, 963057980, 2881755731,
    ]);
    expect([...blockSignatures(data.subarray(0, 64), 16)]).toEqual([
      989947808, 907556001, 1459239153, 1346180125,
    ]);
    const next = new Uint8Array([...data.subarray(0, 300), 1, 2, 3, ...data.subarray(300)]);
    expect(computeDelta(next, 1000, blockSignatures(data, 64), 64)).toEqual([
      { copy: true, from: 0, length: 256 },
      { copy: false, at: 256, length: 67 },
      { copy: true, from: 320, length: 680 },
    ]);
  });

  it('picks small blocks for many small changes, large ones for few', () => {
    expect(deltaBlockFor(600_000, 600)).toBe(64);
    expect(deltaBlockFor(128 * 1024, 1)).toBe(1024);
    expect(deltaBlockFor(1 << 30, 1)).toBe(65536);
    expect(() => blockSignatures(Buffer.alloc(10), 1000)).toThrow(/not a power of two/);
  });
});
