import { describe, expect, it } from 'vitest';
import { TongbuError } from '../../core/errors.js';
import { hashBytes } from '../../core/hash.js';
import type { Key } from '../../core/key.js';
import type { Endpoint, EntryMeta } from '../endpoint.js';
import { runEndpointSuite } from '../endpoint-suite.js';
import { createMemoryEndpoint, type MemoryEndpointOptions } from './memory-endpoint.js';

runEndpointSuite('memory', () =>
  Promise.resolve({ endpoint: createMemoryEndpoint(), cleanup: () => Promise.resolve() }),
);

const META: EntryMeta = { mtimeMs: 1_000, mode: 0o644 };
const NOW = 9_000;

function store(options: MemoryEndpointOptions = {}) {
  return createMemoryEndpoint({ now: () => NOW, ...options });
}

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) {
    await Promise.resolve();
    yield part;
  }
}

function write(ep: Endpoint, key: Key, text: string, meta: EntryMeta = META) {
  const bytes = new TextEncoder().encode(text);
  return ep.write({ key, size: bytes.length, ...meta }, chunks(bytes));
}

async function readText(ep: Endpoint, key: Key): Promise<string> {
  const parts: Uint8Array[] = [];
  for await (const part of ep.read(key)) parts.push(part);
  return Buffer.concat(parts).toString('utf8');
}

async function listedKeys(ep: Endpoint): Promise<Key[]> {
  const keys: Key[] = [];
  for await (const batch of ep.list()) keys.push(...batch.map((e) => e.key));
  return keys.sort();
}

describe('memory endpoint: existence', () => {
  it('refuses to open a missing source, naming it, and creates a destination', async () => {
    const ep = store({ url: 'memory://missing', exists: false });
    const opening = ep.open({ create: false });
    await expect(opening).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND' });
    await expect(opening).rejects.toThrow('memory://missing');
    await expect(ep.stat('a')).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND' });
    await ep.open({ create: true });
    expect(await listedKeys(ep)).toEqual([]);
    await ep.open({ create: false });
  });

  it('declares its capabilities', () => {
    expect(store({ nameFolding: 'nfc' }).capabilities).toEqual({
      listedHashes: [],
      mtimePrecisionMs: 0.001,
      symlinks: true,
      emptyDirs: true,
      modes: true,
      nameFolding: 'nfc',
      localPath: false,
      localCopy: false,
      atomicCommit: false,
      dedupWrites: false,
    });
    expect(store().capabilities.nameFolding).toBe('none');
  });
});

describe('memory endpoint: name folding', () => {
  const nfc = 'café/ünï.txt'.normalize('NFC');
  const nfd = nfc.normalize('NFD');

  it('stores an NFD name as NFC when folding nfc, as a normalizing destination would', async () => {
    const ep = store({ nameFolding: 'nfc' });
    const result = await write(ep, nfd, 'one');
    expect(result.entry.key).toBe(nfc);
    expect(await listedKeys(ep)).toEqual(['café'.normalize('NFC'), nfc]);
    expect((await ep.stat(nfd))?.key).toBe(nfc);
    await write(ep, nfc, 'two');
    expect(await listedKeys(ep)).toEqual(['café'.normalize('NFC'), nfc]);
    expect(await readText(ep, nfd)).toBe('two');
  });

  it('keeps both forms apart without folding', async () => {
    const ep = store();
    await write(ep, nfd, 'one');
    await write(ep, nfc, 'two');
    expect((await listedKeys(ep)).length).toBe(4);
  });

  it('keeps the first spelling and matches any case when folding nfc-casefold', async () => {
    const ep = store({ nameFolding: 'nfc-casefold' });
    await write(ep, 'Docs/README', 'one');
    const result = await write(ep, 'docs/readme', 'two');
    expect(result.entry.key).toBe('Docs/README');
    await write(ep, 'DOCS/other', 'three');
    expect(await listedKeys(ep)).toEqual(['Docs', 'Docs/README', 'Docs/other']);
    expect(await readText(ep, 'docs/README')).toBe('two');
  });
});

describe('memory endpoint: injected failures', () => {
  it('fails a write as told and leaves the old content', async () => {
    let attempts = 0;
    const ep = store({
      failures: {
        write: (key) => (key === 'f' && ++attempts === 2 ? new Error('disk') : undefined),
      },
    });
    await write(ep, 'f', 'old');
    await expect(write(ep, 'f', 'new')).rejects.toThrow('disk');
    expect(await readText(ep, 'f')).toBe('old');
    await expect(write(ep, 'g/h', 'x')).resolves.toBeDefined();
    await write(ep, 'f', 'retried');
    expect(await readText(ep, 'f')).toBe('retried');
    expect(await listedKeys(ep)).toEqual(['f', 'g', 'g/h']);
  });

  it('fails a read part-way through, and a hash', async () => {
    const failure = new TongbuError('IO', 'flipped bit');
    const ep = store({ failures: { read: (key) => (key === 'bad' ? failure : undefined) } });
    ep.put('bad', '0123456789');
    ep.put('good', 'fine');
    const parts: Uint8Array[] = [];
    await expect(
      (async () => {
        for await (const part of ep.read('bad')) parts.push(part);
      })(),
    ).rejects.toBe(failure);
    expect(Buffer.concat(parts).toString()).toBe('01234');
    await expect(ep.hash(['good', 'bad'])).rejects.toBe(failure);
    expect(await ep.hash(['good'])).toEqual([hashBytes(new TextEncoder().encode('fine'))]);
  });
});

