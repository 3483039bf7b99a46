import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { storeAddress, type ContentHash } from '../core/hash.js';
import { writeTsChildScript } from '../test-support/ts-child.js';
import { PackChunkStore, type PackChunkStoreOptions } from './pack-chunk-store.js';

const KiB = 1024;

describe('PackChunkStore', () => {
  let dir: string;
  let opened: PackChunkStore[];

  beforeEach(() => {
    dir = fs.mkdtempSync(join(tmpdir(), 'tongbu-'));
    opened = [];
  });

  afterEach(() => {
    for (const s of opened) s.close();
    rmrf(dir);
  });

  const open = (options: PackChunkStoreOptions = {}): PackChunkStore => {
    const store = PackChunkStore.open(dir, options);
    opened.push(store);
    return store;
  };
  const packs = (): { name: string; size: number }[] =>
    fs
      .readdirSync(join(dir, 'packs'))
      .filter((n) => n.endsWith('.dat'))
      .sort()
      .map((name) => ({ name, size: fs.statSync(join(dir, 'packs', name)).size }));
  const packBytesOnDisk = (): number => packs().reduce((sum, p) => sum + p.size, 0);
  const expectAllReadable = (store: PackChunkStore, objects: Map<ContentHash, Buffer>): void => {
    for (const [hash, bytes] of objects) expect(store.getSync(hash).equals(bytes)).toBe(true);
  };

  it('a gc in another process sees the touches of missing(): what an upload was told is there stays', async () => {
    const server = open();
    const asked = server.putSync(randomBytes(4 * KiB));
    const forgotten = server.putSync(randomBytes(4 * KiB));
    server.close();
    const node = open();
    await new Promise((r) => setTimeout(r, 20));
    const cutoff = Date.now();
    expect(node.missing([asked])).toEqual([]);
    // A second process (the `tongbu gc` command) removes what was untouched since the cutoff.
    const gc = open();
    const seen = new Map([...gc.entries()].map((e) => [e.hash, e.mtimeMs]));
    expect(seen.get(asked)).toBeGreaterThanOrEqual(cutoff);
    expect(seen.get(forgotten)).toBeLessThan(cutoff);
    gc.remove(asked, cutoff);
    gc.remove(forgotten, cutoff);
    expect(await gc.has(asked)).toBe(true);
    expect(await gc.has(forgotten)).toBe(false);
    // A touch logged after the gc read its entries still wins over the removal.
    const later = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    expect(node.missing([asked])).toEqual([]);
    gc.remove(asked, later);
    expect(await node.has(asked)).toBe(true);
  });

  it('appends objects to a pack indexed in packs/index.db', () => {
    const store = open();
    const bytes = randomBytes(64 * KiB);
    const hash = store.putSync(bytes);
    expect(packs()).toEqual([{ name: 'pack-00000001.dat', size: 64 * KiB }]);
    expect(fs.existsSync(join(dir, 'packs', 'index.db'))).toBe(true);
    expect(store.location(hash)).toMatchObject({ pack: 1, offset: 0, length: 64 * KiB });
  });

  it('starts a new pack when the current one would pass the size limit', () => {
    let store = open({ packBytes: 200 * KiB });
    const objects = new Map<ContentHash, Buffer>();
    for (let i = 0; i < 10; i++) {
      const bytes = randomBytes(64 * KiB);
      objects.set(store.putSync(bytes), bytes);
    }
    expect(packs().map((p) => p.size)).toEqual([192, 192, 192, 64].map((k) => k * KiB));
    expectAllReadable(store, objects);
    store.close();
    store = open({ packBytes: 200 * KiB });
    expectAllReadable(store, objects);
    store.putSync(randomBytes(KiB)); // a new writer claims a fresh pack
    expect(
      packs()
        .map((p) => p.name)
        .at(-1),
    ).toBe('pack-00000005.dat');
  });

  it('never interleaves two writers in one pack', () => {
    const a = open();
    const b = open();
    const objects = new Map<ContentHash, Buffer>();
    for (let i = 0; i < 20; i++) {
      for (const store of [a, b]) {
        const bytes = randomBytes(1000 + i);
        objects.set(store.putSync(bytes), bytes);
      }
    }
    a.close();
    b.close();
    expect(packs().length).toBe(2);
    expectAllReadable(open(), objects);
  });

  it('compact() rewrites sparse packs, reclaims their space and keeps every live object', async () => {
    const store = open({ packBytes: 256 * KiB });
    const live = new Map<ContentHash, Buffer>();
    const removed: ContentHash[] = [];
    for (let i = 0; i < 32; i++) {
      const bytes = randomBytes(32 * KiB);
      const hash = store.putSync(bytes);
      // the first half of the packs loses 3 objects in 4, the second half keeps all
      if (i < 16 && i % 4 !== 0) removed.push(hash);
      else live.set(hash, bytes);
    }
    for (const h of removed) store.remove(h);
    const before = packBytesOnDisk();
    const report = await store.compact({ quietMs: 0 });
    expect(report).toEqual({
      packsRewritten: 2,
      bytesReclaimed: removed.length * 32 * KiB,
      damaged: [],
    });
    expect(packBytesOnDisk()).toBe(before - report.bytesReclaimed);
    expect(packs().map((p) => p.name)).not.toContain('pack-00000001.dat');
    expectAllReadable(store, live);
    for (const h of removed) expect(await store.has(h)).toBe(false);
    expect(store.stats()).toEqual({ objects: live.size, bytes: live.size * 32 * KiB });
    expect((await store.compact({ quietMs: 0 })).packsRewritten).toBe(0);
    store.close();
    expectAllReadable(open(), live);
  });

  it('compact() leaves recently written packs alone by default', async () => {
    const store = open({ packBytes: 64 * KiB });
    const hashes = [0, 1, 2].map(() => store.putSync(randomBytes(64 * KiB)));
    store.remove(hashes[0]!);
    expect((await store.compact()).packsRewritten).toBe(0);
    expect((await store.compact({ quietMs: 0 })).packsRewritten).toBe(1);
  });

  it('compact() drops the objects it finds damaged instead of copying them', async () => {
    const store = open({ packBytes: 64 * KiB });
    const [gone, damaged] = [0, 1].map(() => store.putSync(randomBytes(16 * KiB)));
    const kept = randomBytes(16 * KiB);
    store.putSync(kept);
    store.putSync(randomBytes(64 * KiB)); // the next pack
    store.remove(gone!);
    store.remove(storeAddress(kept));
    const at = store.location(damaged!)!;
    flipByte(at.path, at.offset);
    const report = await store.compact({ quietMs: 0 });
    expect(report.damaged).toEqual([damaged]);
    expect(await store.has(damaged!)).toBe(false);
    expect(store.stats().objects).toBe(1);
  });

  it('drops on open the rows that point past the end of their pack', () => {
    let store = open();
    const first = randomBytes(10 * KiB);
    store.putSync(first);
    const cut = store.putSync(randomBytes(10 * KiB));
    store.close();
    fs.truncateSync(join(dir, 'packs', 'pack-00000001.dat'), 15 * KiB);
    store = open();
    expect(store.getSync(storeAddress(first)).equals(first)).toBe(true);
    expect(store.missing([cut])).toEqual([cut]);
    expect(store.stats()).toEqual({ objects: 1, bytes: 10 * KiB });
  });

  it('recover() re-hashes only what was written since the last sync', async () => {
    let store = open();
    for (let i = 0; i < 5; i++) store.putSync(randomBytes(1000));
    await store.sync();
    for (let i = 0; i < 3; i++) store.putSync(randomBytes(1000));
    store.close();
    store = open();
    expect(store.recover()).toEqual({ checked: 3, removed: [] });
    await store.sync(); // covers the previous session's unsynced pack too
    store.close();
    expect(open().recover()).toEqual({ checked: 0, removed: [] });
  });

  it('commits waiting rows within about a second, where another connection sees them', async () => {
    const writer = open();
    const hash = writer.putSync(randomBytes(1000));
    expect(await open().has(hash)).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(await open().has(hash)).toBe(true);
  });

  it('batches many writes and removals, and syncs while writes go on', async () => {
    const store = open();
    const hashes: ContentHash[] = [];
    for (let i = 0; i < 2500; i++) hashes.push(store.putSync(Buffer.from(`object ${i}`)));
    const first = store.sync();
    store.putSync(Buffer.from('written during a sync'));
    const second = store.sync();
    await Promise.all([first, second]);
    for (const h of hashes.slice(0, 1200)) store.remove(h);
    const other = open(); // another instance sees the batches committed so far
    expect(other.stats().objects).toBeLessThanOrEqual(2501 - 1000);
    store.close();
    expect(other.stats().objects).toBe(2501 - 1200); // recounted after the other's commit
    expect(other.recover()).toEqual({ checked: 0, removed: [] });
    expect(other.missing(hashes)).toEqual(hashes.slice(0, 1200));
  });

  it('a writer that ends without close() or sync() loses nothing', async () => {
    const run = await runWriter(dir, 'exit');
    expect(run).toMatchObject({ code: 0, signal: null });
    const store = open();
    const hashes = Array.from({ length: 100 }, (_, i) => storeAddress(writerChunk(i)));
    expect(store.missing(hashes)).toEqual(hashes.slice(0, 10));
    for (let i = 10; i < 100; i++)
      expect(store.getSync(hashes[i]!).equals(writerChunk(i))).toBe(true);
  });

  it('a writer killed with SIGKILL mid-write leaves a store that reopens with every synced object intact', async () => {
    const run = await runWriter(dir, 'loop', 512);
    expect(run).toMatchObject({ signal: 'SIGKILL' });
    expect(run.synced).toBeGreaterThanOrEqual(512);
    const store = open();
    store.recover();
    for (let i = 0; i < run.synced; i++) {
      const bytes = writerChunk(i);
      expect(store.getSync(storeAddress(bytes)).equals(bytes)).toBe(true);
    }
    let listed = 0;
    for (const e of store.entries()) {
      expect(storeAddress(store.getSync(e.hash))).toBe(e.hash);
      listed++;
    }
    expect(listed).toBeGreaterThanOrEqual(run.synced);
    expect(store.stats().objects).toBe(listed);
  });
});

