/**
 * The conformance suite every endpoint passes (like rclone's fstests): a
 * test file calls `runEndpointSuite(name, factory)` with a factory for a
 * fresh, empty endpoint. Only the Endpoint interface is used, and tests that
 * need a capability skip, saying why, when the endpoint lacks it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TongbuError } from '../core/errors.js';
import { hashBytes } from '../core/hash.js';
import type { Key } from '../core/key.js';
import type { Endpoint, Entry, EntryMeta, WriteRequest } from './endpoint.js';
import { chunks, nameTests, type SuiteContext } from './endpoint-names-suite.js';

export interface EndpointHarness {
  readonly endpoint: Endpoint;
  /** Removes whatever the endpoint stored (a temp directory, say). */
  cleanup(): Promise<void>;
}

/** Fractional mtimes catch endpoints that keep whole seconds. */
const T1 = 1_700_000_000_123.25;
const T2 = 1_650_000_000_456.5;
const FILE: EntryMeta = { mtimeMs: T1, mode: 0o640 };
const DIR: EntryMeta = { mtimeMs: T1, mode: 0o750 };

export function runEndpointSuite(name: string, factory: () => Promise<EndpointHarness>): void {
  describe(`endpoint conformance: ${name}`, () => {
    let harness: EndpointHarness | undefined;
    const ep = (): Endpoint => {
      if (harness === undefined) throw new Error('no endpoint: beforeEach did not run');
      return harness.endpoint;
    };
    const ctx = context(ep);

    beforeEach(async () => {
      harness = await factory();
      await harness.endpoint.open({ create: true });
    });

    afterEach(async () => {
      const done = harness;
      harness = undefined;
      try {
        await done?.endpoint.close();
      } finally {
        await done?.cleanup();
      }
    });

    /** Mtimes match within the declared precision, or 1 ms when it is finer. */
    const expectMtime = (entry: Entry | undefined, mtimeMs: number): void => {
      const { mtimePrecisionMs } = ep().capabilities;
      if (mtimePrecisionMs === 0) return;
      const tolerance = Math.max(mtimePrecisionMs, 1);
      expect(Math.abs((entry?.mtimeMs ?? 0) - mtimeMs)).toBeLessThanOrEqual(tolerance);
    };
    const expectMeta = (entry: Entry | undefined, meta: EntryMeta): void => {
      if (ep().capabilities.modes) expect((entry?.mode ?? -1) & 0o777).toBe(meta.mode & 0o777);
      expectMtime(entry, meta.mtimeMs);
    };
    const keysOf = async (): Promise<Key[]> => [...(await ctx.listAll()).keys()].sort();

    it('opens with create and starts empty', async () => {
      expect(await keysOf()).toEqual([]);
      expect(await ep().stat('anything')).toBeUndefined();
    });

    it('round trips a file: stat, list, read, hash', async () => {
      const bytes = pattern(100_003, 1);
      const result = await ctx.write('a.bin', bytes, FILE);
      expect(result.hash).toBe(hashBytes(bytes));
      expect(result.entry).toMatchObject({ key: 'a.bin', kind: 'file', size: bytes.length });
      const stat = await ep().stat('a.bin');
      expect(stat).toMatchObject({ key: 'a.bin', kind: 'file', size: bytes.length });
      expectMeta(stat, FILE);
      const listed = (await ctx.listAll()).get('a.bin');
      expect(listed).toMatchObject({ kind: 'file', size: bytes.length });
      expectMeta(listed, FILE);
      if (listed?.hash !== undefined) expect(listed.hash).toBe(hashBytes(bytes));
      expectSame(await ctx.readAll('a.bin'), bytes);
      expect(await ep().hash(['a.bin'])).toEqual([hashBytes(bytes)]);
    });

    it('hashes by the algorithm asked for, in hash and in write', async () => {
      const bytes = pattern(300_001, 3);
      const blake3 = hashBytes(bytes, 'blake3');
      expect(blake3).toMatch(/^blake3:[0-9a-f]{64}$/);
      const request = { key: 'b3.bin', size: bytes.length, algorithm: 'blake3' as const, ...FILE };
      const written = await ep().write(
        request,
        chunks([bytes.subarray(0, 1000), bytes.subarray(1000)]),
      );
      expect(written.hash).toBe(blake3);
      expect(await ep().hash(['b3.bin'], { algorithm: 'blake3' })).toEqual([blake3]);
      expect(await ep().hash(['b3.bin'])).toEqual([hashBytes(bytes)]);
      const wrong = {
        ...request,
        key: 'bad.bin',
        expectedHash: hashBytes(utf8('other'), 'blake3'),
      };
      await expect(ep().write(wrong, chunks([bytes]))).rejects.toMatchObject({
        code: 'HASH_MISMATCH',
      });
      expect(await ep().stat('bad.bin')).toBeUndefined();
    });

    it('returns hashes in the order of the keys', async () => {
      await ctx.write('a', 'first');
      await ctx.write('b', 'second');
      const [a, b] = [hashBytes(utf8('first')), hashBytes(utf8('second'))];
      expect(await ep().hash(['b', 'a', 'b'])).toEqual([b, a, b]);
    });

    it('writes an empty file', async () => {
      const result = await ctx.write('empty', new Uint8Array(0), FILE);
      expect(result.hash).toBe(hashBytes(new Uint8Array(0)));
      expect(await ep().stat('empty')).toMatchObject({ kind: 'file', size: 0 });
      expect((await ctx.readAll('empty')).length).toBe(0);
      expect(await ep().hash(['empty'])).toEqual([hashBytes(new Uint8Array(0))]);
    });

    it('writes a 5 MiB file given in uneven pieces', async () => {
      const bytes = pattern(5 * 1024 * 1024, 2);
      const sizes = [1, 7, 4093, 65_537, 1_000_003, 3];
      const parts: Uint8Array[] = [];
      for (let at = 0, i = 0; at < bytes.length; i++) {
        const end = Math.min(bytes.length, at + sizes[i % sizes.length]!);
        parts.push(bytes.subarray(at, end));
        at = end;
      }
      const request = { key: 'big.bin', size: bytes.length, ...FILE };
      const result = await ep().write(request, chunks(parts));
      expect(result.hash).toBe(hashBytes(bytes));
      expect((await ep().stat('big.bin'))?.size).toBe(bytes.length);
      expectSame(await ctx.readAll('big.bin'), bytes);
    });

    it('replaces a file atomically: the old content stays visible until done', async () => {
      const old = pattern(10_000, 3);
      const next = pattern(20_000, 4);
      await ctx.write('f', old, FILE);
      const gate = deferred();
      const started = deferred();
      async function* slow(): AsyncIterable<Uint8Array> {
        yield next.subarray(0, 7_000);
        started.resolve();
        await gate.promise;
        yield next.subarray(7_000);
      }
      const meta = { mtimeMs: T2, mode: 0o600 };
      const request = { key: 'f', size: next.length, expectedHash: hashBytes(next), ...meta };
      const pending = ep().write(request, slow());
      try {
        await Promise.race([started.promise, pending]);
        expectSame(await ctx.readAll('f'), old);
        expect((await ep().stat('f'))?.size).toBe(old.length);
        expect(await keysOf()).toEqual(['f']);
      } finally {
        gate.resolve();
      }
      await pending;
      expectSame(await ctx.readAll('f'), next);
      expectMeta(await ep().stat('f'), meta);
      expect(await keysOf()).toEqual(['f']);
    });

    describe.each([
      [
        'a wrong expectedHash',
        (n: number) => ({ size: n, expectedHash: hashBytes(utf8('other')) }),
      ],
      ['a size too large', (n: number) => ({ size: n + 1 })],
      ['a size too small', (n: number) => ({ size: n - 1 })],
    ] as const)('rejects %s with HASH_MISMATCH', (_title, sizing) => {
      const attempt = (key: Key): Promise<unknown> => {
        const bytes = pattern(3_000, 5);
        const request: WriteRequest = { key, ...FILE, ...sizing(bytes.length) };
        return ep().write(request, chunks([bytes.subarray(0, 1000), bytes.subarray(1000)]));
      };

      it('and leaves nothing for a new key', async () => {
        await ctx.write('other', 'kept');
        await expect(attempt('new')).rejects.toMatchObject({ code: 'HASH_MISMATCH' });
        expect(await ep().stat('new')).toBeUndefined();
        expect(await keysOf()).toEqual(['other']);
      });

      it('and keeps the old content of an existing key', async () => {
        const old = pattern(500, 6);
        await ctx.write('f', old, FILE);
        await expect(attempt('f')).rejects.toMatchObject({ code: 'HASH_MISMATCH' });
        expectSame(await ctx.readAll('f'), old);
        expect(await ep().stat('f')).toMatchObject({ kind: 'file', size: old.length });
        expect(await keysOf()).toEqual(['f']);
      });
    });

    it('rejects a write with an aborted signal and leaves nothing', async () => {
      await ctx.write('f', 'old');
      const signal = AbortSignal.abort();
      const bytes = utf8('new content');
      for (const key of ['f', 'g']) {
        const request = { key, size: bytes.length, ...FILE };
        await expect(ep().write(request, chunks([bytes]), { signal })).rejects.toMatchObject({
          code: 'ABORTED',
        });
      }
      expect(new TextDecoder().decode(await ctx.readAll('f'))).toBe('old');
      expect(await keysOf()).toEqual(['f']);
    });

    it('creates directories idempotently and lists them empty', async () => {
      await ep().mkdir('d', DIR);
      const stat = await ep().stat('d');
      expect(stat).toMatchObject({ key: 'd', kind: 'dir', size: 0 });
      expectMeta(stat, DIR);
      await ep().mkdir('d', DIR);
      await ep().mkdir('p/q/r', DIR);
      const listed = await ctx.listAll();
      expect([...listed.keys()].sort()).toEqual(['d', 'p', 'p/q', 'p/q/r']);
      for (const entry of listed.values()) expect(entry).toMatchObject({ kind: 'dir', size: 0 });
    });

    it('creates parent directories of a written file', async () => {
      await ctx.write('x/y/z.txt', 'deep');
      const listed = await ctx.listAll();
      expect(listed.get('x')?.kind).toBe('dir');
      expect(listed.get('x/y')?.kind).toBe('dir');
      expect(listed.get('x/y/z.txt')).toMatchObject({ kind: 'file', size: 4 });
      expect(listed.size).toBe(3);
    });

    it('refuses to write over a directory or below a file', async () => {
      await ep().mkdir('d', DIR);
      await ctx.write('f', 'file');
      await expect(ctx.write('d', 'x')).rejects.toBeInstanceOf(TongbuError);
      await expect(ctx.write('f/below', 'x')).rejects.toBeInstanceOf(TongbuError);
      await expect(ep().mkdir('f', DIR)).rejects.toBeInstanceOf(TongbuError);
      expect((await ep().stat('d'))?.kind).toBe('dir');
      expect(new TextDecoder().decode(await ctx.readAll('f'))).toBe('file');
      expect(await keysOf()).toEqual(['d', 'f']);
    });

    it('stores symlinks byte-exact and never follows them', async (t) => {
      t.skip(!ep().capabilities.symlinks, 'the endpoint has no symlinks');
      const targets: Record<string, string> = {
        up: '../outside',
        abs: '/etc/passwd',
        odd: 'spa ce/tab\t/日本語/..',
        'in/dir': 'missing',
      };
      for (const [key, target] of Object.entries(targets)) await ep().symlink(key, target, FILE);
      const listed = await ctx.listAll();
      for (const [key, target] of Object.entries(targets)) {
        expect(listed.get(key)).toMatchObject({ kind: 'symlink', target, size: 0 });
        expect(await ep().stat(key)).toMatchObject({ kind: 'symlink', target, size: 0 });
        expectMtime(listed.get(key), FILE.mtimeMs);
      }
      expect(listed.get('in')?.kind).toBe('dir');
      await ep().symlink('up', '../elsewhere', FILE);
      expect((await ep().stat('up'))?.target).toBe('../elsewhere');
      const touched = await ep().setMeta('up', { ...FILE, mtimeMs: T2 });
      expect(touched).toMatchObject({ kind: 'symlink', target: '../elsewhere' });
      expectMtime(touched, T2);
      expect((await ctx.listAll()).size).toBe(5);
    });

    it('does not write or create directories through a symlink', async (t) => {
      t.skip(!ep().capabilities.symlinks, 'the endpoint has no symlinks');
      await ep().mkdir('real', DIR);
      await ep().symlink('link', 'real', FILE);
      await expect(ctx.write('link/f', 'x')).rejects.toBeInstanceOf(TongbuError);
      await expect(ep().mkdir('link/sub', DIR)).rejects.toBeInstanceOf(TongbuError);
      expect(await keysOf()).toEqual(['link', 'real']);
    });

    it('sets mode and mtime with setMeta', async () => {
      const bytes = pattern(1000, 7);
      await ctx.write('f', bytes, FILE);
      await ep().mkdir('d', DIR);
      const fileMeta = { mtimeMs: T2, mode: 0o604 };
      const dirMeta = { mtimeMs: T2, mode: 0o705 };
      expectMeta(await ep().setMeta('f', fileMeta), fileMeta);
      expectMeta(await ep().setMeta('d', dirMeta), dirMeta);
      expectMeta(await ep().stat('f'), fileMeta);
      expectMeta((await ctx.listAll()).get('d'), dirMeta);
      expectSame(await ctx.readAll('f'), bytes);
      await expect(ep().setMeta('missing', fileMeta)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('removes files, links and empty directories; absent is not an error', async () => {
      await ctx.write('d/f', 'x');
      await ctx.write('g', 'y');
      if (ep().capabilities.symlinks) await ep().symlink('l', 'g', FILE);
      await ep().remove('d/f', 'file');
      await ep().remove('d', 'dir');
      await ep().remove('g', 'file');
      if (ep().capabilities.symlinks) await ep().remove('l', 'symlink');
      expect(await keysOf()).toEqual([]);
      await ep().remove('g', 'file');
      await ep().remove('d', 'dir');
      await ep().remove('l', 'symlink');
      await ep().remove('never/was', 'file');
    });

    it('refuses to remove a non-empty directory or an entry of another kind', async () => {
      await ctx.write('d/f', 'x');
      await expect(ep().remove('d', 'dir')).rejects.toBeInstanceOf(TongbuError);
      await expect(ep().remove('d', 'file')).rejects.toBeInstanceOf(TongbuError);
      await expect(ep().remove('d/f', 'dir')).rejects.toBeInstanceOf(TongbuError);
      expect(await keysOf()).toEqual(['d', 'd/f']);
      expect(new TextDecoder().decode(await ctx.readAll('d/f'))).toBe('x');
    });

    it('reports a missing key: stat undefined, read and hash NOT_FOUND', async () => {
      expect(await ep().stat('missing')).toBeUndefined();
      await expect(ctx.readAll('missing')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(ep().hash(['missing'])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    nameTests(ctx);
  });
}

function context(ep: () => Endpoint): SuiteContext {
  return {
    endpoint: ep,
    write: (key, content, meta = {}) => {
      const bytes = typeof content === 'string' ? utf8(content) : content;
      const request = {
        key,
        size: bytes.length,
        expectedHash: hashBytes(bytes),
        mtimeMs: meta.mtimeMs ?? T1,
        mode: meta.mode ?? 0o644,
      };
      return ep().write(request, chunks([bytes]));
    },
    readAll: async (key) => {
      const parts: Uint8Array[] = [];
      for await (const part of ep().read(key)) parts.push(part);
      return Buffer.concat(parts);
    },
    listAll: async () => {
      const entries = new Map<Key, Entry>();
      for await (const batch of ep().list()) {
        for (const entry of batch) {
          expect(entries.has(entry.key), `${JSON.stringify(entry.key)} listed twice`).toBe(false);
          entries.set(entry.key, entry);
        }
      }
      return entries;
    },
  };
}

/** Compares bytes by length and hash: fast, and a short message on failure. */
function expectSame(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  expect(hashBytes(actual)).toBe(hashBytes(expected));
}

/** Deterministic pseudo-random bytes. */
function pattern(length: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = (seed * 2_654_435_761) >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