describe('memory endpoint: seeding and snapshots', () => {
  it('seeds files, dirs and links with implied parents, and snapshots them sorted', () => {
    const ep = store();
    ep.put('a/b/c.txt', 'abc', { mtimeMs: 5, mode: 0o600 });
    ep.putDir('a/empty', { mtimeMs: 6 });
    ep.putLink('a/link', '../../outside');
    const snap = ep.snapshot();
    expect([...snap.keys()]).toEqual(['a', 'a/b', 'a/b/c.txt', 'a/empty', 'a/link']);
    expect(snap.get('a')?.entry).toMatchObject({ kind: 'dir', mode: 0o755, mtimeMs: NOW });
    expect(snap.get('a/b/c.txt')?.entry).toMatchObject({ size: 3, mtimeMs: 5, mode: 0o600 });
    expect(Buffer.from(snap.get('a/b/c.txt')!.bytes).toString()).toBe('abc');
    expect(snap.get('a/empty')?.entry).toMatchObject({ kind: 'dir', mode: 0o755, mtimeMs: 6 });
    expect(snap.get('a/link')?.entry).toMatchObject({ kind: 'symlink', target: '../../outside' });
    snap.get('a/b/c.txt')!.bytes.fill(0);
    expect(Buffer.from(ep.snapshot().get('a/b/c.txt')!.bytes).toString()).toBe('abc');
  });

  it('refuses to seed below a file or a link', () => {
    const ep = store();
    ep.put('f', 'x');
    ep.putLink('l', 'f');
    expect(() => ep.put('f/g', 'x')).toThrow(TongbuError);
    expect(() => ep.putDir('l/d')).toThrow(TongbuError);
    expect(() => ep.put('../x', 'x')).toThrow(TongbuError);
  });
});

describe('memory endpoint: filesystem-like behaviour', () => {
  it('sets a directory mtime to now when a child is added or removed', async () => {
    const ep = store();
    ep.putDir('d', { mtimeMs: 1 });
    ep.put('d/seeded', 'x');
    expect((await ep.stat('d'))?.mtimeMs).toBe(1);
    await write(ep, 'd/f', 'x');
    expect((await ep.stat('d'))?.mtimeMs).toBe(NOW);
    await ep.setMeta('d', { mtimeMs: 2, mode: 0o755 });
    await ep.setMeta('d/f', { mtimeMs: 3, mode: 0o600 });
    expect((await ep.stat('d'))?.mtimeMs).toBe(2);
    await ep.remove('d/f', 'file');
    expect((await ep.stat('d'))?.mtimeMs).toBe(NOW);
  });

  it('names the key in its errors, with the codes the contract implies', async () => {
    const ep = store();
    await write(ep, 'f', 'x');
    await ep.mkdir('d/e', META);
    await expect(write(ep, 'f/g', 'x')).rejects.toMatchObject({ code: 'NOT_A_DIRECTORY' });
    await expect(write(ep, 'd', 'x')).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(ep.remove('d', 'dir')).rejects.toMatchObject({ code: 'IO' });
    await expect(ep.remove('d', 'dir')).rejects.toThrow('"d"');
    await expect(readText(ep, 'd')).rejects.toMatchObject({ code: 'BAD_ARGUMENT' });
    await expect(readText(ep, 'nope')).rejects.toThrow('"nope"');
    await expect(ep.hash(['nope'])).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await ep.cleanup()).toBe(0);
    await ep.flush();
  });

  it('aborts a write part-way through and leaves nothing', async () => {
    const ep = store();
    const controller = new AbortController();
    async function* content(): AsyncIterable<Uint8Array> {
      yield new Uint8Array(4);
      await Promise.resolve();
      controller.abort();
      yield new Uint8Array(4);
    }
    const request = { key: 'f', size: 8, ...META };
    await expect(ep.write(request, content(), { signal: controller.signal })).rejects.toMatchObject(
      { code: 'ABORTED' },
    );
    expect(await listedKeys(ep)).toEqual([]);
  });

  it('copies each chunk, so a producer may reuse its buffer', async () => {
    const ep = store();
    const buffer = new Uint8Array(3);
    async function* reused(): AsyncIterable<Uint8Array> {
      for (const text of ['abc', 'def']) {
        await Promise.resolve();
        buffer.set(new TextEncoder().encode(text));
        yield buffer;
      }
    }
    await ep.write({ key: 'f', size: 6, ...META }, reused());
    expect(await readText(ep, 'f')).toBe('abcdef');
  });

  it('finishes a read with the content it started with', async () => {
    const ep = store();
    const old = new Uint8Array(3 << 20).fill(1);
    ep.put('f', old);
    const reader = ep.read('f')[Symbol.asyncIterator]();
    const first = await reader.next();
    await write(ep, 'f', 'new');
    const parts = [first.value as Uint8Array];
    for (let next = await reader.next(); next.done !== true; next = await reader.next()) {
      parts.push(next.value);
    }
    expect(hashBytes(Buffer.concat(parts))).toBe(hashBytes(old));
  });
});
