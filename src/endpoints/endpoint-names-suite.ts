/**
 * The part of the endpoint conformance suite about keys: odd but valid names
 * round trip exactly, invalid keys are refused before touching anything, and
 * a large listing returns each entry once. `runEndpointSuite` calls it.
 */
import { expect, it } from 'vitest';
import { hashBytes } from '../core/hash.js';
import type { Key } from '../core/key.js';
import type { Endpoint, Entry, EntryMeta, WriteResult } from './endpoint.js';

/** What the suite's parts share: the endpoint under test and helpers on it. */
export interface SuiteContext {
  /** The endpoint of the running test, opened with `create: true`. */
  endpoint(): Endpoint;
  /** Writes `content` as a file, with its size and hash declared. */
  write(key: Key, content: Uint8Array | string, meta?: Partial<EntryMeta>): Promise<WriteResult>;
  /** The content of a file, concatenated. */
  readAll(key: Key): Promise<Uint8Array>;
  /** Every listed entry by key; fails the test when a key is listed twice. */
  listAll(): Promise<Map<Key, Entry>>;
}

const ODD_NAMES: readonly string[] = [
  'tab\there',
  'back\\slash',
  'spa ce',
  ' leading and trailing ',
  'new\nline',
  '-dash',
  '.hidden',
  'quote"and\'apostrophe',
  'emoji 🙂',
  '日本語/ファイル.bin',
  'n'.repeat(200),
  Array.from({ length: 30 }, (_, i) => `level${i}`).join('/') + '/leaf',
];

const BAD_KEYS: readonly string[] = ['../x', '/abs', 'a//b', 'a/./b', 'nul\0', '', 'a/', '\uD800'];

const META: EntryMeta = { mtimeMs: 1_600_000_000_000, mode: 0o644 };

export function nameTests(ctx: SuiteContext): void {
  it.each(ODD_NAMES.map((name) => [JSON.stringify(name), name] as const))(
    'round trips the key %s exactly',
    async (_title, key) => {
      const written = await ctx.write(key, `content of ${key}`);
      expect(written.entry.key).toBe(key);
      expect((await ctx.endpoint().stat(key))?.kind).toBe('file');
      expect(new TextDecoder().decode(await ctx.readAll(key))).toBe(`content of ${key}`);
      const listed = await ctx.listAll();
      expect(listed.get(key)?.kind).toBe('file');
      const parents = key.split('/').length - 1;
      expect(listed.size).toBe(parents + 1);
    },
  );

  it('keeps every odd name distinct when written together', async () => {
    for (const key of ODD_NAMES) await ctx.write(key, key);
    const listed = await ctx.listAll();
    for (const key of ODD_NAMES) {
      expect(listed.get(key)?.size).toBe(new TextEncoder().encode(key).length);
    }
  });

  it('keeps an NFC name and its NFD form as two keys (nameFolding none)', async (t) => {
    t.skip(ctx.endpoint().capabilities.nameFolding !== 'none', 'the endpoint folds names');
    const nfc = 'ünïcödé.txt'.normalize('NFC');
    const nfd = nfc.normalize('NFD');
    expect(nfc).not.toBe(nfd);
    await ctx.write(nfc, 'composed');
    await ctx.write(nfd, 'decomposed');
    const listed = await ctx.listAll();
    expect([...listed.keys()].sort()).toEqual([nfc, nfd].sort());
    expect(new TextDecoder().decode(await ctx.readAll(nfc))).toBe('composed');
    expect(new TextDecoder().decode(await ctx.readAll(nfd))).toBe('decomposed');
  });

  it.each(BAD_KEYS.map((key) => [JSON.stringify(key), key] as const))(
    'refuses the invalid key %s with BAD_KEY',
    async (_title, key) => {
      const ep = ctx.endpoint();
      const content = new TextEncoder().encode('x');
      const request = { key, size: 1, expectedHash: hashBytes(content), ...META };
      await expect(ep.write(request, chunks([content]))).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ep.mkdir(key, META)).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ep.stat(key)).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ctx.readAll(key)).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ep.hash([key])).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ep.setMeta(key, META)).rejects.toMatchObject({ code: 'BAD_KEY' });
      await expect(ep.remove(key, 'file')).rejects.toMatchObject({ code: 'BAD_KEY' });
      if (ep.capabilities.symlinks) {
        await expect(ep.symlink(key, 'target', META)).rejects.toMatchObject({ code: 'BAD_KEY' });
      }
      expect((await ctx.listAll()).size).toBe(0);
    },
  );

  it('lists 1,000 files each exactly once', async () => {
    const keys = Array.from({ length: 1000 }, (_, i) => `many/${i % 10}/file-${i}`);
    for (let i = 0; i < keys.length; i += 50) {
      await Promise.all(keys.slice(i, i + 50).map((key) => ctx.write(key, key)));
    }
    const listed = await ctx.listAll();
    for (const key of keys) expect(listed.get(key)?.kind).toBe('file');
    const dirs = [...listed.values()].filter((e) => e.kind === 'dir').map((e) => e.key);
    expect(dirs.sort()).toEqual(['many', ...Array.from({ length: 10 }, (_, i) => `many/${i}`)]);
    expect(listed.size).toBe(1011);
  });
}

/** An async iterable over `parts`. */
export async function* chunks(parts: Iterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for (const part of parts) {
    await Promise.resolve();
    yield part;
  }
}
