import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ContentHash } from '../core/hash.js';
import type { Catalog } from './catalog.js';
import { PackChunkStore } from './pack-chunk-store.js';
import { SqliteCatalog } from './sqlite-catalog.js';
import type { StoredEntry } from './stored-entry.js';
import { Store, type CommitResult } from './store.js';

const dirs: string[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** One writer process's view: its own chunk store handle and catalog connection on shared files. */
function writer(dir: string, countReads?: { getRef: number }): Store {
  const chunks = PackChunkStore.open(join(dir, 'chunks'));
  const catalog = SqliteCatalog.open(join(dir, 'catalog.db'));
  closers.push(async () => {
    chunks.close();
    await catalog.close();
  });
  if (!countReads) return new Store(chunks, catalog);
  const counted = new Proxy(catalog, {
    get(target, prop, receiver) {
      if (prop === 'getRef') countReads.getRef++;
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  }) as Catalog;
  return new Store(chunks, counted);
}

/** Commits one new file `key` (content: the key) to namespace `ns`, from `base`. */
async function addFile(store: Store, key: string, base?: ContentHash): Promise<CommitResult> {
  const hash = await store.chunks.put(Buffer.from(key));
  const entry: StoredEntry = {
    kind: 'file',
    size: key.length,
    mtimeMs: 0,
    mode: 0o644,
    hash,
    parts: 1,
    data: hash,
  };
  return store.commit({ namespace: 'ns', ...(base ? { base } : {}), changes: [{ key, entry }] });
}

function freshDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tongbu-store-'));
  dirs.push(dir);
  return dir;
}

async function keys(store: Store, commit: ContentHash): Promise<string[]> {
  const { root } = await store.readCommit(commit);
  const found: string[] = [];
  for (const key of ['a', 'b', 'c']) if (await store.getEntry(root, key)) found.push(key);
  return found;
}

describe('Store commits', () => {
  it('a second commit to a branch starts from the head it wrote, without reading the ref', async () => {
    const reads = { getRef: 0 };
    const store = writer(freshDir(), reads);
    const first = await addFile(store, 'a');
    const readsBefore = reads.getRef;
    const second = await addFile(store, 'b', first.commit);
    expect(reads.getRef).toBe(readsBefore);
    expect(second.parent).toBe(first.commit);
    expect((await store.head('ns'))?.commit).toBe(second.commit);
  });

  it('a head moved by another writer since is found, and both changes land', async () => {
    const dir = freshDir();
    const one = writer(dir);
    const two = writer(dir);
    const first = await addFile(one, 'a');
    const theirs = await addFile(two, 'b', first.commit);
    // `one` remembers `first` as the head; its compare-and-swap fails, and it merges onto `theirs`.
    const ours = await addFile(one, 'c', first.commit);
    expect(ours.merged).toBe(true);
    expect(ours.parent).toBe(theirs.commit);
    expect(await keys(one, ours.commit)).toEqual(['a', 'b', 'c']);
    expect((await two.head('ns'))?.commit).toBe(ours.commit);
  });
});
