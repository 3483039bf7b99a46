import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTongbuError, TongbuError } from './errors.js';
import {
  chunkBuffer,
  createFastCdc,
  DEFAULT_CHUNKER,
  FastCdc,
  type ChunkBoundary,
  type ChunkerOptions,
} from './fastcdc.js';
import { hashBytes } from './hash.js';

/**
 * Deterministic test data: xorshift32 (Marsaglia 2003; shifts 13, 17, 5) from
 * `seed`, each 32-bit state written little-endian. Easy to reproduce in any
 * language, so the vectors below can be checked against another FastCDC.
 */
function xorshiftBytes(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
    out[i + 1] = (x >>> 8) & 0xff;
    out[i + 2] = (x >>> 16) & 0xff;
    out[i + 3] = x >>> 24;
  }
  return out;
}

const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');
const chunkHash = (data: Uint8Array, c: ChunkBoundary): string =>
  hashBytes(data.subarray(c.offset, c.offset + c.length));

const SMALL: ChunkerOptions = { minSize: 64, avgSize: 256, maxSize: 1024 };
const OPTION_SETS: ChunkerOptions[] = [
  SMALL,
  { minSize: 256, avgSize: 1024, maxSize: 4096 },
  { minSize: 100, avgSize: 1000, maxSize: 3000 }, // avg not a power of two
  { minSize: 1000, avgSize: 1024, maxSize: 1100 }, // narrow window
];

describe('FastCDC test vectors', () => {
  // 4 MiB from xorshift32 seeded 0x746f6e67; offsets hashed as decimal
  // numbers joined by ','.
  const data = xorshiftBytes(0x746f6e67, 4 * 1024 * 1024);

  it('generates the documented test data', () => {
    expect(hashBytes(data)).toBe(
      'sha256:1dc0d311511d59b8f22d9a81df04ef02a47e1f97992ac2f4934b6887be336b7d',
    );
  });

  it('cuts 8 KiB / 32 KiB / 128 KiB chunks at fixed offsets', () => {
    const chunks = chunkBuffer(data, { minSize: 8192, avgSize: 32768, maxSize: 131072 });
    const offsets = chunks.map((c) => c.offset);
    expect(offsets).toEqual([
      0, 45653, 97187, 132607, 154573, 182040, 201730, 238675, 284039, 318714, 346320, 379639,
      420406, 456253, 489496, 523522, 557214, 597673, 638363, 686399, 707504, 718316, 752052,
      785380, 825849, 884814, 920058, 983841, 1017960, 1034608, 1079636, 1118707, 1169598, 1228577,
      1273614, 1301321, 1340464, 1389505, 1425536, 1475664, 1536512, 1550654, 1588863, 1627269,
      1660696, 1705264, 1740306, 1774656, 1820148, 1861576, 1894349, 1942232, 1990598, 2026858,
      2060626, 2096116, 2123505, 2159117, 2186062, 2220077, 2254734, 2296060, 2330330, 2368128,
      2405952, 2422364, 2464987, 2498766, 2536361, 2602984, 2647107, 2682095, 2716686, 2749462,
      2786148, 2819165, 2831350, 2851020, 2866157, 2901562, 2936148, 2984754, 3039679, 3073988,
      3107486, 3142000, 3178644, 3213044, 3260034, 3311967, 3348450, 3385721, 3395934, 3432748,
      3473965, 3514033, 3552841, 3591062, 3631801, 3662814, 3706496, 3759414, 3802157, 3849388,
      3873453, 3899871, 3946508, 3983521, 4031079, 4089070, 4127405, 4161549,
    ]);
    expect(sha256(offsets.join(','))).toBe(
      '6837e2f8cb40ac015bd96d6317592d8c89a07226055081ec16a021612c4118ca',
    );
  });

  // Thousands of small chunks: any change to the masks, the mask switch at
  // avgSize or the avg rounding shows here.
  it.each([
    [SMALL, 14265, 'bf44805c2159ec374036b84a0f701c397e085fcee9398dca72019c4a0204a6c5'],
    [OPTION_SETS[2]!, 3770, 'bdb8d8f00889e80867f7d5387c3a7b3e6e8a5e8048e0a76703eef1239e70e760'],
  ])('cuts %o chunks at fixed offsets', (options, count, digest) => {
    const offsets = chunkBuffer(data, options).map((c) => c.offset);
    expect(offsets.length).toBe(count);
    expect(sha256(offsets.join(','))).toBe(digest);
  });

  it('cuts default-size chunks at fixed offsets', () => {
    const offsets = chunkBuffer(data).map((c) => c.offset);
    expect(offsets).toEqual([0, 1189012, 2620616, 3803909]);
    expect(sha256(offsets.join(','))).toBe(
      '8fbe9e8443352d19e4ddff063488e8e7c31ff880b394e886cca1f722078d022c',
    );
  });
});

