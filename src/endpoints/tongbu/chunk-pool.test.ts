/**
 * Chunking in worker threads gives what chunking in place gives: the same
 * chunk bytes, the same chunk hashes and the same whole-content hash,
 * however the content is split into pieces and however many files share
 * the workers; a worker that dies fails its sessions instead of hanging
 * them.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isTongbuError } from '../../core/errors.js';
import { chunkBuffer, type ChunkerOptions } from '../../core/fastcdc.js';
import { hashBytes, type HashAlgorithm } from '../../core/hash.js';
import { ChunkPool, type HashedChunk } from './chunk-pool.js';

const SMALL: ChunkerOptions = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
const pool = new ChunkPool(2);

afterAll(() => pool.close());

/** What chunking in place gives. */
function expected(
  data: Buffer,
  algorithm: HashAlgorithm,
): { chunks: { hash: string; hex: string }[]; hash: string } {
  return {
    chunks: chunkBuffer(data, SMALL).map((c) => {
      const bytes = data.subarray(c.offset, c.offset + c.length);
      return { hash: hashBytes(bytes), hex: bytes.toString('hex') };
    }),
    hash: hashBytes(data, algorithm),
  };
}

async function viaPool(
  data: Buffer,
  cuts: readonly number[],
  algorithm: HashAlgorithm,
): Promise<ReturnType<typeof expected>> {
  const session = pool.open(SMALL, algorithm);
  try {
    const points = [0, ...[...new Set(cuts)].sort((a, b) => a - b), data.length];
    const pending: Promise<HashedChunk[]>[] = [];
    for (let i = 0; i + 1 < points.length; i++) {
      // Pushed without waiting: replies must come back in order.
      pending.push(session.push(data.subarray(points[i], points[i + 1])));
    }
    const chunks = (await Promise.all(pending)).flat();
    const end = await session.finish();
    chunks.push(...end.chunks);
    return {
      chunks: chunks.map((c) => ({ hash: c.hash, hex: c.bytes.toString('hex') })),
      hash: end.hash,
    };
  } finally {
    session.close();
  }
}

describe('ChunkPool', () => {
  it('chunks and hashes as in place, whatever the pieces', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 200_000 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.constantFrom<HashAlgorithm>('sha256', 'blake3'),
        async (size, rawCuts, algorithm) => {
          const data = randomBytes(size);
          const cuts = rawCuts.map((c) => (size === 0 ? 0 : c % size));
          expect(await viaPool(data, cuts, algorithm)).toEqual(expected(data, algorithm));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('keeps files apart when more of them than workers run at once', async () => {
    const files = Array.from({ length: 7 }, (_, i) => randomBytes(50_000 + i * 7_919));
    const got = await Promise.all(
      files.map((data, i) => viaPool(data, [1000 * i, 30_000], i % 2 ? 'blake3' : 'sha256')),
    );
    got.forEach((g, i) => expect(g).toEqual(expected(files[i]!, i % 2 ? 'blake3' : 'sha256')));
  });

  it('fails the sessions of a worker that stops, instead of leaving them waiting', async () => {
    const own = new ChunkPool(1);
    const session = own.open(SMALL, 'sha256');
    await session.push(randomBytes(10_000));
    await own.close();
    const error: unknown = await session.push(randomBytes(10)).catch((e: unknown) => e);
    expect(isTongbuError(error, 'INTERNAL')).toBe(true);
    expect(String(error)).toMatch(/chunk worker failed/);
    session.close();
  });
});
