/**
 * The engine on memory endpoints: the streaming path (read → write) that
 * every non-local endpoint uses, checked by the content that lands.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { syncHashAlgorithm, type EndpointCapabilities } from '../endpoints/endpoint.js';
import { createMemoryEndpoint, type MemoryEndpoint } from '../endpoints/memory/memory-endpoint.js';
import { runSync } from './sync-engine.js';
import { parseSyncOptions, type SyncOptionsInput } from './sync-options.js';
import { runVerify } from './verify.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tongbu-engine-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const T = Date.UTC(2026, 0, 2, 3, 4, 5);

function seeded(): MemoryEndpoint {
  const src = createMemoryEndpoint({ url: 'memory://src' });
  src.putDir('data', { mtimeMs: T, mode: 0o750 });
  src.put('data/a.bin', 'alpha', { mtimeMs: T, mode: 0o640 });
  src.put('data/b.bin', new Uint8Array(3 << 20).fill(7), { mtimeMs: T + 1, mode: 0o644 });
  src.putDir('data/empty', { mtimeMs: T });
  src.putLink('data/link', '../outside', { mtimeMs: T });
  src.put('top.txt', '', { mtimeMs: T });
  return src;
}

function contents(ep: MemoryEndpoint): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, rec] of ep.snapshot()) {
    const e = rec.entry;
    out[key] =
      e.kind === 'file'
        ? `file ${e.mode.toString(8)} ${e.mtimeMs} ${Buffer.from(rec.bytes).toString('base64').slice(0, 40)}`
        : e.kind === 'symlink'
          ? `link ${e.target}`
          : `dir ${e.mode.toString(8)}`;
  }
  return out;
}

function sync(
  source: MemoryEndpoint,
  destination: MemoryEndpoint,
  extra: SyncOptionsInput = {},
  command: 'sync' | 'copy' = 'sync',
) {
  const options = parseSyncOptions({ state: join(dir, 'state.db'), ...extra });
  return runSync({ command, source, destination, options });
}

describe('sync engine on memory endpoints', () => {
  it('mirrors files, directories, links, modes and mtimes, then verifies equal', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst', exists: false });
    const summary = await sync(src, dst);
    expect(summary.errors).toEqual([]);
    expect(summary.files.copied).toBe(3);
    expect(contents(dst)).toEqual(contents(src));
    expect((await runVerify({ source: src, destination: dst })).equal).toBe(true);
  });

  it('moves only what changed, and deletes what the source lost', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    await sync(src, dst);
    src.put('data/a.bin', 'ALPHA', { mtimeMs: T + 5, mode: 0o640 });
    await src.remove('top.txt', 'file');
    src.put('new.txt', 'fresh', { mtimeMs: T });
    const summary = await sync(src, dst, { maxDelete: '1' });
    expect(summary.errors).toEqual([]);
    expect(summary.files.copied).toBe(2);
    expect(summary.files.deleted).toBe(1);
    expect(contents(dst)).toEqual(contents(src));
    const again = await sync(src, dst);
    expect(again.files).toMatchObject({ copied: 0, deleted: 0, updated: 0 });
  });

  it('a run that finds nothing to do leaves the state file as it was', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    await sync(src, dst);
    const before = readFileSync(join(dir, 'state.db'));
    const again = await sync(src, dst);
    expect(again.files).toMatchObject({ copied: 0, updated: 0, deleted: 0, unchanged: 6 });
    expect(readFileSync(join(dir, 'state.db')).equals(before)).toBe(true);
    expect(existsSync(join(dir, 'state.db-wal'))).toBe(false);
  });

  it('a touched file with equal content is compared, not rewritten', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    await sync(src, dst);
    src.put('data/a.bin', 'alpha', { mtimeMs: T + 99, mode: 0o640 });
    const summary = await sync(src, dst);
    expect(summary.files.copied).toBe(0);
    expect(summary.files.updated).toBe(1);
    expect(dst.snapshot().get('data/a.bin')?.entry.mtimeMs).toBe(T + 99);
  });

  it('a destination that dedups writes gets a touched file written, its source read once', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    await sync(src, dst);
    src.put('data/b.bin', new Uint8Array(3 << 20).fill(7), { mtimeMs: T + 99, mode: 0o644 });
    // The same endpoint, declaring what a tongbu namespace declares.
    const dedup = Object.create(dst, {
      capabilities: { value: { ...dst.capabilities, dedupWrites: true } },
    }) as MemoryEndpoint;
    const hashes = vi.spyOn(src, 'hash');
    const reads = vi.spyOn(src, 'read');
    const summary = await sync(src, dedup);
    expect(hashes).not.toHaveBeenCalled();
    expect(reads.mock.calls.map(([key]) => key)).toEqual(['data/b.bin']);
    expect(summary.files.copied).toBe(1);
    expect(dst.snapshot().get('data/b.bin')?.entry.mtimeMs).toBe(T + 99);
    expect(contents(dst)).toEqual(contents(src));
  });

  it('copy never deletes; the mass-delete guard stops sync before any write', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    for (let i = 0; i < 10; i++) dst.put(`extra-${i}`, 'x', { mtimeMs: T });
    const copied = await sync(src, dst, {}, 'copy');
    expect(copied.files.deleted).toBe(0);
    expect(dst.snapshot().has('extra-9')).toBe(true);

    const fresh = createMemoryEndpoint({ url: 'memory://dst2' });
    for (let i = 0; i < 10; i++) fresh.put(`extra-${i}`, 'x', { mtimeMs: T });
    const before = contents(fresh);
    await expect(sync(src, fresh)).rejects.toMatchObject({ code: 'MASS_DELETE' });
    expect(contents(fresh)).toEqual(before);
    const forced = await sync(src, fresh, { force: true });
    expect(forced.files.deleted).toBe(10);
    expect(contents(fresh)).toEqual(contents(src));
  });

  it('--dry-run writes nothing and lists the plan', async () => {
    const src = seeded();
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    dst.put('stale', 'x', { mtimeMs: T });
    const summary = await sync(src, dst, { dryRun: true, force: true });
    expect(contents(dst)).toEqual({ stale: expect.stringContaining('file') as unknown });
    expect(summary.plan?.map((a) => `${a.action} ${a.key}`)).toEqual(
      expect.arrayContaining([
        'copy data/a.bin',
        'mkdir data/empty',
        'link data/link',
        'delete stale',
      ]),
    );
  });

  it('a read failure is reported with the key and the rest is synced', async () => {
    const src = createMemoryEndpoint({
      url: 'memory://src',
      failures: {
        read: (key) =>
          key === 'bad.bin'
            ? Object.assign(new Error('disk read error'), { code: 'EIO' })
            : undefined,
      },
    });
    src.put('bad.bin', new Uint8Array(4 << 20).fill(1), { mtimeMs: T });
    src.put('good.bin', 'fine', { mtimeMs: T });
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    const summary = await sync(src, dst);
    expect(summary.errors.map((e) => e.key)).toEqual(['bad.bin']);
    expect(dst.snapshot().has('bad.bin')).toBe(false);
    expect(dst.snapshot().has('good.bin')).toBe(true);
  });

  it('include and exclude filter what is copied and protect excluded destination entries', async () => {
    const src = seeded();
    src.put('cache/tmp.bin', 'junk', { mtimeMs: T });
    const dst = createMemoryEndpoint({ url: 'memory://dst' });
    dst.put('keep.log', 'mine', { mtimeMs: T });
    const summary = await sync(src, dst, { exclude: ['cache', '*.log'], force: true });
    expect(summary.errors).toEqual([]);
    expect(dst.snapshot().has('cache/tmp.bin')).toBe(false);
    expect(dst.snapshot().has('keep.log')).toBe(true);
    const only = createMemoryEndpoint({ url: 'memory://only' });
    await sync(src, only, { include: ['*.bin'], exclude: ['cache'] });
    expect([...only.snapshot().keys()].sort()).toEqual(['data', 'data/a.bin', 'data/b.bin']);
  });

  it('reports names that would collide on a destination that folds them', async () => {
    const src = createMemoryEndpoint({ url: 'memory://src' });
    src.put('caf\u00e9.txt', 'composed', { mtimeMs: T });
    src.put('cafe\u0301.txt', 'decomposed', { mtimeMs: T });
    const dst = createMemoryEndpoint({ url: 'memory://nfc', nameFolding: 'nfc' });
    const summary = await sync(src, dst);
    expect(summary.warnings.join('\n')).toMatch(/names collide on memory:\/\/nfc \(nfc\)/);
  });
});

describe('the hash a sync compares', () => {
  it('is the one an endpoint keeps, else blake3', () => {
    const caps = (listed: EndpointCapabilities['listedHashes']) =>
      ({ listedHashes: listed }) as EndpointCapabilities;
    expect(syncHashAlgorithm(caps([]), caps([]))).toBe('blake3');
    expect(syncHashAlgorithm(caps([]), caps(['sha256']))).toBe('sha256');
    expect(syncHashAlgorithm(caps(['sha256']), caps([]))).toBe('sha256');
  });
});
