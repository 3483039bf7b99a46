/**
 * Chunking in worker threads gives what chunking in place gives: the same
 * chunk bytes, the same chunk hashes and the same whole-content hash,
 * however the content is split into pieces and however many files share
 * the workers; a worker that dies fails its sessions instead of hanging
 * them.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { isTongbuError } from '../../core/errors.js';
import { chunkBuffer, type ChunkerOptions } from '../../core/fastcdc.js';
import { hashBytes, storeAddress, type HashAlgorithm } from '../../core/hash.js';
import { ChunkPool, type HashedChunk } from './chunk-pool.js';

const SMALL: ChunkerOptions = { minSize: 1024, avgSize: 4096, maxSize: 16384 };
const pool = new ChunkPool(2);
const dir = fs.mkdtempSync(join(tmpdir(), 'tongbu-chunk-pool-'));

afterAll(async () => {
  await pool.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A file session's chunks, with their bytes read back from the file by offset. */
async function viaFile(
  path: string,
  listed: { size: number; mtimeMs: number },
  algorithm: HashAlgorithm,
): Promise<ReturnType<typeof expected>> {
  const session = pool.openFile({ path, ...listed }, SMALL, algorithm);
  const file = fs.existsSync(path) ? fs.readFileSync(path) : Buffer.alloc(0);
  const chunks: { hash: string; hex: string }[] = [];
  let read = 0;
  try {
    for (let batch = await session.next(); batch !== null; batch = await session.next()) {
      read += batch.bytes;
      for (const c of batch.chunks) {
        chunks.push({
          hash: c.hash,
          hex: file.subarray(c.offset, c.offset + c.length).toString('hex'),
        });
      }
    }
  } finally {
    session.close();
  }
  expect(read).toBe(listed.size);
  return { chunks, hash: session.hash! };
}

/** What chunking in place gives. */
function expected(
  data: Buffer,
  algorithm: HashAlgorithm,
): { chunks: { hash: string; hex: string }[]; hash: string } {
  return {
    chunks: chunkBuffer(data, SMALL).map((c) => {
      const bytes = data.subarray(c.offset, c.offset + c.length);
      return { hash: storeAddress(bytes), hex: bytes.toString('hex') };
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

  it('chunks a local file it reads itself as in place', async () => {
    for (const [i, size] of [0, 1, 5000, 3_000_000, 9_000_123].entries()) {
      const path = join(dir, `f${i}`);
      const data = randomBytes(size);
      fs.writeFileSync(path, data);
      const st = fs.statSync(path);
      const algorithm = i % 2 ? 'blake3' : 'sha256';
      expect(await viaFile(path, { size, mtimeMs: st.mtimeMs }, algorithm)).toEqual(
        expected(data, algorithm),
      );
    }
  });

  it('given the old version, cuts the new one as FastCDC would and marks the old chunks known', async () => {
    const cases: Buffer[] = [];
    // Past one 4 MiB block of reading, so sessions take turns on a worker.
    const v1 = randomBytes(9_000_000);
    const oldRefs = expected(v1, 'blake3').chunks;
    const old = {
      sizes: Uint32Array.from(oldRefs.map((c) => c.hex.length / 2)),
      digests: Buffer.concat(oldRefs.map((c) => Buffer.from(c.hash.slice(7), 'hex'))),
    };
    const oldSet = new Set(oldRefs.map((c) => c.hash));
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            at: fc.nat({ max: 9_100_000 }),
            cut: fc.nat({ max: 20_000 }),
            insert: fc.nat({ max: 20_000 }),
          }),
          { maxLength: 4 },
        ),
        fc.nat({ max: 70_000 }),
        fc.nat({ max: 70_000 }),
        (edits, trimEnd, append) => {
          let v2 = v1;
          for (const e of edits) {
            const at = Math.min(e.at, v2.length);
            v2 = Buffer.concat([
              v2.subarray(0, at),
              randomBytes(e.insert),
              v2.subarray(at + e.cut),
            ]);
          }
          v2 = Buffer.concat([
            v2.subarray(0, Math.max(0, v2.length - trimEnd)),
            randomBytes(append),
          ]);
          cases.push(v2);
        },
      ),
      { numRuns: 12 },
    );
    // All at once: several sessions share each worker.
    await Promise.all(
      cases.map(async (v2, i) => {
        const path = join(dir, `predicted-${i}`);
        fs.writeFileSync(path, v2);
        const st = fs.statSync(path);
        const listed = { path, size: v2.length, mtimeMs: st.mtimeMs };
        const session = pool.openFile(listed, SMALL, 'blake3', old);
        const got: { hash: string; hex: string }[] = [];
        const known: boolean[] = [];
        try {
          for (let batch = await session.next(); batch !== null; batch = await session.next()) {
            for (const c of batch.chunks) {
              const hex = v2.subarray(c.offset, c.offset + c.length).toString('hex');
              got.push({ hash: c.hash, hex });
              known.push(c.known === true);
            }
          }
        } finally {
          session.close();
        }
        expect({ chunks: got, hash: session.hash }).toEqual(expected(v2, 'blake3'));
        // Known: exactly the chunks of the old version that the new one still has at a cut.
        expect(known).toEqual(got.map((c) => oldSet.has(c.hash)));
      }),
    );
    expect(cases.length).toBeGreaterThan(0);
  });

  it('refuses a file that is not as listed, and names a missing one', async () => {
    const path = join(dir, 'listed');
    fs.writeFileSync(path, randomBytes(100_000));
    const st = fs.statSync(path);
    for (const listed of [
      { size: st.size + 1, mtimeMs: st.mtimeMs },
      { size: st.size, mtimeMs: st.mtimeMs - 1000 },
    ]) {
      const error: unknown = await viaFile(path, listed, 'sha256').catch((e: unknown) => e);
      expect(isTongbuError(error, 'FILE_CHANGED')).toBe(true);
      expect(String(error)).toContain(path);
    }
    const missing: unknown = await viaFile(
      join(dir, 'gone'),
      { size: 1, mtimeMs: 0 },
      'sha256',
    ).catch((e: unknown) => e);
    expect(isTongbuError(missing, 'NOT_FOUND')).toBe(true);
    expect(String(missing)).toContain('gone');
  });

  it('reads a file only a few blocks ahead of what is taken from the session', async () => {
    const path = join(dir, 'large');
    const fd = fs.openSync(path, 'w');
    fs.ftruncateSync(fd, 48 << 20); // 12 blocks of 4 MiB: more than the 8 read ahead
    fs.closeSync(fd);
    const st = fs.statSync(path);
    const session = pool.openFile({ path, size: st.size, mtimeMs: st.mtimeMs }, SMALL, 'sha256');
    try {
      // Nothing is taken for a while: a worker that read on would be done long before.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      fs.utimesSync(path, new Date(), new Date(Date.now() + 5000));
      let error: unknown;
      try {
        while ((await session.next()) !== null);
      } catch (err) {
        error = err;
      }
      // So the end of the file was read after the change, and the change is seen.
      expect(isTongbuError(error, 'FILE_CHANGED')).toBe(true);
    } finally {
      session.close();
    }
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
