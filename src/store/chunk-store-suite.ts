/**
 * The conformance suite every ChunkStore passes: `runChunkStoreSuite(name,
 * factory)` inside a test file. Each test gets a fresh temporary directory;
 * the factory opens a store there (again after a close, to show what
 * survives) and damages one stored copy on request.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTongbuError } from '../core/errors.js';
import { storeAddress, type ContentHash } from '../core/hash.js';
import { MAX_OBJECT_BYTES, type ChunkStore } from './chunk-store.js';

export interface ChunkStoreFactory<S extends ChunkStore> {
  open(dir: string): S;
  /** Flips one byte of the stored copy of `hash`, behind the store's back. */
  corrupt(store: S, hash: ContentHash): void;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The error code a call throws, or 'none'. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'none';
  } catch (err) {
    return isTongbuError(err) ? err.code : String(err);
  }
}

export function runChunkStoreSuite<S extends ChunkStore>(
  name: string,
  factory: ChunkStoreFactory<S>,
): void {
  describe(`ChunkStore conformance: ${name}`, () => {
    let dir: string;
    let opened: S[];

    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'tongbu-'));
      opened = [];
    });

    afterEach(() => {
      for (const s of opened) s.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const open = (): S => {
      const store = factory.open(dir);
      opened.push(store);
      return store;
    };
    const reopen = (store: S): S => {
      store.close();
      opened = opened.filter((s) => s !== store);
      return open();
    };
    const mtimeOf = (store: S, hash: ContentHash): number | undefined =>
      [...store.entries()].find((e) => e.hash === hash)?.mtimeMs;

    it('reads back what it stores, verified', async () => {
      const store = open();
      for (const size of [0, 1, 16 * 1024, 64 * 1024 + 7, 256 * 1024]) {
        const bytes = randomBytes(size);
        const hash = await store.put(bytes);
        expect(hash).toBe(storeAddress(bytes));
        expect(await store.has(hash)).toBe(true);
        expect(Buffer.from(await store.get(hash)).equals(bytes)).toBe(true);
        expect(store.getSync(hash).equals(bytes)).toBe(true);
      }
      const absent = storeAddress(Buffer.from('never stored'));
      expect(await store.has(absent)).toBe(false);
      expect(codeOf(() => store.getSync(absent))).toBe('NOT_FOUND');
      expect(codeOf(() => store.getSync('sha256:xyz'))).toBe('BAD_ARGUMENT');
    });

    it('stores one copy however often the same bytes are put', () => {
      const store = open();
      const bytes = randomBytes(4096);
      const first = store.putSync(bytes);
      expect(store.putSync(bytes, first)).toBe(first);
      store.storeChecked(bytes, first);
      expect(store.stats()).toEqual({ objects: 1, bytes: 4096 });
      expect([...store.entries()].map((e) => e.hash)).toEqual([first]);
    });

    it('stores nothing when the bytes do not hash to the expected hash', async () => {
      const store = open();
      const bytes = randomBytes(1000);
      const wrong = storeAddress(Buffer.from('something else'));
      // (awaited inside an async function: FileChunkStore.put throws instead of rejecting)
      await expect((async () => store.put(bytes, wrong))()).rejects.toMatchObject({
        code: 'HASH_MISMATCH',
        retryable: false,
      });
      expect(await store.has(storeAddress(bytes))).toBe(false);
      expect(await store.has(wrong)).toBe(false);
      expect(store.stats()).toEqual({ objects: 0, bytes: 0 });
    });

    it('refuses an object over the size limit', () => {
      const store = open();
      expect(codeOf(() => store.checkBytes(Buffer.alloc(MAX_OBJECT_BYTES + 1)))).toBe('TOO_LARGE');
      expect(store.stats().objects).toBe(0);
    });

    it('missing() lists only the absent hashes and touches the present ones', async () => {
      const store = open();
      const a = store.putSync(randomBytes(100));
      const b = store.putSync(randomBytes(100));
      const absent = [storeAddress(Buffer.from('x')), storeAddress(Buffer.from('y'))];
      const before = mtimeOf(store, a)!;
      await sleep(20);
      expect(store.missing([absent[0]!, a, absent[1]!, b])).toEqual(absent);
      expect(mtimeOf(store, a)).toBeGreaterThan(before);
      const touched = mtimeOf(store, b)!;
      await sleep(20);
      store.putSync(store.getSync(b)); // a repeated put touches too
      expect(mtimeOf(store, b)).toBeGreaterThan(touched);
      if (store.lacking) {
        const seen = mtimeOf(store, a)!;
        await sleep(20);
        expect(store.lacking([absent[0]!, a, absent[1]!, b])).toEqual(absent);
        expect(mtimeOf(store, a)).toBe(seen);
      }
    });

    it('forgets a removed object, and stores it again on request', async () => {
      const store = open();
      const bytes = randomBytes(2000);
      const hash = store.putSync(bytes);
      store.remove(hash);
      store.remove(hash); // absent: a no-op
      expect(codeOf(() => store.getSync(hash))).toBe('NOT_FOUND');
      expect(await store.has(hash)).toBe(false);
      expect(store.missing([hash])).toEqual([hash]);
      expect(store.stats()).toEqual({ objects: 0, bytes: 0 });
      store.putSync(bytes);
      expect(store.getSync(hash).equals(bytes)).toBe(true);
    });

    it('lists the objects it holds, in agreement with stats()', () => {
      const store = open();
      const sizes = new Map<ContentHash, number>();
      for (let i = 0; i < 50; i++) {
        const bytes = randomBytes(100 + i * 37);
        sizes.set(store.putSync(bytes), bytes.length);
      }
      const listed = new Map([...store.entries()].map((e) => [e.hash, e.size]));
      expect(listed).toEqual(sizes);
      const total = [...sizes.values()].reduce((a, b) => a + b, 0);
      expect(store.stats()).toEqual({ objects: 50, bytes: total });
      const [gone] = sizes.keys();
      store.remove(gone!);
      expect(store.stats()).toEqual({ objects: 49, bytes: total - sizes.get(gone!)! });
      expect([...store.entries()].length).toBe(49);
    });

    it('lets a collector remove objects while it iterates them', () => {
      const store = open();
      for (let i = 0; i < 30; i++) store.putSync(randomBytes(64));
      let seen = 0;
      for (const e of store.entries()) {
        seen++;
        store.remove(e.hash);
      }
      expect(seen).toBe(30);
      expect([...store.entries()]).toEqual([]);
      expect(store.stats()).toEqual({ objects: 0, bytes: 0 });
    });

    it('keeps synced and unsynced writes across a close and reopen', async () => {
      let store = open();
      const synced = [randomBytes(3000), randomBytes(5000)];
      const later = [randomBytes(7000)];
      for (const b of synced) store.putSync(b);
      await store.sync();
      for (const b of later) store.putSync(b);
      store = reopen(store);
      for (const b of [...synced, ...later]) {
        expect(store.getSync(storeAddress(b)).equals(b)).toBe(true);
      }
      expect(store.stats()).toEqual({ objects: 3, bytes: 15000 });
    });

    it('reports a damaged copy as HASH_MISMATCH, not retryable', () => {
      const store = open();
      const hash = store.putSync(randomBytes(10_000));
      factory.corrupt(store, hash);
      let error: unknown;
      try {
        store.getSync(hash);
      } catch (err) {
        error = err;
      }
      expect(error).toMatchObject({ code: 'HASH_MISMATCH', retryable: false });
    });

    it('recover() after an unclean stop drops the damaged objects and keeps the good ones', async () => {
      let store = open();
      const good = [randomBytes(4000), randomBytes(4000)];
      for (const b of good) store.putSync(b);
      await store.sync();
      const late = randomBytes(4000);
      const torn = randomBytes(4000);
      store.putSync(late);
      const tornHash = store.putSync(torn);
      factory.corrupt(store, tornHash); // as a machine crash before the next sync may leave it
      store = reopen(store);
      const { checked, removed } = store.recover();
      expect(removed).toEqual([tornHash]);
      expect(checked).toBeGreaterThanOrEqual(2);
      for (const b of [...good, late]) expect(store.getSync(storeAddress(b)).equals(b)).toBe(true);
      expect(codeOf(() => store.getSync(tornHash))).toBe('NOT_FOUND');
      expect(store.missing([tornHash])).toEqual([tornHash]);
      expect(store.stats().objects).toBe(3);
    });
  });
}
