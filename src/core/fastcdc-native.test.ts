/**
 * FastCDC's inner loop in C (native/gear-scan.c) against the JavaScript
 * one: the same cut points for random content split into random pieces,
 * at the default sizes and at small ones. Where CI runs, the native loop
 * must be there.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import type * as core from './fastcdc-core.js';

async function loadCore(native: boolean): Promise<{ core: typeof core; loaded: boolean }> {
  vi.resetModules();
  vi.stubEnv('TONGBU_NATIVE', native ? '1' : '0');
  try {
    const loaded = (await import('./native.js')).native !== undefined;
    return { core: await import('./fastcdc-core.js'), loaded };
  } finally {
    vi.unstubAllEnvs();
  }
}

function cuts(
  Core: typeof core.FastCdcCore,
  options: core.CutOptions,
  data: Buffer,
  splits: number[],
): core.Cut[] {
  const cdc = new Core(options);
  const out: core.Cut[] = [];
  const points = [
    0,
    ...splits.map((s) => s % (data.length + 1)).sort((a, b) => a - b),
    data.length,
  ];
  for (let i = 0; i + 1 < points.length; i++)
    out.push(...cdc.push(data.subarray(points[i], points[i + 1])));
  out.push(...cdc.finish());
  return out;
}

describe('the native gear scan', () => {
  it('is built and loaded where CI runs', async () => {
    const { loaded } = await loadCore(true);
    if (process.env['TONGBU_REQUIRE_SERVICES'] === '1') expect(loaded).toBe(true);
  });

  it('cuts where the JavaScript scan cuts', async ({ skip }) => {
    const native = await loadCore(true);
    if (!native.loaded) skip('native module not built (npm run build:native)');
    const plain = await loadCore(false);
    const big = randomBytes(24 << 20);
    const defaults = { minSize: 256 << 10, avgSize: 1 << 20, maxSize: 4 << 20 };
    const want = cuts(plain.core.FastCdcCore, defaults, big, [5_000_000, 12_345_678]);
    expect(want.length).toBeGreaterThan(10);
    expect(cuts(native.core.FastCdcCore, defaults, big, [7, 9_999_999])).toEqual(want);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300_000 }), fc.array(fc.nat()), (size, splits) => {
        const data = randomBytes(size);
        const small = { minSize: 512, avgSize: 2048, maxSize: 8192 };
        expect(cuts(native.core.FastCdcCore, small, data, splits)).toEqual(
          cuts(plain.core.FastCdcCore, small, data, []),
        );
      }),
      { numRuns: 50 },
    );
  });
});