// The writer: a real `node` process running the TypeScript source through a
// module hook that transpiles it with the project's typescript. In mode
// `loop` it writes chunk after chunk and prints `synced N` after each sync
// (every 64); in mode `exit` it writes 100, removes the first 10 and ends.

/** Chunk i of the writer: 16 to 64 KiB of a pattern that names it (its source is sent to the child). */
const writerChunk = (i: number): Buffer =>
  Buffer.alloc(16384 + ((i * 7919) % 49152), `chunk ${i} `);

const WRITER = `
const { PackChunkStore } = await import(${JSON.stringify(new URL('./pack-chunk-store.ts', import.meta.url).href)});
const chunk = ${writerChunk.toString()};
const [dir, mode] = process.argv.slice(2);
const store = PackChunkStore.open(dir, { packBytes: 4 * 1024 * 1024 });
if (mode === 'exit') {
  const hashes = [];
  for (let i = 0; i < 100; i++) hashes.push(store.putSync(chunk(i)));
  for (let i = 0; i < 10; i++) store.remove(hashes[i]);
} else {
  for (let i = 0; ; i++) {
    store.putSync(chunk(i));
    if (i % 64 === 63) {
      await store.sync();
      process.stdout.write('synced ' + (i + 1) + '\\n');
    }
  }
}
`;