describe('FastCDC properties', () => {
  const arbData = fc
    .record({ seed: fc.integer(), length: fc.integer({ min: 0, max: 40_000 }) })
    .map(({ seed, length }) => xorshiftBytes(seed, length));
  const arbOptions = fc.constantFrom(...OPTION_SETS);

  it('covers the input exactly, in order, within [min, max]', () => {
    fc.assert(
      fc.property(arbData, arbOptions, (data, options) => {
        const chunks = chunkBuffer(data, options);
        let offset = 0;
        chunks.forEach((c, i) => {
          expect(c.offset).toBe(offset);
          expect(c.length).toBeGreaterThan(0);
          expect(c.length).toBeLessThanOrEqual(options.maxSize);
          if (i < chunks.length - 1) expect(c.length).toBeGreaterThanOrEqual(options.minSize);
          offset += c.length;
        });
        expect(offset).toBe(data.length);
      }),
    );
  });

  it('gives the same boundaries however the input is split', () => {
    const arbPieces = fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 30 });
    fc.assert(
      fc.property(arbData, arbOptions, arbPieces, (data, options, pieces) => {
        const chunker = createFastCdc(options);
        const chunks: ChunkBoundary[] = [];
        let at = 0;
        for (const size of pieces) {
          chunks.push(...chunker.push(data.subarray(at, Math.min(at + size, data.length))));
          at = Math.min(at + size, data.length);
        }
        chunks.push(...chunker.push(data.subarray(at)), ...chunker.finish());
        expect(chunker.bytes).toBe(data.length);
        expect(chunks).toEqual(chunkBuffer(data, options));
      }),
    );
  });

  it('finds the same boundaries one chunk at a time from any cut (nextCut)', () => {
    fc.assert(
      fc.property(arbData, arbOptions, (data, options) => {
        const cutter = createFastCdc(options);
        const chunks: ChunkBoundary[] = [];
        for (let at = 0; at < data.length;) {
          const window = data.subarray(at, Math.min(at + options.maxSize, data.length));
          const cut = cutter.nextCut(window);
          const length = cut > 0 ? cut : window.length;
          chunks.push({ offset: at, length });
          at += length;
        }
        expect(chunks).toEqual(chunkBuffer(data, options));
      }),
    );
  });

  it('gives the same boundaries when fed one byte at a time', () => {
    const data = xorshiftBytes(42, 20_000);
    const chunker = new FastCdc(SMALL);
    const chunks: ChunkBoundary[] = [];
    for (let i = 0; i < data.length; i++) chunks.push(...chunker.push(data.subarray(i, i + 1)));
    chunks.push(...chunker.finish());
    expect(chunks).toEqual(chunkBuffer(data, SMALL));
  });

  it('keeps the chunks after an insert near the start', () => {
    const options: ChunkerOptions = { minSize: 256, avgSize: 1024, maxSize: 4096 };
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 0, max: 2048 }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (seed, at, inserted) => {
          const before = xorshiftBytes(seed, 256 * 1024);
          const after = new Uint8Array(before.length + inserted.length);
          after.set(before.subarray(0, at));
          after.set(inserted, at);
          after.set(before.subarray(at), at + inserted.length);
          const kept = new Set(chunkBuffer(after, options).map((c) => chunkHash(after, c)));
          const shared = chunkBuffer(before, options)
            .filter((c) => c.offset + c.length > at)
            .map((c) => kept.has(chunkHash(before, c)));
          // Only a run of chunks right after the insert changes; once the
          // cut points line up again, every later chunk is the same.
          const firstShared = shared.indexOf(true);
          expect(firstShared).toBeGreaterThan(-1);
          expect(shared.slice(firstShared).every(Boolean)).toBe(true);
          expect(firstShared).toBeLessThan(shared.length / 4);
        },
      ),
    );
  });

  it('cuts all-zero input into max-size chunks', () => {
    for (const options of [
      DEFAULT_CHUNKER,
      SMALL,
      { minSize: 8192, avgSize: 32768, maxSize: 131072 },
    ]) {
      const data = new Uint8Array(options.maxSize * 3 + 5);
      const lengths = chunkBuffer(data, options).map((c) => c.length);
      const m = options.maxSize;
      expect(lengths).toEqual([m, m, m, 5]);
    }
  });
});

describe('FastCdc', () => {
  it('returns no chunks for empty input', () => {
    expect(chunkBuffer(new Uint8Array(0))).toEqual([]);
    const chunker = new FastCdc();
    expect(chunker.push(new Uint8Array(0))).toEqual([]);
    expect(chunker.finish()).toEqual([]);
  });

  it('refuses push after finish', () => {
    const chunker = new FastCdc(SMALL);
    chunker.finish();
    expect(chunker.finish()).toEqual([]);
    expect(() => chunker.push(new Uint8Array(1))).toThrow(TongbuError);
  });

  it.each([
    [{ minSize: 32, avgSize: 256, maxSize: 1024 }, 'minSize'],
    [{ minSize: 64, avgSize: 256, maxSize: 2 ** 30 + 1 }, 'maxSize'],
    [{ minSize: 64, avgSize: 256.5, maxSize: 1024 }, 'avgSize'],
    [{ minSize: 64, avgSize: Number.NaN, maxSize: 1024 }, 'avgSize'],
    [{ minSize: 256, avgSize: 256, maxSize: 1024 }, 'minSize'],
    [{ minSize: 512, avgSize: 256, maxSize: 1024 }, 'minSize'],
    [{ minSize: 64, avgSize: 1024, maxSize: 1024 }, 'maxSize'],
  ] as const)('rejects %o naming %s', (options, name) => {
    let error: unknown;
    try {
      new FastCdc(options);
    } catch (err) {
      error = err;
    }
    expect(isTongbuError(error, 'BAD_ARGUMENT')).toBe(true);
    expect((error as TongbuError).data['option']).toBe(name);
    expect((error as TongbuError).message).toMatch(new RegExp(`^chunker option ${name}\\b`));
  });
});