/** Runs the writer to its end, or kills it with SIGKILL once it has synced `killAfterSynced` chunks. */
async function runWriter(
  dataDir: string,
  mode: 'loop' | 'exit',
  killAfterSynced = Infinity,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; synced: number; stderr: string }> {
  const scripts = fs.mkdtempSync(join(tmpdir(), 'tongbu-writer-'));
  const writer = writeTsChildScript(scripts, 'writer.mjs', WRITER);
  const child = spawn(process.execPath, [writer, dataDir, mode], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const deadline = setTimeout(() => child.kill('SIGKILL'), 30_000);
  let synced = 0;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    for (const m of d.toString().matchAll(/synced (\d+)/g)) synced = Number(m[1]);
    if (synced >= killAfterSynced) child.kill('SIGKILL');
  });
  try {
    const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
    return { code, signal, synced, stderr };
  } finally {
    clearTimeout(deadline);
    child.kill('SIGKILL');
    rmrf(scripts);
  }
}

function flipByte(path: string, offset: number): void {
  const fd = fs.openSync(path, 'r+');
  try {
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, offset);
    byte[0] = byte[0]! ^ 0xff;
    fs.writeSync(fd, byte, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

function rmrf(path: string): void {
  fs.rmSync(path, { recursive: true, force: true });
}
